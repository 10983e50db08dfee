"""The MPI backend against the simulator, launched with mpiexec (skipped without mpi4py/mpiexec).

Every case of tests/mpi_cases.py runs under ``mpiexec -n 2`` and ``mpiexec -n 4`` (one launch each,
8 workers: blocks of 4 and 2 workers) and in this process with the simulator; the final states and
the metric columns must agree to 1e-12 relative, and bit for bit where the case says so. Then the
command line: a bad rank count, a failing rank, and ``minmaxlab run --backend mpi``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import minmaxlab as mml
from minmaxlab.simulate import record_points

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from mpi_cases import build, cases  # noqa: E402

RTOL = 1e-12
TIMING_COLUMNS = ("compute_s_per_iter", "comm_s_per_iter")


def _find_mpiexec() -> list[str] | None:
    exe = Path(sys.executable).with_name("mpiexec")
    path = str(exe) if exe.exists() else shutil.which("mpiexec")
    if path is None:
        return None
    try:
        version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    cmd = [path]
    if "Open MPI" in version.stdout + version.stderr or "OpenRTE" in version.stdout:
        cmd.append("--oversubscribe")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-run-as-root")
    return cmd


def _env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("MINMAXLAB_MPI_FAIL_AT", None)
    env.update(extra)
    return env


def _launch(mpiexec, n: int, args: list[str], cwd, timeout: float, **env):
    """Run ``mpiexec -n n python args...``; kill the whole process group if it outlives the timeout."""
    cmd = [*mpiexec, "-n", str(n), sys.executable, *args]
    proc = subprocess.Popen(cmd, cwd=cwd, env=_env(**env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    start = time.perf_counter()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} did not finish within {timeout} s (hang?)\n{out}\n{err}")
    return proc.returncode, out, err, time.perf_counter() - start


@pytest.fixture(scope="module")
def mpiexec(tmp_path_factory):
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed (pip install -e '.[mpi]')")
    cmd = _find_mpiexec()
    if cmd is None:
        pytest.skip("no mpiexec next to the Python executable or on PATH (pip install mpich)")
    code = "from mpi4py import MPI; print('<size %d>' % MPI.COMM_WORLD.Get_size())"
    rc, out, err, _ = _launch(cmd, 2, ["-c", code], tmp_path_factory.mktemp("mpi"), 120)
    if rc != 0 or out.count("<size 2>") != 2:
        pytest.skip(f"mpiexec does not start a 2-rank job of mpi4py's MPI: {out} {err}")
    return cmd


@pytest.fixture(scope="module")
def cases_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("mpi") / "cases.json"
    path.write_text(json.dumps(cases()))
    return path


def _assert_close(got, want, what, exact):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert np.array_equal(np.isnan(got), np.isnan(want)), f"{what}: NaN positions differ"
    ok = ~np.isnan(want)
    scale = np.maximum(np.abs(want[ok]), np.finfo(float).tiny)
    rel = np.max(np.abs(got[ok] - want[ok]) / scale, initial=0.0)
    assert rel <= RTOL, f"{what}: relative difference {rel:.2e}"
    if exact:
        assert np.array_equal(got, want, equal_nan=True), f"{what}: not bit-identical ({rel:.1e})"


# 4 ranks (2 per core here) is the slow half: the fast loop keeps 2
@pytest.mark.parametrize("ranks", [2, pytest.param(4, marks=pytest.mark.slow)])
def test_mpi_backend_matches_the_simulator(mpiexec, cases_file, tmp_path, ranks):
    out = tmp_path / "results.npz"
    rc, stdout, stderr, _ = _launch(mpiexec, ranks, [str(HERE / "mpi_driver.py"), str(cases_file),
                                                     str(out)], tmp_path, timeout=600)
    assert rc == 0, stderr[-3000:]
    res = np.load(out)
    assert int(res["ranks"][0]) == ranks
    all_cases = json.loads(cases_file.read_text())
    for i, case in enumerate(all_cases):
        prob, topo, alg, kwargs = build(case)
        ref = mml.run(prob, topo, alg, **kwargs)
        what = f"case {i} ({prob.name}, {topo.name}, {alg.label}, {kwargs.get('every_iteration')})"
        ok, done, diverged_at = res[f"{i}/status"]
        assert bool(ok) == (ref.status == "ok"), what
        cols = {k[len(f"{i}/col/"):]: res[k] for k in res.files if k.startswith(f"{i}/col/")}
        assert set(cols) == set(ref.columns) | set(TIMING_COLUMNS), what
        if ref.status == "diverged" and not kwargs["every_iteration"]:
            # checked at records only: stopped at the first record at or after the simulator,
            # with the simulator's rows before that
            rec = record_points(kwargs["iterations"], kwargs["record"])
            assert not ok and diverged_at >= ref.diverged_at and diverged_at in rec, what
            assert cols["iteration"][-1] == diverged_at, what
            before = ref.columns["iteration"] < ref.diverged_at
            for name, want in ref.columns.items():
                _assert_close(cols[name][: before.sum()], want[before], f"{what} {name}", True)
            continue
        assert done == ref.iterations_done and diverged_at == (ref.diverged_at or -1), what
        exact = case["exact"]
        _assert_close(res[f"{i}/final_x"], ref.final_x, f"{what} final_x", exact)
        _assert_close(res[f"{i}/final_z"], ref.final_z, f"{what} final_z", exact)
        for name, want in ref.columns.items():
            running = name.startswith(("avg_", "min_"))
            # with every_iteration, the running statistics add per-rank partial sums (rounding)
            col_exact = exact and not (kwargs["every_iteration"] and running)
            _assert_close(cols[name], want, f"{what} column {name}", col_exact)
        timing = np.column_stack([cols[c] for c in TIMING_COLUMNS])
        assert np.all(timing[1:] >= 0) and np.isfinite(timing[-1]).all(), what


RUN_FILE = """
[problem]
name = "minty_bowl_hetero"
workers = 8
noise = {{ sigma = 0.2, batch = 2 }}

[topology]
name = "ring"

[algorithm]
name = "dposg"
eta = 0.05
rounds = 2

[run]
iterations = {iterations}
seed = 3
every_iteration = false
"""


def _run_file(tmp_path, iterations=300) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(RUN_FILE.format(iterations=iterations))
    return path


def test_cli_run_with_mpi_backend_writes_the_simulators_table(mpiexec, tmp_path):
    from minmaxlab.cli import main

    toml = _run_file(tmp_path)
    assert main(["run", str(toml), "--out", str(tmp_path / "sim.csv")]) == 0
    rc, out, err, _ = _launch(mpiexec, 4, ["-m", "minmaxlab.cli", "run", str(toml), "--backend", "mpi",
                                           "--out", str(tmp_path / "mpi.csv")], tmp_path, timeout=300)
    assert rc == 0, err[-3000:]
    assert out.count("wrote") == 1 and "on 4 MPI ranks" in out  # rank 0 alone reports
    sim = pd.read_csv(tmp_path / "sim.csv")
    par = pd.read_csv(tmp_path / "mpi.csv")
    assert list(par.columns) == [*sim.columns[:-1], *TIMING_COLUMNS, "status"]
    pd.testing.assert_frame_equal(par[sim.columns], sim, check_exact=True)
    meta = json.loads((tmp_path / "mpi.csv.json").read_text())
    assert meta["backend"] == "mpi" and meta["ranks"] == 4 and meta["workers_per_rank"] == 2
    assert meta["timing"]["comm_s_per_iter"] > 0 and len(meta["timing"]["compute_s"]) == 4
    assert meta["seed"] == 3 and meta["iterations"] == 300 and "git" in json.dumps(meta).lower()


def test_bad_rank_count_is_a_clear_error_on_every_rank(mpiexec, tmp_path):
    toml = _run_file(tmp_path)
    rc, out, err, secs = _launch(mpiexec, 3, ["-m", "minmaxlab.cli", "run", str(toml), "--backend",
                                              "mpi", "--out", str(tmp_path / "x.csv")], tmp_path,
                                 timeout=120)
    assert rc != 0
    assert err.count("8 workers cannot be split over 3 MPI ranks") == 3, err
    assert "Traceback" not in err and not (tmp_path / "x.csv").exists()


def test_a_failing_rank_stops_the_job_with_its_rank_and_error(mpiexec, tmp_path):
    toml = _run_file(tmp_path, iterations=100_000)  # minutes, were the job not stopped
    rc, out, err, secs = _launch(mpiexec, 4, ["-m", "minmaxlab.cli", "run", str(toml), "--backend",
                                              "mpi", "--out", str(tmp_path / "x.csv")], tmp_path,
                                 timeout=120, MINMAXLAB_MPI_FAIL_AT="2:5")
    assert rc != 0
    assert "minmaxlab: rank 2: InjectedFailure" in err and "iteration 5" in err, err
    assert not (tmp_path / "x.csv").exists()


def test_bad_failure_spec_and_backend_are_clear_errors(monkeypatch):
    from minmaxlab.errors import MinmaxlabError
    from minmaxlab.mpi import _fail_at, check_ranks

    monkeypatch.setenv("MINMAXLAB_MPI_FAIL_AT", "one:2")
    with pytest.raises(MinmaxlabError, match="rank:iteration"):
        _fail_at(0)
    monkeypatch.setenv("MINMAXLAB_MPI_FAIL_AT", "1:7")
    assert _fail_at(1) == 7 and _fail_at(0) is None
    with pytest.raises(MinmaxlabError, match="8 workers cannot be split over 3 MPI ranks"):
        check_ranks(8, 3)
    with pytest.raises(MinmaxlabError, match="4 workers cannot be split over 8"):
        check_ranks(4, 8)
    assert check_ranks(8, 4) == 2
    prob = mml.problem("forsaken", workers=2)
    with pytest.raises(MinmaxlabError, match="backend"):
        mml.run(prob, mml.topology("ring", 2), mml.DPOSG(eta=0.1), 5, backend="gpu")


ALGORITHMS = [mml.DPOSG(eta=0.05, rounds=2), mml.DPOSG(eta=0.05, rounds=2, variant="single_exchange"),
              mml.CPOSG(eta=0.05), mml.DSGDA(eta=0.05, rounds=2), mml.DEG(eta=0.05, rounds=2),
              mml.DPOAdam(eta=0.01, rounds=2), mml.CPOAdam(eta=0.01), mml.GTDA(eta=0.05, rounds=2),
              mml.DPOSGGT(eta=0.05, rounds=2), mml.DEGMC(eta=0.05, rounds=3),
              mml.DPOSG(eta=0.05, rounds=3, gossip="chebyshev"), mml.LocalSGDA(eta=0.05, local_steps=3),
              mml.LocalOSGDA(eta=0.05, local_steps=4), mml.DMHSGD(eta=0.05, beta=0.3),
              mml.DMHSGD(eta=0.05, beta=0.3, same_sample=False),
              mml.DPOSG(eta=0.05, rounds=2, compression="top_k", keep=0.3, consensus_step=0.5),
              mml.DPOSG(eta=0.05, rounds=2, compression="quantize", levels=2, consensus_step=0.5)]


@pytest.mark.parametrize("alg", ALGORITHMS, ids=lambda a: a.label)
def test_plans_driven_from_python_reproduce_the_simulator(alg):
    """The MPI backend's way to run an algorithm (its plan through local_ops, communication in
    between) on one block of all workers, without MPI: bit-identical to simulate."""
    from minmaxlab.engine import driver, gossip, plans
    from minmaxlab.runsetup import algorithm_streams, prepare

    prob = mml.problem("minty_bowl_hetero", workers=8).with_noise(sigma=0.2, batch=2)
    varying = alg.decentralized and getattr(alg, "gossip", "plain") == "plain"
    topo = mml.topology_module.TimeVarying.one_peer_exponential(8) if varying else \
        mml.topology("ring", 8)
    ref = mml.run(prob, topo, alg, iterations=25, seed=2)
    s = prepare(prob, topo, alg, 25, None, None)
    X, M, d = s.X.copy(), s.M, s.d
    Z, G, tmp, prev, Y = X.copy(), np.zeros((M, d)), np.zeros((M, d)), np.zeros((M, d)), np.zeros((M, d))
    fid, P, A, S = prob.kernel_data
    H2, H3, state = np.zeros((M, d)), np.zeros((M, d)), algorithm_streams(alg, 2, M)
    gossiped = {plans.OP_GOSSIP_Z: (Z, H2), plans.OP_GOSSIP_X: (X, H3), plans.OP_GOSSIP_Y: (Y, Y)}
    graph = (s.indptr, s.indices, s.weights, s.avg_degree, s.cheb_rho, s.comp)
    args = ((X, Z, G, Y, H2, H3, state),
            (s.eta, *s.adam, s.eta_scale), (fid, P, A, S), (s.noise_kind, s.noise_scale, s.batch, s.shifts),
            (s.proj_kind, s.proj_a, s.proj_b, prob.dim_u), np.zeros(d))
    done = 0
    for k in range(26):
        t = int(s.rounds[k - 1]) if k else 0
        ops = alg.kernel_plan()[0] if k else alg.kernel_plan()[1]
        p = 0
        while True:
            p = plans.local_ops(ops, p, k, *args)
            if ops[p] == plans.OP_END:
                break
            if ops[p] == plans.OP_AVERAGE_G:
                gossip.average_rows(G)
            elif ops[p] == plans.OP_AVERAGE_X:
                if t > 0:
                    gossip.average_rows(X)
            else:
                done += driver.gossip_phase(*gossiped[ops[p]], t, done, graph,
                                            (tmp, prev, np.zeros(2 * d)), state)
            p += 1
    assert np.array_equal(X, ref.final_x) and np.array_equal(Z, ref.final_z)


def test_plans_read_like_the_algorithms():
    from minmaxlab.engine import plans

    assert plans.plan(plans.ALG_DPOSG) == ("step_z", "gossip_z", "oracle_z", "step_x", "gossip_x")
    assert plans.plan(plans.ALG_DPOSG_SINGLE) == ("gossip_x", "step_z", "oracle_z", "step_x")
    assert plans.plan(plans.ALG_CPOSG) == ("step_z", "oracle_z", "average_g", "step_x")
    assert plans.plan(plans.ALG_CPOSG, init=True) == ("oracle_z", "average_g")
    assert plans.plan(plans.ALG_DEG) == ("oracle_x", "step_z", "gossip_z", "oracle_z", "step_x", "gossip_x")
    assert plans.plan(plans.ALG_DPOADAM) == ("oracle_x", "adam_x", "gossip_x", "copy_z")
    assert plans.plan(plans.ALG_DSGDA, init=True) == ()
    assert plans.plan(plans.ALG_DPOSG_GT) == ("step_z_y", "gossip_z", "track_out", "oracle_z",
                                              "track_in", "gossip_y", "step_x_y", "gossip_x")
    assert plans.plan(plans.ALG_GT_DA) == ("step_x_y", "gossip_x", "track_out", "oracle_x",
                                           "track_in", "gossip_y", "copy_z")
    assert plans.plan(plans.ALG_GT_DA, init=True) == ("oracle_x", "track_in")
    assert plans.state_rows(plans.ALG_DPOSG_GT) == 1 and plans.state_rows(plans.ALG_DPOADAM) == 3
    assert plans.state_rows(plans.ALG_DPOSG) == 0


def test_a_rank_that_fails_before_the_run_stops_the_job(mpiexec, tmp_path):
    """A problem lookup that fails on one rank only (before any collective of the run): the
    other ranks must not wait forever in the run's first exchange."""
    game = tmp_path / "flaky_game.py"
    game.write_text(
        "from mpi4py import MPI\n"
        "import minmaxlab as mml\n\n"
        "def make(workers, seed):\n"
        "    if MPI.COMM_WORLD.Get_rank() == 2:\n"
        "        raise RuntimeError('this rank cannot load the game')\n"
        "    return mml.problem('minty_bowl', workers=workers, seed=seed)\n")
    toml = _run_file(tmp_path, iterations=2_000_000)
    text = toml.read_text()
    start = text.index("[problem]")
    end = text.index("[", start + 1)
    toml.write_text(text[:start] + f'[problem]\nname = "{game}:make"\nworkers = 8\n\n' + text[end:])
    rc, out, err, secs = _launch(mpiexec, 4, ["-m", "minmaxlab.cli", "run", str(toml), "--backend",
                                              "mpi", "--out", str(tmp_path / "x.csv")], tmp_path,
                                 timeout=120)
    assert rc != 0
    assert "rank 2" in err and "this rank cannot load the game" in err, err
    assert secs < 60 and not (tmp_path / "x.csv").exists()


def _users_method_on_mpi(mpiexec, tmp_path, source: str, name: str, iterations: int) -> dict:
    """Run the method of file ``source`` (class ``name``), named in a run file, on the simulator
    and under 2 MPI ranks (each imports it by that name); the tables must be equal bit for bit.
    Returns the MPI run's saved algorithm spec."""
    from minmaxlab.cli import main

    (tmp_path / "method.py").write_text(source)
    toml = _run_file(tmp_path, iterations=iterations)
    toml.write_text(toml.read_text().replace('name = "dposg"', f'name = "{tmp_path}/method.py:{name}"'))
    assert main(["run", str(toml), "--out", str(tmp_path / "sim.csv")]) == 0
    rc, out, err, _ = _launch(mpiexec, 2, ["-m", "minmaxlab.cli", "run", str(toml), "--backend", "mpi",
                                           "--out", str(tmp_path / "mpi.csv")], tmp_path, timeout=600)
    assert rc == 0, err[-3000:]
    sim = pd.read_csv(tmp_path / "sim.csv")
    par = pd.read_csv(tmp_path / "mpi.csv")
    pd.testing.assert_frame_equal(par[sim.columns], sim, check_exact=True)
    return json.loads((tmp_path / "mpi.csv.json").read_text())["algorithm"]


def test_a_users_method_on_mpi_equals_the_simulator(mpiexec, tmp_path):
    """An algorithm class from a file (README, "Your own method"), named in a run file."""
    from test_user_method import METHOD  # tests/ is on sys.path (above)

    spec = _users_method_on_mpi(mpiexec, tmp_path, METHOD, "LocalEG", 300)
    assert spec["algorithm"] == "local_eg" and spec["defined_in"].endswith("method.py:LocalEG")


@pytest.mark.slow  # every rank compiles the engine's chain with the method's kernel
def test_a_methods_own_kernel_on_mpi_equals_the_simulator(mpiexec, tmp_path):
    from test_user_method import KERNEL_METHOD  # tests/ is on sys.path (above)

    spec = _users_method_on_mpi(mpiexec, tmp_path, KERNEL_METHOD, "MomentumGDA", 100)
    assert spec["algorithm"] == "momentum_gda"
