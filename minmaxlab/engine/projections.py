"""Projections and proximal maps of the players' constraint sets, row by row (u = the first dim_u
coordinates, v = the rest)."""

import numpy as np
from numba import njit

PROJ_NONE = 0
PROJ_BALL = 1
PROJ_BOX = 2
PROJ_SIMPLEX = 3


PROJ_L1 = 4


@njit(cache=True)
def sumsq(y, lo, hi):
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
def project_segment(kind, a, b, step, y, lo, hi, work):
    if kind == PROJ_NONE:
        return
    if kind == PROJ_BALL:  # Euclidean ball of radius a
        nrm = np.sqrt(sumsq(y, lo, hi))
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
def project_rows(Y, proj_kind, proj_a, proj_b, eta, dim_u, work):
    if proj_kind[0] == PROJ_NONE and proj_kind[1] == PROJ_NONE:
        return
    for i in range(Y.shape[0]):
        project_row(Y[i], proj_kind, proj_a, proj_b, eta, dim_u, work)


@njit(cache=True, inline="always")
def project_row(y, proj_kind, proj_a, proj_b, eta, dim_u, work):
    """Both players' constraints on one row: u = y[:dim_u] with eta[0], v = y[dim_u:] with the
    last coordinate's eta."""
    d = y.shape[0]
    project_segment(proj_kind[0], proj_a[0], proj_b[0], eta[0], y, np.int64(0), dim_u, work)
    project_segment(proj_kind[1], proj_a[1], proj_b[1], eta[d - 1], y, dim_u, d, work)
