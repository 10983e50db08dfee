"""Compressed gossip with error feedback (CHOCO-gossip, Koloskova, Stich, Jaggi, ICML 2019).

Every worker keeps a public copy hat_i of its gossiped array, which its neighbours hold too. A
round sends only the compressed difference q_i = C(y_i - hat_i); everyone adds it to the copies
(hat_i += q_i) and moves towards the neighbours' copies:

    y_i <- y_i + gamma (sum_j W_ij hat_j - hat_i)

which keeps the mean of Y (W doubly stochastic) and drives Y to consensus when C is a contraction
(E||C(v) - v||^2 <= (1 - delta) ||v||^2) and gamma is small enough. Without the copies
(``feedback`` false: hat_i = C(y_i) afresh each round) the compression error is never corrected:
the negative control of the compressed methods' claim.

Compressors, per row (one worker's message):

* COMP_TOP_K: the k = max(1, round(ratio d)) entries of largest magnitude (ties: the lower index);
  a message is k values and k 32-bit indices, 1.5 k floats;
* COMP_QUANTIZE: unbiased stochastic rounding to ``levels`` = s levels of |v_c| / ||v|| (QSGD),
  scaled by 1 / tau, tau = 1 + min(d / s^2, sqrt(d) / s), which makes it a contraction; a message
  is the norm and d signed levels of 1 + ceil(log2(s + 1)) bits.

The random rounding draws from the worker's own stream, so a run is reproducible and the MPI
backend draws what the simulator draws.
"""

import math

import numpy as np
from numba import njit

from minmaxlab.engine.gossip import gossip_round
from minmaxlab.engine.streams import uniform

COMP_NONE = 0
COMP_TOP_K = 1
COMP_QUANTIZE = 2
COMPRESSIONS = {"none": COMP_NONE, "top_k": COMP_TOP_K, "quantize": COMP_QUANTIZE}


def message_floats(kind: int, param: float, d: int) -> float:
    """Floats (of 64 bits) in one compressed message of a row of d floats."""
    if kind == COMP_TOP_K:
        return 1.5 * top_k_count(param, d)
    if kind == COMP_QUANTIZE:
        return 1.0 + d * (1 + math.ceil(math.log2(param + 1))) / 64.0
    return float(d)


@njit(cache=True)
def top_k_count(ratio, d):
    """The entries top-k keeps of a row of d: round(ratio d), at least 1 and at most d."""
    return max(1, min(d, int(np.round(ratio * d))))


@njit(cache=True)
def compress_row(v, out, kind, param, state, i):
    """out = C(v) for one row (worker i's stream for the random rounding)."""
    d = v.shape[0]
    if kind == COMP_TOP_K:
        # k passes, each taking the largest |v_c| not yet taken (ties: the lower index); rows are
        # short, and a sort costs seconds of compilation for nothing
        k = top_k_count(param, d)
        out[:] = 0.0
        for _ in range(k):
            best, big = -1, -1.0
            for c in range(d):
                if out[c] == 0.0 and v[c] != 0.0 and abs(v[c]) > big:
                    best, big = c, abs(v[c])
            if best < 0:  # the rest of v is zero
                return
            out[best] = v[best]
        return
    norm = 0.0
    for c in range(d):
        norm += v[c] * v[c]
    norm = np.sqrt(norm)
    if norm == 0.0:
        out[:] = 0.0
        return
    s = param
    tau = 1.0 + min(d / (s * s), np.sqrt(d) / s)
    for c in range(d):
        level = s * abs(v[c]) / norm
        low = np.floor(level)
        if uniform(state, i) < level - low:
            low += 1.0
        out[c] = np.sign(v[c]) * norm * low / (s * tau)


@njit(cache=True)
def compress_rows(Y, hat, work, comp, state):
    """hat_i += C(y_i - hat_i) for every row (``comp`` = (kind, param, gamma, feedback, msg));
    without feedback hat_i = C(y_i)."""
    kind, param, gamma, feedback, msg = comp
    M, d = Y.shape
    for i in range(M):
        for c in range(d):
            work[c] = Y[i, c] - hat[i, c] if feedback else Y[i, c]
        compress_row(work[:d], work[d:], kind, param, state, i)
        for c in range(d):
            hat[i, c] = hat[i, c] + work[d + c] if feedback else work[d + c]


@njit(cache=True)
def choco_step(Y, WH, hat, gamma):
    """y_i += gamma ((W hat)_i - hat_i) for every row of Y (WH = W hat)."""
    M, d = Y.shape
    for i in range(M):
        for c in range(d):
            Y[i, c] += gamma * (WH[i, c] - hat[i, c])


@njit(cache=True)
def choco_gossip(Y, hat, tmp, work, t, round0, graph, comp, state):
    """t rounds of compressed gossip with error feedback on all workers (see the module)."""
    indptr, indices, weights = graph[0], graph[1], graph[2]
    T = indptr.shape[0]
    gamma = comp[2]
    for r in range(t):
        compress_rows(Y, hat, work, comp, state)
        gossip_round(hat, tmp, (round0 + r) % T, indptr, indices, weights)
        choco_step(Y, tmp, hat, gamma)
    return t
