"""Hypothesis strategies for property-testing decentralized min-max methods.

    from hypothesis import given
    from minmaxlab.testing import mixing_matrices, problems, worker_states

    @given(mixing_matrices(max_workers=8))
    def test_my_gossip(W): ...

Every strategy draws only valid objects: connected graphs, symmetric doubly stochastic W
(assumption A4), problems of the library with small dimensions, finite worker states.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

WEIGHT_RULES = ("metropolis", "maxdegree", "lazy")


@st.composite
def connected_graphs(draw, min_workers: int = 1, max_workers: int = 8):
    """A networkx graph on 0..M-1: a random spanning tree plus random extra edges."""
    import networkx as nx

    M = draw(st.integers(min_workers, max_workers))
    G = nx.empty_graph(M)
    for k in range(1, M):
        G.add_edge(k, draw(st.integers(0, k - 1)))
    if M > 2:
        pairs = [(a, b) for a in range(M) for b in range(a + 1, M)]
        for a, b in pairs:
            if draw(st.booleans()) and draw(st.booleans()):
                G.add_edge(a, b)
    return G


@st.composite
def topologies(draw, min_workers: int = 1, max_workers: int = 8, rules=WEIGHT_RULES):
    """A :class:`minmaxlab.Topology` on a random connected graph with a random weight rule."""
    from minmaxlab.topology import Topology

    G = draw(connected_graphs(min_workers, max_workers))
    rule = draw(st.sampled_from(rules))
    params = {}
    if rule == "lazy":
        params["alpha"] = draw(st.floats(0.0, 0.9))
    return Topology.from_graph(G, rule=rule, **params)


@st.composite
def mixing_matrices(draw, min_workers: int = 1, max_workers: int = 8):
    """A dense symmetric doubly stochastic W supported on a connected graph."""
    return draw(topologies(min_workers, max_workers)).W


_SMALL = {
    "bilinear": {"dim": [2, 4]},
    "quadratic": {"dim": [2, 4]},
    "minty_bowl": {"dim": [2, 4]},
    "weak_mvi_quadratic": {"dim": [2, 4]},
    "forsaken": {},
    "global_forsaken": {},
    "polar": {},
    "dirac_gan": {},
    "covariance_wgan": {"n": [1, 2], "samples": [0, 16]},
}


@st.composite
def problems(draw, families=None, min_workers: int = 1, max_workers: int = 6,
             heterogeneity: bool = True):
    """A small library problem (dim <= 8) with random workers, heterogeneity and seed."""
    from minmaxlab.problems import CERTIFIED, FAMILIES

    names = sorted(CERTIFIED) if families is None else list(families)
    family = draw(st.sampled_from(names))
    params = {k: draw(st.sampled_from(v)) for k, v in _SMALL.get(family, {}).items()}
    if heterogeneity:
        params["heterogeneity"] = draw(st.sampled_from([0.0, 0.1, 1.0]))
    params["seed"] = draw(st.integers(0, 2**16))
    workers = draw(st.integers(min_workers, max_workers))
    return FAMILIES[family](workers=workers, **params)


def starts(prob, low: float = 0.3, high: float = 0.7):
    """A start z0 for ``prob``: each coordinate between ``low`` and ``high`` of the way across its
    box (inside, where every family's operator is well scaled)."""
    lo, hi = prob.box
    return st.lists(st.floats(low, high), min_size=prob.dim, max_size=prob.dim).map(
        lambda u: lo + (hi - lo) * np.asarray(u, dtype=np.float64))


def worker_states(workers: int, dim: int, scale: float = 10.0):
    """An array of shape (workers, dim) of finite floats in [-scale, scale]."""
    return st.lists(
        st.floats(-scale, scale, allow_nan=False, allow_infinity=False),
        min_size=workers * dim, max_size=workers * dim,
    ).map(lambda xs: np.asarray(xs, dtype=np.float64).reshape(workers, dim))


@st.composite
def problems_with_states(draw, **kw):
    """(problem, Z) with Z of shape (workers, dim) inside the problem's box."""
    prob = draw(problems(**kw))
    lo, hi = prob.box
    u = draw(worker_states(prob.workers, prob.dim, scale=1.0))
    return prob, lo + (hi - lo) * (u + 1.0) / 2.0
