"""rho = ||W - J||_2 of a mixing matrix: in closed form where the graph's symmetry gives it, else
by a dense or a sparse eigensolver.

Closed forms (exact to rounding, O(M log M), no eigensolver):

* **circulant and torus-like** (ring, torus, exponential, complete): W commutes with the shifts of
  a group Z_n1 x ... x Z_nk whose elements are the workers (row-major), so W[i, j] = s(j - i) for
  one stencil s, and W's eigenvalues are the discrete Fourier transform of s (a circulant
  matrix is diagonalized by the Fourier basis). rho is the largest |eigenvalue| but the one at
  frequency 0 (which is 1, with eigenvector 1).
* **hypercube**: W[i, j] = s(i xor j) on Z_2^n, diagonalized by the Walsh-Hadamard basis, so its
  eigenvalues are the Walsh-Hadamard transform of s.
* **star**: a centre joined to M - 1 leaves by edges of one weight a. Vectors that vanish on the
  centre and sum to 0 on the leaves have eigenvalue 1 - a (M - 2 of them); the rest of the
  spectrum is 1 and, from the trace, 1 - M a. So rho = max(|1 - a|, |1 - M a|) (M >= 3).

Each form first checks that W has the structure (every row's stencil equals row 0's, or the star's
weights are equal); a W without it goes to an eigensolver. ``structure`` is what a builder
declares: ``{"kind": "circulant", "shape": [n1, ...]}``, ``{"kind": "xor"}`` or
``{"kind": "star"}``.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import ArpackError, LinearOperator, eigsh, splu
from threadpoolctl import threadpool_limits

_LANCZOS_MAXITER = 200  # restarts before switching to shift-invert (clustered spectra, e.g. rings)
RHO_ZERO = 1e-12  # rho below this is W = J up to rounding
_SHIFT = 1e-10  # shift-invert at 1 + _SHIFT (top) or -1 - _SHIFT (bottom)
# entries of two rows that should be equal may differ by rounding (a diagonal summed in another
# order); a stencil that matches to this tolerance moves each eigenvalue by at most nnz/row x it
STENCIL_TOL = 1e-14


_CHUNK = 1 << 16  # rows checked at a time: the check's work arrays stay small at any M


def _row_starts(indptr: np.ndarray, lo: int = 0, hi: int | None = None) -> np.ndarray:
    """The row of every stored entry of rows lo..hi-1."""
    hi = len(indptr) - 1 if hi is None else hi
    return np.repeat(np.arange(lo, hi, dtype=np.int64), np.diff(indptr[lo: hi + 1]))


def _same_stencil(indptr, indices, weights, offset) -> np.ndarray | None:
    """The stencil s (length M) with W[i, j] = s(offset(i, j)) for every stored entry, or None
    when rows differ (in their number of entries, their offsets or their weights). ``offset(i,
    j)`` maps arrays of rows and columns to group elements; rows are checked in chunks."""
    M = len(indptr) - 1
    counts = np.diff(indptr)
    n = int(counts[0])
    if np.any(counts != n):
        return None
    first = offset(np.zeros(n, dtype=np.int64), indices[:n])
    if len(np.unique(first)) != n:  # an offset stored twice in a row would have been summed
        return None
    s = np.zeros(M)
    s[first] = weights[:n]
    for lo in range(0, M, _CHUNK):
        hi = min(M, lo + _CHUNK)
        a, b = indptr[lo], indptr[hi]
        if np.any(np.abs(s[offset(_row_starts(indptr, lo, hi), indices[a:b])] - weights[a:b])
                  > STENCIL_TOL):
            return None
    return s


def circulant_eigenvalues(shape, indptr, indices, weights) -> np.ndarray | None:
    """Eigenvalues of W (flattened, frequency 0 first) when W[i, j] = s(j - i) on the group
    Z_shape[0] x Z_shape[1] x ... (workers in row-major order), else None."""
    shape = tuple(int(n) for n in shape)
    if len(indptr) != math.prod(shape) + 1:
        return None

    def offset(rows, cols):
        ri, rj = np.unravel_index(rows, shape), np.unravel_index(cols, shape)
        return np.ravel_multi_index(tuple((b - a) % n for a, b, n in zip(ri, rj, shape,
                                                                          strict=True)), shape)

    s = _same_stencil(indptr, indices, weights, offset)
    if s is None:
        return None
    # W x = sum_k s(k) x(i + k): a correlation, so its eigenvalues are conj(fft(s)); |.| is what
    # rho needs, and for a symmetric W they are real
    return np.fft.fftn(s.reshape(shape)).ravel()


def walsh_hadamard(x: np.ndarray) -> np.ndarray:
    """The (unnormalized) Walsh-Hadamard transform of a vector of length 2^n."""
    y = np.array(x, dtype=np.float64)
    h = 1
    while h < len(y):
        v = y.reshape(-1, 2, h)
        y = np.concatenate([v[:, 0] + v[:, 1], v[:, 0] - v[:, 1]], axis=1).ravel()
        h *= 2
    return y


def xor_eigenvalues(indptr, indices, weights) -> np.ndarray | None:
    """Eigenvalues of W (index 0: the all-ones vector) when W[i, j] = s(i xor j) on Z_2^n, else
    None."""
    M = len(indptr) - 1
    if M & (M - 1):
        return None
    s = _same_stencil(indptr, indices, weights, np.bitwise_xor)
    return None if s is None else walsh_hadamard(s)


def star_rho(indptr, indices, weights) -> float | None:
    """rho of a star with centre 0 whose edges all weigh a and whose rows sum to 1 (self weights
    1 - a on the leaves, 1 - (M - 1) a at the centre), else None."""
    M = len(indptr) - 1
    rows = _row_starts(indptr)
    off = rows != indices
    if M < 3 or np.count_nonzero(off) != 2 * (M - 1):
        return None
    a = weights[off]
    if not (np.all((rows[off] == 0) | (indices[off] == 0)) and np.ptp(a) <= STENCIL_TOL):
        return None
    a = float(a.mean())
    diag = weights[~off]  # one per row, row order
    want = np.full(M, 1.0 - a)
    want[0] = 1.0 - (M - 1) * a
    if len(diag) != M or np.any(np.abs(diag - want) > M * STENCIL_TOL):
        return None
    return max(abs(1.0 - a), abs(1.0 - M * a))


def structured_rho(structure: dict | None, indptr, indices, weights) -> float | None:
    """rho from the declared structure, or None when there is none or W does not have it."""
    if not structure:
        return None
    kind = structure.get("kind")
    if kind == "star":
        return star_rho(indptr, indices, weights)
    if kind == "circulant":
        ev = circulant_eigenvalues(structure["shape"], indptr, indices, weights)
    elif kind == "xor":
        ev = xor_eigenvalues(indptr, indices, weights)
    else:
        return None
    if ev is None:
        return None
    return float(np.abs(ev[1:]).max()) if len(ev) > 1 else 0.0


def rho_dense(W: np.ndarray, symmetric: bool) -> float:
    """||W - J||_2 with a dense eigen/singular value solver."""
    M = W.shape[0]
    if M == 1:
        return 0.0
    A = W - 1.0 / M
    if symmetric:
        ev = np.linalg.eigvalsh(0.5 * (A + A.T))
        return float(max(abs(ev[0]), abs(ev[-1])))
    return float(np.linalg.norm(A, 2))


def _extreme_mean_zero(B, top: bool) -> float:
    """Largest (top) or smallest eigenvalue of B - J for symmetric sparse B with B 1 = 1.

    Lanczos first; if it stalls or breaks down (a tightly clustered end of the spectrum, e.g. a long
    ring), shift-invert at +-(1 + 1e-10) on mean-zero vectors, which separates the cluster.
    """
    M = B.shape[0]
    v0 = np.random.default_rng(0).standard_normal(M)
    v0 -= v0.mean()

    def matvec(x):
        x = np.ravel(x)
        return B @ x - x.mean()

    op = LinearOperator((M, M), matvec=matvec, dtype=np.float64)
    try:
        val = eigsh(op, k=1, which="LA" if top else "SA", v0=v0, maxiter=_LANCZOS_MAXITER,
                    return_eigenvectors=False)[0]
    except ArpackError:  # includes ArpackNoConvergence
        sigma = 1.0 + _SHIFT if top else -1.0 - _SHIFT
        lu = splu(sp.csc_matrix(B - sigma * sp.eye(M, format="csr")))

        def solve(x):
            x = np.ravel(x)
            y = lu.solve(x - x.mean())
            return y - y.mean()

        inv = LinearOperator((M, M), matvec=solve, dtype=np.float64)
        val = eigsh(B, k=1, sigma=sigma, OPinv=inv, which="LM", v0=v0, return_eigenvectors=False)[0]
    return float(max(val, 0.0) if top else min(val, 0.0))


def rho_sparse(A, symmetric: bool) -> float:
    """||W - J||_2 from the sparse matrix (ARPACK); no dense M x M array is formed. One BLAS
    thread: the products are sparse, and a second thread only competes with the caller's."""
    A = sp.csr_matrix(A)
    M = A.shape[0]
    if M <= 2:
        return rho_dense(A.toarray(), symmetric)
    # ||W - J||_F >= rho in O(nnz); W = J up to rounding leaves ARPACK no Krylov space to build.
    fro = math.sqrt(max(np.sum((A.data - 1.0 / M) ** 2) + (M * M - A.nnz) / M**2, 0.0))
    if fro <= RHO_ZERO:
        return fro
    with threadpool_limits(limits=1):
        if not symmetric:
            # (W - J)^T (W - J) = W^T W - J for doubly stochastic W; W^T W is PSD.
            return math.sqrt(_extreme_mean_zero(sp.csr_matrix(A.T @ A), top=True))
        top = _extreme_mean_zero(A, top=True)
        lower = float((2.0 * A.diagonal() - 1.0).min())  # Gershgorin: every eigenvalue >= lower
        if -lower <= top:
            return top
        return max(top, -_extreme_mean_zero(A, top=False))
