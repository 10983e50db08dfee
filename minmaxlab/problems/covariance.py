"""Covariance-learning WGAN (Daskalakis, Ilyas, Syrgkanis, Zeng, ICLR 2018)."""

from __future__ import annotations

import numpy as np
from numba import njit

from minmaxlab.engine.registry import family_kernel
from minmaxlab.engine.rowkit import add_shift, each_row, row_index
from minmaxlab.problems.base import Problem, ProblemError

# the family ids of the kernels below (see minmaxlab.engine.registry)
FID_COVARIANCE = 9

GOLDEN = (1.0 + 5.0**0.5) / 2.0


class CovarianceWGAN(Problem):
    """Generator x = V xi (xi ~ N(0, I_n)), quadratic discriminator x^T W x:
    f(V, W) = <W, Sigma - V V^T>, minimized over V, maximized over W.

    F(V, W) = ( -(W + W^T) V , V V^T - Sigma ), with z = (vec V, vec W) row-major, dim = 2 n^2.
    Worker i holds ``samples`` data points x_ij ~ N(0, Sigma_i) and Sigma_i is their empirical second
    moment (``samples = 0``: the population Sigma_i). Heterogeneity h: worker i draws its data through
    C + h E_i (C = chol(Sigma), E_i Gaussian, centred). Solutions: V V^T = mean_i Sigma_i with W = 0;
    the library reports V* = chol(mean Sigma_i), W* = 0 (one of a family V* Q, Q orthogonal).

    Noise: ``with_noise(kind="finite_sum", batch=m)`` without sigma uses the data themselves, the
    natural sampling noise (the mini-batch second moment replaces Sigma_i).
    L on the box |entries| <= B: ||J|| <= golden-ratio * 2 n B (block-norm bound with
    ||W + W^T||_2 <= 2 n B and ||V||_2 <= n B). MVI is not guaranteed: sampled Minty ratios around
    z* are negative (status "fails", r_min unknown).
    """

    family = "covariance_wgan"
    references = ("Daskalakis, Ilyas, Syrgkanis, Zeng, Training GANs with Optimism, ICLR 2018",)

    def __init__(self, workers=1, n=2, samples=128, box=2.0, heterogeneity=0.0, shift=0.0, seed=0,
                 name="covariance_wgan"):
        workers = self._check_workers(name, workers)
        n = self._check_positive(name, "n", n, integer=True)
        if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 0:
            raise ProblemError(f"{name}: samples must be an integer >= 0, got {samples!r}")
        box = self._check_positive(name, "box", box)
        h = self._check_nonneg(name, "heterogeneity", heterogeneity)
        rng = np.random.default_rng(int(seed))
        B = rng.standard_normal((n, n))
        Sigma = B @ B.T / n + 0.1 * np.eye(n)
        Sigma /= np.linalg.eigvalsh(Sigma)[-1]  # largest eigenvalue 1: |chol entries| <= 1
        C = np.linalg.cholesky(Sigma)
        hrng = np.random.default_rng([int(seed), 303])
        E = hrng.standard_normal((workers, n, n)) / np.sqrt(n)
        if workers > 1:
            E -= E.mean(axis=0, keepdims=True)
        Ci = C[None] + h * E
        if samples > 0:
            drng = np.random.default_rng([int(seed), 404])
            X = np.einsum("wab,wsb->wsa", Ci, drng.standard_normal((workers, samples, n)))
            Sig_i = np.einsum("wsa,wsb->wab", X, X) / samples
            self._data = X
        else:
            Sig_i = np.einsum("wab,wcb->wac", Ci, Ci)
            self._data = None
        Sig_bar = Sig_i.mean(axis=0)
        dim = 2 * n * n
        sol = np.concatenate([np.linalg.cholesky(Sig_bar).ravel(), np.zeros(n * n)])
        # F_i(z*) = (0, V* V*^T - Sigma_i) = (0, Sigma_bar - Sigma_i): the workers' data differ
        residuals = np.concatenate([np.zeros((workers, n * n)),
                                    (Sig_bar[None] - Sig_i).reshape(workers, n * n)], axis=1)
        self._setup(
            name=name, dim=dim, dim_u=n * n, workers=workers, fid=FID_COVARIANCE,
            P=[n], A=Sig_i, S=np.zeros((1, dim)), A_mean=Sig_bar[None], S_mean=np.zeros((1, dim)),
            L=2.0 * GOLDEN * n * box, L_local=2.0 * GOLDEN * n * box,
            box=(-box, box), lipschitz="box", mvi="fails", r_min=None, solution=sol,
            heterogeneity=h, heterogeneity_kind="data",
            params=dict(n=n, samples=int(samples), box=box, heterogeneity=h, seed=int(seed)),
            residuals=residuals,
        )
        self._shift_workers(shift, seed)
        self.sigma_population = Sigma

    def _natural_shifts(self):
        """c_ij = (0, Sigma_i - x_ij x_ij^T): sums to zero over j since Sigma_i is the data mean."""
        if self._data is None:
            return None
        n = int(self._P[0])
        X = self._data
        outer = np.einsum("wsa,wsb->wsab", X, X).reshape(X.shape[0], X.shape[1], n * n)
        c = np.zeros((X.shape[0], X.shape[1], self.dim))
        c[:, :, n * n:] = self._A.reshape(X.shape[0], 1, n * n) - outer
        return c


# ---------------------------------------------------------------- the kernels
@njit(cache=True, inline="always")
def _op_covariance(i, Z, zr, O, orow, P, A, S):
    n = int(P[0])
    nn = n * n
    ks = row_index(A.shape[0], i)
    z = Z[zr]
    out = O[orow]
    # z = (vec V, vec W), row-major; F = ( -(W + W^T) V , V V^T - Sigma_i )
    for r in range(n):
        for c in range(n):
            acc = 0.0
            for k in range(n):
                acc += (z[nn + r * n + k] + z[nn + k * n + r]) * z[k * n + c]
            out[r * n + c] = -acc
    for r in range(n):
        for c in range(n):
            acc = 0.0
            for k in range(n):
                acc += z[r * n + k] * z[c * n + k]
            out[nn + r * n + c] = acc - A[ks, r, c]
    add_shift(i, O, orow, S)


# the family's kernel: the operator above on every row
covariance_rows = family_kernel(FID_COVARIANCE, rowwise=True)(each_row(_op_covariance))
