"""The simulator's driver: a whole run of all workers in one compiled call."""

import numpy as np
from numba import njit

from minmaxlab.engine.compression import COMP_NONE, choco_gossip
from minmaxlab.engine.families import library_rows as rows
from minmaxlab.engine.gossip import average_rows, chebyshev_gossip, gossip
from minmaxlab.engine.metrics import (
    COL_GRADIENT_MAPPING,
    NSTATS,
    accumulate,
    finite_below,
    gradient_mapping,
    record_row,
    stationarity,
)
from minmaxlab.engine.oracle import add_noise, oracle_all, oracle_is_mean
from minmaxlab.engine.plans import (
    OP_ADAM_X,
    OP_AVERAGE_G,
    OP_COPY_Z,
    OP_END,
    OP_GOSSIP_G,
    OP_GOSSIP_X,
    OP_GOSSIP_Y,
    OP_GOSSIP_Z,
    OP_ORACLE_X,
    OP_ORACLE_Z,
    OP_SAVE_X,
    OP_STEP_X,
    OP_STEP_X_Y,
    OP_STEP_Z,
    OP_STEP_Z_Y,
    OP_TRACK_IN,
    OP_TRACK_IN_V,
    OP_TRACK_OUT,
    OP_USER,
    costs,
    scaled_eta,
    storm_op,
    tracked_step,
    user_phase,
)
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

STATUS_OK = 0
STATUS_DIVERGED = 1


@njit(cache=True)
def gossip_phase(Y, hat, t, round0, graph, scratch, state):
    """One gossip phase of a plan on all workers: t plain rounds; t Chebyshev rounds when the
    graph tuple's cheb_rho is >= 0; t compressed rounds with error feedback (public copies in
    ``hat``) when its compression is not COMP_NONE. scratch = (tmp, prev, work): two arrays of
    Y's shape and a (2 d,) one. Returns the rounds done."""
    indptr, indices, weights, avg_degree, cheb_rho, comp = graph
    tmp, prev, work = scratch
    if comp[0] != COMP_NONE:
        return choco_gossip(Y, hat, tmp, work, t, round0, graph, comp, state)
    if cheb_rho >= 0.0:
        return chebyshev_gossip(Y, tmp, prev, t, round0, indptr, indices, weights, cheb_rho)
    return gossip(Y, tmp, t, round0, indptr, indices, weights)


@njit(cache=True)
def simulate(plan, rounds, operator, noise, graph, steps, constraints, workers, recording):
    """Run ``rounds.shape[0]`` iterations of an algorithm (``rounds[k - 1]`` gossip rounds per
    gossip phase at iteration k) from the workers' state, in place. The arguments are tuples:

    - plan = (ops, init_ops, counts): the algorithm's plan (:func:`minmaxlab.engine.plans.encode`);

    - operator = (fid, P, A, S, Abar, Sbar, mean_loop): the family's data, the mean operator's;
    - noise = (noise_kind, noise_scale, batch, shifts);
    - graph = (indptr, indices, weights, avg_degree, cheb_rho, comp): the stacked sparse mixing
      matrices; cheb_rho >= 0 makes every gossip phase Chebyshev-accelerated for a W with that
      rho (:func:`minmaxlab.engine.gossip.chebyshev_gossip`), -1 plain; comp = (kind, param,
      gamma, feedback, msg) compresses every gossip phase of Z and X
      (:mod:`minmaxlab.engine.compression`, public copies in S2 and S3), msg floats per message;
    - steps = (eta, beta1, beta2, adam_eps, eta_scale): step sizes per coordinate, optimistic
      Adam's constants (beta1 is the STORM weight beta of the variance-reduced methods), and a
      step-size schedule: iteration k steps with eta * eta_scale[k - 1] (empty: eta throughout;
      the stationarity measures keep eta);
    - constraints = (proj_kind, proj_a, proj_b, dim_u): the players' sets;
    - workers = (X, Z, G, S1, S2, S3, state): every worker's iterates, gradient, the
      algorithm's own state (:data:`minmaxlab.engine.plans.STATE_USE`: optimistic Adam's
      moments, a tracker) and random stream;
    - recording = (solution, has_solution, record, out, blowup, every_iteration, traj).

    Every iteration runs the plan's ``ops`` (``init_ops`` at iteration 0) on all workers
    as one block: the local phases as in :func:`local_ops`, gossip by :func:`gossip` and exact
    averaging by :func:`average_rows`. Records the metric columns COLUMNS at the iterations listed
    in ``record`` (sorted; 0 = the initial state) into ``out``, and the network average zbar into
    ``traj`` when it has a row per record (a (0, d) array records no iterates). A run whose X leaves
    [-blowup, blowup] or stops being finite stops there. Returns (status, last_iteration,
    rows_written).
    """
    plan_ops, init_ops, counts = plan
    fid, P, A, S, Abar, Sbar, mean_loop = operator
    noise_kind, noise_scale, batch, shifts = noise
    avg_degree = graph[3]
    eta0, beta1, beta2, adam_eps, eta_scale = steps
    proj_kind, proj_a, proj_b, dim_u = constraints
    X, Z, G, S1, S2, S3, state = workers
    solution, has_solution, record, out, blowup, every_iteration, traj = recording
    M, d = X.shape
    K = rounds.shape[0]
    tmpg = np.empty((M, d))
    FZ = np.empty((M, d))
    tmpM = np.empty((M, d))
    zbar = np.empty((1, d))
    f1 = np.empty((1, d))
    tmp1 = np.empty((1, d))
    part = np.empty((1, 3, d))
    acc = np.empty(d)
    work = np.empty(d)
    scratch = (tmpg, tmpM, np.empty(2 * d))
    gmy = np.empty(d)
    nostate = np.zeros((1, STATE_WORDS), dtype=np.uint64)
    stats = np.zeros(NSTATS)
    stats[2] = np.inf
    stats[3] = np.inf
    stats[6] = np.inf
    Xf = X.reshape(M * d)
    Zf = Z.reshape(M * d)
    eta = eta0.copy()  # this iteration's step sizes (eta0 scaled by the schedule)
    flat = flat_step(eta, proj_kind)
    scheduled = eta_scale.shape[0] > 0
    Gf = G.reshape(M * d)
    FZf = FZ.reshape(M * d)
    # one operator pass instead of two when F(z_i) is what the oracle computes before its noise
    reuse = oracle_is_mean(fid, A, S, Abar, Sbar, mean_loop, noise_kind)

    oracle_calls = 0.0
    gossip_rounds = np.int64(0)
    floats = 0.0
    row = np.int64(0)
    nrec = record.shape[0]
    status = STATUS_OK
    k_last = np.int64(0)
    for k in range(0, K + 1):
        t = rounds[k - 1] if k > 0 else 0
        ops = plan_ops if k > 0 else init_ops
        want = row < nrec and record[row] == k
        metrics = every_iteration or want
        have_fz = False  # FZ holds F(z_i) at the current Z
        if scheduled and k > 0:
            scaled_eta(eta, eta0, eta_scale, k)
            flat = flat_step(eta, proj_kind)
        p = 0
        while True:  # the plan; the local phases as in local_ops
            op = ops[p]
            if op == OP_END:
                break
            if op == OP_STEP_Z and flat > 0.0:
                plain_step(Z, X, G, flat)
                have_fz = False
            elif op == OP_STEP_Z:
                step_rows(Z, X, G, eta, proj_kind, proj_a, proj_b, dim_u, work)
                have_fz = False
            elif op == OP_STEP_X and flat > 0.0:
                plain_step_inplace(X, G, flat)
            elif op == OP_STEP_X:
                step_rows_inplace(X, G, eta, proj_kind, proj_a, proj_b, dim_u, work)
            elif op == OP_ORACLE_Z and reuse and metrics:
                rows(fid, Z, FZ, P, A, S, np.int64(-1), state, np.int64(0))
                copy_rows(Gf, FZf)
                add_noise(G, noise_kind, noise_scale, batch, shifts, state)
                have_fz = True
            elif op == OP_ORACLE_Z:
                oracle_all(Z, G, fid, P, A, S, noise_kind, noise_scale, batch, shifts, state)
            elif op == OP_ORACLE_X:
                oracle_all(X, G, fid, P, A, S, noise_kind, noise_scale, batch, shifts, state)
            elif op == OP_ADAM_X:
                adam_step(X, G, S1, S2, S3, eta, beta1, beta2, adam_eps, k)
                project_rows(X, proj_kind, proj_a, proj_b, eta, dim_u, work)
            elif op == OP_COPY_Z:
                copy_rows(Zf, Xf)
                have_fz = False
            elif op == OP_GOSSIP_Z:
                gossip_rounds += gossip_phase(Z, S2, t, gossip_rounds, graph, scratch, state)
                have_fz = False
            elif op == OP_GOSSIP_X:
                gossip_rounds += gossip_phase(X, S3, t, gossip_rounds, graph, scratch, state)
            elif op == OP_STEP_Z_Y or op == OP_STEP_X_Y:
                tracked_step(op == OP_STEP_Z_Y, X, Z, S1, eta, flat, constraints, work)
                have_fz = have_fz and op == OP_STEP_X_Y
            elif op == OP_TRACK_OUT:
                add_rows(S1.reshape(-1), Gf, -1.0)
            elif op == OP_TRACK_IN:
                add_rows(S1.reshape(-1), Gf, 1.0)
            elif op == OP_GOSSIP_Y:
                gossip_rounds += gossip_phase(S1, S1, t, gossip_rounds, graph, scratch, state)
            elif op == OP_GOSSIP_G:
                gossip_rounds += gossip_phase(G, G, t, gossip_rounds, graph, scratch, state)
            elif op == OP_USER:
                user_phase(X, Z, G, S1, S2, S3, eta, k)
                have_fz = False
            elif OP_SAVE_X <= op <= OP_TRACK_IN_V:
                storm_op(op, workers, beta1, (fid, P, A, S), noise)
            elif op == OP_AVERAGE_G:
                average_rows(G)
            elif t > 0:  # OP_AVERAGE_X on an iteration that averages
                average_rows(X)
            p += 1
        calls, sent = costs(counts, k, t, d, M, avg_degree, graph[5][4])
        oracle_calls += calls
        floats += sent
        # divergence: non-finite or exploding iterates stop the run
        # (X is updated after Z in every algorithm, so an exploding Z shows up in X)
        if k > 0 and not finite_below(X, blowup):
            status = STATUS_DIVERGED
            k_last = k
            break
        k_last = k
        if metrics:
            s_loc, s_avg, s_w = stationarity(Z, fid, P, Abar, Sbar, mean_loop, nostate, FZ, tmpM,
                                              zbar, f1, tmp1, part, have_fz)
            if k > 0 or not every_iteration:
                accumulate(stats, s_loc, s_avg, s_w)
            if want:
                record_row(out, row, k, s_loc, s_avg, s_w, stats, Z, X, solution, has_solution, traj,
                            acc, oracle_calls, gossip_rounds, floats)
                out[row, COL_GRADIENT_MAPPING] = gradient_mapping(
                    zbar, f1, s_avg, eta0, proj_kind, proj_a, proj_b, dim_u, gmy, work)
                row += 1
    return status, k_last, row
