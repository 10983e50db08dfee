"""The registry of the library's problem families: each family module registers its operator kernel
once, with its family id; the engine's dispatch (:mod:`minmaxlab.engine.families`) is generated from
it.

A family kernel has one signature, ``rows(Z, O, P, A, S, worker, state, batch)``: it writes F_i(Z[r])
into O[r] for every row r, with i = ``worker`` (or i = r when worker < 0: rows are workers).
Operators that sample their own mini-batches (``batch`` > 0) draw from worker i's stream
``state[i]``; with ``batch`` = 0 they are exact. ``P`` is a float64 vector of scalar parameters,
``A`` a float64 stack of matrices (one per worker, or one shared when ``A.shape[0] == 1``) and
``S`` a float64 matrix of per-worker constant terms ((M, d), or (1, d) when shared).
"""

FID_USER = 0  # a user operator (Problem.from_operator): not in the registry, compiled apart

_KERNELS: dict[int, object] = {}
_ROWWISE: set[int] = set()


def family_kernel(fid: int, rowwise: bool = False):
    """Register the decorated kernel as family ``fid`` (an integer >= 1, unique). ``rowwise``: the
    kernel reads worker i's data only as row ``row_index(A.shape[0], i)`` of A and of S, so that
    workers sharing one row of each share one operator (the engine then evaluates F(z_i) once
    for the oracle and the metrics)."""
    def register(kernel):
        if not isinstance(fid, int) or fid <= FID_USER:
            raise ValueError(f"family id must be an integer >= 1, got {fid!r}")
        if _KERNELS.get(fid, kernel) is not kernel:
            raise ValueError(f"family id {fid} is taken by {_KERNELS[fid]}")
        _KERNELS[fid] = kernel
        if rowwise:
            _ROWWISE.add(fid)
        return kernel

    return register


def kernels() -> dict[int, object]:
    """The registered kernels by family id."""
    return dict(_KERNELS)


def rowwise() -> frozenset[int]:
    """The ids of the families registered with ``rowwise=True``."""
    return frozenset(_ROWWISE)


def kernel(fid: int):
    """The kernel of family ``fid``."""
    return _KERNELS[fid]
