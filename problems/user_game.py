"""An example of a user's own game, written as a plain operator: point the claims at it with

    minmaxlab verify --problem problems/user_game.py:make

``make(workers, seed)`` returns a :class:`minmaxlab.Problem` built with ``Problem.from_operator``.
The game, with n = 3 coordinates per player, z = (u, v) and z* = (a, c):

    f(u, v) = sum_j phi(u_j - a_j) - sum_j phi(v_j - c_j) + (u - a)^T B (v - c),
    phi'(s) = s (1 + tanh(s) / 2) / (1 + s^2).

* Nonconvex-nonconcave: phi' falls off like 1/s, so phi is concave far from 0 (and phi' is not
  odd, so nothing cancels by symmetry around z*).
* Minty: <F(z), z - z*> = sum_j s_j phi'(s_j) over the 2n coordinates s = z - z* (the coupling
  is skew and cancels), and s phi'(s) >= 0: MVI holds at z*.
* Lipschitz: the Jacobian is diag(phi''(s)) plus the skew coupling, so
  L = max|phi''| + ||B||_2 (and the same with B_i for worker i).
* Heterogeneous at its solution: worker i holds the coupling B_i = B + E_i (sum_i E_i = 0) and a
  constant shift b_i (sum_i b_i = 0, (1/M) sum_i ||b_i||^2 = 1), so F = (1/M) sum_i F_i keeps
  z*, and zeta^2 = (1/M) sum_i ||F_i(z*)||^2 = 1.

The mean operator is given too (``mean_operator``), so the metrics cost M + 1 operator calls per
recorded point instead of M^2 + M.
"""

import numpy as np

import minmaxlab as mml

N = 3  # coordinates per player
ZETA = 1.0  # heterogeneity at the solution: (1/M) sum_i ||b_i||^2 = ZETA^2


def _phi1(s):
    """phi'(s) = s (1 + tanh(s) / 2) / (1 + s^2)."""
    return s * (1.0 + 0.5 * np.tanh(s)) / (1.0 + s * s)


def _max_phi2():
    """max |phi''| by a dense grid (phi'' -> 0 at infinity), widened by 1%."""
    s = np.linspace(-60.0, 60.0, 1_200_001)
    return 1.01 * float(np.max(np.abs(np.gradient(_phi1(s), s))))


def _centred(rng, shape, scale):
    x = rng.standard_normal(shape)
    if shape[0] > 1:
        x -= x.mean(axis=0)
    return scale * x


def make(workers, seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1.0, 1.0, N)
    c = rng.uniform(-1.0, 1.0, N)
    B = rng.standard_normal((N, N)) / np.sqrt(N)
    Bi = B + _centred(rng, (workers, N, N), 0.3 / np.sqrt(N))
    b = np.zeros((workers, 2 * N))
    if workers > 1:
        b = _centred(rng, (workers, 2 * N), 1.0)
        b *= ZETA / np.sqrt(np.mean(np.sum(b**2, axis=1)))

    def operator(i, z, out):
        for j in range(N):
            out[j] = (1.0 + 0.5 * np.tanh(z[j] - a[j])) * (z[j] - a[j]) / (1.0 + (z[j] - a[j]) ** 2)
            out[N + j] = ((1.0 + 0.5 * np.tanh(z[N + j] - c[j])) * (z[N + j] - c[j])
                          / (1.0 + (z[N + j] - c[j]) ** 2))
            for k in range(N):
                out[j] += Bi[i, j, k] * (z[N + k] - c[k])
                out[N + j] -= Bi[i, k, j] * (z[k] - a[k])
        for j in range(2 * N):
            out[j] += b[i, j]

    def mean_operator(z, out):
        for j in range(N):
            out[j] = (1.0 + 0.5 * np.tanh(z[j] - a[j])) * (z[j] - a[j]) / (1.0 + (z[j] - a[j]) ** 2)
            out[N + j] = ((1.0 + 0.5 * np.tanh(z[N + j] - c[j])) * (z[N + j] - c[j])
                          / (1.0 + (z[N + j] - c[j]) ** 2))
            for k in range(N):
                out[j] += B[j, k] * (z[N + k] - c[k])
                out[N + j] -= B[k, j] * (z[k] - a[k])

    g2 = _max_phi2()
    return mml.Problem.from_operator(
        operator, dim=2 * N, workers=workers, name="user_game",
        L=g2 + float(np.linalg.norm(B, 2)),
        L_local=g2 + max(float(np.linalg.norm(M, 2)) for M in Bi),
        solution=np.concatenate([a, c]), mvi="holds", box=(-3.0, 3.0),
        mean_operator=mean_operator,
    )
