"""Stopping: Ctrl-C on a study stops it within seconds with exit 130 and one line, keeps the
finished runs, leaves no worker and no temporary behind, and a rerun completes it; a killed study
leaves no orphan worker."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LONG = """
name = "long"
[grid]
problems = [{ name = "minty_bowl", params = { dim = 4 }, noise = { sigma = 1.0, batch = [1, 4] } }]
workers = [2, 4]
topologies = ["ring"]
algorithms = [{ name = "dposg", eta = 0.05, rounds = [1, 2] }]
seeds = [0, 1, 2]
iterations = 1500000
record = 20
every_iteration = false
"""


def _children(pid):
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid):
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def _as_in_a_terminal():
    """The command starts as a terminal's foreground job does, with Ctrl-C's default action: a
    test run from a background shell (`cmd &`, nohup) inherits SIGINT ignored, and Python then
    never turns Ctrl-C into KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(tmp_path):
    p = tmp_path / "long.toml"
    p.write_text(LONG)
    out = tmp_path / "res"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "minmaxlab.cli", "study", str(p), "--jobs", "2", "--out",
           str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, preexec_fn=_as_in_a_terminal)
    runs = out / "long" / "runs"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(runs.glob("*.csv"))) < 2:
        time.sleep(0.05)
    assert len(list(runs.glob("*.csv"))) >= 2, "no run finished in time"
    deadline = time.time() + 30
    while time.time() < deadline and len(_children(proc.pid)) < 2:
        time.sleep(0.05)
    return p, out, runs, proc


@pytest.mark.slow
def test_ctrl_c_stops_a_study_within_seconds_and_a_rerun_completes_it(tmp_path):
    p, out, runs, proc = _start(tmp_path)
    workers = _children(proc.pid)
    assert workers
    t0 = time.time()
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C: the whole group
    _, err = proc.communicate(timeout=30)
    assert time.time() - t0 < 5
    assert proc.returncode == 130
    assert "Traceback" not in err and "interrupted" in err
    time.sleep(0.2)
    assert not [w for w in workers if _alive(w)]
    done = sorted(runs.glob("*.csv"))
    assert 2 <= len(done) < 24 and not list(runs.glob(".*.tmp"))
    from minmaxlab.study import load_study, run_study

    res = run_study(load_study(p, quick=False), out=out, jobs=2, progress=False)
    assert res.skipped == len(done) and res.computed == 24 - len(done)


@pytest.mark.slow
def test_a_killed_study_leaves_no_worker_behind(tmp_path):
    _, _, _, proc = _start(tmp_path)
    workers = _children(proc.pid)
    assert workers
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 5
    while time.time() < deadline and [w for w in workers if _alive(w)]:
        time.sleep(0.05)
    assert not [w for w in workers if _alive(w)]


RUN_FILE = """
[problem]
name = "minty_bowl"
workers = 4
[topology]
name = "ring"
[algorithm]
name = "dposg"
eta = 0.05
[run]
iterations = 400000000
every_iteration = false
"""


@pytest.mark.slow
def test_ctrl_c_stops_a_long_single_run(tmp_path):
    """The compiled kernel never checks for Ctrl-C; the run lives in a child the command kills."""
    f = tmp_path / "long.toml"
    f.write_text(RUN_FILE)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "minmaxlab.cli", "run", str(f), "--out",
                             str(tmp_path / "out" / "x.csv")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_as_in_a_terminal)
    deadline = time.time() + 120
    while time.time() < deadline and not _children(proc.pid):
        time.sleep(0.05)
    workers = _children(proc.pid)
    assert workers, "the run never started"
    time.sleep(3)  # inside the kernel by now (a minute of work at least)
    t0 = time.time()
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert time.time() - t0 < 5 and proc.returncode == 130
    assert "Traceback" not in err and "interrupted" in err
    assert not [w for w in workers if _alive(w)]
    assert not list((tmp_path / "out").glob("*"))  # no table, no metadata, no temporaries
