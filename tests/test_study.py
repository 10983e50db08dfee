"""Studies: validation of study files, grid expansion, resume after an interruption, analyses on
constructed tables, verify and paper."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from minmaxlab.errors import ConfigError
from minmaxlab.study import cells, expected_cost, load_study, run_studies, run_study

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
    (lambda s: s.replace('name = "tiny"', 'name = "tiny"\ncolour = 3'), "unknown key 'colour'"),
    (lambda s: s.replace('title = "C4: tiny"', 'tittle = "C4: tiny"'),
     "unknown key 'tittle' \\(did you mean 'title'\\?\\)"),
    (lambda s: s.replace("seeds = [0, 1]", "seeds = [0, 1]\nseds = [2]"),
     "unknown key 'seds' \\(did you mean 'seeds'\\?\\)"),
    (lambda s: s.replace('analysis = "noise_floor"', 'analysis = "noise_flor"'),
     "unknown analysis 'noise_flor' \\(did you mean 'noise_floor'\\?\\)"),
    (lambda s: s.replace('analysis = "noise_floor"', 'analysis = ["noise_floor"]'),
     "analysis must be a string"),
    (lambda s: s.replace("iterations = 300", 'iterations = "many"'), "iterations must be"),
    (lambda s: s.replace("seeds = [0, 1]\n", ""), "missing 'seeds'"),
    (lambda s: s.replace("workers = [2, 4]", "workers = [0]"), "workers must be"),
    (lambda s: s.replace('analysis = "noise_floor"', 'analysis = "vibes"'), "unknown analysis 'vibes'"),
    (lambda s: s.replace("tolerance = 0.5", ""), r"missing \['tolerance'\]"),
    (lambda s: s.replace('topologies = ["ring"]', 'topologies = "ring"'), "topologies must be an array"),
    (lambda s: s.replace("[quick]", "[quick]\nfoo = 1"), r"\[quick\]: unknown key 'foo'"),
    (lambda s: s + "\n[[claims]]\nanalysis = 'rate'\n", "missing 'claim'"),
    (lambda s: s.replace("[grid]", "[grid\n"), "malformed TOML"),
    (lambda s: s.replace('topologies = ["ring"]', "topologies = [3]"),
     "entry must be a name or a table"),
    (lambda s: s.replace("tolerance = 0.5", "tolerance = 0.5\nfraction = 2"),
     r"fraction must be a number in \(0, 1\)"),
    (lambda s: s.replace("tolerance = 0.5", "tolerance = 0.5\nquick = 3"), "unknown key 'quick'"),
    (lambda s: s.replace('analysis = "noise_floor"\ntolerance = 0.5', 'analysis = "limits"'),
     "experiment limits"),
    (lambda s: s.replace("every_iteration = false", 'every_iteration = "no"'), "must be true or false"),
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
    assert {"C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "wallclock", "GAN"} <= claims


DECENTRALIZED = {"C2", "C3", "C4", "C5", "C6", "C9", "wallclock"}


def test_every_claim_has_a_control_and_decentralized_claims_run_on_heterogeneous_workers():
    """Every shipped claim names a negative control; the claims about decentralization run on
    workers that differ at the solution (zeta^2 > 0) on a nonlinear problem."""
    from minmaxlab.claims import CLAIMS
    from minmaxlab.config import build_problem

    seen = set()
    for f in sorted((ROOT / "studies").glob("*.toml")):
        s = load_study(f, quick=True)
        # a comparison reports and decides nothing: it has no control to run
        ids = {c["claim"] for c in s.claims if CLAIMS[c["analysis"]].decides}
        if not ids:
            continue
        assert s.controls, f"{f.name} has claims but no [[controls]]"
        controlled = {x for c in s.controls for x in c.get("checks", ids)}
        assert ids <= controlled, f.name
        for c in s.claims:
            if c["claim"] in DECENTRALIZED:
                seen.add(c["claim"])
                claim_cells = [x for x in cells(s) if x["role"] == "claim"]
                top = max(claim_cells, key=lambda x: x["workers"])
                for x in claim_cells:
                    prob = build_problem({**x["problem"], "workers": top["workers"]})
                    assert prob.zeta2 and prob.zeta2 > 0, (f.name, prob.name)
                    assert prob.family not in ("bilinear",), f.name
    assert seen == DECENTRALIZED


def test_run_identity_and_seed_ignore_key_order(tmp_path):
    a = SMALL.replace(
        '{ name = "minty_bowl", params = { dim = 4 }, noise = { sigma = 1.0, batch = [1, 4] } }',
        '{ noise = { batch = [1, 4], sigma = 1.0 }, params = { dim = 4 }, name = "minty_bowl" }')
    assert a != SMALL
    b = a.replace('algorithms = [{ name = "dposg", eta = 0.05, rounds = [1, 2] }]',
                  'algorithms = [{ rounds = [1, 2], eta = 0.05, name = "dposg" }]')
    b = b.replace("sigma = 1.0", "sigma = 1")  # an integral float written as an integer
    from minmaxlab.study import seed_for

    ref = load_study(_write(tmp_path, SMALL, "a.toml"))
    other = load_study(_write(tmp_path, b, "b.toml"))
    key = lambda cs: sorted((c["run_id"], seed_for(c)) for c in cs)  # noqa: E731
    assert key(cells(ref)) == key(cells(other))


def test_controls_run_beside_the_claim_and_must_fail(tmp_path):
    text = SMALL + """
[[controls]]
name = "no_gossip"
description = "local OSG, no gossip"
grid = { algorithms = [{ name = "dposg", eta = 0.05, rounds = 0 }] }
"""
    s = load_study(_write(tmp_path, text), quick=True)
    roles = {c["role"] for c in cells(s)}
    assert roles == {"claim", "control:no_gossip"}
    res = run_study(s, out=tmp_path / "res", jobs=1, progress=False)
    assert set(res.table["role"]) == roles
    assert all(v.control == "no_gossip" for v in res.verdicts)
    assert res.control_verdicts and all("[control no_gossip]" in v.setting
                                        for v in res.control_verdicts)
    saved = pd.read_csv(res.folder / "claims.csv")
    assert {"control", "control_verdict"} <= set(saved.columns)
    for col in ("L", "mvi", "zeta2", "a4", "eta", "rounds", "schedule", "variant", "p_dim",
                "topology_spec"):
        assert col in res.table.columns, col


@pytest.mark.parametrize("mutation, message", [
    (lambda s: s + '\n[[controls]]\nname = "x"\n', "description must be a string"),
    (lambda s: s + '\n[[controls]]\nname = "claim"\ndescription = "d"\n', "name must be a new word"),
    (lambda s: s + '\n[[controls]]\nname = "x"\ndescription = "d"\nchecks = ["C9"]\n', "checks must be"),
    (lambda s: s + '\n[[controls]]\nname = "x"\ndescription = "d"\ngrid = { iters = 3 }\n', "unknown key"),
    (lambda s: s + '\n[user]\nrequires = ["solution"]\n', r"\[user\] needs problems"),
    (lambda s: s + '\n[user]\nproblems = ["{problem}"]\nrequires = ["luck"]\n', "requires must be"),
])
def test_controls_and_user_sections_are_validated(tmp_path, mutation, message):
    p = _write(tmp_path, mutation(SMALL), "bad_study.toml")
    with pytest.raises(ConfigError, match=message) as exc:
        load_study(p)
    assert "bad_study.toml" in str(exc.value)


def test_user_mode_runs_the_users_game_or_says_why_not(tmp_path):
    game = str(ROOT / "problems" / "user_game.py") + ":make"
    text = SMALL + ('\n[user]\nproblems = [{ name = "{problem}", noise = { sigma = 1.0, batch = [1, 4] } }]\n'
                    'algorithms = [{ name = "dposg", eta_L = 0.1, rounds = [1, 2] }]\n'
                    'requires = ["solution", "heterogeneous"]\n')
    s = load_study(_write(tmp_path, text), quick=True, problem=game)
    res = run_study(s, out=tmp_path / "res", jobs=1, progress=False)
    assert set(res.table["problem"]) == {"user_game"} and res.table["zeta2"].iloc[0] > 0
    assert res.table["eta"].iloc[0] == pytest.approx(0.1 / res.table["L"].iloc[0])
    assert res.verdicts[0].verdict in ("pass", "fail", "inconclusive")
    need = text.replace('requires = ["solution", "heterogeneous"]', 'requires = ["mvi_fails"]')
    s = load_study(_write(tmp_path, need, "need.toml"), quick=True, problem=game)
    res = run_study(s, out=tmp_path / "res2", jobs=1, progress=False)
    assert [v.verdict for v in res.verdicts] == ["not applicable"]
    assert "Minty condition fails" in res.verdicts[0].reason and not len(res.table)
    s = load_study(_write(tmp_path, SMALL, "plain.toml"), quick=True, problem=game)
    res = run_study(s, out=tmp_path / "res3", jobs=1, progress=False)
    assert res.verdicts[0].verdict == "not applicable"


def test_study_exit_codes(tmp_path, capsys):
    from minmaxlab.cli import main

    ok = _write(tmp_path, SMALL.replace("tolerance = 0.5", "tolerance = 5.0"), "ok.toml")
    bad = _write(tmp_path, SMALL.replace("tolerance = 0.5", "tolerance = 0.0"), "bad.toml")
    out = str(tmp_path / "res")
    assert main(["study", str(ok), "--quick", "--jobs", "1", "--out", out, "--no-progress"]) == 0
    assert main(["study", str(bad), "--quick", "--jobs", "1", "--out", out, "--no-progress"]) == 1
    assert main(["study", str(tmp_path / "missing.toml"), "--out", out]) == 2
    assert main(["verify", "--only", "no_such_study", "--out", out]) == 2
    assert main(["verify", "--problem", "not a spec", "--out", out]) == 2
    capsys.readouterr()
    assert main(["verify", "--help"]) == 0
    assert "exit codes: 0 when no check failed" in " ".join(capsys.readouterr().out.split())


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


def test_studies_in_one_pool_give_each_studys_own_results(tmp_path):
    """run_studies shares one pool between studies; each study's table and verdicts are those of
    running it alone, whatever order the runs finished in, and each is handed over once."""
    a = load_study(_write(tmp_path, SMALL, "a.toml"), quick=True)
    b = load_study(_write(tmp_path, SMALL.replace('"tiny"', '"tiny_b"').replace(
        "iterations = 100", "iterations = 150"), "b.toml"), quick=True)
    alone = [run_study(s, out=tmp_path / "alone", jobs=1, progress=False) for s in (a, b)]
    seen = []
    together = run_studies([a, b], out=tmp_path / "pool", jobs=2, progress=False,
                           on_result=lambda r: seen.append(r.study.name))
    assert sorted(seen) == ["tiny", "tiny_b"]
    assert [r.study.name for r in together] == ["tiny", "tiny_b"]  # the order asked for
    for one, pooled in zip(alone, together, strict=True):
        assert pooled.computed == 8
        cols = [c for c in one.table.columns if c != "elapsed_s"]
        pd.testing.assert_frame_equal(one.table[cols], pooled.table[cols])
        assert [v.measured for v in one.verdicts] == [v.measured for v in pooled.verdicts]
    again = run_studies([a, b], out=tmp_path / "pool", jobs=2, progress=False)
    assert [r.skipped for r in again] == [8, 8]


def test_expected_cost_starts_long_runs_first():
    gan = {"experiment": "gan", "iterations": 1000, "workers": 8}
    long_run = {"experiment": "trajectory", "iterations": 100000, "workers": 16}
    short = {"experiment": "trajectory", "iterations": 100, "workers": None}
    assert expected_cost(gan) > expected_cost(long_run) > expected_cost(short)


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
    pdf = (tmp_path / "fig" / "C4_tiny.pdf").read_bytes()
    assert b"/Type3" not in pdf and b"/FontFile2" in pdf  # embedded TrueType, no Type 3 fonts
    from PIL import Image

    assert round(Image.open(tmp_path / "fig" / "C4_tiny.png").info["dpi"][0]) == 200
    with pytest.raises(ConfigError, match="no results folder"):
        paper(results=tmp_path / "nothing", out=tmp_path / "fig2")


@pytest.mark.slow
def test_verify_end_to_end(tmp_path, capsys):
    from minmaxlab.cli import main

    assert main(["verify", "--out", str(tmp_path / "rep"), "--no-progress",
                 "--only", "limits,mean_dynamics,mvi_boundary"]) == 0  # no check fails
    out = capsys.readouterr().out
    for claim in ("C1", "C7", "C8"):
        assert claim in out
    assert (tmp_path / "rep" / "claims.md").exists()
    assert (tmp_path / "rep" / "figures" / "C8_mvi_boundary.pdf").exists()
    md = (tmp_path / "rep" / "claims.md").read_text()
    assert "## Summary" in md and "C8_mvi_boundary.png" in md
    page = (tmp_path / "rep" / "index.html").read_text()
    assert page.count("<figure><img") == 3 and "data:image/png;base64," in page
    assert "control_verdict" in page and "git revision" in page


def test_plotting_uses_no_global_state():
    code = ("import matplotlib; b = matplotlib.get_backend(); import sys, minmaxlab.plotting, "
            "minmaxlab.claims; print(b == matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "MPLBACKEND": "svg"}).stdout.split()
    assert out == ["True", "False"]


def test_editing_a_users_game_changes_its_run_ids(tmp_path):
    game = tmp_path / "game.py"
    game.write_text((ROOT / "problems" / "user_game.py").read_text())
    text = SMALL + ('\n[user]\nproblems = [{ name = "{problem}" }]\n')
    study = _write(tmp_path, text)
    before = [c["run_id"] for c in cells(load_study(study, quick=True, problem=f"{game}:make"))]
    game.write_text(game.read_text() + "\n# a changed game\n")
    after = [c["run_id"] for c in cells(load_study(study, quick=True, problem=f"{game}:make"))]
    assert len(before) == len(after) and not set(before) & set(after)
