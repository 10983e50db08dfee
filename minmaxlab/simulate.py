"""One run on the simulated network: validate, seed, call the kernel once, return a Trace.

    trace = mml.run(prob, topo, mml.DPOSG(eta=0.05, rounds=3), iterations=10_000, seed=1)
    trace.to_frame()                  # one row per recorded iteration
    trace.final_z, trace.final_x      # (workers, dim) local copies at the end
"""

from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits

from minmaxlab.algorithms import Algorithm
from minmaxlab.engine import metrics
from minmaxlab.errors import MinmaxlabError
from minmaxlab.problems.base import Problem
from minmaxlab.runsetup import (  # noqa: F401 (public names of a run, re-exported)
    BACKENDS,
    Trace,
    algorithm_state,
    algorithm_streams,
    check_run_options,
    default_start,
    kernels_for,
    make_trace,
    prepare,
    record_points,
    warn_quadratic_metrics,
    worker_streams,
)


def run(problem: Problem, topology, algorithm: Algorithm, iterations: int, seed: int = 0,
        z0=None, record=None, every_iteration: bool | None = None, blowup: float = 1e10,
        record_iterates: bool = False, backend: str = "simulator") -> Trace | None:
    """Run ``algorithm`` on ``problem`` over ``topology`` for ``iterations`` iterations.

    ``record``: when to record metrics (see :func:`record_points`). ``every_iteration``: evaluate the
    stationarity measures at every iteration so that their running averages and minima are exact
    (otherwise they run over the recorded iterations only); default True for the simulator and
    False for the MPI backend. A run whose iterates become non-finite or exceed ``blowup`` in
    absolute value stops with status "diverged"; its last row (status "diverged") holds NaN
    metrics at that iteration. ``record_iterates`` adds the coordinates of the network average
    zbar at each recorded iteration (columns ``zbar_0``, ``zbar_1``, ...).

    ``backend``: ``"simulator"`` (all workers in this process, one compiled call) or ``"mpi"``
    (one MPI rank per block of workers, see :func:`minmaxlab.mpi.run_mpi`: call it on every rank
    under ``mpiexec``; rank 0 gets the Trace, the other ranks None). Both give the same
    trajectories.
    """
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise MinmaxlabError(f"run: backend must be one of {BACKENDS}, got {backend!r}")
    check_run_options(seed, every_iteration, blowup, record_iterates)
    if backend == "mpi":
        from minmaxlab.mpi import run_mpi

        return run_mpi(problem, topology, algorithm, iterations, seed=seed, z0=z0, record=record,
                       every_iteration=False if every_iteration is None else every_iteration,
                       blowup=blowup, record_iterates=record_iterates)
    every_iteration = True if every_iteration is None else bool(every_iteration)
    try:
        s = prepare(problem, topology, algorithm, iterations, z0, record)
        M, d = s.M, s.d
        X = s.X
        Z = X.copy()
        G = np.zeros((M, d))
        S1, S2, S3 = algorithm_state(algorithm, M, d)
        state = algorithm_streams(algorithm, seed, M)
        out = np.full((s.record.shape[0] + 1, metrics.NCOL), np.nan)
        traj = np.full((s.record.shape[0] + 1 if record_iterates else 0, d), np.nan)
    except MemoryError as exc:
        raise MinmaxlabError(f"run: not enough memory for {problem.workers} workers x dim "
                             f"{problem.dim} over {iterations} iterations ({exc})") from None
    warn_quadratic_metrics(problem, every_iteration)  # the problem is known valid from here
    b1, b2, aeps = s.adam
    fid, P, A, S = s.kernel_data
    simulate = kernels_for(problem, algorithm=algorithm).simulate
    start = time.perf_counter()
    with threadpool_limits(limits=1):  # the kernels' BLAS products are small: no thread pool
        status, k_last, rows = simulate(
            algorithm.kernel_plan(), s.rounds,
            (fid, P, A, S, problem._A_mean, problem._S_mean, s.mean_loop),
            (s.noise_kind, s.noise_scale, s.batch, s.shifts),
            (s.indptr, s.indices, s.weights, s.avg_degree, s.cheb_rho, s.comp),
            (s.eta, b1, b2, aeps, s.eta_scale),
            (s.proj_kind, s.proj_a, s.proj_b, problem.dim_u),
            (X, Z, G, S1, S2, S3, state),
            (s.solution, s.has_solution, s.record, out, float(blowup), every_iteration, traj),
        )
    elapsed = time.perf_counter() - start
    return make_trace(problem, topology, algorithm, s, out, traj, rows, status, k_last, X, Z, seed,
                       every_iteration, record_iterates, elapsed)
