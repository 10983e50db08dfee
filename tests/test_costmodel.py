"""The latency/bandwidth model and the per-iteration costs that the runs record, both counted
from the algorithms' plans, against the formulas written out by hand."""

import numpy as np
import pytest

import minmaxlab as mml
from minmaxlab.algorithms import phase_counts
from minmaxlab.costmodel import CostModel
from minmaxlab.engine import plans
from minmaxlab.errors import MinmaxlabError

ALPHA, BETA, GRAD = 1e-3, 1e6, 2e-4


@pytest.mark.parametrize("parallel", [False, True])
def test_gossiping_methods_pay_their_rounds(parallel):
    cm = CostModel(alpha=ALPHA, beta=BETA, grad_time=GRAD, parallel=parallel)
    d, deg, t = 50, 4, 3
    msg = 8.0 * d / BETA
    round_time = ALPHA + (msg if parallel else deg * msg)
    assert cm.iteration_time("dposg", d, 16, deg, t) == pytest.approx(GRAD + 2 * t * round_time)
    assert cm.iteration_time("dposg_single", d, 16, deg, t) == pytest.approx(GRAD + t * round_time)
    assert cm.iteration_time("dsgda", d, 16, deg, t) == pytest.approx(GRAD + t * round_time)
    assert cm.iteration_time("deg", d, 16, deg, t, oracle_calls=2) == pytest.approx(
        2 * GRAD + 2 * t * round_time)
    assert cm.iteration_time("dpoadam", d, 16, deg, t) == pytest.approx(GRAD + t * round_time)


def test_centralized_methods_pay_an_all_reduce():
    d, M = 50, 16
    ring = CostModel(alpha=ALPHA, beta=BETA, grad_time=GRAD)
    server = CostModel(alpha=ALPHA, beta=BETA, grad_time=GRAD, allreduce="server")
    expect_ring = GRAD + 2 * (M - 1) * ALPHA + 2 * (M - 1) / M * 8.0 * d / BETA
    expect_server = GRAD + 2 * ALPHA + 2 * M * 8.0 * d / BETA
    for alg in ("cposg", "cpoadam"):
        assert ring.iteration_time(alg, d, M, rounds=5) == pytest.approx(expect_ring)
        assert server.iteration_time(alg, d, M) == pytest.approx(expect_server)
    assert ring.iteration_time("osg", d, 1) == pytest.approx(GRAD)  # one worker: no messages
    with pytest.raises(MinmaxlabError, match="unknown algorithm"):
        ring.iteration_time("sgd", d, M)
    with pytest.raises(MinmaxlabError, match="beta"):
        CostModel(beta=0.0)


def test_phase_counts_are_the_plans():
    assert phase_counts("dposg") == (1, 2, 0)
    assert phase_counts("dposg_single") == (1, 1, 0)
    assert phase_counts("deg") == (2, 2, 0)
    assert phase_counts("cposg") == (1, 0, 1)
    assert plans.plan_counts(plans.ALG_CPOSG, init=True) == (1, 0, 1)  # the first average at z0
    assert plans.plan_counts(plans.ALG_DSGDA, init=True) == (0, 0, 0)


@pytest.mark.parametrize("alg, per_iteration", [
    (mml.DPOSG(eta=0.05, rounds=3), lambda d, deg, M: (1, 2 * 3 * d * deg)),
    (mml.DPOSG(eta=0.05, rounds=3, variant="single_exchange"), lambda d, deg, M: (1, 3 * d * deg)),
    (mml.DEG(eta=0.05, rounds=2), lambda d, deg, M: (2, 2 * 2 * d * deg)),
    (mml.CPOSG(eta=0.05), lambda d, deg, M: (1, 2 * d * (M - 1) / M)),
])
def test_recorded_costs_follow_the_formulas(alg, per_iteration):
    M, d, K_ = 8, 2, 6
    prob, topo = mml.problem("forsaken", workers=M), mml.topology("ring", M)
    frame = mml.run(prob, topo, alg, K_, record="all").to_frame()
    calls, floats = per_iteration(d, 2.0, M)  # a ring: every worker has 2 neighbours
    # the optimistic methods call the oracle once at z0; CPOSG also averages that first gradient
    init_calls = 0 if alg.key == "deg" else 1
    init_floats = 2 * d * (M - 1) / M if alg.key == "cposg" else 0.0
    k = frame["iteration"].to_numpy()
    assert np.allclose(frame["oracle_calls"], init_calls + calls * k)
    assert np.allclose(frame["floats_sent_per_worker"], init_floats + floats * k)
