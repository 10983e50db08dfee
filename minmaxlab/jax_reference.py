"""DPOSG written the way a competent JAX user would write it, for ``minmaxlab bench --vs jax``.

The whole run is one jitted ``lax.fori_loop`` in float64: the Minty bowl's operator vectorized over
the (M, d) stack of iterates, Gaussian noise from ``jax.random`` (total size sigma per oracle
call, as the engine's), the stationarity at the local points and at the average accumulated at
every iteration (running averages, as the engine's ``every_iteration=True``), and gossip in one
of two forms:

* ``"dense"``: one product with the dense M x M matrix W^t (a single BLAS call per gossip);
* ``"stencil"``: t rounds of a neighbour stencil, Y_i <- sum_k w_ik Y_{n_ik} over the padded
  neighbour lists of the topology (no M x M matrix; what scales to thousands of workers).

JAX is not a dependency of minmaxlab: this module is imported only by the benchmark, and needs
the ``bench`` extra (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import time

import numpy as np

GOSSIP_FORMS = ("dense", "stencil")


def check_installed() -> None:
    """A clear error, before any work, where JAX is missing."""
    import importlib.util

    if importlib.util.find_spec("jax") is None:
        from minmaxlab.errors import ConfigError

        raise ConfigError("bench --vs jax needs JAX: pip install -e \".[bench]\"")


def _jax():
    check_installed()
    import jax

    jax.config.update("jax_enable_x64", True)  # the engine runs in float64
    return jax


def neighbour_stencil(topology):
    """(neighbours, weights), both (M, k): row i lists worker i's neighbours (itself included)
    and their weights, padded with i and weight 0 to the largest degree."""
    indptr, indices, weights = topology.neighbors
    M = topology.workers
    counts = np.diff(indptr)
    k = int(counts.max())
    nbr = np.repeat(np.arange(M)[:, None], k, axis=1)
    w = np.zeros((M, k))
    for i in range(M):
        lo, hi = indptr[i], indptr[i + 1]
        nbr[i, : hi - lo] = indices[lo:hi]
        w[i, : hi - lo] = weights[lo:hi]
    return nbr, w


def build(prob, topology, rounds: int, eta: float, sigma: float, gossip: str):
    """A jitted ``run(X0, key, iterations) -> (X, Z, avg_local, avg_average)`` of DPOSG on the
    Minty bowl ``prob`` (rational g, one shared coupling matrix)."""
    if gossip not in GOSSIP_FORMS:
        from minmaxlab.errors import ConfigError

        raise ConfigError(f"JAX gossip must be one of {GOSSIP_FORMS}, got {gossip!r}")
    jax = _jax()
    jnp = jax.numpy
    A = jnp.asarray(prob.matrix)
    p, d = prob.dim_u, prob.dim
    alpha = float(prob.params["alpha"])
    scale = sigma / np.sqrt(d)

    def F_rows(Z):
        t = 1.0 + Z * Z
        out = alpha * 2.0 * Z / (t * t)
        return out.at[:, :p].add(Z[:, p:] @ A.T).at[:, p:].add(-(Z[:, :p] @ A))

    if gossip == "dense":
        Wt = jnp.asarray(np.linalg.matrix_power(topology.W, rounds))

        def mix(Y):
            return Wt @ Y
    else:
        nbr, w = (jnp.asarray(a) for a in neighbour_stencil(topology))

        def mix(Y):
            for _ in range(rounds):
                Y = jnp.einsum("mk,mkd->md", w, Y[nbr])
            return Y

    def oracle(Z, key):
        G = F_rows(Z)
        if sigma > 0:
            G = G + scale * jax.random.normal(key, Z.shape)
        return G

    def step(k, carry):
        X, G, key, s_loc, s_avg, _ = carry
        key, k1 = jax.random.split(key)
        Z = mix(X - eta * G)
        G = oracle(Z, k1)
        X = mix(X - eta * G)
        fl = F_rows(Z).mean(axis=0)
        fa = F_rows(Z.mean(axis=0, keepdims=True))[0]
        return X, G, key, s_loc + fl @ fl, s_avg + fa @ fa, Z

    @jax.jit
    def run(X0, key, iterations):
        key, k0 = jax.random.split(key)
        G0 = oracle(X0, k0)
        X, _, _, s_loc, s_avg, Z = jax.lax.fori_loop(
            0, iterations, step, (X0, G0, key, 0.0, 0.0, X0))
        n = jnp.maximum(iterations, 1)
        return X, Z, s_loc / n, s_avg / n

    return run


def _stack(jax, z0, workers):
    z0 = np.asarray(z0, dtype=np.float64)
    return jax.numpy.asarray(z0 if z0.ndim == 2 else np.tile(z0, (workers, 1)))


def time_run(prob, topology, rounds, eta, sigma, gossip, z0, iterations) -> dict:
    """Compile (timed apart), then time ``iterations`` iterations; seconds per iteration."""
    jax = _jax()
    run = build(prob, topology, rounds, eta, sigma, gossip)
    X0 = _stack(jax, z0, prob.workers)
    key = jax.random.PRNGKey(0)
    t0 = time.perf_counter()
    jax.block_until_ready(run(X0, key, 1))  # compiles: the iteration count is traced
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(run(X0, key, iterations))
    secs = time.perf_counter() - t0
    return {"gossip": gossip, "s_per_iter": secs / iterations, "compile_s": compile_s}


def final_iterate(prob, topology, rounds, eta, gossip, z0, iterations) -> np.ndarray:
    """The workers' x after ``iterations`` exact-oracle iterations (to check the iterates);
    ``z0`` is one start for all workers or one row per worker."""
    jax = _jax()
    run = build(prob, topology, rounds, eta, 0.0, gossip)
    X0 = _stack(jax, z0, prob.workers)
    return np.asarray(run(X0, jax.random.PRNGKey(0), iterations)[0])
