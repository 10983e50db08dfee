"""Data-driven min-max problems: robust regression, distributionally robust and fair classification.

    prob = mml.problem("robust_regression", workers=20)          # synthetic, 123 features
    prob = mml.problem("dro_logistic", workers=20, dataset="breast_cancer", split="label")
    trace = mml.run(prob, mml.topology("ring", 20), mml.DPOSG(eta=0.05), iterations=2000)
    mml.accuracy(prob, trace.final_z.mean(axis=0))               # held-out accuracy

Each worker holds a shard of the data (``split`` iid or by label) and its operator draws its own
mini-batches of ``batch`` samples from its shard and its own random stream (noise kind
"sampled"; ``batch=0``: the whole shard, exact operator). Worker i's shard is A[i, :n_i] (one row
per sample, with a weight column that makes the mini-batch estimates unbiased), the counts n_i are
at the end of P, and the mean operator F = (1/M) sum_i F_i runs on the pooled training data with
weights N / (M n_i), so that F is exactly the mean of the F_i. The held-out split is kept for
:func:`accuracy`. Each family applies its natural constraints in its constructor (see
``with_constraints`` to change them).

Declared constants are upper bounds computed from the data (on the stated box), not tight values:
``certifiable = False``; the MVI status is unknown (robust regression is nonconvex in x).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from minmaxlab.constraints import L1, Ball, Simplex
from minmaxlab.engine import datarows
from minmaxlab.engine.registry import family_kernel
from minmaxlab.errors import ProblemError
from minmaxlab.problems import datasets as D
from minmaxlab.problems.base import Noise, Problem, ShardedProblem

# the data families' kernels (minmaxlab.engine.datarows: mini-batches from each worker's shard)
FID_ROBUST_REGRESSION = 11
FID_GROUP_LOGISTIC = 12  # DRO logistic regression and fair classification
FID_ROBUST_SPARSE = 13  # the same on sparse storage
FID_GROUP_LOGISTIC_SPARSE = 14
family_kernel(FID_ROBUST_REGRESSION)(datarows.robust_rows)
family_kernel(FID_GROUP_LOGISTIC)(datarows.group_logistic_rows)
family_kernel(FID_ROBUST_SPARSE)(datarows.robust_sparse_rows)
family_kernel(FID_GROUP_LOGISTIC_SPARSE)(datarows.group_logistic_sparse_rows)


def _pack_sparse(blocks) -> np.ndarray:
    """Sparse kernel storage (see minmaxlab.engine.datarows) of blocks [(X CSR, extras (n, E))]: an
    array (len(blocks), 1, length) of compressed row buffers, zero-padded to the longest."""
    bufs = []
    for X, E in blocks:
        X = sp.csr_matrix(X, dtype=float)
        X.sort_indices()
        n, nE = X.shape[0], E.shape[1]
        k = np.diff(X.indptr).astype(np.int64)
        binary = bool(np.all(X.data == 1.0))
        rec = 1 + nE + (k + 1) // 2 + (0 if binary else k)  # words per record
        offs = (3 + n + 1) // 2 + np.concatenate([[0], np.cumsum(rec)])
        if offs[-1] >= 2**32 or X.shape[1] >= 2**32:
            raise ProblemError("sparse storage: a shard needs fewer than 2^32 words and columns")
        buf = np.zeros(int(offs[-1]))
        bits = buf.view(np.uint32)
        bits[0], bits[1] = n, int(binary)
        bits[2: 3 + n] = offs
        start = offs[:-1]
        bits[2 * start] = k
        for e in range(nE):
            buf[start + 1 + e] = E[:, e]
        within = np.arange(X.nnz) - np.repeat(X.indptr[:-1], k)  # q of each non-zero
        bits[np.repeat(2 * (start + 1 + nE), k) + within] = X.indices
        if not binary:
            buf[np.repeat(start + 1 + nE + (k + 1) // 2, k) + within] = X.data
        bufs.append(buf)
    A = np.zeros((len(bufs), 1, max(len(b) for b in bufs)))
    for i, b in enumerate(bufs):
        A[i, 0, : len(b)] = b
    return A


class _DataProblem(ShardedProblem):
    samples_own_batches = True
    certifiable = False

    def _store(self, shards, storage):
        """Kernel data from the shards [(X_i, extras_i)] (extras: the non-feature columns, the
        weight c last): (A, counts, A_mean). Keeps the shards and the pooled training data
        (weights N / (M n_i) times the workers' own) for the Python-side methods."""
        M = len(shards)
        N = sum(X.shape[0] for X, _ in shards)
        counts = [X.shape[0] for X, _ in shards]
        pooled_E = []
        for X, E in shards:
            E = E.copy()
            E[:, -1] *= N / (M * X.shape[0])
            pooled_E.append(E)
        Xs = [X for X, _ in shards]
        self._shards = shards
        self._pool = (sp.vstack(Xs, format="csr") if storage == "sparse" else np.vstack(Xs),
                      np.vstack(pooled_E))
        self.storage = storage
        if storage == "sparse":
            return _pack_sparse(shards), counts, _pack_sparse([self._pool])
        A, Abar = self.stacked_rows()
        return A, counts, Abar

    def stacked_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The dense layout of the data whatever the storage: the workers' rows stacked (M, n_max,
        columns; features, then the extra columns, zero-padded) and the pooled rows (1, N,
        columns)."""
        rows = [self.shard(i) for i in range(len(self._shards))]
        A = np.zeros((len(rows), max(len(r) for r in rows), rows[0].shape[1]))
        for i, r in enumerate(rows):
            A[i, : len(r)] = r
        X, E = self._pool
        return A, np.hstack([D.dense(X), E])[None]

    def _set_noise(self, batch):
        batch = int(batch)
        if batch < 0:
            raise ProblemError(f"{self.name}: batch must be an integer >= 0, got {batch!r}")
        self.noise = Noise("sampled", float("nan"), batch) if batch > 0 else Noise()

    def _data(self, worker):
        """(features, extras) of worker i's shard, or of the pooled data (worker None)."""
        return self._pool if worker is None else self._shards[worker]

    def shard(self, i: int) -> np.ndarray:
        """Worker i's rows as a dense array (features, response or label, extra columns, weight)."""
        X, E = self._shards[i]
        return np.hstack([D.dense(X), E])


def _row_norms(X) -> np.ndarray:
    if sp.issparse(X):
        return np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    return np.linalg.norm(X, axis=1)


class RobustRegression(_DataProblem):
    """Robust nonconvex regression against an adversarial perturbation of the features.

    Worker i holds samples (a_j, b_j), a_j in R^p; the model is x in R^p (min), the perturbation
    y in R^p (max):

        f_i(x, y) = (1/n_i) sum_j log(1 + (b_j - (a_j + y)^T x)^2 / 2) - (lambda/2) ||y||^2,

    F_i = (grad_x f_i, -grad_y f_i), on mini-batches of ``batch`` samples (0: the whole shard).
    Constraints applied by default: the l1 prox on x (``L1(l1)``; none when l1 = 0) and the
    projection of y on the ball of radius ``radius`` (``Ball(radius)``).
    Reference: Mancino-Ball and Xu, "Variance-reduced accelerated methods for decentralized
    stochastic double-regularized nonconvex strongly-concave minimax problems", 2023.

    Constants: f_i is lambda-strongly concave in y (``mu_y = lambda``). The loss phi(r) =
    log(1 + r^2/2) has |phi'| <= 1/sqrt(2) and |phi''| <= 1. On the box |x_c| <= ``box`` (so
    ||x|| <= X = box sqrt(p)) and ||y|| <= radius, the Jacobian blocks are bounded by
    T2 = mean (||a_j|| + radius)^2 (xx), T1 X + 1/sqrt(2) (xy and yx, T1 = mean (||a_j|| + radius))
    and X^2 + lambda (yy), so L <= sqrt(T2^2 + 2 (T1 X + 1/sqrt 2)^2 + (X^2 + lambda)^2), with the
    means over the pooled training data for L and over each shard for L_local (max over workers).
    The declared box: x in [-box, box]^p, y in [-radius/sqrt(p), radius/sqrt(p)]^p (inside the
    ball). These are bounds, not tight values.

    Data: ``dataset="synthetic"`` (default; dense Gaussian features, exactly ``samples`` per
    worker, ``features`` features, a held-out part of ``test_fraction`` of the total on top, see
    :func:`minmaxlab.problems.datasets.synthetic_regression`), ``"synthetic_onehot"`` (the same
    model on sparse one-hot features shaped like LIBSVM's a9a, see
    :func:`minmaxlab.problems.datasets.synthetic_onehot`), or a built-in / CSV / LIBSVM
    regression set (response standardized). ``scaling`` and ``storage`` as in
    :func:`minmaxlab.problems.datasets.prepare`: by default dense data are standardized and
    stored as rows, sparse data (LIBSVM files, one-hot features) are max-abs scaled and stored
    compressed; both storages give the same operator up to rounding.
    """

    family = "robust_regression"
    references = ("Mancino-Ball and Xu, decentralized double-regularized nonconvex strongly-concave "
                  "minimax, 2023",)

    def __init__(self, workers=1, dataset="synthetic", samples=1600, features=123, split="iid",
                 lam=1.0, l1=0.01, radius=1.0, box=1.0, batch=32, test_fraction=0.0,
                 label_column=None, scaling="auto", storage="auto", seed=0, name="robust_regression"):
        workers = self._check_workers(name, workers)
        lam = self._check_positive(name, "lam", lam)
        radius = self._check_positive(name, "radius", radius)
        box = self._check_positive(name, "box", box)
        l1 = self._check_nonneg(name, "l1", l1)
        rng = np.random.default_rng([int(seed), 1101])
        if dataset in ("synthetic", "synthetic_onehot"):
            samples = self._check_positive(name, "samples", samples, integer=True)
            features = self._check_positive(name, "features", features, integer=True)
            if not 0 <= test_fraction < 1:
                raise ProblemError(f"{name}: test_fraction must lie in [0, 1), got {test_fraction!r}")
            n_train = samples * workers  # exactly ``samples`` per worker; the held-out part on top
            n_test = int(round(test_fraction * n_train / (1 - test_fraction)))
            make = D.synthetic_regression if dataset == "synthetic" else D.synthetic_onehot
            X, b, self.x_true = make(n_train + n_test, features, rng)
            tr, te = np.arange(n_train), np.arange(n_train, n_train + n_test)
        else:
            X, b = D.load_dataset(dataset, label_column)
            self.x_true = None
            tr, te = D.train_test(X.shape[0], test_fraction, rng)
        Xtr, Xte, storage = D.prepare(X[tr], X[te], scaling, storage)
        btr, bte = b[tr], b[te]
        if not dataset.startswith("synthetic"):
            mu, sd = btr.mean(), btr.std() or 1.0
            btr, bte = (btr - mu) / sd, (bte - mu) / sd
        p = Xtr.shape[1]
        idx = D.split_indices(btr, workers, split, rng)
        shards = [(Xtr[s], np.column_stack([btr[s], np.ones(len(s))])) for s in idx]
        A, counts, Abar = self._store(shards, storage)
        L = self._bound(*self._pool, p, lam, radius, box)
        L_local = max(self._bound(X_s, E_s, p, lam, radius, box) for X_s, E_s in shards)
        lo = np.concatenate([np.full(p, -box), np.full(p, -radius / math.sqrt(p))])
        self._setup(
            name=name, dim=2 * p, dim_u=p, workers=workers,
            fid=FID_ROBUST_SPARSE if storage == "sparse" else FID_ROBUST_REGRESSION,
            P=[p, lam, workers, *counts], A=A, S=np.zeros((1, 1)), A_mean=Abar, S_mean=np.zeros((1, 1)),
            L=L, L_local=L_local, box=(lo, -lo), lipschitz="box", mvi="unknown", r_min=None,
            solution=None, heterogeneity=0.0 if split == "iid" else 1.0,
            heterogeneity_kind=f"data split {split}",
            params=dict(dataset=dataset, samples=samples, features=features, split=split, lam=lam,
                        l1=l1, radius=radius, box=box, batch=batch, test_fraction=test_fraction,
                        label_column=label_column, scaling=scaling, storage=storage, seed=int(seed)),
        )
        self._set_noise(batch)
        self.constraints = (L1(l1) if l1 > 0 else None, Ball(radius))
        self.mu_y = lam
        self.test_data = (Xte, bte)

    @staticmethod
    def _bound(X, E, p, lam, radius, box):
        c = E[:, -1] / X.shape[0]
        na = _row_norms(X) + radius
        T1, T2 = float(c @ na), float(c @ na**2)
        Xn = box * math.sqrt(p)
        return math.sqrt(T2**2 + 2 * (T1 * Xn + 1 / math.sqrt(2)) ** 2 + (Xn * Xn + lam) ** 2)

    def objective(self, z, worker: int | None = None) -> float:
        """f_i(x, y) on worker i's whole shard (worker None: f = (1/M) sum_i f_i)."""
        z = np.asarray(z, dtype=float)
        p = self.dim_u
        X, E = self._data(worker)
        x, y = z[:p], z[p:]
        r = E[:, 0] - X @ x - y @ x
        return float(np.mean(E[:, -1] * np.log1p(r * r / 2)) - 0.5 * self.params["lam"] * y @ y)

    def test_loss(self, z) -> float:
        """Mean robust loss log(1 + r^2/2) of the model x on the held-out split (y = 0)."""
        Xte, bte = self.test_data
        if len(bte) == 0:
            return math.nan
        r = bte - Xte @ np.asarray(z, dtype=float)[: self.dim_u]
        return float(np.mean(np.log1p(r * r / 2)))


def _lambda_max(S) -> float:
    """Largest eigenvalue of a symmetric positive semi-definite matrix (dense or sparse)."""
    if sp.issparse(S):
        if S.shape[0] > 2000:
            from scipy.sparse.linalg import eigsh

            return float(eigsh(S, k=1, which="LA", return_eigenvectors=False)[0]) * (1 + 1e-9)
        S = S.toarray()
    return float(np.linalg.eigvalsh(S)[-1])


def _groups(kind, X, y, rng):
    """Group index of every sample: ``label`` (the classes), ``feature:j`` (feature j above or
    below its median: 2 groups), ``kmeans:K`` (K clusters of the features)."""
    if kind == "label":
        _, g = np.unique(y, return_inverse=True)
        return g, None
    if isinstance(kind, str) and kind.startswith("feature:") and kind[8:].isdigit():
        j = int(kind[8:])
        if j >= X.shape[1]:
            raise ProblemError(f"groups {kind!r}: the data have {X.shape[1]} features")
        col = D.dense(X[:, j]).ravel()
        thr = float(np.median(col))
        return (col > thr).astype(int), ("feature", j, thr)
    if isinstance(kind, str) and kind.startswith("kmeans:") and kind[7:].isdigit() and int(kind[7:]) >= 2:
        from sklearn.cluster import KMeans

        km = KMeans(n_clusters=int(kind[7:]), n_init=4, random_state=int(rng.integers(2**31)))
        return km.fit_predict(X), ("kmeans", km)
    raise ProblemError(f"groups must be 'label', 'feature:J' or 'kmeans:K', got {kind!r}")


def _binary(y):
    """Labels in {-1, +1}: for more than two classes, the upper half of the sorted classes is +1."""
    classes = np.unique(y)
    if len(classes) < 2:
        raise ProblemError("classification data need at least two classes")
    pos = classes[len(classes) // 2:]
    return np.where(np.isin(y, pos), 1.0, -1.0)


class GroupLogistic(_DataProblem):
    """Shared form of the group-weighted logistic families (see the subclasses).

        f_i(w, q) = sum_k q_k L_{i,k}(w) + (l2/2) ||w_a||^2 - (rho/2) ||q - 1/K||^2,

    w = (w_a, bias) in R^(p+1) (min), q in R^K (max, on the simplex by default), L_{i,k} the mean
    logistic loss log(1 + exp(-y (a^T w_a + bias))) over worker i's samples of group k (0 when the
    worker holds none). A sample of group k on worker i carries the weight c = n_i / n_{i,k}, so
    the mean of c q_g loss over a uniform mini-batch is unbiased for sum_k q_k L_{i,k}.

    Constants (bounds, on the box |w_c| <= ``box``, q in [0, 1]^K; they hold for every w): with
    x = (a, 1), S_k the mean of x x^T over group k and G_k the mean of ||x|| over group k,
    ||d^2 f / dw^2|| <= (1/4) sum_k lambda_max(S_k) + l2 and ||d^2 f / dw dq|| <= sqrt(sum_k G_k^2),
    so L <= max((1/4) sum_k lambda_max(S_k) + l2, rho) + sqrt(sum_k G_k^2) (pooled data for L,
    each shard for L_local). f is rho-strongly concave in q.

    Data: a built-in, CSV or LIBSVM set; ``scaling`` and ``storage`` as in
    :func:`minmaxlab.problems.datasets.prepare` (dense data standardized and stored as rows,
    sparse data max-abs scaled and stored compressed, by default).
    """

    default_groups = "label"

    def __init__(self, workers=1, dataset="breast_cancer", split="iid", groups=None, rho=1.0,
                 l2=1e-3, batch=32, test_fraction=0.25, box=5.0, label_column=None, scaling="auto",
                 storage="auto", seed=0, name=None):
        name = name or self.family
        workers = self._check_workers(name, workers)
        rho = self._check_positive(name, "rho", rho)
        l2 = self._check_nonneg(name, "l2", l2)
        box = self._check_positive(name, "box", box)
        groups = self.default_groups if groups is None else groups
        rng = np.random.default_rng([int(seed), 1202])
        X, y = D.load_dataset(dataset, label_column)
        tr, te = D.train_test(X.shape[0], test_fraction, rng)
        Xtr, Xte, storage = D.prepare(X[tr], X[te], scaling, storage)
        stack = sp.vstack if storage == "sparse" else np.vstack
        g_all, rule = _groups(groups, stack([Xtr, Xte]), np.concatenate([y[tr], y[te]]), rng)
        gtr, gte = g_all[: len(tr)], g_all[len(tr):]
        K_groups = int(g_all.max()) + 1
        yb = _binary(np.concatenate([y[tr], y[te]]))
        ytr, yte = yb[: len(tr)], yb[len(tr):]
        p = Xtr.shape[1]
        idx = D.split_indices(y[tr], workers, split, rng)
        shards = []
        for s in idx:
            gs = gtr[s]
            cnt = np.bincount(gs, minlength=K_groups).astype(float)
            c = len(s) / cnt[gs]
            shards.append((Xtr[s], np.column_stack([ytr[s], gs, c])))
        A, counts, Abar = self._store(shards, storage)
        L = self._bound(*self._pool, p, K_groups, rho, l2)
        L_local = max(self._bound(X_s, E_s, p, K_groups, rho, l2) for X_s, E_s in shards)
        lo = np.concatenate([np.full(p + 1, -box), np.zeros(K_groups)])
        hi = np.concatenate([np.full(p + 1, box), np.ones(K_groups)])
        self._setup(
            name=name, dim=p + 1 + K_groups, dim_u=p + 1, workers=workers,
            fid=FID_GROUP_LOGISTIC_SPARSE if storage == "sparse" else FID_GROUP_LOGISTIC,
            P=[p, K_groups, rho, l2, workers, *counts], A=A, S=np.zeros((1, 1)), A_mean=Abar,
            S_mean=np.zeros((1, 1)), L=L, L_local=L_local, box=(lo, hi), lipschitz="box",
            mvi="unknown", r_min=None, solution=None, heterogeneity=0.0 if split == "iid" else 1.0,
            heterogeneity_kind=f"data split {split}",
            params=dict(dataset=dataset, split=split, groups=groups, rho=rho, l2=l2, batch=batch,
                        test_fraction=test_fraction, box=box, label_column=label_column,
                        scaling=scaling, storage=storage, seed=int(seed)),
        )
        self._set_noise(batch)
        self.constraints = (None, Simplex(1.0))
        self.groups = K_groups
        self.mu_y = rho
        self.test_data = (Xte, yte, gte)
        self.train_data = (Xtr, ytr, gtr)

    @staticmethod
    def _bound(X, E, p, K_groups, rho, l2):
        Xa = (sp.hstack([X, np.ones((X.shape[0], 1))], format="csr") if sp.issparse(X)
              else np.hstack([X, np.ones((X.shape[0], 1))]))
        g = E[:, 1].astype(int)
        c = E[:, -1] / X.shape[0]
        norms = _row_norms(Xa)
        lam, G2 = 0.0, 0.0
        for k in range(K_groups):
            sel = np.flatnonzero(g == k)
            if not len(sel):
                continue
            Xk = Xa[sel]
            S = Xk.T @ (Xk.multiply(c[sel, None]) if sp.issparse(Xk) else Xk * c[sel, None])
            lam += _lambda_max(S)
            G2 += float(c[sel] @ norms[sel]) ** 2
        return max(0.25 * lam + l2, rho) + math.sqrt(G2)

    def objective(self, z, worker: int | None = None) -> float:
        """f_i(w, q) on worker i's whole shard (worker None: f = (1/M) sum_i f_i)."""
        z = np.asarray(z, dtype=float)
        p = self.dim_u - 1
        K_groups = self.groups
        X, E = self._data(worker)
        w, b, q = z[:p], z[p], z[p + 1:]
        s = X @ w + b
        loss = np.logaddexp(0.0, -E[:, 0] * s)
        g = E[:, 1].astype(int)
        val = np.mean(E[:, -1] * q[g] * loss)
        return float(val + 0.5 * self.params["l2"] * w @ w
                     - 0.5 * self.params["rho"] * np.sum((q - 1.0 / K_groups) ** 2))

    def group_losses(self, z, heldout: bool = True) -> np.ndarray:
        """Mean logistic loss of the model in each group (held-out split by default)."""
        X, y, g = self.test_data if heldout else self.train_data
        z = np.asarray(z, dtype=float)
        p = self.dim_u - 1
        loss = np.logaddexp(0.0, -y * (X @ z[:p] + z[p]))
        return np.array([loss[g == k].mean() if np.any(g == k) else np.nan for k in range(self.groups)])


class DRORegression(GroupLogistic):
    """Distributionally robust logistic regression over K groups of the data (group DRO):

        min_w max_{q in simplex_K} sum_k q_k L_k(w) + (l2/2)||w_a||^2 - (rho/2) ||q - 1/K||^2,

    a chi-square-like penalty keeping q near uniform. The adversary's weights are over a FIXED
    number K of groups (``groups``: ``kmeans:K`` clusters of the features, the default with K = 4;
    ``label``; ``feature:J``), so every worker has the same dimension p + 1 + K; the groups' losses
    are the workers' own (see the shared form below). The q player is projected on the simplex.
    References: Namkoong and Duchi, "Stochastic gradient methods for distributionally robust
    optimization with f-divergences", NeurIPS 2016; Sagawa, Koh, Hashimoto, Liang, "Distributionally
    robust neural networks for group shifts", ICLR 2020.
    """ + GroupLogistic.__doc__.split("\n", 1)[1]

    family = "dro_logistic"
    default_groups = "kmeans:4"
    references = ("Namkoong and Duchi, NeurIPS 2016", "Sagawa et al., group DRO, ICLR 2020")


class FairClassification(GroupLogistic):
    """Fair (agnostic) classification: the worst mixture of protected groups,

        min_w max_{q in simplex_G} sum_g q_g L_g(w) + (l2/2)||w_a||^2 - (rho/2) ||q - 1/G||^2,

    with logistic losses per group; groups are given by the labels (``groups="label"``, default) or
    by a feature split at its median (``feature:J``). The q player is projected on the simplex.
    Reference: Mohri, Sivek, Suresh, "Agnostic federated learning", ICML 2019.
    """ + GroupLogistic.__doc__.split("\n", 1)[1]

    family = "fair_classification"
    default_groups = "label"
    references = ("Mohri, Sivek, Suresh, Agnostic federated learning, ICML 2019",)


def accuracy(problem: Problem, z) -> float:
    """Held-out accuracy of the classifier z (a network average, say) of a classification family:
    the fraction of held-out samples with sign(a^T w_a + bias) equal to the label."""
    if not isinstance(problem, GroupLogistic):
        raise ProblemError(f"accuracy needs a classification family, got {problem.family!r}")
    X, y, _ = problem.test_data
    if len(y) == 0:
        return math.nan
    z = np.asarray(z, dtype=float)
    p = problem.dim_u - 1
    s = X @ z[:p] + z[p]
    return float(np.mean(np.where(s >= 0, 1.0, -1.0) == y))


__all__ = ["RobustRegression", "DRORegression", "FairClassification", "accuracy"]
