"""``minmaxlab bench``: the numba engine against a plain-numpy reference, timed in the same run.

The reference is what a researcher would write: iterates stacked as an (M, d) array, the operator
vectorized over workers, W^t as a dense M x M matrix power applied by a matrix product, Gaussian
noise from numpy's generator, and the same metrics (stationarity at the local points and at the
average, every iteration). Both run DPOSG (default form) on the Minty bowl with additive Gaussian
noise of size sigma = 0.1 (so that the iterates hover at the noise floor instead of underflowing
towards subnormal numbers, which would distort both timings), from the same start, after a
warm-up. A separate short run with the exact oracle checks that engine and reference compute the
same iterates (``max|dx|``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np

WORKLOADS = {
    # name: (dim, workers, topology, rounds, engine iterations, reference iterations, goal)
    "W1": (2, 16, "ring", 1, 100_000, 20_000, 30.0),
    "W2": (100, 64, "ring", 3, 5_000, 1_000, 2.0),
    "W3": (20, 4096, "torus", 3, 200, 4, 20.0),
}
QUICK = {"W1": (2_000, 500), "W2": (200, 50), "W3": (20, 2)}
ETA = 0.05
SIGMA = 0.1
CHECK_ITERATIONS = 50


@dataclass
class BenchRow:
    name: str
    description: str
    engine_s_per_iter: float
    reference_s_per_iter: float
    ratio: float
    goal: float
    updates_per_s: float
    peak_mib: float | None
    max_abs_diff: float


def _gprime(s):
    t = 1.0 + s * s
    return 2.0 * s / (t * t)


def reference_dposg(prob, W, rounds, iterations, z0, eta=ETA, sigma=0.0, seed=0):
    """Plain numpy DPOSG on the Minty bowl (rational g, one shared coupling matrix), with additive
    Gaussian noise of total size sigma per oracle call."""
    A = prob.matrix
    p = prob.dim_u
    alpha = prob.params["alpha"]
    M = prob.workers
    Wt = np.linalg.matrix_power(W, rounds)

    def F_rows(Z):
        out = alpha * _gprime(Z)
        out[:, :p] += Z[:, p:] @ A.T
        out[:, p:] -= Z[:, :p] @ A
        return out

    rng = np.random.default_rng(seed)
    scale = sigma / np.sqrt(prob.dim)
    X = np.tile(z0, (M, 1))
    G = F_rows(X)
    if sigma > 0:
        G += scale * rng.standard_normal(G.shape)
    hist = np.empty((iterations, 2))
    for k in range(iterations):
        Z = Wt @ (X - eta * G)
        G = F_rows(Z)
        if sigma > 0:
            G += scale * rng.standard_normal(G.shape)
        X = Wt @ (X - eta * G)
        Fl = F_rows(Z).mean(axis=0)
        Fa = F_rows(Z.mean(axis=0, keepdims=True))[0]
        hist[k] = Fl @ Fl, Fa @ Fa
    return X, Z, hist


def _setup(name):
    import minmaxlab as mml

    dim, M, topo_name, rounds, *_ = WORKLOADS[name]
    prob = mml.problem("minty_bowl", workers=M, dim=dim, seed=0).with_noise(sigma=SIGMA)
    topo = mml.topology(topo_name, M)
    return prob, topo, mml.DPOSG(eta=ETA, rounds=rounds)


def _engine_time(name, iterations):
    """Time the engine (after a warm-up run that compiles or loads the kernels)."""
    import minmaxlab as mml
    from minmaxlab.simulate import default_start

    prob, topo, alg = _setup(name)
    mml.run(prob, topo, alg, iterations=2)
    t0 = time.perf_counter()
    mml.run(prob, topo, alg, iterations=iterations, record=20)
    secs = time.perf_counter() - t0
    return secs / max(iterations, 1), prob, topo, default_start(prob)


def _engine_subprocess(name, iterations):
    """Run the engine alone in a fresh process; report its time and peak resident memory."""
    code = (
        "import json, resource, sys; from minmaxlab.bench import _engine_time; "
        f"s = _engine_time({name!r}, {iterations})[0]; "
        "print(json.dumps({'s': s, 'rss': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3600)
    if res.returncode != 0:
        raise RuntimeError(f"engine benchmark {name} failed: {res.stderr.strip()[-500:]}")
    data = json.loads(res.stdout.strip().splitlines()[-1])
    return data["s"], data["rss"] / 1024.0


def bench(names=("W1", "W2", "W3"), quick: bool = False, progress=print) -> list[BenchRow]:
    import minmaxlab as mml
    from minmaxlab.errors import ConfigError

    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise ConfigError(f"bench --only: unknown workload(s) {', '.join(unknown)}; workloads: "
                          f"{', '.join(WORKLOADS)}")
    rows = []
    for name in names:
        dim, M, topo_name, rounds, it_eng, it_ref, goal = WORKLOADS[name]
        if quick:
            it_eng, it_ref = QUICK[name]
        desc = f"minty_bowl dim {dim}, {M} workers, {topo_name}, t = {rounds}, sigma = {SIGMA:g}"
        progress(f"{name}: {desc}: engine {it_eng} iterations ...")
        if name == "W3":
            eng, peak = _engine_subprocess(name, it_eng)
            prob, topo, alg = _setup(name)
            from minmaxlab.simulate import default_start

            z0 = default_start(prob)
        else:
            eng, prob, topo, z0 = _engine_time(name, it_eng)
            peak = None
            alg = mml.DPOSG(eta=ETA, rounds=rounds)
        progress(f"{name}: numpy reference {it_ref} iterations ...")
        W = topo.W
        reference_dposg(prob, W, rounds, 1, z0, sigma=SIGMA)  # warm-up
        t0 = time.perf_counter()
        reference_dposg(prob, W, rounds, it_ref, z0, sigma=SIGMA)
        ref = (time.perf_counter() - t0) / it_ref
        exact = prob.with_noise()
        Xr, _, _ = reference_dposg(exact, W, rounds, CHECK_ITERATIONS, z0)
        same = mml.run(exact, topo, alg, iterations=CHECK_ITERATIONS, z0=z0, record=2)
        diff = float(np.max(np.abs(same.final_x - Xr)))
        rows.append(BenchRow(name, desc, eng, ref, ref / eng, goal, M * dim / eng, peak, diff))
    return rows


@dataclass
class JaxRow:
    name: str
    engine_s_per_iter: float
    jax_s_per_iter: dict  # gossip form -> seconds per iteration
    compile_s: dict  # gossip form -> seconds to compile
    max_abs_diff: dict  # gossip form -> largest difference of the iterates from the engine's
    goal: float = 2.0

    @property
    def best(self) -> str:
        return min(self.jax_s_per_iter, key=self.jax_s_per_iter.get)

    @property
    def ratio(self) -> float:
        """Best JAX seconds per iteration over the engine's (> 1: the engine is faster)."""
        return self.jax_s_per_iter[self.best] / self.engine_s_per_iter


def bench_jax(rows: list[BenchRow], quick: bool = False, progress=print) -> list[JaxRow]:
    """The same workloads in JAX (:mod:`minmaxlab.jax_reference`), dense and stencil gossip, in
    this process after the engine's rows were measured; compile times apart. A short exact-oracle
    run checks that JAX computes the engine's iterates."""
    import minmaxlab as mml
    from minmaxlab import jax_reference as J
    from minmaxlab.simulate import default_start

    out = []
    for row in rows:
        dim, M, topo_name, rounds, it_eng, _, _ = WORKLOADS[row.name]
        iterations = QUICK[row.name][0] if quick else it_eng
        prob, topo, alg = _setup(row.name)
        z0 = default_start(prob)
        exact = prob.with_noise()
        same = mml.run(exact, topo, alg, iterations=CHECK_ITERATIONS, z0=z0, record=2)
        times, compiles, diffs = {}, {}, {}
        for form in J.GOSSIP_FORMS:
            progress(f"{row.name}: JAX, {form} gossip, {iterations} iterations ...")
            t = J.time_run(prob, topo, rounds, ETA, SIGMA, form, z0, iterations)
            times[form], compiles[form] = t["s_per_iter"], t["compile_s"]
            X = J.final_iterate(exact, topo, rounds, ETA, form, z0, CHECK_ITERATIONS)
            diffs[form] = float(np.max(np.abs(same.final_x - X)))
        out.append(JaxRow(row.name, row.engine_s_per_iter, times, compiles, diffs))
    return out


def format_jax(rows: list[JaxRow]) -> str:
    head = (f"{'':<4}{'engine us/it':>14}{'JAX dense':>12}{'JAX stencil':>13}{'best JAX/engine':>17}"
            f"{'goal':>6}{'compile s (dense, stencil)':>28}{'max|dx| (dense, stencil)':>27}")
    lines = [head, "-" * len(head)]
    for r in rows:
        verdict = "met" if r.ratio >= r.goal else "MISSED"
        lines.append(
            f"{r.name:<4}{r.engine_s_per_iter * 1e6:>14.2f}{r.jax_s_per_iter['dense'] * 1e6:>12.2f}"
            f"{r.jax_s_per_iter['stencil'] * 1e6:>13.2f}{r.ratio:>16.2f}x{r.goal:>5.0f}x"
            f"{r.compile_s['dense']:>14.2f}, {r.compile_s['stencil']:<12.2f}"
            f"{r.max_abs_diff['dense']:>13.1e}, {r.max_abs_diff['stencil']:<11.1e}  {verdict}")
    lines.append("JAX: one jitted lax.fori_loop in float64, the same operator, noise level and "
                 "per-iteration metrics; compile time excluded from us/it. The engine uses one "
                 "thread; JAX uses what XLA gives it. max|dx| = largest difference of the iterates "
                 f"from the engine's after {CHECK_ITERATIONS} exact-oracle iterations.")
    return "\n".join(lines)


def format_rows(rows: list[BenchRow]) -> str:
    head = (f"{'':<4}{'workload':<60}{'engine s/it':>13}{'numpy s/it':>13}{'ratio':>9}{'goal':>7}"
            f"{'updates/s':>12}{'peak MiB':>10}{'max|dx|':>10}")
    lines = [head, "-" * len(head)]
    for r in rows:
        peak = "" if r.peak_mib is None else f"{r.peak_mib:.0f}"
        verdict = "met" if r.ratio >= r.goal else "MISSED"
        lines.append(f"{r.name:<4}{r.description:<60}{r.engine_s_per_iter:>13.3e}"
                     f"{r.reference_s_per_iter:>13.3e}{r.ratio:>8.1f}x{r.goal:>6.0f}x"
                     f"{r.updates_per_s:>12.3e}{peak:>10}{r.max_abs_diff:>10.1e}  {verdict}")
    lines.append("ratio = numpy seconds per iteration / engine seconds per iteration (same run); "
                 "updates/s = worker-coordinate updates per second of the engine; max|dx| = "
                 f"largest difference of the iterates after {CHECK_ITERATIONS} exact-oracle "
                 "iterations of engine and reference.")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the GAN path
_NP_ACT = {
    "relu": (lambda x: np.maximum(x, 0), lambda pre, post: (pre > 0).astype(float)),
    "leaky_relu": (None, None),
    "tanh": (np.tanh, lambda pre, post: 1 - post**2),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), lambda pre, post: post * (1 - post)),
    "linear": (lambda x: x, lambda pre, post: np.ones_like(pre)),
}


def _np_layers(params, sizes):
    out, o = [], 0
    for k in range(len(sizes) - 1):
        n_in, n_out = sizes[k], sizes[k + 1]
        W = params[o:o + n_in * n_out].reshape(n_out, n_in)
        b = params[o + n_in * n_out:o + n_in * n_out + n_out]
        out.append((W, b))
        o += n_in * n_out + n_out
    return out


def _np_act(name, slope):
    if name == "leaky_relu":
        return (lambda x: np.where(x > 0, x, slope * x),
                lambda pre, post: np.where(pre > 0, 1.0, slope))
    return _NP_ACT[name]


def _np_forward(layers, X, act, out_act, slope):
    pres, posts = [X], [X]
    for k, (W, b) in enumerate(layers):
        pre = posts[-1] @ W.T + b
        f = _np_act(out_act if k == len(layers) - 1 else act, slope)[0]
        pres.append(pre)
        posts.append(f(pre))
    return pres, posts


def _np_backward(layers, pres, posts, d, act, out_act, slope):
    grads = []
    for k in range(len(layers) - 1, -1, -1):
        W, _ = layers[k]
        d = d * _np_act(out_act if k == len(layers) - 1 else act, slope)[1](pres[k + 1], posts[k + 1])
        grads.append((d.T @ posts[k], d.sum(axis=0)))
        d = d @ W
    flat = np.concatenate([np.concatenate([gW.ravel(), gb]) for gW, gb in reversed(grads)])
    return flat, d


def numpy_gan_operator(prob, z, X_real, latent):
    """The GAN operator (grad_u L_G, grad_v L_D) written with plain numpy, for one worker's batch."""
    sG, sD = prob.sizes
    pr = prob.params
    slope, act = pr["slope"], pr["act"]
    Gl = _np_layers(z[: prob.n_gen], sG)
    Dl = _np_layers(z[prob.n_gen:], sD)
    pg, qg = _np_forward(Gl, latent, act, pr["g_out"], slope)
    Xf = qg[-1]
    p_r, q_r = _np_forward(Dl, X_real, act, "linear", slope)
    p_f, q_f = _np_forward(Dl, Xf, act, "linear", slope)
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    lr, lf = q_r[-1], q_f[-1]
    gv_r, _ = _np_backward(Dl, p_r, q_r, (sig(lr) - 1) / len(lr), act, "linear", slope)
    gv_f, _ = _np_backward(Dl, p_f, q_f, sig(lf) / len(lf), act, "linear", slope)
    dg = -sig(lf) / len(lf) if pr["loss"] == "minimax" else (sig(lf) - 1) / len(lf)
    _, dX = _np_backward(Dl, p_f, q_f, dg, act, "linear", slope)
    gu, _ = _np_backward(Gl, pg, qg, dX, act, pr["g_out"], slope)
    return np.concatenate([gu, gv_r + gv_f])


def bench_gan(workers: int = 8, iterations: int = 30000, quick: bool = False, progress=print) -> dict:
    """Throughput of the GAN oracle (samples per second, all workers) against plain numpy, and the
    training goal: DPOAdam on 8 Gaussians, ring of 8 workers."""
    import minmaxlab as mml
    from minmaxlab.engine.mlp import gan_rows
    from minmaxlab.gan import evaluate
    from minmaxlab.simulate import worker_streams

    if quick:
        iterations = 300
    prob = mml.problem("gan", workers=workers, dataset="8gaussians")
    batch = prob.noise.batch
    Z = np.tile(prob.initial_point(0), (workers, 1))
    O = np.empty_like(Z)
    state = worker_streams(0, workers)
    from threadpoolctl import threadpool_limits

    reps = 20 if quick else 200
    with threadpool_limits(limits=1):
        gan_rows(Z, O, prob._P, prob._A, prob._S, -1, state, batch)
        t0 = time.perf_counter()
        for _ in range(reps):
            gan_rows(Z, O, prob._P, prob._A, prob._S, -1, state, batch)
        eng = (time.perf_counter() - t0) / reps
        rng = np.random.default_rng(0)
        t0 = time.perf_counter()
        for _ in range(reps):
            for i in range(workers):
                shard = prob.shards[i]
                xr = shard[rng.integers(0, len(shard), batch)]
                numpy_gan_operator(prob, Z[i], xr, rng.standard_normal((batch, prob.sizes[0][0])))
        ref = (time.perf_counter() - t0) / reps
    progress(f"GAN oracle, {workers} workers x batch {batch}: engine {eng * 1e3:.2f} ms, "
             f"numpy {ref * 1e3:.2f} ms per call")
    alg = mml.DPOAdam(eta=1e-3, beta1=0.5, beta2=0.999, rounds=1)
    topo = mml.topology("ring", workers)
    mml.run(prob, topo, alg, iterations=2, every_iteration=False)
    t0 = time.perf_counter()
    tr = mml.run(prob, topo, alg, iterations=iterations, every_iteration=False, record=2)
    secs = time.perf_counter() - t0
    m = evaluate(prob, tr.final_z.mean(axis=0))
    return {"engine_samples_per_s": workers * batch / eng, "numpy_samples_per_s": workers * batch / ref,
            "ratio": ref / eng, "train_seconds": secs, "iterations": iterations, **m}


def format_gan(r: dict) -> str:
    goal = r["modes"] == r["n_modes"] and r["high_quality"] >= 0.8 and r["train_seconds"] < 120
    return (f"GAN oracle throughput: engine {r['engine_samples_per_s']:.3g} samples/s, numpy "
            f"{r['numpy_samples_per_s']:.3g} samples/s, ratio {r['ratio']:.1f}x\n"
            f"DPOAdam, 8 Gaussians, ring of 8 workers, {r['iterations']} iterations: "
            f"{r['train_seconds']:.1f} s, modes {r['modes']}/{r['n_modes']}, high-quality "
            f"{r['high_quality']:.0%}, KL {r['kl']:.3f} -> goal (8/8 modes, >= 80%, < 2 min) "
            f"{'met' if goal else 'MISSED'}")


# ----------------------------------------------------------------------------- data-driven problems
DATA_WORKLOAD = {"workers": 20, "features": 123, "samples": 1600, "batch": 32, "eta": 0.05,
                 "iterations": 20_000, "reference_iterations": 20_000}
# The workload's shape is LIBSVM's a9a (123 features, 32,561 samples: about 1,600 per worker on 20
# workers). a9a is one-hot encoded census data (14 non-zeros per row); the goal is measured on
# data of that structure (``synthetic_onehot``, stored compressed) and the same bench runs dense
# Gaussian features of the same shape (stored as rows) for comparison.
DATA_SETS = (("a9a-like one-hot features (sparse storage)", "synthetic_onehot", True),
             ("dense Gaussian features (row storage)", "synthetic", False))


def _np_project(Z, p, eta, l1, radius):
    """The robust-regression defaults: soft-thresholding of x at eta * l1, y on the ball."""
    x = Z[:, :p]
    Z[:, :p] = np.sign(x) * np.maximum(np.abs(x) - eta * l1, 0.0)
    nrm = np.linalg.norm(Z[:, p:], axis=1, keepdims=True)
    Z[:, p:] *= np.minimum(1.0, radius / np.maximum(nrm, 1e-300))


def numpy_robust_operator(data, Z, lam, idx=None):
    """F_i(z_i) of robust regression for every worker i at once (einsum over the stacked shards
    ``data`` (M, n, p + 2)); ``idx`` (M, m): each worker's mini-batch rows (None: the whole shard)."""
    M, _, cols = data.shape
    p = cols - 2
    rows = data if idx is None else data[np.arange(M)[:, None], idx]
    x, y = Z[:, :p], Z[:, p:]
    a, b, c = rows[:, :, :p], rows[:, :, p], rows[:, :, p + 1]
    r = b - np.einsum("imc,ic->im", a, x) - np.einsum("ic,ic->i", y, x)[:, None]
    ph = c * 2.0 * r / (2.0 + r * r)
    mph = ph.mean(axis=1)[:, None]
    gx = -np.einsum("im,imc->ic", ph, a) / rows.shape[1] - mph * y
    return np.hstack([gx, mph * x + lam * y])


def reference_robust_single(prob, W, iterations, z0, eta, rng=None, record=(0,)):
    """Plain numpy single-exchange DPOSG (t = 1) on robust regression with its default
    constraints, on the dense stacked shards (whatever the problem's own storage); mini-batches
    drawn with numpy's generator (``rng``; None: full shards). Metrics (stationarity at the local
    points and at the average, on the pooled data) at the iterations in ``record``, as the engine
    with ``every_iteration=False``."""
    M, p = prob.workers, prob.dim_u
    lam, l1, radius = prob.params["lam"], prob.params["l1"], prob.params["radius"]
    data, pooled = prob.stacked_rows()
    n = data.shape[1]
    m = prob.noise.batch
    X = np.tile(z0, (M, 1))

    def oracle(Z):
        idx = None if rng is None else rng.integers(0, n, (M, m))
        return numpy_robust_operator(data, Z, lam, idx)

    def metrics(Z):
        FZ = np.vstack([numpy_robust_operator(pooled, Z[i:i + 1], lam) for i in range(M)])
        zbar = Z.mean(axis=0, keepdims=True)
        return (float(np.sum(FZ.mean(axis=0) ** 2)),
                float(np.sum(numpy_robust_operator(pooled, zbar, lam) ** 2)))

    G = oracle(X)
    hist = [metrics(X)] if 0 in record else []
    for k in range(1, iterations + 1):
        B = W @ X
        Z = B - eta * G
        _np_project(Z, p, eta, l1, radius)
        G = oracle(Z)
        X = B - eta * G
        _np_project(X, p, eta, l1, radius)
        if k in record:
            hist.append(metrics(Z))
    return X, hist


def _bench_data_set(dataset, it_eng, it_ref, progress, label):
    import minmaxlab as mml
    from minmaxlab.simulate import default_start

    w = DATA_WORKLOAD
    M = w["workers"]
    kw = dict(workers=M, features=w["features"], samples=w["samples"], dataset=dataset, seed=0)
    prob = mml.problem("robust_regression", batch=w["batch"], **kw)
    topo = mml.topology("ring", M)
    alg = mml.DPOSG(eta=w["eta"], rounds=1, variant="single_exchange")
    z0 = default_start(prob)
    mml.run(prob, topo, alg, iterations=2, every_iteration=False, record=2)  # warm-up
    progress(f"robust regression, {label}: engine {it_eng} iterations ...")
    t0 = time.perf_counter()
    mml.run(prob, topo, alg, iterations=it_eng, every_iteration=False, record=2, z0=z0)
    eng = (time.perf_counter() - t0) / it_eng
    progress(f"robust regression, {label}: numpy reference {it_ref} iterations ...")
    W = topo.W
    rng = np.random.default_rng(0)
    reference_robust_single(prob, W, 2, z0, w["eta"], rng, record=(0, 2))  # warm-up
    t0 = time.perf_counter()
    reference_robust_single(prob, W, it_ref, z0, w["eta"], rng, record=(0, it_ref))
    ref = (time.perf_counter() - t0) / it_ref
    exact = mml.problem("robust_regression", batch=0, **kw)
    Xr, _ = reference_robust_single(exact, W, CHECK_ITERATIONS, z0, w["eta"])
    same = mml.run(exact, topo, alg, iterations=CHECK_ITERATIONS, z0=z0, record=2)
    return {"data": label, "dataset": dataset, "storage": prob.storage,
            "engine_s_per_iter": eng, "numpy_s_per_iter": ref, "ratio": ref / eng,
            "engine_iterations": it_eng, "numpy_iterations": it_ref,
            "max_abs_diff": float(np.max(np.abs(same.final_x - Xr)))}


def bench_data(quick: bool = False, progress=print) -> dict:
    """Robust regression, 20 workers on a ring, 123 features, 1,600 samples per worker, mini-batch
    32, single-exchange DPOSG with t = 1: seconds per iteration of the engine and of the numpy
    reference (dense stacked shards, einsum, W as a dense product), same run, metrics at the first
    and the last iteration on both sides; on a9a-like one-hot data (the goal) and on dense Gaussian
    features."""
    w = DATA_WORKLOAD
    it_eng, it_ref = (2_000, 2_000) if quick else (w["iterations"], w["reference_iterations"])
    rows = [dict(_bench_data_set(ds, it_eng, it_ref, progress, label), goal=10.0 if goal else None)
            for label, ds, goal in DATA_SETS]
    return {"rows": rows, "goal": 10.0}


def format_data(r: dict) -> str:
    out = ["robust regression, 20 workers, ring, 123 features, 1,600 samples/worker, batch 32, "
           "single-exchange DPOSG t = 1 (l1 prox on x, y on the unit ball)"]
    for row in r["rows"]:
        goal = row["goal"]
        verdict = (f"goal {goal:.0f}x: {'met' if row['ratio'] >= goal else 'MISSED'}" if goal
                   else "no goal")
        out.append(
            f"{row['data']}: engine {row['engine_s_per_iter']:.3e} s/it ({row['engine_iterations']} "
            f"iterations), numpy {row['numpy_s_per_iter']:.3e} s/it ({row['numpy_iterations']} "
            f"iterations): ratio {row['ratio']:.1f}x ({verdict}); max|dx| after {CHECK_ITERATIONS} "
            f"full-batch iterations {row['max_abs_diff']:.1e}")
    out.append("the numpy reference runs on the dense stacked shards in both cases; metrics "
               "(stationarity at the local points and at the average, pooled data) at the first and "
               "the last iteration on both sides")
    return "\n".join(out)
