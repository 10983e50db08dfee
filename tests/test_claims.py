"""minmaxlab.claims: every analysis on constructed tables (a case that passes and one that must
fail), the control mechanics, and (slow) every shipped control failing on real runs, on the
built-in instances and on the user's game shipped in problems/."""

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from minmaxlab.claims import CLAIMS, attach_controls, control_verdict
from minmaxlab.rates import Verdict

ROOT = Path(__file__).resolve().parents[1]


class _S:
    name = "constructed"
    controls = []


def _v(verdict):
    return Verdict("C0", "s", "p", 0.0, math.nan, math.nan, verdict, "r")


# ------------------------------------------------------------------------------------- controls

def test_control_verdict_is_fail_when_any_deciding_check_fails():
    assert control_verdict([_v("pass"), _v("fail"), _v("reported")]) == "fail"
    assert control_verdict([_v("pass"), _v("reported")]) == "pass"
    assert control_verdict([_v("pass"), _v("inconclusive")]) == "inconclusive"
    assert control_verdict([_v("reported")]) == "inconclusive"


def test_a_passing_control_turns_the_claim_into_a_failure():
    rows = [_v("pass"), _v("reported")]
    attach_controls(rows, {"weak_method": "pass", "broken_W": "fail"})
    assert rows[0].verdict == "fail" and "control passed" in rows[0].reason
    assert rows[1].verdict == "reported"
    assert all(r.control == "broken_W, weak_method" and r.control_verdict == "pass" for r in rows)
    ok = [_v("pass")]
    attach_controls(ok, {"broken_W": "fail"})
    assert ok[0].verdict == "pass" and ok[0].control_verdict == "fail"
    unsure = [_v("pass")]
    attach_controls(unsure, {"broken_W": "inconclusive"})
    assert unsure[0].verdict == "inconclusive"


def test_a_diverged_run_fails_a_claim_about_convergence_and_nothing_is_never_a_pass():
    table = _rate_table(lambda k: 1.0 / k**1.5)
    table.loc[table.index[-1], "status"] = "diverged"
    vs, _ = CLAIMS["rate"].run(table, C3, _S())
    assert vs[0].verdict == "fail" and "diverged" in vs[0].reason
    assert len(vs) == 1  # the only run diverged: nothing else to analyse
    empty, _ = CLAIMS["rate"].run(table.iloc[:0], C3, _S())
    assert [v.verdict for v in empty] == ["inconclusive"]


def test_evaluate_runs_every_control_even_without_rows():
    from minmaxlab.claims import evaluate

    class Study:
        name = "s"
        controls = [{"name": "weak", "description": "d"}]
        dropped_controls = []

    t = pd.DataFrame(dict(run_id=["a"], iteration=[1], dev_z=[1e-16], dev_x=[0.0],
                          topology="ring", workers=4, seed=0, problem="p", status="ok"))
    vs, _, own = evaluate({"claim": "C1", "analysis": "mean_dynamics"}, {"claim": t}, Study())
    assert own[0].verdict == "inconclusive"  # the control's runs are missing: not a silent skip
    assert vs[0].verdict == "inconclusive" and vs[0].control_verdict == "inconclusive"
    Study.controls = []
    Study.dropped_controls = [{"name": "builtin_only", "description": "d"}]
    vs, _, _ = evaluate({"claim": "C1", "analysis": "mean_dynamics"}, {"claim": t}, Study())
    assert vs[0].verdict == "pass" and vs[0].control_verdict == "not run"


# ------------------------------------------------------------------------------- C1 and C7

def test_mean_dynamics_fails_on_large_deviations():
    t = pd.DataFrame(dict(run_id=["a", "a"], iteration=[1, 2], dev_z=[1e-16, 1e-9],
                          dev_x=[0.0, 0.0], topology="ring", workers=4, seed=0, problem="p",
                          status="ok"))
    assert CLAIMS["mean_dynamics"].run(t, {"claim": "C1"}, _S())[0][0].verdict == "fail"
    t["dev_z"] = [1e-16, 2e-16]
    assert CLAIMS["mean_dynamics"].run(t, {"claim": "C1"}, _S())[0][0].verdict == "pass"


def test_limits_fails_on_a_difference():
    t = pd.DataFrame(dict(iteration=[1, 2], diff_J_vs_cposg=[0.0, 3e-12], diff_M1_vs_osg=0.0,
                          seed=0, problem="p", topology="ring"))
    assert CLAIMS["limits"].run(t, {"claim": "C7"}, _S())[0][0].verdict == "fail"
    t["diff_J_vs_cposg"] = [0.0, 1e-15]
    assert CLAIMS["limits"].run(t, {"claim": "C7"}, _S())[0][0].verdict == "pass"


# ------------------------------------------------------------------------------------------ C2

@pytest.mark.parametrize("power, verdicts", [(2, {"pass"}), (1, {"fail"})])
def test_consensus_on_constructed_tables(power, verdicts):
    """Consensus error rho^(power t) / (1 - rho^(power t)): power 2 is the theory (pass), power 1
    decays half as fast (fails both slope checks)."""
    rows = []
    rho = 0.6
    for seed in (0, 1):
        for t in (1, 2, 4, 8, 16):
            e = rho ** (power * t) / (1 - rho ** (power * t))
            for k in (0, 500, 1000):
                rows.append(dict(run_id=f"{seed}-{t}", topology="torus", workers=16, rounds=t,
                                 rho=rho, seed=seed, algorithm="dposg", iteration=k,
                                 consensus_z=e, status="ok", topology_spec='{"name":"torus"}'))
    vs, _ = CLAIMS["consensus"].run(pd.DataFrame(rows), {"claim": "C2", "tolerance": 0.2}, _S())
    assert vs[0].verdict == "pass"  # the gossip contraction itself (a property of W)
    assert {v.verdict for v in vs[1:]} == verdicts


def test_consensus_reports_the_power_law_of_a_diffusive_decay():
    """power_law = true adds the exponent of error ~ t^a as a reported row (not a check): c / t
    gives -1, c / t^2 gives -2, and without the key there is no such row."""
    for a in (1, 2):
        rows = [dict(run_id=f"0-{t}", topology="torus", workers=16, rounds=t, rho=0.6, seed=0,
                     algorithm="dposg", iteration=k, consensus_z=0.3 / t**a, status="ok",
                     topology_spec='{"name":"torus"}') for t in (1, 2, 4, 8) for k in (0, 100)]
        spec = {"claim": "C2", "tolerance": 0.2, "power_law": True}
        vs, _ = CLAIMS["consensus"].run(pd.DataFrame(rows), spec, _S())
        law = [v for v in vs if v.verdict == "reported"]
        assert len(law) == 1 and law[0].measured == pytest.approx(-a)
        spec.pop("power_law")
        vs, _ = CLAIMS["consensus"].run(pd.DataFrame(rows), spec, _S())
        assert not [v for v in vs if v.verdict == "reported"]


# ------------------------------------------------------------------------------------------ C3

def _rate_table(curve, K=20000):
    ks = np.unique(np.geomspace(1, K, 60).astype(int))
    s = curve(ks.astype(float))
    avg = np.cumsum(s * np.diff(np.concatenate([[0], ks]))) / ks  # a running average
    return pd.DataFrame(dict(run_id="r", problem="p", problem_spec="p", label="dposg",
                             topology="ring", workers=8,
                             seed=0, eta=0.1, iteration=ks, stationarity_workers=s,
                             min_stationarity_workers=np.minimum.accumulate(s),
                             avg_stationarity_workers=avg, avg_stationarity_local=avg,
                             dist_to_solution=1.0, status="ok"))


C3 = {"claim": "C3", "tolerance": 0.1, "window": [1000, 1e9], "accuracy": 1e-6}


@pytest.mark.parametrize("curve, verdict", [
    (lambda k: 1.0 / k**1.5, "pass"),  # sublinear, as fast as the theorem says
    (lambda k: 0.5**k + 1e-30, "pass"),  # linear convergence: at accuracy early in the window
    (lambda k: 1.0 / k + 1e-4, "fail"),  # a floor above the accuracy
    (lambda k: 1.0 / np.sqrt(k), "fail"),  # slower than 1/K
])
def test_rate_separates_a_floor_from_convergence(curve, verdict):
    vs, _ = CLAIMS["rate"].run(_rate_table(curve), C3, _S())
    deciding = [v.verdict for v in vs if v.verdict != "reported"]
    assert ("fail" in deciding) == (verdict == "fail"), [v.reason for v in vs]


def test_rate_running_average_slope_is_only_reported():
    vs, _ = CLAIMS["rate"].run(_rate_table(lambda k: 1.0 / k + 1e-4), C3, _S())
    avg = [v for v in vs if "running average" in v.setting]
    assert avg and avg[0].verdict == "reported"


# ------------------------------------------------------------------------------------------ C4

def _floor_table(exponent, seeds=(0, 1, 2)):
    rng = np.random.default_rng(1)
    rows = []
    for seed in seeds:
        for M in (2, 8):
            for m in (1, 4, 16):
                floor = 3.0 * (m * M) ** exponent
                for k in range(0, 1001, 50):
                    val = floor * (1 + 50 * np.exp(-k / 50)) * np.exp(0.05 * rng.standard_normal())
                    rows.append(dict(run_id=f"{seed}-{M}-{m}", problem="p", problem_spec="p",
                                     algorithm="dposg",
                                     label="dposg[...]", topology="ring", workers=M, batch=m,
                                     sigma=1.0, seed=seed, iteration=k, stationarity_local=val,
                                     stationarity_workers=2 * val, status="ok"))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("exponent, verdict", [(-1.0, "pass"), (-0.5, "fail")])
def test_noise_floor_on_constructed_tables(exponent, verdict):
    vs, _ = CLAIMS["noise_floor"].run(_floor_table(exponent), {"claim": "C4", "tolerance": 0.15},
                                      _S())
    assert vs[0].verdict == verdict
    assert vs[0].measured == pytest.approx(exponent, abs=0.05)
    assert vs[1].verdict == "reported"


# ------------------------------------------------------------------------------------------ C5

@pytest.mark.parametrize("power, verdict", [(-1.0, "pass"), (0.0, "fail")])
def test_speedup_on_constructed_tables(power, verdict):
    rows = []
    for M in (1, 2, 4, 8):
        k_eps = 4000 * M**power
        for k in range(0, 8001, 100):
            val = 1.0 if k < k_eps else 1e-4
            rows.append(dict(run_id=f"{M}", problem="p", topology="ring", rounds=1, workers=M,
                             eta=0.01, seed=0, iteration=k, stationarity_local=val,
                             stationarity_avg=val, stationarity_workers=val, status="ok"))
    vs, _ = CLAIMS["speedup"].run(pd.DataFrame(rows), {"claim": "C5", "tolerance": 0.2,
                                                       "eps": 1e-3}, _S())
    assert {v.verdict for v in vs} == {verdict}


# ------------------------------------------------------------------------------------------ C6

def _rounds_table(rhos, penalty=100.0, ts=(1, 2, 4, 8, 16, 32, 64)):
    rows = []
    for name, rho in rhos.items():
        for t in ts:
            pen = penalty[name] if isinstance(penalty, dict) else penalty
            level = 1.0 + pen * rho ** (2 * t)  # consensus penalty on top of CPOSG's level 1
            for k in (0, 500, 1000):
                rows.append(dict(run_id=f"{name}{t}", topology=name, workers=16, rho=rho, rounds=t,
                                 algorithm="dposg", schedule="constant", schedule_eps=np.nan,
                                 label=f"dposg[rounds={t}]", seed=0, iteration=k,
                                 stationarity_workers=level, status="ok"))
    for k in (0, 500, 1000):
        rows.append(dict(run_id="c", topology="complete", workers=16, rho=0.0, rounds=0,
                         algorithm="cposg", schedule="constant", schedule_eps=np.nan,
                         label="cposg[eta=0.1]", seed=0, iteration=k, stationarity_workers=1.0,
                         status="ok"))
    return pd.DataFrame(rows)


C6 = {"claim": "C6", "delta": 0.1, "eps": 1e-3}


def test_rounds_needed_on_a_constructed_table():
    vs, res = CLAIMS["rounds_needed"].run(_rounds_table({"complete": 0.0, "torus": 0.6,
                                                         "ring": 0.9}), C6, _S())
    t = dict(zip(res["topology"], res["t_needed"], strict=True))
    # 100 rho^(2t) <= 0.1  <=>  t >= log(1000) / (2 log(1/rho))
    assert t == {"complete": 1.0, "torus": 8.0, "ring": 64.0}
    order = [v for v in vs if "1/(1-rho)" in v.setting]
    assert order[0].verdict == "pass"
    ratios = [v for v in vs if "t_theory" in v.setting]
    assert all(v.verdict == "reported" for v in ratios)


def test_rounds_needed_not_reached_is_never_a_number():
    # the ring never gets there: past t_theory (= 14 for rho = 0.6) it fails, short of it it is
    # inconclusive; equal t on the grid for different spectra cannot confirm the strict ordering
    # (inconclusive), a reversed pair contradicts it (fail)
    vs, _ = CLAIMS["rounds_needed"].run(_rounds_table({"torus": 0.6}, penalty=1e30), C6, _S())
    assert [v.verdict for v in vs if "t_needed" in v.setting] == ["fail"]
    vs, _ = CLAIMS["rounds_needed"].run(_rounds_table({"ring": 0.99}, ts=(1, 2, 4)), C6, _S())
    assert [v.verdict for v in vs if "t_needed" in v.setting] == ["inconclusive"]
    order = {}
    for name, table in (("tie", _rounds_table({"a": 0.5, "b": 0.51}, ts=(1, 8))),
                        ("reversed", _rounds_table({"a": 0.5, "b": 0.51}, ts=(1, 2, 4, 8, 16),
                                                   penalty={"a": 1e6, "b": 1.0}))):
        vs, _ = CLAIMS["rounds_needed"].run(table, C6, _S())
        order[name] = [v.verdict for v in vs if "1/(1-rho)" in v.setting]
    assert order == {"tie": ["inconclusive"], "reversed": ["fail"]}


# ------------------------------------------------------------------------------------------ C8

def test_boundary_tells_divergence_from_a_cycle():
    def run(rid, prob, values, status="ok"):
        return [dict(run_id=rid, problem=prob, label="osg", workers=1, iteration=k,
                     stationarity_avg=v, status=status if k == len(values) - 1 else "ok")
                for k, v in enumerate(values)]
    rows = run("a", "cyc", [1.0, 0.5, 0.4, 0.5]) + run("b", "div", [1.0, 10.0, 1e5, np.nan],
                                                        status="diverged")
    rows += run("c", "conv", [1.0, 1e-3, 1e-9, 1e-12])
    t = pd.DataFrame(rows)
    spec = {"claim": "C8", "level": 1e-6, "expect": {"cyc": "cycle", "div": "cycle",
                                                     "conv": "converge"}}
    vs, pts = CLAIMS["boundary"].run(t, spec, _S())
    got = {v.setting.split(": ")[1].split(",")[0]: v.verdict for v in vs}
    assert got == {"cyc": "pass", "div": "fail", "conv": "pass"}
    assert dict(zip(pts["problem"], pts["outcome"], strict=True))["div"] == "diverge"


# ------------------------------------------------------------------------------------------ C9

@pytest.mark.parametrize("p, verdict", [(2.0, "pass"), (1.0, "fail"), (0.0, "fail")])
def test_heterogeneity_floor_exponent(p, verdict):
    rows = []
    for name, rho in (("ring", 0.9), ("torus", 0.6)):
        for t in (1, 2, 4, 8, 16, 32, 48):
            floor = 0.1 * rho ** (p * t) + 1e-33
            for k in (0, 500, 1000):
                rows.append(dict(run_id=f"{name}{t}", topology=name, topology_spec=name,
                                 workers=16, rho=rho, rounds=t, algorithm="dposg",
                                 label=f"dposg[{t}]", seed=0,
                                 iteration=k, stationarity_workers=floor, stationarity_avg=floor**2,
                                 stationarity_local=0.0, status="ok"))
    for k in (0, 500, 1000):
        rows.append(dict(run_id="c", topology="ring", topology_spec="ring", workers=16, rho=0.9,
                         rounds=0, algorithm="cposg", label="cposg", seed=0, iteration=k,
                         stationarity_workers=1e-32, stationarity_avg=1e-32,
                         stationarity_local=0.0, status="ok"))
    spec = {"claim": "C9", "tolerance": 0.2, "predicted": 2.0}
    vs, _ = CLAIMS["heterogeneity_floor"].run(pd.DataFrame(rows), spec, _S())
    expo = [v for v in vs if "exponent" in v.setting]
    assert len(expo) == 2 and {v.verdict for v in expo} == {verdict}
    if verdict == "pass":
        assert [v.measured for v in expo] == pytest.approx([2.0, 2.0], abs=1e-6)


def _gossip_table(a_cheb=0.5, a_plain=1.0, rhos=(0.8, 0.95, 0.987, 0.9968)):
    """Floors that fall with t so that t_needed = 10 (1/(1 - rho))^a exactly, for each gossip."""
    rows = []
    ts = sorted({round(1.1**k) for k in range(0, 90)})
    for rho in rhos:
        for kind, a in (("chebyshev", a_cheb), ("plain", a_plain)):
            need = 10 * (1 / (1 - rho)) ** a
            for t in ts:
                level = 1e-11 if t >= need else 1e-3
                for k in (0, 50, 100):
                    rows.append(dict(run_id=f"{rho}{kind}{t}", algorithm="dposg", topology="ring",
                                     topology_spec=f"ring{rho}", workers=int(1000 * rho), rho=rho,
                                     rounds=t, gossip=kind, label=f"dposg[rounds={t}]", seed=0,
                                     iteration=k, stationarity_workers=level, status="ok"))
    return pd.DataFrame(rows)


ACC = {"claim": "C10", "eps": 1e-10, "predicted": 0.5, "tolerance": 0.15, "gossip": "chebyshev"}


@pytest.mark.parametrize("a_cheb, verdict", [(0.5, "pass"), (0.62, "pass"), (0.7, "fail"),
                                             (1.0, "fail")])
def test_accelerated_gossip_exponent_on_constructed_tables(a_cheb, verdict):
    vs, res = CLAIMS["accelerated_gossip"].run(_gossip_table(a_cheb=a_cheb), ACC, _S())
    check = [v for v in vs if v.verdict in ("pass", "fail", "inconclusive")]
    assert len(check) == 1 and check[0].verdict == verdict
    # the grid's 10% steps cost at most a few hundredths of exponent over this range of gaps
    assert check[0].measured == pytest.approx(a_cheb, abs=0.05)
    plain = [v for v in vs if v.verdict == "reported"]
    assert plain[0].measured == pytest.approx(1.0, abs=0.05)


def test_accelerated_gossip_is_inconclusive_without_reach_or_spectra():
    never = _gossip_table()
    never.loc[(never["rho"] == 0.9968) & (never["gossip"] == "chebyshev"),
              "stationarity_workers"] = 1e-3
    vs, _ = CLAIMS["accelerated_gossip"].run(never, ACC, _S())
    assert [v.verdict for v in vs if v.verdict != "reported"] == ["inconclusive"]
    two = _gossip_table(rhos=(0.8, 0.95))
    vs, _ = CLAIMS["accelerated_gossip"].run(two, ACC, _S())
    assert [v.verdict for v in vs if v.verdict != "reported"] == ["inconclusive"]


def test_final_level_passes_below_the_threshold_and_fails_above():
    rows = []
    for label, last in (("dposg_gt", 1e-20), ("dposg", 1e-8)):
        for k, value in ((0, 1.0), (100, last)):
            rows.append(dict(run_id=label, label=label, topology="ring", workers=16, rho=0.9,
                             seed=0, iteration=k, stationarity_avg=value,
                             stationarity_workers=value, floats_sent_per_worker=2.0 * k,
                             status="ok"))
    vs, _ = CLAIMS["final_level"].run(pd.DataFrame(rows), {"claim": "C10", "threshold": 1e-12},
                                      _S())
    got = {v.setting.split(": ")[1].split(" on ")[0]: v.verdict for v in vs
           if v.verdict != "reported"}
    assert got == {"dposg_gt": "pass", "dposg": "fail"}
    sent = [v.measured for v in vs if "floats" in v.setting]
    assert sent == [2.0, 2.0]


def _local_table(drift_from=None, seeds=(0, 1, 2)):
    """Floats per iteration 1/tau; eps reached at iteration 100 for every tau (or never from
    tau = drift_from on)."""
    rows = []
    for tau in (1, 2, 4, 8):
        for seed in seeds:
            for k in range(0, 401, 20):
                never = drift_from is not None and tau >= drift_from
                value = 1.0 if k < 100 or never else 1e-4
                rows.append(dict(run_id=f"{tau}-{seed}", problem="p", workers=8, local_steps=tau,
                                 seed=seed, iteration=k, stationarity_avg=value,
                                 floats_sent_per_worker=10.0 * (k // tau), status="ok"))
    return pd.DataFrame(rows)


LOCAL = {"claim": "C12", "eps": 1e-3, "predicted": -1.0, "tolerance": 0.5, "smooth": 1}


def test_local_steps_slope_and_a_drift_that_never_reaches_eps():
    vs, pts = CLAIMS["local_steps"].run(_local_table(), LOCAL, _S())
    check = [v for v in vs if v.verdict != "reported"]
    assert len(check) == 1 and check[0].verdict == "pass"
    assert check[0].measured == pytest.approx(-1.0, abs=0.02)
    vs, _ = CLAIMS["local_steps"].run(_local_table(drift_from=4), LOCAL, _S())
    check = [v for v in vs if v.verdict != "reported"]
    assert check[0].verdict == "fail" and "never reached with local_steps 4, 8" in check[0].reason


@pytest.mark.parametrize("power, verdict", [(1.0, "pass"), (0.8, "pass"), (0.0, "fail"),
                                            (-1.0, "fail")])
def test_variance_reduction_slope_in_beta(power, verdict):
    rows = []
    for beta in (1e-4, 3e-4, 1e-3):
        for seed in (0, 1):
            for k in (0, 500, 1000):
                rows.append(dict(run_id=f"{beta}-{seed}", problem="q", workers=8, topology="ring",
                                 beta=beta, label=f"dm_hsgd[beta={beta}]", seed=seed,
                                 iteration=k, stationarity_avg=0.5 * beta**power, status="ok"))
    spec = {"claim": "C10", "predicted": 1.0, "tolerance": 0.3}
    vs, _ = CLAIMS["variance_reduction"].run(pd.DataFrame(rows), spec, _S())
    check = [v for v in vs if v.verdict != "reported"]
    assert len(check) == 1 and check[0].verdict == verdict
    assert check[0].measured == pytest.approx(power, abs=1e-9)


def test_comparison_reports_what_each_method_spent_and_decides_nothing():
    rows = []
    for label, rate, calls in (("a", 1.0, 1), ("b", 0.5, 2)):
        for seed in (0, 1):
            for k in range(0, 101, 10):
                rows.append(dict(run_id=f"{label}{seed}", problem="p", label=label, seed=seed,
                                 iteration=k, stationarity_avg=10.0 ** (-rate * k / 10),
                                 oracle_calls=calls * k, gossip_rounds=2 * k,
                                 floats_sent_per_worker=20.0 * k, status="ok"))
    vs, pts = CLAIMS["comparison"].run(pd.DataFrame(rows), {"claim": "cmp", "eps": 1e-4,
                                                            "smooth": 1}, _S())
    assert {v.verdict for v in vs} == {"reported"}
    got = pts.set_index("label")
    # a: 10^-k/10 <= 1e-4 from k = 40; b: 10^-k/20 from k = 80, with two calls per iteration
    assert got.loc["a", "iteration"] == 40 and got.loc["b", "iteration"] == 80
    assert got.loc["b", "oracle_calls"] == 160 and got.loc["a", "floats_sent_per_worker"] == 800
    # the final level: the mean over the last quarter (records 80, 90, 100)
    assert got.loc["a", "final"] == pytest.approx((1e-8 + 1e-9 + 1e-10) / 3)


@pytest.mark.slow
def test_local_steps_study_reads_as_documented(tmp_path):
    """What studies/local_steps.toml says of itself: on ||F(zbar)||^2 the control passes (the
    average hides the drift), so that check fails; on the workers' own stationarity the claim
    passes and its control never reaches eps at the largest tau."""
    from minmaxlab.study import load_study, run_study

    res = run_study(load_study(ROOT / "studies" / "local_steps.toml"), out=tmp_path, jobs=1,
                    progress=False)
    checks = {v.setting.split(", floats to ")[1].split(" <=")[0]: v for v in res.verdicts
              if v.verdict != "reported"}
    assert checks["stationarity_avg"].verdict == "fail"
    assert checks["stationarity_avg"].control_verdict == "pass"
    assert checks["stationarity_workers"].verdict == "pass"
    assert checks["stationarity_workers"].control_verdict == "fail"


# ----------------------------------------------------------------------- every shipped control

DECENTRALIZED = ["consensus_vs_rounds", "heterogeneity_floor", "limits", "mean_dynamics",
                 "mvi_boundary", "noise_floor_vs_batch_and_workers", "rate_vs_iterations",
                 "rounds_needed_vs_spectral_gap", "speedup_vs_workers", "gradient_tracking",
                 "accelerated_gossip", "time_varying_gossip", "variance_reduction",
                 "compressed_gossip",
                 "wallclock_vs_latency_bandwidth"]


@pytest.mark.slow
def test_every_shipped_control_fails_and_the_decentralized_claims_pass(tmp_path):
    from minmaxlab.report import verify

    res = verify(quick=True, out=tmp_path / "rep", progress=False, only=DECENTRALIZED,
                 echo=lambda m: None)
    s = res["summary"].set_index("claim")
    assert set(s.index) >= {"C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "wallclock"}
    assert (s["control_verdict"] == "fail").all(), s[["controls", "control_verdict"]]
    assert {"C10", "C11"} <= set(s.index)
    for claim in ("C1", "C2", "C4", "C7", "C9", "C10", "C11"):
        assert s.loc[claim, "verdict"] == "pass", claim
    rows = pd.read_csv(tmp_path / "rep" / "claims.csv")
    assert {"control", "control_verdict"} <= set(rows.columns)
    # what the README says of this run: the wall-clock claim fails because DPOSG needs t = 16
    # rounds to bring its 16 heterogeneous workers on a ring to eps (t = 8 never gets there)
    wallclock = rows[rows["claim"] == "wallclock"]
    assert (wallclock["verdict"] == "fail").all()
    for reason in wallclock["reason"]:
        assert re.search(r"dposg\[rounds=8,[^]]*\]: inf", reason), reason
        assert re.search(r"dposg\[rounds=16,[^]]*\]: \d+", reason), reason
    controls = pd.read_csv(tmp_path / "rep" / "controls.csv")
    assert (controls["verdict"] == "fail").any()


@pytest.mark.slow
def test_verify_on_the_users_game(tmp_path):
    from minmaxlab.report import verify

    res = verify(quick=True, out=tmp_path / "rep", progress=False, only=DECENTRALIZED,
                 echo=lambda m: None, problem=str(ROOT / "problems" / "user_game.py") + ":make")
    s = res["summary"].set_index("claim")
    for claim in ("C1", "C2", "C3", "C4", "C5", "C6", "C7", "C9"):
        assert s.loc[claim, "verdict"] in ("pass", "fail", "inconclusive"), claim
        assert s.loc[claim, "control_verdict"] == "fail", claim
    assert s.loc["C8", "verdict"] == "not applicable"
    assert "Minty condition fails" in s.loc["C8", "why"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gan_8gaussians", "gan_25gaussians", "gan_swissroll",
                                  "gan_digits"])
def test_the_gan_controls_fail(name):
    """The GAN studies' control (an untrained generator) misses the thresholds; the trained runs
    themselves are the GAN studies' business (minutes each)."""
    from minmaxlab.claims import control_verdict
    from minmaxlab.study import cells, execute, load_study

    study = load_study(ROOT / "studies" / f"{name}.toml", quick=True)
    runs = [c for c in cells(study) if c["role"] == "control:untrained"]
    assert runs
    table = pd.concat([execute(c)[0] for c in runs], ignore_index=True)
    for spec in study.claims:
        vs, _ = CLAIMS[spec["analysis"]].run(table, spec, study)
        assert control_verdict(vs) == "fail", [v.reason for v in vs]
