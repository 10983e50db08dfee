"""Private numba kernels: the update arithmetic of every algorithm, gossip, oracle, noise, metrics.

Arrays and scalars only; no allocation in the iteration loop beyond the work arrays passed in; no
printing; no global state. One kernel, ``_simulate``, runs a whole trajectory and records metrics at
given iterations, so a run costs one call from Python.

Operators are reached through ``_rows``, which is the library's ``_library_rows`` (F at a batch of
rows in one call). For user-defined operators, :func:`user_kernels` re-compiles the functions of
this module that reach ``_rows`` with ``_rows`` bound to the user's operator (without the disk
cache).
"""

import types

import numpy as np
from numba import njit

from minmaxlab._rng import _hz, _mix64, _normal, _uniform  # noqa: F401 (re-exported for tests)
from minmaxlab.problems._kernels import _library_rows

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
    "stationarity_workers",
)
NCOL = len(COLUMNS)

STATUS_OK = 0
STATUS_DIVERGED = 1

_rows = _library_rows  # the operator every kernel calls; user_kernels() rebinds it
_NO_STATE = np.zeros(1, dtype=np.uint64)  # exact evaluations draw nothing


@njit(cache=True)
def _add_gaussian(state, i, O, orow, scale):
    for j in range(O.shape[1]):
        O[orow, j] += scale * _normal(state, i)


# ---------------------------------------------------------------- oracle
@njit(cache=True)
def _oracle_all(Z, O, fid, P, A, S, noise_kind, noise_scale, batch, shifts, state):
    """One stochastic oracle call of every worker i at Z[i] into O[i] (mini-batches of ``batch``)."""
    _rows(fid, Z, O, P, A, S, -1, state, batch if noise_kind == NOISE_SAMPLED else 0)
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
def _mean_rows(Z, O, tmp, fid, P, Abar, Sbar, mean_loop, M):
    """The mean operator F at every row of Z into O: from the aggregate data (Abar, Sbar), or, for
    user problems, by averaging the M local operators (``tmp`` has the shape of Z)."""
    if mean_loop:
        n, d = O.shape
        for r in range(n):
            for c in range(d):
                O[r, c] = 0.0
        for j in range(M):
            _rows(fid, Z, tmp, P, Abar, Sbar, j, _NO_STATE, 0)
            for r in range(n):
                for c in range(d):
                    O[r, c] += tmp[r, c]
        for r in range(n):
            for c in range(d):
                O[r, c] /= M
    else:
        _rows(fid, Z, O, P, Abar, Sbar, 0, _NO_STATE, 0)


# ---------------------------------------------------------------- projections / proximal maps
@njit(cache=True)
def _project_segment(kind, a, b, step, y, lo, hi, work):
    if kind == PROJ_NONE:
        return
    if kind == PROJ_BALL:  # Euclidean ball of radius a
        s = 0.0
        for c in range(lo, hi):
            s += y[c] * y[c]
        nrm = np.sqrt(s)
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
    elif kind == PROJ_L1:  # prox of step * a * ||.||_1: soft-thresholding
        thr = step * a
        for c in range(lo, hi):
            v = y[c]
            if v > thr:
                y[c] = v - thr
            elif v < -thr:
                y[c] = v + thr
            else:
                y[c] = 0.0


@njit(cache=True)
def _project_rows(Y, proj_kind, proj_a, proj_b, eta, dim_u, work):
    if proj_kind[0] == PROJ_NONE and proj_kind[1] == PROJ_NONE:
        return
    M, d = Y.shape
    for i in range(M):
        _project_segment(proj_kind[0], proj_a[0], proj_b[0], eta[0], Y[i], 0, dim_u, work)
        _project_segment(proj_kind[1], proj_a[1], proj_b[1], eta[d - 1], Y[i], dim_u, d, work)


# ---------------------------------------------------------------- gossip
@njit(cache=True)
def _gossip_round(Y, out, m, indptr, indices, weights):
    M, d = Y.shape
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
        Y[:, :] = tmp
    return t


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
@njit(cache=True)
def _stationarity(Z, fid, P, Abar, Sbar, mean_loop, FZ, tmpM, zbar, f1, tmp1):
    """(||(1/M) sum_i F(z_i)||^2, ||F(zbar)||^2). Work arrays: FZ, tmpM (M, d); zbar, f1, tmp1
    (1, d). On return FZ holds F(z_i) in row i."""
    M, d = Z.shape
    _mean_rows(Z, FZ, tmpM, fid, P, Abar, Sbar, mean_loop, M)
    for c in range(d):
        f1[0, c] = 0.0
        zbar[0, c] = 0.0
    for i in range(M):
        for c in range(d):
            f1[0, c] += FZ[i, c]
            zbar[0, c] += Z[i, c]
    s_loc = 0.0
    for c in range(d):
        a = f1[0, c] / M
        s_loc += a * a
        zbar[0, c] /= M
    _mean_rows(zbar, f1, tmp1, fid, P, Abar, Sbar, mean_loop, M)
    s_avg = 0.0
    for c in range(d):
        s_avg += f1[0, c] * f1[0, c]
    return s_loc, s_avg


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
def _finite_below(Y, bound):
    """True if every entry is finite and at most ``bound`` in absolute value (branch-free scan)."""
    m = 0.0
    tot = 0.0
    for v in Y.ravel():
        a = abs(v)
        m = a if a > m else m
        tot += v  # NaN and inf propagate here
    return m <= bound and np.isfinite(tot)


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

    Records the metric columns COLUMNS at the iterations listed in ``record`` (sorted; 0 = the
    initial state) into ``out``, and the network average zbar into ``traj`` when it has a row per
    record (a (0, d) array records no iterates). Returns (status, last_iteration, rows_written).
    """
    M, d = X.shape
    K = rounds.shape[0]
    tmpg = np.empty((M, d))
    FZ = np.empty((M, d))
    tmpM = np.empty((M, d))
    zbar = np.empty((1, d))
    f1 = np.empty((1, d))
    tmp1 = np.empty((1, d))
    acc = np.empty(d)
    work = np.empty(d)
    # flat views for the elementwise steps (one long loop instead of M short ones)
    n = M * d
    Xf = X.reshape(n)
    Zf = Z.reshape(n)
    Gf = G.reshape(n)
    etaf = np.empty(n)
    for i in range(M):
        for c in range(d):
            etaf[i * d + c] = eta[c]

    oracle_calls = 0.0
    gossip_rounds = 0
    floats = 0.0
    sum_loc = 0.0
    sum_avg = 0.0
    min_loc = np.inf
    min_avg = np.inf
    n_terms = 0
    row = 0
    nrec = record.shape[0]

    # initialization: one oracle call at z0 for the optimistic methods
    if alg == ALG_DPOSG or alg == ALG_DPOSG_SINGLE or alg == ALG_CPOSG:
        _oracle_all(Z, G, fid, P, A, S, noise_kind, noise_scale, batch, shifts, state)
        oracle_calls += 1.0
        if alg == ALG_CPOSG:
            _average_rows(G)

    status = STATUS_OK
    k_last = 0
    for k in range(0, K + 1):
        if k > 0:
            t = rounds[k - 1]
            if alg == ALG_DPOSG:
                # Z = W^t (X - eta G_prev); G = g(Z); X = W^t (X - eta G)
                for q in range(n):
                    Zf[q] = Xf[q] - etaf[q] * Gf[q]
                _project_rows(Z, proj_kind, proj_a, proj_b, eta, dim_u, work)
                gossip_rounds += _gossip(Z, tmpg, t, gossip_rounds, indptr, indices, weights)
                _oracle_all(Z, G, fid, P, A, S, noise_kind, noise_scale, batch, shifts, state)
                for q in range(n):
                    Xf[q] = Xf[q] - etaf[q] * Gf[q]
                _project_rows(X, proj_kind, proj_a, proj_b, eta, dim_u, work)
                gossip_rounds += _gossip(X, tmpg, t, gossip_rounds, indptr, indices, weights)
                oracle_calls += 1.0
                floats += 2.0 * t * d * avg_degree
            elif alg == ALG_DPOSG_SINGLE:
                # B = W^t X; Z = B - eta G_prev; G = g(Z); X = B - eta G
                gossip_rounds += _gossip(X, tmpg, t, gossip_rounds, indptr, indices, weights)
                for q in range(n):
                    Zf[q] = Xf[q] - etaf[q] * Gf[q]
                _project_rows(Z, proj_kind, proj_a, proj_b, eta, dim_u, work)
                _oracle_all(Z, G, fid, P, A, S, noise_kind, noise_scale, batch, shifts, state)
                for q in range(n):
                    Xf[q] = Xf[q] - etaf[q] * Gf[q]
                _project_rows(X, proj_kind, proj_a, proj_b, eta, dim_u, work)
                oracle_calls += 1.0
                floats += 1.0 * t * d * avg_degree
            elif alg == ALG_CPOSG:
                # one shared copy (all rows equal): z = x - eta gbar_prev; gbar = mean g_i(z);
                # x = x - eta gbar
                for q in range(n):
                    Zf[q] = Xf[q] - etaf[q] * Gf[q]
                _project_rows(Z, proj_kind, proj_a, proj_b, eta, dim_u, work)
                _oracle_all(Z, G, fid, P, A, S, noise_kind, noise_scale, batch, shifts, state)
                _average_rows(G)
                for q in range(n):
                    Xf[q] = Xf[q] - etaf[q] * Gf[q]
                _project_rows(X, proj_kind, proj_a, proj_b, eta, dim_u, work)
                oracle_calls += 1.0
                floats += 2.0 * d * (M - 1) / M
            elif alg == ALG_DSGDA:
                # X = W^t (X - eta g(X))
                _oracle_all(X, G, fid, P, A, S, noise_kind, noise_scale, batch, shifts, state)
                for q in range(n):
                    Xf[q] = Xf[q] - etaf[q] * Gf[q]
                _project_rows(X, proj_kind, proj_a, proj_b, eta, dim_u, work)
                gossip_rounds += _gossip(X, tmpg, t, gossip_rounds, indptr, indices, weights)
                for q in range(n):
                    Zf[q] = Xf[q]
                oracle_calls += 1.0
                floats += 1.0 * t * d * avg_degree
            elif alg == ALG_DEG:
                # Z = W^t (X - eta g(X)); X = W^t (X - eta g(Z))
                _oracle_all(X, G, fid, P, A, S, noise_kind, noise_scale, batch, shifts, state)
                for q in range(n):
                    Zf[q] = Xf[q] - etaf[q] * Gf[q]
                _project_rows(Z, proj_kind, proj_a, proj_b, eta, dim_u, work)
                gossip_rounds += _gossip(Z, tmpg, t, gossip_rounds, indptr, indices, weights)
                _oracle_all(Z, G, fid, P, A, S, noise_kind, noise_scale, batch, shifts, state)
                for q in range(n):
                    Xf[q] = Xf[q] - etaf[q] * Gf[q]
                _project_rows(X, proj_kind, proj_a, proj_b, eta, dim_u, work)
                gossip_rounds += _gossip(X, tmpg, t, gossip_rounds, indptr, indices, weights)
                oracle_calls += 2.0
                floats += 2.0 * t * d * avg_degree
            else:
                # optimistic Adam at Z = X: D_k = mhat_k / (sqrt(vhat_k) + eps);
                # X <- X - 2 eta D_k + eta D_{k-1}, then gossip (DPOAdam) or shared (CPOAdam)
                _oracle_all(X, G, fid, P, A, S, noise_kind, noise_scale, batch, shifts, state)
                if alg == ALG_CPOADAM:
                    _average_rows(G)
                bc1 = 1.0 - beta1**k
                bc2 = 1.0 - beta2**k
                for i in range(M):
                    for c in range(d):
                        g = G[i, c]
                        Mom[i, c] = beta1 * Mom[i, c] + (1.0 - beta1) * g
                        Vel[i, c] = beta2 * Vel[i, c] + (1.0 - beta2) * g * g
                        Dk = (Mom[i, c] / bc1) / (np.sqrt(Vel[i, c] / bc2) + adam_eps)
                        X[i, c] = X[i, c] - 2.0 * eta[c] * Dk + eta[c] * Dprev[i, c]
                        Dprev[i, c] = Dk
                _project_rows(X, proj_kind, proj_a, proj_b, eta, dim_u, work)
                if alg == ALG_DPOADAM:
                    gossip_rounds += _gossip(X, tmpg, t, gossip_rounds, indptr, indices, weights)
                    floats += 1.0 * t * d * avg_degree
                else:
                    floats += 2.0 * d * (M - 1) / M
                for q in range(n):
                    Zf[q] = Xf[q]
                oracle_calls += 1.0
            # divergence: non-finite or exploding iterates stop the run
            # (X is updated after Z in every algorithm, so an exploding Z shows up in X)
            if not _finite_below(X, blowup):
                status = STATUS_DIVERGED
                k_last = k
                break
        k_last = k
        want = row < nrec and record[row] == k
        if every_iteration or want:
            s_loc, s_avg = _stationarity(Z, fid, P, Abar, Sbar, mean_loop, FZ, tmpM, zbar, f1, tmp1)
            if k > 0 or not every_iteration:
                sum_loc += s_loc
                sum_avg += s_avg
                n_terms += 1
                if s_loc < min_loc:
                    min_loc = s_loc
                if s_avg < min_avg:
                    min_avg = s_avg
            if want:
                out[row, 0] = k
                out[row, 1] = s_loc
                out[row, 2] = s_avg
                out[row, 3] = sum_loc / n_terms if n_terms > 0 else s_loc
                out[row, 4] = sum_avg / n_terms if n_terms > 0 else s_avg
                out[row, 5] = min_loc if n_terms > 0 else s_loc
                out[row, 6] = min_avg if n_terms > 0 else s_avg
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
                sw = 0.0  # (1/M) sum_i ||F(z_i)||^2, FZ from the _stationarity call above
                for i in range(M):
                    for c in range(d):
                        sw += FZ[i, c] * FZ[i, c]
                out[row, 13] = sw / M
                row += 1
    return status, k_last, row


# ---------------------------------------------------------------- user operators
_CHAIN = ("_oracle_all", "_mean_rows", "_stationarity", "_simulate")


def user_kernels(user_op):
    """Compile the operator-reaching kernels for a user operator ``user_op(i, z, out)``.

    Returns a namespace with ``_simulate`` and ``_oracle_all`` bound to it (no disk cache: the
    compiled code depends on the user's function).
    """
    g = dict(globals())

    @njit
    def _user_rows(fid, Z, O, P, A, S, worker, state, batch):
        for r in range(Z.shape[0]):
            user_op(worker if worker >= 0 else r, Z[r], O[r])

    g["_rows"] = _user_rows
    ns = types.SimpleNamespace()
    for name in _CHAIN:
        py = globals()[name].py_func
        fn = types.FunctionType(py.__code__, g, name, py.__defaults__, py.__closure__)
        g[name] = njit(fn)
        setattr(ns, name, g[name])
    return ns
