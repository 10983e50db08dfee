"""The oracle: every worker's stochastic operator call (the family's operator plus noise) and the
mean operator F that the metrics evaluate.

``rows`` is the library's family dispatch (:func:`minmaxlab.engine.families.library_rows`); for a
user operator, :mod:`minmaxlab.engine.chain` recompiles the functions that reach it with ``rows``
bound to the user's operator.
"""

import numpy as np
from numba import njit

from minmaxlab.engine.families import ROWWISE
from minmaxlab.engine.families import library_rows as rows
from minmaxlab.engine.streams import add_normals, uniform

NOISE_NONE = 0
NOISE_GAUSSIAN = 1
NOISE_FINITE_SUM = 2
NOISE_SAMPLED = 3  # the operator draws its own mini-batch (data-driven problems, GANs)


@njit(cache=True)
def add_gaussian(state, i, O, orow, scale):
    add_normals(state, i, O, orow, scale)


# inlined into its callers: as a call of its own, numba optimizes the family kernels it links once
# more (a cold first run: 36.2 -> 32.6 s, with oracle_all and mean_rows inlined)
@njit(cache=True, inline="always")
def oracle_all(Z, O, fid, P, A, S, noise_kind, noise_scale, batch, shifts, state):
    """One stochastic oracle call of every worker i at Z[i] into O[i] (mini-batches of ``batch``)."""
    # worker and batch as int64, not literals: numba would compile one rows per literal value
    rows(fid, Z, O, P, A, S, np.int64(-1), state,
          np.int64(batch if noise_kind == NOISE_SAMPLED else 0))
    add_noise(O, noise_kind, noise_scale, batch, shifts, state)


@njit(cache=True)
def add_noise(O, noise_kind, noise_scale, batch, shifts, state):
    """The noise of an oracle call added to the exact operator values O (row i: worker i)."""
    M, d = O.shape
    if noise_kind == NOISE_GAUSSIAN:
        for i in range(M):
            add_gaussian(state, i, O, i, noise_scale)
    elif noise_kind == NOISE_FINITE_SUM:
        n = shifts.shape[1]
        inv = 1.0 / batch
        for i in range(M):
            for _ in range(batch):
                j = int(uniform(state, i) * n)
                if j >= n:
                    j = n - 1
                for c in range(d):
                    O[i, c] += inv * shifts[i, j, c]


@njit(cache=True)
def oracle_is_mean(fid, A, S, Abar, Sbar, mean_loop, noise_kind):
    """True when every worker's exact operator is the mean operator F, evaluated the same way:
    a family whose workers share one matrix and one shift row, equal to the aggregate ones, and an
    oracle that is F plus additive noise. F(z_i) computed by the oracle then serves the metrics."""
    if mean_loop or noise_kind == NOISE_SAMPLED or not 0 < fid < ROWWISE.shape[0] or not ROWWISE[fid]:
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


@njit(cache=True, inline="always")
def mean_rows(Z, O, tmp, fid, P, Abar, Sbar, mean_loop, nostate, M):
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
            rows(fid, Z, tmp, P, Abar, Sbar, j, nostate, np.int64(0))
            for r in range(n):
                for c in range(d):
                    O[r, c] += tmp[r, c]
        for r in range(n):
            for c in range(d):
                O[r, c] /= M
    else:
        rows(fid, Z, O, P, Abar, Sbar, np.int64(0), nostate, np.int64(0))
