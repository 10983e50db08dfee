"""The local updates of the algorithms: projected gradient steps, copies and the optimistic Adam
step, on all rows of a block of workers."""

import numpy as np
from numba import njit

from minmaxlab.engine.projections import PROJ_NONE, project_row


@njit(cache=True)
def flat_step(eta, proj_kind):
    """The step size when every coordinate has the same one and nothing is projected (the local
    steps are then one long loop: short rows would pay a loop each), else 0."""
    if proj_kind[0] != PROJ_NONE or proj_kind[1] != PROJ_NONE:
        return 0.0
    for c in range(1, eta.shape[0]):
        if eta[c] != eta[0]:
            return 0.0
    return eta[0]


@njit(cache=True)
def plain_step(Y, X, G, a):
    """Y = X - a G: one step size, no projection (a = :func:`flat_step`; on small blocks the ten
    arguments of :func:`step_rows` cost more than this loop)."""
    M, d = Y.shape
    for i in range(M):
        for c in range(d):
            Y[i, c] = X[i, c] - a * G[i, c]


@njit(cache=True)
def plain_step_inplace(X, G, a):
    """X = X - a G (see :func:`plain_step`)."""
    M, d = X.shape
    for i in range(M):
        for c in range(d):
            X[i, c] -= a * G[i, c]


@njit(cache=True)
def step_rows(Y, X, G, eta, proj_kind, proj_a, proj_b, dim_u, work):
    """Y = proj(X - eta G), row by row, each row projected while it is in cache (Y is not X: see
    :func:`step_rows_inplace`); without projections and with one step size, :func:`plain_step`
    does the same faster."""
    M, d = Y.shape
    for i in range(M):
        y = Y[i]
        x = X[i]
        g = G[i]
        for c in range(d):
            y[c] = x[c] - eta[c] * g[c]
        project_row(y, proj_kind, proj_a, proj_b, eta, dim_u, work)


@njit(cache=True)
def step_rows_inplace(X, G, eta, proj_kind, proj_a, proj_b, dim_u, work):
    """X = proj(X - eta G) in place (a separate loop: with Y = X the one above fails its overlap
    check and does not vectorize)."""
    M, d = X.shape
    for i in range(M):
        x = X[i]
        g = G[i]
        for c in range(d):
            x[c] -= eta[c] * g[c]
        project_row(x, proj_kind, proj_a, proj_b, eta, dim_u, work)


@njit(cache=True)
def copy_rows(Yf, Xf):
    """Y = X entrywise, on the flat views."""
    for q in range(Xf.shape[0]):
        Yf[q] = Xf[q]


@njit(cache=True)
def add_rows(Yf, Gf, a):
    """Y = Y + a G entrywise, on the flat views (a = 1 or -1: a gradient enters or leaves a
    tracker; -1 times G is exact, so Y - G is what is computed)."""
    for q in range(Yf.shape[0]):
        Yf[q] += a * Gf[q]


@njit(cache=True)
def adam_step(X, G, Mom, Vel, Dprev, eta, beta1, beta2, adam_eps, k):
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
