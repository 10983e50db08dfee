"""The library's families as one operator, ``library_rows(fid, Z, O, P, A, S, worker, state,
batch)``: family ``fid``'s kernel at every row, generated from the registry
(:mod:`minmaxlab.engine.registry`) instead of written by hand. A family is one module: its class,
its kernel and one registration; nothing here names it.

The dispatch is a chain of small links, one per registered family, each comparing ``fid`` with its
own and calling its kernel or the next link (numba caches each link by its closure: the id and
the kernel). An unknown id writes NaN.
"""

import numpy as np
from numba import njit

import minmaxlab.problems  # noqa: F401  (its modules register the library's families)
from minmaxlab.engine.registry import kernels, rowwise


@njit(cache=True)
def _unknown_family(fid, Z, O, P, A, S, worker, state, batch):
    for r in range(Z.shape[0]):
        for j in range(O.shape[1]):
            O[r, j] = np.nan


def _link(fid, rows, rest):
    @njit(cache=True, inline="always")
    def dispatch(f, Z, O, P, A, S, worker, state, batch):
        if f == fid:
            rows(Z, O, P, A, S, worker, state, batch)
        else:
            rest(f, Z, O, P, A, S, worker, state, batch)

    return dispatch


def generate_dispatch(table: dict):
    """The dispatch over ``table`` ({family id: kernel}), lowest id first."""
    rows = _unknown_family
    for fid in sorted(table, reverse=True):
        rows = _link(fid, table[fid], rows)
    return rows


_dispatch = generate_dispatch(kernels())


@njit(cache=True)
def library_rows(fid, Z, O, P, A, S, worker, state, batch):
    """Family ``fid``'s kernel at every row of Z into O (see :mod:`minmaxlab.engine.registry`).
    The links are inlined here, once: callers call this function (inlined at each of their call
    sites, the links cost compile time; as calls of their own, numba optimizes each link with
    every link below it again)."""
    _dispatch(fid, Z, O, P, A, S, worker, state, batch)


# ROWWISE[fid]: the family reads worker i's data as its row of A and of S only (see the registry)
ROWWISE = np.zeros(max(kernels(), default=0) + 1, dtype=np.bool_)
ROWWISE[sorted(rowwise())] = True
