"""Private numba kernels: the update arithmetic of every algorithm, gossip, oracle, noise, metrics.

Arrays and scalars only; no allocation in the iteration loop beyond the work arrays passed in; no
printing; no global state. The arithmetic is split into small phase kernels (the local steps
``_step_rows`` / ``_step_rows_inplace`` with their projections, the optimistic Adam step
``_adam_step``, the projections ``_project_rows``, the oracle ``_oracle_all``, gossip rounds
``_gossip`` / ``_mix_block``, exact averaging ``_average_rows``, the metrics
``_stationarity_partial`` / ``_stationarity_finish`` / ``_record_row``), and each algorithm is a
plan: the sequence of phases of one iteration (``PLANS``). Two drivers run the plans:
``_simulate`` runs a whole trajectory of all workers in one compiled call (so a run costs one call
from Python), and the MPI backend (``minmaxlab.mpi``) runs each rank's block of workers through
``_local_ops`` and communicates in between.

Operators are reached through ``_rows``, which is the library's ``_library_rows`` (F at a batch of
rows in one call). For user-defined operators, :func:`user_kernels` re-compiles the functions of
this module that reach ``_rows`` with ``_rows`` bound to the user's operator (without the disk
cache).
"""

import types

import numpy as np
from numba import njit

from minmaxlab._rng import _hz, _mix64, _normal, _uniform  # noqa: F401 (re-exported for tests)
from minmaxlab.problems._kernels import FID_BILINEAR, FID_COVARIANCE, _library_rows

# algorithm ids (see minmaxlab.algorithms)
ALG_DPOSG = 0
ALG_DPOSG_SINGLE = 1
ALG_CPOSG = 2
ALG_DSGDA = 3
ALG_DEG = 4
ALG_DPOADAM = 5
ALG_CPOADAM = 6

NOISE_NONE = 0
NOISE_GAUSSIAN = 1
NOISE_FINITE_SUM = 2
NOISE_SAMPLED = 3  # the operator draws its own mini-batch (data-driven problems, GANs)

PROJ_NONE = 0
PROJ_BALL = 1
PROJ_BOX = 2
PROJ_SIMPLEX = 3
PROJ_L1 = 4

# metric columns written by _simulate
COLUMNS = (
    "iteration", "stationarity_local", "stationarity_avg", "avg_stationarity_local",
    "avg_stationarity_avg", "min_stationarity_local", "min_stationarity_avg", "consensus_z",
    "consensus_x", "dist_to_solution", "oracle_calls", "gossip_rounds", "floats_sent_per_worker",
    "stationarity_workers", "gradient_mapping", "avg_stationarity_workers",
    "min_stationarity_workers",
)
COL_GRADIENT_MAPPING = 14
NCOL = len(COLUMNS)

STATUS_OK = 0
STATUS_DIVERGED = 1

_rows = _library_rows  # the operator every kernel calls; user_kernels() rebinds it



@njit(cache=True)
def _add_gaussian(state, i, O, orow, scale):
    for j in range(O.shape[1]):
        O[orow, j] += scale * _normal(state, i)


# ---------------------------------------------------------------- oracle
@njit(cache=True)
def _oracle_all(Z, O, fid, P, A, S, noise_kind, noise_scale, batch, shifts, state):
    """One stochastic oracle call of every worker i at Z[i] into O[i] (mini-batches of ``batch``)."""
    # worker and batch as int64, not literals: numba would compile one _rows per literal value
    _rows(fid, Z, O, P, A, S, np.int64(-1), state,
          np.int64(batch if noise_kind == NOISE_SAMPLED else 0))
    _add_noise(O, noise_kind, noise_scale, batch, shifts, state)


@njit(cache=True)
def _add_noise(O, noise_kind, noise_scale, batch, shifts, state):
    """The noise of an oracle call added to the exact operator values O (row i: worker i)."""
    M, d = O.shape
    if noise_kind == NOISE_GAUSSIAN:
        for i in range(M):
            _add_gaussian(state, i, O, i, noise_scale)
    elif noise_kind == NOISE_FINITE_SUM:
        n = shifts.shape[1]
        inv = 1.0 / batch
        for i in range(M):
            for _ in range(batch):
                j = int(_uniform(state, i) * n)
                if j >= n:
                    j = n - 1
                for c in range(d):
                    O[i, c] += inv * shifts[i, j, c]


@njit(cache=True)
def _oracle_is_mean(fid, A, S, Abar, Sbar, mean_loop, noise_kind):
    """True when every worker's exact operator is the mean operator F, evaluated the same way:
    a family whose workers share one matrix and one shift row, equal to the aggregate ones, and an
    oracle that is F plus additive noise. F(z_i) computed by the oracle then serves the metrics."""
    if mean_loop or noise_kind == NOISE_SAMPLED or fid < FID_BILINEAR or fid > FID_COVARIANCE:
        return False
    if A.shape != Abar.shape or S.shape != Sbar.shape or A.shape[0] != 1 or S.shape[0] != 1:
        return False
    Af = A.reshape(-1)
    Abf = Abar.reshape(-1)
    for q in range(Af.shape[0]):
        if Af[q] != Abf[q]:
            return False
    for c in range(S.shape[1]):
        if S[0, c] != Sbar[0, c]:
            return False
    return True


@njit(cache=True)
def _mean_rows(Z, O, tmp, fid, P, Abar, Sbar, mean_loop, nostate, M):
    """The mean operator F at every row of Z into O: from the aggregate data (Abar, Sbar), or, for
    user problems, by averaging the M local operators (``tmp`` has the shape of Z). ``nostate``: a
    stream array for the operator, unused by exact calls (passed in: an allocation here would cost
    more than F itself on small problems)."""
    if mean_loop:
        n, d = O.shape
        for r in range(n):
            for c in range(d):
                O[r, c] = 0.0
        for j in range(M):
            _rows(fid, Z, tmp, P, Abar, Sbar, j, nostate, np.int64(0))
            for r in range(n):
                for c in range(d):
                    O[r, c] += tmp[r, c]
        for r in range(n):
            for c in range(d):
                O[r, c] /= M
    else:
        _rows(fid, Z, O, P, Abar, Sbar, np.int64(0), nostate, np.int64(0))


# ---------------------------------------------------------------- projections / proximal maps
@njit(cache=True)
def _sumsq(y, lo, hi):
    """sum of y[c]^2 over lo <= c < hi in four interleaved partial sums (a fixed order: the same
    bits on every machine, and no serial chain of additions)."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    c = lo
    while c + 3 < hi:
        s0 += y[c] * y[c]
        s1 += y[c + 1] * y[c + 1]
        s2 += y[c + 2] * y[c + 2]
        s3 += y[c + 3] * y[c + 3]
        c += 4
    while c < hi:
        s0 += y[c] * y[c]
        c += 1
    return (s0 + s1) + (s2 + s3)


@njit(cache=True)
def _project_segment(kind, a, b, step, y, lo, hi, work):
    if kind == PROJ_NONE:
        return
    if kind == PROJ_BALL:  # Euclidean ball of radius a
        nrm = np.sqrt(_sumsq(y, lo, hi))
        if nrm > a:
            f = a / nrm
            for c in range(lo, hi):
                y[c] *= f
    elif kind == PROJ_BOX:  # [a, b]^n
        for c in range(lo, hi):
            if y[c] < a:
                y[c] = a
            elif y[c] > b:
                y[c] = b
    elif kind == PROJ_SIMPLEX:  # {y >= 0, sum y = a} by sorting (Held, Wolfe, Crowder)
        n = hi - lo
        for c in range(n):
            work[c] = y[lo + c]
        srt = np.sort(work[:n])[::-1]
        cum = 0.0
        theta = 0.0
        for k in range(n):
            cum += srt[k]
            t = (cum - a) / (k + 1)
            if srt[k] - t > 0:
                theta = t
        for c in range(lo, hi):
            v = y[c] - theta
            y[c] = v if v > 0 else 0.0
    elif kind == PROJ_L1:  # prox of step * a * ||.||_1: soft-thresholding (selects, no branches)
        thr = step * a
        for c in range(lo, hi):
            v = y[c]
            y[c] = v - thr if v > thr else (v + thr if v < -thr else 0.0)


@njit(cache=True)
def _project_rows(Y, proj_kind, proj_a, proj_b, eta, dim_u, work):
    if proj_kind[0] == PROJ_NONE and proj_kind[1] == PROJ_NONE:
        return
    for i in range(Y.shape[0]):
        _project_row(Y[i], proj_kind, proj_a, proj_b, eta, dim_u, work)


@njit(cache=True, inline="always")
def _project_row(y, proj_kind, proj_a, proj_b, eta, dim_u, work):
    """Both players' constraints on one row: u = y[:dim_u] with eta[0], v = y[dim_u:] with the
    last coordinate's eta."""
    d = y.shape[0]
    _project_segment(proj_kind[0], proj_a[0], proj_b[0], eta[0], y, np.int64(0), dim_u, work)
    _project_segment(proj_kind[1], proj_a[1], proj_b[1], eta[d - 1], y, dim_u, d, work)


@njit(cache=True)
def _flat_step(eta, proj_kind):
    """The step size when every coordinate has the same one and nothing is projected (the local
    steps are then one long loop: short rows would pay a loop each), else 0."""
    if proj_kind[0] != PROJ_NONE or proj_kind[1] != PROJ_NONE:
        return 0.0
    for c in range(1, eta.shape[0]):
        if eta[c] != eta[0]:
            return 0.0
    return eta[0]


@njit(cache=True)
def _step_rows(Y, X, G, eta, flat, proj_kind, proj_a, proj_b, dim_u, work):
    """Y = proj(X - eta G), row by row, each row projected while it is in cache (Y is not X: see
    :func:`_step_rows_inplace`); flat = :func:`_flat_step` (eta, proj_kind)."""
    M, d = Y.shape
    if flat > 0.0:
        Yf = Y.reshape(-1)
        Xf = X.reshape(-1)
        Gf = G.reshape(-1)
        for q in range(M * d):
            Yf[q] = Xf[q] - flat * Gf[q]
        return
    for i in range(M):
        y = Y[i]
        x = X[i]
        g = G[i]
        for c in range(d):
            y[c] = x[c] - eta[c] * g[c]
        _project_row(y, proj_kind, proj_a, proj_b, eta, dim_u, work)


@njit(cache=True)
def _step_rows_inplace(X, G, eta, flat, proj_kind, proj_a, proj_b, dim_u, work):
    """X = proj(X - eta G) in place (a separate loop: with Y = X the one above fails its overlap
    check and does not vectorize)."""
    M, d = X.shape
    if flat > 0.0:
        Xf = X.reshape(-1)
        Gf = G.reshape(-1)
        for q in range(M * d):
            Xf[q] -= flat * Gf[q]
        return
    for i in range(M):
        x = X[i]
        g = G[i]
        for c in range(d):
            x[c] -= eta[c] * g[c]
        _project_row(x, proj_kind, proj_a, proj_b, eta, dim_u, work)


@njit(cache=True)
def _copy_rows(Yf, Xf):
    """Y = X entrywise, on the flat views."""
    for q in range(Xf.shape[0]):
        Yf[q] = Xf[q]


@njit(cache=True)
def _adam_step(X, G, Mom, Vel, Dprev, eta, beta1, beta2, adam_eps, k):
    """Optimistic Adam at iteration k >= 1, row by row: D_k = mhat_k / (sqrt(vhat_k) + eps);
    X <- X - 2 eta D_k + eta D_{k-1}. The moments (Mom, Vel) and D_{k-1} (Dprev) are per row."""
    bc1 = 1.0 - beta1**k
    bc2 = 1.0 - beta2**k
    M, d = X.shape
    for i in range(M):
        for c in range(d):
            g = G[i, c]
            Mom[i, c] = beta1 * Mom[i, c] + (1.0 - beta1) * g
            Vel[i, c] = beta2 * Vel[i, c] + (1.0 - beta2) * g * g
            Dk = (Mom[i, c] / bc1) / (np.sqrt(Vel[i, c] / bc2) + adam_eps)
            X[i, c] = X[i, c] - 2.0 * eta[c] * Dk + eta[c] * Dprev[i, c]
            Dprev[i, c] = Dk


# ---------------------------------------------------------------- the algorithms as plans
# An algorithm's iteration is a plan: a sequence of local phases and communications. PLANS[alg] is
# the one definition of algorithm ``alg``; the simulator (``_simulate``: all workers in one block,
# communication by ``_gossip`` and ``_average_rows``) and the MPI backend (``_local_ops`` on each
# rank's block, communication by MPI) run the same plan through the same phase kernels.
OP_END = 0  # end of the plan
OP_STEP_Z = 1  # Z = proj(X - eta G)                       (local)
OP_STEP_X = 2  # X = proj(X - eta G)                       (local)
OP_ORACLE_Z = 3  # G = g(Z), one mini-batch oracle call    (local)
OP_ORACLE_X = 4  # G = g(X)                                (local)
OP_ADAM_X = 5  # X = proj(X - 2 eta D_k + eta D_{k-1})     (local, optimistic Adam)
OP_COPY_Z = 6  # Z = X                                     (local)
OP_GOSSIP_Z = 7  # Z = W^t Z: t gossip rounds              (communication)
OP_GOSSIP_X = 8  # X = W^t X                               (communication)
OP_AVERAGE_G = 9  # every row of G = the mean row          (communication: all-reduce)
OP_NAMES = ("end", "step_z", "step_x", "oracle_z", "oracle_x", "adam_x", "copy_z", "gossip_z",
            "gossip_x", "average_g")

_PLAN_TABLE = {
    # Z = W^t (X - eta G_prev); G = g(Z); X = W^t (X - eta G)
    ALG_DPOSG: (OP_STEP_Z, OP_GOSSIP_Z, OP_ORACLE_Z, OP_STEP_X, OP_GOSSIP_X),
    # B = W^t X; Z = B - eta G_prev; G = g(Z); X = B - eta G
    ALG_DPOSG_SINGLE: (OP_GOSSIP_X, OP_STEP_Z, OP_ORACLE_Z, OP_STEP_X),
    # one shared copy (all rows equal): z = x - eta gbar_prev; gbar = mean_i g_i(z); x = x - eta gbar
    ALG_CPOSG: (OP_STEP_Z, OP_ORACLE_Z, OP_AVERAGE_G, OP_STEP_X),
    # X = W^t (X - eta g(X)); Z = X
    ALG_DSGDA: (OP_ORACLE_X, OP_STEP_X, OP_GOSSIP_X, OP_COPY_Z),
    # Z = W^t (X - eta g(X)); X = W^t (X - eta g(Z))
    ALG_DEG: (OP_ORACLE_X, OP_STEP_Z, OP_GOSSIP_Z, OP_ORACLE_Z, OP_STEP_X, OP_GOSSIP_X),
    # optimistic Adam at Z = X, then gossip of the parameters (the moments stay local)
    ALG_DPOADAM: (OP_ORACLE_X, OP_ADAM_X, OP_GOSSIP_X, OP_COPY_Z),
    # the gradients are averaged exactly, then one shared optimistic Adam step
    ALG_CPOADAM: (OP_ORACLE_X, OP_AVERAGE_G, OP_ADAM_X, OP_COPY_Z),
}
# iteration 0 (initialization): one oracle call at z0 for the optimistic methods
_INIT_TABLE = {ALG_DPOSG: (OP_ORACLE_Z,), ALG_DPOSG_SINGLE: (OP_ORACLE_Z,),
               ALG_CPOSG: (OP_ORACLE_Z, OP_AVERAGE_G)}


def _plan_array(table):
    out = np.zeros((len(_PLAN_TABLE), 1 + max(len(p) for p in _PLAN_TABLE.values())), dtype=np.int64)
    for alg, ops in table.items():
        out[alg, : len(ops)] = ops
    return out


PLANS = _plan_array(_PLAN_TABLE)
INIT_PLANS = _plan_array(_INIT_TABLE)


def plan(alg: int, init: bool = False) -> tuple[str, ...]:
    """The phases of one iteration of algorithm ``alg`` (of the initialization with init=True)."""
    row = (INIT_PLANS if init else PLANS)[alg]
    return tuple(OP_NAMES[op] for op in row if op != OP_END)


@njit(cache=True)
def _local_ops(ops, p, k, X, Z, G, Mom, Vel, Dprev, eta, adam,
               fid, P, A, S, noise_kind, noise_scale, batch, shifts, state,
               proj_kind, proj_a, proj_b, dim_u, work):
    """Run the local phases ops[p], ops[p + 1], ... of iteration k on a block of workers (the rows
    of X, Z, G, ...; A, S, shifts and state hold the same workers' data; adam = (beta1, beta2,
    eps)), in place, up to the first communication or the end of the plan. Returns the index of
    that operation (ops[index] is OP_END at the end).

    The MPI backend calls this between its communications. ``_simulate`` runs the same phase
    kernels in the same dispatch inline (a call per segment would cost measurable time on small
    problems)."""
    flat = _flat_step(eta, proj_kind)
    while True:
        op = ops[p]
        if op == OP_STEP_Z:
            _step_rows(Z, X, G, eta, flat, proj_kind, proj_a, proj_b, dim_u, work)
        elif op == OP_STEP_X:
            _step_rows_inplace(X, G, eta, flat, proj_kind, proj_a, proj_b, dim_u, work)
        elif op == OP_ORACLE_Z:
            _oracle_all(Z, G, fid, P, A, S, noise_kind, noise_scale, batch, shifts, state)
        elif op == OP_ORACLE_X:
            _oracle_all(X, G, fid, P, A, S, noise_kind, noise_scale, batch, shifts, state)
        elif op == OP_ADAM_X:
            _adam_step(X, G, Mom, Vel, Dprev, eta, adam[0], adam[1], adam[2], k)
            _project_rows(X, proj_kind, proj_a, proj_b, eta, dim_u, work)
        elif op == OP_COPY_Z:
            _copy_rows(Z.reshape(-1), X.reshape(-1))
        else:
            return p
        p += 1


def plan_counts(alg: int, init: bool = False) -> tuple[int, int, int]:
    """(oracle calls, gossip phases, exact averages) of one iteration of algorithm ``alg`` (of its
    initialization with ``init``), counted from its plan: the one place an algorithm's costs come
    from (the engines' records and the cost model read them here)."""
    ops = plan(alg, init=init)
    return (sum(op.startswith("oracle") for op in ops), sum(op.startswith("gossip") for op in ops),
            ops.count("average_g"))


# per algorithm: (oracle calls, gossip phases, exact averages) of an iteration, then of the
# initialization; the kernels read them here instead of counting the plan at every iteration
PHASE_COUNTS = np.array([[*plan_counts(a), *plan_counts(a, init=True)] for a in range(len(PLANS))],
                        dtype=np.int64)


@njit(cache=True)
def _costs(alg, k, t, d, M, avg_degree):
    """(oracle calls per worker, floats sent per worker) of iteration k (k = 0: initialization)
    with t gossip rounds, model size d, M workers and average degree ``avg_degree``, from the
    plan's counts: an oracle phase is one call, a gossip phase t rounds of d floats to each
    neighbour, an exact average 2 d (M - 1) / M floats (ring all-reduce)."""
    c = 3 if k == 0 else 0
    calls, gossips, averages = PHASE_COUNTS[alg, c], PHASE_COUNTS[alg, c + 1], PHASE_COUNTS[alg, c + 2]
    return float(calls), gossips * (t * d * avg_degree) + averages * (2.0 * d * (M - 1) / M)


# ---------------------------------------------------------------- gossip
@njit(cache=True)
def _gossip_round(Y, out, m, indptr, indices, weights):
    """One round with the stacked sparse matrix m: out[i] = sum_k weights[m, k] Y[indices[m, k]]
    over row i's entries, in their stored order, for every row i of ``out`` (Y may have more rows
    than ``out``: a block's own rows followed by rows received from other blocks)."""
    M, d = out.shape
    if d >= 8:  # long rows: contiguous axpy over coordinates (vectorized)
        for i in range(M):
            k0 = indptr[m, i]
            w = weights[m, k0]
            j = indices[m, k0]
            for c in range(d):
                out[i, c] = w * Y[j, c]
            for k in range(k0 + 1, indptr[m, i + 1]):
                w = weights[m, k]
                j = indices[m, k]
                for c in range(d):
                    out[i, c] += w * Y[j, c]
    else:  # short rows: scalar sums over neighbours (the same additions in the same order)
        for i in range(M):
            k0 = indptr[m, i]
            k1 = indptr[m, i + 1]
            for c in range(d):
                acc = weights[m, k0] * Y[indices[m, k0], c]
                for k in range(k0 + 1, k1):
                    acc += weights[m, k] * Y[indices[m, k], c]
                out[i, c] = acc


@njit(cache=True)
def _gossip(Y, tmp, t, round0, indptr, indices, weights):
    """Y <- W_{r+t-1} ... W_{r} Y in place (t rounds, r = round0); the sparse matrices are stacked
    (row m of indptr/indices/weights is W_m, one row: a fixed topology) and used cyclically.
    Rounds alternate between Y and tmp; returns the number of rounds done."""
    T = indptr.shape[0]
    for r in range(t):
        m = (round0 + r) % T
        if r % 2 == 0:
            _gossip_round(Y, tmp, m, indptr, indices, weights)
        else:
            _gossip_round(tmp, Y, m, indptr, indices, weights)
    if t % 2 == 1:
        _copy_rows(Y.reshape(-1), tmp.reshape(-1))
    return t


@njit(cache=True)
def _pack_rows(Y, rows, buf):
    """buf[q] = Y[rows[q]]: the rows one block sends to the other blocks in one gossip round."""
    d = Y.shape[1]
    for q in range(rows.shape[0]):
        r = rows[q]
        for c in range(d):
            buf[q, c] = Y[r, c]


@njit(cache=True)
def _mix_block(Yext, tmp, m, indptr, indices, weights):
    """One gossip round of a block: Yext holds the block's own n rows followed by the rows
    received from other blocks, and row i of the block's sparse matrix m (indptr/indices/weights,
    n rows, indices into Yext) lists its entries in the order of the full matrix, so that every
    row is the same sum in the same order as in :func:`_gossip`. Yext[:n] <- the mixed rows."""
    _gossip_round(Yext, tmp, m, indptr, indices, weights)
    n, d = tmp.shape
    for i in range(n):
        for c in range(d):
            Yext[i, c] = tmp[i, c]


@njit(cache=True)
def _average_rows(Y):
    """Exact averaging (all-reduce): every row becomes the mean row."""
    M, d = Y.shape
    for c in range(d):
        s = 0.0
        for i in range(M):
            s += Y[i, c]
        s /= M
        for i in range(M):
            Y[i, c] = s


# ---------------------------------------------------------------- metrics
# (the small metric kernels are inlined: _simulate calls them at every iteration)
@njit(cache=True, inline="always")
def _stationarity_partial(Z, fid, P, Abar, Sbar, mean_loop, nostate, M, FZ, tmpM, part):
    """Partial sums over a block of workers (the rows of Z; M = all workers): FZ[i] = F(z_i) with
    the mean operator F, part[0] = sum_i F(z_i) and part[1] = sum_i z_i, added in row order, and
    part[2, 0] = sum_i ||F(z_i)||^2 (the rest of part[2] is zero). Work array: tmpM (shape of Z)."""
    _mean_rows(Z, FZ, tmpM, fid, P, Abar, Sbar, mean_loop, nostate, M)
    _partial_sums(Z, FZ, part)


# not inline="always": inlined both into the library's chain and into a user operator's recompiled
# one, numba reused a mutated copy of its IR in the second (wrong sums, caught by the MPI tests)
@njit(cache=True)
def _partial_sums(Z, FZ, part):
    """part[0] = sum_i FZ[i], part[1] = sum_i Z[i], part[2, 0] = sum_i ||FZ[i]||^2, in row order."""
    n, d = Z.shape
    for c in range(d):
        part[0, c] = 0.0
        part[1, c] = 0.0
        part[2, c] = 0.0
    sw = 0.0
    if d > 8:  # long rows: the column sums vectorize over c
        for i in range(n):
            for c in range(d):
                part[0, c] += FZ[i, c]
                part[1, c] += Z[i, c]
                sw += FZ[i, c] * FZ[i, c]
    else:  # short rows: each column summed in a register (the same additions in the same order)
        for c in range(d):
            f = 0.0
            z = 0.0
            for i in range(n):
                f += FZ[i, c]
                z += Z[i, c]
            part[0, c] = f
            part[1, c] = z
        for i in range(n):
            for c in range(d):
                sw += FZ[i, c] * FZ[i, c]
    part[2, 0] = sw


@njit(cache=True, inline="always")
def _stationarity_finish(parts, fid, P, Abar, Sbar, mean_loop, nostate, M, zbar, f1, tmp1):
    """(||(1/M) sum_i F(z_i)||^2, ||F(zbar)||^2, (1/M) sum_i ||F(z_i)||^2) from the partial sums
    of consecutive blocks of workers (parts[b] from :func:`_stationarity_partial`), added in block
    order. Work arrays: zbar, f1, tmp1 (1, d)."""
    B, _, d = parts.shape
    for c in range(d):
        f1[0, c] = 0.0
        zbar[0, c] = 0.0
    s_w = 0.0
    for b in range(B):
        s_w += parts[b, 2, 0]
        for c in range(d):
            f1[0, c] += parts[b, 0, c]
            zbar[0, c] += parts[b, 1, c]
    s_loc = 0.0
    for c in range(d):
        a = f1[0, c] / M
        s_loc += a * a
        zbar[0, c] /= M
    _mean_rows(zbar, f1, tmp1, fid, P, Abar, Sbar, mean_loop, nostate, M)
    s_avg = 0.0
    for c in range(d):
        s_avg += f1[0, c] * f1[0, c]
    return s_loc, s_avg, s_w / M


@njit(cache=True, inline="always")
def _stationarity(Z, fid, P, Abar, Sbar, mean_loop, nostate, FZ, tmpM, zbar, f1, tmp1, part,
                  have_fz=False):
    """(||(1/M) sum_i F(z_i)||^2, ||F(zbar)||^2, (1/M) sum_i ||F(z_i)||^2) over all M workers (the
    rows of Z). Work arrays: FZ, tmpM (M, d); zbar, f1, tmp1 (1, d); part (1, 3, d). On return FZ
    holds F(z_i) in row i; with ``have_fz`` it holds them already (computed by the oracle)."""
    M = Z.shape[0]
    if have_fz:
        _partial_sums(Z, FZ, part[0])
    else:
        _stationarity_partial(Z, fid, P, Abar, Sbar, mean_loop, nostate, M, FZ, tmpM, part[0])
    return _stationarity_finish(part, fid, P, Abar, Sbar, mean_loop, nostate, M, zbar, f1, tmp1)


NSTATS = 7  # the running statistics of _accumulate


@njit(cache=True, inline="always")
def _accumulate(stats, s_loc, s_avg, s_w):
    """Running sums and minima of the three stationarity measures:
    stats = (sum_loc, sum_avg, min_loc, min_avg, terms, sum_workers, min_workers)."""
    stats[0] += s_loc
    stats[1] += s_avg
    if s_loc < stats[2]:
        stats[2] = s_loc
    if s_avg < stats[3]:
        stats[3] = s_avg
    stats[4] += 1.0
    stats[5] += s_w
    if s_w < stats[6]:
        stats[6] = s_w


def new_stats() -> np.ndarray:
    """Fresh running statistics for :func:`_accumulate` (sums 0, minima +inf)."""
    stats = np.zeros(NSTATS)
    stats[2] = stats[3] = stats[6] = np.inf
    return stats


@njit(cache=True)
def _consensus(Y, mean):
    M, d = Y.shape
    for c in range(d):
        mean[c] = 0.0
    for i in range(M):
        for c in range(d):
            mean[c] += Y[i, c]
    for c in range(d):
        mean[c] /= M
    s = 0.0
    for i in range(M):
        for c in range(d):
            v = Y[i, c] - mean[c]
            s += v * v
    return s / M


@njit(cache=True)
def _record_row(out, row, k, s_loc, s_avg, s_w, stats, Z, X, solution, has_solution, traj, acc,
                oracle_calls, gossip_rounds, floats):
    """Write the metric columns COLUMNS of iteration k into out[row] (and zbar into traj[row]
    when traj has that row), from all M workers' Z and X, the three stationarity measures and
    the running statistics (see :func:`_accumulate`). Work array: acc (d,)."""
    M, d = Z.shape
    n_terms = stats[4]
    out[row, 0] = k
    out[row, 1] = s_loc
    out[row, 2] = s_avg
    out[row, 3] = stats[0] / n_terms if n_terms > 0 else s_loc
    out[row, 4] = stats[1] / n_terms if n_terms > 0 else s_avg
    out[row, 5] = stats[2] if n_terms > 0 else s_loc
    out[row, 6] = stats[3] if n_terms > 0 else s_avg
    out[row, 7] = _consensus(Z, acc)
    out[row, 8] = _consensus(X, acc)
    if has_solution:
        _consensus(Z, acc)  # acc = zbar
        s = 0.0
        for c in range(d):
            v = acc[c] - solution[c]
            s += v * v
        out[row, 9] = s
    else:
        out[row, 9] = np.nan
    if traj.shape[0] > row:
        _consensus(Z, acc)  # acc = zbar
        for c in range(d):
            traj[row, c] = acc[c]
    out[row, 10] = oracle_calls
    out[row, 11] = gossip_rounds
    out[row, 12] = floats
    out[row, 13] = s_w
    out[row, 15] = stats[5] / n_terms if n_terms > 0 else s_w
    out[row, 16] = stats[6] if n_terms > 0 else s_w


@njit(cache=True)
def _gradient_mapping(zbar, fbar, s_avg, eta, proj_kind, proj_a, proj_b, dim_u, y, work):
    """||(zbar - prox(zbar - eta F(zbar))) / eta||^2 with each player's projection or prox (and
    its step size), from zbar and fbar = F(zbar) (rows of shape (1, d)); s_avg = ||F(zbar)||^2
    when no player is constrained (the mapping is then F itself). Work arrays: y, work (d,)."""
    if proj_kind[0] == PROJ_NONE and proj_kind[1] == PROJ_NONE:
        return s_avg
    d = y.shape[0]
    for c in range(d):
        y[c] = zbar[0, c] - eta[c] * fbar[0, c]
    _project_row(y, proj_kind, proj_a, proj_b, eta, dim_u, work)
    s = 0.0
    for c in range(d):
        v = (zbar[0, c] - y[c]) / eta[c]
        s += v * v
    return s


@njit(cache=True)
def _finite_below(Y, bound):
    """True if every entry is finite and at most ``bound`` in absolute value (branch-free scan:
    the comparison is false for NaN; Y is C-contiguous)."""
    Yf = Y.reshape(-1)
    ok = True
    for q in range(Yf.shape[0]):
        ok &= abs(Yf[q]) <= bound
    return ok


# ---------------------------------------------------------------- the run
@njit(cache=True)
def _simulate(alg, fid, P, A, S, Abar, Sbar, mean_loop,
              noise_kind, noise_scale, batch, shifts,
              indptr, indices, weights, avg_degree, rounds,
              eta, beta1, beta2, adam_eps,
              proj_kind, proj_a, proj_b, dim_u,
              X, Z, G, Mom, Vel, Dprev, state,
              solution, has_solution, record, out, blowup, every_iteration, traj):
    """Run ``rounds.shape[0]`` iterations of algorithm ``alg`` from the state (X, Z, G, ...), in place.

    Every iteration runs the plan ``PLANS[alg]`` (``INIT_PLANS[alg]`` at iteration 0) on all workers
    as one block: the local phases as in :func:`_local_ops`, gossip by :func:`_gossip` and exact
    averaging by :func:`_average_rows`. Records the metric
    columns COLUMNS at the iterations listed in ``record`` (sorted; 0 = the initial state) into
    ``out``, and the network average zbar into ``traj`` when it has a row per record (a (0, d) array
    records no iterates). Returns (status, last_iteration, rows_written).
    """
    M, d = X.shape
    K = rounds.shape[0]
    tmpg = np.empty((M, d))
    FZ = np.empty((M, d))
    tmpM = np.empty((M, d))
    zbar = np.empty((1, d))
    f1 = np.empty((1, d))
    tmp1 = np.empty((1, d))
    part = np.empty((1, 3, d))
    acc = np.empty(d)
    work = np.empty(d)
    gmy = np.empty(d)
    nostate = np.zeros(1, dtype=np.uint64)
    stats = np.zeros(NSTATS)
    stats[2] = np.inf
    stats[3] = np.inf
    stats[6] = np.inf
    Xf = X.reshape(M * d)
    Zf = Z.reshape(M * d)
    flat = _flat_step(eta, proj_kind)
    Gf = G.reshape(M * d)
    FZf = FZ.reshape(M * d)
    # one operator pass instead of two when F(z_i) is what the oracle computes before its noise
    reuse = _oracle_is_mean(fid, A, S, Abar, Sbar, mean_loop, noise_kind)

    oracle_calls = 0.0
    gossip_rounds = np.int64(0)
    floats = 0.0
    row = np.int64(0)
    nrec = record.shape[0]
    status = STATUS_OK
    k_last = np.int64(0)
    for k in range(0, K + 1):
        t = rounds[k - 1] if k > 0 else 0
        ops = PLANS[alg] if k > 0 else INIT_PLANS[alg]
        want = row < nrec and record[row] == k
        metrics = every_iteration or want
        have_fz = False  # FZ holds F(z_i) at the current Z
        p = 0
        while True:  # the plan; the local phases as in _local_ops
            op = ops[p]
            if op == OP_END:
                break
            if op == OP_STEP_Z:
                _step_rows(Z, X, G, eta, flat, proj_kind, proj_a, proj_b, dim_u, work)
                have_fz = False
            elif op == OP_STEP_X:
                _step_rows_inplace(X, G, eta, flat, proj_kind, proj_a, proj_b, dim_u, work)
            elif op == OP_ORACLE_Z and reuse and metrics:
                _rows(fid, Z, FZ, P, A, S, np.int64(-1), state, np.int64(0))
                _copy_rows(Gf, FZf)
                _add_noise(G, noise_kind, noise_scale, batch, shifts, state)
                have_fz = True
            elif op == OP_ORACLE_Z:
                _oracle_all(Z, G, fid, P, A, S, noise_kind, noise_scale, batch, shifts, state)
            elif op == OP_ORACLE_X:
                _oracle_all(X, G, fid, P, A, S, noise_kind, noise_scale, batch, shifts, state)
            elif op == OP_ADAM_X:
                _adam_step(X, G, Mom, Vel, Dprev, eta, beta1, beta2, adam_eps, k)
                _project_rows(X, proj_kind, proj_a, proj_b, eta, dim_u, work)
            elif op == OP_COPY_Z:
                _copy_rows(Zf, Xf)
                have_fz = False
            elif op == OP_GOSSIP_Z:
                gossip_rounds += _gossip(Z, tmpg, t, gossip_rounds, indptr, indices, weights)
                have_fz = False
            elif op == OP_GOSSIP_X:
                gossip_rounds += _gossip(X, tmpg, t, gossip_rounds, indptr, indices, weights)
            else:  # OP_AVERAGE_G
                _average_rows(G)
            p += 1
        calls, sent = _costs(alg, k, t, d, M, avg_degree)
        oracle_calls += calls
        floats += sent
        # divergence: non-finite or exploding iterates stop the run
        # (X is updated after Z in every algorithm, so an exploding Z shows up in X)
        if k > 0 and not _finite_below(X, blowup):
            status = STATUS_DIVERGED
            k_last = k
            break
        k_last = k
        if metrics:
            s_loc, s_avg, s_w = _stationarity(Z, fid, P, Abar, Sbar, mean_loop, nostate, FZ, tmpM,
                                              zbar, f1, tmp1, part, have_fz)
            if k > 0 or not every_iteration:
                _accumulate(stats, s_loc, s_avg, s_w)
            if want:
                _record_row(out, row, k, s_loc, s_avg, s_w, stats, Z, X, solution, has_solution, traj,
                            acc, oracle_calls, gossip_rounds, floats)
                out[row, COL_GRADIENT_MAPPING] = _gradient_mapping(
                    zbar, f1, s_avg, eta, proj_kind, proj_a, proj_b, dim_u, gmy, work)
                row += 1
    return status, k_last, row


# ---------------------------------------------------------------- user operators
_CHAIN = ("_oracle_all", "_mean_rows", "_local_ops", "_stationarity_partial", "_stationarity_finish",
          "_stationarity", "_simulate")


def user_kernels(user_op, offset: int = 0, mean_op=None):
    """Compile the operator-reaching kernels for a user operator ``user_op(i, z, out)``.

    Returns a namespace with the functions of ``_CHAIN`` bound to it (no disk cache: the compiled
    code depends on the user's function). ``offset``: the global index of the first row when the
    rows are a block of workers (the MPI backend); F at row r is then worker offset + r's operator.
    Calls that name their worker (the mean operator) are not shifted. ``mean_op(z, out)``, when
    given, computes the mean operator F directly instead of averaging the M local operators.
    """
    g = dict(globals())
    offset = int(offset)

    @njit
    def _user_rows(fid, Z, O, P, A, S, worker, state, batch):
        for r in range(Z.shape[0]):
            user_op(worker if worker >= 0 else offset + r, Z[r], O[r])

    g["_rows"] = _user_rows
    ns = types.SimpleNamespace()
    chain = _CHAIN
    if mean_op is not None:
        @njit
        def _user_mean_rows(Z, O, tmp, fid, P, Abar, Sbar, mean_loop, nostate, M):
            for r in range(Z.shape[0]):
                mean_op(Z[r], O[r])

        g["_mean_rows"] = _user_mean_rows
        ns._mean_rows = _user_mean_rows
        chain = tuple(name for name in _CHAIN if name != "_mean_rows")
    for name in chain:
        py = globals()[name].py_func
        fn = types.FunctionType(py.__code__, g, name, py.__defaults__, py.__closure__)
        g[name] = njit(fn)
        setattr(ns, name, g[name])
    return ns
