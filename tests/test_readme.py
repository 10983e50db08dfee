"""The README runs as written: its Python blocks (in order, one namespace), its commands (console
blocks, with .venv/bin/ meaning this environment) and its files (``toml NAME`` blocks) are
extracted from README.md and executed; the set-up commands are the ones CI runs."""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)\n```$", re.S | re.M)


def blocks(kinds):
    text = (ROOT / "README.md").read_text()
    return [(m.group("info").strip(), m.group("body")) for m in FENCE.finditer(text)
            if m.group("info").split(" ")[0] in kinds]


def test_every_block_says_what_it_is():
    known = {"python", "console", "sh", "toml", "text"}
    assert blocks(known)
    text = (ROOT / "README.md").read_text()
    infos = [m.group("info").strip() for m in FENCE.finditer(text)]
    assert all(i.split(" ")[0] in known for i in infos), infos
    assert not re.search(r"^    \S", re.sub(FENCE, "", text), re.M), "an indented code block"


def test_the_set_up_commands_are_the_ones_ci_runs():
    setup = [b for i, b in blocks({"sh"}) if i == "sh"]
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = next(b for b in setup if "pytest" in b)
    assert test_cmd.strip() in ci  # exactly the README's test command
    main_job = next(b for b in setup if b.strip().endswith("minmaxlab verify"))
    assert main_job.startswith("python3 -m venv .venv && .venv/bin/pip install -q -e .")


def _python_blocks(slow):
    return [b for i, b in blocks({"python"}) if ("slow" in i.split()) <= slow]


def test_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns = {}
    for body in _python_blocks(slow=False):
        exec(compile(body, "README.md", "exec"), ns)  # noqa: S102 - the README's own code
    assert ns["shifted"].zeta2 == pytest.approx(1.0) and ns["trace"] is not None


@pytest.mark.slow
def test_slow_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns = {}
    for body in _python_blocks(slow=True):
        exec(compile(body, "README.md", "exec"), ns)  # noqa: S102
    # what the GAN block's labels say: the recipe works, gossiped-gradient moments on non-iid
    assert ns["quality"]["modes"] == 8 and ns["quality"]["high_quality"] >= 0.8
    local, gossiped = ns["by_moments"]["local"], ns["by_moments"]["gossiped_gradient"]
    assert local["modes"] <= 4 and local["high_quality"] < 0.05  # the labelled failure
    assert gossiped["modes"] >= 6 and gossiped["high_quality"] >= 0.5


def _command(line):
    line = line.split("   #")[0].strip()
    bindir = Path(sys.executable).parent
    words = [w.replace(".venv/bin/", f"{bindir}/") for w in shlex.split(line)]
    if Path(words[0]).name == "mpiexec" and not Path(words[0]).exists():
        found = shutil.which("mpiexec")
        if found is None:
            pytest.skip("no mpiexec (pip install -e '.[mpi]')")
        words[0] = found
    if Path(words[0]).name == "mpiexec" and os.geteuid() == 0 and "Open MPI" in subprocess.run(
            [words[0], "--version"], capture_output=True, text=True).stdout:
        words[1:1] = ["--allow-run-as-root", "--oversubscribe"]
    for k, w in enumerate(words):  # an installed console script, or this interpreter's module
        if Path(w).name == "minmaxlab" and not Path(w).exists():
            words[k:k + 1] = [sys.executable, "-m", "minmaxlab"]
    return words


@pytest.mark.slow
def test_console_blocks_run(tmp_path):
    """Every command of the console blocks, from a folder holding the README's files and the
    project's problems/ (the commands name problems/user_game.py)."""
    for info, body in blocks({"toml"}):
        name = info.split()[1]
        (tmp_path / name).write_text(body + "\n")
    shutil.copytree(ROOT / "problems", tmp_path / "problems")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _, body in blocks({"console"}):
        for line in body.splitlines():
            if not line.strip() or (" netstudy" in line and os.geteuid() != 0):
                continue  # netstudy needs root (tests/test_netstudy.py checks its refusal)
            res = subprocess.run(_command(line), cwd=tmp_path, env=env, capture_output=True,
                                 text=True, timeout=1200)
            # verify and netstudy exit 1 when a check fails (a finding, not a broken command)
            ok = res.returncode == 0 or (re.search(r" (verify|netstudy)\b", line) is not None
                                         and res.returncode == 1)
            assert ok, f"{line}\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
            assert "Traceback" not in res.stderr, line


@pytest.mark.slow
def test_cluster_block_runs(tmp_path):
    """The cluster recipe as written, in a copy of the project with a venv of its own: install
    without the mpi extra, build mpi4py from source against an MPI that is already there (here
    the MPICH of the test environment's wheel stands in for the cluster's module), run on 8 ranks.
    Before the last line, one run of the MPI backend in a single process fills numba's cache, so
    that 8 ranks on 2 cores do not all compile the kernels at once."""
    bindir = Path(sys.executable).parent
    if not (bindir / "mpicc").exists() and shutil.which("mpicc") is None:
        pytest.skip("no mpicc (pip install -e '.[mpi]' brings one)")
    project = tmp_path / "project"
    top = {".venv", ".git", "results", "report", "report_user", ".pytest_cache", ".hypothesis"}
    shutil.copytree(ROOT, project, ignore=lambda folder, names: [
        n for n in names if n == "__pycache__" or n.endswith(".egg-info")
        or (Path(folder) == ROOT and n in top)])
    subprocess.run([sys.executable, "-m", "venv", ".venv"], cwd=project, check=True)
    for info, body in blocks({"toml"}):
        (project / info.split()[1]).write_text(body + "\n")
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    cluster = next(b for i, b in blocks({"sh"}) if i == "sh cluster")
    lines = [ln for ln in cluster.splitlines() if ln.strip()]
    assert lines[-1].startswith("mpiexec ")
    warm = ".venv/bin/minmaxlab run config.toml --backend mpi --out results/warm.csv"
    for line in [*lines[:-1], warm, lines[-1]]:
        res = subprocess.run(["bash", "-c", line.split("   #")[0]], cwd=project, env=env,
                             capture_output=True, text=True, timeout=1500)
        assert res.returncode == 0, f"{line}\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
        assert "Traceback" not in res.stderr, line
    assert "MPICH" in subprocess.run(
        [".venv/bin/python", "-c", "from mpi4py import MPI; print(MPI.Get_library_version())"],
        cwd=project, env=env, capture_output=True, text=True).stdout
    assert "on 8 MPI ranks" in res.stdout
