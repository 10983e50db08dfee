"""The package as users get it: a wheel built from this tree, installed apart from the source
checkout, finds its named instances and studies from any folder; --version, python -m minmaxlab,
one version source, the Python floor, and provenance without a foreign git revision."""

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import minmaxlab
from minmaxlab.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_version_and_python_floor_have_one_source(capsys):
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" in meta["dynamic"] and "version" not in meta
    assert meta["requires-python"] == ">=3.11"  # tomllib
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"minmaxlab {minmaxlab.__version__}"


def test_python_dash_m_runs_the_command():
    res = subprocess.run([sys.executable, "-m", "minmaxlab", "--version"], capture_output=True,
                         text=True, cwd=ROOT)
    assert res.returncode == 0 and res.stdout.startswith("minmaxlab ")


def _run(args, cwd, env):
    return subprocess.run([sys.executable, "-m", "minmaxlab", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_an_installed_wheel_finds_its_data_from_any_folder(tmp_path):
    dist, target, here = tmp_path / "dist", tmp_path / "site", tmp_path / "elsewhere"
    here.mkdir()
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q",
                            "-w", str(dist)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    wheel = next(dist.glob("minmaxlab-*.whl"))
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                           str(target), str(wheel)], capture_output=True, text=True, timeout=600)
    assert inst.returncode == 0, inst.stderr
    env = {**os.environ, "PYTHONPATH": str(target)}
    env.pop("MINMAXLAB_PROBLEMS", None)
    env.pop("MINMAXLAB_STUDIES", None)
    where = subprocess.run([sys.executable, "-c", "import minmaxlab, minmaxlab.meta as m; "
                            "print(minmaxlab.__file__); print(m.git_revision())"], cwd=here,
                           env=env, capture_output=True, text=True)
    file, revision = where.stdout.split()
    assert file.startswith(str(target)), "the test must run the installed copy, not the checkout"
    assert revision == "none"
    catalog = _run(["problems"], here, env)
    assert catalog.returncode == 0 and "minty_bowl_shifted" in catalog.stdout
    study = _run(["study", "limits", "--quick", "--jobs", "1", "--no-progress", "--out", "res"],
                 here, env)
    assert study.returncode == 0, study.stdout + study.stderr
    paper = _run(["paper", "--results", "res"], here, env)
    assert paper.returncode == 0, paper.stderr
    assert (here / "paper" / "figures" / "C7_limits.pdf").exists()
    assert not list(target.rglob("paper"))  # nothing written into the installed package
