"""The simulation engine against tiny pure-numpy references, reductions and properties."""

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

import minmaxlab as mml
from minmaxlab.engine import driver, gossip, oracle, projections, streams
from minmaxlab.errors import AlgorithmError, MinmaxlabError
from minmaxlab.testing import connected_graphs, problems, starts, topologies

SMALL = ["bilinear", "quadratic", "minty_bowl", "weak_mvi_quadratic", "forsaken", "polar",
         "dirac_gan", "covariance_wgan", "global_forsaken"]


def _Fi(prob, Z):
    return np.array([prob.F_i(i, Z[i]) for i in range(prob.workers)])


def _Wt(W, t):
    return np.linalg.matrix_power(W, t)


def reference(alg, prob, W, z0, iterations, eta, t=1, betas=(0.5, 0.9, 1e-8)):
    """Pure-numpy implementation of every algorithm, written from ALGORITHM.md."""
    M = prob.workers
    X = np.tile(z0, (M, 1)).astype(float)
    Z = X.copy()
    Wt = _Wt(W, t)
    J = np.full((M, M), 1.0 / M)
    key = alg.key if not (alg.key == "dposg" and alg.variant != "default") else "single"
    G = _Fi(prob, Z)
    if key == "cposg" or key == "osg":
        G = J @ G
    m = np.zeros_like(X)
    v = np.zeros_like(X)
    Dp = np.zeros_like(X)
    b1, b2, eps = betas
    scale = alg.eta_scale(iterations)
    eta0 = eta
    for k in range(1, iterations + 1):
        eta = eta0 * (scale[k - 1] if len(scale) else 1.0)
        if key == "dposg":
            Z = Wt @ (X - eta * G)
            G = _Fi(prob, Z)
            X = Wt @ (X - eta * G)
        elif key == "single":
            B = Wt @ X
            Z = B - eta * G
            G = _Fi(prob, Z)
            X = B - eta * G
        elif key in ("cposg", "osg"):
            Z = X - eta * G
            G = J @ _Fi(prob, Z)
            X = X - eta * G
        elif key == "dsgda":
            X = Wt @ (X - eta * _Fi(prob, X))
            Z = X
        elif key == "deg":
            Z = Wt @ (X - eta * _Fi(prob, X))
            X = Wt @ (X - eta * _Fi(prob, Z))
        elif key in ("dpoadam", "cpoadam"):
            g = _Fi(prob, X)
            if key == "cpoadam":
                g = J @ g
            elif alg.moments == "gossiped_gradient":
                g = Wt @ g
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            D = (m / (1 - b1**k)) / (np.sqrt(v / (1 - b2**k)) + eps)
            X = X - 2 * eta * D + eta * Dp
            Dp = D
            if key == "dpoadam":
                X = Wt @ X
            Z = X
    return X, Z


ALGS = [
    lambda t: mml.DPOSG(eta=0.07, rounds=t),
    lambda t: mml.DPOSG(eta=0.07, rounds=t, variant="single_exchange"),
    lambda t: mml.CPOSG(eta=0.07),
    lambda t: mml.DSGDA(eta=0.07, rounds=t),
    lambda t: mml.DEG(eta=0.07, rounds=t),
    lambda t: mml.DPOAdam(eta=0.02, rounds=t),
    lambda t: mml.CPOAdam(eta=0.02),
    lambda t: mml.DPOAdam(eta=0.02, rounds=t, moments="gossiped_gradient", decay=0.6),
    lambda t: mml.CPOAdam(eta=0.02, decay=1.0),
]


@settings(max_examples=40, deadline=None)
@given(data=st.data(), which=st.integers(0, len(ALGS) - 1), t=st.integers(0, 3))
def test_first_iterations_match_numpy_reference(data, which, t):
    prob = data.draw(problems(families=SMALL, min_workers=1, max_workers=6))
    topo = data.draw(topologies(prob.workers, prob.workers, rules=("metropolis", "maxdegree")))
    alg = ALGS[which](t)
    z0 = data.draw(starts(prob))
    tr = mml.run(prob, topo, alg, iterations=3, z0=z0, record="all")
    eta = alg.eta
    X, Z = reference(alg, prob, topo.W, z0, 3, eta, t=getattr(alg, "rounds", 1))
    assert np.allclose(tr.final_x, X, rtol=1e-10, atol=1e-12)
    assert np.allclose(tr.final_z, Z, rtol=1e-10, atol=1e-12)


def test_linear_decay():
    """eta falls linearly to 0 over the last ceil(decay K) iterations; decay = 0 is constant."""
    from minmaxlab.algorithms import linear_decay

    assert np.allclose(linear_decay(0.5, 6), [1, 1, 1, 1, 2 / 3, 1 / 3])
    assert np.allclose(linear_decay(1.0, 4), [1, 0.75, 0.5, 0.25])
    assert np.allclose(linear_decay(0.3, 4), [1, 1, 1, 0.5])  # ceil(1.2) = 2 decaying iterations
    assert linear_decay(0.0, 5).shape == (0,)
    assert mml.DPOAdam(eta=0.1, decay=0.5).eta_scale(4).tolist() == [1, 1, 1.0, 0.5]
    assert mml.DPOSG(eta=0.1).eta_scale(4).shape == (0,)
    with pytest.raises(AlgorithmError, match="decay must lie in"):
        mml.CPOAdam(eta=0.1, decay=1.5)
    with pytest.raises(AlgorithmError, match="moments must be one of"):
        mml.DPOAdam(eta=0.1, moments="gossiped")


def test_gossiped_gradient_moments_on_the_complete_graph_are_cpoadam():
    """With W = J the gradients' gossip is the exact average: DPOAdam with moments of the gossiped
    gradient is CPOAdam (to rounding), where the local moments differ on heterogeneous workers."""
    prob = mml.problem("minty_bowl_shifted", workers=6)
    topo = mml.topology("complete", 6)
    kw = dict(eta=0.02, decay=0.5)
    c = mml.run(prob, topo, mml.CPOAdam(**kw), iterations=40, record="all")
    g = mml.run(prob, topo, mml.DPOAdam(rounds=1, moments="gossiped_gradient", **kw), 40,
                record="all")
    loc = mml.run(prob, topo, mml.DPOAdam(rounds=1, **kw), 40, record="all")
    assert np.allclose(g.final_x, c.final_x, rtol=1e-9, atol=1e-12)
    assert not np.allclose(loc.final_x, c.final_x, rtol=1e-6, atol=1e-9)
    assert g.to_frame().floats_sent_per_worker.iloc[-1] == 2 * loc.to_frame().floats_sent_per_worker.iloc[-1]


def test_osg_reference_and_metrics_columns():
    prob = mml.problem("forsaken", workers=1)
    tr = mml.run(prob, mml.topology("complete", 1), mml.OSG(eta=0.02), iterations=3, record="all")
    X, Z = reference(mml.OSG(eta=0.02), prob, np.eye(1), tr.spec and _z0(prob), 3, 0.02)
    assert np.allclose(tr.final_x, X, atol=1e-14) and np.allclose(tr.final_z, Z, atol=1e-14)
    df = tr.to_frame()
    assert list(df.iteration) == [0, 1, 2, 3]
    Fz = prob.F(tr.final_z[0])
    assert df.stationarity_local.iloc[-1] == pytest.approx(Fz @ Fz, rel=1e-12)
    assert df.oracle_calls.iloc[-1] == 4  # one at z0, one per iteration
    assert (df.status == "ok").all()


def _z0(prob):
    from minmaxlab.simulate import default_start

    return default_start(prob)


def test_metrics_against_direct_computation():
    prob = mml.problem("minty_bowl_hetero", workers=6)
    topo = mml.topology("ring", 6)
    tr = mml.run(prob, topo, mml.DPOSG(eta=0.05, rounds=2), iterations=50, record=[0, 10, 50])
    df = tr.to_frame()
    Z, X = tr.final_z, tr.final_x
    Fl = np.mean([prob.F(z) for z in Z], axis=0)
    zbar = Z.mean(axis=0)
    last = df.iloc[-1]
    assert last.stationarity_local == pytest.approx(Fl @ Fl, rel=1e-10)
    assert last.stationarity_avg == pytest.approx(prob.F(zbar) @ prob.F(zbar), rel=1e-10)
    assert last.consensus_z == pytest.approx(np.mean(np.sum((Z - zbar) ** 2, axis=1)), rel=1e-10)
    assert last.consensus_x == pytest.approx(
        np.mean(np.sum((X - X.mean(0)) ** 2, axis=1)), rel=1e-10)
    assert last.dist_to_solution == pytest.approx(zbar @ zbar, rel=1e-10)
    assert last.gossip_rounds == 2 * 2 * 50
    assert last.floats_sent_per_worker == pytest.approx(50 * 2 * 2 * 20 * 2)  # 2 neighbours
    # running average over every iteration 1..K equals the mean of the per-iteration values
    full = mml.run(prob, topo, mml.DPOSG(eta=0.05, rounds=2), iterations=50, record="all").to_frame()
    assert last.avg_stationarity_local == pytest.approx(full.stationarity_local[1:].mean(), rel=1e-10)
    assert last.min_stationarity_avg == pytest.approx(full.stationarity_avg[1:].min(), rel=1e-12)
    workers = np.mean([prob.F(z) @ prob.F(z) for z in Z])
    assert last.stationarity_workers == pytest.approx(workers, rel=1e-10)
    assert last.avg_stationarity_workers == pytest.approx(full.stationarity_workers[1:].mean(),
                                                          rel=1e-10)
    assert last.min_stationarity_workers == pytest.approx(full.stationarity_workers[1:].min(),
                                                          rel=1e-12)
    assert not np.isclose(last.min_stationarity_workers, last.min_stationarity_avg)


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_C1_mean_dynamics_follow_osg(data):
    """Network averages: zbar^k = xbar^{k-1} - eta mean_i g_i(z_i^{k-1}),
    xbar^k = xbar^{k-1} - eta mean_i g_i(z_i^k), for any doubly stochastic W."""
    prob = data.draw(problems(families=["minty_bowl", "bilinear", "polar"], min_workers=2,
                              max_workers=6))
    G = data.draw(connected_graphs(prob.workers, prob.workers))
    topo = mml.Topology.from_graph(G, rule="metropolis")
    t = data.draw(st.integers(1, 3))
    eta = 0.03
    alg = mml.DPOSG(eta=eta, rounds=t)
    xs, zs = [], []
    for k in range(0, 6):
        tr = mml.run(prob, topo, alg, iterations=k)
        xs.append(tr.final_x)
        zs.append(tr.final_z)
    for k in range(1, 6):
        gprev = _Fi(prob, zs[k - 1]).mean(axis=0)
        gnew = _Fi(prob, zs[k]).mean(axis=0)
        xbar_prev = xs[k - 1].mean(axis=0)
        assert np.allclose(zs[k].mean(axis=0), xbar_prev - eta * gprev, rtol=0, atol=1e-12)
        assert np.allclose(xs[k].mean(axis=0), xbar_prev - eta * gnew, rtol=0, atol=1e-12)


@pytest.mark.parametrize("noise", [None, 0.3])
def test_C7_limits_identical_trajectories(noise):
    prob = mml.problem("minty_bowl_hetero", workers=8, dim=6)
    if noise:
        prob = prob.with_noise(sigma=noise, batch=2)
    J = mml.Topology.from_matrix(np.full((8, 8), 1 / 8))
    d = mml.run(prob, J, mml.DPOSG(eta=0.05, rounds=1), iterations=1000, seed=3, record="all")
    c = mml.run(prob, J, mml.CPOSG(eta=0.05), iterations=1000, seed=3, record="all")
    assert np.max(np.abs(d.final_z - c.final_z)) < 1e-12
    dz = np.abs(d.to_frame().stationarity_local - c.to_frame().stationarity_local)
    assert dz.max() < 1e-12
    one = mml.problem("minty_bowl", workers=1, dim=6)
    if noise:
        one = one.with_noise(sigma=noise, batch=2)
    ring1 = mml.topology("ring", 1)
    d1 = mml.run(one, ring1, mml.DPOSG(eta=0.05, rounds=2), iterations=1000, seed=4)
    o1 = mml.run(one, ring1, mml.OSG(eta=0.05), iterations=1000, seed=4)
    assert np.max(np.abs(d1.final_z - o1.final_z)) < 1e-12
    assert np.max(np.abs(d1.final_x - o1.final_x)) < 1e-12


@settings(max_examples=60, deadline=None)
@given(data=st.data(), t=st.integers(1, 6), d=st.integers(1, 4))
def test_C2_every_gossip_contracts_by_rho_t(data, t, d):
    G = data.draw(connected_graphs(2, 9))
    topo = mml.Topology.from_graph(G, rule=data.draw(st.sampled_from(["metropolis", "maxdegree"])))
    M = topo.workers
    Y = np.asarray(data.draw(st.lists(st.floats(-100, 100), min_size=M * d, max_size=M * d)))
    Y = Y.reshape(M, d)
    ip, ix, w = topo.neighbors
    Yt = Y.copy()
    gossip.gossip(Yt, np.empty_like(Y), t, 0, ip[None, :], ix[None, :], w[None, :])
    assert np.allclose(Yt, _Wt(topo.W, t) @ Y, atol=1e-9)
    before = np.linalg.norm(Y - Y.mean(axis=0))
    after = np.linalg.norm(Yt - Yt.mean(axis=0))
    assert after <= topo.rho**t * before * (1 + 1e-9) + 1e-9


def test_determinism_and_seeds():
    prob = mml.problem("minty_bowl", workers=4, dim=4).with_noise(sigma=0.5, batch=1)
    topo = mml.topology("ring", 4)
    a = mml.run(prob, topo, mml.DPOSG(eta=0.05), iterations=300, seed=11)
    b = mml.run(prob, topo, mml.DPOSG(eta=0.05), iterations=300, seed=11)
    c = mml.run(prob, topo, mml.DPOSG(eta=0.05), iterations=300, seed=12)
    assert np.array_equal(a.final_z, b.final_z) and a.to_frame().equals(b.to_frame())
    assert not np.array_equal(a.final_z, c.final_z)
    fs = mml.problem("minty_bowl", workers=4, dim=4).with_noise(sigma=0.5, kind="finite_sum",
                                                                 samples=10)
    e = mml.run(fs, topo, mml.DPOSG(eta=0.05), iterations=100, seed=1)
    f = mml.run(fs, topo, mml.DPOSG(eta=0.05), iterations=100, seed=1)
    assert np.array_equal(e.final_x, f.final_x)


@pytest.mark.parametrize("kind", ["gaussian", "finite_sum"])
def test_oracle_noise_is_unbiased_with_variance_sigma2_over_m(kind):
    prob = mml.problem("minty_bowl", workers=2, dim=6).with_noise(sigma=0.8, batch=4, kind=kind,
                                                                  samples=None if kind == "gaussian"
                                                                  else 30)
    z = np.full(6, 0.3)
    F1 = prob.F_i(1, z)
    fid, P, A, S = prob.kernel_data
    state = streams.seed_states(99, 2)
    n = 40000
    out = np.empty((n, 6))
    nk = {"gaussian": oracle.NOISE_GAUSSIAN, "finite_sum": oracle.NOISE_FINITE_SUM}[kind]
    scale = 0.8 / np.sqrt(6 * 4)
    shifts = prob.noise.shifts if kind == "finite_sum" else np.zeros((1, 1, 1))
    Zs = np.tile(z, (2, 1))
    O = np.zeros((2, 6))
    for r in range(n):
        oracle.oracle_all(Zs, O, fid, P, A, S, nk, scale, 4, shifts, state)
        out[r] = O[1]
    err = out - F1
    var = np.mean(np.sum(err**2, axis=1))
    assert var == pytest.approx(0.64 / 4, rel=0.03)
    assert np.all(np.abs(err.mean(axis=0)) < 5 * np.sqrt(0.16 / 6 / n))


def test_projections_closed_forms():
    work = np.empty(8)
    y = np.array([3.0, 4.0, 1.0, -2.0])
    projections.project_segment(projections.PROJ_BALL, 1.0, 0.0, 0.1, y, 0, 2, work)
    assert np.allclose(y, [0.6, 0.8, 1.0, -2.0])
    y = np.array([3.0, -4.0, 0.5])
    projections.project_segment(projections.PROJ_BOX, -1.0, 1.0, 0.1, y, 0, 3, work)
    assert np.allclose(y, [1.0, -1.0, 0.5])
    y = np.array([0.3, -1.0, 0.05])
    projections.project_segment(projections.PROJ_L1, 1.0, 0.0, 0.1, y, 0, 3, work)  # threshold 0.1
    assert np.allclose(y, [0.2, -0.9, 0.0])
    rng = np.random.default_rng(0)
    for _ in range(50):
        v = rng.normal(size=5) * 3
        y = v.copy()
        projections.project_segment(projections.PROJ_SIMPLEX, 2.0, 0.0, 0.1, y, 0, 5, work)
        assert y.min() >= 0 and y.sum() == pytest.approx(2.0)
        # optimality: projection onto {y >= 0, sum = 2}: v - y = theta on the support, v <= theta off it
        theta = (v - y)[y > 0]
        assert np.allclose(theta, theta[0])
        assert np.all((v - y)[y == 0] <= theta[0] + 1e-12)


def test_constrained_run_stays_feasible():
    prob = mml.problem("bilinear_offset", workers=4).with_constraints(u=mml.Ball(0.5),
                                                                      v=mml.Box(-0.2, 0.2))
    tr = mml.run(prob, mml.topology("ring", 4), mml.DPOSG(eta=0.1), iterations=200)
    U, V = prob.split(tr.final_x)
    assert np.all(np.linalg.norm(U, axis=1) <= 0.5 + 1e-12)
    assert np.all(np.abs(V) <= 0.2 + 1e-12)


def test_user_operator_runs_like_the_library_family():
    lib = mml.problem("bilinear", workers=3)
    A = lib.matrix.copy()

    def op(i, z, out):
        out[0] = A[0, 0] * z[2] + A[0, 1] * z[3]
        out[1] = A[1, 0] * z[2] + A[1, 1] * z[3]
        out[2] = -(A[0, 0] * z[0] + A[1, 0] * z[1])
        out[3] = -(A[0, 1] * z[0] + A[1, 1] * z[1])

    user = mml.Problem.from_operator(op, dim=4, workers=3, L=lib.L, solution=np.zeros(4),
                                     box=(-2.0, 2.0))
    topo = mml.topology("ring", 3)
    z0 = np.array([0.5, -0.3, 0.2, 0.9])
    a = mml.run(lib, topo, mml.DPOSG(eta=0.1, rounds=2), iterations=300, z0=z0)
    b = mml.run(user, topo, mml.DPOSG(eta=0.1, rounds=2), iterations=300, z0=z0)
    assert np.allclose(a.final_z, b.final_z, atol=1e-12)
    assert np.allclose(a.to_frame().stationarity_local, b.to_frame().stationarity_local,
                       rtol=1e-9, atol=1e-15)
    # the variance-reduced method reaches the operator through its own phase (storm_op): the
    # user's operator must be bound there too
    a = mml.run(lib, topo, mml.DMHSGD(eta=0.1, beta=0.5), iterations=50, z0=z0)
    b = mml.run(user, topo, mml.DMHSGD(eta=0.1, beta=0.5), iterations=50, z0=z0)
    assert np.allclose(a.final_z, b.final_z, atol=1e-12)


def test_divergence_is_recorded_not_raised():
    prob = mml.problem("bilinear", workers=4)
    tr = mml.run(prob, mml.topology("ring", 4), mml.DSGDA(eta=3.0), iterations=100_000)
    assert tr.status == "diverged" and 0 < tr.diverged_at < 100_000
    df = tr.to_frame()
    assert df.status.iloc[-1] == "diverged" and (df.status.iloc[:-1] == "ok").all()
    assert np.isfinite(df.drop(columns="status").iloc[:-1].to_numpy()).all()
    assert df.iteration.iloc[-1] == tr.diverged_at


def test_negative_control_dsgda_diverges_dposg_converges_on_bilinear():
    prob = mml.problem("bilinear", workers=8, condition=2.0)
    topo = mml.topology("ring", 8)
    gda = mml.run(prob, topo, mml.DSGDA(eta=0.1), iterations=20_000).to_frame()
    og = mml.run(prob, topo, mml.DPOSG(eta=0.1), iterations=20_000).to_frame()
    assert gda.dist_to_solution.iloc[-1] > 100 * gda.dist_to_solution.iloc[0] or \
        gda.status.iloc[-1] == "diverged"
    assert og.dist_to_solution.iloc[-1] < 1e-8 * og.dist_to_solution.iloc[0]


def test_bad_algorithm_parameters():
    for bad in (0, -0.1, float("nan"), float("inf"), "0.1", (0.1, -1), (0.1, 0.2, 0.3)):
        with pytest.raises(AlgorithmError, match="eta"):
            mml.DPOSG(eta=bad)
    with pytest.raises(AlgorithmError, match="rounds"):
        mml.DPOSG(eta=0.1, rounds=-1)
    with pytest.raises(AlgorithmError, match="rounds"):
        mml.DEG(eta=0.1, rounds=1.5)
    with pytest.raises(AlgorithmError, match="unknown variant"):
        mml.DPOSG(eta=0.1, variant="triple")
    with pytest.raises(AlgorithmError, match="schedule"):
        mml.DPOSG(eta=0.1, schedule="sometimes")
    with pytest.raises(AlgorithmError, match="eps"):
        mml.DPOSG(eta=0.1, schedule="eps")
    with pytest.raises(AlgorithmError, match="beta1"):
        mml.DPOAdam(eta=0.1, beta1=1.0)
    with pytest.raises(AlgorithmError, match="unknown algorithm"):
        mml.algorithm("sgd")
    with pytest.raises(AlgorithmError, match="osg runs one worker"):
        mml.run(mml.problem("forsaken", workers=2), mml.topology("ring", 2), mml.OSG(eta=0.1), 10)
    with pytest.raises(MinmaxlabError, match="workers"):
        mml.run(mml.problem("forsaken", workers=3), mml.topology("ring", 4), mml.DPOSG(eta=0.1), 10)
    with pytest.raises(MinmaxlabError, match="iterations"):
        mml.run(mml.problem("forsaken"), mml.topology("ring", 1), mml.DPOSG(eta=0.1), -5)
    with pytest.raises(MinmaxlabError, match="z0"):
        mml.run(mml.problem("forsaken"), mml.topology("ring", 1), mml.DPOSG(eta=0.1), 5, z0=[1.0])


def test_rounds_schedules_and_labels():
    topo = mml.topology("ring", 8)
    prob = mml.problem("minty_bowl", workers=8, dim=4)
    log = mml.run(prob, topo, mml.DPOSG(eta=0.05, rounds=1, schedule="log"), iterations=8)
    # t_k = 1 + floor(log2 k) for k = 1..8: 1,2,2,3,3,3,3,4 -> 21 rounds, twice per iteration
    assert log.to_frame().gossip_rounds.iloc[-1] == 2 * 21
    eps = mml.DPOSG(eta=0.05, schedule="eps", eps=1e-3)
    t = int(np.ceil(np.log(1e3) / np.log(1 / topo.rho)))
    assert mml.run(prob, topo, eps, iterations=3).to_frame().gossip_rounds.iloc[-1] == 2 * 3 * t
    assert mml.DPOSG(eta=0.05, rounds=3).label == "dposg[rounds=3,eta=0.05]"
    assert mml.DPOSG(eta=(0.1, 0.2)).label == "dposg[rounds=1,eta=0.1/0.2]"


def test_two_timescale_step_sizes():
    prob = mml.problem("quadratic", workers=2)
    topo = mml.topology("ring", 2)
    alg = mml.DPOSG(eta=(0.05, 0.2), rounds=1)
    z0 = np.linspace(-1, 1, prob.dim)
    tr = mml.run(prob, topo, alg, iterations=2, z0=z0)
    X, Z = reference_two_timescale(prob, topo.W, z0, (0.05, 0.2))
    assert np.allclose(tr.final_x, X, atol=1e-14)


def reference_two_timescale(prob, W, z0, etas):
    eta = np.where(np.arange(prob.dim) < prob.dim_u, etas[0], etas[1])
    X = np.tile(z0, (prob.workers, 1))
    G = _Fi(prob, X)
    for _ in range(2):
        Z = W @ (X - eta * G)
        G = _Fi(prob, Z)
        X = W @ (X - eta * G)
    return X, Z


def test_time_varying_one_peer_exponential():
    seq = mml.topology_module.TimeVarying(mml.topology_module.one_peer_exponential(8))
    prob = mml.problem("minty_bowl", workers=8, dim=4)
    tr = mml.run(prob, seq, mml.DPOSG(eta=0.05, rounds=3), iterations=2)
    # reference: rounds cycle through the sequence W_0, W_1, W_2, W_0, ...
    Ws = [t.W for t in seq.sequence]
    X = np.tile(_z0(prob), (8, 1))
    G = _Fi(prob, X)
    r = 0

    def mix(Y):
        nonlocal r
        for _ in range(3):
            Y = Ws[r % len(Ws)] @ Y
            r += 1
        return Y

    for _ in range(2):
        Z = mix(X - 0.05 * G)
        G = _Fi(prob, Z)
        X = mix(X - 0.05 * G)
    assert np.allclose(tr.final_x, X, atol=1e-13)


def test_kernel_sources_digest_sees_kernel_files_only(tmp_path):
    from minmaxlab._cache import source_digest

    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")  # no kernels here
    (pkg / "sub" / "b.py").write_text("import numba\ny = 2\n")
    first = source_digest(pkg)
    (pkg / "a.py").write_text("x = 2\n")  # a file without kernels changes: same digest
    assert source_digest(pkg) == first
    (pkg / "sub" / "b.py").write_text("import numba\ny = 3\n")  # a kernel file changes
    assert source_digest(pkg) != first


def test_the_packages_kernels_are_cached_with_the_package_stamp():
    from minmaxlab._cache import LOCATORS, ROOT, source_digest

    locator = driver.simulate._cache._impl._locator
    assert isinstance(locator, LOCATORS)
    assert locator.get_source_stamp()[1] == source_digest(ROOT)

    @njit(cache=True)
    def outside(x):  # a kernel outside the package keeps numba's own locators
        return x

    assert not isinstance(outside._cache._impl._locator, LOCATORS)


def test_numba_cache_dir_is_honoured(tmp_path):
    """NUMBA_CACHE_DIR, when set, receives the package's cached kernels (as numba's own kernels);
    before the package's locators knew it, the folder stayed empty."""
    import subprocess
    import sys

    code = "import minmaxlab.engine.streams as s; s.uniform(s.no_state(), 0)"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=300)
    assert list(tmp_path.rglob("*uniform*.nbi")), sorted(tmp_path.rglob("*"))


_CALLEE = "from numba import njit\n\n@njit(cache=True)\ndef f():\n    return {}\n"
_CALLER = "from numba import njit\nfrom kern.callee import f\n\n@njit(cache=True)\ndef g():\n    return f()\n"
_MAIN = """
import sys
from pathlib import Path
from minmaxlab import _cache
if sys.argv[1] == "stamped":
    class Loc(_cache.InTreeLocator):
        root = Path(sys.argv[2]).resolve() / "kern"
    _cache.register((Loc,))
sys.path.insert(0, sys.argv[2])
from kern.caller import g
print(g())
"""


@pytest.mark.parametrize("locators, expected", [("stamped", "2"), ("numba", "1")])
def test_a_cached_caller_sees_its_edited_callee(tmp_path, locators, expected):
    """The stale-callee problem, end to end: g (cached) calls f from another file; f is edited.
    With the package's stamped locators g is compiled again and returns the new f's value; with
    numba's own (the control) the cached g keeps the old f."""
    import subprocess
    import sys

    kern = tmp_path / "kern"
    kern.mkdir()
    (kern / "__init__.py").write_text("")
    (kern / "callee.py").write_text(_CALLEE.format(1))
    (kern / "caller.py").write_text(_CALLER)
    (tmp_path / "main.py").write_text(_MAIN)

    def run():
        res = subprocess.run([sys.executable, str(tmp_path / "main.py"), locators, str(tmp_path)],
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        return res.stdout.strip()

    assert run() == "1"
    (kern / "callee.py").write_text(_CALLEE.format(2) + "\n# edited\n")
    assert run() == expected


_SHIFTS = np.array([[0.3, -0.2], [-0.5, 0.1], [0.2, 0.1]])  # sum over workers = 0


def _hetero_op(i, z, out):
    out[0] = z[1] + z[0] ** 3 / (1.0 + z[0] ** 2) + _SHIFTS[i, 0]
    out[1] = -z[0] + z[1] ** 3 / (1.0 + z[1] ** 2) + _SHIFTS[i, 1]


def _hetero_mean(z, out):
    out[0] = z[1] + z[0] ** 3 / (1.0 + z[0] ** 2)
    out[1] = -z[0] + z[1] ** 3 / (1.0 + z[1] ** 2)


@pytest.mark.slow  # compiles a user's chain (about 14 s): the full suite runs it
def test_user_mean_operator_gives_the_metrics_of_the_mean_of_the_locals():
    """mean_operator(z, out) replaces the M local calls per F (M^2 per recorded point): same
    trajectories, same metrics up to the order of the additions."""
    plain = mml.Problem.from_operator(_hetero_op, dim=2, workers=3, L=2.0, solution=[0.0, 0.0],
                                      mvi="holds")
    fast = mml.Problem.from_operator(_hetero_op, dim=2, workers=3, L=2.0, solution=[0.0, 0.0],
                                     mvi="holds", mean_operator=_hetero_mean)
    assert plain.zeta2 == pytest.approx(np.mean(np.sum(_SHIFTS**2, axis=1)), rel=1e-12)
    assert fast.zeta2 == plain.zeta2
    z = np.array([0.7, -1.3])
    assert np.allclose(fast.F(z), plain.F(z), atol=1e-15)
    topo = mml.topology("ring", 3)
    a = mml.run(plain, topo, mml.DPOSG(eta=0.1), 200, record=[0, 100, 200])
    b = mml.run(fast, topo, mml.DPOSG(eta=0.1), 200, record=[0, 100, 200])
    assert np.array_equal(a.final_z, b.final_z)  # the oracle is the same: only metrics differ
    fa, fb = a.to_frame(), b.to_frame()
    for col in ("stationarity_local", "stationarity_avg", "stationarity_workers",
                "avg_stationarity_workers"):
        assert np.allclose(fa[col], fb[col], rtol=1e-12, atol=1e-300), col
    assert fb.stationarity_workers.iloc[-1] > 1e-6  # heterogeneous at z*: a floor with t = 1


def test_user_problem_bad_dim_u_and_mean_operator():
    with pytest.raises(mml.ProblemError, match="dim_u must be an integer in 0..2"):
        mml.Problem.from_operator(_hetero_op, dim=2, workers=3, L=2.0, dim_u=5)
    with pytest.raises(mml.ProblemError, match="mean_operator"):
        mml.Problem.from_operator(_hetero_op, dim=2, workers=3, L=2.0, mean_operator=3)


@pytest.mark.slow  # compiles a user's chain (about 14 s): the full suite runs it
def test_quadratic_metrics_of_a_user_operator_are_announced():
    import warnings

    def op(i, z, out):
        out[0] = z[1] + 0.01 * i
        out[1] = -z[0]

    def mean_op(z, out):
        out[0] = z[1] + 0.01 * 31.5
        out[1] = -z[0]

    op = njit(op)  # compiled once: the problems below share its kernels
    M = 64
    topo, alg = mml.topology("ring", M), mml.DPOSG(eta=0.05, rounds=1)
    plain = mml.Problem.from_operator(op, dim=2, workers=M, L=1.0)
    with pytest.warns(RuntimeWarning, match="M\\^2 \\+ M = 4160 operator calls"):
        mml.run(plain, topo, alg, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mml.run(plain, topo, alg, 3, every_iteration=False)  # metrics at a few points only
        with_mean = mml.Problem.from_operator(op, dim=2, workers=M, L=1.0, mean_operator=mean_op)
        mml.run(with_mean, topo, alg, 3)
        few = mml.Problem.from_operator(op, dim=2, workers=8, L=1.0)
        mml.run(few, mml.topology("ring", 8), alg, 3)
