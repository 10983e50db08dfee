"""Small helpers of the family kernels: which row of a per-worker stack a worker reads, the
per-worker constant term, and a family kernel made from an operator on one row."""

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


def each_row(op):
    """The family kernel ``rows(Z, O, P, A, S, worker, state, batch)`` that applies the one-row
    operator ``op(i, Z, zr, O, orow, P, A, S)`` (F_i at Z[zr] into O[orow]) to every row, with
    i = worker, or i = r when worker < 0 (numba caches one kernel per ``op``)."""
    @njit(cache=True)
    def rows(Z, O, P, A, S, worker, state, batch):
        for r in range(Z.shape[0]):
            op(worker if worker >= 0 else r, Z, r, O, r, P, A, S)

    return rows
