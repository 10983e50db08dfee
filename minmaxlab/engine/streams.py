"""Private numba random streams: SplitMix64 per worker, uniforms and ziggurat normals.

Each worker i owns one uint64 state, derived from (seed, i) by hashing; ``uniform(state, i)``
and ``normal(state, i)`` advance only that worker's state, so a worker's draws do not depend on
how many other workers there are or which process holds them.
"""

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_S32 = np.uint64(32)




# ---------------------------------------------------------------- random numbers (SplitMix64)
@njit(cache=True)
def mix64(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True)
def uniform(state, i):
    """Next uniform in [0, 1) of worker i's stream (SplitMix64: counter + finalizer)."""
    state[i] += _GOLDEN
    return np.float64(mix64(state[i]) >> _S11) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def uniform_index(state, i, n):
    """Next uniform integer in [0, n) of worker i's stream, 0 < n < 2^32: the top 32 bits of
    the draw times n, shifted down (Lemire's multiply-shift; integer only; bias below n / 2^32)."""
    state[i] += _GOLDEN
    return np.int64(((mix64(state[i]) >> _S32) * np.uint64(n)) >> _S32)


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


@njit(cache=True)
def ziggurat_bits(state, i):
    """(layer, signed 32-bit value) from independent bits of one 64-bit draw."""
    state[i] += _GOLDEN
    u = mix64(state[i])
    iz = np.int64(u & _MASK7)
    hz = np.int64(u >> _S32) - 2147483648  # uniform on [-2^31, 2^31)
    return iz, hz


@njit(cache=True)
def normal(state, i):
    """A standard normal from worker i's stream (ziggurat; about one 64-bit draw per sample)."""
    iz, hz = ziggurat_bits(state, i)
    if abs(hz) < _ZKN[iz]:
        return hz * _ZWN[iz]
    while True:
        if iz == 0:  # the tail beyond r
            while True:
                x = -np.log(1.0 - uniform(state, i)) / _ZR
                y = -np.log(1.0 - uniform(state, i))
                if y + y >= x * x:
                    break
            return _ZR + x if hz > 0 else -_ZR - x
        x = hz * _ZWN[iz]
        if _ZFN[iz] + uniform(state, i) * (_ZFN[iz - 1] - _ZFN[iz]) < np.exp(-0.5 * x * x):
            return x
        iz, hz = ziggurat_bits(state, i)
        if abs(hz) < _ZKN[iz]:
            return hz * _ZWN[iz]


