"""minmaxlab.topology: closed-form spectra, A4 invariants, builders, sparse paths and bad input."""

import math

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from minmaxlab import spectrum
from minmaxlab.errors import TopologyError
from minmaxlab.topology import (
    BUILDERS,
    WEIGHT_RULES,
    TimeVarying,
    Topology,
    available_rules,
    available_topologies,
    format_table,
    main_topology,
    one_peer_exponential,
    topology,
)


def J(M):
    return np.full((M, M), 1.0 / M)


def ring_eigenvalues(M):
    return np.sort((1.0 + 2.0 * np.cos(2.0 * np.pi * np.arange(M) / M)) / 3.0)[::-1]


# --------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("M", range(3, 65))
def test_ring_metropolis_spectrum_is_closed_form(M):
    t = topology("ring", M)
    assert np.allclose(t.weights, 1.0 / 3.0, rtol=0, atol=1e-15)
    expected = ring_eigenvalues(M)
    assert np.max(np.abs(t.eigenvalues - expected)) < 1e-12
    k = np.arange(1, M)
    rho = np.max(np.abs((1.0 + 2.0 * np.cos(2.0 * np.pi * k / M)) / 3.0))
    assert abs(t.rho - rho) < 1e-12
    assert abs(t.spectral_gap - (1.0 - rho)) < 1e-12


@pytest.mark.parametrize("M", [1, 2, 3, 5, 16, 33])
@pytest.mark.parametrize("rule", ["metropolis", "maxdegree"])
def test_complete_graph_gives_J(M, rule):
    t = topology("complete", M, rule=rule)
    assert np.max(np.abs(t.W - J(M))) < 1e-12
    assert t.rho < 1e-12
    assert t.rounds_for(1e-6) == 0


@pytest.mark.parametrize("n", range(1, 8))
def test_hypercube_metropolis_spectrum(n):
    M = 2**n
    t = topology("hypercube", M)
    assert t.max_degree == n and t.edges == n * M // 2
    expected = np.concatenate(
        [np.full(math.comb(n, k), (1.0 + n - 2.0 * k) / (n + 1.0)) for k in range(n + 1)]
    )
    assert np.max(np.abs(t.eigenvalues - np.sort(expected)[::-1])) < 1e-12
    assert abs(t.rho - (n - 1.0) / (n + 1.0)) < 1e-12


def test_torus_rectangular_spectrum():
    rows, cols = 4, 16
    t = topology("torus", 64, rows=rows)
    assert t.params["cols"] == cols and t.max_degree == 4
    a, b = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    ev = (1 + 2 * np.cos(2 * np.pi * a / rows) + 2 * np.cos(2 * np.pi * b / cols)) / 5
    assert np.max(np.abs(t.eigenvalues - np.sort(ev.ravel())[::-1])) < 1e-12


def test_star_metropolis_rho():
    for M in (3, 10, 50):
        assert abs(topology("star", M).rho - (1.0 - 1.0 / M)) < 1e-12


def test_lazy_rule_is_convex_combination():
    base = topology("ring", 10)
    lazy = topology("ring", 10, rule="lazy", alpha=0.25)
    assert np.max(np.abs(lazy.W - (0.25 * np.eye(10) + 0.75 * base.W))) < 1e-15
    lazy_md = topology("star", 6, rule="lazy", alpha=0.5, base="maxdegree")
    star = topology("star", 6, rule="maxdegree")
    assert np.max(np.abs(lazy_md.W - (0.5 * np.eye(6) + 0.5 * star.W))) < 1e-15
    assert lazy.params == {"alpha": 0.25}


# --------------------------------------------------------------------------- A4 on random graphs


@st.composite
def connected_graphs(draw):
    n = draw(st.integers(2, 12))
    G = nx.Graph()
    G.add_nodes_from(range(n))
    for i in range(1, n):  # random spanning tree
        G.add_edge(i, draw(st.integers(0, i - 1)))
    extra = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=25))
    G.add_edges_from((a, b) for a, b in extra if a != b)
    return G


rules = st.one_of(
    st.just(("metropolis", {})),
    st.just(("maxdegree", {})),
    st.builds(
        lambda alpha, base: ("lazy", {"alpha": alpha, "base": base}),
        st.floats(0.0, 0.95),
        st.sampled_from(["metropolis", "maxdegree"]),
    ),
)


@settings(max_examples=120, deadline=None)
@given(G=connected_graphs(), rule=rules, seed=st.integers(0, 2**32 - 1))
def test_random_connected_graphs_satisfy_a4(G, rule, seed):
    name, params = rule
    t = Topology.from_graph(G, rule=name, **params)
    M = G.number_of_nodes()
    W = t.W
    assert t.workers == M and t.rule == name
    assert np.array_equal(W, W.T)
    assert np.max(np.abs(W.sum(axis=1) - 1.0)) < 1e-12
    assert np.all(W >= 0)
    adjacency = nx.to_numpy_array(G, nodelist=range(M)) > 0
    off = ~np.eye(M, dtype=bool)
    assert np.array_equal(W[off] > 0, adjacency[off])  # positive exactly on the edges
    assert 0.0 <= t.rho < 1.0
    for power in range(1, 6):
        assert abs(t.rho_of_power(power) - t.rho**power) < 1e-9
        assert t.rho_power(power) == t.rho**power
    assert abs(t.compute_rho("sparse") - t.rho) < 1e-8
    Y = np.random.default_rng(seed).standard_normal((M, 3))
    for power in range(4):
        assert np.allclose(t.mix(Y, power), np.linalg.matrix_power(W, power) @ Y, atol=1e-12)


def test_neighbour_form_is_csr_with_diagonal():
    t = topology("torus", 36)
    indptr, indices, weights = t.neighbors
    assert indptr.dtype == np.int64 and indices.dtype == np.int64 and weights.dtype == np.float64
    assert len(indptr) == 37 and len(indices) == len(weights) == indptr[-1] == 2 * t.edges + 36
    dense = np.zeros((36, 36))
    for i in range(36):
        cols = indices[indptr[i] : indptr[i + 1]]
        assert i in cols and np.all(np.diff(cols) > 0)
        dense[i, cols] = weights[indptr[i] : indptr[i + 1]]
    assert np.array_equal(dense, t.W)
    with pytest.raises(ValueError):
        weights[0] = 1.0  # read-only


# --------------------------------------------------------------------------- builders


SIZES = [1, 2, 3, 4, 8, 12, 16, 31]


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("rule", sorted(WEIGHT_RULES))
def test_every_builder_satisfies_a4(name, rule):
    for M in SIZES:
        if name == "hypercube" and M & (M - 1):
            continue
        t = topology(name, M, rule=rule, seed=3)
        t.check()
        assert t.workers == M and t.name == name
        assert t.graph.number_of_nodes() == M and nx.is_connected(t.graph)
        assert t.nnz == 2 * t.edges + M
        assert 0.0 <= t.rho < 1.0
        assert np.array_equal(t.degrees, [d for _, d in sorted(t.graph.degree())])


def test_builder_graphs():
    assert topology("ring", 1).edges == 0 and topology("ring", 2).edges == 1
    assert topology("ring", 9).edges == 9 and topology("path", 9).edges == 8
    assert topology("star", 9).max_degree == 8
    assert topology("torus", 7).params == {"rows": 1, "cols": 7}  # prime: a ring
    assert topology("torus", 7).edges == 7
    assert topology("torus", 12).params == {"rows": 3, "cols": 4}
    ex = topology("exponential", 16)  # shifts +-1, +-2, +-4, +-8 (8 == -8)
    assert set(ex.graph.neighbors(0)) == {1, 2, 4, 8, 15, 14, 12}
    rr = topology("random_regular", 20, degree=3, seed=5)
    assert set(rr.degrees) == {3}
    assert topology("expander", 10).max_degree == 4


def test_random_builders_are_seeded():
    a = topology("erdos_renyi", 30, p=0.3, seed=7)
    b = topology("erdos_renyi", 30, p=0.3, seed=7)
    c = topology("erdos_renyi", 30, p=0.3, seed=8)
    assert set(a.graph.edges()) == set(b.graph.edges()) != set(c.graph.edges())
    assert a.params["p"] == 0.3 and a.params["seed"] == 7


def test_available_names():
    assert available_topologies() == sorted(BUILDERS)
    names = (
        "ring path torus complete star hypercube exponential erdos_renyi expander random_regular"
    )
    assert set(names.split()) <= set(available_topologies())
    assert available_rules() == ["lazy", "maxdegree", "metropolis", "random_walk"]


# --------------------------------------------------------------------------- sparse spectra


def test_torus_dense_and_sparse_rho_agree():
    t = topology("torus", 64)
    assert t.params == {"rows": 8, "cols": 8}
    exact = (3.0 + 2.0 * np.cos(2.0 * np.pi / 8)) / 5.0
    assert abs(t.compute_rho("dense") - exact) < 1e-12
    assert abs(t.compute_rho("sparse") - t.compute_rho("dense")) < 1e-8


def test_large_torus_is_sparse():
    t = topology("torus", 4096)
    rho = t.rho
    assert t.nnz == 5 * 4096 and len(t.neighbors[1]) == 5 * 4096
    assert "W" not in t._cache  # no dense M x M matrix was formed
    assert 0.0 < rho < 1.0
    assert abs(rho - (3.0 + 2.0 * np.cos(2.0 * np.pi / 64)) / 5.0) < 1e-10


def test_large_ring_sparse_rho_clustered_spectrum():
    t = topology("ring", 4096)  # Lanczos stalls on the cluster near 1; shift-invert takes over
    assert abs(t.rho - (1.0 + 2.0 * np.cos(2.0 * np.pi / 4096)) / 3.0) < 1e-12
    assert "W" not in t._cache
    with pytest.raises(TopologyError, match="too large for dense"):
        _ = topology("ring", 4097).eigenvalues


def test_sparse_rho_from_the_negative_end():
    n = 20  # K_{n,n} with max-degree weights: eigenvalues 1, 1/(n+1), (1-n)/(n+1)
    t = Topology.from_graph(nx.complete_bipartite_graph(n, n), rule="maxdegree")
    assert abs(t.compute_rho("sparse") - (n - 1.0) / (n + 1.0)) < 1e-10
    assert abs(t.rho - (n - 1.0) / (n + 1.0)) < 1e-12


def test_sparse_rho_non_symmetric():
    W0 = one_peer_exponential(64)[0]  # (I + shift)/2: ||W - J||_2 = cos(pi / M)
    assert abs(W0.compute_rho("dense") - np.cos(np.pi / 64)) < 1e-12
    assert abs(W0.compute_rho("sparse") - np.cos(np.pi / 64)) < 1e-8


# --------------------------------------------------------------------------- time-varying


@pytest.mark.parametrize("M", [1, 2, 4, 8, 16])
def test_one_peer_exponential_period_product_is_J(M):
    seq = one_peer_exponential(M)
    tv = TimeVarying(seq)
    assert tv.period == max(1, int(math.log2(M))) and tv.sequence == tuple(seq)
    for k, t in enumerate(seq):
        W = t.W
        assert np.allclose(W.sum(axis=0), 1.0) and np.allclose(W.sum(axis=1), 1.0)
        if M > 1:
            assert W[0, (1 << k) % M] == 0.5 and W[0, 0] == 0.5
    P = np.eye(M)
    for t in seq:
        P = t.W @ P
    assert np.max(np.abs(P - J(M))) < 1e-15
    assert np.max(np.abs(tv.product() - J(M))) < 1e-15
    assert tv.summary()["rho"] < 1e-12
    Y = np.arange(2.0 * M).reshape(M, 2)
    assert np.allclose(tv.mix(Y), Y.mean(axis=0))
    assert tv.at(tv.period + 1) is seq[1 % len(seq)]
    if M >= 4:
        assert not np.array_equal(seq[0].W, seq[0].W.T)  # not symmetric in general


def test_one_peer_exponential_rejects_non_power_of_two():
    with pytest.raises(TopologyError, match="power of 2"):
        one_peer_exponential(6)


# --------------------------------------------------------------------------- derived quantities


def test_rounds_for_hand_computed():
    t = topology("hypercube", 8)  # rho = (3 - 1)/(3 + 1) = 1/2
    assert abs(t.rho - 0.5) < 1e-12
    assert t.rounds_for(1e-3) == 10  # log2(1000) = 9.97
    assert t.rounds_for(0.25) == 2  # exactly 2, not rounded up
    assert t.rounds_for(0.3) == 2  # log2(1/0.3) = 1.74
    ring = topology("ring", 16)  # rho = (1 + 2 cos(pi/8))/3 = 0.9492530216
    assert ring.rounds_for(1e-3) == 133  # 6.907755 / 0.052080 = 132.6
    for eps in (0.5, 1e-2, 1e-5):
        r = ring.rounds_for(eps)
        assert ring.rho**r <= eps < ring.rho ** (r - 1)
    with pytest.raises(TopologyError, match="eps"):
        ring.rounds_for(1.5)


def test_summary_table_and_cli_text():
    t = topology("ring", 16)
    s = t.summary()
    assert set(s) == {"name", "workers", "rule", "edges", "max_degree", "rho", "spectral_gap", "a4"}
    head = ("ring", 16, "metropolis", 16, 2)
    assert (s["name"], s["workers"], s["rule"], s["edges"], s["max_degree"]) == head
    table = format_table([t, topology("complete", 16)]).splitlines()
    assert len(table) == 4 and table[0].split()[:3] == ["name", "M", "rule"]
    row = ["ring", "16", "metropolis", "16", "2", f"{t.rho:.6g}", f"{1 - t.rho:.6g}", "133"]
    assert table[2].split() == row
    text = main_topology("ring", 16)
    assert "spectral gap" in text and f"{t.rho**10:.6g}" in text
    assert "eigenvalues" in text and f"{ring_eigenvalues(16)[1]:.6g}" in text
    assert "eigenvalues" not in main_topology("torus", 100, rule="lazy", alpha=0.5)


# --------------------------------------------------------------------------- custom input


def test_from_matrix_roundtrip_dense_and_sparse():
    ring = topology("ring", 8)
    for W in (ring.W, sp.csr_matrix(ring.W), ring.W.tolist()):
        t = Topology.from_matrix(W, name="mine")
        assert np.array_equal(t.W, ring.W) and t.edges == 8 and t.name == "mine"
        assert abs(t.rho - ring.rho) < 1e-12
    # zero diagonal is allowed when the chain is aperiodic: K_3 with zero self weights
    t = Topology.from_matrix((np.ones((3, 3)) - np.eye(3)) / 2)
    assert abs(t.rho - 0.5) < 1e-12


def test_from_graph_relabels_sorted():
    t = Topology.from_graph(nx.Graph([("b", "c"), ("a", "b")]))
    assert t.name == "graph" and t.edges == 2
    assert t.W[0, 1] > 0 and t.W[1, 2] > 0 and t.W[0, 2] == 0  # a=0, b=1, c=2: a path


def test_from_edgelist(tmp_path):
    f = tmp_path / "ring5.txt"
    f.write_text("# a ring\n0 1\n1 2  # inline comment\n\n2 3\n3 4\n4 0\n")
    t = Topology.from_edgelist(f)
    assert t.name == "ring5" and t.edges == 5
    assert np.array_equal(t.W, topology("ring", 5).W)
    lazy = Topology.from_edgelist(f, rule="lazy", alpha=0.5)
    assert lazy.params == {"path": str(f), "alpha": 0.5}


@pytest.mark.parametrize("bad", ["0 x", "0 1 2", "7"])
def test_from_edgelist_malformed_line(tmp_path, bad):
    f = tmp_path / "bad.txt"
    f.write_text(f"0 1\n# comment\n{bad}\n")
    with pytest.raises(TopologyError, match="line 3") as info:
        Topology.from_edgelist(f)
    assert "bad.txt" in str(info.value)


def test_from_edgelist_missing_file(tmp_path):
    with pytest.raises(TopologyError, match="nope.txt"):
        Topology.from_edgelist(tmp_path / "nope.txt")


# --------------------------------------------------------------------------- bad input


def test_disconnected_is_rejected():
    G = nx.disjoint_union(nx.path_graph(3), nx.path_graph(2))
    with pytest.raises(TopologyError, match="disconnected.*2 connected components"):
        Topology.from_graph(G)
    W = sp.block_diag([J(2), J(3), J(1)]).toarray()
    with pytest.raises(TopologyError, match="disconnected.*3 connected components"):
        Topology.from_matrix(W)


@pytest.mark.parametrize(
    ("W", "message"),
    [
        ([[0.6, 0.5], [0.5, 0.5]], "not doubly stochastic"),
        ([[1.5, -0.5], [-0.5, 1.5]], "negative"),
        ([[0.5, 0.5, 0], [0, 0.5, 0.5], [0.5, 0, 0.5]], "not symmetric"),
        ([[0.0, 1.0], [1.0, 0.0]], "not < 1"),
        ([[0.5, 0.5]], "square"),
        ([], "square"),
        ([[np.nan, 1.0], [1.0, 0.0]], "finite"),
        ([["a", "b"], ["c", "d"]], "numeric"),
    ],
)
def test_bad_matrices(W, message):
    with pytest.raises(TopologyError, match=message):
        Topology.from_matrix(W)


def test_bad_names_rules_and_params():
    with pytest.raises(TopologyError, match="unknown topology 'moebius'") as info:
        topology("moebius", 8)
    assert all(name in str(info.value) for name in available_topologies())
    with pytest.raises(TopologyError, match="unknown weight rule.*lazy, maxdegree, metropolis"):
        topology("ring", 8, rule="uniformish")
    with pytest.raises(TopologyError, match="frobnicate"):
        topology("ring", 8, frobnicate=3)
    with pytest.raises(TopologyError, match="alpha"):
        topology("ring", 8, rule="lazy", alpha=1.0)
    with pytest.raises(TopologyError, match="base"):
        topology("ring", 8, rule="lazy", base="lazy")
    with pytest.raises(TopologyError, match="rows x cols"):
        topology("torus", 12, rows=5)
    with pytest.raises(TopologyError, match="directed"):
        Topology.from_graph(nx.DiGraph([(0, 1), (1, 0)]))


@pytest.mark.parametrize("workers", [0, -3, 2.5, True, "8", None])
def test_bad_worker_counts(workers):
    with pytest.raises(TopologyError, match="workers"):
        topology("ring", workers)


def test_builder_specific_errors():
    with pytest.raises(TopologyError, match="hypercube.*power of 2"):
        topology("hypercube", 12)
    with pytest.raises(TopologyError, match="connected") as info:
        topology("erdos_renyi", 50, p=1e-4)
    assert "100" in str(info.value) and "log(M)/M" in str(info.value)
    with pytest.raises(TopologyError, match="p must be in"):
        topology("erdos_renyi", 10, p=1.5)
    with pytest.raises(TopologyError, match="even"):
        topology("random_regular", 5, degree=3)
    with pytest.raises(TopologyError, match="'expander'.*degree must be <="):
        topology("expander", 5, degree=5)
    with pytest.raises(TopologyError, match="seed"):
        topology("ring", 8, seed=-1)


def test_one_rounds_for_eps_formula_everywhere():
    """rho = 0.7, eps = 0.49 = rho^2 needs exactly 2 rounds: the topology table, DPOSG's eps
    schedule and the C6 claim use the same function."""
    import minmaxlab as mml
    from minmaxlab.topology import rounds_for_eps

    assert rounds_for_eps(0.7, 0.49) == 2 and rounds_for_eps(0.5, 0.25) == 2
    assert rounds_for_eps(0.5, 0.2) == 3 and rounds_for_eps(0.0, 0.1) == 0
    sched = mml.DPOSG(eta=0.1, schedule="eps", eps=0.49).rounds_schedule(3, 0.7)
    assert list(sched) == [2, 2, 2]
    assert list(mml.DPOSG(eta=0.1, schedule="eps", eps=0.1).rounds_schedule(1, 0.0)) == [1]
    t = topology("torus", 16)
    assert t.rounds_for(1e-3) == rounds_for_eps(t.rho, 1e-3)
    with pytest.raises(TopologyError, match="eps"):
        rounds_for_eps(0.5, 1.5)


def test_a4_violating_rule_only_on_request():
    with pytest.raises(TopologyError, match="a4 = false"):
        topology("star", 6, rule="random_walk")
    with pytest.raises(TopologyError, match="only for the rules that break A4"):
        topology("star", 6, a4=False)
    t = topology("star", 6, rule="random_walk", a4=False)
    W = t.W
    assert t.a4 is False and np.allclose(W.sum(axis=1), 1.0)
    assert not np.allclose(W.sum(axis=0), 1.0)  # not doubly stochastic: gossip moves the average
    assert topology("ring", 6).a4 is True


# --------------------------------------------------------------------------- closed-form rho


def _formula(name, M, **p):
    """rho of the Metropolis W from the textbook spectra (not from the code's stencil)."""
    if name == "ring":
        k = np.arange(1, M)
        return np.abs(1 / 3 + 2 / 3 * np.cos(2 * np.pi * k / M)).max()
    if name == "torus":
        r, c = p["rows"], p["cols"]
        k, m = np.meshgrid(np.arange(r), np.arange(c), indexing="ij")
        lam = 1 / 5 + 2 / 5 * (np.cos(2 * np.pi * k / r) + np.cos(2 * np.pi * m / c))
        return np.abs(lam.ravel()[1:]).max()
    if name == "hypercube":
        n = M.bit_length() - 1
        return (n - 1) / (n + 1)
    if name == "star":
        return 1 - 1 / M
    if name == "complete":
        return 0.0
    raise AssertionError(name)


@pytest.mark.parametrize("name,M,params", [
    ("ring", 9, {}), ("ring", 64, {}), ("torus", 36, {"rows": 6, "cols": 6}),
    ("torus", 60, {"rows": 5, "cols": 12}), ("hypercube", 64, {}), ("star", 17, {}),
    ("complete", 12, {}),
])
def test_closed_form_rho_equals_the_textbook_spectrum_and_the_dense_solver(name, M, params):
    t = topology(name, M, **params)
    closed = t.compute_rho("closed_form")
    assert closed == pytest.approx(_formula(name, M, **params), abs=1e-13)
    assert closed == pytest.approx(t.compute_rho("dense"), abs=1e-12)


@pytest.mark.parametrize("name", ["ring", "torus", "hypercube", "star", "complete",
                                  "exponential"])
@pytest.mark.parametrize("rule,params", [("metropolis", {}), ("maxdegree", {}),
                                         ("lazy", {"alpha": 0.3}),
                                         ("lazy", {"base": "maxdegree"})])
def test_closed_form_rho_matches_dense_for_every_rule_and_size(name, rule, params):
    for M in (1, 2, 3, 4, 8, 16, 32, 48):
        if name == "hypercube" and M & (M - 1):
            continue
        t = topology(name, M, rule=rule, **params)
        closed = spectrum.structured_rho(t.structure, *t.neighbors)
        if name == "star" and M < 3:
            assert closed is None  # a star of 1 or 2 nodes: the solver's case
            continue
        assert closed is not None, (name, M, rule)
        assert closed == pytest.approx(t.compute_rho("dense"), abs=1e-12), (name, M, rule)


def test_closed_form_refuses_a_w_without_the_declared_structure():
    """Control: the same structure declared over a W whose symmetry is broken must fall back to a
    solver; a closed form that ignored the weights would report the unbroken ring's rho."""
    ring = topology("ring", 12)
    ip, ix, w = (a.copy() for a in ring.neighbors)
    # move weight 0.1 from the edge (0, 1) to the two self weights: still doubly stochastic
    for i, j in ((0, 1), (1, 0)):
        k = ip[i] + int(np.flatnonzero(ix[ip[i]: ip[i + 1]] == j)[0])
        w[k] -= 0.1
        w[ip[i] + int(np.flatnonzero(ix[ip[i]: ip[i + 1]] == i)[0])] += 0.1
    broken = Topology("ring", 12, ip, ix, w, structure=ring.structure)
    assert spectrum.structured_rho(broken.structure, *broken.neighbors) is None
    assert broken.rho == pytest.approx(broken.compute_rho("dense"), abs=1e-12)
    assert abs(broken.rho - ring.rho) > 1e-3
    with pytest.raises(TopologyError, match="no closed form"):
        broken.compute_rho("closed_form")
    star = topology("star", 10)
    ip, ix, w = (a.copy() for a in star.neighbors)
    w[ip[0] + 1] += 0.01  # one edge heavier in the centre's row only
    assert spectrum.star_rho(ip, ix, w) is None


def test_large_regular_topologies_are_built_without_networkx(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("networkx graph built")

    monkeypatch.setattr(nx.Graph, "add_edges_from", refuse)
    for name, M in (("ring", 2**18), ("torus", 2**20), ("hypercube", 2**16), ("star", 2**12),
                    ("exponential", 2**12)):
        t = topology(name, M)
        assert t.nnz == 2 * t.edges + M
        assert 0 < t.rho < 1
    M = 2**18  # a ring of 262,144: rho = 1/3 + 2/3 cos(2 pi / M), no eigensolver
    assert topology("ring", M).rho == pytest.approx(1 / 3 + 2 / 3 * np.cos(2 * np.pi / M),
                                                    abs=1e-15)
    with pytest.raises(AssertionError, match="networkx"):
        assert topology("ring", 8).graph is None  # asked for: built then (and refused here)


def test_walsh_hadamard_against_the_hadamard_matrix():
    from scipy.linalg import hadamard

    x = np.random.default_rng(0).standard_normal(16)
    assert np.allclose(spectrum.walsh_hadamard(x), hadamard(16) @ x)
