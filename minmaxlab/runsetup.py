"""The set-up of one run, shared by the backends (the simulator and MPI are peers over it).

It validates a run's inputs (clear errors naming the field), seeds the workers' random streams,
chooses the recorded iterations and the default start, builds every array the kernels read
(:class:`Setup`), and turns the kernels' record arrays into a :class:`Trace`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from minmaxlab.algorithms import OSG, Algorithm
from minmaxlab.constraints import encode_pair
from minmaxlab.engine import chain, compression, driver, metrics, oracle, streams
from minmaxlab.engine.plans import replays_samples, state_rows
from minmaxlab.errors import AlgorithmError, MinmaxlabError
from minmaxlab.meta import provenance
from minmaxlab.problems.base import Problem
from minmaxlab.topology import TimeVarying, Topology

_USER_KERNELS: dict[tuple[int, int, int, int], tuple] = {}
_NOISE_IDS = {"none": oracle.NOISE_NONE, "gaussian": oracle.NOISE_GAUSSIAN,
              "finite_sum": oracle.NOISE_FINITE_SUM, "sampled": oracle.NOISE_SAMPLED}
DEFAULT_RECORDS = 60


def worker_streams(seed: int, workers: int, offset: int = 0) -> np.ndarray:
    """The random streams of workers offset .. offset + workers - 1: Philox4x32-10 keyed by the
    seed, with the worker's global index in the counter (see :mod:`minmaxlab.engine.streams`), so
    worker i's draws depend on (seed, i) only, whichever process holds it, and no two workers'
    streams overlap."""
    return streams.seed_states(seed, workers, offset)


def algorithm_streams(algorithm: Algorithm, seed: int, workers: int, offset: int = 0) -> np.ndarray:
    """The workers' random streams (:func:`worker_streams`), with room for a mark per worker when
    the algorithm replays samples (its words STATE_WORDS.. hold the mark; the draws are the same)."""
    state = worker_streams(seed, workers, offset)
    if replays_samples(algorithm.plan()):
        state = np.ascontiguousarray(np.concatenate([state, state], axis=1))
    return state


def algorithm_state(algorithm: Algorithm, workers: int, dim: int, extra: int = 0):
    """The algorithm's own state rows S1, S2, S3 (:data:`minmaxlab.engine.plans.STATE_USE`:
    optimistic Adam's moments and last step, a gradient tracker, a STORM estimator; the public
    copies of Z and X in S2, S3 when the gossip is compressed), one row per worker for those it
    reads and one row in all for the others (8 x dim bytes per worker saved each). ``extra`` more
    rows after the workers' in the arrays that are gossiped (the rows an MPI rank receives from
    its neighbours: a tracker, the public copies)."""
    used = state_rows(algorithm.plan())
    hats = getattr(algorithm, "compression", "none") != "none"
    tracker = "gossip_y" in algorithm.plan()[0]
    rows = []
    for s in range(3):
        gossiped = (s == 0 and tracker) or (s > 0 and hats)
        n = workers + (extra if gossiped else 0) if s < used or (s > 0 and hats) else 1
        rows.append(np.zeros((n, dim)))
    return tuple(rows)


def record_points(iterations: int, record=None) -> np.ndarray:
    """Iterations at which metrics are recorded: log-spaced (default, about 60 points, always
    including 0 and the last), every iteration (``"all"``), ``n`` evenly spaced points
    (``"linear:n"``), ``n`` log-spaced points, or a list. Points are whole iterations, so ``n``
    asks for at most n points: those that round to the same iteration are recorded once."""
    if record is None:
        record = DEFAULT_RECORDS
    if isinstance(record, str):
        if record.startswith("linear:") and record[7:].isdigit() and int(record[7:]) >= 2:
            pts = np.round(np.linspace(0, iterations, int(record[7:])))
            return np.unique(pts).astype(np.int64)
        if record != "all":
            raise MinmaxlabError(f"record must be 'all', 'linear:N', a number of log-spaced points "
                                 f"or a list, got {record!r}")
        return np.arange(iterations + 1, dtype=np.int64)
    if isinstance(record, (int, np.integer)) and not isinstance(record, bool):
        if record < 2:
            raise MinmaxlabError(f"record needs at least 2 points, got {record}")
        pts = np.unique(np.round(np.logspace(0, np.log10(max(iterations, 1)), record - 1)))
        return np.unique(np.concatenate([[0], pts, [iterations]])).astype(np.int64)
    if not isinstance(record, (list, tuple, np.ndarray)) or not all(
            isinstance(r, (int, np.integer)) and not isinstance(r, bool) for r in record):
        raise MinmaxlabError(f"record must be 'all', 'linear:N', a number of log-spaced points "
                             f"(an integer >= 2) or a list of iterations (integers), got {record!r}")
    pts = np.unique(np.asarray(record, dtype=np.int64))
    if pts.size == 0 or pts[0] < 0 or pts[-1] > iterations:
        raise MinmaxlabError(f"record points must lie in 0..{iterations}")
    return pts


def default_start(problem: Problem) -> np.ndarray:
    """The default z0: the problem's own initial point if it has one (a GAN's initialization),
    else a fixed point in the middle half of its box (same for every seed, so that seeds vary
    only the noise)."""
    if hasattr(problem, "initial_point"):
        return problem.initial_point(0)
    lo, hi = problem.box
    u = np.random.default_rng(20200707).random(problem.dim)
    return (lo + hi) / 2 + 0.5 * (u - 0.5) * (hi - lo)


@dataclass
class Trace:
    """The result of one run: recorded metrics, final local copies, status and provenance."""

    columns: dict[str, np.ndarray]
    final_x: np.ndarray
    final_z: np.ndarray
    status: str
    iterations_done: int
    diverged_at: int | None
    label: str
    spec: dict = field(default_factory=dict)
    elapsed: float = 0.0

    def to_frame(self):
        import pandas as pd

        df = pd.DataFrame(self.columns)
        df["iteration"] = df["iteration"].astype(np.int64)
        df["status"] = "ok"
        if self.status == "diverged":
            df.loc[df.index[-1], "status"] = "diverged"
        return df

    def __repr__(self):
        return (f"Trace({self.label}, status={self.status!r}, iterations={self.iterations_done}, "
                f"rows={len(self.columns['iteration'])})")


def topology_arrays(topology, workers):
    if not isinstance(topology, (Topology, TimeVarying)):
        raise MinmaxlabError(f"run: topology must be a minmaxlab Topology or TimeVarying (e.g. "
                             f"mml.topology('ring', {workers})), got {topology!r}")
    seq = topology.sequence if hasattr(topology, "sequence") else [topology]
    mats = [t.neighbors for t in seq]
    for t in seq:
        if t.workers != workers:
            raise MinmaxlabError(f"the topology has {t.workers} workers but the problem has {workers}")
    nnz = max(m[1].shape[0] for m in mats)
    T = len(mats)
    avg_degree = float(np.mean([(m[1].shape[0] - workers) / workers for m in mats]))
    if T == 1:  # views of the topology's read-only arrays: no copy of a million rows
        return (*(a[np.newaxis] for a in mats[0]), avg_degree, seq[0])
    indptr = np.zeros((T, workers + 1), dtype=np.int64)
    indices = np.zeros((T, nnz), dtype=np.int64)
    weights = np.zeros((T, nnz), dtype=np.float64)
    for k, (ip, ix, w) in enumerate(mats):
        indptr[k] = ip
        indices[k, : ix.shape[0]] = ix
        weights[k, : w.shape[0]] = w
    for a in (indptr, indices, weights):  # read-only like the views above: one kernel type
        a.flags.writeable = False
    return indptr, indices, weights, avg_degree, None


BACKENDS = ("simulator", "mpi")
QUADRATIC_METRICS_WORKERS = 64  # from here on, M^2 operator calls per iteration dominate a run


def warn_quadratic_metrics(problem: Problem, every_iteration: bool) -> None:
    """A user operator without a mean operator makes the exact metrics cost M^2 + M operator
    calls per recorded point (F at each worker's point is the mean of all M local operators);
    with metrics at every iteration and many workers, say so once per run."""
    M = problem.workers
    if (problem.user_operator is not None and problem.mean_operator is None and every_iteration
            and M >= QUADRATIC_METRICS_WORKERS):
        import warnings

        warnings.warn(f"{problem.name}: exact metrics at every iteration cost M^2 + M = {M * M + M} "
                      "operator calls per iteration; pass mean_operator= to Problem.from_operator "
                      "(M + 1 calls) or every_iteration=False", RuntimeWarning, stacklevel=3)
MAX_SEED = 2**63 - 1  # seeds are stored in int64 columns


def check_run_options(seed, every_iteration, blowup, record_iterates) -> None:
    """The run options that are not part of the run's set-up: strict types, so that a seed of 1.7
    or every_iteration = "false" is refused instead of bent."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise MinmaxlabError(f"run: seed must be an integer in 0..2^63-1, got {seed!r}")
    for name, value in (("every_iteration", every_iteration), ("record_iterates", record_iterates)):
        if value is not None and not isinstance(value, (bool, np.bool_)):
            raise MinmaxlabError(f"run: {name} must be True or False, got {value!r}")
    if (isinstance(blowup, bool) or not isinstance(blowup, (int, float, np.integer, np.floating))
            or not 0 < blowup < np.inf):
        raise MinmaxlabError(f"run: blowup must be a positive finite number, got {blowup!r}")


@dataclass
class Setup:
    """A validated run, ready for a backend: every array the kernels read, for all M workers."""

    M: int
    d: int
    iterations: int
    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    avg_degree: float
    cheb_rho: float  # the rho of W for Chebyshev-accelerated gossip, -1: plain gossip
    comp: tuple  # (kind, param, gamma, feedback, floats per message) of compressed gossip
    rounds: np.ndarray
    X: np.ndarray
    eta: np.ndarray
    adam: tuple[float, float, float]
    eta_scale: np.ndarray  # the step-size schedule (empty: constant)
    noise_kind: int
    noise_scale: float
    batch: int
    shifts: np.ndarray
    proj_kind: np.ndarray
    proj_a: np.ndarray
    proj_b: np.ndarray
    record: np.ndarray
    solution: np.ndarray
    has_solution: bool
    mean_loop: bool
    kernel_data: tuple


def prepare(problem: Problem, topology, algorithm: Algorithm, iterations, z0, record) -> Setup:
    """Validate a run's inputs (clear errors naming the field) and build the kernels' arrays."""
    if not isinstance(problem, Problem):
        raise MinmaxlabError(f"run: problem must be a minmaxlab Problem, got {type(problem).__name__}")
    if not isinstance(algorithm, Algorithm):
        raise AlgorithmError(f"run: algorithm must be an algorithm spec (e.g. mml.DPOSG(eta=0.05)), "
                             f"got {algorithm!r}")
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 0:
        raise MinmaxlabError(f"run: iterations must be an integer >= 0, got {iterations!r}")
    iterations = int(iterations)
    M, d = problem.workers, problem.dim
    if isinstance(algorithm, OSG) and M != 1:
        raise AlgorithmError(f"osg runs one worker but the problem has {M}; use CPOSG for M workers")
    indptr, indices, weights, avg_degree, fixed = topology_arrays(topology, M)
    rho = 0.0  # computed only where it is read: a million-node rho is not free
    chebyshev = getattr(algorithm, "gossip", "plain") == "chebyshev"
    if getattr(algorithm, "schedule", None) == "eps" or chebyshev:
        if fixed is None:
            why = ("schedule 'eps' needs a fixed topology (it uses the rho of one W); give the "
                   "rounds of a time-varying sequence explicitly") if not chebyshev else (
                   "gossip 'chebyshev' needs a fixed topology (its polynomial is built on the "
                   "rho of one W); use gossip 'plain' with a time-varying sequence")
            raise AlgorithmError(why)
        rho = float(fixed.rho)
    rounds = algorithm.rounds_schedule(iterations, rho)

    if z0 is None:
        z0 = default_start(problem)
    try:
        z0 = np.asarray(z0, dtype=np.float64)
    except (TypeError, ValueError):
        raise MinmaxlabError(f"run: z0 must be an array of {d} numbers (or {M} rows of them), "
                             f"got {z0!r}") from None
    if z0.shape == (d,):
        X = np.tile(z0, (M, 1))
    elif z0.shape == (M, d):
        X = z0.copy()
    else:
        raise MinmaxlabError(f"run: z0 must have shape ({d},) or ({M}, {d}), got {z0.shape}")
    if not np.all(np.isfinite(X)):
        raise MinmaxlabError("run: z0 must be finite")

    noise = problem.noise
    proj_kind, proj_a, proj_b = encode_pair(problem.constraints)
    return Setup(
        M=M, d=d, iterations=iterations, indptr=indptr, indices=indices, weights=weights,
        avg_degree=avg_degree, cheb_rho=rho if chebyshev else -1.0,
        comp=compression_spec(algorithm, d), rounds=rounds, X=np.ascontiguousarray(X),
        eta=algorithm.eta_vector(d, problem.dim_u), adam=algorithm.adam(),
        eta_scale=algorithm.eta_scale(iterations),
        noise_kind=_NOISE_IDS[noise.kind],
        noise_scale=noise.sigma / np.sqrt(d * noise.batch) if noise.kind == "gaussian" else 0.0,
        batch=noise.batch,
        shifts=np.ascontiguousarray(noise.shifts if noise.kind == "finite_sum" else np.zeros((1, 1, 1))),
        proj_kind=np.asarray(proj_kind, dtype=np.int64), proj_a=np.asarray(proj_a, dtype=np.float64),
        proj_b=np.asarray(proj_b, dtype=np.float64),
        record=record_points(iterations, record),
        solution=np.ascontiguousarray(problem.solution if problem.solution is not None else np.zeros(d),
                                      dtype=np.float64),
        has_solution=problem.solution is not None,
        mean_loop=problem.user_operator is not None,
        kernel_data=problem.kernel_data,
    )


def compression_spec(algorithm: Algorithm, d: int) -> tuple:
    """(kind, param, gamma, feedback, floats per message) of the algorithm's gossip, for the
    kernels (:mod:`minmaxlab.engine.compression`); uncompressed: kind 0 and d floats."""
    kind = compression.COMPRESSIONS[getattr(algorithm, "compression", "none")]
    if kind == compression.COMP_NONE:
        return (kind, 0.0, 1.0, True, float(d))
    param = float(algorithm.keep if kind == compression.COMP_TOP_K else algorithm.levels)
    return (kind, param, float(algorithm.consensus_step), bool(algorithm.error_feedback),
            compression.message_floats(kind, param, d))


def kernels_for(problem: Problem, offset: int = 0, algorithm: Algorithm | None = None):
    """The engine's chain (:mod:`minmaxlab.engine.chain`) for the problem and the algorithm: the
    library's, or the one compiled for a user operator and/or a method's own kernel
    (``Algorithm.kernel``), cached per operator, kernel and row offset."""
    # read on the class: a numba dispatcher on an instance would bind it as a method
    phase = getattr(type(algorithm), "kernel", None) if algorithm is not None else None
    if problem.user_operator is None and phase is None:
        return chain.library()
    mean_op = problem.mean_operator if problem.user_operator is not None else None
    key = (id(problem.user_operator), id(mean_op), id(phase), int(offset))
    if key not in _USER_KERNELS:
        # the entry keeps the functions alive, so that their ids cannot be reused by others
        ns = chain.user_kernels(problem.user_operator, offset=offset, mean_op=mean_op, phase=phase)
        _USER_KERNELS[key] = (problem.user_operator, mean_op, phase, ns)
    return _USER_KERNELS[key][3]


def make_trace(problem, topology, algorithm, setup: Setup, out, traj, rows, status, k_last, X, Z,
                seed, every_iteration, record_iterates, elapsed, extra_columns=None,
                extra_spec=None) -> Trace:
    """The Trace of a finished run from the kernels' record arrays (shared by the backends)."""
    diverged = status == driver.STATUS_DIVERGED
    if diverged:
        out[rows, :] = np.nan
        out[rows, 0] = k_last
        rows += 1
    cols = {name: out[:rows, j].copy() for j, name in enumerate(metrics.COLUMNS)}
    if problem.solution is None:
        del cols["dist_to_solution"]
    if record_iterates:
        for c in range(setup.d):
            cols[f"zbar_{c}"] = traj[:rows, c].copy()
    for name, values in (extra_columns or {}).items():
        cols[name] = np.asarray(values[:rows], dtype=np.float64)
    spec = {
        "problem": problem.spec(),
        "topology": topology_spec(topology),
        "algorithm": algorithm.spec(),
        "label": algorithm.label,
        "iterations": setup.iterations,
        "seed": int(seed),
        "every_iteration": bool(every_iteration),
        **(extra_spec or {}),
        **provenance(),
    }
    return Trace(
        columns=cols,
        final_x=X,
        final_z=Z,
        status="diverged" if diverged else "ok",
        iterations_done=int(k_last),
        diverged_at=int(k_last) if diverged else None,
        label=algorithm.label,
        spec=spec,
        elapsed=elapsed,
    )


def topology_spec(topology) -> dict:
    if hasattr(topology, "summary"):
        s = topology.summary()
        return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in s.items()}
    return {"name": getattr(topology, "name", type(topology).__name__),
            "workers": getattr(topology, "workers", None)}
