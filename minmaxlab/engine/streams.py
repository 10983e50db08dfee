"""Private numba random streams: Philox4x32-10, one stream per (seed, worker); uniforms and
ziggurat normals.

Why these streams cannot overlap. Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel random
numbers: as easy as 1, 2, 3", SC 2011) maps a 128-bit counter and a 64-bit key to 128 random
bits; it passes TestU01's BigCrush for any key. The key is the run's seed; the counter's high 64
bits are the worker's global index and its low 64 bits count the worker's blocks. So worker w's
stream is the set of counters (n, w), n = 0, 1, ..., and two workers' streams share no counter at
any size: 2^64 workers of 2^65 draws each. A worker's draws depend on (seed, w) only, not on how
many workers there are or which process holds them.

A stream's state is one row of ``STATE_WORDS`` uint64 words: the number of 64-bit draws taken,
the worker's global index, the key (seed), and a buffer of the current group of four blocks. Draw
n is half n mod 2 of block n // 2 (the low half first). Blocks are computed four at a time with
their rounds interleaved: one block's ten rounds are a chain of dependent multiplies whose
latency bounds it (about 20 ns alone; 5 ns per 64-bit draw in fours).

How the code is laid out is measured, not incidental (ns per normal in a noise loop, 2 cores):
the drawing functions are inlined into their callers by numba (``inline="always"``), because a
call that passes the state array and is not inlined costs more than the draw; and the ziggurat's
rare rejection path (about 1.2% of normals) takes no array and holds no Philox code, because a
normal whose body holds several copies of the rounds runs its common path 2.5x slower. That path
continues from the rejected draw's 64 bits with a SplitMix64 sequence (Steele, Lea and Flood,
OOPSLA 2014) seeded by them: a normal stays a function of the worker's stream alone.
"""

import numpy as np
from numba import njit

_DRAWS, _WORKER, _KEY, _BUFFER = 0, 1, 2, 3
_GROUP = 8  # 64-bit draws per group of four blocks
STATE_WORDS = _BUFFER + _GROUP

_PHILOX_M0 = np.uint64(0xD2511F53)
_PHILOX_M1 = np.uint64(0xCD9E8D57)
_PHILOX_W0 = np.uint64(0x9E3779B9)
_PHILOX_W1 = np.uint64(0xBB67AE85)
_LOW32 = np.uint64(0xFFFFFFFF)
_ONE = np.uint64(1)
_THREE = np.uint64(3)
_SEVEN = np.uint64(7)
_S11 = np.uint64(11)
_S27 = np.uint64(27)
_S30 = np.uint64(30)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_SM_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_SM_M1 = np.uint64(0xBF58476D1CE4E5B9)
_SM_M2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2^-53


def seed_states(seed: int, workers: int, offset: int = 0) -> np.ndarray:
    """The stream states of workers offset .. offset + workers - 1 of a run with this seed
    (0 <= seed < 2^64): a (workers, STATE_WORDS) uint64 array, built without a Python loop."""
    state = np.zeros((workers, STATE_WORDS), dtype=np.uint64)
    state[:, _WORKER] = np.arange(offset, offset + workers, dtype=np.uint64)
    state[:, _KEY] = np.uint64(seed)
    return state


def no_state() -> np.ndarray:
    """A state for kernels that draw nothing (exact oracles)."""
    return np.zeros((1, STATE_WORDS), dtype=np.uint64)


# ---------------------------------------------------------------- Philox4x32-10
@njit(cache=True, inline="always")
def philox4(a0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of the four counters (a0 + j, c1, c2, c3), j = 0..3, under the key (k0, k1):
    every word < 2^32 held in uint64, a0 a multiple of 4 (so a0 + j never carries). Returns eight
    64-bit words, two per block: words 0, 1 (low, high) of block j, then its words 2, 3.

    A round takes (x0, x1, x2, x3) to (hi(M1 x2) ^ x1 ^ k0, lo(M1 x2), hi(M0 x0) ^ x3 ^ k1,
    lo(M0 x0)), and the key is bumped by the Weyl constants (W0, W1) between rounds."""
    m0, m1, lo, s32 = _PHILOX_M0, _PHILOX_M1, _LOW32, _S32
    p0, q0, r0, t0 = a0, a0 + np.uint64(1), a0 + np.uint64(2), a0 + _THREE
    p1 = q1 = r1 = t1 = c1
    p2 = q2 = r2 = t2 = c2
    p3 = q3 = r3 = t3 = c3
    for _ in range(10):
        pa, pb = m0 * p0, m1 * p2
        qa, qb = m0 * q0, m1 * q2
        ra, rb = m0 * r0, m1 * r2
        ta, tb = m0 * t0, m1 * t2
        p0, p1, p2, p3 = (pb >> s32) ^ p1 ^ k0, pb & lo, (pa >> s32) ^ p3 ^ k1, pa & lo
        q0, q1, q2, q3 = (qb >> s32) ^ q1 ^ k0, qb & lo, (qa >> s32) ^ q3 ^ k1, qa & lo
        r0, r1, r2, r3 = (rb >> s32) ^ r1 ^ k0, rb & lo, (ra >> s32) ^ r3 ^ k1, ra & lo
        t0, t1, t2, t3 = (tb >> s32) ^ t1 ^ k0, tb & lo, (ta >> s32) ^ t3 ^ k1, ta & lo
        k0 = (k0 + _PHILOX_W0) & lo
        k1 = (k1 + _PHILOX_W1) & lo
    return ((p1 << s32) | p0, (p3 << s32) | p2, (q1 << s32) | q0, (q3 << s32) | q2,
            (r1 << s32) | r0, (r3 << s32) | r2, (t1 << s32) | t0, (t3 << s32) | t2)


@njit(cache=True, inline="always")
def _refill(state, i, n):
    """Blocks n / 2 .. n / 2 + 3 of stream i into its buffer (n, the draw count, a multiple of 8).
    Inlined by numba: a call that passes the state array costs more than the rounds."""
    block = n >> _ONE
    w, key = state[i, _WORKER], state[i, _KEY]
    b = _BUFFER
    (state[i, b], state[i, b + 1], state[i, b + 2], state[i, b + 3], state[i, b + 4],
     state[i, b + 5], state[i, b + 6], state[i, b + 7]) = philox4(
        block & _LOW32, block >> _S32, w & _LOW32, w >> _S32, key & _LOW32, key >> _S32)


@njit(cache=True, inline="always")
def next_bits(state, i):
    """The next 64 random bits of stream i; every eighth draw computes the next four blocks."""
    n = state[i, _DRAWS]
    state[i, _DRAWS] = n + _ONE
    j = np.int64(n & _SEVEN)
    if j == 0:
        _refill(state, i, n)
    return state[i, _BUFFER + j]


@njit(cache=True, inline="always")
def uniform(state, i):
    """Next uniform in [0, 1) of stream i (the top 53 bits of a draw)."""
    return np.float64(next_bits(state, i) >> _S11) * _TO_UNIT


@njit(cache=True, inline="always")
def uniform_index(state, i, n):
    """Next uniform integer in [0, n) of stream i, 0 < n < 2^32: the top 32 bits of the draw
    times n, shifted down (Lemire's multiply-shift; integer only; bias below n / 2^32)."""
    return np.int64(((next_bits(state, i) >> _S32) * np.uint64(n)) >> _S32)


def _ziggurat_tables():
    """Marsaglia-Tsang (2000) ziggurat tables for the standard normal, 128 layers."""
    m1 = 2147483648.0
    dn = 3.442619855899
    tn = dn
    vn = 9.91256303526217e-3
    kn = np.zeros(128, dtype=np.int64)
    wn = np.zeros(128)
    fn = np.zeros(128)
    q = vn / np.exp(-0.5 * dn * dn)
    kn[0] = int((dn / q) * m1)
    kn[1] = 0
    wn[0] = q / m1
    wn[127] = dn / m1
    fn[0] = 1.0
    fn[127] = np.exp(-0.5 * dn * dn)
    for i in range(126, 0, -1):
        dn = np.sqrt(-2.0 * np.log(vn / dn + np.exp(-0.5 * dn * dn)))
        kn[i + 1] = int((dn / tn) * m1)
        tn = dn
        fn[i] = np.exp(-0.5 * dn * dn)
        wn[i] = dn / m1
    return kn, wn, fn


_ZKN, _ZWN, _ZFN = _ziggurat_tables()
_ZR = 3.442619855899
_MASK7 = np.uint64(127)


@njit(cache=True, inline="always")
def _splitmix(x):
    """One SplitMix64 step: (the next state, its 64-bit output)."""
    x = x + _SM_GAMMA
    z = (x ^ (x >> _S30)) * _SM_M1
    z = (z ^ (z >> _S27)) * _SM_M2
    return x, z ^ (z >> _S31)


@njit(cache=True, inline="always")
def _layer_and_value(u):
    """(layer, signed 32-bit value) from independent bits of one 64-bit draw."""
    return np.int64(u & _MASK7), np.int64(u >> _S32) - 2147483648  # value in [-2^31, 2^31)


@njit(cache=True)
def _normal_rejected(iz, hz, x):
    """The ziggurat after its quick test failed for layer iz and value hz: the wedge test, the
    tail beyond r (Marsaglia's exponential method), or a fresh (layer, value), all from the
    SplitMix64 sequence that starts at x (the rejected draw's bits)."""
    while True:
        if iz == 0:  # the tail beyond r
            while True:
                x, a = _splitmix(x)
                x, b = _splitmix(x)
                t = -np.log(1.0 - np.float64(a >> _S11) * _TO_UNIT) / _ZR
                y = -np.log(1.0 - np.float64(b >> _S11) * _TO_UNIT)
                if y + y >= t * t:
                    break
            return _ZR + t if hz > 0 else -_ZR - t
        v = hz * _ZWN[iz]
        x, a = _splitmix(x)
        if _ZFN[iz] + np.float64(a >> _S11) * _TO_UNIT * (_ZFN[iz - 1] - _ZFN[iz]) < np.exp(
                -0.5 * v * v):
            return v
        x, u = _splitmix(x)
        iz, hz = _layer_and_value(u)
        if abs(hz) < _ZKN[iz]:
            return hz * _ZWN[iz]


@njit(cache=True, inline="always")
def _normal_of(u):
    """The standard normal that the ziggurat makes of the 64-bit draw u."""
    iz, hz = _layer_and_value(u)
    if abs(hz) < _ZKN[iz]:
        return hz * _ZWN[iz]
    return _normal_rejected(iz, hz, u)


@njit(cache=True, inline="always")
def normal(state, i):
    """A standard normal from worker i's stream (ziggurat, Marsaglia and Tsang 2000); every normal
    takes exactly one 64-bit draw (the rare rejections continue from it, see above)."""
    return _normal_of(next_bits(state, i))


@njit(cache=True, inline="always")
def add_normals(state, i, out, row, scale):
    """out[row, c] += scale * (a standard normal) for every c: the same draws as that many calls of
    :func:`normal`, with the draw count kept in a register instead of the state between them (a
    store and a reload per draw were a third of a normal's time)."""
    n = state[i, _DRAWS]
    for c in range(out.shape[1]):
        j = np.int64(n & _SEVEN)
        if j == 0:
            _refill(state, i, n)
        out[row, c] += scale * _normal_of(state[i, _BUFFER + j])
        n += _ONE
    state[i, _DRAWS] = n
