"""Communication: gossip rounds with a stacked sparse mixing matrix (all workers in one block, or
one block of an MPI rank with the rows it received), their Chebyshev acceleration, and exact
averaging (an all-reduce)."""

import numpy as np
from numba import njit

from minmaxlab.engine.updates import copy_rows


@njit(cache=True)
def gossip_round(Y, out, m, indptr, indices, weights):
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
    elif d == 2:  # the plane: both coordinates' sums in one pass over the neighbours
        for i in range(M):
            k0 = indptr[m, i]
            w = weights[m, k0]
            j = indices[m, k0]
            a0 = w * Y[j, 0]
            a1 = w * Y[j, 1]
            for k in range(k0 + 1, indptr[m, i + 1]):
                w = weights[m, k]
                j = indices[m, k]
                a0 += w * Y[j, 0]
                a1 += w * Y[j, 1]
            out[i, 0] = a0
            out[i, 1] = a1
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
def gossip(Y, tmp, t, round0, indptr, indices, weights):
    """Y <- W_{r+t-1} ... W_{r} Y in place (t rounds, r = round0); the sparse matrices are stacked
    (row m of indptr/indices/weights is W_m, one row: a fixed topology) and used cyclically.
    Rounds alternate between Y and tmp; returns the number of rounds done."""
    T = indptr.shape[0]
    for r in range(t):
        m = (round0 + r) % T
        if r % 2 == 0:
            gossip_round(Y, tmp, m, indptr, indices, weights)
        else:
            gossip_round(tmp, Y, m, indptr, indices, weights)
    if t % 2 == 1:
        copy_rows(Y.reshape(-1), tmp.reshape(-1))
    return t


@njit(cache=True)
def chebyshev_weights(rho, t):
    """The weights omega_2 .. omega_t of t rounds of Chebyshev-accelerated gossip: with y_0 = Y,
    y_1 = W y_0 and y_{k+1} = omega_{k+1} W y_k + (1 - omega_{k+1}) y_{k-1}, y_t = P_t(W) Y for
    the polynomial P_t(x) = T_t(x / rho) / T_t(1 / rho) (T_t: Chebyshev's), which keeps the mean
    (P_t(1) = 1) and has the smallest max |P_t| on [-rho, rho] among degree-t polynomials, where
    the other eigenvalues of W lie: 1 / T_t(1/rho) ~ 2 (1 - sqrt(2 (1 - rho)))^t against rho^t.
    Written with r_k = T_{k-1}(1/rho) / T_k(1/rho) (r_1 = rho) so that no T_k, which overflows
    for large t, is formed: omega_{k+1} = 2 / (2 - rho r_k), r_{k+1} = rho omega_{k+1} / 2.
    rho = 0 (W = J) gives omega = 1: plain rounds. Golub and Varga, Numer. Math. 1961; for gossip:
    Scaman et al., ICML 2017."""
    out = np.empty(max(t - 1, 0))
    r = rho
    for k in range(t - 1):
        omega = 2.0 / (2.0 - rho * r)
        out[k] = omega
        r = 0.5 * rho * omega
    return out


@njit(cache=True)
def chebyshev_combine(out, WY, old, omega):
    """out <- omega WY + (1 - omega) old: one Chebyshev round after its product with W (out may
    be WY or old: each entry is read before it is written)."""
    M, d = out.shape
    for i in range(M):
        for c in range(d):
            out[i, c] = omega * WY[i, c] + (1.0 - omega) * old[i, c]


@njit(cache=True)
def chebyshev_gossip(Y, tmp, prev, t, round0, indptr, indices, weights, rho):
    """Y <- P_t(W) Y in place: t rounds of Chebyshev-accelerated gossip (see
    :func:`chebyshev_weights`; the stacked matrices are used cyclically as in :func:`gossip`, but
    the acceleration is meant for one fixed W); tmp and prev are scratch arrays of Y's shape.
    Returns the number of rounds done (t)."""
    if t == 0:
        return 0
    T = indptr.shape[0]
    omegas = chebyshev_weights(rho, t)
    copy_rows(prev.reshape(-1), Y.reshape(-1))
    gossip_round(prev, Y, round0 % T, indptr, indices, weights)  # y_1 = W y_0
    cur, old = Y, prev
    for k in range(1, t):
        gossip_round(cur, tmp, (round0 + k) % T, indptr, indices, weights)
        chebyshev_combine(old, tmp, old, omegas[k - 1])  # old <- y_{k+1}
        cur, old = old, cur
    if (t - 1) % 2 == 1:  # y_t is in prev
        copy_rows(Y.reshape(-1), prev.reshape(-1))
    return t


@njit(cache=True)
def pack_rows(Y, rows, buf):
    """buf[q] = Y[rows[q]]: the rows one block sends to the other blocks in one gossip round."""
    d = Y.shape[1]
    for q in range(rows.shape[0]):
        r = rows[q]
        for c in range(d):
            buf[q, c] = Y[r, c]


@njit(cache=True)
def mix_block(Yext, tmp, m, indptr, indices, weights):
    """One gossip round of a block: Yext holds the block's own n rows followed by the rows
    received from other blocks, and row i of the block's sparse matrix m (indptr/indices/weights,
    n rows, indices into Yext) lists its entries in the order of the full matrix, so that every
    row is the same sum in the same order as in :func:`gossip`. Yext[:n] <- the mixed rows."""
    gossip_round(Yext, tmp, m, indptr, indices, weights)
    n, d = tmp.shape
    for i in range(n):
        for c in range(d):
            Yext[i, c] = tmp[i, c]


@njit(cache=True)
def average_rows(Y):
    """Exact averaging (all-reduce): every row becomes the mean row."""
    M, d = Y.shape
    for c in range(d):
        s = 0.0
        for i in range(M):
            s += Y[i, c]
        s /= M
        for i in range(M):
            Y[i, c] = s
