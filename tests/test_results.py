"""The results folder: only complete runs count, damaged files are named and recomputed, writers
never delete each other's files, and a run that raises is recorded while the study goes on."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

import minmaxlab.study as study_module
from minmaxlab.results import ResultWarning, remove_stale_temporaries, untrusted
from minmaxlab.study import load_study, run_study

SMALL = """
name = "tiny"
[grid]
problems = [{ name = "minty_bowl", params = { dim = 4 }, noise = { sigma = 1.0, batch = [1, 4] } }]
workers = [2, 4]
topologies = ["ring"]
algorithms = [{ name = "dposg", eta = 0.05, rounds = 1 }]
seeds = [0]
iterations = 200
record = 10
every_iteration = false
[[claims]]
claim = "C4"
analysis = "noise_floor"
tolerance = 0.5
"""


@pytest.fixture
def done(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(SMALL)
    s = load_study(p)
    res = run_study(s, out=tmp_path / "res", jobs=1, progress=False)
    assert res.computed == 4
    return s, res


@pytest.mark.parametrize("damage", ["truncate", "empty", "edit", "no_sidecar", "bad_sidecar"])
def test_a_damaged_run_is_named_and_recomputed(done, tmp_path, damage):
    s, res = done
    runs = res.folder / "runs"
    victim = sorted(runs.glob("*.csv"))[0]
    side = victim.with_suffix(".json")
    data = victim.read_bytes()
    if damage == "truncate":
        victim.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        victim.write_bytes(b"")
    elif damage == "edit":
        victim.write_bytes(data.replace(b"ok", b"ko", 1))
    elif damage == "no_sidecar":
        side.unlink()
    else:
        side.write_text("{ not json")
    assert untrusted(runs, victim.stem)
    with pytest.warns(ResultWarning, match=victim.name):
        again = run_study(s, out=tmp_path / "res", jobs=1, progress=False)
    assert again.computed == 1 and again.skipped == 3
    assert untrusted(runs, victim.stem) == ""
    pd.testing.assert_frame_equal(again.table, res.table)


def test_reused_runs_of_another_revision_are_announced(done, tmp_path):
    s, res = done
    side = sorted((res.folder / "runs").glob("*.json"))[0]
    meta = json.loads(side.read_text())
    meta["git_revision"] = "0123abc"
    side.write_text(json.dumps(meta))  # the sidecar's own content is not fingerprinted
    with pytest.warns(ResultWarning, match="0123abc"):
        again = run_study(s, out=tmp_path / "res", jobs=1, progress=False)
    assert again.computed == 0


def test_only_the_temporaries_of_gone_writers_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    mine = tmp_path / f".run.csv.{os.getpid()}.abc123_x.tmp"
    gone = tmp_path / f".run.csv.{dead}.zz9_yy.tmp"
    for f in (mine, gone):
        f.write_text("partial")
    assert remove_stale_temporaries(tmp_path) == 1
    assert mine.exists() and not gone.exists()


def test_a_run_that_raises_is_recorded_and_the_study_goes_on(tmp_path, monkeypatch):
    p = tmp_path / "s.toml"
    p.write_text(SMALL)
    s = load_study(p)
    real = study_module.execute

    def flaky(cell):
        if cell["workers"] == 4 and cell["problem"]["noise"]["batch"] == 4:
            raise FloatingPointError("overflow in the user's operator")
        return real(cell)

    monkeypatch.setattr(study_module, "execute", flaky)
    res = run_study(s, out=tmp_path / "res", jobs=1, progress=False)
    assert len(res.failed_runs) == 1
    (rid, err), = res.failed_runs.items()
    assert "FloatingPointError: overflow" in err
    assert res.table["run_id"].nunique() == 3
    left = [v for v in res.verdicts if "left out" in v.reason]
    assert left and rid in left[0].reason and left[0].verdict == "inconclusive"
    monkeypatch.setattr(study_module, "execute", real)
    again = run_study(s, out=tmp_path / "res", jobs=1, progress=False)
    assert again.computed == 1 and not again.failed_runs
