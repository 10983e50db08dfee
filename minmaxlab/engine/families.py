"""Private numba kernels: the local operators F_i of every library family.

Uniform calling convention, so that one engine kernel serves every family:

    library_rows(fid, Z, O, P, A, S, worker, state, batch)

writes F_i(Z[r]) into O[r] for every row r, with i = worker (or i = r when worker < 0). Operators
that sample their own mini-batches (``batch`` > 0) draw from worker i's stream ``state[i]``; with
``batch`` = 0 they are exact (deterministic). Rows go by
index, not as views, and each family's operator is inlined into its loop: a view or a call with
array arguments per point would dominate the cost of small operators. ``fid`` is the family id,
``P`` a float64 vector of scalar parameters, ``A`` a float64 stack of matrices (one per worker, or
a single one shared by all workers when ``A.shape[0] == 1``) and ``S`` a float64 matrix of
per-worker constant terms (shape (M, d), or (1, d) when shared). Kernels do arithmetic only: no
printing, no globals other than other kernels.
"""

import numpy as np
from numba import njit

from minmaxlab.engine.datarows import (
    group_logistic_rows,
    group_logistic_sparse_rows,
    robust_rows,
    robust_sparse_rows,
)
from minmaxlab.engine.mlp import gan_rows

FID_USER = 0
FID_BILINEAR = 1
FID_QUADRATIC = 2
FID_MINTY_BOWL = 3
FID_WEAK_MVI = 4
FID_FORSAKEN = 5
FID_GLOBAL_FORSAKEN = 6
FID_POLAR = 7
FID_DIRAC = 8
FID_COVARIANCE = 9
FID_GAN = 10
FID_ROBUST_REGRESSION = 11
FID_GROUP_LOGISTIC = 12  # DRO logistic regression and fair classification
FID_ROBUST_SPARSE = 13  # the data families on sparse storage
FID_GROUP_LOGISTIC_SPARSE = 14



G_RATIONAL = 0
G_LOG = 1
G_GAUSSIAN = 2
G_QUARTIC = 3


@njit(cache=True, inline="always")
def _row(n_rows, i):
    return i if n_rows > 1 else 0


@njit(cache=True, inline="always")
def _add_shift(i, O, orow, S):
    k = _row(S.shape[0], i)
    for j in range(O.shape[1]):
        O[orow, j] += S[k, j]


@njit(cache=True, inline="always")
def _skew_coupling(A, k, Z, zr, O, orow, p):
    """O[orow, :p] = A_k v ; O[orow, p:] = -A_k^T u  for z = Z[zr] = (u, v), u in R^p.

    A[k] holds A_k in rows 0..p-1 (p x q) and A_k^T in rows p..p+q-1 (q x p), so both products run
    as contiguous axpy loops (vectorizable without reassociating any sum)."""
    d = Z.shape[1]
    q = d - p
    for r in range(d):
        O[orow, r] = 0.0
    for c in range(q):  # A v = sum_c v_c A[:, c] = sum_c v_c (A^T)[c, :]
        vc = Z[zr, p + c]
        for r in range(p):
            O[orow, r] += vc * A[k, p + c, r]
    for r in range(p):  # -A^T u = -sum_r u_r A[r, :]
        ur = Z[zr, r]
        for c in range(q):
            O[orow, p + c] -= ur * A[k, r, c]


@njit(cache=True, inline="always")
def _gprime(kind, s):
    if kind == G_RATIONAL:  # g(s) = s^2 / (1 + s^2)
        t = 1.0 + s * s
        return 2.0 * s / (t * t)
    elif kind == G_LOG:  # g(s) = log(1 + s^2) / 2
        return s / (1.0 + s * s)
    elif kind == G_QUARTIC:  # g(s) = log(1 + s^4) / 4
        s3 = s * s * s
        return s3 / (1.0 + s3 * s)
    else:  # g(s) = 1 - exp(-s^2 / 2)
        return s * np.exp(-0.5 * s * s)


@njit(cache=True, inline="always")
def _op_bilinear(i, Z, zr, O, orow, P, A, S):
    p = int(P[0])
    _skew_coupling(A, _row(A.shape[0], i), Z, zr, O, orow, p)
    _add_shift(i, O, orow, S)


@njit(cache=True, inline="always")
def _blas_ok(A, Z, p):
    """Use BLAS for the coupling when every row shares one square A and the problem is large."""
    return A.shape[0] == 1 and Z.shape[0] >= 4 and 2 * p == Z.shape[1] and p >= 16


@njit(cache=True)
def _coupling_blas(A, Z, O, p):
    """Rows of O = (A v, -A^T u) for every row z = (u, v) of Z, by two matrix products."""
    V = np.ascontiguousarray(Z[:, p:])
    U = np.ascontiguousarray(Z[:, :p])
    A0 = A[0]
    O[:, :p] = V @ A0[p:]
    O[:, p:] = -(U @ A0[:p])


@njit(cache=True, inline="always")
def _op_quadratic(i, Z, zr, O, orow, P, A, S):
    p = int(P[0])
    _skew_coupling(A, _row(A.shape[0], i), Z, zr, O, orow, p)
    _quadratic_extra(i, Z, zr, O, orow, P, A, S)


@njit(cache=True, inline="always")
def _quadratic_extra(i, Z, zr, O, orow, P, A, S):
    mu = P[1]
    for j in range(Z.shape[1]):
        O[orow, j] += mu * Z[zr, j]
    _add_shift(i, O, orow, S)


@njit(cache=True, inline="always")
def _op_minty_bowl(i, Z, zr, O, orow, P, A, S):
    p = int(P[0])
    _skew_coupling(A, _row(A.shape[0], i), Z, zr, O, orow, p)
    _minty_extra(i, Z, zr, O, orow, P, A, S)


@njit(cache=True, inline="always")
def _minty_extra(i, Z, zr, O, orow, P, A, S):
    alpha = P[1]
    kind = int(P[2])
    if kind == G_RATIONAL:  # the branch is outside the loop so that the loop vectorizes
        for j in range(Z.shape[1]):
            s = Z[zr, j]
            t = 1.0 + s * s
            O[orow, j] += alpha * (2.0 * s / (t * t))
    else:
        for j in range(Z.shape[1]):
            O[orow, j] += alpha * _gprime(kind, Z[zr, j])
    _add_shift(i, O, orow, S)


@njit(cache=True)
def _minty_bowl_plane_rows(Z, O, P, A, S, worker):
    """The Minty bowl in the plane (d = 2), every row in straight-line code: the general row
    loops cost more than their arithmetic here (20x at 16 rows). The same operations in the
    same order as :func:`_op_minty_bowl`, so the same bits."""
    alpha = P[1]
    kind = int(P[2])
    for r in range(Z.shape[0]):
        w = worker if worker >= 0 else r
        k = _row(A.shape[0], w)
        ks = _row(S.shape[0], w)
        u = Z[r, 0]
        v = Z[r, 1]
        if kind == G_RATIONAL:
            t = 1.0 + u * u
            gu = 2.0 * u / (t * t)
            t = 1.0 + v * v
            gv = 2.0 * v / (t * t)
        else:
            gu = _gprime(kind, u)
            gv = _gprime(kind, v)
        O[r, 0] = ((0.0 + v * A[k, 1, 0]) + alpha * gu) + S[ks, 0]
        O[r, 1] = ((0.0 - u * A[k, 0, 0]) + alpha * gv) + S[ks, 1]


@njit(cache=True, inline="always")
def _op_weak_mvi(i, Z, zr, O, orow, P, A, S):
    n = int(P[0])
    a = P[1]
    b = P[2]
    for j in range(n):
        u = Z[zr, j]
        v = Z[zr, n + j]
        O[orow, j] = b * u + a * v
        O[orow, n + j] = -a * u + b * v
    _add_shift(i, O, orow, S)


@njit(cache=True, inline="always")
def _op_forsaken(i, Z, zr, O, orow, P, A, S):
    u = Z[zr, 0]
    v = Z[zr, 1]
    u2 = u * u
    v2 = v * v
    # phi(s) = s^2/4 - s^4/2 + s^6/6, phi'(s) = s/2 - 2 s^3 + s^5
    O[orow, 0] = (v - 0.45) + u * (0.5 - 2.0 * u2 + u2 * u2)
    O[orow, 1] = -u + v * (0.5 - 2.0 * v2 + v2 * v2)
    _add_shift(i, O, orow, S)


@njit(cache=True, inline="always")
def _op_global_forsaken(i, Z, zr, O, orow, P, A, S):
    u = Z[zr, 0]
    v = Z[zr, 1]
    u2 = u * u
    v2 = v * v
    # psi(s) = (2/21) s^6 - (1/3) s^4 + (1/3) s^2, psi'(s) = (4/7) s^5 - (4/3) s^3 + (2/3) s
    O[orow, 0] = v + u * ((4.0 / 7.0) * u2 * u2 - (4.0 / 3.0) * u2 + 2.0 / 3.0)
    O[orow, 1] = -u + v * ((4.0 / 7.0) * v2 * v2 - (4.0 / 3.0) * v2 + 2.0 / 3.0)
    _add_shift(i, O, orow, S)


@njit(cache=True, inline="always")
def _op_polar(i, Z, zr, O, orow, P, A, S):
    a = P[0]
    u = Z[zr, 0]
    v = Z[zr, 1]
    r2 = u * u + v * v
    common = 0.25 * a * (r2 - 1.0) * (4.0 * r2 - 1.0)
    O[orow, 0] = common * u - v
    O[orow, 1] = common * v + u
    _add_shift(i, O, orow, S)


@njit(cache=True, inline="always")
def _op_dirac(i, Z, zr, O, orow, P, A, S):
    theta = Z[zr, 0]
    psi = Z[zr, 1]
    t = psi * theta
    # h(t) = -log(1 + exp(-t)), h'(t) = 1 / (1 + exp(t)), evaluated without overflow
    if t >= 0.0:
        e = np.exp(-t)
        hp = e / (1.0 + e)
    else:
        hp = 1.0 / (1.0 + np.exp(t))
    O[orow, 0] = hp * psi
    O[orow, 1] = -hp * theta
    _add_shift(i, O, orow, S)


@njit(cache=True, inline="always")
def _op_covariance(i, Z, zr, O, orow, P, A, S):
    n = int(P[0])
    nn = n * n
    ks = _row(A.shape[0], i)
    z = Z[zr]
    out = O[orow]
    # z = (vec V, vec W), row-major; F = ( -(W + W^T) V , V V^T - Sigma_i )
    for r in range(n):
        for c in range(n):
            acc = 0.0
            for k in range(n):
                acc += (z[nn + r * n + k] + z[nn + k * n + r]) * z[k * n + c]
            out[r * n + c] = -acc
    for r in range(n):
        for c in range(n):
            acc = 0.0
            for k in range(n):
                acc += z[r * n + k] * z[c * n + k]
            out[nn + r * n + c] = acc - A[ks, r, c]
    _add_shift(i, O, orow, S)


@njit(cache=True)
def library_rows(fid, Z, O, P, A, S, worker, state, batch):
    """F at every row of Z into the same row of O: F_w with w = ``worker`` for every row when
    worker >= 0, and F_r for row r when worker < 0 (rows = workers). One call per batch of rows:
    the family dispatch happens once and each family's loop has its operator inlined."""
    n = Z.shape[0]
    if (fid == FID_BILINEAR or fid == FID_QUADRATIC or fid == FID_MINTY_BOWL) and _blas_ok(
        A, Z, int(P[0])
    ):
        _coupling_blas(A, Z, O, int(P[0]))
        for r in range(n):
            w = worker if worker >= 0 else r
            if fid == FID_BILINEAR:
                _add_shift(w, O, r, S)
            elif fid == FID_QUADRATIC:
                _quadratic_extra(w, Z, r, O, r, P, A, S)
            else:
                _minty_extra(w, Z, r, O, r, P, A, S)
    elif fid == FID_BILINEAR:
        for r in range(n):
            _op_bilinear(worker if worker >= 0 else r, Z, r, O, r, P, A, S)
    elif fid == FID_QUADRATIC:
        for r in range(n):
            _op_quadratic(worker if worker >= 0 else r, Z, r, O, r, P, A, S)
    elif fid == FID_MINTY_BOWL and Z.shape[1] == 2:
        _minty_bowl_plane_rows(Z, O, P, A, S, worker)
    elif fid == FID_MINTY_BOWL:
        for r in range(n):
            _op_minty_bowl(worker if worker >= 0 else r, Z, r, O, r, P, A, S)
    elif fid == FID_WEAK_MVI:
        for r in range(n):
            _op_weak_mvi(worker if worker >= 0 else r, Z, r, O, r, P, A, S)
    elif fid == FID_FORSAKEN:
        for r in range(n):
            _op_forsaken(worker if worker >= 0 else r, Z, r, O, r, P, A, S)
    elif fid == FID_GLOBAL_FORSAKEN:
        for r in range(n):
            _op_global_forsaken(worker if worker >= 0 else r, Z, r, O, r, P, A, S)
    elif fid == FID_POLAR:
        for r in range(n):
            _op_polar(worker if worker >= 0 else r, Z, r, O, r, P, A, S)
    elif fid == FID_DIRAC:
        for r in range(n):
            _op_dirac(worker if worker >= 0 else r, Z, r, O, r, P, A, S)
    elif fid == FID_COVARIANCE:
        for r in range(n):
            _op_covariance(worker if worker >= 0 else r, Z, r, O, r, P, A, S)
    elif fid == FID_GAN:
        gan_rows(Z, O, P, A, S, worker, state, batch)
    elif fid == FID_ROBUST_REGRESSION:
        robust_rows(Z, O, P, A, S, worker, state, batch)
    elif fid == FID_GROUP_LOGISTIC:
        group_logistic_rows(Z, O, P, A, S, worker, state, batch)
    elif fid == FID_ROBUST_SPARSE:
        robust_sparse_rows(Z, O, P, A, S, worker, state, batch)
    elif fid == FID_GROUP_LOGISTIC_SPARSE:
        group_logistic_sparse_rows(Z, O, P, A, S, worker, state, batch)
    else:
        for r in range(n):
            for j in range(O.shape[1]):
                O[r, j] = np.nan


@njit(cache=True)
def library_eval_rows(fid, i, Z, P, A, S):
    """F_i at every row of Z (exact: no sampled mini-batch), into a new array."""
    out = np.zeros(Z.shape)
    # batch as int64, not the literal 0: the engine's own specialization of library_rows serves
    library_rows(fid, Z, out, P, A, S, i, np.zeros(1, dtype=np.uint64), np.int64(0))
    return out
