"""The problem library: formulas, certified constants, instances, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minmaxlab as mml
from minmaxlab.errors import ConfigError, ProblemError
from minmaxlab.problems import (
    CERTIFIED,
    FAMILIES,
    BilinearGame,
    CovarianceWGAN,
    DiracGAN,
    Forsaken,
    GlobalForsaken,
    MintyBowl,
    PolarGame,
    StronglyMonotoneQuadratic,
    WeakMVIQuadratic,
    catalog,
    certify,
    format_catalog,
    instance_files,
)

# How tight each family's declared L is, measured as max(sampled ||J||, difference quotient) / L.
# (A floor well below the measured value would let a grossly loose L pass; these are the measured
# ratios rounded down: minty bowl's L = alpha max|g''| + sigma_max(A) is a sum bound.)
TIGHTNESS_FLOOR = {
    "bilinear": 0.99, "quadratic": 0.99, "minty_bowl": 0.7, "weak_mvi_quadratic": 0.99,
    "forsaken": 0.97, "global_forsaken": 0.93, "polar": 0.97, "dirac_gan": 0.95,
    "covariance_wgan": 0.95,
}


def _num_grad(f, x, h=1e-6):
    g = np.zeros_like(x)
    for k in range(x.size):
        e = np.zeros_like(x)
        e[k] = h
        g[k] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def _operator_from_objective(f, z, p):
    """F = (grad_u f, -grad_v f) by central differences."""
    g = _num_grad(f, z)
    g[p:] *= -1
    return g


@pytest.fixture(scope="module")
def all_instances():
    return {name: mml.problem(name, workers=4) for name in instance_files()}


def test_at_least_twelve_instances(all_instances):
    assert len(all_instances) >= 12
    assert {p.family for p in all_instances.values()} >= set(CERTIFIED)


@pytest.mark.parametrize("family", sorted(CERTIFIED))
@pytest.mark.parametrize("h", [0.0, 0.7])
def test_certified_constants(family, h):
    prob = FAMILIES[family](workers=5, heterogeneity=h, seed=3)
    c = certify(prob, pairs=3000, points=120, seed=1)
    # declared L is never exceeded (by F and by every F_i), and not grossly loose
    assert c["L_pairs"] <= prob.L * (1 + 1e-9)
    assert c["L_pairs_local"] <= prob.L_local * (1 + 1e-9)
    assert c["L_jacobian"] <= prob.L * (1 + 1e-6)
    assert c["tightness"] >= TIGHTNESS_FLOOR[family]
    assert prob.L_local >= prob.L * (1 - 1e-12) or h == 0
    # F is the mean of the F_i, F(z*) = 0
    assert c["mean_gap"] < 1e-12
    assert c["F_at_solution"] < 1e-10
    # the sampled Minty ratio agrees with the declared status
    if prob.mvi == "holds":
        assert c["r_sampled"] >= -1e-12
    elif prob.mvi == "equality":
        assert abs(c["r_sampled"]) < 1e-9
    elif prob.r_min is not None:
        assert prob.r_min * (1 + 1e-9) <= c["r_sampled"] < 0
        assert c["r_sampled"] <= 0.95 * prob.r_min  # the declared bound is close to the truth
    else:
        assert prob.mvi == "fails" and c["r_sampled"] < 0


@pytest.mark.slow  # 1000 sampled pairs on every instance; the fast loop has test_certified_constants
def test_every_instance_certified(all_instances):
    for name, prob in all_instances.items():
        c = certify(prob, pairs=1000, points=40, seed=2)
        assert c["L_pairs"] <= prob.L * (1 + 1e-9), name
        if prob.solution is None:  # the data-driven families (bounds only, no known z*)
            assert getattr(prob, "certifiable", True) is False, name
            continue
        assert c["F_at_solution"] < 1e-10, name
        if prob.mvi == "holds":
            assert c["r_sampled"] >= -1e-12, name


def test_reference_values_of_problems_md():
    f = Forsaken()
    assert np.allclose(f.solution, [0.0780267, 0.4119339], atol=1e-6)
    assert f.r_min == pytest.approx(-1.52, abs=0.01)
    assert GlobalForsaken(box=1.2).r_min == pytest.approx(-0.1197, abs=5e-4)
    assert GlobalForsaken(box=1.0).r_min == pytest.approx(-0.1016, abs=5e-4)
    for a, r in ((0.5, -0.070), (1.0, -0.138), (1.5, -0.202)):
        assert PolarGame(a=a).r_min == pytest.approx(r, abs=1.5e-3)
    w = WeakMVIQuadratic(a=2.0, b=-0.5)
    assert w.L == pytest.approx(np.hypot(2.0, 0.5))
    assert w.r_min == pytest.approx(-0.5 / 4.25)


def test_linear_constants_are_closed_forms():
    b = BilinearGame(dim=10, scale=2.5, condition=7.0, seed=4)
    s = np.linalg.svd(b.matrix, compute_uv=False)
    assert s.max() == pytest.approx(2.5) and s.min() == pytest.approx(2.5 / 7.0)
    assert b.L == pytest.approx(s.max())
    q = StronglyMonotoneQuadratic(dim=6, mu=0.3, scale=2.0)
    assert q.L == pytest.approx(np.sqrt(0.09 + 4.0))
    J = np.array([q.jacobian(np.zeros(6))])[0]
    assert np.linalg.norm(J, 2) == pytest.approx(q.L, rel=1e-6)
    m = MintyBowl(dim=8, coupling=1.5, alpha=0.5, g="log")
    assert m.L == pytest.approx(0.5 * 1.0 + 1.5)


def _g(kind, s):
    if kind == "rational":
        return s**2 / (1 + s**2)
    if kind == "log":
        return 0.5 * np.log1p(s**2)
    if kind == "quartic":
        return 0.25 * np.log1p(s**4)
    return 1 - np.exp(-(s**2) / 2)


@pytest.mark.parametrize("g", ["rational", "log", "gaussian", "quartic"])
def test_minty_bowl_operator_is_the_game_gradient(g):
    prob = MintyBowl(dim=6, dim_u=2, g=g, alpha=0.7, seed=5)
    A, p = prob.matrix, 2
    f = lambda z: 0.7 * _g(g, z[:p]).sum() - 0.7 * _g(g, z[p:]).sum() + z[:p] @ A @ z[p:]  # noqa: E731
    z = np.random.default_rng(0).normal(size=6) * 1.5
    assert np.allclose(prob.F(z), _operator_from_objective(f, z, p), atol=1e-7)


def test_objective_families_match_their_objectives():
    rng = np.random.default_rng(1)
    b = BilinearGame(dim=6, offset=0.5, seed=2)
    F0 = b.F(np.zeros(6))  # the constant term: F(0) = (b, -c)
    f = lambda z: z[:3] @ b.matrix @ z[3:] + F0[:3] @ z[:3] - F0[3:] @ z[3:]  # noqa: E731
    z = rng.normal(size=6)
    assert np.allclose(b.F(z), _operator_from_objective(f, z, 3), atol=1e-7)
    assert np.allclose(b.F(b.solution), 0, atol=1e-12)

    q = StronglyMonotoneQuadratic(dim=4, mu=0.2, seed=1)
    f = lambda z: 0.1 * z[:2] @ z[:2] + z[:2] @ q.matrix @ z[2:] - 0.1 * z[2:] @ z[2:]  # noqa: E731
    assert np.allclose(q.F(z[:4]), _operator_from_objective(f, z[:4], 2), atol=1e-7)

    w = WeakMVIQuadratic(dim=2, a=0.8, b=-0.3)
    f = lambda z: -0.15 * z[0] ** 2 + 0.8 * z[0] * z[1] + 0.15 * z[1] ** 2  # noqa: E731
    assert np.allclose(w.F(z[:2]), _operator_from_objective(f, z[:2], 1), atol=1e-7)

    phi = lambda s: s**2 / 4 - s**4 / 2 + s**6 / 6  # noqa: E731
    f = lambda z: z[0] * (z[1] - 0.45) + phi(z[0]) - phi(z[1])  # noqa: E731
    assert np.allclose(Forsaken().F(z[:2]), _operator_from_objective(f, z[:2], 1), atol=1e-6)

    psi = lambda s: 2 / 21 * s**6 - s**4 / 3 + s**2 / 3  # noqa: E731
    f = lambda z: z[0] * z[1] + psi(z[0]) - psi(z[1])  # noqa: E731
    assert np.allclose(GlobalForsaken().F(z[:2]), _operator_from_objective(f, z[:2], 1), atol=1e-6)

    f = lambda z: -np.log1p(np.exp(-z[1] * z[0]))  # noqa: E731
    assert np.allclose(DiracGAN().F(z[:2]), _operator_from_objective(f, z[:2], 1), atol=1e-7)

    c = CovarianceWGAN(n=2, samples=0, seed=3)
    Sig = c.F_i(0, np.zeros(8))[4:] * -1  # F_W(0) = -Sigma

    def fcov(z):
        V = z[:4].reshape(2, 2)
        W = z[4:].reshape(2, 2)
        return np.sum(W * (Sig.reshape(2, 2) - V @ V.T))

    zc = rng.normal(size=8)
    assert np.allclose(c.F(zc), _operator_from_objective(fcov, zc, 4), atol=1e-6)


def test_polar_operator_formula():
    a = 1.3
    prob = PolarGame(a=a)
    u, v = 0.4, -0.7

    def p(x, y):
        return a / 4 * x * (x * x + y * y - 1) * (4 * x * x + 4 * y * y - 1)

    assert np.allclose(prob.F([u, v]), [p(u, v) - v, p(v, u) + u], atol=1e-14)


@pytest.mark.parametrize("family", sorted(CERTIFIED))
def test_heterogeneity(family):
    z = FAMILIES[family](workers=1).sample_box(np.random.default_rng(0), 5)
    extra = {"samples": 0} if family == "covariance_wgan" else {}  # finite data differ by worker
    same = FAMILIES[family](workers=3, heterogeneity=0.0, **extra)
    assert np.array_equal(same.F_i(0, z), same.F_i(2, z))
    diff = FAMILIES[family](workers=3, heterogeneity=0.5)
    assert not np.allclose(diff.F_i(0, z), diff.F_i(2, z))
    assert np.allclose(diff.F(z), diff.F_mean_of_locals(z), atol=1e-12)


@pytest.mark.parametrize("family", sorted(CERTIFIED))
@pytest.mark.parametrize("h, shift", [(0.0, 0.6), (0.7, 0.6), (0.7, 0.0)])
def test_heterogeneity_at_the_solution_is_certified(family, h, shift):
    """zeta^2 = (1/M) sum_i ||F_i(z*)||^2: the family's closed form against the kernels; shifts
    keep F, L and z* and add exactly shift^2 where the family's own F_i(z*) vanish."""
    prob = FAMILIES[family](workers=5, heterogeneity=h, shift=shift, seed=3)
    base = FAMILIES[family](workers=5, heterogeneity=h, seed=3)
    c = certify(prob, pairs=300, points=10, seed=1)
    assert c["zeta2_measured"] == pytest.approx(prob.zeta2, rel=1e-9, abs=1e-24)
    assert c["F_at_solution"] < 1e-10
    z = prob.sample_box(np.random.default_rng(4), 20)
    assert np.allclose(prob.F(z), base.F(z), atol=1e-12)
    assert (prob.L, prob.L_local, prob.mvi) == (base.L, base.L_local, base.mvi)
    assert np.array_equal(prob.solution, base.solution)
    b = prob.F_i_all(prob.solution) - base.F_i_all(base.solution)
    assert np.allclose(b.sum(axis=0), 0, atol=1e-12)
    assert np.mean(np.sum(b**2, axis=1)) == pytest.approx(shift**2, rel=1e-12, abs=1e-30)
    if base.zeta2 == 0:
        assert prob.zeta2 == pytest.approx(shift**2, rel=1e-12)
    one = FAMILIES[family](workers=1, shift=shift, seed=3)
    assert one.zeta2 == pytest.approx(0.0, abs=1e-24) or family == "covariance_wgan"


def test_quartic_minty_bowl_is_degenerate_at_its_solution():
    prob = MintyBowl(workers=2, dim=6, dim_u=4, g="quartic", seed=1)
    J = prob.jacobian(np.zeros(6))
    assert np.allclose(J + J.T, 0, atol=1e-9)  # g''(0) = 0: only the skew coupling remains
    assert np.linalg.matrix_rank(J, tol=1e-8) == 4  # a 4 x 2 coupling: a 2-dimensional kernel
    c = certify(prob, pairs=3000, points=100, seed=2)
    assert c["L_pairs"] <= prob.L * (1 + 1e-9) and c["r_sampled"] >= -1e-12
    assert prob.L == pytest.approx(0.881 + 1.0)


def test_instance_claims_zeta2():
    p = mml.problem("minty_bowl_shifted")
    assert p.workers == 8 and p.zeta2 == pytest.approx(1.0)
    assert mml.problem("minty_bowl_shifted", workers=1).zeta2 == 0.0  # one worker: nothing to shift


@settings(max_examples=60, deadline=None)
@given(
    z=st.lists(st.floats(-50, 50), min_size=6, max_size=6),
    g=st.sampled_from(["rational", "log", "gaussian", "quartic"]),
    h=st.floats(0, 2),
)
def test_minty_bowl_mvi_property(z, g, h):
    prob = MintyBowl(workers=3, dim=6, g=g, heterogeneity=h, seed=1)
    z = np.array(z)
    assert prob.F(z) @ z >= -1e-9 * (1 + z @ z)


@settings(max_examples=60, deadline=None)
@given(z=st.lists(st.floats(-10, 10), min_size=8, max_size=8),
       w=st.lists(st.floats(-10, 10), min_size=8, max_size=8))
def test_bilinear_is_skew_monotone(z, w):
    prob = BilinearGame(dim=8, offset=0.3, seed=2)
    z, w = np.array(z), np.array(w)
    assert abs((prob.F(z) - prob.F(w)) @ (z - w)) <= 1e-9 * (1 + (z - w) @ (z - w))


def test_noise_models():
    prob = MintyBowl(workers=3, dim=4)
    assert prob.noise.kind == "none"
    g = prob.with_noise(sigma=0.5, batch=4)
    assert g.noise.kind == "gaussian" and g.noise.variance == pytest.approx(0.0625)
    assert prob.noise.kind == "none"  # the original is untouched
    fs = prob.with_noise(sigma=0.3, batch=2, kind="finite_sum", samples=50, seed=1)
    c = fs.noise.shifts
    assert c.shape == (3, 50, 4)
    assert np.allclose(c.sum(axis=1), 0, atol=1e-12)
    assert np.allclose(np.mean(np.sum(c**2, axis=2), axis=1), 0.09)
    cov = CovarianceWGAN(workers=2, n=2, samples=40).with_noise(kind="finite_sum", batch=8)
    c = cov.noise.shifts
    assert c.shape == (2, 40, 8) and cov.noise.sigma > 0
    assert np.allclose(c.sum(axis=1), 0, atol=1e-10)
    assert np.all(c[:, :, :4] == 0)
    with pytest.raises(ProblemError, match="kind"):
        prob.with_noise(sigma=1, kind="laplace")
    with pytest.raises(ProblemError, match="needs sigma"):
        prob.with_noise(kind="finite_sum")
    with pytest.raises(ProblemError, match="batch"):
        prob.with_noise(sigma=1, batch=0)


def test_user_defined_problem():
    def op(i, z, out):
        out[0] = z[1] + 0.1 * (i - 1)
        out[1] = -z[0]

    prob = mml.Problem.from_operator(op, dim=2, workers=3, L=1.0, solution=np.zeros(2),
                                     mvi="equality")
    assert np.allclose(prob.F_i(0, [1.0, 2.0]), [1.9, -1.0])
    assert np.allclose(prob.F([1.0, 2.0]), [2.0, -1.0])
    c = certify(prob, pairs=500, points=20)
    assert c["L_pairs"] <= 1.0 + 1e-9 and c["F_at_solution"] < 1e-12
    with pytest.raises(ProblemError, match="raised AttributeError.*undefined_method"):
        mml.Problem.from_operator(lambda i, z, out: out.undefined_method(), dim=2, workers=1,
                                  L=1.0)

    def python_only(i, z, out):  # runs as Python, but numba cannot compile an object() call
        out[0] = z[1] + 0.0 * len(repr(object()))
        out[1] = -z[0]

    with pytest.raises(ProblemError, match="numba"):
        mml.Problem.from_operator(python_only, dim=2, workers=1, L=1.0)
    with pytest.raises(ProblemError, match="workers"):
        mml.Problem.from_operator(op, dim=2, workers=0, L=1.0)


def test_named_instances_and_overrides():
    p = mml.problem("minty_bowl", workers=16, dim=20, seed=0)
    assert p.workers == 16 and p.dim == 20 and p.mvi == "holds"
    q = mml.problem("minty_bowl", workers=2, dim=6)
    assert q.dim == 6
    r = mml.problem("forsaken")
    assert r.workers == 1 and r.reference.startswith("Hsieh")
    fam = mml.problem("polar", a=0.5)
    assert fam.params["a"] == 0.5
    text = format_catalog()
    assert len(catalog()) >= 12 and "forsaken" in text and "r_min" in text


def test_bad_input_is_reported_clearly(tmp_path):
    with pytest.raises(ProblemError, match="unknown problem 'nope'.*forsaken"):
        mml.problem("nope")
    with pytest.raises(ProblemError, match="unknown parameter.*'colour'"):
        mml.problem("minty_bowl", colour=3)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ProblemError, match="workers"):
            mml.problem("forsaken", workers=bad)
    with pytest.raises(ProblemError, match="dim must be even"):
        MintyBowl(dim=5)
    with pytest.raises(ProblemError, match="g must be one of"):
        MintyBowl(g="cubic")
    with pytest.raises(ProblemError, match="heterogeneity"):
        Forsaken(heterogeneity=-1)
    bad = tmp_path / "broken.toml"
    bad.write_text("name = 'x'\nfamily = \n")
    with pytest.raises(ConfigError, match="broken.toml: malformed TOML"):
        mml.problem(str(bad))
    inc = tmp_path / "incomplete.toml"
    inc.write_text("name = 'x'\nreference = 'y'\n")
    with pytest.raises(ConfigError, match="missing key.*family"):
        mml.problem(str(inc))
    unk = tmp_path / "unknown_family.toml"
    unk.write_text("name = 'x'\nfamily = 'zebra'\nreference = 'y'\n")
    with pytest.raises(ConfigError, match="unknown family 'zebra'"):
        mml.problem(str(unk))
    lie = tmp_path / "lying.toml"
    lie.write_text("name = 'x'\nfamily = 'forsaken'\nreference = 'y'\n[claimed]\nL = 3.0\n")
    with pytest.raises(ProblemError, match="claims L = 3.0"):
        mml.problem(str(lie))
    lie.write_text("name = 'x'\nfamily = 'forsaken'\nreference = 'y'\n[claimed]\nmvi = 'holds'\n")
    with pytest.raises(ProblemError, match="claims mvi"):
        mml.problem(str(lie))
    with pytest.raises(ConfigError, match="not found"):
        mml.problem(str(tmp_path / "absent.toml"))


def _oob(i, z, out):
    for j in range(z.size + 1):  # one past the end: compiled code would corrupt memory
        out[j] = z[j % z.size]


def _lazy(i, z, out):
    out[0] = z[1]  # never writes out[1]


def _nan_on_worker_3(i, z, out):
    out[0] = z[1]
    out[1] = np.nan if i == 3 else -z[0]


@pytest.mark.parametrize("op, message", [
    (_oob, "worker 0 reads or writes outside z or out"),
    (_lazy, r"left out\[1\] unwritten or not finite"),
    (_nan_on_worker_3, r"worker 3 left out\[1\]"),
])
def test_a_broken_user_operator_is_refused_before_it_is_compiled(op, message):
    with pytest.raises(mml.ProblemError, match=message):
        mml.Problem.from_operator(op, dim=2, workers=4, L=1.0)


def test_a_broken_mean_operator_is_refused():
    def good(i, z, out):
        out[0] = z[1]
        out[1] = -z[0]

    def mean_lazy(z, out):
        out[1] = -z[0]

    with pytest.raises(mml.ProblemError, match=r"mean_operator\(z, out\) left out\[0\]"):
        mml.Problem.from_operator(good, dim=2, workers=4, L=1.0, mean_operator=mean_lazy)
