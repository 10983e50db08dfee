"""Sparse storage of the data families: the compressed buffers decode to the data, dense and
sparse storage give the same operators and the same runs, the gradients match finite
differences, the a9a-like generator and the scalings keep their promises, and the integer draws
are uniform."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import minmaxlab as mml
from minmaxlab.engine.streams import seed_states, uniform_index
from minmaxlab.errors import ProblemError
from minmaxlab.problems import datasets as D
from minmaxlab.problems.data import _pack_sparse

CASES = {
    "robust_onehot": ("robust_regression", dict(dataset="synthetic_onehot", samples=40, features=18,
                                                lam=0.7)),
    "robust_valued": ("robust_regression", dict(samples=40, features=6, lam=0.7)),
    "dro_wine": ("dro_logistic", dict(dataset="wine", groups="kmeans:3")),
    "fair_bc": ("fair_classification", dict(dataset="breast_cancer", groups="feature:0")),
}


def _pair(case, workers=3, **kw):
    family, params = CASES[case]
    params = {**params, **kw}
    dense = mml.problem(family, workers=workers, **{**params, "storage": "dense"})
    sparse = mml.problem(family, workers=workers, **{**params, "storage": "sparse"})
    return dense, sparse


def _decode(buf):
    """Read one compressed block back with numpy: (rows as (columns, values), extras)."""
    bits = buf.view(np.uint32)
    n, binary = int(bits[0]), bool(bits[1])
    offs = bits[2: 3 + n].astype(np.int64)
    rows, extras = [], []
    for j in range(n):
        s = offs[j]
        k = int(bits[2 * s])
        # extras fill the words up to the columns; their count is fixed by the record length
        nE = offs[j + 1] - s - 1 - (k + 1) // 2 - (0 if binary else k)
        cols = bits[2 * (s + 1 + nE): 2 * (s + 1 + nE) + k].astype(np.int64)
        vals = np.ones(k) if binary else buf[s + 1 + nE + (k + 1) // 2: s + 1 + nE + (k + 1) // 2 + k]
        rows.append((cols, vals))
        extras.append(buf[s + 1: s + 1 + nE])
    return rows, np.array(extras), binary


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 12), p=st.integers(1, 9), density=st.floats(0.0, 1.0),
       binary=st.booleans(), nE=st.integers(1, 3), seed=st.integers(0, 2**31))
def test_compressed_buffers_decode_to_the_data(n, p, density, binary, nE, seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((n, p)) < density
    X = np.where(mask, 1.0 if binary else rng.standard_normal((n, p)), 0.0)
    E = rng.standard_normal((n, nE))
    A = _pack_sparse([(sp.csr_matrix(X), E)])
    rows, extras, is_binary = _decode(A[0, 0])
    assert is_binary == (binary or not mask.any() or bool(np.all(X[mask] == 1.0)))
    assert np.array_equal(extras, E)
    for j, (cols, vals) in enumerate(rows):
        dense = np.zeros(p)
        dense[cols] = vals
        assert np.array_equal(dense, X[j]) and np.all(np.diff(cols) > 0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_dense_and_sparse_storage_give_the_same_operators(case):
    dense, sparse = _pair(case, batch=0)
    assert (dense.storage, sparse.storage) == ("dense", "sparse")
    assert dense.L == pytest.approx(sparse.L, rel=1e-12)
    assert dense.L_local == pytest.approx(sparse.L_local, rel=1e-12)
    Z = dense.sample_box(np.random.default_rng(0), 5)
    assert np.allclose(dense.F(Z), sparse.F(Z), rtol=1e-12, atol=1e-12)
    for i in range(3):
        assert np.allclose(dense.F_i(i, Z), sparse.F_i(i, Z), rtol=1e-12, atol=1e-12)
        assert np.array_equal(dense.shard(i), sparse.shard(i))
    assert np.allclose(sparse.F(Z), sparse.F_mean_of_locals(Z), atol=1e-12)
    z = Z[0]
    for w in (None, 1):
        assert dense.objective(z, w) == pytest.approx(sparse.objective(z, w), rel=1e-12)


@pytest.mark.parametrize("case", sorted(CASES))
def test_sparse_storage_gradients_match_finite_differences(case):
    _, prob = _pair(case, batch=0)
    z = prob.sample_box(np.random.default_rng(3), 1)[0]
    for worker in (0, None):
        F = prob.F(z) if worker is None else prob.F_i(worker, z)
        g = np.zeros_like(z)
        for k in range(z.size):
            e = np.zeros_like(z)
            e[k] = 1e-6
            g[k] = (prob.objective(z + e, worker) - prob.objective(z - e, worker)) / 2e-6
        g[prob.dim_u:] *= -1
        assert np.allclose(F, g, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("case", sorted(CASES))
def test_minibatch_runs_pick_the_same_rows_in_both_storages(case):
    dense, sparse = _pair(case, workers=4, batch=3)
    topo = mml.topology("ring", 4)
    for alg in (mml.DPOSG(eta=0.05, rounds=1, variant="single_exchange"), mml.DEG(eta=0.05)):
        a = mml.run(dense, topo, alg, iterations=60, seed=5, record=[0, 60])
        b = mml.run(sparse, topo, alg, iterations=60, seed=5, record=[0, 60])
        assert np.allclose(a.final_x, b.final_x, rtol=1e-10, atol=1e-12)
        fa, fb = (t.to_frame().select_dtypes("number").to_numpy() for t in (a, b))
        assert np.allclose(fa, fb, rtol=1e-9, atol=1e-12,
                           equal_nan=True)


def test_onehot_generator_is_shaped_like_a9a():
    A, b, x_true = D.synthetic_onehot(3000, 123, np.random.default_rng(0))
    assert sp.isspmatrix_csr(A) and A.shape == (3000, 123) and len(b) == 3000
    assert np.all(np.diff(A.indptr) == 14) and np.all(A.data == 1.0)  # 14 attributes, one-hot
    assert D.density(A) == pytest.approx(14 / 123)
    freq = np.asarray(A.sum(axis=0)).ravel() / 3000
    assert freq.max() > 0.25 and (freq < 0.1).sum() > 50  # Zipf-like category frequencies
    resid = b - A @ x_true
    assert np.median(np.abs(resid)) < 0.2 and np.abs(resid).max() > 5  # noise plus outliers
    prob = mml.problem("robust_regression", workers=5, dataset="synthetic_onehot", samples=100)
    assert prob.storage == "sparse" and prob.dim_u == 123
    assert prob._fid != mml.problem("robust_regression", workers=5, samples=100)._fid


def test_scalings_and_the_storage_rule(tmp_path):
    rng = np.random.default_rng(1)
    X = sp.random(200, 30, density=0.1, random_state=3, format="csr") * 7.0
    Xtr, Xte, storage = D.prepare(X[:150], X[150:])
    assert storage == "sparse" and sp.issparse(Xtr)
    assert np.allclose(abs(Xtr).max(axis=0).toarray()[abs(X[:150]).max(axis=0).toarray() > 0], 1.0)
    assert Xtr.nnz == X[:150].nnz  # max-abs scaling keeps the zeros
    Xd = rng.standard_normal((100, 5))
    Xtr, _, storage = D.prepare(Xd[:80], Xd[80:])
    assert storage == "dense" and np.allclose(Xtr.mean(axis=0), 0, atol=1e-12)
    Xtr, _, storage = D.prepare(Xd[:80], Xd[80:], scaling="none", storage="sparse")
    assert storage == "sparse" and np.array_equal(Xtr.toarray(), Xd[:80])
    with pytest.raises(ProblemError, match="storage"):
        D.prepare(Xd, Xd, storage="ellpack")
    with pytest.raises(ProblemError, match="scaling"):
        D.prepare(Xd, Xd, scaling="minmax")
    # a sparse LIBSVM file stays sparse all the way to the kernels
    from sklearn.datasets import dump_svmlight_file

    y = (rng.random(200) < 0.5).astype(int)
    path = tmp_path / "sparse.svm"
    dump_svmlight_file(X, y, str(path))
    prob = mml.problem("dro_logistic", workers=4, dataset=str(path), groups="label")
    assert prob.storage == "sparse" and prob.params["storage"] == "sparse"
    tr = mml.run(prob, mml.topology("ring", 4), mml.DPOSG(eta=0.1), 200, seed=0)
    assert tr.status == "ok"
    zbar = tr.final_z.mean(axis=0)
    dense = mml.problem("dro_logistic", workers=4, dataset=str(path), groups="label", storage="dense")
    assert mml.accuracy(prob, zbar) == mml.accuracy(dense, zbar)
    assert np.allclose(prob.group_losses(zbar), dense.group_losses(zbar), rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 2**31), seed=st.integers(0, 2**63 - 1))
def test_integer_draws_stay_in_range(n, seed):
    state = seed_states(seed, 1)
    draws = [uniform_index(state, 0, n) for _ in range(50)]
    assert all(0 <= j < n for j in draws)


def test_integer_draws_are_uniform():
    from scipy.stats import chisquare

    state = seed_states(12345, 1)
    n = 37
    counts = np.bincount([uniform_index(state, 0, n) for _ in range(37_000)], minlength=n)
    assert chisquare(counts).pvalue > 1e-4
