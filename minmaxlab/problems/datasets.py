"""Data for the data-driven min-max families (nothing is downloaded).

Sources, by the value of ``dataset``:

* a scikit-learn set shipped with the library: ``breast_cancer``, ``digits``, ``wine``, ``iris``
  (classification) and ``diabetes`` (regression);
* a path ending in ``.csv``: a table read with pandas; the label is the column ``label`` (or the one
  named by ``label_column``; the last column when neither is given) and every other column is a
  numeric feature;
* any other path: a LIBSVM / svmlight file, read with ``sklearn.datasets.load_svmlight_file`` and
  kept sparse (a scipy CSR matrix).

Scaling (``scaling``, fitted on the training part): ``standardize`` (mean 0, standard deviation 1;
constant columns are left at 0), ``maxabs`` (each column divided by its largest absolute value:
zeros stay zeros, so sparse data stay sparse) or ``none``; ``auto`` standardizes dense data and
max-abs scales sparse data (at most ``SPARSE_DENSITY`` of the entries non-zero). Storage follows
the same rule by default: sparse data are stored compressed (see the data families).

Shards: ``iid`` (a random permutation cut into equal parts) or ``label``
(non-iid: the samples sorted by label, then cut into contiguous parts, so that each worker holds
one or a few labels; ties inside a label are shuffled). Every split is seeded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from minmaxlab.errors import ProblemError

BUILTIN = ("breast_cancer", "digits", "wine", "iris", "diabetes")
SPLITS = ("iid", "label")
SCALINGS = ("auto", "standardize", "maxabs", "none")
STORAGES = ("auto", "dense", "sparse")
SPARSE_DENSITY = 0.25  # data with at most this fraction of non-zero entries count as sparse


def _builtin(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets as skd

    loader = {"breast_cancer": skd.load_breast_cancer, "digits": skd.load_digits,
              "wine": skd.load_wine, "iris": skd.load_iris, "diabetes": skd.load_diabetes}[name]
    d = loader()
    return np.asarray(d.data, dtype=float), np.asarray(d.target, dtype=float)


def load_dataset(source: str, label_column: str | None = None):
    """(X, y) from a built-in name, a CSV file or a LIBSVM file (see the module docstring); X is a
    dense array, or a CSR matrix for LIBSVM files."""
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

        try:
            df = pd.read_csv(path)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise ProblemError(f"{path}: not a readable CSV table: {exc}") from None
        if df.shape[1] < 2:
            raise ProblemError(f"{path}: a CSV data set needs a label column and at least one feature")
        if len(df) == 0:
            raise ProblemError(f"{path}: the data set has no rows (a header only)")
        col = label_column or ("label" if "label" in df.columns else df.columns[-1])
        if col not in df.columns:
            raise ProblemError(f"{path}: no column {col!r}; columns: {list(df.columns)}")
        feats = df.drop(columns=[col])
        bad = [c for c in feats.columns if not np.issubdtype(feats[c].dtype, np.number)]
        if bad:
            raise ProblemError(f"{path}: non-numeric feature column(s) {bad}")
        try:
            y = df[col].to_numpy(dtype=float)
        except ValueError:
            raise ProblemError(f"{path}: the label column {col!r} must hold numbers") from None
        return _checked(path, feats.to_numpy(dtype=float), y)
    from sklearn.datasets import load_svmlight_file

    try:
        X, y = load_svmlight_file(str(path))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProblemError(f"{path}: not a LIBSVM file: {exc}") from None
    X = sp.csr_matrix(X, dtype=float)
    _checked(path, X.data, np.asarray(y, dtype=float), rows=X.shape[0])
    return X, np.asarray(y, dtype=float)


def _checked(path, X, y, rows=None):
    """A data set the problems can use: rows, finite features and labels, two labels at least."""
    n = len(y) if rows is None else rows
    if n == 0:
        raise ProblemError(f"{path}: the data set has no rows (a header only, or an empty file)")
    if not np.all(np.isfinite(X)):
        raise ProblemError(f"{path}: features hold missing or non-finite values (NaN or inf); "
                           "fill or drop those rows first")
    if not np.all(np.isfinite(y)):
        raise ProblemError(f"{path}: labels hold missing or non-finite values (NaN or inf); a "
                           "missing label is not a class")
    if np.unique(y).size < 2:
        raise ProblemError(f"{path}: every label is {y[0]:g}: the problems need at least two "
                           "labels (classes, or distinct regression targets)")
    return X, y


def density(X) -> float:
    """Fraction of non-zero entries of a dense array or sparse matrix."""
    size = X.shape[0] * X.shape[1]
    if size == 0:
        return 0.0
    nnz = X.count_nonzero() if sp.issparse(X) else int(np.count_nonzero(X))
    return nnz / size


def dense(X) -> np.ndarray:
    return np.asarray(X.toarray() if sp.issparse(X) else X, dtype=float)


def standardize(X_train, *others) -> list[np.ndarray]:
    """Z-scores with the training part's mean and standard deviation (applied to every array;
    sparse input comes out dense)."""
    X_train = dense(X_train)
    mu = X_train.mean(axis=0)
    sd = X_train.std(axis=0)
    sd[sd == 0] = 1.0
    return [(dense(X) - mu) / sd for X in (X_train, *others)]


def maxabs(X_train, *others) -> list:
    """Each column divided by its largest absolute value on the training part (columns that are
    all zero are left alone); sparse input stays sparse (CSR)."""
    if sp.issparse(X_train):
        m = abs(X_train).max(axis=0).toarray().ravel() if X_train.shape[0] else np.ones(X_train.shape[1])
    else:
        m = np.max(np.abs(X_train), axis=0) if len(X_train) else np.ones(X_train.shape[1])
    m[m == 0] = 1.0
    inv = sp.diags(1.0 / m)
    return [sp.csr_matrix(X @ inv) if sp.issparse(X) else np.asarray(X, dtype=float) / m
            for X in (X_train, *others)]


def prepare(X_train, X_test, scaling: str = "auto", storage: str = "auto"):
    """Scale the features (fitted on the training part) and choose their storage; returns
    (X_train, X_test, storage) with CSR matrices for ``sparse`` storage, arrays for ``dense``."""
    if scaling not in SCALINGS:
        raise ProblemError(f"scaling must be one of {SCALINGS}, got {scaling!r}")
    if storage not in STORAGES:
        raise ProblemError(f"storage must be one of {STORAGES}, got {storage!r}")
    sparse_data = density(X_train) <= SPARSE_DENSITY
    if scaling == "auto":
        scaling = "maxabs" if sparse_data else "standardize"
    if scaling == "standardize":
        X_train, X_test = standardize(X_train, X_test)
    elif scaling == "maxabs":
        X_train, X_test = maxabs(X_train, X_test)
    if storage == "auto":
        storage = "sparse" if density(X_train) <= SPARSE_DENSITY else "dense"
    if storage == "sparse":
        return sp.csr_matrix(X_train, dtype=float), sp.csr_matrix(X_test, dtype=float), storage
    return dense(X_train), dense(X_test), storage


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
    return (X, *_planted_response(X, rng, outliers, noise))


def _planted_response(X, rng, outliers, noise):
    """(b, x_true) for features X: x_true with 10% non-zero N(0, 1) entries (at least one),
    b = X x_true + noise * N(0, 1), a fraction ``outliers`` of b shifted by N(0, 10^2)."""
    n, features = X.shape
    x_true = np.zeros(features)
    nnz = max(1, features // 10)
    x_true[rng.choice(features, nnz, replace=False)] = rng.standard_normal(nnz)
    b = X @ x_true + noise * rng.standard_normal(n)
    bad = rng.random(n) < outliers
    b[bad] += 10.0 * rng.standard_normal(int(bad.sum()))
    return b, x_true


def synthetic_onehot(n: int, features: int, rng: np.random.Generator, outliers: float = 0.05,
                     noise: float = 0.1) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Sparse binary features shaped like LIBSVM's a9a (the one-hot encoding of the UCI adult
    census attributes: 123 columns, 14 non-zeros per row): ``features`` columns cut into
    round(features / 8.8) (at least 1) attributes of consecutive columns, each row one category
    per attribute with Zipf-like frequencies (category of rank r with probability proportional
    to 1/r, ranks shuffled per attribute). The response follows :func:`synthetic_regression`'s
    model: b = a^T x_true + noise * N(0, 1) with 10% non-zero N(0, 1) entries in x_true and a
    fraction ``outliers`` shifted by N(0, 10^2). Returns (A as CSR, b, x_true)."""
    q = max(1, min(features, int(round(features / 8.8))))
    cols = []
    for block in np.array_split(np.arange(features), q):
        k = len(block)
        pr = 1.0 / np.arange(1, k + 1)
        pr = pr[rng.permutation(k)]
        cols.append(block[rng.choice(k, size=n, p=pr / pr.sum())])
    C = np.stack(cols, axis=1)
    A = sp.csr_matrix((np.ones(n * q), C.ravel(), np.arange(0, n * q + 1, q)), shape=(n, features))
    A.sort_indices()
    return (A, *_planted_response(A, rng, outliers, noise))


__all__ = ["BUILTIN", "SPLITS", "SCALINGS", "STORAGES", "SPARSE_DENSITY", "load_dataset", "density",
           "dense", "standardize", "maxabs", "prepare", "train_test", "split_indices",
           "synthetic_regression", "synthetic_onehot"]
