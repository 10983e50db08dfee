"""Algorithms as small frozen specs. The arithmetic lives once, in the engine's phase kernels
(:mod:`minmaxlab.engine.plans`: one plan of phases per algorithm), shared by the simulator and the
MPI backend.

Notation: M workers, worker i holds x_i, z_i and its last stochastic gradient g_i; W^t is t rounds
of gossip with the mixing matrix (assumption A4); eta may differ per player, eta = (eta_u, eta_v).
Every spec validates its parameters at construction and has a ``label`` naming the run by its
parameters, e.g. ``dposg[rounds=3,eta=0.05]``.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field, fields, is_dataclass
from typing import ClassVar

import numpy as np

from minmaxlab import userspec
from minmaxlab.engine import plans
from minmaxlab.errors import AlgorithmError, did_you_mean
from minmaxlab.topology import rounds_for_eps

SCHEDULES = ("constant", "log", "eps")
VARIANTS = ("default", "single_exchange")
GOSSIPS = ("plain", "chebyshev")
COMPRESSIONS = ("none", "top_k", "quantize")
MOMENTS = ("local", "gossiped_gradient")  # DPOAdam: where its Adam moments come from
# DPOSG's compression fields: left out of its label and identity while compression is "none"
_COMPRESSION_FIELDS = ("keep", "levels", "consensus_step", "error_feedback")
_SILENT_PLAIN = {"silent": "plain"}  # plain gossip: the gossip of every run before the choice


def _check_eta(name, eta):
    vals = eta if isinstance(eta, (tuple, list)) else (eta,)
    if len(vals) not in (1, 2):
        raise AlgorithmError(f"{name}: eta must be a number or a pair (eta_u, eta_v), got {eta!r}")
    out = []
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise AlgorithmError(f"{name}: eta must be a positive number, got {v!r}")
        if not math.isfinite(v) or v <= 0:
            raise AlgorithmError(f"{name}: eta must be a positive finite number, got {v!r}")
        out.append(float(v))
    return out[0] if len(out) == 1 else tuple(out)


def _check_rounds(name, rounds):
    if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 0:
        raise AlgorithmError(f"{name}: rounds must be an integer >= 0, got {rounds!r}")
    return int(rounds)


def _check_unit(name, field, value, closed=False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or value > 1 or (value == 1 and not closed):
        raise AlgorithmError(f"{name}: {field} must lie in [0, 1{']' if closed else ')'}, got "
                             f"{value!r}")
    return float(value)


@dataclass(frozen=True)
class Algorithm:
    """Base spec. Subclasses set ``key`` (run-name prefix) and ``alg_id`` (kernel id)."""

    eta: float | tuple[float, float] = 0.05

    key: ClassVar[str] = "algorithm"
    alg_id: ClassVar[int] = -1
    decentralized: ClassVar[bool] = True
    optimistic: ClassVar[bool] = True
    oracle_calls_per_iteration: ClassVar[int] = 1
    # an algorithm defined outside the package gives its plan by phase names (the built-in ones
    # have theirs in the engine's table under alg_id): see "Your own method" in the README
    phases: ClassVar[tuple] = ()
    init_phases: ClassVar[tuple] = ()
    # its own local phase (the phase "user"): a numba function kernel(X, Z, G, S1, S2, S3, eta, k)
    # that updates the block's rows in place; runs with it compile the engine's chain again
    kernel: ClassVar = None

    def __post_init__(self):
        object.__setattr__(self, "eta", _check_eta(self.key, self.eta))
        if self.phases:
            try:
                plans.encode(self.phases, self.init_phases)
            except ValueError as exc:
                raise AlgorithmError(f"{self.key}: {exc}") from None
        elif self.alg_id < 0:
            raise AlgorithmError(f"{self.key}: an algorithm needs its phases (a tuple of phase "
                                 f"names, e.g. {plans.plan(plans.ALG_DPOSG)})")
        names = (*self.phases, *self.init_phases)
        if "gossip_g" in names and "average_g" in names:
            raise AlgorithmError(f"{self.key}: a plan gossips its gradients (gossip_g) or averages "
                                 "them exactly (average_g), not both")
        uses = "user" in names
        kernel = type(self).kernel  # on the class: a dispatcher on an instance binds as a method
        if uses and not hasattr(kernel, "py_func"):
            raise AlgorithmError(f"{self.key}: the phase 'user' needs kernel = a numba.njit "
                                 f"function (X, Z, G, S1, S2, S3, eta, k), got {kernel!r}")
        if kernel is not None and not uses:
            raise AlgorithmError(f"{self.key}: a kernel runs only as the phase 'user' of its "
                                 "phases")

    # -- its plan
    def plan(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(the phases of an iteration, the phases of the initialization), by name."""
        if self.phases:
            return tuple(self.phases), tuple(self.init_phases)
        return plans.plan(self.alg_id), plans.plan(self.alg_id, init=True)

    def kernel_plan(self) -> tuple:
        """(ops, init_ops, counts): the plan in the kernels' form (plans.encode)."""
        return plans.encode(*self.plan())

    # -- description
    def params(self) -> dict:
        """The spec's parameters, without those at their silent value (a parameter added after
        runs were named, at the value that names no change: the runs' labels and identities stay
        those they had before it could be chosen)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if "silent" not in f.metadata or value != f.metadata["silent"]:
                out[f.name] = value
        return out

    @property
    def label(self) -> str:
        parts = []
        for k, v in self.params().items():
            if k == "eta":
                v = "/".join(f"{x:g}" for x in v) if isinstance(v, tuple) else f"{v:g}"
            elif isinstance(v, float):
                v = f"{v:g}"
            parts.append(f"{k}={v}")
        return f"{self.key}[{','.join(parts)}]"

    def spec(self) -> dict:
        d = self.params()
        if isinstance(d["eta"], tuple):
            d["eta"] = list(d["eta"])
        out = {"algorithm": self.key, **d}
        if self.alg_id < 0:  # a user's method: where its class is, to run it again
            cls = type(self)
            try:
                where = inspect.getfile(cls)
            except (TypeError, OSError):  # defined interactively
                where = cls.__module__
            out["defined_in"] = f"{where}:{cls.__qualname__}"
        return out

    # -- what the kernel needs
    def eta_vector(self, dim: int, dim_u: int) -> np.ndarray:
        e = np.empty(dim)
        eu, ev = self.eta if isinstance(self.eta, tuple) else (self.eta, self.eta)
        e[:dim_u] = eu
        e[dim_u:] = ev
        return e

    def rounds_schedule(self, iterations: int, rho: float) -> np.ndarray:
        return np.zeros(iterations, dtype=np.int64)

    def eta_scale(self, iterations: int) -> np.ndarray:
        """The step-size schedule: iteration k steps with eta * eta_scale(K)[k - 1]; empty for a
        constant step size (every method but those with a ``decay``)."""
        return np.zeros(0)

    def adam(self) -> tuple[float, float, float]:
        return 0.0, 0.0, 1.0


@dataclass(frozen=True)
class Gossiping(Algorithm):
    """A method that gossips: ``rounds`` rounds per gossip phase, each a product with W
    (``gossip="plain"``: W^t) or the Chebyshev-accelerated polynomial of W of degree t
    (``gossip="chebyshev"``: P_t(W) = T_t(W / rho) / T_t(1 / rho), whose contraction
    1 / T_t(1 / rho) needs about 1 / sqrt(2 (1 - rho)) rounds per factor e instead of
    1 / (1 - rho); it needs a fixed W, whose rho it reads). Reference for the accelerated gossip:
    Beznosikov, Rogozin, Kovalev, Gasnikov, Near-optimal decentralized algorithms for saddle
    point problems over time-varying networks, 2021; Scaman, Bach, Bubeck, Lee, Massoulie,
    ICML 2017."""

    rounds: int = 1
    gossip: str = field(default="plain", metadata=_SILENT_PLAIN)

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "rounds", _check_rounds(self.key, self.rounds))
        if self.gossip not in GOSSIPS:
            raise AlgorithmError(f"{self.key}: unknown gossip {self.gossip!r}; gossips: {GOSSIPS}")

    def rounds_schedule(self, iterations, rho):
        return np.full(iterations, self.rounds, dtype=np.int64)


@dataclass(frozen=True)
class DPOSG(Gossiping):
    """Decentralized parallel optimistic stochastic gradient (Liu et al., NeurIPS 2020).

    Update (rows = workers), ``variant="default"``:
        Z = W^t (X - eta G_prev);  G = g(Z)  (one new mini-batch oracle call);  X = W^t (X - eta G)
    ``variant="single_exchange"`` gossips x once before the local steps (half the communication,
    but its consensus error does not vanish as t grows):
        B = W^t X;  Z = B - eta G_prev;  G = g(Z);  X = B - eta G
    Initialization: x_i = z_i = z0 and g_i(z0) computed once (counted as an oracle call).
    Rounds per iteration: ``schedule="constant"`` (t = rounds), ``"log"`` (t_k = rounds +
    floor(log2 k), growing like log k) or ``"eps"`` (t = ceil(log(1/eps) / log(1/rho))).
    ``compression="top_k"`` (the ``keep`` fraction of each row's largest entries) or
    ``"quantize"`` (``levels`` levels, unbiased stochastic rounding) sends compressed differences
    with error feedback in every gossip round (CHOCO-gossip: y_i += consensus_step (sum_j W_ij
    hat_j - hat_i), hat_i += C(y_i - hat_i); Koloskova, Stich, Jaggi, ICML 2019; for GANs with
    quantized messages: Chen et al., DQGAN, 2020); ``error_feedback=False`` compresses y_i itself
    each round (the control: its compression error is never corrected). See
    :mod:`minmaxlab.engine.compression`.
    Assumptions: MVI (A1), L-Lipschitz F (A2), unbiased oracle with variance sigma^2/m (A3),
    W symmetric doubly stochastic with rho < 1 (A4), eta <= c / L. Guarantee: the average of
    E||(1/M) sum_i F(z_i^k)||^2 over K iterations is O(1/(eta^2 K)) + O(sigma^2 / (m M)) + a consensus
    term that shrinks like rho^t. With W = J it is CPOSG exactly, with M = 1 it is OSG.
    Reference: Liu, Zhang, Mroueh, Cui, Ross, Yang, Das, A Decentralized Parallel Algorithm for
    Training Generative Adversarial Nets, NeurIPS 2020.
    """

    schedule: str = "constant"
    eps: float | None = None
    variant: str = "default"
    compression: str = field(default="none", metadata={"silent": "none"})
    keep: float = 0.1
    levels: int = 4
    consensus_step: float = 1.0
    error_feedback: bool = True

    key: ClassVar[str] = "dposg"

    def params(self) -> dict:
        """Without compression its four parameters are left out too; with it, the parameter of
        the other compressor and error feedback while it is on."""
        out = super().params()
        if "compression" not in out:
            for k in _COMPRESSION_FIELDS:
                del out[k]
        else:
            del out["levels" if out["compression"] == "top_k" else "keep"]
            if out["error_feedback"]:
                del out["error_feedback"]
        return out

    def __post_init__(self):
        super().__post_init__()
        _check_compression(self)
        if self.variant not in VARIANTS:
            raise AlgorithmError(f"dposg: unknown variant {self.variant!r}; variants: {VARIANTS}")
        if self.schedule not in SCHEDULES:
            raise AlgorithmError(f"dposg: unknown schedule {self.schedule!r}; schedules: {SCHEDULES}")
        if self.schedule == "eps":
            if self.eps is None or not isinstance(self.eps, (int, float)) or not 0 < self.eps < 1:
                raise AlgorithmError(f"dposg: schedule 'eps' needs 0 < eps < 1, got {self.eps!r}")
        elif self.eps is not None:
            raise AlgorithmError("dposg: eps is only used with schedule='eps'")

    @property
    def alg_id(self):  # type: ignore[override]
        return plans.ALG_DPOSG if self.variant == "default" else plans.ALG_DPOSG_SINGLE

    @property
    def label(self) -> str:
        parts = [f"rounds={self.rounds}", f"eta={_fmt_eta(self.eta)}"]
        if self.schedule != "constant":
            parts.append(f"schedule={self.schedule}")
        if self.eps is not None:
            parts.append(f"eps={self.eps:g}")
        if self.gossip != "plain":
            parts.append(f"gossip={self.gossip}")
        for k, v in self.params().items():
            if k == "compression" or k in _COMPRESSION_FIELDS:
                parts.append(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}")
        key = "dposg" if self.variant == "default" else "dposg_single"
        return f"{key}[{','.join(parts)}]"

    def rounds_schedule(self, iterations, rho):
        if self.schedule == "constant":
            return np.full(iterations, self.rounds, dtype=np.int64)
        if self.schedule == "log":
            k = np.arange(1, iterations + 1)
            return (self.rounds + np.floor(np.log2(k))).astype(np.int64)
        # at least one round: even W = J (rho = 0) needs one exchange to average
        t = rounds_for_eps(rho, self.eps)
        return np.full(iterations, max(t, 1), dtype=np.int64)


def _check_compression(a):
    if a.compression not in COMPRESSIONS:
        raise AlgorithmError(f"{a.key}: unknown compression {a.compression!r}; compressions: "
                             f"{COMPRESSIONS}")
    ok = isinstance(a.keep, (int, float)) and not isinstance(a.keep, bool) and 0 < a.keep <= 1
    if not ok:
        raise AlgorithmError(f"{a.key}: keep must lie in (0, 1], got {a.keep!r}")
    if isinstance(a.levels, bool) or not isinstance(a.levels, (int, np.integer)) or a.levels < 1:
        raise AlgorithmError(f"{a.key}: levels must be an integer >= 1, got {a.levels!r}")
    g = a.consensus_step
    if isinstance(g, bool) or not isinstance(g, (int, float)) or not 0 < g <= 1:
        raise AlgorithmError(f"{a.key}: consensus_step must lie in (0, 1], got {g!r}")
    if not isinstance(a.error_feedback, bool):
        raise AlgorithmError(f"{a.key}: error_feedback must be true or false, got "
                             f"{a.error_feedback!r}")
    if a.compression != "none" and a.gossip == "chebyshev":
        raise AlgorithmError(f"{a.key}: compression and gossip 'chebyshev' do not combine; "
                             "choose one")
    object.__setattr__(a, "keep", float(a.keep))
    object.__setattr__(a, "levels", int(a.levels))
    object.__setattr__(a, "consensus_step", float(g))


def _fmt_eta(eta):
    return "/".join(f"{x:g}" for x in eta) if isinstance(eta, tuple) else f"{eta:g}"


@dataclass(frozen=True)
class CPOSG(Algorithm):
    """Centralized parallel optimistic stochastic gradient: the M mini-batch gradients are averaged
    exactly (all-reduce) and one shared copy is updated:
        z = x - eta gbar_prev;  gbar = (1/M) sum_i g_i(z);  x = x - eta gbar
    Equivalent to DPOSG with W = J. Same assumptions as DPOSG without A4.
    Reference: Liu et al., NeurIPS 2020 (the centralized baseline).
    """

    key: ClassVar[str] = "cposg"
    alg_id: ClassVar[int] = plans.ALG_CPOSG
    decentralized: ClassVar[bool] = False


@dataclass(frozen=True)
class OSG(CPOSG):
    """Optimistic stochastic gradient with one worker (past extragradient):
        z_k = x_{k-1} - eta g(z_{k-1});  x_k = x_{k-1} - eta g(z_k)
    With eta <= 1/(9L) and mini-batches m: (1/N) sum_k E||F(z_k)||^2 <= 8 ||x_0 - x*||^2/(eta^2 N)
    + (100/N) sum_k sigma^2/m_k. Runs on a single worker (use CPOSG for M workers).
    Reference: Liu, Mroueh, Ross, Zhang, Cui, Das, Yang, Towards Better Understanding of Adaptive
    Gradient Algorithms in GANs, ICLR 2020.
    """

    key: ClassVar[str] = "osg"


@dataclass(frozen=True)
class DSGDA(Gossiping):
    """Decentralized simultaneous (stochastic) gradient descent-ascent with gossip, no optimism:
        X = W^t (X - eta g(X))
    Diverges on bilinear games (a negative control); converges on strongly monotone ones.
    Reference: e.g. Gidel et al., ICLR 2019 (GDA on bilinear games).
    """

    key: ClassVar[str] = "dsgda"
    alg_id: ClassVar[int] = plans.ALG_DSGDA
    optimistic: ClassVar[bool] = False


@dataclass(frozen=True)
class DEG(Gossiping):
    """Decentralized (stochastic) extragradient, two oracle calls per iteration:
        Z = W^t (X - eta g(X));  X = W^t (X - eta g(Z))
    Reference: Korpelevich 1976; stochastic form: Juditsky, Nemirovski, Tauvel 2011.
    """

    key: ClassVar[str] = "deg"
    alg_id: ClassVar[int] = plans.ALG_DEG
    oracle_calls_per_iteration: ClassVar[int] = 2


@dataclass(frozen=True)
class DEGMC(DEG):
    """Decentralized extragradient with multi-step accelerated consensus: D-EG whose gossip phases
    are t rounds of Chebyshev-accelerated gossip (``gossip="chebyshev"``, the default here):
        Z = P_t(W) (X - eta g(X));  X = P_t(W) (X - eta g(Z))
    with P_t(x) = T_t(x / rho) / T_t(1 / rho). Problem class: (strongly) monotone Lipschitz
    saddle-point problems; guarantee: the consensus error of a phase shrinks by 1 / T_t(1 / rho)
    ~ 2 (1 - sqrt(2 (1 - rho)))^t, so t = O(log(1/eps) / sqrt(1 - rho)) rounds per iteration
    keep it below eps, which with the extragradient's O(L / mu log(1/eps)) iterations matches the
    communication lower bound up to logarithms. Reference: Beznosikov, Samokhin, Gasnikov,
    Distributed Saddle-Point Problems: Lower Bounds, Near-Optimal and Robust Algorithms, 2020.
    """

    gossip: str = field(default="chebyshev", metadata=_SILENT_PLAIN)

    key: ClassVar[str] = "deg_mc"


@dataclass(frozen=True)
class GTDA(Gossiping):
    """Gradient-tracking descent-ascent: every worker follows a tracker y_i of the mean gradient
    instead of its own, in adapt-then-combine form:
        X = W^t (X - eta Y);  Y = W^t (Y + g(X) - G_prev);  Z = X
    initialized with Y = G = g(z0). Since W is doubly stochastic, the mean of Y equals the mean
    of the latest gradients at every iteration (up to rounding), so at a fixed point with
    consensus the mean operator vanishes: heterogeneous workers (F_i(z*) != 0) leave no floor,
    unlike D-SGDA, whose fixed point keeps a disagreement of order eta zeta / (1 - rho^t).
    Problem class: strongly monotone (or nonconvex-strongly-concave) Lipschitz games, eta small
    against the spectral gap; guarantee: linear convergence to z* for deterministic strongly
    monotone F. Two gossip phases per iteration (X and Y). Reference: Tsaknakis, Hong, Liu,
    Decentralized min-max optimization: formulations, algorithms and applications in network
    poisoning attack, ICASSP 2020; tracking: Nedic, Olshevsky, Shi, SIAM J. Optim. 2017 (DIGing).
    """

    key: ClassVar[str] = "gt_da"
    alg_id: ClassVar[int] = plans.ALG_GT_DA
    optimistic: ClassVar[bool] = False


@dataclass(frozen=True)
class DPOSGGT(Gossiping):
    """DPOSG with gradient tracking. Construction: DPOSG's two steps use the tracker y_i of the
    mean of the latest gradients in place of the worker's own gradient, and the tracker is
    gossiped like the iterates (adapt-then-combine):
        Z = W^t (X - eta Y);  G_new = g(Z);  Y = W^t (Y + G_new - G);  X = W^t (X - eta Y)
    initialized with Y = G = g(z0). The mean of Y stays the mean of G (W doubly stochastic), so
    the network average follows the optimistic step on the mean operator, as in DPOSG, while the
    workers' disagreement is driven by Y's, which vanishes at a consensual fixed point: there
    the mean operator is zero, and the heterogeneity floor of DPOSG (claim C9, of order
    (eta L zeta rho^t)^2) is gone. Problem class: DPOSG's (MVI, Lipschitz F), eta small against
    the spectral gap; guarantee (deterministic oracle): convergence to a solution of the MVI at
    any t >= 1 where DPOSG stalls at its floor. Three gossip phases per iteration (Z, Y, X).
    References: Liu et al., NeurIPS 2020 (DPOSG); gradient tracking: Nedic, Olshevsky, Shi, SIAM
    J. Optim. 2017, Qu and Li, IEEE TCNS 2018; for min-max: Tsaknakis, Hong, Liu, ICASSP 2020.
    """

    key: ClassVar[str] = "dposg_gt"
    alg_id: ClassVar[int] = plans.ALG_DPOSG_GT


@dataclass(frozen=True)
class LocalSGDA(Algorithm):
    """Local stochastic gradient descent-ascent with periodic averaging: every worker takes
    ``local_steps`` (tau) steps on its own oracle, then the workers' iterates are averaged
    exactly (a server or an all-reduce):
        X = X - eta g(X);  every tau-th iteration X = (1/M) 1 1^T X;  Z = X
    One oracle call per iteration and one average of d floats per tau iterations. Problem
    class: smooth (strongly-)convex-(strongly-)concave and nonconvex-(strongly-)concave games;
    guarantee (Deng and Mahdavi): with iid workers the same rate as minibatch SGDA with tau
    times fewer communications, up to a drift term that grows with tau eta and, for
    heterogeneous workers, with their dissimilarity. tau = 1 is parallel SGDA with an average
    every step; M = 1 is SGDA. Reference: Deng, Mahdavi, Local Stochastic Gradient Descent Ascent:
    Convergence Analysis and Communication Efficiency, AISTATS 2021.
    """

    local_steps: int = 1

    key: ClassVar[str] = "local_sgda"
    alg_id: ClassVar[int] = plans.ALG_LOCAL_SGDA
    decentralized: ClassVar[bool] = False
    optimistic: ClassVar[bool] = False

    def __post_init__(self):
        super().__post_init__()
        tau = self.local_steps
        if isinstance(tau, bool) or not isinstance(tau, (int, np.integer)) or tau < 1:
            raise AlgorithmError(f"{self.key}: local_steps must be an integer >= 1, got {tau!r}")
        object.__setattr__(self, "local_steps", int(tau))

    def rounds_schedule(self, iterations, rho):
        # 1 on the iterations that end with the average, 0 on the others
        k = np.arange(1, iterations + 1)
        return (k % self.local_steps == 0).astype(np.int64)


@dataclass(frozen=True)
class LocalOSGDA(LocalSGDA):
    """Local optimistic SGDA: the local steps are optimistic (past-extragradient) ones, with the
    iterates averaged every ``local_steps`` iterations:
        Z = X - eta G_prev;  G = g(Z);  X = X - eta G;  every tau-th iteration X = (1/M) 1 1^T X
    (G_prev stays local). M = 1 is OSG. Reference: Deng, Mahdavi, AISTATS 2021 (local SGDA and its
    optimistic variant); Liu et al., ICLR 2020 (OSG).
    """

    key: ClassVar[str] = "local_osgda"
    alg_id: ClassVar[int] = plans.ALG_LOCAL_OSGDA
    optimistic: ClassVar[bool] = True


@dataclass(frozen=True)
class DMHSGD(Gossiping):
    """Decentralized minimax hybrid stochastic gradient: gradient tracking on a STORM (hybrid)
    estimator of each worker's gradient instead of the raw stochastic gradient:
        X_prev = X;  X = W^t (X - eta Y)
        V = g(X; xi) + (1 - beta) (V - g(X_prev; xi))     (the same sample xi at both points)
        Y = W^t (Y + V - V_prev);  Z = X
    initialized with V = Y = g(z0). Two oracle calls per iteration (one sample, two points). With
    beta = 1 it is GT-DA; with beta < 1 the estimator's error obeys
    E||e_k||^2 <= (1 - beta)^2 E||e_{k-1}||^2 + 2 beta^2 sigma^2 + 2 (1 - beta)^2 L^2 ||x_k - x_{k-1}||^2,
    so at a fixed batch the noise floor scales like beta sigma^2 (against sigma^2 for GT-DA) while
    the steps are small. Problem class: nonconvex-strongly-concave (and strongly monotone)
    Lipschitz games with mean-squared-Lipschitz stochastic gradients; guarantee (Xian et al.):
    an eps-stationary point in O(eps^-3) stochastic gradients with beta ~ eta^2, without large
    batches. This implementation keeps beta and eta constant (``beta``; the paper's schedules
    are a choice of them). ``same_sample=False`` draws a fresh sample for g(X_prev): the
    difference no longer cancels the noise, and the estimator loses its variance reduction (the
    negative control of its claim). Reference: Xian, Huang, Zhang, Huang, A Faster Decentralized
    Algorithm for Nonconvex Minimax Problems, NeurIPS 2021; STORM: Cutkosky, Orabona, NeurIPS
    2019.
    """

    beta: float = 0.1
    same_sample: bool = field(default=True, metadata={"silent": True})

    key: ClassVar[str] = "dm_hsgd"
    optimistic: ClassVar[bool] = False
    oracle_calls_per_iteration: ClassVar[int] = 2

    def __post_init__(self):
        super().__post_init__()
        b = self.beta
        if isinstance(b, bool) or not isinstance(b, (int, float)) or not 0 < b <= 1:
            raise AlgorithmError(f"dm_hsgd: beta must lie in (0, 1], got {b!r}")
        object.__setattr__(self, "beta", float(b))
        if not isinstance(self.same_sample, bool):
            raise AlgorithmError(f"dm_hsgd: same_sample must be true or false, got "
                                 f"{self.same_sample!r}")

    @property
    def alg_id(self):  # type: ignore[override]
        return plans.ALG_DM_HSGD if self.same_sample else plans.ALG_DM_HSGD_FRESH

    def adam(self):
        # the kernels read the STORM weight where optimistic Adam's beta1 goes
        return self.beta, 0.0, 1.0


@dataclass(frozen=True)
class DPOAdam(Gossiping):
    """Decentralized parallel optimistic Adam (the adaptive variant used for GAN training):
        g_i = g_i(x_i);  m_i = b1 m_i + (1 - b1) g_i;  v_i = b2 v_i + (1 - b2) g_i^2;
        D_i^k = mhat_i / (sqrt(vhat_i) + eps);  x_i = sum_j (W^t)_ij (x_j - 2 eta D_j^k + eta D_j^{k-1})
    with bias-corrected moments. With ``moments="local"`` (the paper's method) the moment buffers
    (m, v) stay local: only the parameters are gossiped, so on heterogeneous data each worker's
    step is normalized by its own gradients' statistics, and the network average of the steps is
    not the step of the average gradient, even with W = J. ``moments="gossiped_gradient"`` gossips
    the gradients first (g_i <- sum_j (W^t)_ij g_j, a second gossip phase: twice the floats) and
    feeds the moments with them; with W = J it is CPOAdam. ``decay`` > 0 lets eta fall linearly
    towards 0 over that fraction n of the iterations at the end, the last step at eta / n
    (:func:`linear_decay`). Reference: Liu et
    al., NeurIPS 2020 (DPOAdam); Daskalakis et al., ICLR 2018 (optimistic Adam).
    """

    beta1: float = 0.5
    beta2: float = 0.9
    epsilon: float = 1e-8
    moments: str = field(default="local", metadata={"silent": "local"})
    decay: float = field(default=0.0, metadata={"silent": 0.0})

    key: ClassVar[str] = "dpoadam"

    def __post_init__(self):
        super().__post_init__()
        _validate_adam(self)
        if self.moments not in MOMENTS:
            raise AlgorithmError(f"dpoadam: moments must be one of {MOMENTS}, got "
                                 f"{self.moments!r}{did_you_mean(self.moments, MOMENTS)}")

    @property
    def alg_id(self):  # type: ignore[override]
        return plans.ALG_DPOADAM if self.moments == "local" else plans.ALG_DPOADAM_GG

    def adam(self):
        return self.beta1, self.beta2, self.epsilon

    def eta_scale(self, iterations):
        return linear_decay(self.decay, iterations)


@dataclass(frozen=True)
class CPOAdam(Algorithm):
    """Centralized parallel optimistic Adam: the M gradients are averaged exactly, then one shared
    optimistic Adam step (as DPOAdam, with W = J applied to the gradients instead of the
    parameters). Reference: Liu et al., NeurIPS 2020."""

    beta1: float = 0.5
    beta2: float = 0.9
    epsilon: float = 1e-8

    decay: float = field(default=0.0, metadata={"silent": 0.0})

    key: ClassVar[str] = "cpoadam"
    alg_id: ClassVar[int] = plans.ALG_CPOADAM
    decentralized: ClassVar[bool] = False

    def __post_init__(self):
        super().__post_init__()
        _validate_adam(self)

    def adam(self):
        return self.beta1, self.beta2, self.epsilon

    def eta_scale(self, iterations):
        return linear_decay(self.decay, iterations)


def _validate_adam(a):
    _check_unit(a.key, "beta1", a.beta1)
    _check_unit(a.key, "beta2", a.beta2)
    if not isinstance(a.epsilon, (int, float)) or not a.epsilon > 0:
        raise AlgorithmError(f"{a.key}: epsilon must be > 0, got {a.epsilon!r}")
    object.__setattr__(a, "decay", _check_unit(a.key, "decay", a.decay, closed=True))


def linear_decay(decay: float, iterations: int) -> np.ndarray:
    """The multipliers of eta at iterations 1..K when eta falls linearly to 0 over the last
    ``decay`` fraction of them (the linear learning-rate decay of GAN training, e.g. Gulrajani et
    al.'s WGAN-GP code; decay = 1: from the first iteration): 1 until then, then
    (K - k + 1) / n over the last n = ceil(decay K) iterations. Empty (constant) for decay = 0."""
    if decay <= 0 or iterations <= 0:
        return np.zeros(0)
    n = max(1, math.ceil(decay * iterations))
    k = np.arange(1, iterations + 1)
    return np.minimum(1.0, (iterations - k + 1) / n)


ALGORITHMS: dict[str, type[Algorithm]] = {
    cls.key: cls for cls in (DPOSG, CPOSG, OSG, DSGDA, DEG, DPOAdam, CPOAdam, DEGMC, GTDA, DPOSGGT,
                            LocalSGDA, LocalOSGDA, DMHSGD)
}


def phase_counts(name: str) -> tuple[int, int, int]:
    """(oracle calls, gossip phases, exact averages) of one iteration of the algorithm ``name``
    (a key of :func:`algorithm`), counted from its plan; a gossip phase is ``rounds`` rounds."""
    alg = algorithm(name, eta=1.0)
    return plans.count_phases(alg.plan()[0])


def user_algorithm(spec: str) -> type[Algorithm]:
    """The algorithm class a user defines outside the package, named by ``FILE.py:CLASS`` or
    ``pkg.module:CLASS``: a frozen dataclass subclass of :class:`Algorithm` (or
    :class:`Gossiping`) with its ``key`` and its ``phases`` (see "Your own method" in the
    README). Every process that runs it (a study's workers, MPI ranks) imports it by that name."""
    _, cls = userspec.load(spec, "user algorithm", AlgorithmError)
    if not (isinstance(cls, type) and issubclass(cls, Algorithm) and is_dataclass(cls)):
        raise AlgorithmError(f"user algorithm {spec!r}: must be a dataclass subclass of "
                             f"minmaxlab.Algorithm, got {cls!r}")
    return cls


def algorithm(name: str, **params) -> Algorithm:
    """Build an algorithm spec from its key (``dposg``, ``dposg_single``, ``cposg``, ...) or a
    user's class ``FILE.py:CLASS`` / ``pkg.module:CLASS`` (:func:`user_algorithm`)."""
    if name == "dposg_single":
        params.setdefault("variant", "single_exchange")
        name = "dposg"
    if userspec.is_user_spec(name):
        cls = user_algorithm(name)
    elif not isinstance(name, str) or name not in ALGORITHMS:
        raise AlgorithmError(f"unknown algorithm {name!r}"
                             f"{did_you_mean(name, [*ALGORITHMS, 'dposg_single'])}; algorithms: "
                             f"{sorted([*ALGORITHMS, 'dposg_single'])} or a class FILE.py:CLASS")
    else:
        cls = ALGORITHMS[name]
    allowed = [f.name for f in fields(cls)]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise AlgorithmError(f"{name}: unknown parameter(s) {unknown}"
                             f"{did_you_mean(unknown[0], allowed)}; allowed: {allowed}")
    if "eta" in params and isinstance(params["eta"], list):
        params["eta"] = tuple(params["eta"])
    return cls(**params)


__all__ = ["Algorithm", "Gossiping", "DPOSG", "CPOSG", "OSG", "DSGDA", "DEG", "DPOAdam", "CPOAdam", "DEGMC",
           "GTDA", "DPOSGGT", "LocalSGDA", "LocalOSGDA", "DMHSGD", "ALGORITHMS",
           "algorithm", "user_algorithm"]
