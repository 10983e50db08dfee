"""Studies: validation of study files, grid expansion, resume after an interruption, analyses on
constructed tables, verify and paper."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from minmaxlab.claims import ANALYSES
from minmaxlab.errors import ConfigError
from minmaxlab.study import cells, load_study, run_study

ROOT = Path(__file__).resolve().parents[1]

SMALL = """
name = "tiny"
title = "C4: tiny"
[grid]
problems = [{ name = "minty_bowl", params = { dim = 4 }, noise = { sigma = 1.0, batch = [1, 4] } }]
workers = [2, 4]
topologies = ["ring"]
algorithms = [{ name = "dposg", eta = 0.05, rounds = [1, 2] }]
seeds = [0, 1]
iterations = 300
record = 20
every_iteration = false
[quick]
iterations = 100
seeds = [0]
[[claims]]
claim = "C4"
analysis = "noise_floor"
tolerance = 0.5
"""


def _write(tmp_path, text, name="s.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_grid_expansion_names_and_quick(tmp_path):
    s = load_study(_write(tmp_path, SMALL))
    cs = cells(s)
    assert len(cs) == 2 * 2 * 2 * 2  # batch x workers x rounds x seeds
    assert len({c["run_id"] for c in cs}) == len(cs)
    from minmaxlab.study import run_name

    assert any("|dposg[eta=0.05,rounds=2]|" in run_name(c) for c in cs)
    q = load_study(_write(tmp_path, SMALL), quick=True)
    assert len(cells(q)) == 8 and all(c["iterations"] == 100 for c in cells(q))


@pytest.mark.parametrize("mutation, message", [
    (lambda s: s.replace('name = "tiny"', 'name = "tiny"\ncolour = 3'), r"unknown key\(s\) \['colour'\]"),
    (lambda s: s.replace("iterations = 300", 'iterations = "many"'), "iterations must be"),
    (lambda s: s.replace("seeds = [0, 1]\n", ""), "missing 'seeds'"),
    (lambda s: s.replace("workers = [2, 4]", "workers = [0]"), "workers must be"),
    (lambda s: s.replace('analysis = "noise_floor"', 'analysis = "vibes"'), "unknown analysis 'vibes'"),
    (lambda s: s.replace("tolerance = 0.5", ""), r"missing \['tolerance'\]"),
    (lambda s: s.replace('topologies = ["ring"]', 'topologies = "ring"'), "topologies must be an array"),
    (lambda s: s.replace("[quick]", "[quick]\nfoo = 1"), r"\[quick\] has unknown key"),
    (lambda s: s + "\n[[claims]]\nanalysis = 'rate'\n", "missing 'claim'"),
    (lambda s: s.replace("[grid]", "[grid\n"), "malformed TOML"),
])
def test_study_validation_names_key_and_file(tmp_path, mutation, message):
    p = _write(tmp_path, mutation(SMALL), "bad_study.toml")
    with pytest.raises(ConfigError, match=message) as exc:
        load_study(p)
    assert "bad_study.toml" in str(exc.value)


def test_shipped_studies_are_valid():
    files = sorted((ROOT / "studies").glob("*.toml"))
    assert len(files) >= 9
    claims = set()
    for f in files:
        for quick in (False, True):
            s = load_study(f, quick=quick)
            assert cells(s), f
            claims |= {c["claim"] for c in s.claims}
    assert {"C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8"} <= claims


def test_run_study_writes_everything_and_resumes(tmp_path):
    s = load_study(_write(tmp_path, SMALL), quick=True)
    r1 = run_study(s, out=tmp_path / "res", jobs=1, progress=False)
    assert r1.computed == 8 and r1.skipped == 0
    folder = r1.folder
    assert (folder / "table.csv").exists() and (folder / "claims.csv").exists()
    assert len(list((folder / "runs").glob("*.csv"))) == 8
    assert len(list((folder / "runs").glob("*.json"))) == 8
    r2 = run_study(s, out=tmp_path / "res", jobs=1, progress=False)
    assert r2.computed == 0 and r2.skipped == 8
    pd.testing.assert_frame_equal(r1.table, r2.table)
    assert r1.verdicts[0].claim == "C4"


def test_interrupted_study_resumes_without_recomputing(tmp_path):
    text = SMALL.replace("iterations = 300", "iterations = 60000")
    text = text.replace("seeds = [0, 1]", "seeds = [0, 1, 2]")
    p = _write(tmp_path, text)
    out = tmp_path / "res"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "minmaxlab.cli", "study", str(p), "--jobs", "1", "--out", str(out),
           "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    runs = out / "tiny" / "runs"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(runs.glob("*.csv"))) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {f.name: f.stat().st_mtime_ns for f in runs.glob("*.csv")}
    assert 3 <= len(done_before) < 24, "the interruption came too late to test resuming"
    for f in runs.glob("*.csv"):  # every finished file is complete
        assert pd.read_csv(f)["iteration"].iloc[-1] == 60000
    s = load_study(p)
    res = run_study(s, out=out, jobs=2, progress=False)
    assert res.skipped == len(done_before) and res.computed == 24 - len(done_before)
    for name, mtime in done_before.items():  # finished runs were not recomputed
        assert (runs / name).stat().st_mtime_ns == mtime
    assert not list(runs.glob(".*.tmp"))
    # and the resumed results equal those of one uninterrupted run
    fresh = run_study(s, out=tmp_path / "fresh", jobs=1, progress=False)
    cols = ["run_id", "iteration", "stationarity_local", "consensus_z"]
    a = res.table[cols].sort_values(["run_id", "iteration"]).reset_index(drop=True)
    b = fresh.table[cols].sort_values(["run_id", "iteration"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


class _S:
    name = "constructed"
    grid = {"topologies": ["ring"]}


def _floor_table(exponent, seeds=(0, 1, 2)):
    rng = np.random.default_rng(1)
    rows = []
    for seed in seeds:
        for M in (2, 8):
            for m in (1, 4, 16):
                floor = 3.0 * (m * M) ** exponent
                for k in range(0, 1001, 50):
                    val = floor * (1 + 50 * np.exp(-k / 50)) * np.exp(0.05 * rng.standard_normal())
                    rows.append(dict(run_id=f"{seed}-{M}-{m}", problem="p", algorithm="dposg",
                                     label="dposg[...]", topology="ring", workers=M, batch=m,
                                     sigma=1.0, seed=seed, iteration=k, stationarity_local=val,
                                     status="ok"))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("exponent, verdict", [(-1.0, "pass"), (-0.5, "fail")])
def test_noise_floor_analysis_on_constructed_tables(exponent, verdict):
    vs, pts = ANALYSES["noise_floor"].run(_floor_table(exponent), {"claim": "C4", "tolerance": 0.15},
                                          _S())
    assert vs[0].verdict == verdict
    assert vs[0].measured == pytest.approx(exponent, abs=0.05)


def test_rounds_needed_analysis_on_a_constructed_table():
    rows = []
    rhos = {"complete": 0.0, "torus": 0.6, "ring": 0.9}
    for name, rho in rhos.items():
        for t in (1, 2, 4, 8, 16, 32, 64):
            level = 1.0 + 100 * rho ** (2 * t)  # consensus penalty on top of CPOSG's level 1
            for k in (0, 500, 1000):
                rows.append(dict(run_id=f"{name}{t}", topology=name, workers=16, rho=rho, rounds=t,
                                 algorithm="dposg", label=f"dposg[rounds={t}]", seed=0,
                                 iteration=k, stationarity_local=level, status="ok"))
    for k in (0, 500, 1000):
        rows.append(dict(run_id="c", topology="complete", workers=16, rho=0.0, rounds=0,
                         algorithm="cposg", label="cposg[eta=0.1]", seed=0, iteration=k,
                         stationarity_local=1.0, status="ok"))
    vs, res = ANALYSES["rounds_needed"].run(pd.DataFrame(rows), {"claim": "C6", "delta": 0.1,
                                                                 "eps": 1e-3}, _S())
    t = dict(zip(res["topology"], res["t_needed"], strict=True))
    # 100 rho^(2t) <= 0.1  <=>  t >= log(1000) / (2 log(1/rho))
    assert t == {"complete": 1.0, "torus": 8.0, "ring": 64.0}
    assert vs[0].verdict == "pass"


def test_mean_dynamics_and_limits_analyses_fail_on_large_deviations():
    t = pd.DataFrame(dict(run_id=["a", "a"], iteration=[1, 2], dev_z=[1e-16, 1e-9],
                          dev_x=[0.0, 0.0], topology="ring", workers=4, seed=0, problem="p",
                          status="ok"))
    assert ANALYSES["mean_dynamics"].run(t, {"claim": "C1"}, _S())[0][0].verdict == "fail"
    t["dev_z"] = [1e-16, 2e-16]
    assert ANALYSES["mean_dynamics"].run(t, {"claim": "C1"}, _S())[0][0].verdict == "pass"


def test_paper_rebuilds_from_saved_results_without_simulating(tmp_path, monkeypatch):
    s = load_study(_write(tmp_path, SMALL), quick=True)
    run_study(s, out=tmp_path / "results", jobs=1, progress=False)
    import minmaxlab.simulate as sim
    from minmaxlab.report import paper

    def boom(*a, **k):
        raise AssertionError("paper must not simulate")

    monkeypatch.setattr(sim, "run", boom)
    made = paper(results=tmp_path / "results", out=tmp_path / "fig", echo=lambda m: None)
    assert made and all(Path(f["pdf"]).stat().st_size > 1000 for f in made)
    assert (tmp_path / "fig" / "C4_tiny.png").exists()
    assert "claim C4" in (tmp_path / "fig" / "C4_tiny.txt").read_text()
    assert (tmp_path / "fig" / "claims_table.csv").exists()
    with pytest.raises(ConfigError, match="no results folder"):
        paper(results=tmp_path / "nothing", out=tmp_path / "fig2")


@pytest.mark.slow
def test_verify_end_to_end(tmp_path, capsys):
    from minmaxlab.cli import main

    assert main(["verify", "--out", str(tmp_path / "rep"), "--no-progress",
                 "--only", "limits,mean_dynamics,mvi_boundary"]) == 0
    out = capsys.readouterr().out
    for claim in ("C1", "C7", "C8"):
        assert claim in out
    assert (tmp_path / "rep" / "claims.md").exists()
    assert (tmp_path / "rep" / "figures" / "C8_mvi_boundary.pdf").exists()
    md = (tmp_path / "rep" / "claims.md").read_text()
    assert "## Summary" in md and "C8_mvi_boundary.png" in md


@pytest.mark.parametrize("power, verdicts", [(2, {"pass"}), (1, {"fail"})])
def test_consensus_analysis_on_constructed_tables(power, verdicts):
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
                                 consensus_z=e, status="ok"))

    class S:
        name = "c2"
        grid = {"topologies": ["torus"]}

    vs, _ = ANALYSES["consensus"].run(pd.DataFrame(rows), {"claim": "C2", "tolerance": 0.2}, S())
    assert vs[0].verdict == "pass"  # the gossip contraction itself (a property of W)
    assert {v.verdict for v in vs[1:]} == verdicts
