"""The MPI backend: the simulator's run with one MPI rank per block of workers, same trajectories.

    # on every rank, e.g. `mpiexec -n 4 python my_run.py`
    trace = mml.run(prob, topo, mml.DPOSG(eta=0.05, rounds=3), iterations=10_000, backend="mpi")
    # or: mpiexec -n 4 minmaxlab run run.toml --backend mpi

Layout. M workers over R ranks in contiguous blocks of m = M / R (rank r holds workers
r m .. r m + m - 1); M must be a multiple of R and R <= M, else every rank raises a
:class:`~minmaxlab.errors.MinmaxlabError` naming both numbers before any work. Every rank builds the
same problem, topology and algorithm (the call is the same on every rank) and keeps only its
block: its rows of X and Z, its gradients, moments, random streams (worker i's stream depends on
(seed, i) only, see :func:`minmaxlab.simulate.worker_streams`), and its workers' data (the rows of
the problem's A and S when they have one row per worker, the finite-sum components).

Arithmetic. Each rank runs the algorithm's plan (``Algorithm.kernel_plan``) through the same phase
kernels as the simulator (``engine.plans.local_ops``: local steps, projections, oracle, optimistic
Adam), so its workers' oracle calls and updates are the simulator's, bit for bit.

Gossip. A distributed-graph communicator joins the ranks whose workers are neighbours (over every
matrix of a time-varying sequence). In each round a rank packs the rows its neighbour ranks need,
exchanges them with one ``Neighbor_alltoallv`` (a persistent request where the MPI library has
MPI-4 persistent collectives), and mixes each of its rows over its sparse entries in the same order
as the simulator's ``gossip``: gossip matches the simulator to the last bit. Rounds cycle through
a time-varying sequence with the same global round counter. None of the algorithms has two
gossips without local work between them, so each gossip is its own message per round: in DPOSG's
default form (and in D-EG) the x-gossip needs the gradient at the gossiped z, so its two gossips
are sequential; the single-exchange variant, D-SGDA and DPOAdam gossip one sequence (DPOAdam's
moment buffers stay local).

Exact averaging (CPOSG, CPOAdam). ``Allgather`` of the gradient blocks, then every rank adds the M
rows in worker order, exactly as the simulator does: bit-identical (at the price of receiving
M d floats instead of the d of an ``Allreduce``, whose summation order MPI chooses).

Metrics. At recorded iterations (log-spaced by default) the blocks of Z and X are gathered to rank
0, which computes the metric columns with the simulator's kernels. ``every_iteration=False`` is
the default here: no global synchronization between records, and the running averages and minima
then run over the recorded iterations (as in the simulator with ``every_iteration=False``).
``every_iteration=True`` costs one small collective per iteration (an ``Allgather`` of each
rank's partial sums of F(z_i) and z_i, 2 d + 1 floats): the running averages and minima then run
over every iteration and agree with the simulator's to rounding (the partial sums are added in rank
order, not worker by worker), while the recorded stationarity values themselves stay bit-identical.

Divergence. Checked at recorded iterations (at every iteration with ``every_iteration=True``): a
rank whose block is non-finite or exceeds ``blowup`` makes every rank stop with status "diverged"
at that iteration. Without ``every_iteration`` that is the first record at or after the
simulator's divergence.

Timing. Each rank measures the seconds of its iterations spent in MPI calls (communication) and
the rest (compute, including Python overhead); recording is timed apart. The trace gains the
columns ``compute_s_per_iter`` and ``comm_s_per_iter``: the maxima over ranks of the cumulative
seconds divided by the iterations done, at each recorded iteration. Its spec gains ``backend``,
``ranks`` and ``timing`` (per-rank totals).

Faults. An error on one rank after validation prints ``minmaxlab: rank R: <error>`` to stderr and
aborts the whole job (``MPI_Abort``), so that no rank hangs waiting for it. For tests, the
environment variable ``MINMAXLAB_MPI_FAIL_AT="rank:iteration"`` makes that rank raise at that
iteration.

Results. Rank 0 returns the :class:`~minmaxlab.simulate.Trace` (final_x and final_z of all M
workers, gathered); the other ranks return None.

Numerics. Everything above is bit-identical to the simulator except the BLAS path of the
library's bilinear, quadratic and Minty-bowl operators (one shared coupling matrix, d >= 32): the
simulator multiplies all M rows at once and a rank its m rows (a rank with fewer than 4 rows uses
the loop form), which may round differently. The trajectories then agree to rounding, which the
dynamics may amplify over many iterations (2.5e-14 relative after 500 DPOSG iterations on
minty_bowl_log, 8 workers on 4 ranks; bit-identical on 2 ranks).
"""

from __future__ import annotations

import os
import sys
import time
import traceback

import numpy as np

from minmaxlab.algorithms import Algorithm
from minmaxlab.engine import compression, driver, gossip, metrics, plans
from minmaxlab.engine.streams import no_state
from minmaxlab.errors import MinmaxlabError
from minmaxlab.problems.base import Problem
from minmaxlab.runsetup import (
    algorithm_state,
    algorithm_streams,
    check_run_options,
    kernels_for,
    make_trace,
    prepare,
)

FAIL_ENV = "MINMAXLAB_MPI_FAIL_AT"


class InjectedFailure(RuntimeError):
    """The failure requested by MINMAXLAB_MPI_FAIL_AT (for tests of the fault handling)."""


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError:
        raise MinmaxlabError("the mpi backend needs mpi4py and an MPI library: pip install "
                             "'minmaxlab[mpi]' (or mpi4py built against your system MPI)") from None
    return MPI


def check_ranks(workers: int, ranks: int) -> int:
    """The block size workers / ranks; a clear error unless ranks divides workers and ranks <= workers."""
    if ranks > workers or workers % ranks:
        ok = [r for r in range(1, workers + 1) if workers % r == 0]
        raise MinmaxlabError(
            f"mpi backend: {workers} workers cannot be split over {ranks} MPI ranks: the number of "
            f"workers must be a multiple of the number of ranks (at most one rank per worker); "
            f"with {workers} workers use {', '.join(map(str, ok))} ranks")
    return workers // ranks


def _fail_at(rank: int) -> int | None:
    """The iteration at which this rank must fail (MINMAXLAB_MPI_FAIL_AT="rank:iteration"), or None."""
    spec = os.environ.get(FAIL_ENV, "").strip()
    if not spec:
        return None
    parts = spec.split(":")
    if len(parts) != 2 or not all(p.strip().lstrip("-").isdigit() for p in parts):
        raise MinmaxlabError(f"{FAIL_ENV} must be 'rank:iteration' (two integers), got {spec!r}")
    r, k = (int(p) for p in parts)
    return k if r == rank else None


def block_data(problem: Problem, lo: int, hi: int) -> tuple:
    """The kernel data (fid, P, A, S) of workers lo..hi-1, whose row r is worker lo + r.

    A problem may define ``kernel_data_block(lo, hi)`` for a layout of its own; by default P is
    shared and A and S have one row (shared by all workers) or one row per worker (sliced)."""
    hook = getattr(problem, "kernel_data_block", None)
    if hook is not None:
        return hook(lo, hi)
    fid, P, A, S = problem.kernel_data
    M = problem.workers
    return fid, P, _split(A, M, lo, hi, "coupling data A"), _split(S, M, lo, hi, "constant terms S")


def _split(arr: np.ndarray, M: int, lo: int, hi: int, what: str) -> np.ndarray:
    """The rows of a per-worker array for workers lo..hi-1 (an array with one row is shared)."""
    if arr.shape[0] == 1 and M > 1:
        return arr
    if arr.shape[0] != M:
        raise MinmaxlabError(f"mpi backend: the problem's {what} has {arr.shape[0]} rows; it can be "
                             f"split over ranks only with 1 (shared) or {M} (one per worker)")
    return np.ascontiguousarray(arr[lo:hi])


# ---------------------------------------------------------------- the gossip plan of one rank
class _GossipPlan:
    """What one rank sends and receives in a gossip round with matrix q of the (stacked) topology,
    and its block's rows of each matrix with column indices into [own rows; received rows]."""

    def __init__(self, indptr, indices, weights, rank: int, ranks: int, m: int):
        T = indptr.shape[0]
        lo, hi = rank * m, rank * m + m
        need = [{} for _ in range(T)]  # q -> source rank -> global rows it sends us (sorted)
        give = [{} for _ in range(T)]  # q -> destination rank -> our global rows it needs (sorted)
        for q in range(T):
            for b in range(ranks):
                cols = np.unique(indices[q, indptr[q, b * m]: indptr[q, b * m + m]])
                owner = cols // m
                if b == rank:
                    for src in np.unique(owner[owner != rank]):
                        need[q][int(src)] = cols[owner == src]
                else:
                    mine = cols[owner == rank]
                    if mine.size:
                        give[q][b] = mine
        self.sources = sorted({s for d in need for s in d})
        self.destinations = sorted({s for d in give for s in d})
        self.T = T
        self.m = m
        self.send_rows, self.send_counts, self.recv_counts = [], [], []
        halo_max = 0
        nnz_max = max(int(indptr[q, hi] - indptr[q, lo]) for q in range(T))
        self.indptr = np.zeros((T, m + 1), dtype=np.int64)
        self.indices = np.zeros((T, max(nnz_max, 1)), dtype=np.int64)
        self.weights = np.zeros((T, max(nnz_max, 1)), dtype=np.float64)
        for q in range(T):
            send = [give[q].get(s, np.zeros(0, dtype=np.int64)) for s in self.destinations]
            recv = [need[q].get(s, np.zeros(0, dtype=np.int64)) for s in self.sources]
            self.send_rows.append(np.concatenate([np.zeros(0, dtype=np.int64), *send]) - lo)
            self.send_counts.append([len(x) for x in send])
            self.recv_counts.append([len(x) for x in recv])
            halo = np.concatenate([np.zeros(0, dtype=np.int64), *recv])
            halo_max = max(halo_max, halo.size)
            where = {int(j): m + h for h, j in enumerate(halo)}
            a, b = int(indptr[q, lo]), int(indptr[q, hi])
            self.indptr[q] = indptr[q, lo: hi + 1] - a
            cols = indices[q, a:b]
            self.indices[q, : b - a] = [c - lo if lo <= c < hi else where[int(c)] for c in cols]
            self.weights[q, : b - a] = weights[q, a:b]
        self.halo = halo_max
        self.send_max = max(len(r) for r in self.send_rows)

    def specs(self, MPI, Yext, sendbuf, width):
        """The (send, receive) buffer specifications of each matrix q for the rows of Yext."""
        out = []
        recv = Yext[self.m:].reshape(-1)
        send = sendbuf.reshape(-1)
        for q in range(self.T):
            sc = [c * width for c in self.send_counts[q]]
            rc = [c * width for c in self.recv_counts[q]]
            sd = list(np.concatenate([[0], np.cumsum(sc)[:-1]]).astype(int)) if sc else []
            rd = list(np.concatenate([[0], np.cumsum(rc)[:-1]]).astype(int)) if rc else []
            out.append(([send, (sc, sd), MPI.DOUBLE], [recv, (rc, rd), MPI.DOUBLE]))
        return out


class _Exchange:
    """Gossip rounds of one array (Z, X or a tracker) of a rank's block over the distributed
    graph: plain, or Chebyshev-accelerated when cheb_rho >= 0 (prev: a scratch block)."""

    def __init__(self, MPI, graph, plan: _GossipPlan, Yext, sendbuf, tmp, cheb=(-1.0, None),
                 choco=None):
        self.graph = graph
        self.plan = plan
        self.Yext = Yext
        self.sendbuf = sendbuf
        self.tmp = tmp
        self.cheb_rho, self.prev = cheb
        # compressed gossip: (the block's rows of the gossiped array, comp, streams, work); Yext
        # is then the public copies, whose rows the neighbours receive
        self.choco = choco
        self.specs = plan.specs(MPI, Yext, sendbuf, Yext.shape[1])
        self.requests = None
        if hasattr(graph, "Neighbor_alltoallv_init"):
            try:  # MPI-4 persistent collectives: the arguments are checked once
                self.requests = [graph.Neighbor_alltoallv_init(s, r) for s, r in self.specs]
            except (NotImplementedError, MPI.Exception):
                self.requests = None

    def _send(self, q: int) -> float:
        """The block's rows to the neighbours and theirs into Yext, for matrix q; seconds in MPI."""
        gossip.pack_rows(self.Yext, self.plan.send_rows[q], self.sendbuf)
        t0 = time.perf_counter()
        if self.requests is not None:
            req = self.requests[q]
            req.Start()
            req.Wait()
        else:
            self.graph.Neighbor_alltoallv(*self.specs[q])
        return time.perf_counter() - t0

    def rounds(self, t: int, round0: int) -> float:
        """t rounds of gossip from global round round0; returns the seconds spent in MPI. The
        Chebyshev rounds do the simulator's arithmetic (gossip.chebyshev_gossip) on the block."""
        plan = self.plan
        if self.choco is not None:
            return self._compressed(t, round0)
        spent = 0.0
        omegas = gossip.chebyshev_weights(self.cheb_rho, t) if self.cheb_rho >= 0 else None
        own = self.Yext[: plan.m]
        for r in range(t):
            q = (round0 + r) % plan.T
            spent += self._send(q)
            if omegas is None or r == 0:
                if omegas is not None:
                    self.prev[:] = own
                gossip.mix_block(self.Yext, self.tmp, q, plan.indptr, plan.indices, plan.weights)
                continue
            gossip.gossip_round(self.Yext, self.tmp, q, plan.indptr, plan.indices, plan.weights)
            gossip.chebyshev_combine(self.tmp, self.tmp, self.prev, omegas[r - 1])
            self.prev[:] = own
            own[:] = self.tmp
        return spent

    def _compressed(self, t: int, round0: int) -> float:
        """t rounds of compressed gossip (compression.choco_gossip's arithmetic on the block): the
        block's copies updated with its compressed differences, the copies exchanged (the
        message counted is the compressed one: see the module docstring), the step."""
        Y, comp, state, work = self.choco
        plan, hat = self.plan, self.Yext
        spent = 0.0
        for r in range(t):
            q = (round0 + r) % plan.T
            compression.compress_rows(Y, hat[: plan.m], work, comp, state)
            spent += self._send(q)
            gossip.gossip_round(hat, self.tmp, q, plan.indptr, plan.indices, plan.weights)
            compression.choco_step(Y, self.tmp, hat[: plan.m], comp[2])
        return spent

    def free(self):
        for req in self.requests or ():
            req.Free()


def _abort(comm, rank: int, exc: BaseException) -> None:
    """Report an error of this rank and end the whole job (no rank is left waiting)."""
    msg = f"{type(exc).__name__}: {exc}" if not isinstance(exc, MinmaxlabError) else str(exc)
    try:
        sys.stderr.write(f"minmaxlab: rank {rank}: {msg}\n")
        if not isinstance(exc, (MinmaxlabError, InjectedFailure, KeyboardInterrupt)):
            traceback.print_exception(exc, file=sys.stderr)
        sys.stderr.flush()
        sys.stdout.flush()
    finally:
        comm.Abort(1)


def abort_job_if_parallel(exc: BaseException) -> None:
    """Under a parallel MPI job, report this rank's error and end the whole job (the other ranks
    may already wait in a collective, which would never return); otherwise do nothing. The CLI
    calls it on any error, so that a failure before the run (a problem lookup on one rank) stops
    the job as a failure inside it does."""
    if "mpi4py.MPI" not in sys.modules or getattr(exc, "agreed_by_all_ranks", False):
        return
    MPI = sys.modules["mpi4py.MPI"]
    try:
        comm = MPI.COMM_WORLD
        if comm.Get_size() <= 1:
            return
        rank = comm.Get_rank()
    except Exception:  # MPI not initialized or already finalized: nothing to stop
        return
    _abort(comm, rank, exc)


# ---------------------------------------------------------------- the run
def run_mpi(problem: Problem, topology, algorithm: Algorithm, iterations: int, seed: int = 0,
            z0=None, record=None, every_iteration: bool = False, blowup: float = 1e10,
            record_iterates: bool = False, comm=None):
    """Run ``algorithm`` on ``problem`` over ``topology`` with one MPI rank per block of workers.

    Call it on every rank of ``comm`` (default: ``MPI.COMM_WORLD``) with the same arguments. The
    arguments mean what they mean in :func:`minmaxlab.simulate.run`; ``every_iteration`` defaults to
    False here (see the module docstring for what True costs). Rank 0 returns the Trace, with the
    final states of all workers and the extra columns ``compute_s_per_iter`` and
    ``comm_s_per_iter``; the other ranks return None.

    Raises :class:`~minmaxlab.errors.MinmaxlabError` on every rank, before any work, when the
    input is invalid or the number of ranks does not divide the number of workers. An error on one
    rank during the run aborts the whole job with ``minmaxlab: rank R: <error>`` on stderr.
    """

    MPI = _mpi()
    comm = MPI.COMM_WORLD if comm is None else comm
    rank, ranks = comm.Get_rank(), comm.Get_size()
    error = None
    try:  # validation: the same on every rank, but agreed on so that no rank goes on alone
        if not isinstance(problem, Problem):
            raise MinmaxlabError(f"run: problem must be a minmaxlab Problem, got "
                                 f"{type(problem).__name__}")
        check_run_options(seed, every_iteration, blowup, record_iterates)
        m = check_ranks(problem.workers, ranks)
        fail_at = _fail_at(rank)
        setup = prepare(problem, topology, algorithm, iterations, z0, record)
        lo, hi = rank * m, rank * m + m
        fid, P, A, S = block_data(problem, lo, hi)
        shifts = setup.shifts if problem.noise.kind != "finite_sum" else _split(
            setup.shifts, setup.M, lo, hi, "finite-sum components")
    except Exception as exc:  # re-raised below, after the agreement
        error = exc
    if comm.allreduce(error is not None, op=MPI.LOR):
        if error is None:
            error = MinmaxlabError("mpi backend: another rank rejected the run's input (see its "
                                   "message)")
        error.agreed_by_all_ranks = True  # every rank stops here: nothing to abort
        raise error
    try:
        return _Rank(MPI, comm, problem, topology, algorithm, setup, seed, bool(every_iteration),
                     float(blowup), bool(record_iterates), m, (fid, P, A, S), shifts, fail_at).run()
    except BaseException as exc:  # any error on one rank must end the whole job
        _abort(comm, rank, exc)


class _Rank:
    """One rank's share of a run (see :func:`run_mpi`): its block's state, the exchanges with the
    neighbour ranks, and on rank 0 the record arrays."""

    def __init__(self, MPI, comm, problem, topology, algorithm, setup, seed, every_iteration, blowup,
                 record_iterates, m, data, shifts, fail_at):

        self.MPI, self.comm = MPI, comm
        self.rank, self.ranks = comm.Get_rank(), comm.Get_size()
        self.root = self.rank == 0
        self.problem, self.topology, self.algorithm, self.s = problem, topology, algorithm, setup
        self.seed, self.every_iteration, self.blowup = seed, every_iteration, blowup
        self.record_iterates, self.fail_at = record_iterates, fail_at
        self.m, self.lo = m, self.rank * m
        self.ops, self.init_ops, self.counts = algorithm.kernel_plan()
        M, d = setup.M, setup.d
        self.kern = kernels_for(problem, offset=self.lo, algorithm=algorithm)
        self.plan = _GossipPlan(setup.indptr, setup.indices, setup.weights, self.rank, self.ranks, m)
        # the block's state; X and Z are the first m rows of arrays that receive the neighbours' rows
        self.Xext = np.zeros((m + self.plan.halo, d))
        self.Zext = np.zeros((m + self.plan.halo, d))
        self.X, self.Z = self.Xext[:m], self.Zext[:m]
        self.X[:] = setup.X[self.lo: self.lo + m]
        self.Z[:] = self.X
        averages = plans.OP_AVERAGE_G in self.ops or plans.OP_AVERAGE_G in self.init_ops
        self.Gfull = np.zeros((M, d)) if averages else None  # every worker's gradient, to average
        # a gossiped gradient receives the neighbours' rows after the block's, as X and Z do
        gossips_g = plans.OP_GOSSIP_G in self.ops or plans.OP_GOSSIP_G in self.init_ops
        self.Gext = np.zeros((m + self.plan.halo, d)) if gossips_g else None
        self.G = (self.Gfull[self.lo: self.lo + m] if averages else
                  self.Gext[:m] if self.Gext is not None else np.zeros((m, d)))
        self.Xall = None  # every worker's X, for a periodic average (allocated at the first)
        # gossiped state (a tracker, the public copies of compressed gossip) receives the
        # neighbours' rows after the block's, as X and Z do
        self.S1ext, self.S2ext, self.S3ext = algorithm_state(algorithm, m, d, extra=self.plan.halo)
        S1, S2, S3 = (a[:m] if a.shape[0] > m else a for a in (self.S1ext, self.S2ext, self.S3ext))
        fid, P, A, S = data
        # the arguments of engine.plans.local_ops after (ops, p, k)
        self.args = ((self.X, self.Z, self.G, S1, S2, S3,
                      algorithm_streams(algorithm, seed, m, offset=self.lo)),
                     (setup.eta, *(float(a) for a in setup.adam), setup.eta_scale), (fid, P, A, S),
                     (setup.noise_kind, setup.noise_scale, setup.batch, shifts),
                     (setup.proj_kind, setup.proj_a, setup.proj_b, problem.dim_u), np.empty(d))
        self.dim_u = problem.dim_u
        self.mean_args = (fid, setup.kernel_data[1], problem._A_mean, problem._S_mean, setup.mean_loop,
                          no_state())
        # the per-iteration reduction (every_iteration): [divergence flag, sum F(z_i), sum z_i,
        # sum ||F(z_i)||^2 and d - 1 zeros] (the partial sums of stationarity_partial)
        self.small = np.zeros(1 + 3 * d)
        self.smalls = np.zeros((self.ranks, 1 + 3 * d))
        self.FZl, self.tmpl = np.zeros((m, d)), np.zeros((m, d))
        # records: the blocks of Z and X gathered to rank 0, the metrics computed there
        self.local = np.zeros((2, m, d))
        nrec = setup.record.shape[0]
        if self.root:
            self.gathered = np.zeros((self.ranks, 2, m, d))
            self.Zfull, self.Xfull = np.zeros((M, d)), np.zeros((M, d))
            self.FZ, self.tmpM = np.zeros((M, d)), np.zeros((M, d))
            self.zbar, self.f1, self.tmp1 = np.zeros((1, d)), np.zeros((1, d)), np.zeros((1, d))
            self.part1, self.acc = np.zeros((1, 3, d)), np.zeros(d)
            self.gmy, self.gmw = np.zeros(d), np.zeros(d)
            self.stats = metrics.new_stats()
            self.out = np.full((nrec + 1, metrics.NCOL), np.nan)
            self.traj = np.full((nrec + 1 if record_iterates else 0, d), np.nan)
            self.times = np.full((nrec + 1, 2), np.nan)
        else:
            self.gathered = None
        self.oracle_calls, self.floats, self.gossip_rounds = 0.0, 0.0, 0
        self.row = 0
        self.comm_s = self.compute_s = self.record_s = 0.0

    # -- communication
    def _average(self) -> float:
        """Exact averaging of G over all workers (Allgather, then the simulator's ordered sum)."""
        t0 = time.perf_counter()
        self.comm.Allgather(self.MPI.IN_PLACE, [self.Gfull, self.MPI.DOUBLE])
        spent = time.perf_counter() - t0
        gossip.average_rows(self.Gfull)
        return spent

    def _average_x(self) -> float:
        """Exact averaging of X over all workers (the periodic average of the local-step
        methods): Allgather into every worker's rows, the simulator's ordered sum, the block's
        rows back."""
        if self.Xall is None:
            self.Xall = np.zeros((self.s.M, self.s.d))
        self.Xall[self.lo: self.lo + self.m] = self.X
        t0 = time.perf_counter()
        self.comm.Allgather(self.MPI.IN_PLACE, [self.Xall, self.MPI.DOUBLE])
        spent = time.perf_counter() - t0
        gossip.average_rows(self.Xall)
        self.X[:] = self.Xall[self.lo: self.lo + self.m]
        return spent

    def _gather(self) -> None:
        """The blocks of Z and X to rank 0 (into gathered)."""
        MPI = self.MPI
        self.local[0], self.local[1] = self.Z, self.X
        self.comm.Gather([self.local, MPI.DOUBLE],
                         [self.gathered, MPI.DOUBLE] if self.root else None, root=0)

    # -- one iteration
    def _iteration(self, k: int, exchanges) -> float:
        """The plan of iteration k on this block, with its communications; returns the seconds
        spent in MPI."""
        s = self.s
        t = int(s.rounds[k - 1]) if k > 0 else 0
        ops = self.ops if k > 0 else self.init_ops
        spent = 0.0
        p = 0
        while True:
            p = self.kern.local_ops(ops, p, k, *self.args)
            op = ops[p]
            if op == plans.OP_END:
                break
            if op == plans.OP_AVERAGE_G:
                spent += self._average()
            elif op == plans.OP_AVERAGE_X:
                spent += self._average_x() if t > 0 else 0.0
            else:
                spent += exchanges[op].rounds(t, self.gossip_rounds)
                self.gossip_rounds += t
            p += 1
        calls, sent = plans.costs(self.counts, k, t, s.d, s.M, s.avg_degree, s.comp[4])
        self.oracle_calls += calls
        self.floats += sent
        return spent

    def _reduce(self) -> tuple[bool, float]:
        """every_iteration between records: one Allgather of every rank's divergence flag and
        partial sums; rank 0 adds the running statistics. Returns (diverged, seconds in MPI)."""
        MPI, d = self.MPI, self.s.d
        self.small[0] = 0.0 if metrics.finite_below(self.X, self.blowup) else 1.0
        self.kern.stationarity_partial(self.Z, *self.mean_args, self.s.M, self.FZl, self.tmpl,
                                        self.small[1:].reshape(3, d))
        t0 = time.perf_counter()
        self.comm.Allgather([self.small, MPI.DOUBLE], [self.smalls, MPI.DOUBLE])
        spent = time.perf_counter() - t0
        if self.smalls[:, 0].max() > 0:
            return True, spent
        if self.root:
            s_loc, s_avg, s_w = self.kern.stationarity_finish(
                self.smalls[:, 1:].reshape(self.ranks, 3, d), *self.mean_args, self.s.M, self.zbar,
                self.f1, self.tmp1)
            metrics.accumulate(self.stats, s_loc, s_avg, s_w)
        return False, spent

    def _record(self, k: int) -> bool:
        """A recorded iteration: every rank's divergence flag and timings (Allreduce), then the
        blocks to rank 0, which writes the row with the simulator's kernels. Returns diverged."""
        MPI, s = self.MPI, self.s
        flags = np.array([0.0 if k == 0 or metrics.finite_below(self.X, self.blowup) else 1.0,
                          self.compute_s, self.comm_s])
        top = np.zeros(3)
        self.comm.Allreduce([flags, MPI.DOUBLE], [top, MPI.DOUBLE], op=MPI.MAX)
        if top[0] > 0:
            return True
        self._gather()
        if self.root:
            M, d = s.M, s.d
            self.Zfull[:] = self.gathered[:, 0].reshape(M, d)
            self.Xfull[:] = self.gathered[:, 1].reshape(M, d)
            s_loc, s_avg, s_w = self.kern.stationarity(self.Zfull, *self.mean_args, self.FZ,
                                                        self.tmpM, self.zbar, self.f1, self.tmp1,
                                                        self.part1)
            if k > 0 or not self.every_iteration:
                metrics.accumulate(self.stats, s_loc, s_avg, s_w)
            metrics.record_row(self.out, self.row, k, s_loc, s_avg, s_w, self.stats, self.Zfull,
                          self.Xfull, s.solution, s.has_solution, self.traj, self.acc,
                          self.oracle_calls, self.gossip_rounds, self.floats)
            self.out[self.row, metrics.COL_GRADIENT_MAPPING] = metrics.gradient_mapping(
                self.zbar, self.f1, s_avg, s.eta, s.proj_kind, s.proj_a, s.proj_b, self.dim_u,
                self.gmy, self.gmw)
            if k > 0:
                self.times[self.row] = top[1] / k, top[2] / k
        self.row += 1
        return False

    def _warm_up(self, exchanges) -> None:
        """Compile or load every kernel before the clock starts (on scratch copies)."""
        s, M, d = self.s, self.s.M, self.s.d
        self.kern.local_ops(np.zeros(1, dtype=np.int64), 0, 0, *self.args)
        ex = exchanges[plans.OP_GOSSIP_X]
        gossip.pack_rows(self.Xext, np.zeros(0, dtype=np.int64), ex.sendbuf)
        gossip.mix_block(self.Xext.copy(), ex.tmp.copy(), 0, self.plan.indptr, self.plan.indices,
                     self.plan.weights)
        if s.cheb_rho >= 0:
            gossip.gossip_round(self.Xext.copy(), ex.tmp.copy(), 0, self.plan.indptr,
                                self.plan.indices, self.plan.weights)
            gossip.chebyshev_combine(ex.tmp.copy(), ex.tmp.copy(), ex.tmp.copy(),
                                     gossip.chebyshev_weights(s.cheb_rho, 2)[0])
        plans.costs(self.counts, 0, 0, d, M, s.avg_degree, float(d))
        if s.comp[0] != compression.COMP_NONE:
            w = np.zeros(2 * d)
            compression.compress_rows(self.X.copy(), self.X.copy(), w, s.comp, self.args[0][6].copy())
            compression.choco_step(self.X.copy(), self.X.copy(), self.X.copy(), 0.5)
        metrics.finite_below(self.X, self.blowup)
        if self.Gfull is not None:
            gossip.average_rows(self.Gfull.copy())
        if self.every_iteration:
            self.kern.stationarity_partial(self.Z, *self.mean_args, M, self.FZl, self.tmpl,
                                            self.small[1:].reshape(3, d).copy())
            if self.root:
                self.kern.stationarity_finish(self.smalls[:, 1:].reshape(self.ranks, 3, d),
                                               *self.mean_args, M, self.zbar, self.f1, self.tmp1)
        if self.root:
            self.kern.stationarity(self.Zfull, *self.mean_args, self.FZ, self.tmpM, self.zbar,
                                    self.f1, self.tmp1, self.part1)
            metrics.accumulate(self.stats.copy(), 0.0, 0.0, 0.0)
            metrics.record_row(self.out.copy(), 0, 0, 0.0, 0.0, 0.0, self.stats, self.Zfull, self.Xfull,
                          s.solution, s.has_solution, self.traj.copy(), self.acc, 0.0, 0, 0.0)
            metrics.gradient_mapping(self.zbar, self.f1, 0.0, s.eta, s.proj_kind, s.proj_a, s.proj_b,
                                self.dim_u, self.gmy, self.gmw)

    def run(self):
        """The whole run on this rank; rank 0 returns the Trace, the others None."""
        s = self.s
        graph = self.comm.Create_dist_graph_adjacent(self.plan.sources, self.plan.destinations,
                                                     reorder=False)
        sendbuf = np.zeros((max(self.plan.send_max, 1), s.d))
        tmp = np.zeros((self.m, s.d))
        cheb = (s.cheb_rho, np.zeros((self.m, s.d)))
        exchanges = {}
        if s.comp[0] != compression.COMP_NONE:  # the copies travel: S2 for Z, S3 for X
            state, work = self.args[0][6], np.zeros(2 * s.d)
            for op, Y, hat in ((plans.OP_GOSSIP_Z, self.Z, self.S2ext),
                               (plans.OP_GOSSIP_X, self.X, self.S3ext)):
                exchanges[op] = _Exchange(self.MPI, graph, self.plan, hat, sendbuf, tmp,
                                          choco=(Y, s.comp, state, work))
        else:
            gossiped = [(plans.OP_GOSSIP_Z, self.Zext), (plans.OP_GOSSIP_X, self.Xext)]
            if plans.OP_GOSSIP_Y in self.ops:
                gossiped.append((plans.OP_GOSSIP_Y, self.S1ext))
            if self.Gext is not None:
                gossiped.append((plans.OP_GOSSIP_G, self.Gext))
            exchanges = {op: _Exchange(self.MPI, graph, self.plan, Y, sendbuf, tmp, cheb)
                         for op, Y in gossiped}
        rec, nrec = s.record, s.record.shape[0]
        status, k_last = driver.STATUS_OK, 0
        with _single_threaded_blas():
            self._warm_up(exchanges)
            wall = time.perf_counter()
            for k in range(0, s.iterations + 1):
                if self.fail_at == k:
                    raise InjectedFailure(f"failure requested at iteration {k} ({FAIL_ENV})")
                t_start = time.perf_counter()
                spent = self._iteration(k, exchanges)
                want = self.row < nrec and rec[self.row] == k
                diverged = False
                if self.every_iteration and k > 0 and not want:
                    diverged, more = self._reduce()
                    spent += more
                self.comm_s += spent
                self.compute_s += time.perf_counter() - t_start - spent
                k_last = k
                if not diverged and want:
                    t_rec = time.perf_counter()
                    diverged = self._record(k)
                    self.record_s += time.perf_counter() - t_rec
                if diverged:
                    status = driver.STATUS_DIVERGED
                    break
            wall = time.perf_counter() - wall
            self._gather()  # the final states of all workers
            mine = np.array([self.compute_s, self.comm_s, self.record_s])
            per_rank = np.zeros((self.ranks, 3)) if self.root else None
            self.comm.Gather([mine, self.MPI.DOUBLE], [per_rank, self.MPI.DOUBLE] if self.root else None,
                             root=0)
        for ex in exchanges.values():
            ex.free()
        graph.Free()
        if not self.root:
            return None
        return self._trace(status, k_last, per_rank, wall)

    def _trace(self, status, k_last, per_rank, wall):

        s = self.s
        M, d = s.M, s.d
        Z = np.ascontiguousarray(self.gathered[:, 0].reshape(M, d))
        X = np.ascontiguousarray(self.gathered[:, 1].reshape(M, d))
        done = max(k_last, 1)
        compute, comm_s = per_rank[:, 0].max() / done, per_rank[:, 1].max() / done
        if status == driver.STATUS_DIVERGED:
            self.times[self.row] = compute, comm_s
        timing = {
            "compute_s_per_iter": float(compute),
            "comm_s_per_iter": float(comm_s),
            "compute_s": per_rank[:, 0].tolist(),
            "comm_s": per_rank[:, 1].tolist(),
            "record_s": per_rank[:, 2].tolist(),
        }
        extra_spec = {"backend": "mpi", "ranks": self.ranks, "workers_per_rank": self.m,
                      "exact_average": "allgather, added in worker order", "timing": timing}
        return make_trace(self.problem, self.topology, self.algorithm, s, self.out, self.traj,
                           self.row, status, k_last, X, Z, self.seed, self.every_iteration,
                           self.record_iterates, wall,
                           extra_columns={"compute_s_per_iter": self.times[:, 0],
                                          "comm_s_per_iter": self.times[:, 1]},
                           extra_spec=extra_spec)


class _single_threaded_blas:
    """BLAS with one thread while the ranks run (they already share the cores)."""

    def __enter__(self):
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            self._ctx = None
            return self
        self._ctx = threadpool_limits(limits=1)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc):
        if self._ctx is not None:
            self._ctx.__exit__(*exc)
        return False


# ---------------------------------------------------------------- calibration
CALIBRATION_SIZES = (8, 64, 512, 4096, 32768, 262144, 1048576)


def _idle_wait(comm) -> None:
    """A barrier that sleeps instead of polling (so that idle ranks leave the cores to the others)."""
    req = comm.Ibarrier()
    while not req.Test():
        time.sleep(2e-4)


def ping_pong(comm=None, sizes=CALIBRATION_SIZES, seconds: float = 0.2) -> dict:
    """One-way point-to-point time between rank 0 and every other rank, for each message size
    (bytes), by ping-pong: half the round trip, averaged over about ``seconds`` of repetitions per
    size. The other ranks wait without polling meanwhile. Returns {"sizes", "times"} (times:
    (ranks - 1, sizes) seconds) on every rank; rank 0's times are the measured ones."""
    MPI = _mpi()
    comm = MPI.COMM_WORLD if comm is None else comm
    rank, ranks = comm.Get_rank(), comm.Get_size()
    times = np.zeros((max(ranks - 1, 0), len(sizes)))

    def trips(buf, other, n):
        for _ in range(n):
            if rank == 0:
                comm.Send([buf, MPI.DOUBLE], dest=other, tag=7)
                comm.Recv([buf, MPI.DOUBLE], source=other, tag=7)
            else:
                comm.Recv([buf, MPI.DOUBLE], source=other, tag=7)
                comm.Send([buf, MPI.DOUBLE], dest=other, tag=7)

    for partner in range(1, ranks):
        for j, size in enumerate(sizes):
            if rank in (0, partner):
                other = partner if rank == 0 else 0
                buf = np.zeros(max(int(size) // 8, 1))
                reps = np.zeros(1, dtype=np.int64)
                t0 = time.perf_counter()
                trips(buf, other, 5)  # warm-up and a first estimate
                if rank == 0:
                    est = (time.perf_counter() - t0) / 5
                    reps[0] = int(min(max(seconds / max(est, 1e-9), 10), 100_000))
                    comm.Send([reps, MPI.INT64_T], dest=other, tag=8)
                else:
                    comm.Recv([reps, MPI.INT64_T], source=0, tag=8)
                t0 = time.perf_counter()
                trips(buf, other, int(reps[0]))
                times[partner - 1, j] = (time.perf_counter() - t0) / (2 * int(reps[0]))
            _idle_wait(comm)
    return {"sizes": list(sizes), "times": times}


def fit_latency_bandwidth(sizes, times) -> tuple[float, float]:
    """(alpha, beta) of t = alpha + bytes / beta: alpha = the time of the smallest message, beta
    from a least-squares fit of t - alpha on the messages of at least 4 KiB."""
    sizes = np.asarray(sizes, dtype=float)
    times = np.asarray(times, dtype=float)
    alpha = float(times[np.argmin(sizes)])
    big = sizes >= 4096
    if not big.any():
        big = sizes > sizes.min()
    extra = np.maximum(times[big] - alpha, 1e-12)
    beta = float(np.sum(sizes[big] ** 2) / np.sum(sizes[big] * extra))
    return alpha, beta


def calibrate(comm=None, workers: int | None = None, dim: int = 20, iterations: int = 2000,
              rounds=(1, 3), seconds: float = 0.2, echo=print) -> dict | None:
    """Measure latency and bandwidth between ranks (:func:`ping_pong`), then time DPOSG on a ring
    (Minty bowl of dimension ``dim``, ``workers`` workers: 16 by default, or 4 per rank when the
    ranks do not divide 16) with each number of gossip rounds, and compare its measured
    communication seconds per iteration with the prediction of
    :class:`minmaxlab.costmodel.CostModel` with the measured alpha and beta. Call on every rank;
    rank 0 prints (``echo``) and returns the results, the other ranks return None."""
    from minmaxlab.algorithms import DPOSG
    from minmaxlab.costmodel import CostModel
    from minmaxlab.problems import problem
    from minmaxlab.topology import topology

    MPI = _mpi()
    comm = MPI.COMM_WORLD if comm is None else comm
    rank, ranks = comm.Get_rank(), comm.Get_size()
    if ranks < 2:
        raise MinmaxlabError("mpi-calibrate needs at least 2 MPI ranks, e.g. mpiexec -n 4 minmaxlab "
                             "mpi-calibrate")
    if workers is None:
        workers = 16 if 16 % ranks == 0 else 4 * ranks
    check_ranks(workers, ranks)
    pp = ping_pong(comm, seconds=seconds)
    fits = [fit_latency_bandwidth(pp["sizes"], pp["times"][p]) for p in range(ranks - 1)]
    alpha = float(np.median([f[0] for f in fits]))
    beta = float(np.median([f[1] for f in fits]))
    prob = problem("minty_bowl", workers=workers, dim=dim, seed=0).with_noise(sigma=0.1)
    topo = topology("ring", workers)
    rows = []
    for t in rounds:
        alg = DPOSG(eta=0.05, rounds=int(t))
        run_mpi(prob, topo, alg, iterations=20, record=2, comm=comm)  # warm-up (compiles or loads)
        tr = run_mpi(prob, topo, alg, iterations=iterations, record=2, comm=comm)
        if rank == 0:
            tm = tr.spec["timing"]
            deg = topo.max_degree
            serial = CostModel(alpha=alpha, beta=beta, grad_time=0.0).iteration_time(
                "dposg", dim, workers, deg=deg, rounds=int(t), oracle_calls=0)
            parallel = CostModel(alpha=alpha, beta=beta, grad_time=0.0, parallel=True).iteration_time(
                "dposg", dim, workers, deg=deg, rounds=int(t), oracle_calls=0)
            rows.append({"rounds": int(t), "compute_s_per_iter": tm["compute_s_per_iter"],
                         "comm_s_per_iter": tm["comm_s_per_iter"], "predicted_serialized": serial,
                         "predicted_parallel": parallel})
    if rank != 0:
        return None
    res = {"ranks": ranks, "cores": os.cpu_count(), "ping_pong": pp, "alpha": alpha, "beta": beta,
           "workers": workers, "dim": dim, "iterations": iterations, "max_degree": topo.max_degree,
           "dposg": rows}
    echo(format_calibration(res))
    return res


def format_calibration(res: dict) -> str:
    """The calibration results as text (see :func:`calibrate`)."""
    ranks, cores = res["ranks"], res["cores"]
    lines = [f"minmaxlab mpi-calibrate: {ranks} MPI ranks on {cores} cores"
             + (" (oversubscribed: ranks share cores, waiting counts as communication)"
                if cores and ranks > cores else ""), "",
             "point-to-point one-way time (ping-pong between rank 0 and rank p), seconds:"]
    pp = res["ping_pong"]
    head = f"  {'bytes':>9}" + "".join(f"{'0<->' + str(p):>11}" for p in range(1, ranks))
    lines.append(head)
    for j, size in enumerate(pp["sizes"]):
        lines.append(f"  {size:>9}" + "".join(f"{pp['times'][p][j]:>11.2e}" for p in range(ranks - 1)))
    lines += ["", f"fit t = alpha + bytes / beta (median over pairs): alpha = {res['alpha']:.2e} s "
              f"(latency), beta = {res['beta']:.3e} B/s (bandwidth)", ""]
    m = res["workers"] // ranks
    lines.append(f"DPOSG on a ring: minty_bowl dim {res['dim']}, {res['workers']} workers ({m} per rank), "
                 f"{res['iterations']} iterations; model: CostModel(alpha, beta), max degree "
                 f"{res['max_degree']}, 2 t rounds of alpha + deg * 8 d / beta (serialized) or "
                 "alpha + 8 d / beta (parallel)")
    lines.append(f"  {'rounds t':>8}{'compute s/it':>14}{'comm s/it':>12}{'model serial':>14}"
                 f"{'model parallel':>16}{'measured/model':>16}")
    for r in res["dposg"]:
        lines.append(f"  {r['rounds']:>8}{r['compute_s_per_iter']:>14.2e}{r['comm_s_per_iter']:>12.2e}"
                     f"{r['predicted_serialized']:>14.2e}{r['predicted_parallel']:>16.2e}"
                     f"{r['comm_s_per_iter'] / r['predicted_serialized']:>16.1f}")
    lines.append("comm s/it: seconds per iteration in MPI calls (maximum over ranks), including waiting "
                 "for slower neighbours; compute s/it: the rest of the iteration (kernels and Python).")
    return "\n".join(lines)
