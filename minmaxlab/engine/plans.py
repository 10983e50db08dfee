"""The algorithms as plans: the phases of one iteration (local steps, oracle calls, gossip, exact
averages), the costs counted from them, and the runner of a plan's local phases on a block of
workers (used by the MPI backend between its communications; the simulator's driver runs the same
phases inline)."""

import numpy as np
from numba import njit

from minmaxlab.engine.oracle import oracle_all
from minmaxlab.engine.projections import project_rows
from minmaxlab.engine.streams import STATE_WORDS
from minmaxlab.engine.updates import (
    adam_step,
    add_rows,
    copy_rows,
    flat_step,
    plain_step,
    plain_step_inplace,
    step_rows,
    step_rows_inplace,
)

# algorithm ids (see minmaxlab.algorithms)
ALG_DPOSG = 0
ALG_DPOSG_SINGLE = 1
ALG_CPOSG = 2
ALG_DSGDA = 3
ALG_DEG = 4
ALG_DPOADAM = 5
ALG_CPOADAM = 6
ALG_GT_DA = 7
ALG_DPOSG_GT = 8
ALG_LOCAL_SGDA = 9
ALG_LOCAL_OSGDA = 10
ALG_DM_HSGD = 11
ALG_DM_HSGD_FRESH = 12
ALG_DPOADAM_GG = 13


# An algorithm's iteration is a plan: a sequence of local phases and communications. A built-in
# algorithm's plan is its row of _PLAN_TABLE (an algorithm from outside the package names its
# phases itself), handed to the kernels as data by :func:`encode`; the simulator (``simulate``:
# all workers in one block, communication by ``gossip`` and ``average_rows``) and the MPI backend
# (``local_ops`` on each rank's block, communication by MPI) run the same plan through the same
# phase kernels.
OP_END = 0  # end of the plan
OP_STEP_Z = 1  # Z = proj(X - eta G)                       (local)
OP_STEP_X = 2  # X = proj(X - eta G)                       (local)
OP_ORACLE_Z = 3  # G = g(Z), one mini-batch oracle call    (local)
OP_ORACLE_X = 4  # G = g(X)                                (local)
OP_ADAM_X = 5  # X = proj(X - 2 eta D_k + eta D_{k-1})     (local, optimistic Adam)
OP_COPY_Z = 6  # Z = X                                     (local)
OP_GOSSIP_Z = 7  # Z = W^t Z: t gossip rounds              (communication)
OP_GOSSIP_X = 8  # X = W^t X                               (communication)
OP_AVERAGE_G = 9  # every row of G = the mean row          (communication: all-reduce)
# gradient tracking: the tracker Y (the state S1) follows the mean of the workers' gradients
OP_STEP_Z_Y = 10  # Z = proj(X - eta Y)                    (local)
OP_STEP_X_Y = 11  # X = proj(X - eta Y)                    (local)
OP_TRACK_OUT = 12  # Y = Y - G: the old gradient leaves    (local)
OP_TRACK_IN = 13  # Y = Y + G: the new gradient enters     (local)
OP_GOSSIP_Y = 14  # Y = W^t Y                              (communication)
# local steps: the rounds of iteration k say whether it ends with an average (t > 0) or not
OP_AVERAGE_X = 15  # every row of X = the mean row if t > 0 (communication: all-reduce)
# variance reduction (a STORM estimator V = S2 of the gradient, from g at X and at the previous X,
# S3, with the same sample: the streams are marked before the first call and rewound to the mark)
OP_SAVE_X = 16  # S3 = X                                    (local)
OP_STREAM_MARK = 17  # remember every worker's stream       (local)
OP_ORACLE_PREV = 18  # G = g(S3), one mini-batch oracle call (local)
OP_STORM_OUT = 19  # V = (1 - beta) (V - G)                (local)
OP_STREAM_REWIND = 20  # back to the mark: the same sample  (local)
OP_STORM_IN = 21  # V = V + G                               (local)
OP_TRACK_OUT_V = 22  # Y = Y - V                            (local)
OP_TRACK_IN_V = 23  # Y = Y + V                             (local)
# a method's own numba kernel (an algorithm from outside the package, Algorithm.kernel)
OP_USER = 24  # kernel(X, Z, G, S1, S2, S3, eta, k)        (local)
# the gradients gossiped before an adaptive step reads them (DPOAdam with moments of W^t G)
OP_GOSSIP_G = 25  # G = W^t G                              (communication)
OP_NAMES = ("end", "step_z", "step_x", "oracle_z", "oracle_x", "adam_x", "copy_z", "gossip_z",
            "gossip_x", "average_g", "step_z_y", "step_x_y", "track_out", "track_in", "gossip_y",
            "average_x", "save_x", "stream_mark", "oracle_prev", "storm_out", "stream_rewind",
            "storm_in", "track_out_v", "track_in_v", "user", "gossip_g")
_PLAN_TABLE = {
    # Z = W^t (X - eta G_prev); G = g(Z); X = W^t (X - eta G)
    ALG_DPOSG: (OP_STEP_Z, OP_GOSSIP_Z, OP_ORACLE_Z, OP_STEP_X, OP_GOSSIP_X),
    # B = W^t X; Z = B - eta G_prev; G = g(Z); X = B - eta G
    ALG_DPOSG_SINGLE: (OP_GOSSIP_X, OP_STEP_Z, OP_ORACLE_Z, OP_STEP_X),
    # one shared copy (all rows equal): z = x - eta gbar_prev; gbar = mean_i g_i(z); x = x - eta gbar
    ALG_CPOSG: (OP_STEP_Z, OP_ORACLE_Z, OP_AVERAGE_G, OP_STEP_X),
    # X = W^t (X - eta g(X)); Z = X
    ALG_DSGDA: (OP_ORACLE_X, OP_STEP_X, OP_GOSSIP_X, OP_COPY_Z),
    # Z = W^t (X - eta g(X)); X = W^t (X - eta g(Z))
    ALG_DEG: (OP_ORACLE_X, OP_STEP_Z, OP_GOSSIP_Z, OP_ORACLE_Z, OP_STEP_X, OP_GOSSIP_X),
    # optimistic Adam at Z = X, then gossip of the parameters (the moments stay local)
    ALG_DPOADAM: (OP_ORACLE_X, OP_ADAM_X, OP_GOSSIP_X, OP_COPY_Z),
    # the gradients gossiped first: the moments (and the step) follow W^t G, not the local G
    ALG_DPOADAM_GG: (OP_ORACLE_X, OP_GOSSIP_G, OP_ADAM_X, OP_GOSSIP_X, OP_COPY_Z),
    # the gradients are averaged exactly, then one shared optimistic Adam step
    ALG_CPOADAM: (OP_ORACLE_X, OP_AVERAGE_G, OP_ADAM_X, OP_COPY_Z),
    # X = W^t (X - eta Y); Y = W^t (Y + g(X) - G_prev); Z = X
    ALG_GT_DA: (OP_STEP_X_Y, OP_GOSSIP_X, OP_TRACK_OUT, OP_ORACLE_X, OP_TRACK_IN, OP_GOSSIP_Y,
                OP_COPY_Z),
    # Z = W^t (X - eta Y); Y = W^t (Y + g(Z) - G_prev); X = W^t (X - eta Y)
    ALG_DPOSG_GT: (OP_STEP_Z_Y, OP_GOSSIP_Z, OP_TRACK_OUT, OP_ORACLE_Z, OP_TRACK_IN, OP_GOSSIP_Y,
                   OP_STEP_X_Y, OP_GOSSIP_X),
    # X = X - eta g(X), then X = mean row every tau-th iteration; Z = X
    ALG_LOCAL_SGDA: (OP_ORACLE_X, OP_STEP_X, OP_AVERAGE_X, OP_COPY_Z),
    # Z = X - eta G_prev; G = g(Z); X = X - eta G, then X = mean row every tau-th iteration
    ALG_LOCAL_OSGDA: (OP_STEP_Z, OP_ORACLE_Z, OP_STEP_X, OP_AVERAGE_X),
    # X_prev = X; X = W^t (X - eta Y); V = g(X; xi) + (1 - beta) (V - g(X_prev; xi));
    # Y = W^t (Y + V - V_prev); Z = X
    ALG_DM_HSGD: (OP_SAVE_X, OP_STEP_X_Y, OP_GOSSIP_X, OP_TRACK_OUT_V, OP_STREAM_MARK,
                  OP_ORACLE_PREV, OP_STORM_OUT, OP_STREAM_REWIND, OP_ORACLE_X, OP_STORM_IN,
                  OP_TRACK_IN_V, OP_GOSSIP_Y, OP_COPY_Z),
    # the same with a fresh sample at each point (the estimator's control: no shared sample)
    ALG_DM_HSGD_FRESH: (OP_SAVE_X, OP_STEP_X_Y, OP_GOSSIP_X, OP_TRACK_OUT_V, OP_ORACLE_PREV,
                        OP_STORM_OUT, OP_ORACLE_X, OP_STORM_IN, OP_TRACK_IN_V, OP_GOSSIP_Y,
                        OP_COPY_Z),
}


# iteration 0 (initialization): one oracle call at z0 for the optimistic methods
# and for the tracking methods, Y = G (Y starts at 0)
_INIT_TABLE = {ALG_DPOSG: (OP_ORACLE_Z,), ALG_DPOSG_SINGLE: (OP_ORACLE_Z,),
               ALG_CPOSG: (OP_ORACLE_Z, OP_AVERAGE_G), ALG_GT_DA: (OP_ORACLE_X, OP_TRACK_IN),
               ALG_DPOSG_GT: (OP_ORACLE_Z, OP_TRACK_IN), ALG_LOCAL_OSGDA: (OP_ORACLE_Z,),
               ALG_DM_HSGD: (OP_ORACLE_X, OP_STORM_IN, OP_TRACK_IN_V),
               ALG_DM_HSGD_FRESH: (OP_ORACLE_X, OP_STORM_IN, OP_TRACK_IN_V)}


def plan(alg: int, init: bool = False) -> tuple[str, ...]:
    """The phases of one iteration of algorithm ``alg`` (of the initialization with init=True)."""
    return tuple(OP_NAMES[op] for op in (_INIT_TABLE if init else _PLAN_TABLE).get(alg, ()))


@njit(cache=True)
def local_ops(ops, p, k, workers, steps, operator, noise, constraints, work):
    """Run the local phases ops[p], ops[p + 1], ... of iteration k on a block of workers, in place,
    up to the first communication or the end of the plan. Returns the index of that operation
    (ops[index] is OP_END at the end). The arguments are the tuples of
    :func:`minmaxlab.engine.driver.simulate` for the block: workers = (X, Z, G, S1, S2, S3,
    state) with the algorithm's own state S1..S3 (see :data:`STATE_USE`), steps = (eta, beta1,
    beta2, adam_eps, eta_scale) (:func:`scaled_eta`), operator = (fid, P, A, S) with the block's
    rows of A and S, noise = (noise_kind, noise_scale, batch, shifts) with its rows of shifts,
    constraints = (proj_kind, proj_a, proj_b, dim_u); ``work`` is a (d,) array.

    The MPI backend calls this between its communications. ``simulate`` runs the same phase
    kernels in the same dispatch inline (a call per segment would cost measurable time on small
    problems)."""
    X, Z, G, S1, S2, S3, state = workers
    eta0, beta1, beta2, adam_eps, eta_scale = steps
    fid, P, A, S = operator
    noise_kind, noise_scale, batch, shifts = noise
    proj_kind, proj_a, proj_b, dim_u = constraints
    eta = eta0
    if eta_scale.shape[0] > 0 and k > 0:
        eta = np.empty_like(eta0)
        scaled_eta(eta, eta0, eta_scale, k)
    flat = flat_step(eta, proj_kind)
    while True:
        op = ops[p]
        if op == OP_STEP_Z and flat > 0.0:
            plain_step(Z, X, G, flat)
        elif op == OP_STEP_Z:
            step_rows(Z, X, G, eta, proj_kind, proj_a, proj_b, dim_u, work)
        elif op == OP_STEP_X and flat > 0.0:
            plain_step_inplace(X, G, flat)
        elif op == OP_STEP_X:
            step_rows_inplace(X, G, eta, proj_kind, proj_a, proj_b, dim_u, work)
        elif op == OP_ORACLE_Z:
            oracle_all(Z, G, fid, P, A, S, noise_kind, noise_scale, batch, shifts, state)
        elif op == OP_ORACLE_X:
            oracle_all(X, G, fid, P, A, S, noise_kind, noise_scale, batch, shifts, state)
        elif op == OP_ADAM_X:
            adam_step(X, G, S1, S2, S3, eta, beta1, beta2, adam_eps, k)
            project_rows(X, proj_kind, proj_a, proj_b, eta, dim_u, work)
        elif op == OP_COPY_Z:
            copy_rows(Z.reshape(-1), X.reshape(-1))
        elif op == OP_STEP_Z_Y or op == OP_STEP_X_Y:
            tracked_step(op == OP_STEP_Z_Y, X, Z, S1, eta, flat, constraints, work)
        elif op == OP_TRACK_OUT:
            add_rows(S1.reshape(-1), G.reshape(-1), -1.0)
        elif op == OP_TRACK_IN:
            add_rows(S1.reshape(-1), G.reshape(-1), 1.0)
        elif op == OP_USER:
            user_phase(X, Z, G, S1, S2, S3, eta, k)
        elif OP_SAVE_X <= op <= OP_TRACK_IN_V:
            storm_op(op, workers, beta1, operator, noise)
        else:
            return p
        p += 1


@njit(cache=True)
def scaled_eta(out, eta, eta_scale, k):
    """out = the step sizes of iteration k >= 1: eta times eta_scale[k - 1] (a step-size
    schedule, :meth:`minmaxlab.algorithms.Algorithm.eta_scale`; an empty eta_scale keeps eta)."""
    f = eta_scale[k - 1] if eta_scale.shape[0] > 0 else 1.0
    for c in range(eta.shape[0]):
        out[c] = eta[c] * f


@njit(cache=True)
def user_phase(X, Z, G, S1, S2, S3, eta, k):
    """The phase "user" of the library's kernels: nothing. A run of an algorithm with its own
    kernel compiles the chain again with that kernel bound here (:mod:`minmaxlab.engine.chain`)."""
    return None


@njit(cache=True)
def storm_op(op, workers, beta, operator, noise):
    """The local phases of the variance-reduced methods (OP_SAVE_X .. OP_TRACK_IN_V; every one
    local): the previous X in S3, the STORM estimator in S2, the tracker in S1, and the mark
    that replays a sample (the stream state's words STATE_WORDS.. hold the mark)."""
    X, Z, G, S1, S2, S3, state = workers
    fid, P, A, S = operator
    noise_kind, noise_scale, batch, shifts = noise
    if op == OP_SAVE_X:
        copy_rows(S3.reshape(-1), X.reshape(-1))
    elif op == OP_STREAM_MARK or op == OP_STREAM_REWIND:
        w = STATE_WORDS
        for i in range(state.shape[0]):
            for c in range(w):
                if op == OP_STREAM_MARK:
                    state[i, w + c] = state[i, c]
                else:
                    state[i, c] = state[i, w + c]
    elif op == OP_ORACLE_PREV:
        oracle_all(S3, G, fid, P, A, S, noise_kind, noise_scale, batch, shifts, state)
    elif op == OP_STORM_OUT:
        Vf, Gf = S2.reshape(-1), G.reshape(-1)
        for q in range(Vf.shape[0]):
            Vf[q] = (1.0 - beta) * (Vf[q] - Gf[q])
    elif op == OP_STORM_IN:
        add_rows(S2.reshape(-1), G.reshape(-1), 1.0)
    elif op == OP_TRACK_OUT_V:
        add_rows(S1.reshape(-1), S2.reshape(-1), -1.0)
    else:  # OP_TRACK_IN_V
        add_rows(S1.reshape(-1), S2.reshape(-1), 1.0)


@njit(cache=True)
def tracked_step(to_z, X, Z, Y, eta, flat, constraints, work):
    """Z = proj(X - eta Y) (to_z) or X = proj(X - eta Y): the steps of the tracking methods, on
    the tracker Y in place of the gradient."""
    proj_kind, proj_a, proj_b, dim_u = constraints
    if to_z and flat > 0.0:
        plain_step(Z, X, Y, flat)
    elif to_z:
        step_rows(Z, X, Y, eta, proj_kind, proj_a, proj_b, dim_u, work)
    elif flat > 0.0:
        plain_step_inplace(X, Y, flat)
    else:
        step_rows_inplace(X, Y, eta, proj_kind, proj_a, proj_b, dim_u, work)


# What each algorithm keeps in the state rows S1, S2, S3 (one row per worker when its plan reads
# them, else one row in all)
STATE_USE = {"adam_x": ("first moment m", "second moment v", "last step D_{k-1}"),
             "track_in": ("tracker Y of the mean gradient",),
             "storm_in": ("tracker Y of the mean estimator", "STORM estimator V", "previous X"),
             "user": ("the method's own state", "the method's own state", "the method's own state")}


def _names(plan_or_alg) -> tuple[str, ...]:
    """The phase names of an iteration and of the initialization together: from an algorithm id
    or a (iteration, initialization) pair of name tuples."""
    if isinstance(plan_or_alg, (int, np.integer)):
        return plan(int(plan_or_alg)) + plan(int(plan_or_alg), init=True)
    return tuple(plan_or_alg[0]) + tuple(plan_or_alg[1])


def replays_samples(plan_or_alg) -> bool:
    """Whether the algorithm (an id, or its phase names) marks and rewinds its streams (its
    stream states then carry a second group of STATE_WORDS words for the mark)."""
    return "stream_mark" in _names(plan_or_alg)


def state_rows(plan_or_alg) -> int:
    """How many of S1, S2, S3 the algorithm (an id, or its phase names) reads (0, 1 or 3)."""
    ops = _names(plan_or_alg)
    return max((len(use) for op, use in STATE_USE.items() if op in ops), default=0)


def count_phases(ops: tuple[str, ...]) -> tuple[int, int, int]:
    """(oracle calls, gossip phases, exact averages) of a sequence of phase names. A periodic
    average (average_x) counts as one; it costs only on the iterations whose rounds are > 0."""
    return (sum(op.startswith("oracle") for op in ops), sum(op.startswith("gossip") for op in ops),
            ops.count("average_g") + ops.count("average_x"))


def plan_counts(alg: int, init: bool = False) -> tuple[int, int, int]:
    """(oracle calls, gossip phases, exact averages) of one iteration of algorithm ``alg`` (of its
    initialization with ``init``), counted from its plan: the one place an algorithm's costs come
    from (the engines' records and the cost model read them here)."""
    return count_phases(plan(alg, init=init))


def encode(iteration: tuple[str, ...], init: tuple[str, ...] = ()) -> tuple:
    """The kernels' form of a plan given by phase names: (ops, init_ops, counts), with ops and
    init_ops int64 arrays ending in OP_END and counts = (oracle calls, gossip phases, exact
    averages) of an iteration, then of the initialization, then the periodic averages. Raises
    ValueError naming an unknown phase."""
    for name in (*iteration, *init):
        if name not in OP_NAMES[1:]:
            raise ValueError(f"unknown phase {name!r}; phases: {', '.join(OP_NAMES[1:])}")
    ops = np.array([OP_NAMES.index(n) for n in iteration] + [OP_END], dtype=np.int64)
    init_ops = np.array([OP_NAMES.index(n) for n in init] + [OP_END], dtype=np.int64)
    counts = np.array([*count_phases(tuple(iteration)), *count_phases(tuple(init)),
                       tuple(iteration).count("average_x")], dtype=np.int64)
    return ops, init_ops, counts


@njit(cache=True)
def costs(counts, k, t, d, M, avg_degree, msg):
    """(oracle calls per worker, floats sent per worker) of iteration k (k = 0: initialization)
    with t gossip rounds, model size d, M workers and average degree ``avg_degree``, from the
    plan's ``counts`` (:func:`encode`): an oracle phase is one call, a gossip phase t rounds of a
    message of ``msg`` floats (d, or fewer when compressed) to each neighbour, an exact average
    2 d (M - 1) / M floats (ring all-reduce)."""
    c = 3 if k == 0 else 0
    calls, gossips, averages = counts[c], counts[c + 1], counts[c + 2]
    if k > 0 and t == 0:  # an iteration without its periodic average
        averages -= counts[6]
    return float(calls), gossips * (t * msg * avg_degree) + averages * (2.0 * d * (M - 1) / M)
