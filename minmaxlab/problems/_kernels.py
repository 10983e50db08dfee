"""Private numba kernels: the local operators F_i of every library family.

Uniform calling convention, so that one engine kernel serves every family:

    _library_op(fid, i, z, out, P, A, S)

writes F_i(z) of worker ``i`` into ``out``. ``fid`` is the family id, ``P`` a float64 vector of scalar
parameters, ``A`` a float64 stack of matrices (one per worker, or a single one shared by all workers
when ``A.shape[0] == 1``) and ``S`` a float64 matrix of per-worker constant terms (shape (M, d), or
(1, d) when shared). Kernels do arithmetic only: no allocation in the hot path, no printing, no globals
other than other kernels.
"""

import numpy as np
from numba import njit

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

G_RATIONAL = 0
G_LOG = 1
G_GAUSSIAN = 2


@njit(cache=True)
def _row(n_rows, i):
    return i if n_rows > 1 else 0


@njit(cache=True)
def _add_shift(i, out, S):
    k = _row(S.shape[0], i)
    for j in range(out.shape[0]):
        out[j] += S[k, j]


@njit(cache=True)
def _skew_coupling(Ai, z, out, p):
    """out[:p] = Ai @ v ; out[p:] = -Ai^T @ u  for z = (u, v), u in R^p."""
    q = z.shape[0] - p
    for r in range(p):
        acc = 0.0
        for c in range(q):
            acc += Ai[r, c] * z[p + c]
        out[r] = acc
    for c in range(q):
        acc = 0.0
        for r in range(p):
            acc += Ai[r, c] * z[r]
        out[p + c] = -acc


@njit(cache=True)
def _gprime(kind, s):
    if kind == G_RATIONAL:  # g(s) = s^2 / (1 + s^2)
        t = 1.0 + s * s
        return 2.0 * s / (t * t)
    elif kind == G_LOG:  # g(s) = log(1 + s^2) / 2
        return s / (1.0 + s * s)
    else:  # g(s) = 1 - exp(-s^2 / 2)
        return s * np.exp(-0.5 * s * s)


@njit(cache=True)
def _op_bilinear(i, z, out, P, A, S):
    p = int(P[0])
    _skew_coupling(A[_row(A.shape[0], i)], z, out, p)
    _add_shift(i, out, S)


@njit(cache=True)
def _op_quadratic(i, z, out, P, A, S):
    p = int(P[0])
    mu = P[1]
    _skew_coupling(A[_row(A.shape[0], i)], z, out, p)
    for j in range(z.shape[0]):
        out[j] += mu * z[j]
    _add_shift(i, out, S)


@njit(cache=True)
def _op_minty_bowl(i, z, out, P, A, S):
    p = int(P[0])
    alpha = P[1]
    kind = int(P[2])
    _skew_coupling(A[_row(A.shape[0], i)], z, out, p)
    for j in range(z.shape[0]):
        out[j] += alpha * _gprime(kind, z[j])
    _add_shift(i, out, S)


@njit(cache=True)
def _op_weak_mvi(i, z, out, P, A, S):
    n = int(P[0])
    a = P[1]
    b = P[2]
    for j in range(n):
        u = z[j]
        v = z[n + j]
        out[j] = b * u + a * v
        out[n + j] = -a * u + b * v
    _add_shift(i, out, S)


@njit(cache=True)
def _op_forsaken(i, z, out, P, A, S):
    u = z[0]
    v = z[1]
    u2 = u * u
    v2 = v * v
    # phi(s) = s^2/4 - s^4/2 + s^6/6, phi'(s) = s/2 - 2 s^3 + s^5
    out[0] = (v - 0.45) + u * (0.5 - 2.0 * u2 + u2 * u2)
    out[1] = -u + v * (0.5 - 2.0 * v2 + v2 * v2)
    _add_shift(i, out, S)


@njit(cache=True)
def _op_global_forsaken(i, z, out, P, A, S):
    u = z[0]
    v = z[1]
    u2 = u * u
    v2 = v * v
    # psi(s) = (2/21) s^6 - (1/3) s^4 + (1/3) s^2, psi'(s) = (4/7) s^5 - (4/3) s^3 + (2/3) s
    out[0] = v + u * ((4.0 / 7.0) * u2 * u2 - (4.0 / 3.0) * u2 + 2.0 / 3.0)
    out[1] = -u + v * ((4.0 / 7.0) * v2 * v2 - (4.0 / 3.0) * v2 + 2.0 / 3.0)
    _add_shift(i, out, S)


@njit(cache=True)
def _op_polar(i, z, out, P, A, S):
    a = P[0]
    u = z[0]
    v = z[1]
    r2 = u * u + v * v
    common = 0.25 * a * (r2 - 1.0) * (4.0 * r2 - 1.0)
    out[0] = common * u - v
    out[1] = common * v + u
    _add_shift(i, out, S)


@njit(cache=True)
def _op_dirac(i, z, out, P, A, S):
    theta = z[0]
    psi = z[1]
    t = psi * theta
    # h(t) = -log(1 + exp(-t)), h'(t) = 1 / (1 + exp(t)), evaluated without overflow
    if t >= 0.0:
        e = np.exp(-t)
        hp = e / (1.0 + e)
    else:
        hp = 1.0 / (1.0 + np.exp(t))
    out[0] = hp * psi
    out[1] = -hp * theta
    _add_shift(i, out, S)


@njit(cache=True)
def _op_covariance(i, z, out, P, A, S):
    n = int(P[0])
    nn = n * n
    Sig = A[_row(A.shape[0], i)]
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
            out[nn + r * n + c] = acc - Sig[r, c]
    _add_shift(i, out, S)


@njit(cache=True)
def _library_op(fid, i, z, out, P, A, S):
    if fid == FID_BILINEAR:
        _op_bilinear(i, z, out, P, A, S)
    elif fid == FID_QUADRATIC:
        _op_quadratic(i, z, out, P, A, S)
    elif fid == FID_MINTY_BOWL:
        _op_minty_bowl(i, z, out, P, A, S)
    elif fid == FID_WEAK_MVI:
        _op_weak_mvi(i, z, out, P, A, S)
    elif fid == FID_FORSAKEN:
        _op_forsaken(i, z, out, P, A, S)
    elif fid == FID_GLOBAL_FORSAKEN:
        _op_global_forsaken(i, z, out, P, A, S)
    elif fid == FID_POLAR:
        _op_polar(i, z, out, P, A, S)
    elif fid == FID_DIRAC:
        _op_dirac(i, z, out, P, A, S)
    elif fid == FID_COVARIANCE:
        _op_covariance(i, z, out, P, A, S)
    else:
        for j in range(out.shape[0]):
            out[j] = np.nan


@njit(cache=True)
def _library_eval_rows(fid, i, Z, P, A, S):
    """F_i at every row of Z (worker i fixed, or i < 0: the mean operator F)."""
    n, d = Z.shape
    M = max(A.shape[0], S.shape[0])
    out = np.zeros((n, d))
    tmp = np.empty(d)
    for r in range(n):
        if i >= 0:
            _library_op(fid, i, Z[r], out[r], P, A, S)
        else:
            for w in range(M):
                _library_op(fid, w, Z[r], tmp, P, A, S)
                for j in range(d):
                    out[r, j] += tmp[j]
            for j in range(d):
                out[r, j] /= M
    return out
