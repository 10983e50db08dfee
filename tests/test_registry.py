"""The family registry and the dispatch generated from it."""

import numpy as np
import pytest
from numba import njit

import minmaxlab as mml
from minmaxlab.engine import families, registry
from minmaxlab.engine.streams import no_state


@njit
def _twice(Z, O, P, A, S, worker, state, batch):
    for r in range(Z.shape[0]):
        O[r, 0] = 2.0 * Z[r, 0]


@njit
def _plus_worker(Z, O, P, A, S, worker, state, batch):
    for r in range(Z.shape[0]):
        O[r, 0] = Z[r, 0] + (worker if worker >= 0 else r)


def _call(rows, fid):
    Z = np.arange(3.0).reshape(3, 1)
    O = np.zeros_like(Z)
    rows(np.int64(fid), Z, O, np.zeros(1), np.zeros((1, 1, 1)), np.zeros((1, 1)), np.int64(-1),
         no_state(), np.int64(0))
    return O[:, 0]


def test_generated_dispatch_calls_each_family_and_nan_for_an_unknown_id():
    rows = families.generate_dispatch({7: _twice, 3: _plus_worker})
    assert _call(rows, 7).tolist() == [0.0, 2.0, 4.0]
    assert _call(rows, 3).tolist() == [0.0, 2.0, 4.0 - 0.0] and _call(rows, 3)[1] == 2.0
    assert np.isnan(_call(rows, 5)).all()  # not registered


def test_every_library_family_is_registered_under_the_id_its_problems_use():
    table = registry.kernels()
    used = set()
    for family in mml.problems.FAMILIES:
        prob = mml.problem(family, workers=2)
        fid, P, A, S = prob.kernel_data
        assert fid in table, family
        used.add(fid)
        # the registered kernel is the one that computes the problem's operator (exact)
        z = prob.sample_box(np.random.default_rng(0), 2)
        out = np.zeros_like(z)
        table[fid](z, out, P, A, S, np.int64(1), no_state(), np.int64(0))
        np.testing.assert_array_equal(out, prob.F_i(1, z))
    assert len(set(table)) == len(table) and min(table) > registry.FID_USER


def test_a_family_id_is_registered_once():
    with pytest.raises(ValueError, match="taken"):
        registry.family_kernel(min(registry.kernels()))(_twice)
    with pytest.raises(ValueError, match=">= 1"):
        registry.family_kernel(0)(_twice)
    kernel = registry.kernel(min(registry.kernels()))
    assert registry.family_kernel(min(registry.kernels()))(kernel) is kernel  # same kernel: no-op


def test_rowwise_families_are_the_ones_sharing_rows():
    # the GAN and the data families draw their own batches from per-worker data: never rowwise
    rowwise = registry.rowwise()
    assert mml.problem("gan").kernel_data[0] not in rowwise
    assert mml.problem("robust_regression").kernel_data[0] not in rowwise
    assert mml.problem("minty_bowl").kernel_data[0] in rowwise
    assert families.ROWWISE.sum() == len(rowwise)


@pytest.mark.parametrize("dim", [2, 6, 20])
@pytest.mark.parametrize("g", ["rational", "log"])
def test_specialized_minty_bowl_paths_give_the_general_paths_bits(dim, g):
    """The plane (d = 2) and shared-matrix paths of the Minty bowl are the per-row path's
    operations in its order: the same bits as with the matrix and shift repeated per worker
    (which takes the per-row path)."""
    from minmaxlab.problems.linear import minty_bowl_rows

    prob = mml.problem("minty_bowl", workers=3, dim=dim, g=g)
    fid, P, A, _ = prob.kernel_data
    S = np.random.default_rng(2).standard_normal((1, dim))  # a shared shift, nonzero
    assert A.shape[0] == 1
    Z = prob.sample_box(np.random.default_rng(1), 3)
    fast, general = np.zeros_like(Z), np.zeros_like(Z)
    st = no_state()
    minty_bowl_rows(Z, fast, P, A, S, np.int64(-1), st, np.int64(0))
    minty_bowl_rows(Z, general, P, np.repeat(A, 3, axis=0), np.repeat(S, 3, axis=0), np.int64(-1),
                    st, np.int64(0))
    assert np.array_equal(fast, general)
