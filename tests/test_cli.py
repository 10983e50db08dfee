"""The command line: output of the commands and clear errors (exit code 2, no traceback)."""

import subprocess
import sys

import pytest

from minmaxlab.cli import main


def test_problems_lists_instances_with_constants(capsys):
    assert main(["problems"]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines()[2:] if ln.strip()]
    assert len(lines) >= 12
    assert "forsaken" in out and "minty_bowl" in out and "holds" in out


@pytest.mark.slow  # certifies every instance by sampling (the constants themselves: test_problems)
def test_problems_certify(capsys):
    assert main(["problems", "--certify", "--pairs", "300"]) == 0
    out = capsys.readouterr().out
    assert "tightness" in out and "r_sampled" in out


def test_topology_prints_rho_and_gap(capsys):
    assert main(["topology", "torus", "--workers", "64"]) == 0
    out = capsys.readouterr().out.lower()
    assert "rho" in out and "gap" in out


def test_info(capsys):
    assert main(["info", "--workers", "8"]) == 0
    out = capsys.readouterr().out
    assert "numba" in out and "ring" in out and "forsaken" in out


def test_errors_are_clear(capsys):
    assert main(["topology", "moebius", "--workers", "8"]) == 2
    err = capsys.readouterr().err
    assert "error" in err and "moebius" in err and "Traceback" not in err
    assert main(["topology", "ring", "--workers", "0"]) == 2
    assert "workers" in capsys.readouterr().err
    assert main(["topology", "ring", "--workers", "8", "--param", "oops"]) == 2
    assert "key=value" in capsys.readouterr().err


def test_module_entry_point_runs():
    res = subprocess.run([sys.executable, "-m", "minmaxlab.cli", "topology", "ring", "-M", "5"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "rho" in res.stdout.lower()


@pytest.mark.parametrize("args, file_text, message", [
    (["bench", "--only", "W9"], None, "unknown workload(s) W9"),
    (["run", "{f}"], '[problem]\nname="minty_bowl"\nworkers=2\n[topology]\nmatrix=[[0.5,0.5],[1.0]]\n'
     '[algorithm]\nname="dposg"\n[run]\niterations=10\n', "matrix must be a square array"),
    (["run", "{f}"], '[problem]\nname="minty_bowl"\nworkers=1000000000000\n[topology]\nname="ring"\n'
     '[algorithm]\nname="dposg"\n[run]\niterations=10\n', "not enough memory"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, file_text, message):
    f = tmp_path / "run.toml"
    if file_text is not None:
        f.write_text(file_text)
    args = [a.replace("{f}", str(f)) for a in args] + (["--out", str(tmp_path / "x.csv")]
                                                       if args[0] == "run" else [])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


# Bad command lines: each ends in exit code 2 and one line on stderr, before any work is done
# ("{d}" a folder, "{file}" a plain file, "{run}" a valid run file).
CLI_CASES = [
    [], ["nonsense"], ["run"], ["run", "/nonexistent.toml"], ["run", "{d}"],
    ["run", "{run}", "--backend", "gpu"], ["run", "{run}", "--out", "{d}/x.txt"],
    ["run", "{run}", "--out", "{file}/x.csv"], ["run", "{run}", "--out", "{d}"],
    ["run", "{run}", "--out", "/proc/x.csv"], ["run", "{run}", "--out", ""],
    ["run", "{run}", "--out", "{d}/x.parquet.csv.tmp"], ["run", "{run}", "--bogus"],
    ["run", "{run}", "{run}"], ["topology"], ["topology", "rign"], ["topology", "ring"],
    ["topology", "ring", "-M", "x"], ["topology", "ring", "-M", "-4"],
    ["topology", "ring", "-M", "4", "--rule", "fancy"], ["topology", "ring", "-M", "4", "--seed", "-1"],
    ["topology", "ring", "-M", "4", "--seed", "1.5"], ["topology", "ring", "-M", "4", "--param", "p"],
    ["topology", "erdos_renyi", "-M", "4", "--param", "p=abc"],
    ["topology", "erdos_renyi", "-M", "4", "--param", "q=0.3"],
    ["topology", "ring", "-M", "10000000000000"], ["topology", "hypercube", "-M", "6"],
    ["problems", "--pairs", "0", "--certify"], ["problems", "--pairs", "x"], ["problems", "extra"],
    ["info", "--workers", "0"], ["info", "--workers", "abc"], ["verify", "--only", "nosuchstudy"],
    ["verify", "--only", ""], ["verify", "--only", ",,"],
    ["verify", "--only", "consensus_vs_rounds,nosuch"], ["verify", "--only", "consensus_vs_round"],
    ["verify", "--jobs", "0"], ["verify", "--jobs", "-2"], ["verify", "--jobs", "x"],
    ["verify", "--problem", "nosuch.py:f"], ["verify", "--problem", "x"],
    ["verify", "--problem", "os:getcwd"], ["verify", "--out", "{file}"], ["verify", "--out", "/proc/sub"],
    ["study", "noise_floor_vs_batch_and_workers", "--out", "/proc/sub"], ["paper", "--out", "/proc/sub"],
    ["study"], ["study", "/nonexistent.toml"], ["study", "nosuchstudy"], ["study", "{d}"],
    ["study", "{run}"], ["study", "noise_floo", "--jobs", "0"],
    ["study", "noise_floor_vs_batch_and_workers", "--out", "{file}"],
    ["study", "noise_floor_vs_batch_and_workers", "--problem", "nosuch.py:f"], ["study", "noise_floo"],
    ["paper", "--results", "/nonexistent"], ["paper", "--results", "{file}"], ["paper", "--results", "{d}"],
    ["paper", "--out", "{file}"], ["bench", "--only", "W9"], ["bench", "--only", ""],
    ["bench", "--only", "W1,,W2"], ["mpi-calibrate", "--workers", "0"], ["mpi-calibrate", "--dim", "-1"],
    ["mpi-calibrate", "--rounds", "a,b"], ["mpi-calibrate", "--seconds", "-1"],
    ["mpi-calibrate", "--iterations", "0"], ["mpi-calibrate", "--rounds", "-1"],
]

@pytest.mark.parametrize("args", CLI_CASES, ids=lambda a: " ".join(a) or "(none)")
def test_bad_command_line_is_one_line_and_exit_2(tmp_path, capsys, args):
    run = tmp_path / "good.toml"
    run.write_text('[problem]\nname="minty_bowl"\nworkers=4\n[topology]\nname="ring"\n'
                   '[algorithm]\nname="dposg"\neta=0.05\n[run]\niterations=20\n')
    (tmp_path / "afile").write_text("x")
    subs = {"{d}": str(tmp_path), "{file}": str(tmp_path / "afile"), "{run}": str(run)}
    for key, value in subs.items():
        args = [a.replace(key, value) for a in args]
    code = main(args)
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2, captured.out[-300:]
    assert len(err.splitlines()) == 1 and "error" in err and "Traceback" not in err
