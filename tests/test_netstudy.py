"""The netstudy: its refusal without rights, its prediction and checks on constructed numbers, and
(as root, slow) the quick version on real namespaces: the shaping verified by its own probe."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from minmaxlab import netstudy as N
from minmaxlab.costmodel import CostModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_refuses_in_one_line_without_root(monkeypatch, capsys):
    from minmaxlab.cli import main

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["netstudy", "--out", "unused"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs root" in err[0] and "Traceback" not in err[0]


def test_refuses_without_its_tools(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(N.shutil, "which", lambda tool: None if tool == "tc" else "/bin/" + tool)
    with pytest.raises(N.NetstudyError, match="needs the commands tc"):
        N.check_rights()


def test_a_failing_command_is_one_line_naming_it():
    with pytest.raises(N.NetstudyError, match=r"`false` failed"):
        N._sh("false")


def test_allgather_model():
    """The MPI backend's exact average: ceil(log2 M) latencies and (M - 1) rows of 8 d bytes."""
    m = CostModel(alpha=1e-3, beta=1e6, allreduce="allgather")
    assert m.allreduce_time(1000, 4) == pytest.approx(2e-3 + 3 * 8000 / 1e6)
    assert m.allreduce_time(1000, 5) == pytest.approx(3e-3 + 4 * 8000 / 1e6)
    ring = CostModel(alpha=1e-3, beta=1e6)
    assert ring.allreduce_time(1000, 4) == pytest.approx(6e-3 + 1.5 * 8000 / 1e6)


def test_prediction_is_iterations_times_compute_and_the_models_communication():
    plan = N.Plan(dim=1000, workers=4)
    run = {"method": "dposg", "rounds": 3, "iterations": 10, "alpha": 1e-4, "beta": 1e6}
    # 2 gossip phases x 3 rounds x (alpha + 2 neighbours x 8000 bytes / beta)
    assert N.predicted_seconds(run, 0.01, plan) == pytest.approx(10 * (0.01 + 6 * (1e-4 + 0.016)))
    cpo = {"method": "cposg", "rounds": 0, "iterations": 10, "alpha": 1e-4, "beta": 1e6}
    assert N.predicted_seconds(cpo, 0.0, plan) == pytest.approx(10 * (2e-4 + 3 * 0.008))


def _table(scale_cposg=1.0, rate_seen=100.0):
    """Constructed runs: measured = the allgather model's prediction (CPOSG's times scale_cposg)."""
    plan = N.Plan(dim=1000, workers=4, rates=(100,), eps=1e-3)
    rows = []
    for rate, beta in ((None, 1e10), (100, rate_seen * 1e6 / 8)):
        for method, rounds in (("dposg", 1), ("cposg", 0)):
            run = {"rate_mbit": rate, "alpha": 1e-5, "beta": beta, "label": f"{method}[{rounds}]",
                   "method": method, "rounds": rounds, "iterations": 100, "stationarity": 5e-4}
            secs = N.predicted_seconds(run, 2e-4, plan)  # communication dominates
            run["seconds"] = secs * (scale_cposg if method == "cposg" and rate else 1.0)
            rows.append(run)
    shaping = [{"rate_mbit": 100, "measured_mbit": rate_seen, "bytes_per_link": [10**6] * 8}]
    table = N._predict(pd.DataFrame(rows), plan)
    return table, N._checks(table, shaping, plan, least_bytes=8 * plan.dim * 100)


def test_checks_pass_on_times_the_model_predicts_and_fail_otherwise():
    table, checks = _table()
    v = {c["check"]: c for c in checks}
    assert np.allclose(table["measured_over_predicted"], 1.0)
    assert v["shaping"]["verdict"] == "pass" and v["time model"]["verdict"] == "pass"
    # the ring all-reduce model predicts less traffic than the Allgather sends: its control fails
    assert v["time model"]["control"] == "fail"
    # CPOSG twice as slow as predicted, a link at half its rate: both checks fail
    assert {c["check"]: c["verdict"] for c in _table(scale_cposg=2.0)[1]}["time model"] == "fail"
    assert {c["check"]: c["verdict"] for c in _table(rate_seen=50.0)[1]}["shaping"] == "fail"


def test_a_control_within_the_tolerance_fails_the_time_check():
    """CPOSG measured between the two models' predictions: both within 1.5x, so the check could
    not tell the models apart, and fails."""
    table, checks = _table(scale_cposg=0.75)
    v = {c["check"]: c for c in checks}
    assert v["time model"]["control"] == "pass" and v["time model"]["verdict"] == "fail"


def test_a_link_that_carried_too_little_fails_the_shaping_check():
    plan = N.Plan(dim=1000, workers=4, rates=(100,))
    table, _ = _table()
    shaping = [{"rate_mbit": 100, "measured_mbit": 100.0, "bytes_per_link": [10**6] * 7 + [300]}]
    checks = {c["check"]: c["verdict"] for c in N._checks(table, shaping, plan, least_bytes=8000)}
    assert checks["shaping"] == "fail"


@pytest.mark.parametrize("rates", [(0,), (-5,), (), (float("nan"),)])
def test_bad_rates_are_refused_before_any_work(rates):
    with pytest.raises(N.NetstudyError, match="rates must be bandwidths in Mbit/s"):
        N.Plan(rates=rates)


def test_cli_rates_must_be_positive_numbers(capsys):
    from minmaxlab.cli import main

    assert main(["netstudy", "--rates", "0,100"]) == 2
    assert "expected bandwidths in Mbit/s > 0" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="netstudy creates network namespaces and tc qdiscs, which only root may "
                           "do (CI runs as root; the refusal without root is tested above)")
def test_quick_netstudy_on_shaped_namespaces(tmp_path):
    """The quick version end to end (CI runs as root): the probe sees the set rates, the bytes go
    through the token buckets, every run reaches eps, the files are whole and no namespace stays."""
    res = subprocess.run([sys.executable, "-m", "minmaxlab", "netstudy", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert res.returncode in (0, 1), res.stderr[-2000:]
    out = json.loads((tmp_path / "netstudy.json").read_text())
    checks = {c["check"]: c["verdict"] for c in out["checks"]}
    assert checks["shaping"] == "pass", out["shaping"]
    assert checks["reached eps"] == "pass"
    assert checks["time model"] in ("pass", "fail")  # a measurement: reported, see the README
    assert len(pd.read_csv(tmp_path / "netstudy.csv")) == 3 * 3  # 3 rates x 3 methods
    assert out["git_revision"] and out["versions"]
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "mmlnet" not in left


def test_the_probe_outgrows_the_bucket_and_the_compute_time_is_a_median():
    """The largest probe is 16 buckets at least (1 Gbit/s: a 125 kB bucket, 2 MB probes); the
    compute time per iteration is the median over the methods, so one slow run does not move it."""
    assert N.burst_bytes(1000) == 125_000 and N.probe_sizes(1000)[-1] == 2_000_000
    assert N.probe_sizes(20)[-1] == N.PROBE_SIZES[-1] and N.burst_bytes(1) == N.MIN_BURST
    table, _ = _table()
    assert np.allclose(table["compute_s_per_iter_calibrated"], 2e-4)
    plan = N.Plan(dim=1000, workers=4, rates=(100,))
    raw = []
    for k, secs in enumerate((0.02, 0.021, 0.5)):  # the third run caught a pause
        raw.append({"rate_mbit": None, "alpha": 0.0, "beta": 1e12, "label": f"m{k}", "method": "dposg",
                    "rounds": 1, "iterations": 10, "seconds": secs, "stationarity": 0.0})
        raw.append({**raw[-1], "rate_mbit": 100.0, "beta": 1.25e7})
    out = N._predict(pd.DataFrame(raw), plan)
    assert out["compute_s_per_iter_calibrated"].iloc[0] == pytest.approx(0.0021, rel=1e-3)
