"""minmaxlab.rates: slopes, bootstrap fits, claim checks, crossings, steady states and verdict tables."""

import math
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minmaxlab.rates import (
    MIN_SEEDS_FOR_CI,
    VERDICTS,
    Fit,
    Verdict,
    check_at_least,
    check_at_most,
    check_bound,
    check_ordering,
    check_slope,
    first_crossing,
    fit_slope,
    format_verdicts,
    loglog_slope,
    semilog_slope,
    steady_state,
    verdict_table,
)


def noisy_curves(exponent, seeds=8, sigma=0.3, data_seed=0, x=None, scale=3.0):
    rng = np.random.default_rng(data_seed)
    x = np.logspace(0, 4, 30) if x is None else np.asarray(x, dtype=float)
    rows = []
    for s in range(seeds):
        y = scale * x**exponent * np.exp(sigma * rng.standard_normal(x.size))
        rows += [{"seed": s, "k": xi, "err": yi} for xi, yi in zip(x, y, strict=True)]
    return pd.DataFrame(rows)


def make_fit(slope, lo, hi):
    return Fit(slope=slope, intercept=0.0, ci_low=lo, ci_high=hi, n_points=10, n_groups=4)


# ------------------------------------------------------------------------------------------ slopes

@pytest.mark.parametrize("c, p", [(3.0, -1.0), (1.0, -0.5), (2.0, 2.0)])
def test_loglog_slope_exact_power_laws(c, p):
    x = np.logspace(-1, 5, 25)
    slope, intercept = loglog_slope(x, c * x**p)
    assert abs(slope - p) < 1e-12
    assert abs(intercept - math.log(c)) < 1e-11


def test_loglog_slope_ignores_bad_points():
    x = np.array([0.0, -1.0, 1.0, 10.0, 100.0, 1000.0, 5.0])
    y = np.array([1.0, 1.0, 1.0, 0.1, 0.01, np.nan, 0.0])
    slope, _ = loglog_slope(x, y)
    assert abs(slope + 1.0) < 1e-12


def test_semilog_slope_recovers_log_rho_squared():
    rho = 0.83
    t = np.arange(0, 20)
    slope, intercept = semilog_slope(t, 5.0 * rho ** (2 * t))
    assert abs(slope - math.log(rho**2)) < 1e-12
    assert abs(intercept - math.log(5.0)) < 1e-11


@pytest.mark.parametrize("fn", [loglog_slope, semilog_slope])
def test_slopes_need_two_points(fn):
    with pytest.raises(ValueError, match="at least 2"):
        fn([1.0, 2.0, 3.0], [1.0, -1.0, np.nan])
    with pytest.raises(ValueError, match="at least 2"):
        fn([2.0, 2.0], [1.0, 3.0])
    with pytest.raises(ValueError, match="same shape"):
        fn([1.0, 2.0], [1.0])


# --------------------------------------------------------------------------------------- fit_slope

@pytest.mark.parametrize("exponent, data_seed", [(-1.0, 0), (-0.5, 1), (-2.0, 2)])
def test_fit_slope_noisy_power_law(exponent, data_seed):
    df = noisy_curves(exponent, data_seed=data_seed)
    fit = fit_slope(df, "k", "err")
    assert abs(fit.slope - exponent) < 0.05
    assert fit.ci_low <= exponent <= fit.ci_high
    assert fit.ci_low <= fit.slope <= fit.ci_high
    assert fit.n_points == 240 and fit.n_groups == 8


def test_fit_slope_point_estimate_is_mean_of_per_seed_slopes():
    df = noisy_curves(-1.0, seeds=5)
    per = [loglog_slope(g["k"], g["err"])[0] for _, g in df.groupby("seed")]
    assert fit_slope(df, "k", "err").slope == pytest.approx(np.mean(per), abs=1e-12)


def test_fit_slope_semilog():
    t = np.arange(1, 30)
    rho = 0.7
    rows = [{"seed": s, "t": ti, "cons": (1 + s) * rho ** (2 * ti)} for s in range(5) for ti in t]
    fit = fit_slope(pd.DataFrame(rows), "t", "cons", log_x=False)
    assert abs(fit.slope - 2 * math.log(rho)) < 1e-9


def test_fit_slope_window_on_kinked_curve():
    x = np.logspace(0, 4, 41)
    kink = np.where(x <= 100, x**-2.0, 1e-4 * (x / 100) ** -1.0)
    rng = np.random.default_rng(3)
    rows = [{"seed": s, "k": xi, "err": yi * math.exp(0.1 * rng.standard_normal())}
            for s in range(8) for xi, yi in zip(x, kink, strict=True)]
    df = pd.DataFrame(rows)
    late = fit_slope(df, "k", "err", window=(200, 1e4))
    early = fit_slope(df, "k", "err", window=(1, 100))
    full = fit_slope(df, "k", "err")
    assert abs(late.slope + 1.0) < 0.05 and late.ci_low <= -1.0 <= late.ci_high
    assert abs(early.slope + 2.0) < 0.05
    assert full.slope < -1.2 and full.slope > -1.9  # the window matters
    assert late.n_points == 8 * int(((x >= 200) & (x <= 1e4)).sum())


@pytest.mark.parametrize("seeds", [1, 2, 4])
def test_fit_slope_no_interval_below_five_seeds(seeds):
    df = noisy_curves(-1.0, seeds=seeds, data_seed=4)
    fit = fit_slope(df, "k", "err")
    assert fit.n_groups == seeds
    assert math.isnan(fit.ci_low) and math.isnan(fit.ci_high)
    assert MIN_SEEDS_FOR_CI == 5
    if seeds == 1:
        nogroup = fit_slope(df.drop(columns="seed"), "k", "err")
        assert nogroup.slope == fit.slope and nogroup.n_groups == 1


def test_fit_slope_interval_covers_the_true_slope():
    """Curves with a known slope, per-seed random offsets and slopes, and AR(1) noise along each
    trajectory (the autocorrelation that fooled a bootstrap over points): the 95% interval over
    5 seeds must contain the true slope in at least 90% of 300 replicates."""
    rng = np.random.default_rng(11)
    x = np.logspace(0, 4, 40)
    true = -1.0
    hits = 0
    for _ in range(300):
        rows = []
        for s in range(5):
            e = np.empty(x.size)
            e[0] = rng.standard_normal()
            for k in range(1, x.size):  # strongly autocorrelated along the run
                e[k] = 0.9 * e[k - 1] + math.sqrt(1 - 0.81) * rng.standard_normal()
            slope_s = true + 0.05 * rng.standard_normal()
            y = np.exp(rng.standard_normal()) * x**slope_s * np.exp(0.3 * e)
            rows += [{"seed": s, "k": xi, "err": yi} for xi, yi in zip(x, y, strict=True)]
        fit = fit_slope(pd.DataFrame(rows), "k", "err")
        hits += fit.ci_low <= true <= fit.ci_high
    assert hits / 300 >= 0.90


def test_fit_slope_wider_ci_with_more_noise():
    quiet = fit_slope(noisy_curves(-1.0, sigma=0.05, data_seed=6), "k", "err")
    loud = fit_slope(noisy_curves(-1.0, sigma=1.0, data_seed=6), "k", "err")
    assert loud.ci_high - loud.ci_low > 3 * (quiet.ci_high - quiet.ci_low)


def test_fit_slope_drops_bad_rows():
    df = noisy_curves(-1.0, data_seed=9)
    bad = pd.DataFrame({"seed": [0, 1, 2, 3], "k": [0.0, 10.0, np.nan, 50.0],
                        "err": [1.0, -1.0, 1.0, np.inf]})
    assert fit_slope(pd.concat([df, bad]), "k", "err") == fit_slope(df, "k", "err")


def test_fit_slope_errors():
    df = noisy_curves(-1.0, seeds=2)
    with pytest.raises(ValueError, match="'iters'"):
        fit_slope(df, "iters", "err")
    with pytest.raises(ValueError, match="'gap'"):
        fit_slope(df, "k", "gap")
    with pytest.raises(ValueError, match="fewer than 2 distinct"):
        fit_slope(df, "k", "err", window=(1e5, 1e6))
    with pytest.raises(ValueError, match="fewer than 2 distinct"):
        fit_slope(df[df["k"] == df["k"].iloc[0]], "k", "err")
    with pytest.raises(ValueError, match="level"):
        fit_slope(df, "k", "err", level=1.5)
    with pytest.raises(ValueError, match="window"):
        fit_slope(df, "k", "err", window=(10, 1))


# -------------------------------------------------------------------------------------- check_slope

@pytest.mark.parametrize("mode, fit, expected", [
    ("close", make_fit(-1.02, -1.05, -0.99), "pass"),
    ("close", make_fit(-1.5, -1.55, -1.45), "fail"),
    ("close", make_fit(-1.0, -1.5, -0.95), "inconclusive"),
    ("close", make_fit(-1.0, -2.0, 0.0), "inconclusive"),       # CI spans the pass region on both sides
    ("close", make_fit(-1.05, -1.12, -0.98), "pass"),           # straddles, but narrower than 2*tol
    ("close", make_fit(-1.15, -1.2, -1.08), "fail"),
    ("at_most", make_fit(-1.2, -1.3, -1.1), "pass"),
    ("at_most", make_fit(-0.5, -0.6, -0.4), "fail"),
    ("at_most", make_fit(-1.0, -1.5, -0.5), "inconclusive"),
    ("at_least", make_fit(-0.8, -0.9, -0.7), "pass"),
    ("at_least", make_fit(-1.5, -1.6, -1.4), "fail"),
    ("at_least", make_fit(-1.0, -1.5, -0.5), "inconclusive"),
    ("at_most", make_fit(-0.95, np.nan, np.nan), "pass"),       # no CI: the point decides
    ("close", make_fit(np.nan, np.nan, np.nan), "inconclusive"),
])
def test_check_slope_modes(mode, fit, expected):
    v = check_slope("C3", "bowl, ring M=8", fit, predicted=-1.0, tolerance=0.1, mode=mode)
    assert v.verdict == expected
    assert v.claim == "C3" and v.setting == "bowl, ring M=8"
    assert v.measured == fit.slope or (math.isnan(v.measured) and math.isnan(fit.slope))
    assert "predicted -1" in v.reason and "0.1" in v.reason


def test_check_slope_reason_text():
    v = check_slope("C3", "s", make_fit(-1.02, -1.05, -0.99), -1.0, 0.1)
    assert v.reason.startswith("slope -1.02 [-1.05, -0.99] vs predicted -1 +/- 0.1")
    assert v.predicted == "slope = -1 +/- 0.1"
    assert (v.ci_low, v.ci_high) == (-1.05, -0.99)


def test_check_slope_bad_arguments():
    fit = make_fit(-1.0, -1.1, -0.9)
    with pytest.raises(ValueError, match="mode"):
        check_slope("C3", "s", fit, -1.0, 0.1, mode="near")
    with pytest.raises(ValueError, match="tolerance"):
        check_slope("C3", "s", fit, -1.0, -0.1)


def point_rule(mode, slope, predicted, tol):
    if mode == "close":
        return abs(slope - predicted) <= tol
    if mode == "at_most":
        return slope <= predicted + tol
    return slope >= predicted - tol


@settings(max_examples=200, deadline=None)
@given(slope=st.floats(-10, 10), predicted=st.floats(-10, 10), tol=st.floats(0, 5),
       mode=st.sampled_from(["close", "at_most", "at_least"]))
def test_check_slope_degenerate_ci_follows_point_rule(slope, predicted, tol, mode):
    v = check_slope("C2", "s", make_fit(slope, slope, slope), predicted, tol, mode=mode)
    assert v.verdict != "inconclusive"
    assert v.verdict == ("pass" if point_rule(mode, slope, predicted, tol) else "fail")


# ------------------------------------------------------------------------------ other claim checks

def test_check_bound():
    v = check_bound("C3", "s", [1.0, 2.0, 0.5], [2.0, 3.0, 4.0])
    assert v.verdict == "pass" and v.measured == pytest.approx(2 / 3)
    v = check_bound("C3", "s", [1.0, 5.0, 0.5], [2.0, 3.0, 4.0])
    assert v.verdict == "fail" and v.measured == pytest.approx(5 / 3) and "index 1" in v.reason
    assert check_bound("C3", "s", [1.0, 5.0], [2.0, 3.0], slack=2.0).verdict == "pass"
    v = check_bound("C3", "s", [1.0, np.inf, np.nan], [2.0, 3.0, 1.0])  # non-finite entries ignored
    assert v.verdict == "pass" and v.measured == 0.5
    v = check_bound("C3", "s", [np.nan, np.inf], [1.0, np.nan])
    assert v.verdict == "inconclusive" and math.isnan(v.measured)
    assert check_bound("C2", "s", [0.0, 1e-3], [0.0, 0.0]).verdict == "fail"  # zero bound, positive value
    with pytest.raises(ValueError, match="same shape"):
        check_bound("C3", "s", [1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="non-negative"):
        check_bound("C3", "s", [1.0], [-1.0])


def test_check_at_most_and_at_least():
    assert check_at_most("C1", "s", 3e-15, 1e-12, "max dev <= 1e-12").verdict == "pass"
    assert check_at_most("C1", "s", 1e-12, 1e-12, "max dev <= 1e-12").verdict == "pass"
    v = check_at_most("C7", "s", 2e-9, 1e-12, "max dev <= 1e-12")
    assert v.verdict == "fail" and v.predicted == "max dev <= 1e-12" and "2e-09" in v.reason
    assert check_at_most("C1", "s", np.nan, 1e-12, "p").verdict == "inconclusive"
    assert check_at_most("C1", "s", np.inf, 1e-12, "p").verdict == "fail"
    assert check_at_least("C8", "s", 0.3, 0.1, "stays >= 0.1").verdict == "pass"
    assert check_at_least("C8", "s", 0.01, 0.1, "stays >= 0.1").verdict == "fail"
    assert check_at_least("C8", "s", float("nan"), 0.1, "p").verdict == "inconclusive"
    with pytest.raises(ValueError, match="threshold"):
        check_at_most("C1", "s", 1.0, np.nan, "p")


def test_check_ordering():
    labels = ["complete", "expander", "torus", "ring"]
    v = check_ordering("C6", "s", labels, [1, 3, 2, 10])
    assert v.verdict == "fail" and v.measured == 1
    assert "expander > torus" in v.reason and "complete=1, expander=3, torus=2, ring=10" in v.reason
    v = check_ordering("C6", "s", labels, [1, 3, 3, 10])  # exact ties are allowed
    assert v.verdict == "pass" and v.measured == 0
    v = check_ordering("C6", "s", labels, [1, 3.0, 2.95, 10], rel_tol=0.02)  # tie within rel_tol
    assert v.verdict == "pass" and v.measured == 0
    assert check_ordering("C6", "s", labels, [1, 3.0, 2.9, 10], rel_tol=0.02).verdict == "fail"
    v = check_ordering("C5", "s", ["M=1", "M=2", "M=4"], [100, 40, 60], increasing=False)
    assert v.verdict == "fail" and v.measured == 1
    assert check_ordering("C5", "s", ["M=1", "M=2", "M=4"], [100, 50, 25], increasing=False).verdict == "pass"
    v = check_ordering("C6", "s", labels, [4, 3, 2, 1])
    assert v.verdict == "fail" and v.measured == 3
    assert check_ordering("C6", "s", labels, [1, np.nan, 2, 3]).verdict == "inconclusive"
    assert check_ordering("C6", "s", ["a", "b"], [1, np.inf]).verdict == "pass"
    with pytest.raises(ValueError, match="same length"):
        check_ordering("C6", "s", labels, [1, 2])


# ---------------------------------------------------------------------------------- curve summaries

def test_first_crossing():
    x = np.arange(1.0, 7.0)
    y = np.array([5.0, 3.0, 1.0, 2.0, 0.5, 0.4])
    assert first_crossing(x, y, 1.5) == 3.0
    assert first_crossing(x, y, 1.5, stay=True) == 5.0
    perm = np.array([4, 0, 5, 2, 1, 3])
    assert first_crossing(x[perm], y[perm], 1.5) == 3.0
    assert first_crossing(x[perm], y[perm], 1.5, stay=True) == 5.0
    assert first_crossing(x, y, 10.0, stay=True) == 1.0
    assert math.isnan(first_crossing(x, y, 0.1))
    assert math.isnan(first_crossing(x, y, 0.1, stay=True))
    assert math.isnan(first_crossing(x, [0.1, 0.1, 0.1, 0.1, 0.1, 9.0], 0.5, stay=True))
    assert first_crossing(x, [9.0, np.nan, 0.1, 0.1, np.nan, 0.1], 0.5) == 3.0
    assert first_crossing(x, [9.0, np.nan, 0.1, 0.1, np.nan, 0.1], 0.5, stay=True) == 6.0


def test_steady_state_levels_off():
    x = np.arange(0, 1001, dtype=float)
    df = pd.DataFrame({"k": x, "g": 2.5 + 40 * np.exp(-x / 20)})
    assert steady_state(df, "k", "g") == pytest.approx(2.5, abs=1e-9)
    assert steady_state(df, "k", "g", fraction=1.0) > 3.0
    simple = pd.DataFrame({"k": np.arange(10.0), "g": np.arange(10.0)})
    assert steady_state(simple, "k", "g") == pytest.approx(7.0)  # rows with k >= 4.5


def test_steady_state_per_group():
    x = np.arange(0, 500, dtype=float)
    df = pd.concat([pd.DataFrame({"seed": s, "k": x, "g": lvl + np.exp(-x / 10)})
                    for s, lvl in [(0, 1.0), (1, 2.0)]])
    out = steady_state(df, "k", "g", group="seed")
    assert isinstance(out, pd.Series)
    assert list(out.index) == [0, 1]
    assert out.to_numpy() == pytest.approx([1.0, 2.0], abs=1e-9)
    with pytest.raises(ValueError, match="'worker'"):
        steady_state(df, "k", "g", group="worker")
    with pytest.raises(ValueError, match="fraction"):
        steady_state(df, "k", "g", fraction=0.0)


# ------------------------------------------------------------------------------------------- tables

def sample_verdicts():
    fit = make_fit(-1.02, -1.05, -0.99)
    return [
        check_slope("C3", "minty_bowl, ring M=8, dposg t=1", fit, -1.0, 0.1, mode="at_most"),
        check_at_most("C1", "bilinear, torus M=16", 2.3e-16, 1e-12, "max deviation <= 1e-12"),
        check_at_least("C8", "forsaken", np.nan, 1e-3, "stationarity stays >= 1e-3"),
        check_ordering("C6", "t needed", ["complete", "ring"], [5.0, 2.0]),
    ]


def test_verdict_table_columns():
    vs = sample_verdicts()
    table = verdict_table(vs)
    assert list(table.columns) == [f.name for f in fields(Verdict)]
    assert len(table) == 4
    assert list(table["verdict"]) == ["pass", "pass", "inconclusive", "fail"]
    assert table.iloc[0].to_dict() == vs[0].as_dict()
    assert list(verdict_table([]).columns) == [f.name for f in fields(Verdict)]


def test_format_verdicts():
    vs = sample_verdicts()
    text = format_verdicts(vs)
    for v in vs:
        assert v.claim in text and v.verdict in text
    assert "-1.02 [-1.05, -0.99]" in text
    assert "2.3e-16" in text
    lines = text.splitlines()
    assert len(lines) == 2 + len(vs)
    col = lines[0].index("verdict")
    assert all(line[col:].split()[0] in VERDICTS for line in lines[2:])


def test_verdict_rejects_unknown_verdict():
    with pytest.raises(ValueError, match="verdict"):
        Verdict("C1", "s", "p", 0.0, np.nan, np.nan, "maybe", "r")
