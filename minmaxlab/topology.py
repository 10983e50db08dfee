"""Communication topologies: graphs, mixing matrices W and their spectra (assumption A4).

A4 asks for an M x M mixing matrix W that is symmetric, doubly stochastic, nonnegative, positive
only on graph edges and the diagonal, with rho = ||W - J||_2 < 1 where J = (1/M) 1 1^T. ``rho`` is
the second largest eigenvalue magnitude of W and ``1 - rho`` the spectral gap; t gossip rounds
multiply by W^t, whose rho is rho^t.

:class:`Topology` stores W in CSR form (rows = workers, the diagonal always stored) so that numba
kernels can mix with ``indptr, indices, weights = topo.neighbors``. Graphs are built from
their edge list (:class:`EdgeList`) with numpy, never as a dense M x M matrix nor, for the
regular families, as a networkx graph; ``.W`` and ``.graph`` are made on demand. ``rho`` comes
in closed form where a builder declared a symmetry (:mod:`minmaxlab.spectrum`). Entry points:

* :func:`topology` -- a named builder (``BUILDERS``) plus a weight rule (``WEIGHT_RULES``);
* :meth:`Topology.from_graph`, :meth:`Topology.from_matrix`, :meth:`Topology.from_edgelist`;
* :func:`one_peer_exponential` / :class:`TimeVarying` -- a time-varying one-peer sequence;
* :func:`rounds_for_eps` -- the gossip rounds t with rho^t <= eps, the one formula the toolkit uses.

Negative controls need matrices that break A4 on purpose: ``topology(..., rule="random_walk",
a4=False)`` gives the row-stochastic random-walk matrix W = (D + I)^{-1} (A + I), which is not
doubly stochastic on an irregular graph (gossip then moves the network average). Without
``a4=False`` such a rule is an error; with it, :meth:`Topology.check` is skipped and
``Topology.a4`` is False.

Every bad input raises :class:`~minmaxlab.errors.TopologyError`.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

import networkx as nx
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import ArpackError

from minmaxlab.buffers import nbytes_of
from minmaxlab.errors import TopologyError, did_you_mean
from minmaxlab.spectrum import RHO_ZERO, rho_dense, rho_sparse, structured_rho

__all__ = [
    "BUILDERS",
    "EdgeList",
    "WEIGHT_RULES",
    "TimeVarying",
    "Topology",
    "available_rules",
    "available_topologies",
    "complete_graph",
    "erdos_renyi_graph",
    "expander_graph",
    "exponential_graph",
    "format_table",
    "hypercube_graph",
    "lazy_weights",
    "main_topology",
    "maxdegree_weights",
    "metropolis_weights",
    "one_peer_exponential",
    "path_graph",
    "random_regular_graph",
    "random_walk_weights",
    "ring_graph",
    "rounds_for_eps",
    "star_graph",
    "topology",
    "torus_graph",
]

#: Largest M for which ``rho`` uses a dense symmetric eigensolver.
DENSE_RHO_MAX = 2048
#: Largest M for which dense eigenvalues (``.eigenvalues``, ``rho_of_power``) are computed.
DENSE_EIG_MAX = 4096
#: Tolerance of the A4 checks for matrices built by this module.
BUILD_TOL = 1e-12



# --------------------------------------------------------------------------- small validators


def rounds_for_eps(rho: float, eps: float) -> int:
    """Gossip rounds t with rho^t <= eps: ceil(log(1/eps) / log(1/rho)); 0 when rho counts as 0.

    The toolkit's only copy of this formula (DPOSG's ``schedule="eps"``, the rounds column of the
    topology table and the C6 claim use it). rho <= 1e-12 counts as 0 (W = J up to rounding, e.g.
    the complete graph), and a relative slack of 1e-9 keeps exact powers from rounding up
    (rho = 0.7, eps = 0.49 -> 2; rho = 1/2, eps = 1/4 -> 2).
    """
    eps = _as_float(eps, "eps")
    if not 0.0 < eps < 1.0:
        raise TopologyError(f"eps must be in (0, 1), got {eps}")
    rho = _as_float(rho, "rho")
    if rho <= RHO_ZERO:
        return 0
    if rho >= 1.0:
        raise TopologyError(f"rho = {rho:.6g} >= 1: gossip does not contract, no t reaches eps")
    return max(0, math.ceil(math.log(1.0 / eps) / math.log(1.0 / rho) * (1.0 - 1e-9)))


def _as_int(value, what: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TopologyError(f"{what} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise TopologyError(f"{what} must be >= {minimum}, got {value}")
    return value


def _check_workers(workers, name: str) -> int:
    return _as_int(workers, f"topology '{name}': workers", minimum=1)


def _as_float(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TopologyError(f"{what} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise TopologyError(f"{what} must be finite, got {value}")
    return value


def _keyword_names(fn: Callable) -> list[str]:
    """Keyword-only parameter names of a builder or weight rule."""
    return [
        p.name
        for p in inspect.signature(fn).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]


def _graph_from_edges(workers: int, u: np.ndarray, v: np.ndarray) -> nx.Graph:
    G = nx.Graph()
    G.add_nodes_from(range(workers))
    G.add_edges_from(zip(u.tolist(), v.tolist(), strict=True))
    G.remove_edges_from(list(nx.selfloop_edges(G)))
    return G


def _unique_pairs(workers: int, u, v) -> tuple[np.ndarray, np.ndarray]:
    """Undirected edges as sorted unique pairs (u < v), self loops and repeats dropped."""
    u, v = np.asarray(u, dtype=np.int64), np.asarray(v, dtype=np.int64)
    keep = u != v
    lo, hi = np.minimum(u[keep], v[keep]), np.maximum(u[keep], v[keep])
    keys = np.sort(lo * workers + hi)  # np.unique hashes: 20x slower on a million edges
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys
    return keys // workers, keys % workers


class EdgeList(NamedTuple):
    """A graph on nodes 0..workers-1 as arrays of edge ends (a builder's output). ``params``: the
    builder's resolved parameters; ``structure``: the symmetry that gives rho in closed form
    (see :mod:`minmaxlab.spectrum`), or None."""

    workers: int
    u: np.ndarray
    v: np.ndarray
    params: dict = {}
    structure: dict | None = None

    def to_networkx(self) -> nx.Graph:
        return _graph_from_edges(self.workers, self.u, self.v)

    @classmethod
    def of(cls, G: nx.Graph, params: dict | None = None) -> EdgeList:
        """The edges of a networkx graph on nodes 0..M-1."""
        u, v = _edges_of(G)
        return cls(G.number_of_nodes(), u, v, dict(params or {}))


def _edges_of(G: nx.Graph) -> tuple[np.ndarray, np.ndarray]:
    """Undirected edges (u < v, no self loops) of a graph on nodes 0..M-1, as int64 arrays."""
    m = G.number_of_edges()
    flat = np.fromiter((x for a, b in G.edges() for x in (a, b)), dtype=np.int64, count=2 * m)
    e = flat.reshape(m, 2)
    e = e[e[:, 0] != e[:, 1]]
    return np.minimum(e[:, 0], e[:, 1]), np.maximum(e[:, 0], e[:, 1])


def _assemble(workers, rows, cols, vals):
    """CSR arrays (sorted columns within each row) from coordinate triples."""
    order = np.argsort(rows * workers + cols, kind="stable")  # one key: 3x faster than lexsort
    counts = np.bincount(rows, minlength=workers)
    indptr = np.zeros(workers + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr, cols[order].astype(np.int64), vals[order].astype(np.float64)


def _assemble_symmetric(workers, u, v, w, diag):
    ar = np.arange(workers, dtype=np.int64)
    return _assemble(
        workers,
        np.concatenate([u, v, ar]),
        np.concatenate([v, u, ar]),
        np.concatenate([w, w, diag]),
    )


# --------------------------------------------------------------------------- weight rules


def metropolis_weights(u, v, degrees):
    """Metropolis-Hastings: W_ij = 1 / (1 + max(d_i, d_j)) on edges, W_ii = 1 - sum_j W_ij."""
    w = 1.0 / (1.0 + np.maximum(degrees[u], degrees[v]))
    return w, _diagonal(len(degrees), u, v, w)


def maxdegree_weights(u, v, degrees):
    """Uniform max-degree: W_ij = 1 / (1 + d_max) on edges, W_ii = 1 - d_i / (1 + d_max)."""
    dmax = int(degrees.max()) if len(degrees) else 0
    w = np.full(len(u), 1.0 / (1.0 + dmax))
    return w, _diagonal(len(degrees), u, v, w)


def lazy_weights(u, v, degrees, *, alpha=0.5, base="metropolis"):
    """Lazy rule: alpha I + (1 - alpha) W_base, alpha in [0, 1), base 'metropolis' or 'maxdegree'.

    Eigenvalues move to alpha + (1 - alpha) lambda, so every eigenvalue is >= 2 alpha - 1.
    """
    alpha = _as_float(alpha, "rule 'lazy': alpha")
    if not 0.0 <= alpha < 1.0:
        raise TopologyError(f"rule 'lazy': alpha must be in [0, 1), got {alpha}")
    bases = sorted(k for k in WEIGHT_RULES if k != "lazy")
    if base not in bases:
        raise TopologyError(f"rule 'lazy': base must be one of {', '.join(bases)}, got {base!r}")
    w, diag = WEIGHT_RULES[base](u, v, degrees)
    return (1.0 - alpha) * w, alpha + (1.0 - alpha) * diag


def _diagonal(workers, u, v, w):
    off = np.bincount(u, weights=w, minlength=workers) + np.bincount(
        v, weights=w, minlength=workers
    )
    return 1.0 - off


def random_walk_weights(u, v, degrees):
    """Random walk with self loops: W_ij = 1 / (1 + d_i) for j = i and every neighbour j of i.

    Row-stochastic but not column-stochastic unless the graph is regular: it violates A4 (gossip
    no longer preserves the network average). Returns (rows, cols, values) of every entry; build
    it with ``topology(name, M, rule="random_walk", a4=False)``, for negative controls only.
    """
    M = len(degrees)
    diag = np.arange(M, dtype=np.int64)
    rows = np.concatenate([u, v, diag])
    cols = np.concatenate([v, u, diag])
    return rows, cols, 1.0 / (1.0 + degrees[rows])


#: Rules whose W breaks A4 on purpose (negative controls): ``fn(u, v, degrees) -> (rows, cols,
#: values)``; :func:`topology` builds them only with ``a4=False``.
VIOLATING_RULES: dict[str, Callable] = {"random_walk": random_walk_weights}

#: Weight rules by name: ``fn(u, v, degrees, **params) -> (edge_weights, diagonal)``.
WEIGHT_RULES: dict[str, Callable] = {
    "metropolis": metropolis_weights,
    "maxdegree": maxdegree_weights,
    "lazy": lazy_weights,
}


def available_rules() -> list[str]:
    """Names accepted by ``rule=`` (those of ``VIOLATING_RULES`` need ``a4=False``)."""
    return sorted([*WEIGHT_RULES, *VIOLATING_RULES])


def _rule(rule) -> Callable:
    if not isinstance(rule, str) or rule not in WEIGHT_RULES:
        raise TopologyError(
            f"unknown weight rule {rule!r}{did_you_mean(rule, WEIGHT_RULES)}; allowed rules: "
            f"{', '.join(available_rules())}"
        )
    return WEIGHT_RULES[rule]


# --------------------------------------------------------------------------- Topology


class Topology:
    """A communication graph with its mixing matrix W (A4), stored in CSR form.

    Attributes: ``name``, ``workers`` (M), ``params`` (builder / rule parameters), ``rule`` (weight
    rule name), ``graph`` (networkx graph on nodes 0..M-1, built when first asked for: a million
    nodes cost seconds and a gigabyte in networkx), ``indptr``/``indices``/``weights`` (read-only
    CSR arrays, diagonal included in every row), ``symmetric_required``, ``tol``, ``structure``
    (the symmetry a builder declared, which gives rho in closed form; None otherwise).

    ``edges`` (two arrays of edge ends) gives the graph without networkx; without it and without
    ``graph`` the edges are read from W's off-diagonal entries. ``structure`` declares a symmetry
    that gives rho in closed form (checked against W before it is used, see
    :mod:`minmaxlab.spectrum`).

    ``symmetric_required=False`` marks one round of a time-varying sequence (see
    :func:`one_peer_exponential`): W must still be nonnegative, doubly stochastic and supported on
    graph edges, but need not be symmetric, connected or have rho < 1 -- only the product over a
    period has to contract.
    """

    def __init__(
        self,
        name: str,
        workers: int,
        indptr,
        indices,
        weights,
        graph: nx.Graph | None = None,
        *,
        rule: str = "custom",
        params: dict | None = None,
        tol: float = BUILD_TOL,
        symmetric_required: bool = True,
        a4: bool = True,
        edges: tuple[np.ndarray, np.ndarray] | None = None,
        structure: dict | None = None,
    ):
        self._name = str(name)
        self._workers = _check_workers(workers, self._name)
        self._rule = str(rule)
        self._params = dict(params or {})
        self._tol = float(tol)
        self._symmetric_required = bool(symmetric_required) and bool(a4)
        self._a4 = bool(a4)
        M = self._workers
        try:
            arrays = [
                np.array(indptr, dtype=np.int64),
                np.array(indices, dtype=np.int64),
                np.array(weights, dtype=np.float64),
            ]
        except (TypeError, ValueError) as exc:
            raise TopologyError(
                f"topology '{self._name}': malformed neighbour arrays: {exc}"
            ) from None
        self._check_layout(*arrays)
        for a in arrays:
            a.flags.writeable = False
        self._indptr, self._indices, self._weights = arrays
        # a graph given beside W must be checked to hold W's support; edges W was built from, or
        # read from W itself, hold it by construction
        self._graph = None if graph is None else self._check_graph(graph)
        self._graph_given = graph is not None
        if graph is not None:
            self._eu, self._ev = _edges_of(self._graph)
        else:
            if edges is None:
                rows = self._row_of_entries()
                off = (rows != self._indices) & (self._weights != 0)
                edges = (rows[off], self._indices[off])
            self._eu, self._ev = _unique_pairs(M, *edges)
        self._structure = None if structure is None else dict(structure)
        self._cache: dict = {}
        if self._a4:
            self.check()
        elif not np.all(np.isfinite(self._weights)) or np.any(self._weights < 0):
            raise TopologyError(f"{self._where()}: W must be finite and nonnegative")

    # -- read-only attributes
    name = property(lambda self: self._name, doc="Topology name, e.g. 'ring'.")
    workers = property(lambda self: self._workers, doc="Number of workers M.")
    rule = property(lambda self: self._rule, doc="Weight rule name.")
    params = property(lambda self: dict(self._params), doc="Builder / rule parameters (a copy).")
    structure = property(lambda self: self._structure, doc="Declared symmetry (or None).")

    @property
    def graph(self) -> nx.Graph:
        """networkx graph on nodes 0..M-1 (built on first use, then cached)."""
        if self._graph is None:
            self._graph = _graph_from_edges(self._workers, self._eu, self._ev)
        return self._graph
    indptr = property(lambda self: self._indptr, doc="CSR row pointer, int64, length M + 1.")
    indices = property(lambda self: self._indices, doc="CSR column indices, int64, length nnz.")
    weights = property(lambda self: self._weights, doc="CSR weights, float64, length nnz.")
    tol = property(lambda self: self._tol, doc="Tolerance of the A4 checks.")
    symmetric_required = property(lambda self: self._symmetric_required)
    a4 = property(lambda self: self._a4, doc="False for a matrix built to violate A4 (controls).")

    @property
    def neighbors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(indptr, indices, weights)``: row i mixes sum_k weights[k] * x[indices[k]]."""
        return self._indptr, self._indices, self._weights

    def _row_of_entries(self) -> np.ndarray:
        """The row of every stored entry (made when needed, not kept: 8 bytes per entry)."""
        return np.repeat(np.arange(self._workers, dtype=np.int64), np.diff(self._indptr))

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays the topology holds: W in CSR form, the edge list, and what it has
        cached (scipy's copy of W, a dense W, eigenvalues), each buffer counted once."""
        held = [self._indptr, self._indices, self._weights, self._eu, self._ev]
        for v in self._cache.values():
            held += [v.data, v.indices, v.indptr] if sp.issparse(v) else [v]
        return nbytes_of(held)

    @property
    def nnz(self) -> int:
        """Stored entries of W (2 * edges + M for symmetric topologies)."""
        return len(self._weights)

    def _where(self) -> str:
        return f"topology '{self._name}' (M={self._workers})"

    def _check_layout(self, indptr, indices, weights) -> None:
        M = self._workers
        bad = None
        if indptr.ndim != 1 or len(indptr) != M + 1:
            bad = f"indptr must have length M + 1 = {M + 1}"
        elif indptr[0] != 0 or np.any(np.diff(indptr) < 0):
            bad = "indptr must start at 0 and be nondecreasing"
        elif (
            indices.ndim != 1 or weights.ndim != 1 or not len(indices) == len(weights) == indptr[-1]
        ):
            bad = "indices and weights must both have length indptr[-1]"
        elif len(indices) and (indices.min() < 0 or indices.max() >= M):
            bad = f"column indices must lie in 0..{M - 1}"
        else:
            rows = np.repeat(np.arange(M), np.diff(indptr))
            key = rows * M + indices
            if np.any(np.diff(key) <= 0):
                bad = "columns must be strictly increasing within each row"
            elif np.count_nonzero(rows == indices) != M:
                bad = "every row must store its diagonal entry (the self weight)"
        if bad:
            raise TopologyError(f"{self._where()}: malformed neighbour arrays: {bad}")

    def _check_graph(self, graph) -> nx.Graph:
        if not isinstance(graph, nx.Graph) or graph.is_directed():
            raise TopologyError(f"{self._where()}: graph must be an undirected networkx graph")
        if set(graph.nodes()) != set(range(self._workers)):
            raise TopologyError(
                f"{self._where()}: graph nodes must be exactly 0..{self._workers - 1}"
            )
        return graph

    # -- dense / sparse views

    @property
    def csr(self) -> sp.csr_matrix:
        """W as a scipy CSR matrix (shares the read-only arrays)."""
        if "csr" not in self._cache:
            M = self._workers
            self._cache["csr"] = sp.csr_matrix(
                (self._weights, self._indices, self._indptr), shape=(M, M)
            )
        return self._cache["csr"]

    @property
    def W(self) -> np.ndarray:
        """Dense M x M mixing matrix, built on demand (read-only, cached)."""
        if "W" not in self._cache:
            M = self._workers
            W = np.zeros((M, M))
            W[self._row_of_entries(), self._indices] = self._weights
            W.flags.writeable = False
            self._cache["W"] = W
        return self._cache["W"]

    @property
    def degrees(self) -> np.ndarray:
        """Graph degree of every worker (self loops excluded)."""
        return np.bincount(np.concatenate([self._eu, self._ev]), minlength=self._workers)

    @property
    def max_degree(self) -> int:
        return int(self.degrees.max())

    @property
    def edges(self) -> int:
        """Number of undirected edges."""
        return len(self._eu)

    # -- A4 check

    def check(self) -> None:
        """Validate A4; raise TopologyError naming the first property that fails."""
        M, tol, where = self._workers, self._tol, self._where()
        rows, cols, w = self._row_of_entries(), self._indices, self._weights
        if not np.all(np.isfinite(w)):
            k = int(np.flatnonzero(~np.isfinite(w))[0])
            raise TopologyError(f"{where}: W[{rows[k]}, {cols[k]}] = {w[k]} is not finite")
        if np.any(w < 0):
            k = int(np.argmin(w))
            raise TopologyError(
                f"{where}: negative weight W[{rows[k]}, {cols[k]}] = {w[k]:.6g} "
                "(A4 needs a nonnegative W)"
            )
        off = (rows != cols) & (w > 0)
        if np.any(off) and self._graph_given:
            keys = rows[off] * M + cols[off]
            edge_keys = np.concatenate([self._eu * M + self._ev, self._ev * M + self._eu])
            outside = ~np.isin(keys, edge_keys)
            if np.any(outside):
                k = int(np.flatnonzero(off)[np.flatnonzero(outside)[0]])
                raise TopologyError(
                    f"{where}: W[{rows[k]}, {cols[k]}] = {w[k]:.6g} > 0 but ({rows[k]}, {cols[k]}) "
                    "is not a graph edge (W must be supported on edges and the diagonal)"
                )
        # scipy's own copy, not cached: its int32 indices would stay with the topology (at a
        # million nodes, 24 MB) while the run needs only the arrays above
        A = sp.csr_matrix((w, cols, self._indptr), shape=(M, M))
        if self._symmetric_required:
            D = sp.coo_matrix(A - A.T)
            if D.nnz and np.abs(D.data).max() > tol:
                k = int(np.argmax(np.abs(D.data)))
                i, j = int(D.row[k]), int(D.col[k])
                raise TopologyError(
                    f"{where}: W is not symmetric: W[{i}, {j}] - W[{j}, {i}] = {D.data[k]:.3g}"
                )
        for axis, label in ((1, "row"), (0, "column")):
            sums = np.asarray(A.sum(axis=axis)).ravel()
            k = int(np.argmax(np.abs(sums - 1.0)))
            if abs(sums[k] - 1.0) > tol:
                raise TopologyError(
                    f"{where}: W is not doubly stochastic: worst {label} sum is "
                    f"{sums[k]:.15g} ({label} {k}), tolerance {tol:g}"
                )
        if not self._symmetric_required:
            return
        support = sp.csr_matrix((np.ones(np.count_nonzero(off)), (rows[off], cols[off])), (M, M))
        n_comp, _ = connected_components(support, directed=True, connection="weak")
        if n_comp > 1:
            raise TopologyError(
                f"{where}: the graph of W is disconnected ({n_comp} connected components); "
                "A4 needs a connected graph"
            )
        # Connected + symmetric + one positive self weight => primitive => rho < 1.
        if M > 1 and not np.any(A.diagonal() > 0) and self.rho >= 1.0 - tol:
            raise TopologyError(
                f"{where}: rho = ||W - J||_2 = {self.rho:.12g} is not < 1 (a periodic chain: "
                "bipartite graph without self weights); add self weights, e.g. rule='lazy'"
            )

    # -- spectra

    def compute_rho(self, method: str = "auto") -> float:
        """||W - J||_2 by 'closed_form' (the declared structure, see :mod:`minmaxlab.spectrum`),
        'dense' or 'sparse' (ARPACK) computation; 'auto' takes the closed form where W has it,
        else picks by size."""
        if method in ("auto", "closed_form"):
            rho = structured_rho(self._structure, *self.neighbors)
            if rho is not None:
                return rho
            if method == "closed_form":
                raise TopologyError(f"{self._where()}: no closed form for rho (structure "
                                    f"{self._structure!r} absent or not matched by W)")
            method = "dense" if self._workers <= DENSE_RHO_MAX else "sparse"
        sym = self._symmetric_required
        try:
            if method == "dense":
                return rho_dense(self.W, sym)
            if method == "sparse":
                return rho_sparse(self.csr, sym)
        except (ArpackError, RuntimeError) as exc:
            raise TopologyError(f"{self._where()}: could not compute rho: {exc}") from None
        raise TopologyError(f"unknown rho method {method!r}; use 'auto', 'closed_form', 'dense' or "
                            "'sparse'")

    @property
    def rho(self) -> float:
        """rho = ||W - J||_2 (second largest eigenvalue magnitude of a symmetric W); cached."""
        if "rho" not in self._cache:
            self._cache["rho"] = max(self.compute_rho(), 0.0)
        return self._cache["rho"]

    @property
    def spectral_gap(self) -> float:
        return 1.0 - self.rho

    def rho_power(self, t: int) -> float:
        """rho**t, which equals ||W^t - J||_2 for symmetric W (an upper bound otherwise)."""
        t = _as_int(t, "t", minimum=0)
        return self.rho**t

    def _dense_guard(self, what: str) -> None:
        if self._workers > DENSE_EIG_MAX:
            raise TopologyError(
                f"{self._where()}: too large for dense {what} (M > {DENSE_EIG_MAX}); "
                "use .rho, which has a sparse solver"
            )

    def rho_of_power(self, t: int) -> float:
        """||W^t - J||_2 computed numerically from the dense W^t (for testing; M <= 4096)."""
        t = _as_int(t, "t", minimum=0)
        self._dense_guard("powers of W")
        return rho_dense(np.linalg.matrix_power(self.W, t), self._symmetric_required)

    @property
    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues of W sorted descending (dense eigvalsh; symmetric W, M <= 4096)."""
        self._dense_guard("eigenvalues")
        if not self._symmetric_required:
            raise TopologyError(f"{self._where()}: eigenvalues need a symmetric W")
        if "eig" not in self._cache:
            ev = np.linalg.eigvalsh(self.W)[::-1].copy()
            ev.flags.writeable = False
            self._cache["eig"] = ev
        return self._cache["eig"]

    # -- use

    def mix(self, Y, t: int = 1) -> np.ndarray:
        """Return W^t Y (Y of shape (M,) or (M, d)) using the sparse form."""
        t = _as_int(t, "t", minimum=0)
        try:
            out = np.array(Y, dtype=np.float64)
        except (TypeError, ValueError):
            raise TopologyError(f"{self._where()}: mix needs a numeric array") from None
        if out.ndim not in (1, 2) or out.shape[0] != self._workers:
            raise TopologyError(
                f"{self._where()}: mix needs shape ({self._workers},) or ({self._workers}, d), "
                f"got {out.shape}"
            )
        for _ in range(t):
            out = self.csr @ out
        return np.asarray(out)

    def rounds_for(self, eps: float) -> int:
        """Gossip rounds t with rho^t <= eps: ceil(log(1/eps) / log(1/rho)) (0 if rho == 0).

        rho <= 1e-12 counts as 0 (W = J up to rounding, e.g. the complete graph), and a relative
        slack of 1e-9 keeps exact powers (rho = 1/2, eps = 1/4 -> 2) from rounding up.
        """
        try:
            return rounds_for_eps(self.rho, eps)
        except TopologyError as exc:
            raise TopologyError(f"{self._where()}: {exc}") from None

    def summary(self) -> dict:
        """Name, workers, rule, edges, max_degree, rho, spectral_gap and a4 as a plain dict."""
        return {
            "name": self._name,
            "workers": self._workers,
            "rule": self._rule,
            "edges": self.edges,
            "max_degree": self.max_degree,
            "rho": self.rho,
            "spectral_gap": self.spectral_gap,
            "a4": self._a4,
        }

    def __repr__(self) -> str:
        return (
            f"Topology(name={self._name!r}, workers={self._workers}, rule={self._rule!r}, "
            f"edges={self.edges})"
        )

    # -- constructors

    @classmethod
    def from_matrix(cls, W, name: str = "custom", tol: float = 1e-10) -> Topology:
        """A topology from a given mixing matrix (dense array-like or scipy sparse)."""
        name = str(name)
        tol = _as_float(tol, f"topology '{name}': tol")
        if sp.issparse(W):
            try:
                A = sp.csr_matrix(W, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise TopologyError(f"topology '{name}': W must be numeric: {exc}") from None
            shape = A.shape
        else:
            try:
                A = np.asarray(W, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise TopologyError(
                    f"topology '{name}': W must be a numeric array: {exc}"
                ) from None
            shape = A.shape
        if len(shape) != 2 or shape[0] != shape[1] or shape[0] == 0:
            raise TopologyError(
                f"topology '{name}': W must be a nonempty square matrix, got {shape}"
            )
        M = shape[0]
        if sp.issparse(A):
            A.sum_duplicates()
            A.eliminate_zeros()
            A = sp.coo_matrix(A)
            rows, cols, vals = A.row.astype(np.int64), A.col.astype(np.int64), A.data
        else:
            rows, cols = np.nonzero(A != 0)
            vals = A[rows, cols]
        if not np.all(np.isfinite(vals)):
            k = int(np.flatnonzero(~np.isfinite(vals))[0])
            raise TopologyError(
                f"topology '{name}': W[{rows[k]}, {cols[k]}] = {vals[k]} is not finite"
            )
        missing = np.setdiff1d(np.arange(M), rows[rows == cols])  # zero diagonal entries
        indptr, indices, weights = _assemble(
            M,
            np.concatenate([rows, missing]).astype(np.int64),
            np.concatenate([cols, missing]).astype(np.int64),
            np.concatenate([vals, np.zeros(len(missing))]),
        )
        return cls(name, M, indptr, indices, weights, None, rule="given", params={}, tol=tol)

    @classmethod
    def from_graph(
        cls, G: nx.Graph, rule: str = "metropolis", name: str | None = None, **rule_params
    ) -> Topology:
        """A topology on a networkx graph (nodes relabelled 0..M-1 in sorted order; self loops
        dropped) with the weights of ``rule``."""
        label = name or (getattr(G, "name", "") if isinstance(G, nx.Graph) else "") or "graph"
        if not isinstance(G, nx.Graph):
            raise TopologyError(f"topology '{label}': expected a networkx graph, got {type(G)!r}")
        if G.is_directed():
            raise TopologyError(
                f"topology '{label}': directed graphs are not supported (A4 needs a symmetric W); "
                "pass G.to_undirected()"
            )
        if G.number_of_nodes() == 0:
            raise TopologyError(f"topology '{label}': the graph has no nodes")
        return _build(EdgeList.of(_relabel(G)), label, rule, rule_params, dict(rule_params))

    @classmethod
    def from_edgelist(cls, path, rule: str = "metropolis", name: str | None = None, **rule_params):
        """A topology from a text file of ``i j`` lines (integer node ids; ``#`` starts a comment).

        A line ``i i`` declares node i without an edge.
        """
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise TopologyError(f"edge list {str(path)!r}: cannot read file: {exc}") from None
        G = nx.Graph()
        for lineno, raw in enumerate(text.splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            try:
                if len(parts) != 2:
                    raise ValueError
                a, b = int(parts[0]), int(parts[1])
            except ValueError:
                raise TopologyError(
                    f"edge list {str(path)!r}, line {lineno}: expected two integer node ids "
                    f"'i j', got {raw.strip()!r}"
                ) from None
            G.add_node(a)
            G.add_node(b)
            if a != b:
                G.add_edge(a, b)
        if G.number_of_nodes() == 0:
            raise TopologyError(f"edge list {str(path)!r}: no edges found")
        params = {"path": str(path), **rule_params}
        return _build(EdgeList.of(_relabel(G)), name or path.stem, rule, rule_params, params)


def _relabel(G: nx.Graph) -> nx.Graph:
    """Copy of G on nodes 0..M-1 (sorted labels when orderable), without self loops."""
    nodes = list(G.nodes())
    try:
        nodes = sorted(nodes)
    except TypeError:
        pass  # unorderable labels: keep insertion order
    index = {node: i for i, node in enumerate(nodes)}
    H = nx.Graph()
    H.add_nodes_from(range(len(nodes)))
    H.add_edges_from((index[a], index[b]) for a, b in G.edges() if a != b)
    return H


def _build(edges: EdgeList, name: str, rule, rule_params: dict, params: dict) -> Topology:
    """Weights of ``rule`` on a graph's edges, assembled directly in CSR form."""
    fn = _rule(rule)
    unknown = set(rule_params) - set(_keyword_names(fn))
    if unknown:
        accepted = ", ".join(_keyword_names(fn)) or "none"
        raise TopologyError(
            f"topology '{name}': unknown parameter(s) {', '.join(sorted(unknown))} for rule "
            f"'{rule}' (accepted: {accepted})"
        )
    M = edges.workers
    u, v = _unique_pairs(M, edges.u, edges.v)
    degrees = np.bincount(np.concatenate([u, v]), minlength=M)
    w, diag = fn(u, v, degrees, **rule_params)
    indptr, indices, weights = _assemble_symmetric(M, u, v, w, diag)
    return Topology(name, M, indptr, indices, weights, rule=rule, params=params, edges=(u, v),
                    structure=edges.structure)


# --------------------------------------------------------------------------- graph builders


def ring_graph(workers: int, seed: int = 0) -> EdgeList:
    """Cycle C_M (M = 1: one node, M = 2: one edge). Spectral gap ~ 1/M^2; circulant."""
    M = _check_workers(workers, "ring")
    u = np.arange(M, dtype=np.int64)
    return EdgeList(M, u, (u + 1) % M, {}, {"kind": "circulant", "shape": [M]})


def path_graph(workers: int, seed: int = 0) -> EdgeList:
    """Path P_M. Spectral gap ~ 1/M^2."""
    M = _check_workers(workers, "path")
    u = np.arange(M - 1, dtype=np.int64)
    return EdgeList(M, u, u + 1)


def _square_factor(M: int) -> int:
    r = math.isqrt(M)
    while M % r:
        r -= 1
    return r


def torus_graph(workers: int, seed: int = 0, *, rows=None, cols=None) -> EdgeList:
    """2-D torus rows x cols (default: the most square factorization; prime M gives a ring).
    Spectral gap ~ 1/M for a square torus; circulant on Z_rows x Z_cols."""
    M = _check_workers(workers, "torus")
    if rows is None and cols is None:
        rows = _square_factor(M)
    if rows is not None:
        rows = _as_int(rows, "topology 'torus': rows", minimum=1)
    if cols is not None:
        cols = _as_int(cols, "topology 'torus': cols", minimum=1)
    if rows is None:
        rows = M // cols
    if cols is None:
        cols = M // rows
    if rows * cols != M:
        raise TopologyError(f"topology 'torus': rows x cols = {rows} x {cols} != workers = {M}")
    node = np.arange(M, dtype=np.int64)
    r, c = node // cols, node % cols
    u = np.concatenate([node, node])
    v = np.concatenate([r * cols + (c + 1) % cols, ((r + 1) % rows) * cols + c])
    return EdgeList(M, u, v, {"rows": rows, "cols": cols},
                    {"kind": "circulant", "shape": [rows, cols]})


def complete_graph(workers: int, seed: int = 0) -> EdgeList:
    """Complete graph K_M; with Metropolis weights W = J, so rho = 0 (spectral gap 1)."""
    M = _check_workers(workers, "complete")
    u, v = np.triu_indices(M, 1)
    return EdgeList(M, u.astype(np.int64), v.astype(np.int64), {},
                    {"kind": "circulant", "shape": [M]})


def star_graph(workers: int, seed: int = 0) -> EdgeList:
    """Star: node 0 joined to every other node. Spectral gap ~ 1/M with Metropolis weights."""
    M = _check_workers(workers, "star")
    leaves = np.arange(1, M, dtype=np.int64)
    return EdgeList(M, np.zeros(M - 1, dtype=np.int64), leaves, {}, {"kind": "star"})


def hypercube_graph(workers: int, seed: int = 0) -> EdgeList:
    """Hypercube Q_n, M = 2^n (i ~ i xor 2^b). Metropolis eigenvalues (1 + n - 2k)/(n + 1),
    so rho = (n - 1)/(n + 1): spectral gap 2/(1 + log2 M) ~ 1/log M."""
    M = _check_workers(workers, "hypercube")
    if M & (M - 1):
        raise TopologyError(f"topology 'hypercube': workers must be a power of 2, got {M}")
    n = M.bit_length() - 1
    node = np.arange(M, dtype=np.int64)
    us = [node[(node >> b) & 1 == 0] for b in range(n)]
    vs = [x | (1 << b) for b, x in enumerate(us)]
    u, v = (np.concatenate(x) if x else np.zeros(0, np.int64) for x in (us, vs))
    return EdgeList(M, u, v, {"dimension": n}, {"kind": "xor"})


def exponential_graph(workers: int, seed: int = 0) -> EdgeList:
    """Static exponential graph: i ~ i +- 2^k mod M, k = 0..floor(log2(M - 1)).
    Degree ~ 2 log2 M; spectral gap ~ 1/log M; circulant."""
    M = _check_workers(workers, "exponential")
    node = np.arange(M, dtype=np.int64)
    ks = range((M - 1).bit_length()) if M > 1 else range(0)  # 2^k <= M - 1
    u = np.concatenate([node for _ in ks]) if M > 1 else np.zeros(0, np.int64)
    v = np.concatenate([(node + (1 << k)) % M for k in ks]) if M > 1 else np.zeros(0, np.int64)
    return EdgeList(M, u, v, {}, {"kind": "circulant", "shape": [M]})


def _redraw_connected(draw: Callable, seed: int, max_tries, what: str, hint: str) -> nx.Graph:
    max_tries = _as_int(max_tries, f"{what}: max_tries", minimum=1)
    for attempt in range(max_tries):
        attempt_seed = int(np.random.SeedSequence([seed, attempt]).generate_state(1)[0])
        G = draw(attempt_seed)
        if nx.is_connected(G):
            G.graph["params"] = {"seed": seed, "attempt": attempt}
            return G
    raise TopologyError(f"{what}: no connected graph in {max_tries} draws (max_tries); {hint}")


def erdos_renyi_graph(workers: int, seed: int = 0, *, p=None, max_tries=100) -> EdgeList:
    """Erdos-Renyi G(M, p), redrawn with derived seeds until connected (at most max_tries).
    Default p = min(1, 2 ln M / M). Spectral gap ~ constant when p >> log(M)/M."""
    M = _check_workers(workers, "erdos_renyi")
    seed = _as_int(seed, "topology 'erdos_renyi': seed", minimum=0)
    if p is None:
        p = min(1.0, 2.0 * math.log(M) / M) if M > 1 else 1.0
    p = _as_float(p, "topology 'erdos_renyi': p")
    if not 0.0 < p <= 1.0:
        raise TopologyError(f"topology 'erdos_renyi': p must be in (0, 1], got {p}")
    if M == 1:
        return EdgeList(1, np.zeros(0, np.int64), np.zeros(0, np.int64), {"p": p})
    G = _redraw_connected(
        lambda s: nx.fast_gnp_random_graph(M, p, seed=s),
        seed,
        max_tries,
        f"topology 'erdos_renyi' (M={M}, p={p:g})",
        f"p is too small to give a connected graph; use p >= log(M)/M = {math.log(M) / M:.3g}",
    )
    return EdgeList.of(G, {"p": p, **G.graph["params"]})


def random_regular_graph(workers: int, seed: int = 0, *, degree=None, max_tries=100) -> EdgeList:
    """Random d-regular graph (default d = min(4, M - 1)), redrawn until connected.
    An expander with high probability: spectral gap ~ constant."""
    return _random_regular("random_regular", workers, seed, degree, max_tries)


def expander_graph(workers: int, seed: int = 0, *, degree=None, max_tries=100) -> EdgeList:
    """Alias of :func:`random_regular_graph` (an expander w.h.p.; spectral gap ~ constant)."""
    return _random_regular("expander", workers, seed, degree, max_tries)


def _random_regular(name, workers, seed, degree, max_tries) -> EdgeList:
    M = _check_workers(workers, name)
    seed = _as_int(seed, f"topology '{name}': seed", minimum=0)
    d = min(4, M - 1) if degree is None else _as_int(degree, f"topology '{name}': degree", 0)
    where = f"topology '{name}' (M={M}, degree={d})"
    if d > M - 1:
        raise TopologyError(f"{where}: degree must be <= workers - 1 = {M - 1}")
    if (M * d) % 2:
        raise TopologyError(f"{where}: workers * degree must be even, got {M * d}")
    if M > 2 and d < 2:
        raise TopologyError(f"{where}: degree must be >= 2 for a connected graph on {M} nodes")
    G = _redraw_connected(
        lambda s: nx.random_regular_graph(d, M, seed=s),
        seed,
        max_tries,
        where,
        "use a larger degree",
    )
    return EdgeList.of(G, {"degree": d, **G.graph["params"]})


#: Builders by name: ``fn(workers, seed, **params) -> EdgeList`` on nodes 0..M-1 (no networkx
#: graph for the regular families: a million nodes build in well under a second).
BUILDERS: dict[str, Callable[..., EdgeList]] = {
    "ring": ring_graph,
    "path": path_graph,
    "torus": torus_graph,
    "complete": complete_graph,
    "star": star_graph,
    "hypercube": hypercube_graph,
    "exponential": exponential_graph,
    "erdos_renyi": erdos_renyi_graph,
    "expander": expander_graph,
    "random_regular": random_regular_graph,
}


def available_topologies() -> list[str]:
    """Names accepted by :func:`topology`."""
    return sorted(BUILDERS)


def topology(name: str, workers: int, rule: str | None = None, seed: int = 0, a4: bool = True,
             **params) -> Topology:
    """Build a named topology with M = ``workers`` and weight rule ``rule`` (default metropolis).

    ``params`` go to the builder (e.g. ``rows``, ``p``, ``degree``) or to the rule (``alpha``,
    ``base`` of 'lazy'); anything else is an error. ``a4=False`` is required by, and only
    accepted with, a rule of ``VIOLATING_RULES`` (a W built to break A4 for a negative control).
    """
    if not isinstance(name, str) or name not in BUILDERS:
        raise TopologyError(
            f"unknown topology {name!r}{did_you_mean(name, BUILDERS)}; available topologies: "
            f"{', '.join(available_topologies())}"
        )
    workers = _check_workers(workers, name)
    seed = _as_int(seed, f"topology '{name}': seed", minimum=0)
    rule = "metropolis" if rule is None else rule
    if not isinstance(rule, str):
        raise TopologyError(f"topology '{name}': rule must be one of {available_rules()}, got "
                            f"{rule!r}")
    if not isinstance(a4, bool):
        raise TopologyError(f"topology '{name}': a4 must be true or false, got {a4!r}")
    if rule in VIOLATING_RULES or not a4:
        return _violating(name, workers, rule, seed, a4, params)
    fn = _rule(rule)
    builder = BUILDERS[name]
    builder_keys, rule_keys = set(_keyword_names(builder)), set(_keyword_names(fn))
    unknown = set(params) - builder_keys - rule_keys
    if unknown:
        accepted = ", ".join(sorted(builder_keys | rule_keys)) or "none"
        raise TopologyError(
            f"topology '{name}' with rule '{rule}': unknown parameter(s) "
            f"{', '.join(sorted(unknown))}{did_you_mean(min(unknown), builder_keys | rule_keys)} "
            f"(accepted: {accepted})"
        )
    edges = builder(workers, seed, **{k: v for k, v in params.items() if k in builder_keys})
    rule_params = {k: v for k, v in params.items() if k in rule_keys}
    return _build(edges, name, rule, rule_params, {**edges.params, **rule_params})


def _violating(name, workers, rule, seed, a4, params) -> Topology:
    if rule not in VIOLATING_RULES:
        raise TopologyError(f"topology '{name}': a4 = false is only for the rules that break A4 on "
                            f"purpose ({', '.join(sorted(VIOLATING_RULES))}), got rule {rule!r}")
    if a4:
        raise TopologyError(f"topology '{name}': rule {rule!r} gives a W that is not doubly "
                            "stochastic (it violates A4); build it with a4 = false, for a negative "
                            "control only")
    builder = BUILDERS[name]
    unknown = set(params) - set(_keyword_names(builder))
    if unknown:
        raise TopologyError(f"topology '{name}' with rule '{rule}': unknown parameter(s) "
                            f"{', '.join(sorted(unknown))}")
    edges = builder(workers, seed, **params)
    u, v = _unique_pairs(workers, edges.u, edges.v)
    degrees = np.bincount(np.concatenate([u, v]), minlength=workers)
    indptr, indices, weights = _assemble(workers, *VIOLATING_RULES[rule](u, v, degrees))
    return Topology(name, workers, indptr, indices, weights, rule=rule, params=dict(edges.params),
                    a4=False, edges=(u, v), structure=edges.structure)


# --------------------------------------------------------------------------- time-varying


def one_peer_exponential(workers: int) -> list[Topology]:
    """One-peer exponential sequence W_k = (I + P_k)/2, k = 0..log2(M) - 1, with P_k the shift
    i -> i + 2^k mod M (node i averages with node i + 2^k). Requires M a power of 2.

    Each W_k is doubly stochastic but in general neither symmetric nor connected
    (``symmetric_required=False``); the product over one period equals J exactly, since every
    shift 0..M-1 is a unique sum of distinct powers of 2.
    """
    M = _check_workers(workers, "one_peer_exponential")
    if M & (M - 1):
        raise TopologyError(
            f"topology 'one_peer_exponential': workers must be a power of 2, got {M}"
        )
    if M == 1:
        return [Topology("one_peer_exponential", 1, [0, 1], [0], [1.0], rule="one_peer")]
    node = np.arange(M, dtype=np.int64)
    seq = []
    for k in range(M.bit_length() - 1):
        peer = (node + (1 << k)) % M
        indptr, indices, weights = _assemble(
            M, np.concatenate([node, node]), np.concatenate([node, peer]), np.full(2 * M, 0.5)
        )
        seq.append(
            Topology(
                "one_peer_exponential",
                M,
                indptr,
                indices,
                weights,
                _graph_from_edges(M, node, peer),
                rule="one_peer",
                params={"round": k, "shift": 1 << k},
                symmetric_required=False,
            )
        )
    return seq


class TimeVarying:
    """A periodic sequence of topologies: round k uses ``at(k)`` = sequence[k mod period]."""

    def __init__(self, topologies: Iterable[Topology], name: str | None = None):
        seq = tuple(topologies)
        if not seq:
            raise TopologyError("time-varying topology: the sequence is empty")
        if not all(isinstance(t, Topology) for t in seq):
            raise TopologyError("time-varying topology: every element must be a Topology")
        sizes = {t.workers for t in seq}
        if len(sizes) != 1:
            raise TopologyError(f"time-varying topology: mixed worker counts {sorted(sizes)}")
        self._seq = seq
        self._name = str(name or seq[0].name)
        self._workers = sizes.pop()

    @classmethod
    def one_peer_exponential(cls, workers: int) -> TimeVarying:
        return cls(one_peer_exponential(workers), name="one_peer_exponential")

    name = property(lambda self: self._name)
    workers = property(lambda self: self._workers)
    sequence = property(lambda self: self._seq, doc="The topologies of one period (a tuple).")
    topologies = sequence

    @property
    def period(self) -> int:
        return len(self._seq)

    def at(self, k: int) -> Topology:
        """The topology used in round k (k >= 0)."""
        k = _as_int(k, f"time-varying topology '{self._name}': round", minimum=0)
        return self._seq[k % self.period]

    def _rounds(self, rounds, start) -> range:
        rounds = self.period if rounds is None else _as_int(rounds, "rounds", minimum=0)
        start = _as_int(start, "start", minimum=0)
        return range(start, start + rounds)

    def product(self, rounds: int | None = None, start: int = 0) -> np.ndarray:
        """Dense W_{start+rounds-1} ... W_{start} (default: one period from round 0)."""
        if self._workers > DENSE_EIG_MAX:
            raise TopologyError(
                f"time-varying topology '{self._name}': too large for a dense product "
                f"(M > {DENSE_EIG_MAX})"
            )
        P = np.eye(self._workers)
        for k in self._rounds(rounds, start):
            P = self.at(k).W @ P
        return P

    def mix(self, Y, rounds: int | None = None, start: int = 0) -> np.ndarray:
        """Apply rounds start, start+1, ... (default: one period) to Y with the sparse forms."""
        out = np.array(Y, dtype=np.float64)
        for k in self._rounds(rounds, start):
            out = self.at(k).mix(out)
        return out

    def summary(self) -> dict:
        """Like :meth:`Topology.summary`; rho is ||W_period ... W_1 - J||_2 (None if M > 2048)."""
        rho = None
        if self._workers <= DENSE_RHO_MAX:
            rho = max(rho_dense(self.product(), symmetric=False), 0.0)
        return {
            "name": self._name,
            "workers": self._workers,
            "rule": self._seq[0].rule,
            "period": self.period,
            "edges": max(t.edges for t in self._seq),
            "max_degree": max(t.max_degree for t in self._seq),
            "rho": rho,
            "spectral_gap": None if rho is None else 1.0 - rho,
        }

    def __len__(self) -> int:
        return self.period

    def __repr__(self) -> str:
        return f"TimeVarying(name={self.name!r}, workers={self.workers}, period={self.period})"


# --------------------------------------------------------------------------- text output


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def format_table(topologies: Iterable[Topology]) -> str:
    """Aligned plain-text table: name, M, rule, edges, max deg, rho, gap, rounds to eps=1e-3."""
    header = ["name", "M", "rule", "edges", "max deg", "rho", "gap", "rounds(1e-3)"]
    rows = [header]
    for t in topologies:
        if not isinstance(t, Topology):
            raise TopologyError(f"format_table needs Topology objects, got {type(t)!r}")
        s = t.summary()
        rounds = str(t.rounds_for(1e-3)) if s["rho"] < 1.0 else "inf"
        rows.append(
            [
                s["name"],
                str(s["workers"]),
                s["rule"],
                str(s["edges"]),
                str(s["max_degree"]),
                _fmt(s["rho"]),
                _fmt(s["spectral_gap"]),
                rounds,
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    left = (0, 2)  # text columns; numbers are right-aligned
    lines = [
        "  ".join(
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def main_topology(name: str, workers: int, **params) -> str:
    """Text printed by ``minmaxlab topology NAME --workers M``: summary, rho of W^t, eigenvalues.

    ``params`` may include ``rule`` and ``seed`` as well as builder / rule parameters.
    """
    topo = topology(name, workers, **params)
    s = topo.summary()
    lines = [f"topology       {s['name']}"]
    lines += [f"workers        {s['workers']}", f"rule           {s['rule']}"]
    if topo.params:
        lines.append("params         " + ", ".join(f"{k}={v}" for k, v in topo.params.items()))
    lines += [
        f"edges          {s['edges']}",
        f"max degree     {s['max_degree']}",
        f"rho            {_fmt(s['rho'])}",
        f"spectral gap   {_fmt(s['spectral_gap'])}",
        "rounds for eps " + ", ".join(f"{e:g}: {topo.rounds_for(e)}" for e in (1e-1, 1e-3, 1e-6)),
        "",
    ]
    measured = topo.workers <= 256
    header = f"{'t':<5}{'rho^t':<14}" + ("||W^t - J||_2 (measured)" if measured else "")
    lines.append(header.rstrip())
    for t in (1, 2, 3, 5, 10):
        row = f"{t:<5}{_fmt(topo.rho_power(t)):<14}"
        if measured:
            row += _fmt(topo.rho_of_power(t))
        lines.append(row.rstrip())
    if topo.workers <= 64:
        ev = topo.eigenvalues
        shown = min(8, len(ev))
        values = ", ".join(_fmt(x) for x in ev[:shown])
        lines += ["", f"eigenvalues (largest {shown} of {len(ev)}): {values}"]
    return "\n".join(lines)
