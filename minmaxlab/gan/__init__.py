"""A torch-free GAN path: MLP generator and discriminator in numpy/numba, trained as a Problem.

    prob = mml.problem("gan", workers=8, dataset="8gaussians")     # a Problem like any other
    trace = mml.run(prob, mml.topology("ring", 8), mml.DPOAdam(eta=5e-4), iterations=4000)
    mml.gan.evaluate(prob, trace.final_z.mean(axis=0))            # modes, high quality, KL, JSD

z = (u, v): u the generator's parameters, v the discriminator's, each one flat vector. The operator
is F = (grad_u L_G, grad_v L_D) on mini-batches drawn by the operator itself from each worker's
shard and random stream (noise kind "sampled"): with L_D = -E log D(x) - E log(1 - D(G(xi))) (the
discriminator's cross-entropy) and L_G the minimax loss E log(1 - D(G(xi))) (then F is the operator
of the zero-sum game) or the non-saturating loss -E log D(G(xi)) (the usual choice; then F is the
simultaneous-gradient field of a non-zero-sum game). Losses available: ``minimax`` and
``nonsaturating``. WGAN with gradient penalty is not available: its parameter gradient needs second
derivatives of the discriminator, which these kernels do not compute.

Gradients are written by hand (``minmaxlab/engine/mlp.py``) and checked against finite differences
of the losses in the tests, for every activation and both losses.
"""

from __future__ import annotations

import math

import numpy as np

from minmaxlab.engine import mlp
from minmaxlab.engine.registry import family_kernel
from minmaxlab.errors import ProblemError
from minmaxlab.gan.data import DATASETS, GRID_STD, RING_STD, grid_modes, load, ring_modes
from minmaxlab.gan.data import split as split_data
from minmaxlab.problems.base import Noise, ShardedProblem

ACTIVATIONS = {"linear": mlp.ACT_LINEAR, "relu": mlp.ACT_RELU, "leaky_relu": mlp.ACT_LEAKY,
               "tanh": mlp.ACT_TANH, "sigmoid": mlp.ACT_SIGMOID}
LOSSES = {"minimax": mlp.LOSS_MINIMAX, "nonsaturating": mlp.LOSS_NONSATURATING}

# the GAN as a family: its kernel is the MLP pair of minmaxlab.engine.mlp (drawing its own batches)
FID_GAN = 10
family_kernel(FID_GAN)(mlp.gan_rows)


class GAN(ShardedProblem):
    """GAN on a data set split across workers (``dataset`` in 8gaussians, 25gaussians, swissroll,
    digits; ``split`` iid or noniid). MLPs with ``layers`` hidden layers of ``hidden`` units,
    activation ``act``; generator output ``g_out`` (linear, tanh or sigmoid); latent dimension
    ``latent``. ``pack`` > 1 makes the discriminator judge that many samples at once,
    concatenated (PacGAN: a generator that drops modes yields packs that look unlike packs of real
    data, which penalizes mode collapse); ``batch`` must then be a multiple of it. No known
    solution, no certified L (``L = inf``), MVI status unknown.
    References: Goodfellow et al., NeurIPS 2014 (losses); Metz et al., ICLR 2017 (8 Gaussians);
    Lin et al., PacGAN, NeurIPS 2018 (packing; 25 Gaussians, metrics); Liu et al., NeurIPS 2020 (DPOSG and
    DPOAdam on GANs).
    """

    family = "gan"
    samples_own_batches = True
    certifiable = False
    references = ("Goodfellow et al., Generative Adversarial Nets, NeurIPS 2014",
                  "Metz et al., Unrolled Generative Adversarial Networks, ICLR 2017",
                  "Lin et al., PacGAN, NeurIPS 2018")

    def __init__(self, workers=1, dataset="8gaussians", split="iid", samples=4096, hidden=64,
                 layers=2, latent=4, act="relu", g_out=None, loss="nonsaturating", slope=0.2,
                 batch=64, heldout=512, classes_per_worker=None, seed=0, pack=1, name="gan"):
        workers = self._check_workers(name, workers)
        if dataset not in DATASETS:
            raise ProblemError(f"{name}: unknown dataset {dataset!r}; datasets: {sorted(DATASETS)}")
        for key, val in (("act", act), ("g_out", g_out or "linear")):
            if val not in ACTIVATIONS:
                raise ProblemError(f"{name}: {key} must be one of {sorted(ACTIVATIONS)}, got {val!r}")
        if loss not in LOSSES:
            raise ProblemError(f"{name}: loss must be one of {sorted(LOSSES)}, got {loss!r}")
        hidden = self._check_positive(name, "hidden", hidden, integer=True)
        layers = self._check_positive(name, "layers", layers, integer=True)
        latent = self._check_positive(name, "latent", latent, integer=True)
        batch = self._check_positive(name, "batch", batch, integer=True)
        samples = self._check_positive(name, "samples", samples, integer=True)
        heldout = self._check_positive(name, "heldout", heldout, integer=True)
        pack = self._check_positive(name, "pack", pack, integer=True)
        if batch % pack:
            raise ProblemError(f"{name}: batch must be a multiple of pack, got batch = {batch} "
                               f"and pack = {pack}")
        g_out = g_out or ("sigmoid" if dataset == "digits" else "linear")
        rng = np.random.default_rng([int(seed), 505])
        X, y = load(dataset, samples + heldout, rng)
        if dataset == "digits":
            perm = rng.permutation(len(X))
            X, y = X[perm], y[perm]
            heldout = min(heldout, len(X) // 4)
        Xh, Xt, yt = X[:heldout], X[heldout:], y[heldout:]
        shards = split_data(Xt, yt, workers, split, rng, classes_per_worker)
        dx = X.shape[1]
        n_max = max(len(s) for s in shards)
        A = np.zeros((workers, n_max, dx))
        for i, s in enumerate(shards):
            A[i, :len(s)] = s
        sG = [latent] + [hidden] * layers + [dx]
        sD = [pack * dx] + [hidden] * layers + [1]
        P = [LOSSES[loss], slope, len(sG) - 1, *sG, ACTIVATIONS[act], ACTIVATIONS[g_out],
             len(sD) - 1, *sD, ACTIVATIONS[act], pack, workers, *[len(s) for s in shards]]
        self.n_gen = int(mlp.n_params(np.array(sG)))
        self.n_disc = int(mlp.n_params(np.array(sD)))
        lat = np.random.default_rng([int(seed), 606]).standard_normal((heldout, latent))
        self._setup(
            name=name, dim=self.n_gen + self.n_disc, dim_u=self.n_gen, workers=workers,
            fid=FID_GAN, P=P, A=A, S=lat, A_mean=Xh[None], S_mean=lat,
            L=math.inf, L_local=math.inf, box=(-1.0, 1.0), lipschitz="unknown", mvi="unknown",
            r_min=None, solution=None, heterogeneity=0.0 if split == "iid" else 1.0,
            heterogeneity_kind=f"data split {split}",
            params=dict(dataset=dataset, split=split, samples=samples, hidden=hidden,
                        layers=layers, latent=latent, act=act, g_out=g_out, loss=loss,
                        slope=slope, batch=batch, heldout=heldout,
                        classes_per_worker=classes_per_worker, seed=int(seed), pack=pack),
        )
        self.noise = Noise("sampled", float("nan"), batch)
        self.dataset = dataset
        self.sizes = (sG, sD)
        self.heldout_data = Xh
        self.shards = shards

    def initial_point(self, seed: int = 0) -> np.ndarray:
        """He-style initialization: W ~ N(0, 2/fan_in) (1/fan_in for tanh), b = 0."""
        rng = np.random.default_rng([int(seed), 707])
        z = np.zeros(self.dim)
        o = 0
        gain = 1.0 if self.params["act"] in ("tanh", "linear", "sigmoid") else 2.0
        for sizes in self.sizes:
            for k in range(len(sizes) - 1):
                n_in, n_out = sizes[k], sizes[k + 1]
                z[o:o + n_in * n_out] = rng.standard_normal(n_in * n_out) * math.sqrt(gain / n_in)
                o += n_in * n_out + n_out
        return z


    def losses(self, z, worker: int = 0) -> tuple[float, float]:
        """(L_G, L_D) of a worker on its whole shard and the fixed latent set (deterministic)."""
        return mlp.gan_losses(np.ascontiguousarray(z, dtype=float), self._P, self._A, self._S,
                                int(worker))

    def generate(self, z, n: int = 2000, seed: int = 0) -> np.ndarray:
        """n samples of the generator of z (full parameters or generator part)."""
        z = np.asarray(z, dtype=float)
        u = z[: self.n_gen]
        lat = np.random.default_rng([int(seed), 808]).standard_normal((n, self.sizes[0][0]))
        return mlp.generate(u, self._P, lat)

    def discriminate(self, z, X) -> np.ndarray:
        """The discriminator's logit of each row of X (of each pack of ``pack`` rows)."""
        z = np.asarray(z, dtype=float)
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[0] % self.params["pack"]:
            raise ProblemError(f"{self.name}: discriminate takes rows of samples, a multiple of "
                               f"pack = {self.params['pack']} of them; got shape {X.shape}")
        return mlp.discriminate(z[self.n_gen:], self._P, np.ascontiguousarray(X, dtype=float))[:, 0]


def mixture_metrics(samples: np.ndarray, modes: np.ndarray, std: float) -> dict:
    """PacGAN's metrics: a sample is high quality if within 3 standard deviations of its nearest
    mode; a mode is covered when it has at least one high-quality sample (``modes``; the stricter
    ``modes_1pct`` asks for 1% of the samples); KL and JSD between the histogram of high-quality
    samples over the modes and the uniform distribution."""
    d = np.linalg.norm(samples[:, None, :] - modes[None, :, :], axis=2)
    nearest = d.argmin(axis=1)
    hq = d[np.arange(len(samples)), nearest] <= 3 * std
    counts = np.bincount(nearest[hq], minlength=len(modes)).astype(float)
    k = len(modes)
    p = counts / counts.sum() if counts.sum() > 0 else np.full(k, 1.0 / k)
    q = np.full(k, 1.0 / k)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = float(np.sum(np.where(p > 0, p * np.log(p / q), 0.0)))
        m = 0.5 * (p + q)
        jsd = float(0.5 * np.sum(np.where(p > 0, p * np.log(p / m), 0.0))
                    + 0.5 * np.sum(q * np.log(q / m)))
    return {"modes": int((counts >= 1).sum()), "modes_1pct": int((counts >= 0.01 * len(samples)).sum()),
            "n_modes": k, "high_quality": float(hq.mean()), "kl": kl, "jsd": jsd}


_CLASSIFIER = {}


def digits_classifier():
    """A fixed MLP classifier trained once on scikit-learn's digits (features: its hidden layer)."""
    if "clf" not in _CLASSIFIER:
        from sklearn.neural_network import MLPClassifier

        from minmaxlab.gan.data import digits

        X, y = digits()
        clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=600, random_state=0)
        clf.fit(X, y)
        _CLASSIFIER["clf"] = clf
    return _CLASSIFIER["clf"]


def _features(clf, X):
    return np.maximum(X @ clf.coefs_[0] + clf.intercepts_[0], 0.0)


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    import warnings

    from scipy import linalg

    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # nearly singular products are expected (e.g. a == b)
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s1 @ s2)
    covmean = np.real(covmean)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * covmean))


def digits_metrics(samples: np.ndarray, reference: np.ndarray) -> dict:
    """Inception-score-like exp(E KL(p(y|x) || p(y))) and a Frechet distance in the fixed
    classifier's feature space (against held-out real digits), plus per-class coverage."""
    clf = digits_classifier()
    p = clf.predict_proba(np.clip(samples, 0, 1))
    py = p.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.sum(np.where(p > 0, p * (np.log(p) - np.log(py[None, :] + 1e-12)), 0.0), axis=1)
    classes = np.bincount(p.argmax(axis=1), minlength=10)
    return {"score": float(np.exp(kl.mean())),
            "frechet": frechet(_features(clf, np.clip(samples, 0, 1)), _features(clf, reference)),
            "classes_covered": int((classes >= 0.02 * len(samples)).sum()),
            "class_histogram": classes.tolist()}


def evaluate(problem: GAN, z, n: int = 2000, seed: int = 0) -> dict:
    """Quality of the generator of z on the problem's data set."""
    samples = problem.generate(z, n, seed)
    if not np.all(np.isfinite(samples)):
        return {"finite": False}
    if problem.dataset == "8gaussians":
        return mixture_metrics(samples, ring_modes(8), RING_STD)
    if problem.dataset == "25gaussians":
        return mixture_metrics(samples, grid_modes(), GRID_STD)
    if problem.dataset == "digits":
        return digits_metrics(samples, problem.heldout_data)
    # swiss roll: distance of samples to the nearest held-out point (mean), and the reverse
    from scipy.spatial import cKDTree

    ref = problem.heldout_data
    d1 = cKDTree(ref).query(samples)[0].mean()
    d2 = cKDTree(samples).query(ref)[0].mean()
    return {"sample_to_data": float(d1), "data_to_sample": float(d2)}


__all__ = ["GAN", "evaluate", "mixture_metrics", "digits_metrics", "frechet", "DATASETS"]
