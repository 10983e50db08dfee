"""Data-driven families: gradients, constants, default constraints, data loading and splits, the
gradient-mapping column, and runs through mml.run, `minmaxlab run` and a quick study."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import minmaxlab as mml
from minmaxlab.engine import metrics
from minmaxlab.errors import ProblemError
from minmaxlab.problems import datasets as D
from minmaxlab.problems.data import accuracy

SMALL = {
    "robust_regression": dict(samples=40, features=6, lam=0.7),
    "dro_logistic": dict(dataset="wine", groups="kmeans:3"),
    "fair_classification": dict(dataset="breast_cancer", groups="feature:0"),
}
FAMILIES = sorted(SMALL)


def _small(family, workers=3, **kw):
    return mml.problem(family, workers=workers, **{**SMALL[family], **kw})


def _num_operator(prob, z, worker, h=1e-6):
    g = np.zeros_like(z)
    for k in range(z.size):
        e = np.zeros_like(z)
        e[k] = h
        g[k] = (prob.objective(z + e, worker) - prob.objective(z - e, worker)) / (2 * h)
    g[prob.dim_u:] *= -1
    return g


@pytest.mark.parametrize("family", FAMILIES)
def test_operator_is_the_objective_gradient(family):
    prob = _small(family, batch=0)
    assert prob.noise.kind == "none"
    rng = np.random.default_rng(0)
    for z in prob.sample_box(rng, 3):
        for worker in (0, 2, None):
            F = prob.F(z) if worker is None else prob.F_i(worker, z)
            assert np.allclose(F, _num_operator(prob, z, worker), atol=1e-6, rtol=1e-6)
    Z = prob.sample_box(rng, 5)
    assert np.allclose(prob.F(Z), prob.F_mean_of_locals(Z), atol=1e-12)


@pytest.mark.parametrize("family", FAMILIES)
def test_declared_L_is_not_exceeded(family):
    prob = _small(family, batch=0)
    c = mml.problems.certify(prob, pairs=600, points=10, seed=1)
    assert c["L_pairs"] <= prob.L * (1 + 1e-9)
    assert c["L_pairs_local"] <= prob.L_local * (1 + 1e-9)
    assert c["L_jacobian"] <= prob.L * (1 + 1e-6)
    assert prob.certifiable is False and prob.mvi == "unknown"


@pytest.mark.parametrize("family", FAMILIES)
def test_minibatch_oracle_is_unbiased(family):
    from minmaxlab.engine.families import library_rows
    from minmaxlab.simulate import worker_streams

    prob = _small(family, batch=4)
    fid, P, A, S = prob.kernel_data
    z = prob.sample_box(np.random.default_rng(1), 1)[0]
    Z = np.tile(z, (prob.workers, 1))
    O = np.empty_like(Z)
    state = worker_streams(3, prob.workers)
    acc = np.zeros_like(Z)
    reps = 4000
    for _ in range(reps):
        library_rows(fid, Z, O, P, A, S, -1, state, 4)
        acc += O
    exact = np.array([prob.F_i(i, z) for i in range(prob.workers)])
    scale = np.abs(exact).max() + 1
    assert np.abs(acc / reps - exact).max() < 0.1 * scale


def test_default_constraints_are_applied_in_runs():
    prob = mml.problem("robust_regression", workers=4, samples=100, features=20, l1=0.3, radius=0.5)
    assert repr(prob.constraints[0]) == "L1(lam=0.3)" and repr(prob.constraints[1]) == "Ball(radius=0.5)"
    tr = mml.run(prob, mml.topology("ring", 4), mml.DPOSG(eta=0.05), 300, seed=0)
    y = tr.final_z[:, prob.dim_u:]
    assert np.all(np.linalg.norm(y, axis=1) <= 0.5 + 1e-12)
    x = tr.final_x[:, : prob.dim_u]
    assert np.mean(x == 0.0) > 0.3  # the l1 prox zeroes coordinates
    free = prob.with_constraints()
    tr2 = mml.run(free, mml.topology("ring", 4), mml.DPOSG(eta=0.05), 300, seed=0)
    assert np.mean(tr2.final_x[:, : prob.dim_u] == 0.0) == 0.0
    for family in ("dro_logistic", "fair_classification"):
        p = _small(family, workers=4)
        tr = mml.run(p, mml.topology("ring", 4), mml.DPOSG(eta=0.1), 200, seed=0)
        q = tr.final_x[:, p.dim_u:]
        assert np.all(q >= 0) and np.allclose(q.sum(axis=1), 1.0)


def _np_mapping(prob, zbar, eta):
    """The gradient mapping at zbar with numpy: l1 / ball / simplex projections in closed form."""
    F = prob.F(zbar)
    y = zbar - eta * F
    p = prob.dim_u
    u, v = prob.constraints
    if u is not None:  # L1
        y[:p] = np.sign(y[:p]) * np.maximum(np.abs(y[:p]) - eta * u.lam, 0)
    if type(v).__name__ == "Ball":
        n = np.linalg.norm(y[p:])
        y[p:] *= min(1.0, v.radius / n)
    elif type(v).__name__ == "Simplex":
        s = np.sort(y[p:])[::-1]
        cs = np.cumsum(s) - v.total
        k = np.nonzero(s - cs / np.arange(1, len(s) + 1) > 0)[0][-1]
        y[p:] = np.maximum(y[p:] - cs[k] / (k + 1), 0)
    return float(np.sum(((zbar - y) / eta) ** 2))


@pytest.mark.parametrize("family", FAMILIES)
def test_gradient_mapping_column(family):
    assert metrics.COLUMNS[metrics.COL_GRADIENT_MAPPING] == "gradient_mapping"
    prob = _small(family, workers=4)
    topo = mml.topology("ring", 4)
    eta = 0.05
    tr = mml.run(prob, topo, mml.DPOSG(eta=eta), 100, seed=0, record=[0, 50, 100])
    df = tr.to_frame()
    zbar = tr.final_z.mean(axis=0)
    assert np.isclose(df.gradient_mapping.iloc[-1], _np_mapping(prob, zbar, eta), rtol=1e-9, atol=1e-14)
    assert not np.allclose(df.gradient_mapping, df.stationarity_avg)
    free = prob.with_constraints()
    df2 = mml.run(free, topo, mml.DPOSG(eta=eta), 100, seed=0, record=[0, 50, 100]).to_frame()
    assert np.array_equal(df2.gradient_mapping.to_numpy(), df2.stationarity_avg.to_numpy())


def test_gradient_mapping_on_a_library_problem_and_stable_columns():
    prob = mml.problem("bilinear", workers=4)
    df = mml.run(prob, mml.topology("ring", 4), mml.DPOSG(eta=0.05), 50, seed=0).to_frame()
    assert np.array_equal(df.gradient_mapping.to_numpy(), df.stationarity_avg.to_numpy())
    assert list(metrics.COLUMNS[:14]) == ["iteration", "stationarity_local", "stationarity_avg",
                                    "avg_stationarity_local", "avg_stationarity_avg",
                                    "min_stationarity_local", "min_stationarity_avg", "consensus_z",
                                    "consensus_x", "dist_to_solution", "oracle_calls", "gossip_rounds",
                                    "floats_sent_per_worker", "stationarity_workers"]
    boxed = prob.with_constraints(u=mml.Box(-0.1, 0.1), v=mml.Box(-0.1, 0.1))
    df = mml.run(boxed, mml.topology("ring", 4), mml.DPOSG(eta=0.05), 50, seed=0).to_frame()
    feasible = df.iteration >= 1  # the start lies outside the box; the iterates do not
    assert np.all(df.gradient_mapping[feasible] <= df.stationarity_avg[feasible] * (1 + 1e-12))
    assert df.gradient_mapping.iloc[0] > df.stationarity_avg.iloc[0]


def test_data_loading(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    y = (X[:, 0] > 0).astype(int)
    from sklearn.datasets import dump_svmlight_file

    svm = tmp_path / "toy.svm"
    dump_svmlight_file(X, y, str(svm))
    X2, y2 = D.load_dataset(str(svm))
    assert sp.issparse(X2) and np.allclose(X2.toarray(), X, atol=1e-6) and np.array_equal(y2, y)
    csv = tmp_path / "toy.csv"
    pd.DataFrame({"f0": X[:, 0], "f1": X[:, 1], "target": y}).to_csv(csv, index=False)
    X3, y3 = D.load_dataset(str(csv), label_column="target")
    assert X3.shape == (60, 2) and np.array_equal(y3, y)
    X4, y4 = D.load_dataset(str(csv))  # last column
    assert np.array_equal(y4, y)
    Xb, yb = D.load_dataset("breast_cancer")
    assert Xb.shape == (569, 30) and set(np.unique(yb)) == {0, 1}
    Z, = D.standardize(Xb)
    assert np.allclose(Z.mean(axis=0), 0, atol=1e-12) and np.allclose(Z.std(axis=0), 1)
    with pytest.raises(ProblemError, match="neither"):
        D.load_dataset("no_such_set")
    for path in (svm, csv):
        prob = mml.problem("fair_classification", workers=3, dataset=str(path))
        assert prob.dim_u == (5 if path == svm else 3)
    rr = mml.problem("robust_regression", workers=2, dataset="diabetes", test_fraction=0.2)
    assert rr.dim_u == 10 and np.isfinite(rr.test_loss(np.zeros(rr.dim)))


def test_splits():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(5), 20)
    iid = D.split_indices(y, 5, "iid", rng)
    assert sorted(np.concatenate(iid).tolist()) == list(range(100))
    assert all(len(np.unique(y[s])) > 2 for s in iid)
    lab = D.split_indices(y, 5, "label", rng)
    assert sorted(np.concatenate(lab).tolist()) == list(range(100))
    assert all(len(np.unique(y[s])) == 1 for s in lab)
    with pytest.raises(ProblemError):
        D.split_indices(y, 5, "dirichlet", rng)
    a = mml.problem("dro_logistic", workers=4, dataset="digits", split="label", groups="label")
    b = mml.problem("dro_logistic", workers=4, dataset="digits", split="label", groups="label")
    assert np.array_equal(a._A, b._A)  # seeded
    labels0 = np.unique(a.shard(0)[:, -2])  # group column (= digit class here)
    assert len(labels0) <= 4 and a.groups == 10


def test_accuracy_and_runs(tmp_path):
    prob = mml.problem("fair_classification", workers=4)
    tr = mml.run(prob, mml.topology("ring", 4), mml.DPOSG(eta=0.1), 500, seed=0)
    acc = accuracy(prob, tr.final_z.mean(axis=0))
    assert acc > 0.9 and accuracy(prob, np.zeros(prob.dim)) < 0.8
    with pytest.raises(ProblemError):
        accuracy(mml.problem("robust_regression", workers=2, samples=10, features=3), np.zeros(6))
    # minmaxlab run from a TOML file
    from minmaxlab.cli import main

    cfg = tmp_path / "run.toml"
    cfg.write_text('[problem]\nname = "robust_regression"\nworkers = 4\n'
                   'params = { samples = 50, features = 8 }\n'
                   '[topology]\nname = "ring"\n[algorithm]\nname = "dposg"\neta = 0.05\n'
                   '[run]\niterations = 100\nseed = 1\n')
    assert main(["run", str(cfg), "--out", str(tmp_path / "rr.csv")]) == 0
    df = pd.read_csv(tmp_path / "rr.csv")
    assert "gradient_mapping" in df and np.all(np.isfinite(df.gradient_mapping))


def test_quick_study_without_claims(tmp_path):
    from minmaxlab.study import load_study, run_study

    text = """
name = "data_smoke"
experiment = "data"
verify = false
[grid]
problems = [{ name = "dro_logistic", params = { dataset = "wine", groups = "label" } }]
workers = [4]
topologies = ["ring"]
algorithms = [{ name = "dposg", eta = 0.1, rounds = 1 }, { name = "cposg", eta = 0.1 }]
seeds = [0]
iterations = 200
record = "linear:3"
every_iteration = false
"""
    f = tmp_path / "s.toml"
    f.write_text(text)
    res = run_study(load_study(f), out=tmp_path / "res", jobs=1, progress=False)
    assert res.verdicts == [] and res.computed == 2
    assert {"accuracy", "worst_group_loss", "gradient_mapping", "objective"} <= set(res.table.columns)
    assert (res.folder / "table.csv").exists()
    from minmaxlab.report import paper

    paper(results=tmp_path / "res", out=tmp_path / "fig", echo=lambda m: None)  # no claims, no figure
    assert (tmp_path / "fig").is_dir()


@pytest.mark.parametrize("study", ["robust_regression", "dro_logistic", "fair_classification"])
def test_study_files_load(study):
    from pathlib import Path

    from minmaxlab.study import cells, load_study

    path = Path(__file__).resolve().parents[1] / "studies" / f"{study}.toml"
    for quick in (True, False):
        s = load_study(path, quick=quick)
        assert s.raw["verify"] is False and s.experiment == "data"
        assert len(cells(s)) >= 5


@pytest.mark.parametrize("text, message", [
    ("a,b,label\n", "no rows"),
    ("", "not a readable CSV table"),
    ("a,b,label\n1,2,0\n3,4,\n", "a missing label is not a class"),
    ("a,b,label\n1,,0\n3,4,1\n", "features hold missing"),
    ("a,b,label\n1,2,1\n3,4,1\n", "at least two labels"),
    ("a,b,label\n1,2,x\n3,4,y\n", "must hold numbers"),
])
def test_bad_data_files_are_named_and_refused(tmp_path, text, message):
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(mml.ProblemError, match=message) as exc:
        mml.problem("dro_logistic", workers=2, dataset=str(f))
    assert "bad.csv" in str(exc.value)
