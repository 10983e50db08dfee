"""Misuse of the public Python API: every case must end in one MinmaxlabError with a one-line
message (never a raw TypeError/AttributeError/MemoryError from deep inside, never a silent
acceptance of a value that cannot be honoured, never a crash of the interpreter)."""
import tempfile
from pathlib import Path

import numpy as np
import pytest

import minmaxlab as mml


def P(**kw):
    return mml.problem("minty_bowl", **kw)

def T(name="ring", M=4, **kw):
    return mml.topology(name, M, **kw)

def A(**kw):
    return mml.algorithm("dposg", **{"eta": 0.05, "rounds": 1, **kw})

def R(**kw):
    args = dict(problem=P(workers=4), topology=T(), algorithm=A(), iterations=10)
    args.update(kw)
    return mml.run(**args)

def U(op=None, **kw):
    args = {"dim": 2, "workers": 2, "L": 1.0, **kw}
    return mml.Problem.from_operator(_op if op is None else op, **args)


GAME = str(Path(__file__).resolve().parents[1] / "problems" / "user_game.py")


def _op(i, z, out):
    for k in range(z.shape[0]):
        out[k] = z[k]

CASES = {
    # problem()
    "problem unknown name": lambda: mml.problem("minty_bowll"),
    "problem name not str": lambda: mml.problem(3),
    "problem name None": lambda: mml.problem(None),
    "problem workers 0": lambda: P(workers=0),
    "problem workers -3": lambda: P(workers=-3),
    "problem workers 2.5": lambda: P(workers=2.5),
    "problem workers str": lambda: P(workers="4"),
    "problem workers True": lambda: P(workers=True),
    "problem workers huge": lambda: P(workers=10**13),
    "problem unknown param": lambda: mml.problem("minty_bowl", workers=2, dimm=3),
    "problem dim 0": lambda: mml.problem("minty_bowl", workers=2, dim=0),
    "problem dim float": lambda: mml.problem("minty_bowl", workers=2, dim=2.5),
    "problem dim nan": lambda: mml.problem("minty_bowl", workers=2, dim=float("nan")),
    "problem dim huge": lambda: mml.problem("minty_bowl", workers=2, dim=10**12),
    "family bilinear dim odd": lambda: mml.problem("bilinear", workers=2, dim=3),
    "family quadratic condition neg": lambda: mml.problem("quadratic", workers=2, condition=-1.0),
    "family quadratic scale nan": lambda: mml.problem("quadratic", workers=2, scale=float("nan")),
    "family quadratic scale inf": lambda: mml.problem("quadratic", workers=2, scale=float("inf")),
    "family dim_u too big": lambda: mml.problem("bilinear", workers=2, dim=4, dim_u=4),
    "family shift str": lambda: mml.problem("minty_bowl", workers=2, shift="big"),
    "family shift neg": lambda: mml.problem("minty_bowl", workers=2, shift=-1.0),
    "gan family bad width": lambda: mml.problem("gan", workers=2, width=0),
    "robust_regression bad data": lambda: mml.problem("robust_regression", workers=2, data="nowhere.csv"),
    "dro_logistic bad data": lambda: mml.problem("dro_logistic", workers=2, data="nowhere.csv"),
    "fair labels": lambda: mml.problem("fair_classification", workers=2, groups=0),
    # with_noise
    "noise sigma neg": lambda: P(workers=2).with_noise(sigma=-1.0),
    "noise sigma nan": lambda: P(workers=2).with_noise(sigma=float("nan")),
    "noise sigma str": lambda: P(workers=2).with_noise(sigma="big"),
    "noise batch 0": lambda: P(workers=2).with_noise(sigma=1.0, batch=0),
    "noise batch float": lambda: P(workers=2).with_noise(sigma=1.0, batch=2.5),
    "noise kind unknown": lambda: P(workers=2).with_noise(sigma=1.0, kind="pink"),
    "noise finite_sum samples 0": lambda: P(workers=2).with_noise(sigma=1.0, kind="finite_sum", samples=0),
    "noise seed neg": lambda: P(workers=2).with_noise(sigma=1.0, seed=-1),
    "Noise class kind": lambda: mml.Noise(kind="pink"),
    "Noise class sigma": lambda: mml.Noise(kind="gaussian", sigma=-2.0),
    # constraints
    "Ball radius 0": lambda: mml.Ball(0.0),
    "Ball radius nan": lambda: mml.Ball(float("nan")),
    "Ball radius str": lambda: mml.Ball("one"),
    "Box lo>hi": lambda: mml.Box(1.0, -1.0),
    "Box nan": lambda: mml.Box(float("nan"), 1.0),
    "Simplex total 0": lambda: mml.Simplex(0.0),
    "L1 lam neg": lambda: mml.L1(-0.1),
    "with_constraints not a constraint": lambda: P(workers=2).with_constraints(u=3.0),
    # topology()
    "topology unknown": lambda: mml.topology("rign", 4),
    "topology name int": lambda: mml.topology(3, 4),
    "topology workers 0": lambda: mml.topology("ring", 0),
    "topology workers float": lambda: mml.topology("ring", 4.5),
    "topology workers str": lambda: mml.topology("ring", "4"),
    "topology hypercube not pow2": lambda: mml.topology("hypercube", 6),
    "topology unknown rule": lambda: mml.topology("ring", 4, rule="fancy"),
    "topology unknown param": lambda: mml.topology("ring", 4, degre=3),
    "topology seed neg": lambda: mml.topology("erdos_renyi", 8, seed=-1),
    "topology er p 0 disconnected": lambda: mml.topology("erdos_renyi", 8, p=0.0),
    "topology er p 2": lambda: mml.topology("erdos_renyi", 8, p=2.0),
    "from_matrix ragged": lambda: mml.Topology.from_matrix([[0.5, 0.5], [1.0]]),
    "from_matrix not square": lambda: mml.Topology.from_matrix(np.ones((2, 3)) / 3),
    "from_matrix not stochastic": lambda: mml.Topology.from_matrix(np.ones((3, 3))),
    "from_matrix nan": lambda: mml.Topology.from_matrix(np.full((2, 2), np.nan)),
    "from_matrix strings": lambda: mml.Topology.from_matrix([["a", "b"], ["c", "d"]]),
    "from_matrix empty": lambda: mml.Topology.from_matrix(np.zeros((0, 0))),
    "from_matrix 1d": lambda: mml.Topology.from_matrix([1.0]),
    "from_matrix negative": lambda: mml.Topology.from_matrix([[1.5, -0.5], [-0.5, 1.5]]),
    "from_matrix asymmetric": lambda: mml.Topology.from_matrix([[0.5, 0.5], [0.2, 0.8]]),
    "from_edgelist missing": lambda: mml.Topology.from_edgelist("/nonexistent/edges.txt"),
    "from_graph not graph": lambda: mml.Topology.from_graph("ring"),
    "TimeVarying empty": lambda: mml.TimeVarying([]),
    "TimeVarying mixed sizes": lambda: mml.TimeVarying([T(M=4), T(M=5)]),
    "TimeVarying not topologies": lambda: mml.TimeVarying([1, 2]),
    "rounds_for eps 0": lambda: T().rounds_for(0.0),
    "rounds_for eps 2": lambda: T().rounds_for(2.0),
    "rho_of_power neg": lambda: T().rho_of_power(-1),
    # algorithm()
    "algorithm unknown": lambda: mml.algorithm("dposgg"),
    "algorithm name int": lambda: mml.algorithm(5),
    "algorithm eta 0": lambda: A(eta=0.0),
    "algorithm eta neg": lambda: A(eta=-0.1),
    "algorithm eta nan": lambda: A(eta=float("nan")),
    "algorithm eta inf": lambda: A(eta=float("inf")),
    "algorithm eta str": lambda: A(eta="0.1"),
    "algorithm rounds neg": lambda: A(rounds=-1),
    "algorithm rounds float": lambda: A(rounds=1.5),
    "algorithm rounds str": lambda: A(rounds="1"),
    "algorithm unknown param": lambda: A(round=1),
    "algorithm variant unknown": lambda: A(variant="triple"),
    "algorithm schedule unknown": lambda: A(schedule="sometimes"),
    "adam beta 1": lambda: mml.algorithm("dpoadam", eta=0.01, beta1=1.0),
    "adam beta neg": lambda: mml.algorithm("dpoadam", eta=0.01, beta2=-0.1),
    "adam eps 0": lambda: mml.algorithm("dpoadam", eta=0.01, eps=0.0),
    # run()
    "run problem not problem": lambda: R(problem="minty_bowl"),
    "run topology not topology": lambda: R(topology="ring"),
    "run algorithm not algorithm": lambda: R(algorithm="dposg"),
    "run workers mismatch": lambda: R(topology=T(M=5)),
    "run iterations neg": lambda: R(iterations=-1),
    "run iterations float": lambda: R(iterations=2.5),
    "run iterations str": lambda: R(iterations="10"),
    "run iterations huge": lambda: R(iterations=10**15, record=2),
    "run seed neg": lambda: R(seed=-1),
    "run seed float": lambda: R(seed=1.7),
    "run seed huge": lambda: R(seed=2**70),
    "run z0 wrong shape": lambda: R(z0=np.zeros(3)),
    "run z0 nan": lambda: R(z0=np.full(2, np.nan)),
    "run z0 strings": lambda: R(z0=["a", "b"]),
    "run z0 per worker wrong": lambda: R(z0=np.zeros((3, 2))),
    "run record 0": lambda: R(record=0),
    "run record float": lambda: R(record=2.5),
    "run record str": lambda: R(record="some"),
    "run every_iteration str": lambda: R(every_iteration="false"),
    "run blowup 0": lambda: R(blowup=0.0),
    "run blowup nan": lambda: R(blowup=float("nan")),
    "run record_iterates str": lambda: R(record_iterates="yes"),
    "run backend unknown": lambda: R(backend="gpu"),
    "run record 0 (cposg)": lambda: R(algorithm=mml.algorithm("cposg", eta=0.05), record=0),
    "run dpoadam eta negative": lambda: R(algorithm=mml.algorithm("dpoadam", eta=-1)),
    # certify
    "certify pairs 0": lambda: mml.certify(P(workers=2), pairs=0),
    "certify not problem": lambda: mml.certify("minty_bowl"),
    "certify points float": lambda: mml.certify(P(workers=2), points=2.5),
    # from_operator
    "from_operator dim_u > dim": lambda: mml.Problem.from_operator(_op, dim=2, dim_u=5, workers=2, L=1.0),
    "from_operator dim_u neg": lambda: mml.Problem.from_operator(_op, dim=2, dim_u=-1, workers=2, L=1.0),
    "from_operator not callable": lambda: U(3),
    "from_operator L 0": lambda: mml.Problem.from_operator(_op, dim=2, workers=2, L=0.0),
    "from_operator L nan": lambda: mml.Problem.from_operator(_op, dim=2, workers=2, L=float("nan")),
    "from_operator solution shape": lambda: U(solution=np.zeros(3)),
    "from_operator box reversed": lambda: U(box=(1.0, -1.0)),
    "from_operator mvi unknown": lambda: U(mvi="maybe"),
    "from_operator oob write": lambda: U(_oob),
    "from_operator no write": lambda: U(_nowrite),
    "from_operator nan": lambda: U(_nan),
    "from_operator raises": lambda: U(_raises),
    "from_operator wrong arity": lambda: U(lambda z, out: None),
    "from_operator not numba-able": lambda: U(_dict_op),
    "from_operator worker 3 oob": lambda: mml.Problem.from_operator(_oob_w3, dim=2, workers=4, L=1.0),
    "from_operator mean op not callable": lambda: U(mean_operator=3),
    # accuracy
    "accuracy on non-data problem": lambda: mml.accuracy(P(workers=2), np.zeros(2)),
    # Trace misuse
    "F wrong shape": lambda: P(workers=2).F(np.zeros(5)),
    "F_i worker oob": lambda: P(workers=2).F_i(7, np.zeros(2)),
    "F_i worker neg": lambda: P(workers=2).F_i(-1, np.zeros(2)),
    "split wrong shape": lambda: P(workers=2).split(np.zeros(5)),
    "F_i worker str": lambda: P(workers=2).F_i("0", np.zeros(20)),
    "F strings": lambda: P(workers=2).F(["a"] * 20),
    "F_i_all rows": lambda: P(workers=2).F_i_all(np.zeros((3, 20))),
    "topology name list": lambda: mml.topology(["ring"], 4),
    "algorithm name list": lambda: mml.algorithm(["dposg"]),
    "topology rule list": lambda: mml.topology("ring", 4, rule=["metropolis"]),
    "run backend list": lambda: R(backend=["mpi"]),
    "noise kind list": lambda: P(workers=2).with_noise(sigma=1.0, kind=["gaussian"]),
    "Noise batch 0": lambda: mml.Noise(kind="gaussian", sigma=1.0, batch=0),
    "Noise finite_sum no shifts": lambda: mml.Noise(kind="finite_sum", sigma=1.0, samples=4),
    "from_operator box one number": lambda: U(box=1.0),
    "from_operator box nan": lambda: U(box=(np.nan, 1.0)),
    "run record_iterates int": lambda: R(record_iterates=1),
    "run mpi backend seed float": lambda: R(backend="mpi", seed=1.7),
    "run mpi backend record_iterates str": lambda: R(backend="mpi", record_iterates="no"),
    "run mpi backend z0 wrong": lambda: R(backend="mpi", z0=np.zeros(3)),
    "run blowup str": lambda: R(blowup="big"),
    "run blowup inf": lambda: R(blowup=float("inf")),
    "run seed bool": lambda: R(seed=True),
    "run z0 list of str rows": lambda: R(z0=[["a"] * 20] * 4),
    "run z0 inf": lambda: R(z0=np.full(20, np.inf)),
    "run topology TimeVarying wrong M": lambda: R(topology=mml.TimeVarying([T(M=5), T(M=5)])),
    "run eps schedule on TimeVarying": lambda: R(topology=mml.TimeVarying([T(), T()]),
                                                 algorithm=A(schedule="eps", eps=0.5)),
    "run osg on many workers": lambda: R(algorithm=mml.algorithm("osg", eta=0.05)),
    "run record list out of range": lambda: R(record=[0, 5, 50]),
    "run record list neg": lambda: R(record=[-1, 5]),
    "run record list floats": lambda: R(record=[0.5, 5]),
    "run record linear:1": lambda: R(record="linear:1"),
    "run record empty list": lambda: R(record=[]),
    "problem file missing toml": lambda: mml.problem("/nonexistent/inst.toml"),
    "problem user file missing": lambda: mml.problem("/nonexistent/game.py:make"),
    "problem user func missing": lambda: mml.problem(GAME + ":nope"),
    "problem user extra param": lambda: mml.problem(GAME + ":make", workers=2, dim=3),
    "homogeneous of gan": lambda: mml.problem("gan", workers=2).homogeneous(),
    "minty_ratio without solution": lambda: U().minty_ratio(np.zeros(2)),
    "rounds_for eps str": lambda: T().rounds_for("0.1"),
    "from_edgelist bad content": lambda: mml.Topology.from_edgelist(_bad_edges()),
    "from_edgelist self loops only": lambda: mml.Topology.from_edgelist(_self_edges()),
    "from_matrix disconnected": lambda: mml.Topology.from_matrix(np.eye(3)),
}

def _oob(i, z, out):
    out[5] = 1.0
    out[0] = z[0]
    out[1] = z[1]

def _nowrite(i, z, out):
    pass

def _nan(i, z, out):
    out[0] = np.nan
    out[1] = 0.0

def _raises(i, z, out):
    raise RuntimeError("boom")

def _plain(z):
    return z[0]

def _dict_op(i, z, out):
    out[0] = _plain(z)
    out[1] = z[1]

def _oob_w3(i, z, out):
    out[0] = z[0]
    out[1] = z[1]
    if i == 3:
        out[2] = 0.0

def _bad_edges():
    f = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
    f.write("0 1\nzero two\n")
    f.close()
    return f.name

def _self_edges():
    f = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
    f.write("0 0\n1 1\n")
    f.close()
    return f.name


@pytest.mark.parametrize("case", sorted(CASES))
def test_public_api_refuses_bad_input_in_one_line(case):
    with pytest.raises(mml.MinmaxlabError) as exc:
        CASES[case]()
    message = str(exc.value)
    assert message and "\n" not in message and "Traceback" not in message


def test_the_sweep_is_broad():
    # a count the closing note of the reliability work quotes: keep the sweep from shrinking
    assert len(CASES) >= 170
