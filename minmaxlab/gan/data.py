"""Data sets of the GAN path (generated or shipped with scikit-learn; nothing is downloaded) and
their split across workers."""

from __future__ import annotations

import numpy as np

from minmaxlab.errors import ProblemError

RING_RADIUS = 2.0
RING_STD = 0.02  # Metz, Poole, Pfau, Sohl-Dickstein, Unrolled GANs, ICLR 2017
GRID_STD = 0.05  # Lin, Khetan, Fanti, Oh, PacGAN, NeurIPS 2018 (2D-grid)


def ring_modes(k: int = 8, radius: float = RING_RADIUS) -> np.ndarray:
    a = 2 * np.pi * np.arange(k) / k
    return radius * np.stack([np.cos(a), np.sin(a)], axis=1)


def grid_modes() -> np.ndarray:
    g = np.arange(-4.0, 5.0, 2.0)
    return np.array([(x, y) for x in g for y in g])


def mixture(modes: np.ndarray, std: float, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, len(modes), n)
    return modes[labels] + std * rng.standard_normal((n, modes.shape[1])), labels


def swiss_roll(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    t = 1.5 * np.pi * (1 + 2 * rng.random(n))
    x = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / 5.0 + 0.1 * rng.standard_normal((n, 2))
    labels = np.minimum((t - 1.5 * np.pi) / (3 * np.pi) * 8, 7).astype(int)  # 8 arcs, for splits
    return x, labels


def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data / 16.0, d.target


DATASETS = {
    "8gaussians": {"dim": 2, "modes": lambda: ring_modes(8), "std": RING_STD},
    "25gaussians": {"dim": 2, "modes": grid_modes, "std": GRID_STD},
    "swissroll": {"dim": 2, "modes": None, "std": None},
    "digits": {"dim": 64, "modes": None, "std": None},
}


def load(name: str, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    if name not in DATASETS:
        raise ProblemError(f"gan: unknown dataset {name!r}; datasets: {sorted(DATASETS)}")
    spec = DATASETS[name]
    if spec["modes"] is not None:
        return mixture(spec["modes"](), spec["std"], n, rng)
    if name == "swissroll":
        return swiss_roll(n, rng)
    X, y = digits()
    return X, y


def split(X, y, workers: int, how: str, rng, classes_per_worker: int | None = None):
    """Shards for the workers: ``iid`` (a random permutation cut in equal parts) or ``noniid``
    (worker i holds only the labels i, i+1, ..., i+c-1 modulo the number of labels)."""
    if how == "iid":
        idx = rng.permutation(len(X))
        return [X[part] for part in np.array_split(idx, workers)]
    if how != "noniid":
        raise ProblemError(f"gan: split must be 'iid' or 'noniid', got {how!r}")
    labels = np.unique(y)
    c = classes_per_worker or max(1, len(labels) // max(workers, 1))
    shards = []
    for i in range(workers):
        mine = labels[(i + np.arange(c)) % len(labels)]
        sel = np.flatnonzero(np.isin(y, mine))
        if len(sel) == 0:
            raise ProblemError(f"gan: worker {i} would hold no data")
        shards.append(X[rng.permutation(sel)])
    return shards
