"""Families built on a coupling matrix u^T A v: bilinear, strongly monotone quadratic, Minty bowl,
and the weak-MVI quadratic.

Heterogeneity ``h`` in the matrix families: worker i holds A_i = A + h E_i with E_i Gaussian
(entries of variance 1/max(p, q)) and centred over the workers, so mean_i A_i = A. In the weak-MVI
quadratic (no matrix) worker i holds F_i = F + h b_i with b_i Gaussian, centred.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from minmaxlab.engine.registry import family_kernel
from minmaxlab.engine.rowkit import add_shift, each_row, row_index
from minmaxlab.problems.base import Problem, ProblemError

# the family ids of the kernels below (see minmaxlab.engine.registry)
FID_BILINEAR = 1
FID_QUADRATIC = 2
FID_MINTY_BOWL = 3
FID_WEAK_MVI = 4
# the Minty bowl's g (P[2])
G_RATIONAL = 0
G_LOG = 1
G_GAUSSIAN = 2
G_QUARTIC = 3


def _matrix_with_spectrum(rng, p, q, smax, condition):
    """A p x q matrix whose singular values are log-spaced from smax/condition to smax."""
    k = min(p, q)
    s = smax * np.logspace(-np.log10(condition), 0.0, k) if k > 1 else np.array([smax])
    U, _ = np.linalg.qr(rng.standard_normal((p, p)))
    V, _ = np.linalg.qr(rng.standard_normal((q, q)))
    return (U[:, :k] * s) @ V[:, :k].T


def _local_matrices(seed, A, h, workers):
    if h == 0.0 or workers == 1:
        return A[None, :, :].copy()
    rng = np.random.default_rng([int(seed), 101])
    p, q = A.shape
    E = rng.standard_normal((workers, p, q)) / np.sqrt(max(p, q))
    E -= E.mean(axis=0, keepdims=True)
    return A[None, :, :] + h * E


def _pack(Ai):
    """Kernel layout of a stack of p x q matrices: rows 0..p-1 hold A_k, rows p..p+q-1 hold A_k^T
    (padded to max(p, q) columns), so that both A v and A^T u run as contiguous loops."""
    K, p, q = Ai.shape
    out = np.zeros((K, p + q, max(p, q)))
    out[:, :p, :q] = Ai
    out[:, p:, :p] = np.transpose(Ai, (0, 2, 1))
    return out


def _split_dim(name, dim, dim_u):
    dim = Problem._check_positive(name, "dim", dim, integer=True)
    if dim < 2:
        raise ProblemError(f"{name}: dim must be >= 2 (both players need a coordinate), got {dim}")
    if dim_u is None:
        if dim % 2:
            raise ProblemError(f"{name}: dim must be even when dim_u is not given, got {dim}")
        dim_u = dim // 2
    if not isinstance(dim_u, (int, np.integer)) or not 1 <= dim_u < dim:
        raise ProblemError(f"{name}: dim_u must be an integer in 1..dim-1, got {dim_u!r}")
    return dim, int(dim_u)


def _smax(M):
    return float(np.linalg.norm(M, 2))


class BilinearGame(Problem):
    """f(u, v) = u^T A v + b^T u + c^T v;  F(z) = (A v + b, -A^T u - c).

    Monotone (skew) operator: <F(z), z - z*> = 0 (MVI with equality). L = sigma_max(A).
    A has singular values log-spaced in [scale / condition, scale]; ``offset`` > 0 draws b and c
    (then A must be square and z* solves A v = -b, A^T u = -c). Simultaneous GDA diverges, optimistic
    and extragradient methods converge.
    References: Daskalakis, Ilyas, Syrgkanis, Zeng, ICLR 2018; Gidel et al., ICLR 2019.
    """

    family = "bilinear"
    references = ("Daskalakis et al., Training GANs with Optimism, ICLR 2018",
                  "Gidel et al., A Variational Inequality Perspective on GANs, ICLR 2019")

    def __init__(self, workers=1, dim=4, dim_u=None, scale=1.0, condition=10.0, offset=0.0,
                 heterogeneity=0.0, shift=0.0, seed=0, name="bilinear"):
        workers = self._check_workers(name, workers)
        dim, p = _split_dim(name, dim, dim_u)
        scale = self._check_positive(name, "scale", scale)
        condition = self._check_positive(name, "condition", condition)
        if condition < 1:
            raise ProblemError(f"{name}: condition must be >= 1, got {condition}")
        offset = self._check_nonneg(name, "offset", offset)
        h = self._check_nonneg(name, "heterogeneity", heterogeneity)
        q = dim - p
        rng = np.random.default_rng(int(seed))
        A = _matrix_with_spectrum(rng, p, q, scale, condition)
        Ai = _local_matrices(seed, A, h, workers)
        b = np.zeros(p)
        c = np.zeros(q)
        sol = np.zeros(dim)
        if offset > 0:
            if p != q:
                raise ProblemError(f"{name}: offset > 0 needs a square A (dim_u = dim / 2)")
            b = offset * rng.standard_normal(p)
            c = offset * rng.standard_normal(q)
            sol = np.concatenate([np.linalg.solve(A.T, -c), np.linalg.solve(A, -b)])
        S = np.concatenate([b, -c])[None, :]
        # F_i(z*) = ((A_i - A) v*, -(A_i - A)^T u*): the matrices differ where z* != 0
        D = Ai - A[None]
        residuals = np.concatenate([D @ sol[p:], -np.transpose(D, (0, 2, 1)) @ sol[:p]], axis=1)
        self._setup(
            name=name, dim=dim, dim_u=p, workers=workers, fid=FID_BILINEAR,
            P=[p], A=_pack(Ai), S=S, A_mean=_pack(A[None]), S_mean=S,
            L=scale, L_local=max(_smax(M) for M in Ai),
            box=(sol - 2.0, sol + 2.0), lipschitz="global",
            mvi="equality", r_min=None, solution=sol,
            heterogeneity=h, heterogeneity_kind="matrix",
            params=dict(dim=dim, dim_u=p, scale=scale, condition=condition, offset=offset,
                        heterogeneity=h, seed=int(seed)),
            residuals=residuals,
        )
        self._shift_workers(shift, seed)
        self.matrix = A


class StronglyMonotoneQuadratic(Problem):
    """f = (mu/2)||u||^2 + u^T A v - (mu/2)||v||^2;  F(z) = mu z + (A v, -A^T u).

    mu-strongly monotone, L = sqrt(mu^2 + sigma_max(A)^2), z* = 0; linear convergence expected
    (a sanity check for every method).
    """

    family = "quadratic"
    references = ("Strongly monotone bilinear-quadratic game (standard sanity check)",)

    def __init__(self, workers=1, dim=4, dim_u=None, mu=0.1, scale=1.0, condition=10.0,
                 heterogeneity=0.0, shift=0.0, seed=0, name="quadratic"):
        workers = self._check_workers(name, workers)
        dim, p = _split_dim(name, dim, dim_u)
        mu = self._check_positive(name, "mu", mu)
        scale = self._check_positive(name, "scale", scale)
        condition = self._check_positive(name, "condition", condition)
        h = self._check_nonneg(name, "heterogeneity", heterogeneity)
        rng = np.random.default_rng(int(seed))
        A = _matrix_with_spectrum(rng, p, dim - p, scale, max(condition, 1.0))
        Ai = _local_matrices(seed, A, h, workers)
        S = np.zeros((1, dim))
        self._setup(
            name=name, dim=dim, dim_u=p, workers=workers, fid=FID_QUADRATIC,
            P=[p, mu], A=_pack(Ai), S=S, A_mean=_pack(A[None]), S_mean=S,
            L=float(np.hypot(mu, scale)),
            L_local=max(float(np.hypot(mu, _smax(M))) for M in Ai),
            box=(-2.0, 2.0), lipschitz="global",
            mvi="holds", r_min=None, solution=np.zeros(dim),
            heterogeneity=h, heterogeneity_kind="matrix",
            params=dict(dim=dim, dim_u=p, mu=mu, scale=scale, condition=condition,
                        heterogeneity=h, seed=int(seed)),
        )
        self._shift_workers(shift, seed)
        self.matrix = A


_G_KINDS = {
    # name: (kernel id, max |g''|, description)
    "rational": (G_RATIONAL, 2.0, "g(s) = s^2/(1+s^2), g'' in [-1/2, 2]"),
    "log": (G_LOG, 1.0, "g(s) = log(1+s^2)/2, g'' in [-1/8, 1]"),
    "gaussian": (G_GAUSSIAN, 1.0, "g(s) = 1 - exp(-s^2/2), g'' in [-2 e^(-3/2), 1]"),
    # g''(s) = (3 s^2 - s^6) / (1 + s^4)^2: its maximum 0.88009 (at s = 0.7109) rounded up
    "quartic": (G_QUARTIC, 0.881, "g(s) = log(1+s^4)/4, g'' in [-0.1846, 0.8801], g''(0) = 0"),
}


class MintyBowl(Problem):
    """Nonconvex-nonconcave game satisfying MVI:
    f = alpha sum_j g(u_j) - alpha sum_j g(v_j) + u^T A v, with an even g, s g'(s) >= 0.

    F(z) = (alpha g'(u) + A v, alpha g'(v) - A^T u), so <F(z), z> = alpha sum s g'(s) >= 0: MVI holds
    at z* = 0 while f is neither convex in u nor concave in v (g is nonconvex away from 0).
    L <= alpha max|g''| + sigma_max(A) (a certified bound: Jacobian = diagonal + skew part).
    ``g`` is one of "rational" (default), "log", "gaussian", "quartic"; bring any other g through
    ``Problem.from_operator``. This family matches the assumptions of DPOSG's theorem exactly.
    With ``g="quartic"`` (g''(0) = 0) and dim_u != dim - dim_u, the coupling A has a null space
    in which only the cubic part of g' pulls towards z*: the solution is degenerate and the
    methods converge at a sublinear (polynomial) rate, the regime in which an O(1/K) bound is
    informative.
    """

    family = "minty_bowl"
    references = ("Liu et al., A Decentralized Parallel Algorithm for Training GANs, NeurIPS 2020 "
                  "(assumptions); library construction, see PROBLEMS.md",)

    def __init__(self, workers=1, dim=20, dim_u=None, coupling=1.0, condition=10.0, alpha=1.0,
                 g="rational", heterogeneity=0.0, shift=0.0, seed=0, name="minty_bowl"):
        workers = self._check_workers(name, workers)
        dim, p = _split_dim(name, dim, dim_u)
        coupling = self._check_positive(name, "coupling", coupling)
        condition = self._check_positive(name, "condition", condition)
        alpha = self._check_positive(name, "alpha", alpha)
        if g not in _G_KINDS:
            raise ProblemError(f"{name}: g must be one of {sorted(_G_KINDS)}, got {g!r}")
        h = self._check_nonneg(name, "heterogeneity", heterogeneity)
        gid, g2, _ = _G_KINDS[g]
        rng = np.random.default_rng(int(seed))
        A = _matrix_with_spectrum(rng, p, dim - p, coupling, max(condition, 1.0))
        Ai = _local_matrices(seed, A, h, workers)
        S = np.zeros((1, dim))
        self._setup(
            name=name, dim=dim, dim_u=p, workers=workers, fid=FID_MINTY_BOWL,
            P=[p, alpha, gid], A=_pack(Ai), S=S, A_mean=_pack(A[None]), S_mean=S,
            L=alpha * g2 + coupling, L_local=alpha * g2 + max(_smax(M) for M in Ai),
            box=(-3.0, 3.0), lipschitz="global",
            mvi="holds", r_min=None, solution=np.zeros(dim),
            heterogeneity=h, heterogeneity_kind="matrix",
            params=dict(dim=dim, dim_u=p, coupling=coupling, condition=condition, alpha=alpha,
                        g=g, heterogeneity=h, seed=int(seed)),
        )
        self._shift_workers(shift, seed)
        self.matrix = A


def shift_heterogeneity(seed, h, workers, dim):
    if h == 0.0 or workers == 1:
        return np.zeros((1, dim))
    rng = np.random.default_rng([int(seed), 202])
    b = rng.standard_normal((workers, dim))
    b -= b.mean(axis=0, keepdims=True)
    return h * b


class WeakMVIQuadratic(Problem):
    """f = (b/2)||u||^2 + a u^T v - (b/2)||v||^2 with b < 0 (concave in u, convex in v).

    F(z) = (b u + a v, -a u + b v), L = sqrt(a^2 + b^2), <F(z), z> = b ||z||^2 < 0: MVI fails and the
    Minty ratio is constant, r_min = b / (a^2 + b^2) (weak MVI). z* = 0. ``dim`` = 2n stacks n copies.
    References: Pethick et al., Escaping limit cycles, ICLR 2022; Diakonikolas, Daskalakis, Jordan,
    AISTATS 2021 (EG+).
    """

    family = "weak_mvi_quadratic"
    references = ("Pethick et al., Escaping limit cycles, ICLR 2022",
                  "Diakonikolas, Daskalakis, Jordan, Efficient methods for structured "
                  "nonconvex-nonconcave min-max optimization, AISTATS 2021")

    def __init__(self, workers=1, dim=2, a=1.0, b=-0.1, heterogeneity=0.0, shift=0.0, seed=0,
                 name="weak_mvi_quadratic"):
        workers = self._check_workers(name, workers)
        dim, n = _split_dim(name, dim, None)
        for key, val in (("a", a), ("b", b)):
            if isinstance(val, bool) or not isinstance(val, (int, float)) or not np.isfinite(val):
                raise ProblemError(f"{name}: {key} must be a finite number, got {val!r}")
        if a == 0 and b == 0:
            raise ProblemError(f"{name}: a and b cannot both be 0")
        h = self._check_nonneg(name, "heterogeneity", heterogeneity)
        L = float(np.hypot(a, b))
        if b < 0:
            mvi, r_min = "fails", b / (a * a + b * b)
        elif b == 0:
            mvi, r_min = "equality", None
        else:
            mvi, r_min = "holds", None
        S = shift_heterogeneity(seed, h, workers, dim)
        self._setup(
            name=name, dim=dim, dim_u=n, workers=workers, fid=FID_WEAK_MVI,
            P=[n, float(a), float(b)], A=np.zeros((1, 1, 1)), S=S,
            A_mean=np.zeros((1, 1, 1)), S_mean=np.zeros((1, dim)),
            L=L, L_local=L, box=(-2.0, 2.0), lipschitz="global",
            mvi=mvi, r_min=r_min, solution=np.zeros(dim),
            heterogeneity=h, heterogeneity_kind="shift",
            params=dict(dim=dim, a=float(a), b=float(b), heterogeneity=h, seed=int(seed)),
        )
        self._shift_workers(shift, seed)


# ---------------------------------------------------------------- the kernels
@njit(cache=True, inline="always")
def _skew_coupling(Ak, Z, zr, O, orow, p):
    """O[orow, :p] = A_k v ; O[orow, p:] = -A_k^T u  for z = Z[zr] = (u, v), u in R^p.

    Ak (one worker's matrix of the stack, 2-D) holds A_k in rows 0..p-1 (p x q) and A_k^T in rows
    p..p+q-1 (q x p), so both products run as contiguous axpy loops (vectorizable without
    reassociating any sum)."""
    d = Z.shape[1]
    q = d - p
    for r in range(d):
        O[orow, r] = 0.0
    for c in range(q):  # A v = sum_c v_c A[:, c] = sum_c v_c (A^T)[c, :]
        vc = Z[zr, p + c]
        for r in range(p):
            O[orow, r] += vc * Ak[p + c, r]
    for r in range(p):  # -A^T u = -sum_r u_r A[r, :]
        ur = Z[zr, r]
        for c in range(q):
            O[orow, p + c] -= ur * Ak[r, c]


@njit(cache=True, inline="always")
def _gprime(kind, s):
    if kind == G_RATIONAL:  # g(s) = s^2 / (1 + s^2)
        t = 1.0 + s * s
        return 2.0 * s / (t * t)
    elif kind == G_LOG:  # g(s) = log(1 + s^2) / 2
        return s / (1.0 + s * s)
    elif kind == G_QUARTIC:  # g(s) = log(1 + s^4) / 4
        s3 = s * s * s
        return s3 / (1.0 + s3 * s)
    else:  # g(s) = 1 - exp(-s^2 / 2)
        return s * np.exp(-0.5 * s * s)


@njit(cache=True, inline="always")
def _op_bilinear(i, Z, zr, O, orow, P, A, S):
    p = int(P[0])
    _skew_coupling(A[row_index(A.shape[0], i)], Z, zr, O, orow, p)
    add_shift(i, O, orow, S)


@njit(cache=True, inline="always")
def _blas_ok(A, Z, p):
    """Use BLAS for the coupling when every row shares one square A and the problem is large."""
    return A.shape[0] == 1 and Z.shape[0] >= 4 and 2 * p == Z.shape[1] and p >= 16


@njit(cache=True)
def _coupling_blas(A, Z, O, p):
    """Rows of O = (A v, -A^T u) for every row z = (u, v) of Z, by two matrix products."""
    V = np.ascontiguousarray(Z[:, p:])
    U = np.ascontiguousarray(Z[:, :p])
    A0 = A[0]
    O[:, :p] = V @ A0[p:]
    O[:, p:] = -(U @ A0[:p])


@njit(cache=True, inline="always")
def _op_quadratic(i, Z, zr, O, orow, P, A, S):
    p = int(P[0])
    _skew_coupling(A[row_index(A.shape[0], i)], Z, zr, O, orow, p)
    _quadratic_extra(i, Z, zr, O, orow, P, A, S)


@njit(cache=True, inline="always")
def _quadratic_extra(i, Z, zr, O, orow, P, A, S):
    mu = P[1]
    for j in range(Z.shape[1]):
        O[orow, j] += mu * Z[zr, j]
    add_shift(i, O, orow, S)


@njit(cache=True, inline="always")
def _op_minty_bowl(i, Z, zr, O, orow, P, A, S):
    p = int(P[0])
    _skew_coupling(A[row_index(A.shape[0], i)], Z, zr, O, orow, p)
    _minty_extra(i, Z, zr, O, orow, P, A, S)


@njit(cache=True, inline="always")
def _minty_extra(i, Z, zr, O, orow, P, A, S):
    alpha = P[1]
    kind = int(P[2])
    if kind == G_RATIONAL:  # the branch is outside the loop so that the loop vectorizes
        for j in range(Z.shape[1]):
            s = Z[zr, j]
            t = 1.0 + s * s
            O[orow, j] += alpha * (2.0 * s / (t * t))
    else:
        for j in range(Z.shape[1]):
            O[orow, j] += alpha * _gprime(kind, Z[zr, j])
    add_shift(i, O, orow, S)


@njit(cache=True)
def _minty_bowl_plane_rows(Z, O, P, A, S, worker):
    """The Minty bowl in the plane (d = 2), every row in straight-line code: the general row
    loops cost more than their arithmetic here (20x at 16 rows). The same operations in the
    same order as :func:`_op_minty_bowl`, so the same bits."""
    alpha = P[1]
    kind = int(P[2])
    for r in range(Z.shape[0]):
        w = worker if worker >= 0 else r
        k = row_index(A.shape[0], w)
        ks = row_index(S.shape[0], w)
        u = Z[r, 0]
        v = Z[r, 1]
        if kind == G_RATIONAL:
            t = 1.0 + u * u
            gu = 2.0 * u / (t * t)
            t = 1.0 + v * v
            gv = 2.0 * v / (t * t)
        else:
            gu = _gprime(kind, u)
            gv = _gprime(kind, v)
        O[r, 0] = ((0.0 + v * A[k, 1, 0]) + alpha * gu) + S[ks, 0]
        O[r, 1] = ((0.0 - u * A[k, 0, 0]) + alpha * gv) + S[ks, 1]


@njit(cache=True, inline="always")
def _op_weak_mvi(i, Z, zr, O, orow, P, A, S):
    n = int(P[0])
    a = P[1]
    b = P[2]
    for j in range(n):
        u = Z[zr, j]
        v = Z[zr, n + j]
        O[orow, j] = b * u + a * v
        O[orow, n + j] = -a * u + b * v
    add_shift(i, O, orow, S)


@family_kernel(FID_BILINEAR, rowwise=True)
@njit(cache=True)
def bilinear_rows(Z, O, P, A, S, worker, state, batch):
    """F_i(z) = (A_i v, -A_i^T u) + s_i at every row (BLAS products when large and shared)."""
    p = int(P[0])
    if _blas_ok(A, Z, p):
        _coupling_blas(A, Z, O, p)
        for r in range(Z.shape[0]):
            add_shift(worker if worker >= 0 else r, O, r, S)
    else:
        for r in range(Z.shape[0]):
            _op_bilinear(worker if worker >= 0 else r, Z, r, O, r, P, A, S)


@family_kernel(FID_QUADRATIC, rowwise=True)
@njit(cache=True)
def quadratic_rows(Z, O, P, A, S, worker, state, batch):
    """F_i(z) = (A_i v, -A_i^T u) + mu z + s_i at every row."""
    p = int(P[0])
    if _blas_ok(A, Z, p):
        _coupling_blas(A, Z, O, p)
        for r in range(Z.shape[0]):
            _quadratic_extra(worker if worker >= 0 else r, Z, r, O, r, P, A, S)
    else:
        for r in range(Z.shape[0]):
            _op_quadratic(worker if worker >= 0 else r, Z, r, O, r, P, A, S)


@njit(cache=True)
def _minty_bowl_shared_rows(Z, O, P, A0, s):
    """The rows of :func:`_op_minty_bowl` when every worker shares one matrix A0 and one shift s:
    the same operations in the same order, with the matrix and the shift taken once and g' and
    the shift added in loops of their own (W3 of the benchmark: 470 -> 330 us per call)."""
    p = int(P[0])
    alpha = P[1]
    kind = int(P[2])
    n, d = Z.shape
    for i in range(n):
        _skew_coupling(A0, Z, i, O, i, p)
        if kind == G_RATIONAL:
            for j in range(d):
                x = Z[i, j]
                t = 1.0 + x * x
                O[i, j] += alpha * (2.0 * x / (t * t))
        else:
            for j in range(d):
                O[i, j] += alpha * _gprime(kind, Z[i, j])
        for j in range(d):
            O[i, j] += s[j]


@family_kernel(FID_MINTY_BOWL, rowwise=True)
@njit(cache=True)
def minty_bowl_rows(Z, O, P, A, S, worker, state, batch):
    """F_i(z) = (A_i v, -A_i^T u) + alpha g'(z) + s_i at every row."""
    p = int(P[0])
    if _blas_ok(A, Z, p):
        _coupling_blas(A, Z, O, p)
        for r in range(Z.shape[0]):
            _minty_extra(worker if worker >= 0 else r, Z, r, O, r, P, A, S)
    elif Z.shape[1] == 2:
        _minty_bowl_plane_rows(Z, O, P, A, S, worker)
    elif A.shape[0] == 1 and S.shape[0] == 1:
        _minty_bowl_shared_rows(Z, O, P, A[0], S[0])
    else:
        for r in range(Z.shape[0]):
            _op_minty_bowl(worker if worker >= 0 else r, Z, r, O, r, P, A, S)


# F_i(z) = (b u + a v, -a u + b v) + s_i at every row
weak_mvi_rows = family_kernel(FID_WEAK_MVI, rowwise=True)(each_row(_op_weak_mvi))
