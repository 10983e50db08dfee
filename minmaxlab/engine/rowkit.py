"""Small inlined helpers of the family kernels: which row of a per-worker stack a worker reads,
and the per-worker constant term."""

from numba import njit


@njit(cache=True, inline="always")
def row_index(n_rows, i):
    """Worker i's row of a stack with ``n_rows`` rows: its own, or the one shared row."""
    return i if n_rows > 1 else 0


@njit(cache=True, inline="always")
def add_shift(i, O, orow, S):
    """O[orow] += worker i's constant term (its row of S)."""
    k = row_index(S.shape[0], i)
    for j in range(O.shape[1]):
        O[orow, j] += S[k, j]
