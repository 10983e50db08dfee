"""The GAN path: hand-written gradients against finite differences, data, splits, metrics."""

import numpy as np
import pandas as pd
import pytest

import minmaxlab as mml
from minmaxlab.errors import ProblemError
from minmaxlab.gan import GAN, evaluate, frechet, mixture_metrics
from minmaxlab.gan.data import RING_STD, grid_modes, mixture, ring_modes


def _fd_check(p, z, worker):
    F = p.F_i(worker, z)
    h = 1e-6
    num = np.zeros(p.dim)
    for k in range(p.dim):
        e = np.zeros(p.dim)
        e[k] = h
        lp, lm = p.losses(z + e, worker), p.losses(z - e, worker)
        num[k] = (lp[0] - lm[0]) / (2 * h) if k < p.n_gen else (lp[1] - lm[1]) / (2 * h)
    return np.linalg.norm(num - F) / np.linalg.norm(F)


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("loss", ["minimax", "nonsaturating"])
@pytest.mark.parametrize("g_out", ["linear", "tanh", "sigmoid"])
def test_gradients_match_finite_differences(act, loss, g_out):
    p = GAN(workers=2, hidden=5, layers=2, latent=3, act=act, loss=loss, g_out=g_out, samples=40,
            heldout=16, seed=1)
    z = p.initial_point(1) + 0.1 * np.random.default_rng(0).standard_normal(p.dim)
    assert _fd_check(p, z, 1) < 1e-6


@pytest.mark.parametrize("layers", [1, 3])
def test_gradients_other_depths_and_digits(layers):
    p = GAN(workers=1, dataset="digits", hidden=4, layers=layers, latent=2, samples=30, heldout=20)
    z = p.initial_point(0) + 0.05 * np.random.default_rng(1).standard_normal(p.dim)
    assert _fd_check(p, z, 0) < 1e-6


@pytest.mark.parametrize("pack", [2, 3])
def test_packed_discriminator_gradients_and_loss(pack):
    """PacGAN: the discriminator judges packs of samples; gradients still match the losses', and
    L_D is the cross-entropy over packs of consecutive rows (a wrong reshape breaks both)."""
    p = GAN(workers=2, hidden=5, layers=2, latent=3, samples=41, heldout=17, seed=2, pack=pack,
            batch=6)
    z = p.initial_point(1) + 0.1 * np.random.default_rng(3).standard_normal(p.dim)
    assert _fd_check(p, z, 1) < 1e-6
    from minmaxlab.engine.mlp import generate

    n = p.shards[1].shape[0] - p.shards[1].shape[0] % pack
    real = p.shards[1][:n]
    xf = generate(z[: p.n_gen], p._P, np.ascontiguousarray(p._S[: 17 - 17 % pack]))
    lr, lf = p.discriminate(z, real), p.discriminate(z, xf)
    assert lr.shape == (n // pack,)
    h, o = real[:pack].reshape(1, -1), 0  # one pack: the concatenation of its rows
    for k, (n_in, n_out) in enumerate([(2 * pack, 5), (5, 5), (5, 1)]):
        W = z[p.n_gen + o:p.n_gen + o + n_out * n_in].reshape(n_out, n_in)
        b = z[p.n_gen + o + n_out * n_in:p.n_gen + o + n_out * n_in + n_out]
        h = h @ W.T + b
        h = np.maximum(h, 0) if k < 2 else h
        o += n_out * n_in + n_out
    assert h[0, 0] == pytest.approx(lr[0], rel=1e-12)
    LG, LD = p.losses(z, 1)
    assert LD == pytest.approx(np.mean(np.log1p(np.exp(-lr))) + np.mean(np.log1p(np.exp(lf))),
                               rel=1e-12)
    with pytest.raises(ProblemError, match="multiple of pack"):
        GAN(workers=1, pack=3, batch=64)
    with pytest.raises(ProblemError, match="pack"):
        p.discriminate(z, real[: pack + 1])


def test_discriminator_loss_formula():
    p = GAN(workers=1, hidden=3, layers=1, latent=2, samples=20, heldout=8)
    z = p.initial_point(0)
    u, v = z[: p.n_gen], z[p.n_gen:]
    fake = p.generate(z, 0)  # shapes only
    assert fake.shape == (0, 2)
    real = p.shards[0]
    lat = p._S
    from minmaxlab.engine.mlp import generate

    xf = generate(u, p._P, np.ascontiguousarray(lat))
    lr = p.discriminate(z, real)
    lf = p.discriminate(z, xf)
    ld = np.mean(np.log1p(np.exp(-lr))) + np.mean(np.log1p(np.exp(lf)))
    lg_ns = np.mean(np.log1p(np.exp(-lf)))
    LG, LD = p.losses(z, 0)
    assert LD == pytest.approx(ld, rel=1e-12) and LG == pytest.approx(lg_ns, rel=1e-12)
    assert v.shape == (p.n_disc,)


def test_data_sets_and_splits():
    rng = np.random.default_rng(0)
    X, y = mixture(ring_modes(8), RING_STD, 4000, rng)
    assert np.allclose(np.linalg.norm(ring_modes(8), axis=1), 2.0)
    assert grid_modes().shape == (25, 2)
    p = GAN(workers=4, split="noniid", classes_per_worker=2, samples=4000)
    modes = ring_modes(8)
    for i, shard in enumerate(p.shards):
        labels = np.unique(np.linalg.norm(shard[:, None] - modes[None], axis=2).argmin(axis=1))
        assert set(labels) == {i % 8, (i + 1) % 8}
    q = GAN(workers=4, split="iid", samples=4000)
    for shard in q.shards:
        labels = np.linalg.norm(shard[:, None] - modes[None], axis=2).argmin(axis=1)
        assert len(np.unique(labels)) == 8
    d = GAN(workers=2, dataset="digits", split="noniid", classes_per_worker=5, hidden=8)
    assert d.shards[0].shape[1] == 64 and 0 <= d.shards[0].min() and d.shards[0].max() <= 1


def test_mixture_metrics_on_constructed_samples():
    rng = np.random.default_rng(1)
    perfect, _ = mixture(ring_modes(8), RING_STD, 8000, rng)
    m = mixture_metrics(perfect, ring_modes(8), RING_STD)
    # in 2-D, P(||x - mode|| <= 3 std) = 1 - exp(-9/2)
    assert m["modes"] == 8 and m["high_quality"] == pytest.approx(1 - np.exp(-4.5), abs=0.005)
    assert m["kl"] < 0.01
    collapsed = ring_modes(8)[[0, 0, 0, 1]] + 0.001 * rng.standard_normal((4, 2))
    m = mixture_metrics(np.repeat(collapsed, 100, axis=0), ring_modes(8), RING_STD)
    assert m["modes"] == 2 and m["kl"] > 1.0 and m["jsd"] > 0.3
    far = rng.standard_normal((500, 2)) * 0.01  # at the centre: no mode within 3 std
    assert mixture_metrics(far, ring_modes(8), RING_STD)["high_quality"] == 0.0


def test_frechet_distance():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((4000, 3))
    b = rng.standard_normal((4000, 3)) + np.array([1.0, 0, 0])
    assert frechet(a, a) == pytest.approx(0, abs=1e-8)
    assert frechet(a, b) == pytest.approx(1.0, abs=0.15)


@pytest.mark.slow
def test_digits_metrics_separate_real_from_noise():
    p = GAN(workers=1, dataset="digits", hidden=8)
    real = evaluate_samples(p, p.shards[0][:500])
    noise = evaluate_samples(p, np.random.default_rng(0).random((500, 64)))
    assert real["score"] > 5 and real["frechet"] < noise["frechet"] / 5
    assert real["classes_covered"] == 10


def evaluate_samples(p, samples):
    from minmaxlab.gan import digits_metrics

    return digits_metrics(samples, p.heldout_data)


def test_gan_runs_through_the_engine_deterministically():
    p = mml.problem("gan", workers=4, hidden=8, latent=2, batch=16, samples=400)
    topo = mml.topology("ring", 4)
    a = mml.run(p, topo, mml.DPOAdam(eta=1e-3), iterations=50, seed=3, every_iteration=False)
    b = mml.run(p, topo, mml.DPOAdam(eta=1e-3), iterations=50, seed=3, every_iteration=False)
    c = mml.run(p, topo, mml.DPOAdam(eta=1e-3), iterations=50, seed=4, every_iteration=False)
    assert np.array_equal(a.final_z, b.final_z) and not np.array_equal(a.final_z, c.final_z)
    df = a.to_frame()
    assert np.isfinite(df.stationarity_local).all() and (df.status == "ok").all()
    m = evaluate(p, a.final_z.mean(axis=0))
    assert 0 <= m["high_quality"] <= 1 and 0 <= m["modes"] <= 8  # 50 iterations: any count
    for alg in (mml.DPOSG(eta=0.01), mml.CPOSG(eta=0.01), mml.CPOAdam(eta=1e-3)):
        assert mml.run(p, topo, alg, iterations=5, every_iteration=False).status == "ok"


def test_gan_bad_input():
    with pytest.raises(ProblemError, match="unknown dataset"):
        GAN(dataset="cifar")
    with pytest.raises(ProblemError, match="act must be"):
        GAN(act="swish")
    with pytest.raises(ProblemError, match="loss must be"):
        GAN(loss="wgan-gp")
    with pytest.raises(ProblemError, match="split"):
        GAN(split="random")
    with pytest.raises(ProblemError, match="sampled"):
        mml.problem("minty_bowl").with_noise(kind="sampled", batch=4)


def test_engine_oracle_equals_plain_numpy_implementation():
    from minmaxlab.bench import numpy_gan_operator

    for act, loss in (("relu", "nonsaturating"), ("tanh", "minimax"), ("leaky_relu", "minimax")):
        p = GAN(workers=2, hidden=6, layers=2, latent=3, act=act, loss=loss, samples=60, heldout=10)
        z = p.initial_point(2)
        ref = numpy_gan_operator(p, z, p.shards[1], p._S)
        assert np.allclose(p.F_i(1, z), ref, rtol=1e-10, atol=1e-13)


def _final_rows(modes, hq, label="dpoadam[eta=0.001,rounds=1]", topology="ring"):
    """One last row per seed of a mixture GAN run, as a study's table holds them."""
    return pd.DataFrame([{"run_id": f"{label}{topology}{s}", "problem_spec": "gan{}", "workers": 8,
                          "topology": topology, "label": label, "algorithm": "dpoadam", "rounds": 1,
                          "iteration": 100, "dataset": "8gaussians", "split": "iid", "n_modes": 8,
                          "modes": m, "high_quality": h, "floats_sent_per_worker": 1e6, "seed": s}
                         for s, (m, h) in enumerate(zip(modes, hq, strict=True))])


def test_the_gan_check_is_on_the_median_over_seeds_per_threshold():
    """One check per threshold on the seeds' median, the range as its interval: one seed at
    7/8 does not fail a setting whose median is 8/8, two do; a diverged run (NaN) counts as 0."""
    from types import SimpleNamespace

    from minmaxlab.claims.gan import analyse

    study = SimpleNamespace(name="s")
    c = {"claim": "GAN", "min_modes": 8, "min_high_quality": 0.8}
    vs, _ = analyse(_final_rows([8, 7, 8], [0.85, 0.9, 0.81]), c, study)
    assert [v.verdict for v in vs] == ["pass", "pass"]
    assert (vs[0].measured, vs[0].ci_low, vs[0].ci_high) == (8, 7, 8)
    assert vs[1].measured == pytest.approx(0.85) and "over 3 seeds" in vs[1].reason
    vs, _ = analyse(_final_rows([7, 7, 8], [0.85, 0.9, 0.81]), c, study)
    assert [v.verdict for v in vs] == ["fail", "pass"]
    vs, _ = analyse(_final_rows([8, 8, float("nan")], [0.9, 0.79, float("nan")]), c, study)
    assert [v.verdict for v in vs] == ["pass", "fail"] and vs[1].ci_low == 0.0
    # two settings: two pairs of checks
    both = pd.concat([_final_rows([8], [0.9]), _final_rows([2], [0.0], topology="complete")])
    assert [v.verdict for v in analyse(both, c, study)[0]] == ["pass", "pass", "fail", "fail"]


def test_gan_rounds_reports_each_setting_and_decides_nothing():
    from types import SimpleNamespace

    from minmaxlab.claims import CLAIMS

    table = pd.concat([_final_rows([8, 6], [0.8, 0.6]),
                       _final_rows([3], [0.1], label="dpoadam[eta=0.001,rounds=1,moments="
                                                       "gossiped_gradient]")])
    vs, pts = CLAIMS["gan_rounds"].run(table, {"claim": "C13"}, SimpleNamespace(name="s"))
    assert {v.verdict for v in vs} == {"reported"} and len(vs) == 2
    plain, gossiped = sorted((v.reason for v in vs), key=lambda r: "gossiped" in r)
    assert "modes median 7/8" in plain and "high-quality rate median 0.7" in plain
    assert "gossiped-gradient moments" in gossiped and "modes median 3/8" in gossiped
