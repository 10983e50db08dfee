"""An algorithm written outside the package (README, "Your own method"): its plan from the
engine's phases, run in the simulator against a numpy reference, in a study by FILE.py:CLASS,
and refused clearly when it is malformed. Its MPI run is in tests/test_mpi.py."""

import textwrap

import numpy as np
import pytest

import minmaxlab as mml
from minmaxlab.errors import AlgorithmError

METHOD = textwrap.dedent('''
    from dataclasses import dataclass
    from typing import ClassVar

    import minmaxlab as mml


    @dataclass(frozen=True)
    class LocalEG(mml.Gossiping):
        """Extragradient whose extrapolation stays local: Z = X - eta g(X); X = W^t (X - eta g(Z))."""

        key: ClassVar[str] = "local_eg"
        phases: ClassVar[tuple] = ("oracle_x", "step_z", "oracle_z", "step_x", "gossip_x")


    class NotAnAlgorithm:
        pass
''')


@pytest.fixture
def method_file(tmp_path):
    path = tmp_path / "my_method.py"
    path.write_text(METHOD)
    return path


def test_a_users_method_runs_like_its_numpy_reference(method_file):
    alg = mml.algorithm(f"{method_file}:LocalEG", eta=0.07, rounds=2)
    prob = mml.problem("minty_bowl_hetero", workers=5)
    topo = mml.topology("ring", 5)
    z0 = np.linspace(-0.5, 0.5, prob.dim)
    tr = mml.run(prob, topo, alg, iterations=3, z0=z0, record="all")
    W2 = np.linalg.matrix_power(topo.W, 2)

    def F(Y):
        return np.array([prob.F_i(i, Y[i]) for i in range(5)])

    X = np.tile(z0, (5, 1))
    for _ in range(3):
        Z = X - 0.07 * F(X)
        X = W2 @ (X - 0.07 * F(Z))
    assert np.allclose(tr.final_x, X, rtol=1e-10, atol=1e-12)
    df = tr.to_frame()
    # one gossip phase of 2 rounds and two oracle calls per iteration, counted from its phases
    assert df["gossip_rounds"].iloc[-1] == 6 and df["oracle_calls"].iloc[-1] == 6
    assert alg.label == "local_eg[eta=0.07,rounds=2]"


def test_a_users_method_in_a_study(method_file, tmp_path):
    from minmaxlab.study import load_study, run_study

    study = tmp_path / "mine.toml"
    study.write_text(f'''
name = "mine"
title = "C10: a user's method reaches the level"
[grid]
problems = [{{ name = "minty_bowl_hetero" }}]
workers = [4]
topologies = ["ring"]
algorithms = [{{ name = "{method_file}:LocalEG", eta = 0.05, rounds = 1 }}]
seeds = [0]
iterations = 300
record = 10
every_iteration = false
[[claims]]
claim = "C10"
analysis = "final_level"
threshold = 1e-12
[[controls]]
name = "few"
description = "three iterations"
grid = {{ iterations = 3 }}
''')
    res = run_study(load_study(study), out=tmp_path / "out", jobs=1, progress=False)
    checks = [v for v in res.verdicts if v.verdict != "reported"]
    assert [v.verdict for v in checks] == ["pass"] and checks[0].control_verdict == "fail"
    assert "local_eg" in checks[0].setting
    # editing the method is a new run: its file is part of the runs' identity
    again = run_study(load_study(study), out=tmp_path / "out", jobs=1, progress=False)
    assert again.computed == 0
    method_file.write_text(METHOD + "\n# edited\n")
    edited = run_study(load_study(study), out=tmp_path / "out", jobs=1, progress=False)
    assert edited.computed == 2


@pytest.mark.parametrize("body, match", [
    ("phases: ClassVar[tuple] = ('oracle_x', 'jump')", "unknown phase 'jump'; phases: step_z"),
    ("pass", "needs its phases"),
])
def test_a_malformed_method_is_one_clear_line(tmp_path, body, match):
    path = tmp_path / "bad.py"
    path.write_text(textwrap.dedent(f'''
        from dataclasses import dataclass
        from typing import ClassVar
        import minmaxlab as mml

        @dataclass(frozen=True)
        class Bad(mml.Algorithm):
            key: ClassVar[str] = "bad"
            {body}
    '''))
    with pytest.raises(AlgorithmError, match=match):
        mml.algorithm(f"{path}:Bad", eta=0.1)


def test_a_name_that_is_not_an_algorithm_class(method_file):
    with pytest.raises(AlgorithmError, match="must be a dataclass subclass"):
        mml.algorithm(f"{method_file}:NotAnAlgorithm")
    with pytest.raises(AlgorithmError, match="has no 'Missing'"):
        mml.algorithm(f"{method_file}:Missing")
    with pytest.raises(AlgorithmError, match="no file"):
        mml.algorithm("nowhere.py:LocalEG")


KERNEL_METHOD = textwrap.dedent('''
    from dataclasses import dataclass
    from typing import ClassVar

    from numba import njit

    import minmaxlab as mml


    @njit
    def heavy_ball(X, Z, G, S1, S2, S3, eta, k):
        for i in range(X.shape[0]):
            for c in range(X.shape[1]):
                S1[i, c] = 0.5 * S1[i, c] + G[i, c]
                X[i, c] -= eta[c] * S1[i, c]


    @dataclass(frozen=True)
    class MomentumGDA(mml.Gossiping):
        """V = 0.5 V + g(X); X = W^t (X - eta V); Z = X (its own kernel, the phase "user")."""

        key: ClassVar[str] = "momentum_gda"
        phases: ClassVar[tuple] = ("oracle_x", "user", "gossip_x", "copy_z")
        kernel: ClassVar = heavy_ball
''')


@pytest.mark.slow  # a method's own kernel compiles the engine's chain (about a minute, uncached)
def test_a_methods_own_kernel_runs_like_its_numpy_reference(tmp_path):
    path = tmp_path / "momentum.py"
    path.write_text(KERNEL_METHOD)
    alg = mml.algorithm(f"{path}:MomentumGDA", eta=0.05, rounds=2)
    prob = mml.problem("minty_bowl_hetero", workers=4)
    topo = mml.topology("ring", 4)
    z0 = np.linspace(-0.5, 0.5, prob.dim)
    tr = mml.run(prob, topo, alg, iterations=4, z0=z0, record="all")
    W2 = np.linalg.matrix_power(topo.W, 2)
    X, V = np.tile(z0, (4, 1)), np.zeros((4, prob.dim))
    for _ in range(4):
        V = 0.5 * V + np.array([prob.F_i(i, X[i]) for i in range(4)])
        X = W2 @ (X - 0.05 * V)
    assert np.allclose(tr.final_x, X, rtol=1e-10, atol=1e-12)
    assert mml.bytes_per_worker(prob, topo, alg)["state"] == 3 * 8 * prob.dim


def test_a_kernel_must_be_a_numba_function_and_a_phase(tmp_path):
    path = tmp_path / "bad_kernel.py"
    path.write_text(KERNEL_METHOD.replace("kernel: ClassVar = heavy_ball",
                                          "kernel: ClassVar = heavy_ball.py_func"))
    with pytest.raises(AlgorithmError, match="needs kernel = a numba.njit"):
        mml.algorithm(f"{path}:MomentumGDA", eta=0.05)
    other = tmp_path / "unused_kernel.py"  # a file is imported once per process: a new one
    other.write_text(KERNEL_METHOD.replace('"oracle_x", "user", "gossip_x"', '"oracle_x", "gossip_x"'))
    with pytest.raises(AlgorithmError, match="runs only as the phase 'user'"):
        mml.algorithm(f"{other}:MomentumGDA", eta=0.05)
