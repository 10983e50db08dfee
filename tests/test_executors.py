"""Executors of a study's runs: an MPI job (mpi4py.futures' pool of ranks) and a dask cluster give
the tables and verdicts of a local run, byte for byte; an executor that cannot run here is one
clear line before any work; Ctrl-C or an error cancels the runs not started."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from minmaxlab.cli import main
from minmaxlab.errors import ConfigError
from minmaxlab.executors import ExecutorError, run_on
from minmaxlab.study import load_study, run_study

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from test_mpi import _env, _find_mpiexec, _launch  # noqa: E402
from test_study import SMALL  # noqa: E402

# the tiny study of test_study.py with a negative control: 12 short runs of two roles
TINY = SMALL + """[[controls]]
name = "no_gossip"
description = "local OSG, no gossip"
grid = { algorithms = [{ name = "dposg", eta = 0.05, rounds = 0 }] }
"""

# what a study writes besides its runs' metadata (whose seconds and provenance may differ)
OUTPUTS = ("table.csv", "claims.csv", "controls.csv")


def _study_file(tmp_path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def _outputs(folder: Path) -> dict[str, bytes]:
    files = [folder / name for name in OUTPUTS] + sorted(folder.glob("points_*.csv"))
    files += sorted((folder / "runs").glob("*.csv"))
    return {str(f.relative_to(folder)): f.read_bytes() for f in files}


def _verdict_lines(stdout: str) -> list[str]:
    """The printed verdicts, without the first line (its seconds and folder differ)."""
    return stdout.splitlines()[1:]


@pytest.fixture(scope="module")
def mpi_futures():
    """mpiexec, able to start a 3-process job of mpi4py.futures with a pool of 2 workers."""
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed (pip install -e '.[mpi]')")
    cmd = _find_mpiexec()
    if cmd is None:
        pytest.skip("no mpiexec next to the Python executable or on PATH (pip install mpich)")
    code = ("from mpi4py.futures import MPIPoolExecutor\n"
            "with MPIPoolExecutor(main=False) as ex: print('<workers %d>' % ex.num_workers)")
    rc, out, err, _ = _launch(cmd, 3, ["-m", "mpi4py.futures", "-c", code], ROOT, 120)
    if rc != 0 or "<workers 2>" not in out:
        pytest.skip(f"mpiexec does not start a pool of mpi4py.futures: {out} {err}")
    return cmd


@pytest.mark.slow  # seconds each: MPI and dask start-up; the README's command runs them
def test_an_mpi_study_equals_a_local_run_and_resumes(mpi_futures, tmp_path, capsys):
    study = _study_file(tmp_path)
    args = ["study", str(study), "--quick", "--no-progress", "--out"]
    code = main([*args, str(tmp_path / "local"), "--jobs", "1"])
    local_out = capsys.readouterr().out
    assert code in (0, 1), local_out

    command = ["-m", "mpi4py.futures", "-m", "minmaxlab", *args, str(tmp_path / "mpi"),
               "--executor", "mpi"]
    rc, out, err, seconds = _launch(mpi_futures, 3, command, tmp_path, timeout=600)
    assert rc == code, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert "12 runs computed, 0 already done" in out.splitlines()[0]
    assert _verdict_lines(out) == _verdict_lines(local_out)
    local, mpi = _outputs(tmp_path / "local" / "tiny_quick"), _outputs(tmp_path / "mpi" / "tiny_quick")
    assert len(local) == len(OUTPUTS) + 1 + 12  # one points file, 12 runs
    assert mpi.keys() == local.keys()
    for name in local:  # byte for byte: a run depends on its cell only, not on who ran it
        assert mpi[name] == local[name], name

    rc, out, err, _ = _launch(mpi_futures, 3, command, tmp_path, timeout=300)
    assert rc == code, err[-3000:]
    assert "0 runs computed, 12 already done" in out.splitlines()[0]
    assert _outputs(tmp_path / "mpi" / "tiny_quick") == mpi
    print(f"3-process MPI study: {seconds:.1f} s")


@pytest.mark.slow  # seconds each: MPI and dask start-up; the README's command runs them
def test_bad_input_in_an_mpi_run_is_the_line_and_exit_code_of_a_local_run(mpi_futures, tmp_path,
                                                                           capsys):
    study = tmp_path / "bad.toml"
    study.write_text(TINY.replace("eta = 0.05, rounds = [1, 2]", "eta = -0.05, rounds = [1, 2]"))
    args = ["study", str(study), "--quick", "--no-progress", "--out"]
    assert main([*args, str(tmp_path / "local"), "--jobs", "1"]) == 2
    local = _one_error_line(capsys.readouterr().err)
    assert "eta must be a positive finite number" in local
    rc, out, err, _ = _launch(mpi_futures, 3, ["-m", "mpi4py.futures", "-m", "minmaxlab", *args,
                                               str(tmp_path / "mpi"), "--executor", "mpi"],
                              tmp_path, timeout=300)
    assert rc == 2 and _one_error_line(err) == local  # raised on a worker rank, said by rank 0


@pytest.mark.slow  # seconds each: MPI and dask start-up; the README's command runs them
def test_ctrl_c_ends_an_mpi_study_at_once(mpi_futures, tmp_path):
    """Ctrl-C (SIGINT to the job's process group, as a terminal sends it) while the worker ranks
    are inside long compiled runs: the job ends within seconds with exit 130 and one line, and
    leaves no process behind."""
    study = tmp_path / "long.toml"
    study.write_text(TINY.replace("iterations = 100", "iterations = 20000000"))  # ~20 s a run
    out = tmp_path / "res"
    cmd = [*mpi_futures, "-n", "3", sys.executable, "-m", "mpi4py.futures", "-m", "minmaxlab",
           "study", str(study), "--quick", "--executor", "mpi", "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            # a terminal's foreground job: Ctrl-C not ignored (see test_interrupt)
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 300
        while not (out / "tiny_quick" / "runs").exists() and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(3)  # the runs are handed out (or rank 0 still compiles: Ctrl-C all the same)
        os.killpg(proc.pid, signal.SIGINT)
        start = time.perf_counter()
        _, err = proc.communicate(timeout=60)
        took = time.perf_counter() - start
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, err[-3000:]
    assert took < 10, f"the job took {took:.1f} s to end after Ctrl-C"
    assert err.count("minmaxlab: interrupted") == 1 and "Traceback" not in err, err[-3000:]
    assert not list((out / "tiny_quick" / "runs").glob("*.csv"))  # no run finished in time
    time.sleep(0.5)
    assert not _session_processes(proc.pid), "processes of the job outlived it"


def _session_processes(sid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # the session id, and not a zombie
            found.append(int(stat.parent.name))
    return found


def _one_error_line(err: str) -> str:
    """The one line minmaxlab writes (an MPI library may add its own line about the exit)."""
    ours = [ln for ln in err.splitlines() if ln.startswith("minmaxlab")]
    assert len(ours) == 1 and "Traceback" not in err, err
    return ours[0]


def test_executor_mpi_outside_the_pool_is_one_line_naming_the_launch(tmp_path):
    study = _study_file(tmp_path)
    res = subprocess.run([sys.executable, "-m", "minmaxlab", "study", str(study), "--quick",
                          "--executor", "mpi", "--out", str(tmp_path / "res")],
                         capture_output=True, text=True, timeout=300, env=_env())
    assert res.returncode == 2
    line = _one_error_line(res.stderr)
    assert line.startswith("minmaxlab: error: --executor mpi ")
    assert "mpiexec -n K python -m mpi4py.futures -m minmaxlab study FILE --executor mpi" in line
    assert not (tmp_path / "res").exists()  # refused before any folder is made


def test_executor_mpi_in_a_job_of_one_process_says_so(mpi_futures, tmp_path):
    study = _study_file(tmp_path)
    rc, out, err, _ = _launch(mpi_futures, 1, ["-m", "mpi4py.futures", "-m", "minmaxlab", "study",
                                               str(study), "--executor", "mpi", "--out",
                                               str(tmp_path / "res")], tmp_path, timeout=300)
    assert rc == 2
    line = _one_error_line(err)
    assert "no worker processes in an MPI job of 1 process" in line and "K >= 2" in line
    assert not (tmp_path / "res").exists()


def test_run_study_refuses_executors_that_cannot_run_here(tmp_path):
    s = load_study(_study_file(tmp_path), quick=True)
    with pytest.raises(ExecutorError, match="python -m mpi4py.futures"):  # pytest is not that
        run_study(s, out=tmp_path / "res", executor="mpi", progress=False)
    with pytest.raises(ConfigError, match=r"unknown executor 'mpy' \(did you mean 'mpi'\?\)"):
        run_study(s, out=tmp_path / "res", executor="mpy", progress=False)
    with pytest.raises(ConfigError, match="goes with --executor dask"):
        run_study(s, out=tmp_path / "res", scheduler="tcp://127.0.0.1:8786", progress=False)
    with pytest.raises(ConfigError, match="needs --scheduler ADDRESS"):
        run_study(s, out=tmp_path / "res", executor="dask", progress=False)
    assert not (tmp_path / "res").exists()


def test_unknown_executor_on_the_command_line(tmp_path, capsys):
    study = str(_study_file(tmp_path))
    assert main(["study", study, "--executor", "mpy", "--out", str(tmp_path / "res")]) == 2
    err = capsys.readouterr().err
    assert "argument --executor: invalid choice: 'mpy'" in err and len(err.splitlines()) == 1
    assert main(["study", study, "--scheduler", "tcp://127.0.0.1:8786"]) == 2
    assert _one_error_line(capsys.readouterr().err).endswith("it goes with --executor dask")
    assert main(["study", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--executor mpi and dask ignore it" in help_text  # what --jobs means with them


class _Recording(ThreadPoolExecutor):
    """A thread pool that remembers how it was shut down."""

    shutdowns: list

    def shutdown(self, wait=True, *, cancel_futures=False):
        self.shutdowns = [*getattr(self, "shutdowns", []), (wait, cancel_futures)]
        super().shutdown(wait=wait, cancel_futures=cancel_futures)


@pytest.mark.parametrize("failure", [ValueError("bad run"), KeyboardInterrupt()])
def test_run_on_cancels_the_runs_not_started(failure):
    """A run that raises (or Ctrl-C while results arrive) cancels the queued runs and shuts the
    pool down without waiting for the run still going."""
    release, started = threading.Event(), []

    def run(item):
        started.append(item)
        if item == 0:
            if isinstance(failure, ValueError):
                raise failure
            return item
        release.wait(10)  # item 1 is still going when the failure arrives
        return item

    def on_done(result):
        if isinstance(failure, KeyboardInterrupt):
            raise failure

    ex = _Recording(max_workers=2)
    with pytest.raises(type(failure)):
        run_on(ex, run, range(6), on_done)
    assert ex.shutdowns == [(False, True)]
    release.set()
    ex.shutdown(wait=True)
    assert set(started) <= {0, 1, 2}, started  # at most one more run began after the first


def test_run_on_hands_out_in_order_and_reports_each_result():
    seen = []
    with ThreadPoolExecutor(max_workers=1) as ex:
        run_on(ex, lambda x: x * x, [3, 1, 2], seen.append)
    assert seen == [9, 1, 4]  # one worker: started, and finished, in the order given


# ---------------------------------------------------------------------------- dask


@pytest.mark.slow  # seconds each: MPI and dask start-up; the README's command runs them
def test_a_dask_study_equals_a_local_run(tmp_path):
    distributed = pytest.importorskip("distributed", reason="dask is not installed "
                                                            "(pip install -e '.[dask]')")
    s = load_study(_study_file(tmp_path), quick=True)
    local = run_study(s, out=tmp_path / "local", jobs=1, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        remote = run_study(s, out=tmp_path / "dask", progress=False, executor="dask",
                           scheduler=cluster.scheduler_address)
    assert remote.computed == 12
    assert _outputs(remote.folder) == _outputs(local.folder)
    assert [v.measured for v in remote.verdicts] == [v.measured for v in local.verdicts]


def test_an_unreachable_dask_scheduler_is_one_line(tmp_path):
    pytest.importorskip("distributed", reason="dask is not installed (pip install -e '.[dask]')")
    env = _env(DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="1s")
    res = subprocess.run([sys.executable, "-m", "minmaxlab", "study", str(_study_file(tmp_path)),
                          "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9",
                          "--no-progress", "--out", str(tmp_path / "res")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 2
    assert "no dask scheduler answers at 'tcp://127.0.0.1:9'" in _one_error_line(res.stderr)
    assert not (tmp_path / "res").exists()


def test_executor_dask_without_dask_says_how_to_install(tmp_path, monkeypatch):
    import importlib.util as iu

    real = iu.find_spec
    monkeypatch.setattr(iu, "find_spec", lambda name, *a: None if name == "distributed"
                        else real(name, *a))
    s = load_study(_study_file(tmp_path), quick=True)
    with pytest.raises(ExecutorError, match=r"pip install 'minmaxlab\[dask\]'"):
        run_study(s, out=tmp_path / "res", executor="dask", scheduler="tcp://127.0.0.1:8786")
