"""The methods that came after DPOSG (gradient tracking, accelerated gossip, local steps) against
tiny numpy references written here from their docstrings, their reductions (M = 1, W = J), and
the facts their claims rest on."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minmaxlab as mml
from minmaxlab.engine import gossip
from minmaxlab.errors import AlgorithmError
from minmaxlab.runsetup import topology_arrays
from minmaxlab.testing import connected_graphs, problems, starts, topologies

SMALL = ["bilinear", "quadratic", "minty_bowl", "weak_mvi_quadratic", "forsaken", "dirac_gan"]


def _F(prob, Z):
    return np.array([prob.F_i(i, Z[i]) for i in range(prob.workers)])


def chebyshev_matrix(W, t):
    """P_t(W) = T_t(W / rho) / T_t(1 / rho) from W's eigendecomposition (T_t(x) = cos(t acos x)
    on [-1, 1], cosh(t acosh x) above 1); W itself for t = 1, the identity for t = 0."""
    lam, V = np.linalg.eigh(W)
    M = W.shape[0]
    rho = np.sort(np.abs(lam))[-2] if M > 1 else 0.0
    if t == 0:
        return np.eye(M)
    if rho == 0.0:
        return np.linalg.matrix_power(W, t)

    def T(x):
        x = np.asarray(x, dtype=float)
        out = np.empty_like(x)
        inside = np.abs(x) <= 1
        out[inside] = np.cos(t * np.arccos(x[inside]))
        big = ~inside
        out[big] = np.sign(x[big]) ** t * np.cosh(t * np.arccosh(np.abs(x[big])))
        return out

    p = T(lam / rho) / T(np.array([1 / rho]))[0]
    return (V * p) @ V.T


def reference(key, prob, W, z0, iterations, eta, t, chebyshev=False, beta=1.0):
    """gt_da, dposg_gt, deg (deg_mc with chebyshev) and dposg, as their docstrings state them."""
    M = prob.workers
    P = chebyshev_matrix(W, t) if chebyshev else np.linalg.matrix_power(W, max(t, 0))
    X = np.tile(z0, (M, 1)).astype(float)
    Z = X.copy()
    G = _F(prob, X)
    Y = G.copy()
    V = G.copy()
    if key == "local_sgda":
        G = np.zeros_like(X)
    for _ in range(iterations):
        if key == "gt_da":
            X = P @ (X - eta * Y)
            Gn = _F(prob, X)
            Y = P @ (Y + Gn - G)
            G = Gn
            Z = X
        elif key == "dposg_gt":
            Z = P @ (X - eta * Y)
            Gn = _F(prob, Z)
            Y = P @ (Y + Gn - G)
            G = Gn
            X = P @ (X - eta * Y)
        elif key == "dm_hsgd":
            Xp = X
            X = P @ (X - eta * Y)
            Vn = _F(prob, X) + (1 - beta) * (V - _F(prob, Xp))
            Y = P @ (Y + Vn - V)
            V = Vn
            Z = X
        elif key in ("local_sgda", "local_osgda"):
            k = _ + 1
            if key == "local_sgda":
                X = X - eta * _F(prob, X)
            else:
                Z = X - eta * G
                G = _F(prob, Z)
                X = X - eta * G
            if k % t == 0:
                X = np.tile(X.mean(0), (M, 1))
            if key == "local_sgda":
                Z = X
        elif key == "deg":
            Z = P @ (X - eta * _F(prob, X))
            X = P @ (X - eta * _F(prob, Z))
        else:  # dposg
            Z = P @ (X - eta * G)
            G = _F(prob, Z)
            X = P @ (X - eta * G)
    return X, Z


CASES = [("gt_da", lambda t: mml.GTDA(eta=0.07, rounds=t), False),
         ("dposg_gt", lambda t: mml.DPOSGGT(eta=0.07, rounds=t), False),
         ("deg", lambda t: mml.DEGMC(eta=0.07, rounds=t), True),
         ("dposg", lambda t: mml.DPOSG(eta=0.07, rounds=t, gossip="chebyshev"), True),
         ("dposg_gt", lambda t: mml.DPOSGGT(eta=0.07, rounds=t, gossip="chebyshev"), True),
         ("local_sgda", lambda t: mml.LocalSGDA(eta=0.07, local_steps=max(t, 1)), False),
         ("local_osgda", lambda t: mml.LocalOSGDA(eta=0.07, local_steps=max(t, 1)), False),
         ("dm_hsgd", lambda t: mml.DMHSGD(eta=0.07, rounds=t, beta=0.3), False)]


@settings(max_examples=40, deadline=None)
@given(data=st.data(), which=st.integers(0, len(CASES) - 1), t=st.integers(0, 4))
def test_first_iterations_match_numpy_reference(data, which, t):
    prob = data.draw(problems(families=SMALL, min_workers=1, max_workers=6))
    topo = data.draw(topologies(prob.workers, prob.workers, rules=("metropolis", "maxdegree")))
    key, make, cheb = CASES[which]
    alg = make(t)
    z0 = data.draw(starts(prob))
    tr = mml.run(prob, topo, alg, iterations=3, z0=z0, record="all")
    X, Z = reference(key, prob, topo.W, z0, 3, alg.eta, getattr(alg, "local_steps", t),
                     chebyshev=cheb, beta=getattr(alg, "beta", 1.0))
    assert np.allclose(tr.final_x, X, rtol=1e-9, atol=1e-11)
    assert np.allclose(tr.final_z, Z, rtol=1e-9, atol=1e-11)


def test_a_broken_tracker_is_caught_by_the_reference():
    """Control of the reference test: the reference with Y = W^t (Y + G_new) (the old gradient
    never leaves) differs from the engine after two iterations."""
    prob = mml.problem("minty_bowl_hetero", workers=4)
    topo = mml.topology("ring", 4)
    z0 = np.full(prob.dim, 0.3)
    tr = mml.run(prob, topo, mml.DPOSGGT(eta=0.07, rounds=1), iterations=2, z0=z0, record="all")
    M, W = 4, topo.W
    X = np.tile(z0, (M, 1))
    G = _F(prob, X)
    Y = G.copy()
    for _ in range(2):
        Z = W @ (X - 0.07 * Y)
        Y = W @ (Y + _F(prob, Z))
        X = W @ (X - 0.07 * Y)
    assert not np.allclose(tr.final_x, X, rtol=1e-6)


@pytest.mark.parametrize("alg, same", [
    (mml.DPOSGGT(eta=0.05, rounds=2), mml.OSG(eta=0.05)),
    (mml.GTDA(eta=0.05, rounds=2), mml.DSGDA(eta=0.05, rounds=2)),
    (mml.DEGMC(eta=0.05, rounds=3), mml.DEG(eta=0.05, rounds=3)),
    (mml.DPOSG(eta=0.05, rounds=3, gossip="chebyshev"), mml.DPOSG(eta=0.05, rounds=3)),
    (mml.LocalSGDA(eta=0.05, local_steps=3), mml.DSGDA(eta=0.05, rounds=1)),
    (mml.LocalOSGDA(eta=0.05, local_steps=3), mml.OSG(eta=0.05)),
])
def test_one_worker_is_the_centralized_method_bit_for_bit(alg, same):
    """M = 1: the tracker is the gradient (Y - G_prev = 0 exactly), the Chebyshev polynomial of
    W = [1] is 1: the trajectories are identical."""
    prob = mml.problem("minty_bowl", workers=1).with_noise(sigma=0.3)
    topo = mml.topology("complete", 1)
    a = mml.run(prob, topo, alg, iterations=50, seed=3)
    b = mml.run(prob, topo, same, iterations=50, seed=3)
    assert np.array_equal(a.final_x, b.final_x) and np.array_equal(a.final_z, b.final_z)


@pytest.mark.parametrize("alg, same", [
    (mml.DPOSGGT(eta=0.05, rounds=1), mml.CPOSG(eta=0.05)),
    (mml.DEGMC(eta=0.05, rounds=3), mml.DEG(eta=0.05, rounds=3)),
    (mml.LocalSGDA(eta=0.05, local_steps=1), mml.DSGDA(eta=0.05, rounds=1)),
])
def test_exact_averaging_is_the_centralized_method(alg, same):
    """W = J: gradient tracking's Y is the mean gradient, so DPOSG-GT follows CPOSG (to rounding:
    J Y sums in another order than CPOSG's average); rho(J) = 0 makes the Chebyshev rounds plain
    ones, bit for bit; one local step between averages is D-SGDA with W = J."""
    prob = mml.problem("minty_bowl_hetero", workers=6).with_noise(sigma=0.3)
    topo = mml.topology("complete", 6)
    a = mml.run(prob, topo, alg, iterations=60, seed=1)
    b = mml.run(prob, topo, same, iterations=60, seed=1)
    if isinstance(alg, mml.DEGMC):
        assert np.array_equal(a.final_x, b.final_x)
    else:
        assert np.allclose(a.final_x, b.final_x, rtol=1e-10, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), t=st.integers(0, 12), d=st.integers(1, 3))
def test_chebyshev_gossip_is_the_polynomial_and_contracts_by_its_bound(data, t, d):
    """P_t(W) Y as the kernel computes it equals the eigendecomposition's, keeps the mean exactly
    (to rounding) and contracts the disagreement by at most 1 / T_t(1 / rho), which is below
    rho^t for t >= 2."""
    n = data.draw(st.integers(2, 9))
    topo = mml.Topology.from_graph(data.draw(connected_graphs(n, n)), rule="metropolis")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    Y = rng.normal(size=(n, d))
    W = np.asarray(topo.W)
    rho = float(topo.rho)
    out = Y.copy()
    tmp, prev = np.zeros_like(Y), np.zeros_like(Y)
    indptr, indices, weights = topology_arrays(topo, n)[:3]
    gossip.chebyshev_gossip(out, tmp, prev, t, 0, indptr, indices, weights, rho)
    assert np.allclose(out, chebyshev_matrix(W, t) @ Y, atol=1e-10)
    assert np.allclose(out.mean(0), Y.mean(0), atol=1e-12)
    bound = 1.0 if t == 0 or rho == 0 else 1 / np.cosh(t * np.arccosh(1 / rho))
    dis = np.linalg.norm(out - out.mean(0))
    assert dis <= bound * np.linalg.norm(Y - Y.mean(0)) + 1e-10
    if t >= 2 and 0 < rho < 1:
        assert bound < rho**t


def test_chebyshev_weights_do_not_overflow_and_tend_to_the_optimal_relaxation():
    """For large t the weights approach 2 / (1 + sqrt(1 - rho^2)) (the optimal second-order
    relaxation); no T_t is formed, so t = 10^4 at rho = 0.5 is finite."""
    w = gossip.chebyshev_weights(0.5, 10_000)
    assert np.all(np.isfinite(w)) and abs(w[-1] - 2 / (1 + np.sqrt(1 - 0.25))) < 1e-14
    assert np.array_equal(gossip.chebyshev_weights(0.0, 5), np.ones(4))


def test_gradient_tracking_removes_the_heterogeneity_floor():
    """C10's setting at a glance (the study measures it): t = 1 on a ring of 16 heterogeneous
    workers; DPOSG stalls, DPOSG-GT and GT-DA reach the solution; D-SGDA stalls like DPOSG."""
    prob = mml.problem("minty_bowl_shifted", workers=16)
    topo = mml.topology("ring", 16)
    final = {}
    for alg in (mml.DPOSG(eta=0.03, rounds=1), mml.DPOSGGT(eta=0.03, rounds=1),
                mml.GTDA(eta=0.03, rounds=1), mml.DSGDA(eta=0.03, rounds=1)):
        tr = mml.run(prob, topo, alg, iterations=3000, record=[3000], every_iteration=False)
        final[alg.key] = float(tr.to_frame()["stationarity_avg"].iloc[-1])
    assert final["dposg_gt"] < 1e-12 and final["gt_da"] < 1e-12
    assert final["dposg"] > 1e-9 and final["dsgda"] > 1e-9


def test_chebyshev_needs_a_fixed_topology_and_a_known_gossip():
    prob = mml.problem("minty_bowl", workers=8)
    seq = mml.topology_module.TimeVarying.one_peer_exponential(8)
    with pytest.raises(AlgorithmError, match="fixed topology"):
        mml.run(prob, seq, mml.DPOSG(eta=0.05, gossip="chebyshev"), iterations=3)
    with pytest.raises(AlgorithmError, match="gossips: .'plain', 'chebyshev'"):
        mml.algorithm("dposg", gossip="fast")
    assert "gossip" not in mml.DPOSG(eta=0.05).label
    assert mml.DPOSG(eta=0.05, gossip="chebyshev").label.endswith("gossip=chebyshev]")


def test_the_tracker_costs_a_row_per_worker_and_a_third_gossip_phase():
    prob = mml.problem("minty_bowl", workers=8)
    ring = mml.topology("ring", 8)
    assert mml.bytes_per_worker(prob, ring, mml.DPOSGGT())["state"] == 8 * prob.dim
    assert mml.bytes_per_worker(prob, ring, mml.DPOSG())["state"] == 0
    a = mml.run(prob, ring, mml.DPOSGGT(eta=0.05, rounds=2), iterations=10).to_frame()
    b = mml.run(prob, ring, mml.DPOSG(eta=0.05, rounds=2), iterations=10).to_frame()
    assert a["gossip_rounds"].iloc[-1] == 1.5 * b["gossip_rounds"].iloc[-1]
    assert a["floats_sent_per_worker"].iloc[-1] == 1.5 * b["floats_sent_per_worker"].iloc[-1]


def test_storm_with_beta_one_is_gt_da_bit_for_bit_under_noise():
    """beta = 1 makes V the fresh gradient, and the replayed sample leaves the stream where GT-DA's
    one call leaves it: the same trajectory, noise included. The same estimator with a fresh
    sample draws twice as much and differs."""
    prob = mml.problem("quadratic", workers=6).with_noise(sigma=0.5)
    ring = mml.topology("ring", 6)
    a = mml.run(prob, ring, mml.DMHSGD(eta=0.05, rounds=2, beta=1.0), iterations=40, seed=4)
    b = mml.run(prob, ring, mml.GTDA(eta=0.05, rounds=2), iterations=40, seed=4)
    c = mml.run(prob, ring, mml.DMHSGD(eta=0.05, rounds=2, beta=1.0, same_sample=False),
                iterations=40, seed=4)
    assert np.array_equal(a.final_x, b.final_x)
    assert not np.allclose(c.final_x, b.final_x)
    assert a.to_frame()["oracle_calls"].iloc[-1] == 2 * b.to_frame()["oracle_calls"].iloc[-1] - 1



def _top_k(v, keep):
    k = max(1, min(v.size, int(round(keep * v.size))))
    out = np.zeros_like(v)
    idx = np.argsort(-np.abs(v), kind="stable")[:k]
    out[idx] = v[idx]
    return out


def choco_reference(prob, W, z0, iterations, eta, t, keep, gamma, feedback=True):
    """DPOSG with top-k CHOCO gossip, from compression's docstring: hats persist per array."""
    M = prob.workers
    X = np.tile(z0, (M, 1)).astype(float)
    G = _F(prob, X)
    hats = {"z": np.zeros_like(X), "x": np.zeros_like(X)}

    def phase(Y, name):
        hat = hats[name]
        for _ in range(t):
            for i in range(M):
                q = _top_k(Y[i] - hat[i] if feedback else Y[i], keep)
                hat[i] = hat[i] + q if feedback else q
            Y = Y + gamma * (W @ hat - hat)
        return Y

    for _ in range(iterations):
        Z = phase(X - eta * G, "z")
        G = _F(prob, Z)
        X = phase(X - eta * G, "x")
    return X, Z


@settings(max_examples=25, deadline=None)
@given(data=st.data(), t=st.integers(1, 3), keep=st.sampled_from([0.1, 0.5, 1.0]),
       feedback=st.booleans())
def test_compressed_gossip_matches_numpy_reference(data, t, keep, feedback):
    prob = data.draw(problems(families=SMALL, min_workers=2, max_workers=6))
    topo = data.draw(topologies(prob.workers, prob.workers, rules=("metropolis",)))
    z0 = data.draw(starts(prob))
    alg = mml.DPOSG(eta=0.07, rounds=t, compression="top_k", keep=keep, consensus_step=0.4,
                    error_feedback=feedback)
    tr = mml.run(prob, topo, alg, iterations=3, z0=z0, record="all")
    X, Z = choco_reference(prob, topo.W, z0, 3, 0.07, t, keep, 0.4, feedback)
    assert np.allclose(tr.final_x, X, rtol=1e-9, atol=1e-11)
    assert np.allclose(tr.final_z, Z, rtol=1e-9, atol=1e-11)


def test_quantizer_is_a_scaled_unbiased_contraction():
    """QSGD rounding times 1/tau: its mean over many draws is v / tau, and
    E||C(v) - v||^2 <= (1 - 1/tau) ||v||^2 (the contraction CHOCO needs)."""
    from minmaxlab.engine import compression, streams

    rng = np.random.default_rng(0)
    v = rng.normal(size=12)
    state = streams.seed_states(3, 1)
    n, s = 20000, 4
    out = np.zeros((n, 12))
    for r in range(n):
        compression.compress_row(v, out[r], compression.COMP_QUANTIZE, float(s), state, 0)
    tau = 1 + min(12 / s**2, np.sqrt(12) / s)
    assert np.allclose(out.mean(0), v / tau, atol=4 * np.abs(v).max() / np.sqrt(n))
    err = np.mean(np.sum((out - v) ** 2, axis=1))
    assert err <= (1 - 1 / tau) * np.sum(v**2)
    assert compression.message_floats(compression.COMP_QUANTIZE, 4.0, 64) == 1 + 64 * 4 / 64
    assert compression.message_floats(compression.COMP_TOP_K, 0.1, 20) == 3.0


def test_compression_labels_defaults_and_refusals():
    assert mml.DPOSG(eta=0.05).params() == {"eta": 0.05, "rounds": 1, "schedule": "constant",
                                            "eps": None, "variant": "default"}
    with pytest.raises(AlgorithmError, match="compressions"):
        mml.DPOSG(compression="zip")
    with pytest.raises(AlgorithmError, match="do not combine"):
        mml.DPOSG(compression="top_k", gossip="chebyshev")
    with pytest.raises(AlgorithmError, match="keep must lie"):
        mml.DPOSG(compression="top_k", keep=0.0)


def test_compressed_messages_are_what_is_counted():
    """top-k of 10% of 20 entries: 2 values and 2 indices, 3 floats per message; DPOSG's two
    phases to 2 ring neighbours per iteration: 12 floats, against 80 uncompressed."""
    prob = mml.problem("minty_bowl", workers=8)
    ring = mml.topology("ring", 8)
    for alg, per in ((mml.DPOSG(eta=0.01, compression="top_k", keep=0.1, consensus_step=0.2), 12),
                     (mml.DPOSG(eta=0.01), 80)):
        df = mml.run(prob, ring, alg, iterations=10, record="all").to_frame()
        assert np.allclose(np.diff(df["floats_sent_per_worker"].to_numpy())[1:], per)
