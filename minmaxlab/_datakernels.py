"""Private numba kernels: the operators of the data-driven families (minmaxlab.problems.data).

Data layout (shared by both kernels): worker w's samples are the rows A[w, :n_w] (one row per
sample: features, then the response or label, then the family's extra columns, then a weight c);
the counts n_w are the last M entries of P, after M itself. When A has a single row block (the
mean operator's pooled data, or a single worker) all its rows are used. A mini-batch (``batch`` >
0) is drawn uniformly with replacement from worker w's stream ``state[w]``; ``batch`` = 0 uses the
whole shard. The weights c make the estimators unbiased for the family's objective. Rows of A are
read by index and the operator is accumulated in place in O: no allocation per sample or per point.

P layouts:
    robust regression: [p, lambda, M, counts (M)]            rows: a (p), b, c
    group logistic:    [p, K, rho, l2, M, counts (M)]        rows: a (p), y in {-1, 1}, group, c
"""

from numba import njit

from minmaxlab._mlp import _sig as _sigmoid
from minmaxlab._mlp import _softplus
from minmaxlab._rng import _uniform


@njit(cache=True, inline="always")
def _shard(P, A, w, oc):
    """(row block, sample count) of worker w; oc = index of M in P."""
    if A.shape[0] > 1:
        return w, int(P[oc + 1 + w])
    return 0, A.shape[1]


@njit(cache=True, inline="always")
def _pick(state, w, t, n_w, batch):
    if batch == 0:
        return t
    j = int(_uniform(state, w) * n_w)
    return j if j < n_w else n_w - 1


@njit(cache=True, fastmath={"reassoc", "contract"})
def _dot_shift(a, z, p):
    """sum_c (a_c + y_c) x_c for z = (x, y) (the sum may be reassociated, so that it vectorizes;
    NaN and inf keep their meaning). Whole rows (C-contiguous) and offsets, no slices."""
    s = 0.0
    for c in range(p):
        s += (a[c] + z[p + c]) * z[c]
    return s


@njit(cache=True, fastmath={"reassoc", "contract"})
def _dot(a, x, p):
    s = 0.0
    for c in range(p):
        s += a[c] * x[c]
    return s


@njit(cache=True)
def _robust_rows(Z, O, P, A, S, worker, state, batch):
    """F = (grad_x f, -grad_y f) of f(x, y) = mean_j c_j log(1 + r_j^2 / 2) - (lam/2)||y||^2,
    r_j = b_j - (a_j + y)^T x, z = (x, y), both in R^p."""
    p = int(P[0])
    lam = P[1]
    for r in range(Z.shape[0]):
        w = worker if worker >= 0 else r
        kw, n_w = _shard(P, A, w, 2)
        cnt = batch if batch > 0 else n_w
        o = O[r]
        z = Z[r]
        for c in range(2 * p):
            o[c] = 0.0
        sphi = 0.0
        for t in range(cnt):
            j = _pick(state, w, t, n_w, batch)
            a = A[kw, j]
            res = a[p] - _dot_shift(a, z, p)
            ph = a[p + 1] * 2.0 * res / (2.0 + res * res)  # c_j phi'(r_j)
            sphi += ph
            for c in range(p):
                o[c] -= ph * a[c]
        inv = 1.0 / cnt
        sphi *= inv
        for c in range(p):
            o[c] = o[c] * inv - sphi * z[p + c]
            o[p + c] = sphi * z[c] + lam * z[p + c]


@njit(cache=True)
def _group_logistic_rows(Z, O, P, A, S, worker, state, batch):
    """F of f(w, q) = sum_k q_k L_k(w) + (l2/2)||w_a||^2 - (rho/2)||q - 1/K||^2 with L_k the
    (c-weighted) mean logistic loss of group k; z = (w_a (p), bias, q (K))."""
    p = int(P[0])
    K = int(P[1])
    rho = P[2]
    l2 = P[3]
    du = p + 1
    for r in range(Z.shape[0]):
        w = worker if worker >= 0 else r
        kw, n_w = _shard(P, A, w, 4)
        cnt = batch if batch > 0 else n_w
        for c in range(du + K):
            O[r, c] = 0.0
        for t in range(cnt):
            j = _pick(state, w, t, n_w, batch)
            s = Z[r, p] + _dot(A[kw, j], Z[r], p)
            y = A[kw, j, p]
            g = int(A[kw, j, p + 1])
            cj = A[kw, j, p + 2]
            m = -y * s
            coef = -cj * Z[r, du + g] * y * _sigmoid(m)  # c_j q_g dloss/ds
            for c in range(p):
                O[r, c] += coef * A[kw, j, c]
            O[r, p] += coef
            O[r, du + g] += cj * _softplus(m)
        inv = 1.0 / cnt
        for c in range(p):
            O[r, c] = O[r, c] * inv + l2 * Z[r, c]
        O[r, p] *= inv
        for k in range(K):
            O[r, du + k] = -O[r, du + k] * inv + rho * (Z[r, du + k] - 1.0 / K)
