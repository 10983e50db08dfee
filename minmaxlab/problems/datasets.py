"""Data for the data-driven min-max families (nothing is downloaded).

Sources, by the value of ``dataset``:

* a scikit-learn set shipped with the library: ``breast_cancer``, ``digits``, ``wine``, ``iris``
  (classification) and ``diabetes`` (regression);
* a path ending in ``.csv``: a table read with pandas; the label is the column ``label`` (or the one
  named by ``label_column``; the last column when neither is given) and every other column is a
  numeric feature;
* any other path: a LIBSVM / svmlight file, read with ``sklearn.datasets.load_svmlight_file``.

Features are standardized (mean 0, standard deviation 1 on the training part; constant columns
are left at 0). Shards: ``iid`` (a random permutation cut into equal parts) or ``label``
(non-iid: the samples sorted by label, then cut into contiguous parts, so that each worker holds
one or a few labels; ties inside a label are shuffled). Every split is seeded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from minmaxlab.errors import ProblemError

BUILTIN = ("breast_cancer", "digits", "wine", "iris", "diabetes")
SPLITS = ("iid", "label")


def _builtin(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets as skd

    loader = {"breast_cancer": skd.load_breast_cancer, "digits": skd.load_digits,
              "wine": skd.load_wine, "iris": skd.load_iris, "diabetes": skd.load_diabetes}[name]
    d = loader()
    return np.asarray(d.data, dtype=float), np.asarray(d.target, dtype=float)


def load_dataset(source: str, label_column: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) from a built-in name, a CSV file or a LIBSVM file (see the module docstring)."""
    if not isinstance(source, (str, Path)):
        raise ProblemError(f"dataset must be a name or a path, got {source!r}")
    if str(source) in BUILTIN:
        return _builtin(str(source))
    path = Path(source)
    if not path.exists():
        raise ProblemError(f"dataset {str(source)!r} is neither a built-in set {BUILTIN} nor an "
                           "existing file")
    if path.suffix.lower() == ".csv":
        import pandas as pd

        df = pd.read_csv(path)
        if df.shape[1] < 2:
            raise ProblemError(f"{path}: a CSV data set needs a label column and at least one feature")
        col = label_column or ("label" if "label" in df.columns else df.columns[-1])
        if col not in df.columns:
            raise ProblemError(f"{path}: no column {col!r}; columns: {list(df.columns)}")
        feats = df.drop(columns=[col])
        bad = [c for c in feats.columns if not np.issubdtype(feats[c].dtype, np.number)]
        if bad:
            raise ProblemError(f"{path}: non-numeric feature column(s) {bad}")
        return feats.to_numpy(dtype=float), df[col].to_numpy(dtype=float)
    from sklearn.datasets import load_svmlight_file

    try:
        X, y = load_svmlight_file(str(path))
    except ValueError as exc:
        raise ProblemError(f"{path}: not a LIBSVM file: {exc}") from None
    return np.asarray(X.todense(), dtype=float), np.asarray(y, dtype=float)


def standardize(X_train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Z-scores with the training part's mean and standard deviation (applied to every array)."""
    mu = X_train.mean(axis=0)
    sd = X_train.std(axis=0)
    sd[sd == 0] = 1.0
    return [(X - mu) / sd for X in (X_train, *others)]


def train_test(n: int, test_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a random train / held-out split."""
    if not 0 <= test_fraction < 1:
        raise ProblemError(f"test_fraction must lie in [0, 1), got {test_fraction!r}")
    perm = rng.permutation(n)
    k = int(round(test_fraction * n))
    return np.sort(perm[k:]), np.sort(perm[:k])


def split_indices(y: np.ndarray, workers: int, how: str, rng: np.random.Generator) -> list[np.ndarray]:
    """Worker shards as index arrays: ``iid`` or ``label`` (sorted by label, contiguous parts)."""
    n = len(y)
    if how not in SPLITS:
        raise ProblemError(f"split must be one of {SPLITS}, got {how!r}")
    if n < workers:
        raise ProblemError(f"{n} samples cannot be split over {workers} workers")
    if how == "iid":
        return [np.sort(p) for p in np.array_split(rng.permutation(n), workers)]
    order = np.lexsort((rng.random(n), y))  # by label, random order inside a label
    return [np.sort(p) for p in np.array_split(order, workers)]


def synthetic_regression(n: int, features: int, rng: np.random.Generator, outliers: float = 0.05,
                         noise: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A linear model with a sparse truth and gross outliers: a ~ N(0, I), x_true with 10% non-zero
    N(0, 1) entries (at least one), b = a^T x_true + noise * N(0, 1), and a fraction ``outliers`` of
    the responses shifted by N(0, 10^2). Returns (A, b, x_true)."""
    X = rng.standard_normal((n, features))
    x_true = np.zeros(features)
    nnz = max(1, features // 10)
    x_true[rng.choice(features, nnz, replace=False)] = rng.standard_normal(nnz)
    b = X @ x_true + noise * rng.standard_normal(n)
    bad = rng.random(n) < outliers
    b[bad] += 10.0 * rng.standard_normal(int(bad.sum()))
    return X, b, x_true


__all__ = ["BUILTIN", "SPLITS", "load_dataset", "standardize", "train_test", "split_indices",
           "synthetic_regression"]
