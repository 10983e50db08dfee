"""The metrics of a run: the stationarity measures (at the workers' points, at their average, and
the workers' own) with their running averages and minima, consensus, distance to the solution,
the gradient mapping, and the divergence check."""

import numpy as np
from numba import njit

from minmaxlab.engine.oracle import mean_rows
from minmaxlab.engine.projections import PROJ_NONE, project_row

# metric columns written by simulate
COLUMNS = (
    "iteration", "stationarity_local", "stationarity_avg", "avg_stationarity_local",
    "avg_stationarity_avg", "min_stationarity_local", "min_stationarity_avg", "consensus_z",
    "consensus_x", "dist_to_solution", "oracle_calls", "gossip_rounds", "floats_sent_per_worker",
    "stationarity_workers", "gradient_mapping", "avg_stationarity_workers",
    "min_stationarity_workers",
)
COL_GRADIENT_MAPPING = 14
NCOL = len(COLUMNS)


# (the small metric kernels are inlined: simulate calls them at every iteration)
@njit(cache=True, inline="always")
def stationarity_partial(Z, fid, P, Abar, Sbar, mean_loop, nostate, M, FZ, tmpM, part):
    """Partial sums over a block of workers (the rows of Z; M = all workers): FZ[i] = F(z_i) with
    the mean operator F, part[0] = sum_i F(z_i) and part[1] = sum_i z_i, added in row order, and
    part[2, 0] = sum_i ||F(z_i)||^2 (the rest of part[2] is zero). Work array: tmpM (shape of Z)."""
    mean_rows(Z, FZ, tmpM, fid, P, Abar, Sbar, mean_loop, nostate, M)
    partial_sums(Z, FZ, part)


# not inline="always": inlined both into the library's chain and into a user operator's recompiled
# one, numba reused a mutated copy of its IR in the second (wrong sums, caught by the MPI tests)
@njit(cache=True)
def partial_sums(Z, FZ, part):
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
def stationarity_finish(parts, fid, P, Abar, Sbar, mean_loop, nostate, M, zbar, f1, tmp1):
    """(||(1/M) sum_i F(z_i)||^2, ||F(zbar)||^2, (1/M) sum_i ||F(z_i)||^2) from the partial sums
    of consecutive blocks of workers (parts[b] from :func:`stationarity_partial`), added in block
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
    mean_rows(zbar, f1, tmp1, fid, P, Abar, Sbar, mean_loop, nostate, M)
    s_avg = 0.0
    for c in range(d):
        s_avg += f1[0, c] * f1[0, c]
    return s_loc, s_avg, s_w / M


@njit(cache=True, inline="always")
def stationarity(Z, fid, P, Abar, Sbar, mean_loop, nostate, FZ, tmpM, zbar, f1, tmp1, part,
                  have_fz=False):
    """(||(1/M) sum_i F(z_i)||^2, ||F(zbar)||^2, (1/M) sum_i ||F(z_i)||^2) over all M workers (the
    rows of Z). Work arrays: FZ, tmpM (M, d); zbar, f1, tmp1 (1, d); part (1, 3, d). On return FZ
    holds F(z_i) in row i; with ``have_fz`` it holds them already (computed by the oracle)."""
    M = Z.shape[0]
    if have_fz:
        partial_sums(Z, FZ, part[0])
    else:
        stationarity_partial(Z, fid, P, Abar, Sbar, mean_loop, nostate, M, FZ, tmpM, part[0])
    return stationarity_finish(part, fid, P, Abar, Sbar, mean_loop, nostate, M, zbar, f1, tmp1)
NSTATS = 7  # the running statistics of accumulate


@njit(cache=True, inline="always")
def accumulate(stats, s_loc, s_avg, s_w):
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
    """Fresh running statistics for :func:`accumulate` (sums 0, minima +inf)."""
    stats = np.zeros(NSTATS)
    stats[2] = stats[3] = stats[6] = np.inf
    return stats


@njit(cache=True)
def consensus(Y, mean):
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
def record_row(out, row, k, s_loc, s_avg, s_w, stats, Z, X, solution, has_solution, traj, acc,
                oracle_calls, gossip_rounds, floats):
    """Write the metric columns COLUMNS of iteration k into out[row] (and zbar into traj[row]
    when traj has that row), from all M workers' Z and X, the three stationarity measures and
    the running statistics (see :func:`accumulate`). Work array: acc (d,)."""
    M, d = Z.shape
    n_terms = stats[4]
    out[row, 0] = k
    out[row, 1] = s_loc
    out[row, 2] = s_avg
    out[row, 3] = stats[0] / n_terms if n_terms > 0 else s_loc
    out[row, 4] = stats[1] / n_terms if n_terms > 0 else s_avg
    out[row, 5] = stats[2] if n_terms > 0 else s_loc
    out[row, 6] = stats[3] if n_terms > 0 else s_avg
    out[row, 7] = consensus(Z, acc)
    out[row, 8] = consensus(X, acc)
    if has_solution:
        consensus(Z, acc)  # acc = zbar
        s = 0.0
        for c in range(d):
            v = acc[c] - solution[c]
            s += v * v
        out[row, 9] = s
    else:
        out[row, 9] = np.nan
    if traj.shape[0] > row:
        consensus(Z, acc)  # acc = zbar
        for c in range(d):
            traj[row, c] = acc[c]
    out[row, 10] = oracle_calls
    out[row, 11] = gossip_rounds
    out[row, 12] = floats
    out[row, 13] = s_w
    out[row, 15] = stats[5] / n_terms if n_terms > 0 else s_w
    out[row, 16] = stats[6] if n_terms > 0 else s_w


@njit(cache=True)
def gradient_mapping(zbar, fbar, s_avg, eta, proj_kind, proj_a, proj_b, dim_u, y, work):
    """||(zbar - prox(zbar - eta F(zbar))) / eta||^2 with each player's projection or prox (and
    its step size), from zbar and fbar = F(zbar) (rows of shape (1, d)); s_avg = ||F(zbar)||^2
    when no player is constrained (the mapping is then F itself). Work arrays: y, work (d,)."""
    if proj_kind[0] == PROJ_NONE and proj_kind[1] == PROJ_NONE:
        return s_avg
    d = y.shape[0]
    for c in range(d):
        y[c] = zbar[0, c] - eta[c] * fbar[0, c]
    project_row(y, proj_kind, proj_a, proj_b, eta, dim_u, work)
    s = 0.0
    for c in range(d):
        v = (zbar[0, c] - y[c]) / eta[c]
        s += v * v
    return s


@njit(cache=True)
def finite_below(Y, bound):
    """True if every entry is finite and at most ``bound`` in absolute value (branch-free scan:
    the comparison is false for NaN; Y is C-contiguous)."""
    Yf = Y.reshape(-1)
    ok = True
    for q in range(Yf.shape[0]):
        ok &= abs(Yf[q]) <= bound
    return ok
