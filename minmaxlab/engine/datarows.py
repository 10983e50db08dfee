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

Sparse storage (the ``*_sparse_rows`` kernels, same P): A has shape (blocks, 1, length) and block
w is one float64 buffer ``a = A[w, 0]`` holding compressed rows. Its integer fields are uint32
numbers stored in the bits of the buffer and read through ``ai = a.view(np.uint32)`` (two per
float64 word: no float-to-int conversion per non-zero, half the bytes of 64-bit indices).
Positions s below count float64 words:

    ai[0] = n (rows), ai[1] = binary, ai[2 + j] = off_j (j = 0..n: record j's word, off_n the end)
    record j at word s = off_j:  ai[2 s] = k (its non-zeros), a[s + 1 .. s + E] = extras (floats),
        ai[2 (s + 1 + E) + q] = column of non-zero q (q < k),
        a[s + 1 + E + ceil(k / 2) + q] = its value (none when binary)

with the extras the row's non-feature columns in the dense layout's order (robust regression:
b, c; group logistic: y, group, c), and no values when ``binary`` = 1 (every stored value equals
1, as in one-hot data such as LIBSVM's a9a). A mini-batch is drawn first and its records are
prefetched, then read: random rows are the cost of these kernels.

Both storages draw a mini-batch's rows with :func:`minmaxlab.engine.streams.uniform_index`, in
the same order, so they pick the same rows and agree up to rounding.
"""

import numpy as np
from llvmlite import ir
from numba import njit
from numba.core import cgutils, types
from numba.extending import intrinsic

from minmaxlab.engine.mlp import sigmoid as _sigmoid
from minmaxlab.engine.mlp import softplus
from minmaxlab.engine.streams import uniform_index


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
    return uniform_index(state, w, n_w)


@intrinsic
def _prefetch(typingctx, arr, idx):
    """Hint the CPU to load the cache line of arr[idx] (llvm.prefetch: read, high locality)."""
    if not isinstance(arr, types.Array) or arr.ndim != 1 or not isinstance(idx, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        idx = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [idx], wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3),
                          ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(arr, idx), codegen


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


# ---------------------------------------------------------------- per-family arithmetic
# Shared by the dense and the sparse kernels (inlined: the same operations, the same bits).
@njit(cache=True, inline="always")
def _robust_weight(c, res):
    """c phi'(r) for phi(r) = log(1 + r^2 / 2)."""
    return c * 2.0 * res / (2.0 + res * res)


@njit(cache=True, inline="always")
def _robust_finish(o, z, p, lam, sphi, cnt):
    """o = F from o_x = -sum_j c_j phi'(r_j) a_j and sphi = sum_j c_j phi'(r_j) over cnt samples."""
    inv = 1.0 / cnt
    sphi *= inv
    for c in range(p):
        o[c] = o[c] * inv - sphi * z[p + c]
        o[p + c] = sphi * z[c] + lam * z[p + c]


@njit(cache=True, inline="always")
def _group_logistic_sample(o, z, p, du, y, g, cj, dot):
    """One sample's bias and q terms of the group-logistic F (dot = a^T w_a); returns the
    coefficient c_j q_g dloss/ds of its features."""
    m = -y * (z[p] + dot)
    coef = -cj * z[du + g] * y * _sigmoid(m)
    o[p] += coef
    o[du + g] += cj * softplus(m)
    return coef


@njit(cache=True, inline="always")
def _group_logistic_finish(o, z, p, K, du, l2, rho, cnt):
    inv = 1.0 / cnt
    for c in range(p):
        o[c] = o[c] * inv + l2 * z[c]
    o[p] *= inv
    for k in range(K):
        o[du + k] = -o[du + k] * inv + rho * (z[du + k] - 1.0 / K)


@njit(cache=True)
def robust_rows(Z, O, P, A, S, worker, state, batch):
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
            ph = _robust_weight(a[p + 1], a[p] - _dot_shift(a, z, p))
            sphi += ph
            for c in range(p):
                o[c] -= ph * a[c]
        _robust_finish(o, z, p, lam, sphi, cnt)


@njit(cache=True)
def group_logistic_rows(Z, O, P, A, S, worker, state, batch):
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
        o = O[r]
        z = Z[r]
        for c in range(du + K):
            o[c] = 0.0
        for t in range(cnt):
            a = A[kw, _pick(state, w, t, n_w, batch)]
            coef = _group_logistic_sample(o, z, p, du, a[p], int(a[p + 1]), a[p + 2], _dot(a, z, p))
            for c in range(p):
                o[c] += coef * a[c]
        _group_logistic_finish(o, z, p, K, du, l2, rho, cnt)


# ---------------------------------------------------------------- sparse storage
@njit(cache=True, inline="always")
def _sparse_block(A, w):
    """(buffer, its uint32 view, row count, binary flag) of worker w's block (the only block when
    A holds one: pooled data or a single worker)."""
    a = A[w if A.shape[0] > 1 else 0, 0]
    ai = a.view(np.uint32)
    return a, ai, int(ai[0]), ai[1] != 0


@njit(cache=True, inline="always")
def _sparse_batch(a, ai, n_w, state, w, batch, J):
    """The records (their words) of worker w's mini-batch into J (grown when batch = 0 needs
    every row, in order), drawn as the dense kernels draw them, and prefetched; returns (count,
    J)."""
    cnt = batch if batch > 0 else n_w
    if J.shape[0] < cnt:
        J = np.empty(cnt, dtype=np.int64)
    for t in range(cnt):
        j = _pick(state, w, t, n_w, batch)
        s = int(ai[2 + j])
        J[t] = s
        if batch > 0:
            for q in range(s, int(ai[3 + j]), 8):
                _prefetch(a, q)
    return cnt, J


@njit(cache=True, inline="always")
def _dot_halves(z, p):
    """y^T x for z = (x, y), x and y in R^p, in four interleaved partial sums (a fixed order:
    these kernels use no fast-math flags, so that their bits do not depend on where the compiler
    inlines them; the simulator and the MPI backend must agree bit for bit)."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    c = 0
    while c + 3 < p:
        s0 += z[p + c] * z[c]
        s1 += z[p + c + 1] * z[c + 1]
        s2 += z[p + c + 2] * z[c + 2]
        s3 += z[p + c + 3] * z[c + 3]
        c += 4
    while c < p:
        s0 += z[p + c] * z[c]
        c += 1
    return (s0 + s1) + (s2 + s3)


# The helpers below take the record's columns (and values) as views and index them from 0, so
# that the compiler knows the indices are non-negative and drops the negative-index handling.
@njit(cache=True, inline="always")
def _dot_bin(cols, z):
    """sum of z[c] over the columns c (four accumulators)."""
    k = cols.shape[0]
    d0 = 0.0
    d1 = 0.0
    d2 = 0.0
    d3 = 0.0
    q = 0
    while q + 3 < k:
        d0 += z[cols[q]]
        d1 += z[cols[q + 1]]
        d2 += z[cols[q + 2]]
        d3 += z[cols[q + 3]]
        q += 4
    while q < k:
        d0 += z[cols[q]]
        q += 1
    return (d0 + d1) + (d2 + d3)


@njit(cache=True, inline="always")
def _dot_val(cols, vals, z):
    """sum of vals[q] * z[cols[q]] (four accumulators)."""
    k = cols.shape[0]
    d0 = 0.0
    d1 = 0.0
    d2 = 0.0
    d3 = 0.0
    q = 0
    while q + 3 < k:
        d0 += vals[q] * z[cols[q]]
        d1 += vals[q + 1] * z[cols[q + 1]]
        d2 += vals[q + 2] * z[cols[q + 2]]
        d3 += vals[q + 3] * z[cols[q + 3]]
        q += 4
    while q < k:
        d0 += vals[q] * z[cols[q]]
        q += 1
    return (d0 + d1) + (d2 + d3)


@njit(cache=True, inline="always")
def _axpy_bin(cols, coef, o):
    for q in range(cols.shape[0]):
        o[cols[q]] += coef


@njit(cache=True, inline="always")
def _axpy_val(cols, vals, coef, o):
    for q in range(cols.shape[0]):
        o[cols[q]] += coef * vals[q]


@njit(cache=True)
def robust_sparse_rows(Z, O, P, A, S, worker, state, batch):
    """:func:`robust_rows` on sparse storage (records [k, b, c, columns, values])."""
    p = int(P[0])
    lam = P[1]
    J = np.empty(max(batch, 1), dtype=np.int64)
    for r in range(Z.shape[0]):
        w = worker if worker >= 0 else r
        a, ai, n_w, binary = _sparse_block(A, w)
        cnt, J = _sparse_batch(a, ai, n_w, state, w, batch, J)
        o = O[r]
        z = Z[r]
        yx = _dot_halves(z, p)
        for c in range(2 * p):
            o[c] = 0.0
        sphi = 0.0
        if binary:  # the same loop twice, so that the hot loops carry no branch
            for t in range(cnt):
                s = J[t]
                cols = ai[2 * s + 6: 2 * s + 6 + ai[2 * s]]
                ph = _robust_weight(a[s + 2], a[s + 1] - _dot_bin(cols, z) - yx)
                sphi += ph
                _axpy_bin(cols, -ph, o)
        else:
            for t in range(cnt):
                s = J[t]
                k = int(ai[2 * s])
                cols = ai[2 * s + 6: 2 * s + 6 + k]
                vals = a[s + 3 + (k + 1) // 2: s + 3 + (k + 1) // 2 + k]
                ph = _robust_weight(a[s + 2], a[s + 1] - _dot_val(cols, vals, z) - yx)
                sphi += ph
                _axpy_val(cols, vals, -ph, o)
        _robust_finish(o, z, p, lam, sphi, cnt)


@njit(cache=True)
def group_logistic_sparse_rows(Z, O, P, A, S, worker, state, batch):
    """:func:`group_logistic_rows` on sparse storage (records [k, y, group, c, columns, values])."""
    p = int(P[0])
    K = int(P[1])
    rho = P[2]
    l2 = P[3]
    du = p + 1
    J = np.empty(max(batch, 1), dtype=np.int64)
    for r in range(Z.shape[0]):
        w = worker if worker >= 0 else r
        a, ai, n_w, binary = _sparse_block(A, w)
        cnt, J = _sparse_batch(a, ai, n_w, state, w, batch, J)
        o = O[r]
        z = Z[r]
        for c in range(du + K):
            o[c] = 0.0
        for t in range(cnt):
            s0 = J[t]
            k = int(ai[2 * s0])
            cols = ai[2 * s0 + 8: 2 * s0 + 8 + k]
            v0 = s0 + 4 + (k + 1) // 2
            vals = a[v0: v0 + (0 if binary else k)]
            dot = _dot_bin(cols, z) if binary else _dot_val(cols, vals, z)
            coef = _group_logistic_sample(o, z, p, du, a[s0 + 1], int(a[s0 + 2]), a[s0 + 3], dot)
            if binary:
                _axpy_bin(cols, coef, o)
            else:
                _axpy_val(cols, vals, coef, o)
        _group_logistic_finish(o, z, p, K, du, l2, rho, cnt)
