"""The hypothesis strategies of minmaxlab.testing draw valid objects, and properties hold on them."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from minmaxlab.testing import mixing_matrices, problems, problems_with_states, starts, topologies


@settings(max_examples=40, deadline=None)
@given(W=mixing_matrices(max_workers=9))
def test_mixing_matrices_satisfy_a4(W):
    M = W.shape[0]
    assert np.allclose(W, W.T, atol=1e-14)
    assert np.allclose(W.sum(axis=1), 1.0, atol=1e-12)
    assert (W >= 0).all()
    if M > 1:
        assert np.linalg.norm(W - np.full((M, M), 1.0 / M), 2) < 1 - 1e-9


@settings(max_examples=25, deadline=None)
@given(topo=topologies(min_workers=2, max_workers=7))
def test_topologies_have_consistent_sparse_form(topo):
    indptr, indices, weights = topo.neighbors
    dense = np.zeros((topo.workers, topo.workers))
    for i in range(topo.workers):
        dense[i, indices[indptr[i]:indptr[i + 1]]] = weights[indptr[i]:indptr[i + 1]]
    assert np.allclose(dense, topo.W, atol=1e-15)


@settings(max_examples=40, deadline=None)
@given(pz=problems_with_states())
def test_problem_mean_is_mean_of_locals(pz):
    prob, Z = pz
    assert Z.shape == (prob.workers, prob.dim)
    assert np.all(prob.box[0] <= Z) and np.all(Z <= prob.box[1])
    assert np.allclose(prob.F(Z), prob.F_mean_of_locals(Z), atol=1e-11)
    for i in range(prob.workers):
        assert np.all(np.isfinite(prob.F_i(i, Z)))


@settings(max_examples=30, deadline=None)
@given(prob=problems(families=["minty_bowl", "quadratic", "bilinear"]))
def test_monotone_families_satisfy_mvi_on_drawn_points(prob):
    Z = prob.sample_box(np.random.default_rng(0), 50)
    inner = np.einsum("nd,nd->n", prob.F(Z), Z - prob.solution)
    assert np.all(inner >= -1e-9)


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_starts_lie_in_the_middle_of_the_box(data):
    prob = data.draw(problems(max_workers=3))
    z0 = data.draw(starts(prob))
    lo, hi = prob.box
    u = (z0 - lo) / (hi - lo)
    assert z0.shape == (prob.dim,) and np.all(u >= 0.3 - 1e-12) and np.all(u <= 0.7 + 1e-12)
