"""The chain: the engine's functions that reach a problem's operator, directly or through one
another. For the library's families they are the cached kernels of the engine's modules; for a
user operator they are compiled again with the operator bound in place of the family dispatch.
"""

import types

from numba import njit

from minmaxlab.engine import driver, metrics, oracle, plans

# callees before their callers: each function is recompiled with the ones before it already bound
CHAIN = ((oracle, "oracle_all"), (oracle, "mean_rows"), (plans, "storm_op"), (plans, "local_ops"),
         (metrics, "stationarity_partial"), (metrics, "stationarity_finish"),
         (metrics, "stationarity"), (driver, "simulate"))


def library() -> types.SimpleNamespace:
    """The chain of the library's families (the family dispatch ``library_rows``)."""
    return types.SimpleNamespace(**{name: getattr(module, name) for module, name in CHAIN})


def user_kernels(user_op=None, offset: int = 0, mean_op=None, phase=None) -> types.SimpleNamespace:
    """The chain compiled for a user operator ``user_op(i, z, out)`` and/or a method's own kernel
    ``phase(X, Z, G, S1, S2, S3, eta, k)`` (bound as plans.user_phase; without the disk cache:
    the compiled code depends on the user's functions). Without an operator the library's family
    dispatch stays.

    ``offset``: the global index of the first row when the rows are a block of workers (the MPI
    backend); F at row r is then worker offset + r's operator. Calls that name their worker (the
    mean operator) are not shifted. ``mean_op(z, out)``, when given, computes the mean operator F
    directly instead of averaging the M local operators.
    """
    offset = int(offset)
    bound = {} if phase is None else {"user_phase": phase}
    if user_op is not None:
        @njit
        def user_rows(fid, Z, O, P, A, S, worker, state, batch):
            for r in range(Z.shape[0]):
                user_op(worker if worker >= 0 else offset + r, Z[r], O[r])

        bound["rows"] = user_rows
    if mean_op is not None:
        @njit
        def user_mean_rows(Z, O, tmp, fid, P, Abar, Sbar, mean_loop, nostate, M):
            for r in range(Z.shape[0]):
                mean_op(Z[r], O[r])

        bound["mean_rows"] = user_mean_rows
    for module, name in CHAIN:
        if name in bound:
            continue
        py = getattr(module, name).py_func
        # the module's own names, with the operator and the chain's recompiled functions in place
        scope = {**vars(module), **bound}
        bound[name] = njit(types.FunctionType(py.__code__, scope, name, py.__defaults__,
                                              py.__closure__))
    return types.SimpleNamespace(**{name: bound[name] for _, name in CHAIN})
