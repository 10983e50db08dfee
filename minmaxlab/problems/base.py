"""The Problem protocol: a min-max game split over M workers, with declared constants.

A problem is data. It holds

* ``dim`` and ``dim_u`` (z = (u, v), u = z[:dim_u] is the minimizing player, v the maximizing one);
* its local operators F_i in kernel form: a family id and three arrays (``P``, ``A``, ``S``) that the
  engine's ``library_rows`` reads (see ``minmaxlab/engine/families.py``), or a user operator
  compiled by numba;
* an independent form of the mean operator F (the family's own aggregate data), so that tests can
  check F == mean of the F_i;
* declared constants: ``L`` (Lipschitz constant of F) and ``L_local`` (max over workers of that of F_i),
  the ``box`` on which they hold (``lipschitz="global"`` when they hold everywhere and the box is only
  where they are sampled), the MVI status (``"holds"``, ``"equality"``, ``"fails"``, ``"unknown"``),
  ``r_min`` (lower bound of the Minty ratio on the box where MVI fails), the solution ``z*`` where known,
  and how the local operators differ (``heterogeneity`` and ``heterogeneity_kind``);
* the heterogeneity at the solution, ``zeta2`` = (1/M) sum_i ||F_i(z*)||^2 (None where z* is not
  known): what stays of the workers' disagreement when the network has converged. Every family
  takes ``shift``: worker i's operator becomes F_i + b_i with sum_i b_i = 0 and
  (1/M) sum_i ||b_i||^2 = shift^2, which keeps F, L and z* and makes the workers differ at z*;
* a noise model (assumption A3), see :class:`Noise`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from minmaxlab.buffers import nbytes_of
from minmaxlab.engine import registry
from minmaxlab.engine.streams import no_state
from minmaxlab.errors import ProblemError

MVI_STATUSES = ("holds", "equality", "fails", "unknown")
NOISE_KINDS = ("none", "gaussian", "finite_sum", "sampled")


@dataclass(frozen=True)
class Noise:
    """Stochastic oracle model (assumption A3).

    ``sigma`` is the total standard deviation of one sample: E||g_i(z; xi) - F_i(z)||^2 = sigma^2, so a
    mini-batch of ``batch`` samples has variance sigma^2 / batch.

    * ``"none"``: exact operator.
    * ``"gaussian"``: g_i(z) = F_i(z) + (sigma / sqrt(d * batch)) * N(0, I_d).
    * ``"finite_sum"``: worker i holds ``samples`` component operators F_ij(z) = F_i(z) + c_ij with
      sum_j c_ij = 0 and (1/n) sum_j ||c_ij||^2 = sigma^2; the oracle averages ``batch`` of them drawn
      uniformly with replacement (so the variance is exactly sigma^2 / batch). ``shifts`` holds the
      c_ij, shape (M, samples, d). For families with natural data (the covariance WGAN) the c_ij come
      from the data themselves.
    * ``"sampled"``: the operator draws its own mini-batch of ``batch`` samples (data points,
      latent vectors) from the worker's random stream; for problems built on data (GANs).
    """

    kind: str = "none"
    sigma: float = 0.0
    batch: int = 1
    samples: int = 0
    shifts: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if not isinstance(self.kind, str) or self.kind not in NOISE_KINDS:
            raise ProblemError(f"Noise: kind must be one of {NOISE_KINDS}, got {self.kind!r}")
        sigma_ok = isinstance(self.sigma, (int, float, np.integer, np.floating)) and not isinstance(
            self.sigma, bool) and (self.sigma >= 0 or (self.kind == "sampled" and np.isnan(self.sigma)))
        if not sigma_ok or self.sigma == np.inf:
            raise ProblemError(f"Noise: sigma must be a finite number >= 0, got {self.sigma!r}")
        for name, value, low in (("batch", self.batch, 1), ("samples", self.samples, 0)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ProblemError(f"Noise: {name} must be an integer >= {low}, got {value!r}")
        if self.kind == "finite_sum" and (self.shifts is None or np.ndim(self.shifts) != 3
                                          or np.shape(self.shifts)[1] != self.samples):
            raise ProblemError("Noise: kind 'finite_sum' needs shifts of shape (workers, samples, "
                               "dim); build it with Problem.with_noise(kind='finite_sum')")

    @property
    def variance(self) -> float:
        """Variance of one mini-batch oracle call, sigma^2 / batch."""
        return 0.0 if self.kind == "none" else self.sigma**2 / self.batch

    def describe(self) -> str:
        if self.kind == "none":
            return "exact"
        extra = f", n={self.samples}" if self.kind == "finite_sum" else ""
        return f"{self.kind}(sigma={self.sigma:g}, m={self.batch}{extra})"


def _centered(rng: np.random.Generator, rows: int, shape: tuple, axis: int = 0) -> np.ndarray:
    x = rng.standard_normal((rows, *shape))
    if rows > 1:
        x -= x.mean(axis=axis, keepdims=True)
    return x


_MEAN_AS_LOCAL: dict[tuple, tuple] = {}


def _mean_as_local(op, mean_op, M):
    """A local operator that ignores its worker index and returns F = (1/M) sum_j F_j (one per
    user operator and M in a process, so that its kernels compile once)."""
    key = (id(op), id(mean_op), int(M))
    if key not in _MEAN_AS_LOCAL:  # the entry keeps op and mean_op alive: their ids stay theirs
        _MEAN_AS_LOCAL[key] = (op, mean_op, _compile_mean_as_local(op, mean_op, M))
    return _MEAN_AS_LOCAL[key][2]


def _compile_mean_as_local(op, mean_op, M):
    if mean_op is not None:
        @njit
        def same(i, z, out):
            mean_op(z, out)

        return same

    @njit
    def averaged(i, z, out):
        tmp = np.empty_like(out)
        for c in range(out.shape[0]):
            out[c] = 0.0
        for j in range(M):
            op(j, z, tmp)
            for c in range(out.shape[0]):
                out[c] += tmp[c]
        for c in range(out.shape[0]):
            out[c] /= M

    return averaged


def _try_compiled(name, what, call):
    """Call a user function through numba once; a typing error becomes one clear line."""
    try:
        call()
    except Exception as exc:  # numba typing errors are long: keep the line that says why
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # numba colours its messages
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        why = [ln for ln in lines if not ln.startswith(("Failed in", "During:", "File ", "^", ">"))]
        first = (why or lines or [type(exc).__name__])[0]
        raise ProblemError(f"{name}: {what} could not be compiled or called by numba: {first}") from exc


class Problem:
    """A decentralized min-max problem (see the module docstring).

    Library families subclass this; user games come from :meth:`from_operator`.
    """

    family: str = "custom"
    references: tuple[str, ...] = ()
    samples_own_batches: bool = False  # True: the operator draws mini-batches (noise "sampled")

    def _setup(
        self,
        *,
        name: str,
        dim: int,
        dim_u: int,
        workers: int,
        fid: int,
        P,
        A,
        S,
        A_mean,
        S_mean,
        L: float,
        L_local: float,
        box: tuple[float, float] | tuple[np.ndarray, np.ndarray],
        lipschitz: str,
        mvi: str,
        r_min: float | None,
        solution,
        heterogeneity: float,
        heterogeneity_kind: str,
        params: dict,
        user_op=None,
        residuals=None,
    ) -> None:
        self.name = name
        self.dim = int(dim)
        self.dim_u = int(dim_u)
        self.workers = int(workers)
        self._fid = int(fid)
        self._P = np.ascontiguousarray(P, dtype=np.float64)
        self._A = np.ascontiguousarray(A, dtype=np.float64)
        self._S = np.ascontiguousarray(S, dtype=np.float64)
        self._A_mean = np.ascontiguousarray(A_mean, dtype=np.float64)
        self._S_mean = np.ascontiguousarray(S_mean, dtype=np.float64)
        self._user_op = user_op
        self._mean_op = None
        self.L = float(L)
        self.L_local = float(L_local)
        lo, hi = box
        self.box = (
            np.broadcast_to(np.asarray(lo, dtype=float), (self.dim,)).copy(),
            np.broadcast_to(np.asarray(hi, dtype=float), (self.dim,)).copy(),
        )
        self.lipschitz = lipschitz
        if mvi not in MVI_STATUSES:
            raise ProblemError(f"{name}: mvi must be one of {MVI_STATUSES}, got {mvi!r}")
        self.mvi = mvi
        self.r_min = None if r_min is None else float(r_min)
        self.solution = None if solution is None else np.asarray(solution, dtype=float).copy()
        self.heterogeneity = float(heterogeneity)
        self.heterogeneity_kind = heterogeneity_kind
        self.params = dict(params)
        self.noise = Noise()
        self.constraints = (None, None)
        # F_i(z*) in closed form, one row per worker (or one shared row); default: the constant terms
        if self.solution is None:
            self._residuals = None
        else:
            res = self._S if residuals is None else residuals
            self._residuals = np.array(np.broadcast_to(res, (self.workers, self.dim)), dtype=float)

    @property
    def zeta2(self) -> float | None:
        """Heterogeneity at the solution, (1/M) sum_i ||F_i(z*)||^2, from the family's closed form
        (None where z* is not known). Zero means the workers agree at z*: a decentralized method
        can then converge with any fixed number of gossip rounds."""
        if self._residuals is None:
            return None
        return float(np.mean(np.sum(self._residuals**2, axis=1)))

    def _shift_workers(self, shift, seed) -> None:
        """Add b_i to every F_i: Gaussian rows centred over the workers (sum_i b_i = 0) and scaled
        so that (1/M) sum_i ||b_i||^2 = shift^2 exactly. F, its Lipschitz constants, the Minty
        status and z* are unchanged; the workers now differ at z* (zeta2 grows by shift^2 plus the
        cross term with the family's own residuals). With one worker there is nothing to shift."""
        shift = self._check_nonneg(self.name, "shift", shift)
        self.params["shift"] = shift
        M, d = self.workers, self.dim
        if shift == 0.0 or M == 1:
            return
        rng = np.random.default_rng([int(seed), 505])
        b = rng.standard_normal((M, d))
        b -= b.mean(axis=0, keepdims=True)
        b *= shift / np.sqrt(np.mean(np.sum(b**2, axis=1)))
        self._S = np.ascontiguousarray(np.broadcast_to(self._S, (M, d)) + b)
        if self._residuals is not None:
            self._residuals = self._residuals + b
        if self.heterogeneity_kind == "matrix" and self.heterogeneity == 0:
            self.heterogeneity_kind = "shift"  # the matrices are all the same
        elif self.heterogeneity_kind != "shift":
            self.heterogeneity_kind += "+shift"

    # ------------------------------------------------------------------ validation helpers
    @staticmethod
    def _check_workers(name: str, workers) -> int:
        if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
            raise ProblemError(f"{name}: workers must be an integer >= 1, got {workers!r}")
        return int(workers)

    @staticmethod
    def _check_positive(name: str, field_name: str, value, integer: bool = False):
        ok = isinstance(value, (int, np.integer)) if integer else isinstance(
            value, (int, float, np.integer, np.floating)
        )
        if isinstance(value, bool) or not ok or not np.isfinite(value) or value <= 0:
            kind = "a positive integer" if integer else "a positive number"
            raise ProblemError(f"{name}: {field_name} must be {kind}, got {value!r}")
        return int(value) if integer else float(value)

    @staticmethod
    def _check_nonneg(name: str, field_name: str, value) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ProblemError(f"{name}: {field_name} must be a number >= 0, got {value!r}")
        if not np.isfinite(value) or value < 0:
            raise ProblemError(f"{name}: {field_name} must be a number >= 0, got {value!r}")
        return float(value)

    # ------------------------------------------------------------------ kernel form
    @property
    def nbytes(self) -> int:
        """Bytes of the arrays the problem holds (its data, per-worker matrices and shifts, its
        noise's samples), each buffer counted once."""
        return nbytes_of([*vars(self).values(), *vars(self.noise).values()])

    @property
    def kernel_data(self) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """(fid, P, A, S): what the engine kernels pass to ``library_rows``."""
        return self._fid, self._P, self._A, self._S

    @property
    def user_operator(self):
        """The numba-compiled user operator ``op(i, z, out)``, or None for library families."""
        return self._user_op

    @property
    def mean_operator(self):
        """The numba-compiled user mean operator ``mean_op(z, out)``, or None."""
        return self._mean_op

    # ------------------------------------------------------------------ evaluation
    def _as_points(self, z) -> tuple[np.ndarray, bool]:
        try:
            Z = np.asarray(z, dtype=np.float64)
        except (TypeError, ValueError):
            raise ProblemError(f"{self.name}: a point must be an array of {self.dim} numbers, "
                               f"got {z!r}") from None
        single = Z.ndim == 1
        if Z.ndim not in (1, 2) or Z.shape[-1] != self.dim:
            raise ProblemError(f"{self.name}: a point has shape ({self.dim},) and rows of points "
                               f"(n, {self.dim}), got {Z.shape}")
        return np.ascontiguousarray(Z.reshape(-1, self.dim)), single

    def _worker(self, i) -> int:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < self.workers:
            raise ProblemError(f"{self.name}: worker index must be an integer in "
                               f"0..{self.workers - 1}, got {i!r}")
        return int(i)

    def _family_rows(self, i: int, Z, A, S) -> np.ndarray:
        """The family's kernel at the rows of Z with worker i's data (A, S), exact."""
        out = np.zeros(Z.shape)
        # int64 arguments, as the engine passes them: the engine's compiled kernel serves both
        registry.kernel(self._fid)(Z, out, self._P, A, S, np.int64(i), no_state(),
                                   np.int64(0))
        return out

    def F_i(self, i: int, z) -> np.ndarray:
        """Local operator of worker ``i`` at z (one point of shape (d,) or rows of shape (n, d))."""
        i = self._worker(i)
        Z, single = self._as_points(z)
        if self._user_op is not None:
            out = np.empty_like(Z)
            for r in range(Z.shape[0]):
                self._user_op(int(i), Z[r], out[r])
        else:
            out = self._family_rows(int(i), Z, self._A, self._S)
        return out[0] if single else out

    def F(self, z) -> np.ndarray:
        """The mean operator F = (1/M) sum_i F_i, from the family's own aggregate data."""
        Z, single = self._as_points(z)
        if self._mean_op is not None:
            out = np.empty_like(Z)
            for r in range(Z.shape[0]):
                self._mean_op(Z[r], out[r])
        elif self._user_op is not None:
            out = np.mean([self.F_i(i, Z) for i in range(self.workers)], axis=0)
        else:
            out = self._family_rows(0, Z, self._A_mean, self._S_mean)
        return out[0] if single else out

    def F_i_all(self, z) -> np.ndarray:
        """F_i(z) of every worker at one point z, as rows (M, d)."""
        Z, single = self._as_points(z)
        if not single:
            raise ProblemError(f"{self.name}: F_i_all takes one point of shape ({self.dim},), "
                               f"got {Z.shape}")
        return np.array([self.F_i(i, Z[0]) for i in range(self.workers)])

    def F_mean_of_locals(self, z) -> np.ndarray:
        """(1/M) sum_i F_i(z), evaluated worker by worker (to compare with :meth:`F`)."""
        Z, single = self._as_points(z)
        out = np.mean([self.F_i(i, Z) for i in range(self.workers)], axis=0)
        return out[0] if single else out

    def jacobian(self, z, h: float = 1e-6) -> np.ndarray:
        """Jacobian of F at one point by central differences (for certification only)."""
        z = np.asarray(z, dtype=float)
        E = np.eye(self.dim) * h
        Zp = self.F(z[None, :] + E)
        Zm = self.F(z[None, :] - E)
        return ((Zp - Zm) / (2 * h)).T

    def minty_ratio(self, z) -> np.ndarray:
        """r(z) = <F(z), z - z*> / ||F(z)||^2 (needs a known solution)."""
        if self.solution is None:
            raise ProblemError(f"{self.name}: the Minty ratio needs a known solution z*")
        Z, single = self._as_points(z)
        Fz = self.F(Z)
        num = np.einsum("nd,nd->n", Fz, Z - self.solution)
        den = np.einsum("nd,nd->n", Fz, Fz)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.inf)
        return r[0] if single else r

    def sample_box(self, rng: np.random.Generator, n: int) -> np.ndarray:
        lo, hi = self.box
        return lo + (hi - lo) * rng.random((n, self.dim))

    def split(self, z) -> tuple[np.ndarray, np.ndarray]:
        """(u, v) of one point or of rows of points."""
        Z, single = self._as_points(z)
        Z = Z[0] if single else Z
        return Z[..., : self.dim_u], Z[..., self.dim_u :]

    # ------------------------------------------------------------------ noise
    def _natural_shifts(self):
        """Finite-sum components that come from the family's own data (None: no such data)."""
        return None

    def _noise_shifts(self, rng: np.random.Generator, samples: int, sigma: float) -> np.ndarray:
        """Default finite-sum components: centred Gaussian shifts scaled to mean power sigma^2."""
        c = rng.standard_normal((self.workers, samples, self.dim))
        if samples > 1:
            c -= c.mean(axis=1, keepdims=True)
        power = np.mean(np.sum(c**2, axis=2), axis=1, keepdims=True)
        power[power == 0] = 1.0
        return c * (sigma / np.sqrt(power))[:, :, None]

    def with_noise(
        self,
        sigma: float | None = None,
        batch: int = 1,
        kind: str | None = None,
        samples: int | None = None,
        seed: int = 0,
    ) -> Problem:
        """A copy of this problem with a stochastic oracle (see :class:`Noise`).

        ``kind`` defaults to "gaussian" when sigma > 0 and "none" otherwise. For "finite_sum" without
        ``sigma``, families with data of their own use it (natural noise); others need ``sigma``.
        """
        if kind is None:
            kind = "none" if sigma in (None, 0, 0.0) else "gaussian"
        if not isinstance(kind, str) or kind not in NOISE_KINDS:
            raise ProblemError(f"{self.name}: noise kind must be one of {NOISE_KINDS}, got {kind!r}")
        batch = self._check_positive(self.name, "batch", batch, integer=True)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ProblemError(f"{self.name}: seed must be an integer >= 0, got {seed!r}")
        if kind == "sampled" and not self.samples_own_batches:
            raise ProblemError(f"{self.name}: noise kind 'sampled' needs a problem that draws its own "
                               "mini-batches (a GAN or a data-driven family)")
        if kind == "sampled":
            clone = object.__new__(type(self))
            clone.__dict__.update(self.__dict__)
            clone.noise = Noise("sampled", float("nan") if sigma is None else float(sigma), batch)
            return clone
        natural = self._natural_shifts() if kind == "finite_sum" and sigma is None else None
        if kind == "none":
            noise = Noise()
        elif natural is not None:
            sigma = float(np.sqrt(np.mean(np.sum(natural**2, axis=2))))
            noise = Noise("finite_sum", sigma, batch, natural.shape[1], np.ascontiguousarray(natural))
        else:
            if sigma is None:
                raise ProblemError(f"{self.name}: noise kind {kind!r} needs sigma (no data of its own)")
            sigma = self._check_nonneg(self.name, "sigma", sigma)
            if kind == "gaussian":
                noise = Noise("gaussian", sigma, batch)
            else:
                n = 64 if samples is None else self._check_positive(
                    self.name, "samples", samples, integer=True
                )
                rng = np.random.default_rng([int(seed), 7919])
                shifts = np.ascontiguousarray(self._noise_shifts(rng, n, sigma))
                noise = Noise("finite_sum", sigma, batch, n, shifts)
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.noise = noise
        return clone

    def homogeneous(self) -> Problem:
        """A copy in which every worker holds the mean operator F (zeta2 = 0, no disagreement at
        z* or anywhere): the same game with the heterogeneity removed, for the negative controls
        of the claims about heterogeneity. Data-driven problems (shards, GANs) have no such copy:
        split their data iid instead."""
        if self.samples_own_batches or isinstance(self, ShardedProblem):
            raise ProblemError(f"{self.name}: a data-driven problem has no homogeneous copy; "
                               "split its data iid (split = 'iid') instead")
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.params = {**self.params, "homogeneous": True}
        clone.heterogeneity, clone.heterogeneity_kind = 0.0, "none"
        if self._residuals is not None:
            clone._residuals = np.zeros((1, self.dim))
        if self._user_op is None:
            clone._A, clone._S = self._A_mean, self._S_mean
        else:
            clone._user_op = _mean_as_local(self._user_op, self._mean_op, self.workers)
        return clone

    def with_constraints(self, u=None, v=None) -> Problem:
        """A copy whose players are projected (Ball, Box, Simplex) or prox-ed (L1) after each
        local step; see :mod:`minmaxlab.constraints`. ``None`` leaves a player unconstrained."""
        for who, c in (("u", u), ("v", v)):
            if c is not None and not hasattr(c, "encode"):
                raise ProblemError(f"{self.name}: constraint for {who} must be Ball, Box, Simplex or "
                                   f"L1, got {c!r}")
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.constraints = (u, v)
        return clone

    # ------------------------------------------------------------------ description
    def constants(self) -> dict:
        """The declared constants, as plain data (for tables and metadata)."""
        return {
            "name": self.name,
            "family": self.family,
            "dim": self.dim,
            "workers": self.workers,
            "L": self.L,
            "L_local": self.L_local,
            "lipschitz": self.lipschitz,
            "box": [float(self.box[0].min()), float(self.box[1].max())],
            "mvi": self.mvi,
            "r_min": self.r_min,
            "solution_known": self.solution is not None,
            "heterogeneity": self.heterogeneity,
            "heterogeneity_kind": self.heterogeneity_kind,
            "zeta2": self.zeta2,
            "noise": self.noise.describe(),
        }

    def spec(self) -> dict:
        """Enough to rebuild the problem: family, parameters, workers, noise."""
        return {
            "name": self.name,
            "family": self.family,
            "workers": self.workers,
            "params": dict(self.params),
            "constraints": [None if c is None else repr(c) for c in self.constraints],
            "noise": {
                "kind": self.noise.kind,
                "sigma": self.noise.sigma,
                "batch": self.noise.batch,
                "samples": self.noise.samples,
            },
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, workers={self.workers}, "
            f"L={self.L:.4g}, mvi={self.mvi!r}, noise={self.noise.describe()})"
        )

    # ------------------------------------------------------------------ user problems
    @classmethod
    def from_operator(
        cls,
        operator,
        dim: int,
        workers: int,
        L: float,
        solution=None,
        mvi: str | None = None,
        *,
        dim_u: int | None = None,
        box: tuple[float, float] = (-1.0, 1.0),
        L_local: float | None = None,
        r_min: float | None = None,
        name: str = "custom",
        mean_operator=None,
    ) -> Problem:
        """A user-defined game from ``operator(i, z, out)``, which writes F_i(z) into ``out``.

        ``operator`` is a plain Python function that numba can compile (or an already ``njit``-ed
        one). ``L`` is the Lipschitz constant the user claims for F; ``box`` is where it is claimed
        (and where :func:`minmaxlab.problems.certify` samples). ``mvi`` defaults to ``"unknown"``.
        With a ``solution`` z*, ``zeta2`` = (1/M) sum_i ||F_i(z*)||^2 is computed from the operator.

        ``mean_operator(z, out)`` (optional) writes the mean operator F(z) = (1/M) sum_i F_i(z).
        The metrics need F at every worker's point: without it each recorded point costs M^2 + M
        calls of ``operator`` (M calls per F), with it M + 1 calls of ``mean_operator``; with
        ``every_iteration=True`` (the default) that cost is paid at every iteration.
        :func:`minmaxlab.problems.certify` reports how far it is from the mean of the F_i.
        """
        workers = cls._check_workers(name, workers)
        dim = cls._check_positive(name, "dim", dim, integer=True)
        L = cls._check_positive(name, "L", L)
        if (not isinstance(box, (tuple, list)) or len(box) != 2
                or not all(isinstance(b, (int, float, np.integer, np.floating))
                           and not isinstance(b, bool) and np.isfinite(b) for b in box)
                or not box[0] < box[1]):
            raise ProblemError(f"{name}: box must be two finite numbers (lo, hi) with lo < hi, "
                               f"got {box!r}")
        if not callable(operator):
            raise ProblemError(f"{name}: operator must be a function operator(i, z, out)")
        z = np.zeros(dim) if solution is None else np.asarray(solution, dtype=float)
        if z.shape != (dim,):
            raise ProblemError(f"{name}: solution must have shape ({dim},), got {z.shape}")
        # run the plain Python function first: compiled code does not check bounds, so an
        # operator that writes past ``out`` would corrupt memory instead of raising
        points = _probe_points(z, box, dim)
        check_user_operator(name, getattr(operator, "py_func", operator), dim, workers, points)
        if mean_operator is not None and callable(mean_operator):
            check_user_operator(name, getattr(mean_operator, "py_func", mean_operator), dim, None,
                                points)
        op = operator if hasattr(operator, "py_func") else njit(operator)
        out = np.zeros(dim)
        _try_compiled(name, "operator(i, z, out)", lambda: op(0, np.ascontiguousarray(z), out))
        mean_op = None
        if mean_operator is not None:
            if not callable(mean_operator):
                raise ProblemError(f"{name}: mean_operator must be a function mean_operator(z, out)")
            mean_op = mean_operator if hasattr(mean_operator, "py_func") else njit(mean_operator)
            _try_compiled(name, "mean_operator(z, out)",
                          lambda: mean_op(np.ascontiguousarray(z), np.zeros(dim)))
        if dim_u is None:
            dim_u = dim // 2
        if isinstance(dim_u, bool) or not isinstance(dim_u, (int, np.integer)) or not 0 <= dim_u <= dim:
            raise ProblemError(f"{name}: dim_u must be an integer in 0..{dim} (the first dim_u "
                               f"coordinates are the minimizing player's), got {dim_u!r}")
        prob = object.__new__(Problem)
        prob._setup(
            name=name,
            dim=dim,
            dim_u=int(dim_u),
            workers=workers,
            fid=registry.FID_USER,
            P=np.zeros(1),
            A=np.zeros((1, 1, 1)),
            S=np.zeros((1, dim)),
            A_mean=np.zeros((1, 1, 1)),
            S_mean=np.zeros((1, dim)),
            L=L,
            L_local=L if L_local is None else L_local,
            box=box,
            lipschitz="box",
            mvi="unknown" if mvi is None else mvi,
            r_min=r_min,
            solution=solution,
            heterogeneity=0.0,
            heterogeneity_kind="user",
            params={"dim": dim},
            user_op=op,
        )
        prob._mean_op = mean_op
        if solution is not None:  # F_i(z*) from the operator itself
            prob._residuals = prob.F_i_all(prob.solution)
        return prob


def _probe_points(z, box, dim) -> list:
    lo, hi = box
    rng = np.random.default_rng(0)
    return [np.ascontiguousarray(z, dtype=float), lo + (hi - lo) * rng.random(dim)]


MAX_CHECKED_WORKERS = 4096


def check_user_operator(name: str, fn, dim: int, workers: int | None, points: list) -> None:
    """Call a user's operator as plain Python on every worker (at most MAX_CHECKED_WORKERS of
    them, evenly spread, first and last included) at a few points: it must write every entry of
    ``out`` with a finite number and touch nothing outside ``z`` and ``out``. ``workers`` None:
    a mean operator ``fn(z, out)``."""
    what = "operator(i, z, out)" if workers is not None else "mean_operator(z, out)"
    if workers is None:
        ids = [None]
    elif workers <= MAX_CHECKED_WORKERS:
        ids = range(workers)
    else:
        ids = np.unique(np.linspace(0, workers - 1, MAX_CHECKED_WORKERS).astype(int))
    for z in points:
        for i in ids:
            out = np.full(dim, np.nan)
            where = f"{what}" + (f" of worker {int(i)}" if i is not None else "")
            try:
                if i is None:
                    fn(z.copy(), out)
                else:
                    fn(int(i), z.copy(), out)
            except IndexError as exc:
                raise ProblemError(f"{name}: {where} reads or writes outside z or out (both have "
                                   f"dim = {dim} entries): {exc}") from None
            except Exception as exc:
                raise ProblemError(f"{name}: {where} raised {type(exc).__name__}: {exc}") from None
            bad = np.flatnonzero(~np.isfinite(out))
            if bad.size:
                raise ProblemError(f"{name}: {where} left out[{', '.join(map(str, bad[:5]))}]"
                                   f"{' ...' if bad.size > 5 else ''} unwritten or not finite "
                                   f"(it must write all {dim} entries of out with finite numbers)")


class ShardedProblem(Problem):
    """A problem whose workers hold data shards: A[i] holds worker i's rows (padded to the largest
    shard) and P ends with [M, n_0, ..., n_{M-1}], the worker count and the shard sizes."""

    def kernel_data_block(self, lo: int, hi: int):
        """Kernel data of workers lo..hi-1 (for the MPI backend): their shards, and P with their
        sizes (a single worker's block is cut to its own shard size)."""
        fid, P, A, S = self.kernel_data
        M = self.workers
        counts = P[len(P) - M:]
        P2 = np.concatenate([P[: len(P) - M - 1], [hi - lo], counts[lo:hi]])
        A2 = np.ascontiguousarray(A[lo:hi, : int(counts[lo:hi].max())])
        return fid, P2, A2, S
