"""Two-dimensional games where the interesting geometry lives: Forsaken, GlobalForsaken, the polar
game and the Dirac-GAN.

Their operators are polynomial (or sigmoidal), so they are Lipschitz only on a box. Each family
declares ``L`` = sup of ||J(z)||_2 over the box and, where MVI fails, ``r_min`` = inf of the Minty
ratio over the box. Both are computed from the analytic Jacobian / operator on a 401 x 401 grid of the
box, refined by a bounded local optimizer from the best grid point, then widened by 0.1% (L up, r_min
down). On a convex box sup ||J|| bounds every difference quotient (mean value theorem), which the test
suite checks on random pairs. Heterogeneity: F_i = F + h b_i with b_i Gaussian, centred.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numba import njit
from scipy.optimize import fsolve, minimize

from minmaxlab.engine.registry import family_kernel
from minmaxlab.engine.rowkit import add_shift, each_row
from minmaxlab.problems.base import Problem, ProblemError
from minmaxlab.problems.linear import shift_heterogeneity

# the family ids of the kernels below (see minmaxlab.engine.registry)
FID_FORSAKEN = 5
FID_GLOBAL_FORSAKEN = 6
FID_POLAR = 7
FID_DIRAC = 8

_GRID = 401
_WIDEN = 1e-3


def _norm2x2(a, b, c, d):
    """Spectral norm of [[a, b], [c, d]], elementwise over arrays."""
    t = a * a + b * b + c * c + d * d
    det = a * d - b * c
    return np.sqrt(0.5 * (t + np.sqrt(np.maximum(t * t - 4.0 * det * det, 0.0))))


def _sup_jacobian_norm(jac, lo, hi):
    g = np.linspace(lo, hi, _GRID)
    U, V = np.meshgrid(g, g)
    N = _norm2x2(*jac(U, V))
    k = int(np.argmax(N))
    x0 = np.array([U.flat[k], V.flat[k]])
    res = minimize(lambda x: -float(_norm2x2(*jac(x[0], x[1]))), x0, bounds=[(lo, hi)] * 2,
                   method="L-BFGS-B")
    return max(float(N.flat[k]), -float(res.fun)) * (1.0 + _WIDEN)


def _inf_minty_ratio(F, sol, lo, hi):
    def ratio(U, V):
        Fu, Fv = F(U, V)
        den = Fu * Fu + Fv * Fv
        num = Fu * (U - sol[0]) + Fv * (V - sol[1])
        return np.where(den > 1e-20, num / np.where(den > 1e-20, den, 1.0), np.inf)

    g = np.linspace(lo, hi, _GRID)
    U, V = np.meshgrid(g, g)
    R = ratio(U, V)
    k = int(np.argmin(R))
    x0 = np.array([U.flat[k], V.flat[k]])
    res = minimize(lambda x: float(ratio(np.array(x[0]), np.array(x[1]))), x0,
                   bounds=[(lo, hi)] * 2, method="L-BFGS-B")
    best = min(float(R.flat[k]), float(res.fun))
    return best * (1.0 + _WIDEN) if best < 0 else best


class _Planar(Problem):
    """Shared construction of the 2-D families (subclasses give F, J, z* and the MVI facts)."""

    fid = -1

    @staticmethod
    def _F(U, V, P):  # vectorized numpy operator (for constants only)
        raise NotImplementedError

    @staticmethod
    def _J(U, V, P):  # vectorized Jacobian entries (J11, J12, J21, J22)
        raise NotImplementedError

    def _build(self, name, workers, P, box, heterogeneity, seed, solution, mvi, params, shift=0.0):
        workers = self._check_workers(name, workers)
        box = self._check_positive(name, "box", box)
        h = self._check_nonneg(name, "heterogeneity", heterogeneity)
        L, r_min = _planar_constants(type(self), tuple(float(p) for p in P), box, mvi,
                                     tuple(solution))
        S = shift_heterogeneity(seed, h, workers, 2)
        self._setup(
            name=name, dim=2, dim_u=1, workers=workers, fid=self.fid,
            P=np.asarray(P, dtype=float), A=np.zeros((1, 1, 1)), S=S,
            A_mean=np.zeros((1, 1, 1)), S_mean=np.zeros((1, 2)),
            L=L, L_local=L, box=(-box, box), lipschitz="box",
            mvi=mvi, r_min=r_min if mvi == "fails" else None, solution=np.asarray(solution),
            heterogeneity=h, heterogeneity_kind="shift",
            params=dict(params, box=box, heterogeneity=h, seed=int(seed)),
        )
        self._shift_workers(shift, seed)


@lru_cache(maxsize=64)
def _planar_constants(cls, P, box, mvi, solution):
    P = np.asarray(P)
    L = _sup_jacobian_norm(lambda U, V: cls._J(U, V, P), -box, box)
    r_min = None
    if mvi == "fails":
        r_min = _inf_minty_ratio(lambda U, V: cls._F(U, V, P), np.asarray(solution), -box, box)
    return L, r_min


def _phi1(s):  # Forsaken: phi'(s) = s/2 - 2 s^3 + s^5
    return s * (0.5 - 2.0 * s * s + s**4)


def _phi2(s):
    return 0.5 - 6.0 * s * s + 5.0 * s**4


class Forsaken(_Planar):
    """f(u, v) = u (v - 0.45) + phi(u) - phi(v), phi(s) = s^2/4 - s^4/2 + s^6/6.

    F = (v - 0.45 + phi'(u), -u + phi'(v)). Unique stationary point near (0.0780267, 0.4119339) (found
    by Newton's method), MVI fails (r_min about -1.52 on [-1.5, 1.5]^2), and an attracting limit cycle
    traps GDA, EG and OGDA.
    Reference: Hsieh, Mertikopoulos, Cevher, The limits of min-max optimization algorithms, ICML 2021.
    """

    family = "forsaken"
    fid = FID_FORSAKEN
    references = ("Hsieh, Mertikopoulos, Cevher, The limits of min-max optimization algorithms: "
                  "convergence to spurious non-critical sets, ICML 2021",)

    @staticmethod
    def _F(U, V, P):
        return V - 0.45 + _phi1(U), -U + _phi1(V)

    @staticmethod
    def _J(U, V, P):
        one = np.ones_like(U)
        return _phi2(U), one, -one, _phi2(V)

    def __init__(self, workers=1, box=1.5, heterogeneity=0.0, shift=0.0, seed=0, name="forsaken"):
        sol = fsolve(lambda z: np.array(self._F(z[0], z[1], None)), [0.078, 0.412], xtol=1e-13)
        self._build(name, workers, [], box, heterogeneity, seed, sol, "fails", {}, shift)


def _psi1(s):  # GlobalForsaken: psi'(s) = (4/7) s^5 - (4/3) s^3 + (2/3) s
    return s * ((4.0 / 7.0) * s**4 - (4.0 / 3.0) * s * s + 2.0 / 3.0)


def _psi2(s):
    return (20.0 / 7.0) * s**4 - 4.0 * s * s + 2.0 / 3.0


class GlobalForsaken(_Planar):
    """f(u, v) = u v + psi(u) - psi(v), psi(s) = (2/21) s^6 - (1/3) s^4 + (1/3) s^2.

    F = (v + psi'(u), -u + psi'(v)), z* = 0; MVI fails with r_min about -0.1197 on [-1.2, 1.2]^2
    (about -0.1016 on [-1, 1]^2). Reference: Pethick et al., Escaping limit cycles, ICLR 2022.
    """

    family = "global_forsaken"
    fid = FID_GLOBAL_FORSAKEN
    references = ("Pethick, Latafat, Patrinos, Fercoq, Cevher, Escaping limit cycles: global "
                  "convergence for constrained nonconvex-nonconcave minimax problems, ICLR 2022",)

    @staticmethod
    def _F(U, V, P):
        return V + _psi1(U), -U + _psi1(V)

    @staticmethod
    def _J(U, V, P):
        one = np.ones_like(U)
        return _psi2(U), one, -one, _psi2(V)

    def __init__(self, workers=1, box=1.2, heterogeneity=0.0, shift=0.0, seed=0,
                 name="global_forsaken"):
        self._build(name, workers, [], box, heterogeneity, seed, (0.0, 0.0), "fails", {}, shift)


class PolarGame(_Planar):
    """An operator game (not a gradient field unless a = 0):
    F(u, v) = (p(u, v) - v, p(v, u) + u), p(u, v) = (a/4) u (u^2 + v^2 - 1)(4u^2 + 4v^2 - 1).

    Limit cycles at radius 1 and 1/2, z* = 0; MVI fails with r_min about -0.070, -0.138, -0.202 on
    [-1.1, 1.1]^2 for a = 0.5, 1, 1.5. Reference: Pethick et al., ICLR 2022.
    """

    family = "polar"
    fid = FID_POLAR
    references = ("Pethick et al., Escaping limit cycles, ICLR 2022",)

    @staticmethod
    def _F(U, V, P):
        a = P[0]
        r2 = U * U + V * V
        c = 0.25 * a * (r2 - 1.0) * (4.0 * r2 - 1.0)
        return c * U - V, c * V + U

    @staticmethod
    def _J(U, V, P):
        a = P[0]
        r2 = U * U + V * V
        c = 0.25 * a * (r2 - 1.0) * (4.0 * r2 - 1.0)
        # d c / d u = (a/4) * 2u * (8 r2 - 5)
        dc_du = 0.5 * a * U * (8.0 * r2 - 5.0)
        dc_dv = 0.5 * a * V * (8.0 * r2 - 5.0)
        return c + U * dc_du, U * dc_dv - 1.0, V * dc_du + 1.0, c + V * dc_dv

    def __init__(self, workers=1, a=1.0, box=1.1, heterogeneity=0.0, shift=0.0, seed=0,
                 name="polar"):
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not np.isfinite(a) or a < 0:
            raise ProblemError(f"{name}: a must be a number >= 0, got {a!r}")
        mvi = "fails" if a > 0 else "equality"
        self._build(name, workers, [float(a)], box, heterogeneity, seed, (0.0, 0.0), mvi,
                    {"a": float(a)}, shift)


def _sig_neg(t):
    """h'(t) = 1 / (1 + exp(t)) for h(t) = -log(1 + exp(-t))."""
    return 0.5 * (1.0 - np.tanh(0.5 * t))


class DiracGAN(_Planar):
    """Dirac-GAN: data at 0, generator delta_theta, discriminator D(x) = psi x;
    f(theta, psi) = h(psi theta), h(t) = -log(1 + exp(-t)).

    F = (h'(psi theta) psi, -h'(psi theta) theta): <F(z), z> = 0 identically (MVI with equality),
    though F is not monotone. Equilibrium (0, 0).
    Reference: Mescheder, Geiger, Nowozin, Which training methods for GANs do actually converge?,
    ICML 2018.
    """

    family = "dirac_gan"
    fid = FID_DIRAC
    references = ("Mescheder, Geiger, Nowozin, Which training methods for GANs do actually "
                  "converge?, ICML 2018",)

    @staticmethod
    def _F(U, V, P):
        hp = _sig_neg(U * V)
        return hp * V, -hp * U

    @staticmethod
    def _J(U, V, P):
        t = U * V
        hp = _sig_neg(t)
        hpp = -hp * (1.0 - hp)  # h''(t)
        return hpp * V * V, hpp * U * V + hp, -hpp * U * V - hp, -hpp * U * U

    def __init__(self, workers=1, box=2.0, heterogeneity=0.0, shift=0.0, seed=0, name="dirac_gan"):
        self._build(name, workers, [], box, heterogeneity, seed, (0.0, 0.0), "equality", {}, shift)


# ---------------------------------------------------------------- the kernels
@njit(cache=True, inline="always")
def _op_forsaken(i, Z, zr, O, orow, P, A, S):
    u = Z[zr, 0]
    v = Z[zr, 1]
    u2 = u * u
    v2 = v * v
    # phi(s) = s^2/4 - s^4/2 + s^6/6, phi'(s) = s/2 - 2 s^3 + s^5
    O[orow, 0] = (v - 0.45) + u * (0.5 - 2.0 * u2 + u2 * u2)
    O[orow, 1] = -u + v * (0.5 - 2.0 * v2 + v2 * v2)
    add_shift(i, O, orow, S)


@njit(cache=True, inline="always")
def _op_global_forsaken(i, Z, zr, O, orow, P, A, S):
    u = Z[zr, 0]
    v = Z[zr, 1]
    u2 = u * u
    v2 = v * v
    # psi(s) = (2/21) s^6 - (1/3) s^4 + (1/3) s^2, psi'(s) = (4/7) s^5 - (4/3) s^3 + (2/3) s
    O[orow, 0] = v + u * ((4.0 / 7.0) * u2 * u2 - (4.0 / 3.0) * u2 + 2.0 / 3.0)
    O[orow, 1] = -u + v * ((4.0 / 7.0) * v2 * v2 - (4.0 / 3.0) * v2 + 2.0 / 3.0)
    add_shift(i, O, orow, S)


@njit(cache=True, inline="always")
def _op_polar(i, Z, zr, O, orow, P, A, S):
    a = P[0]
    u = Z[zr, 0]
    v = Z[zr, 1]
    r2 = u * u + v * v
    common = 0.25 * a * (r2 - 1.0) * (4.0 * r2 - 1.0)
    O[orow, 0] = common * u - v
    O[orow, 1] = common * v + u
    add_shift(i, O, orow, S)


@njit(cache=True, inline="always")
def _op_dirac(i, Z, zr, O, orow, P, A, S):
    theta = Z[zr, 0]
    psi = Z[zr, 1]
    t = psi * theta
    # h(t) = -log(1 + exp(-t)), h'(t) = 1 / (1 + exp(t)), evaluated without overflow
    if t >= 0.0:
        e = np.exp(-t)
        hp = e / (1.0 + e)
    else:
        hp = 1.0 / (1.0 + np.exp(t))
    O[orow, 0] = hp * psi
    O[orow, 1] = -hp * theta
    add_shift(i, O, orow, S)


# the families' kernels: each operator above on every row
forsaken_rows = family_kernel(FID_FORSAKEN, rowwise=True)(each_row(_op_forsaken))
global_forsaken_rows = family_kernel(FID_GLOBAL_FORSAKEN, rowwise=True)(each_row(_op_global_forsaken))
polar_rows = family_kernel(FID_POLAR, rowwise=True)(each_row(_op_polar))
dirac_rows = family_kernel(FID_DIRAC, rowwise=True)(each_row(_op_dirac))
