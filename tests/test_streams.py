"""The workers' random streams: Philox4x32-10 against its published answers and a plain-Python
reference, the stream layout that keeps workers apart, and statistical tests of the draws.

Every statistical test runs once on the real streams and once on a broken generator that it must
reject (a truncated tail, a wrong scale, overlapping streams): a test that accepts the broken one
would accept anything."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit
from scipy import stats

from minmaxlab.engine import streams
from minmaxlab.runsetup import worker_streams

# Random123's known-answer vectors for Philox4x32-10 (its tests/kat_vectors): counter, key, out.
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]
MASK32 = 0xFFFFFFFF


def philox_reference(counter, key):
    """Philox4x32-10 in plain Python integers (Salmon et al. 2011, section 3.3)."""
    x0, x1, x2, x3 = counter
    k0, k1 = key
    for _ in range(10):
        p0, p1 = 0xD2511F53 * x0, 0xCD9E8D57 * x2
        x0, x1, x2, x3 = (p1 >> 32) ^ x1 ^ k0, p1 & MASK32, (p0 >> 32) ^ x3 ^ k1, p0 & MASK32
        k0, k1 = (k0 + 0x9E3779B9) & MASK32, (k1 + 0xBB67AE85) & MASK32
    return x0, x1, x2, x3


def lanes(a0, c1, c2, c3, k0, k1):
    """The four blocks of one philox4 call as 32-bit words, block by block."""
    words = streams.philox4(*(np.uint64(v) for v in (a0, c1, c2, c3, k0, k1)))
    out = []
    for j in range(4):
        lo, hi = int(words[2 * j]), int(words[2 * j + 1])
        out.append((lo & MASK32, lo >> 32, hi & MASK32, hi >> 32))
    return out


@pytest.mark.parametrize("case", range(len(KAT)))
def test_philox_matches_the_published_answers_in_every_lane(case):
    counter, key, want = KAT[case]
    assert philox_reference(counter, key) == want
    for j in range(4):
        a0 = counter[0] - j
        if a0 < 0 or a0 % 4:
            continue  # the lane's group would not start at a multiple of 4
        assert lanes(a0, *counter[1:], *key)[j] == want


@settings(max_examples=40, deadline=None)
@given(a0=st.integers(0, 2**30 - 1), words=st.lists(st.integers(0, MASK32), min_size=5,
                                                    max_size=5))
def test_philox_matches_the_reference_on_any_counter_and_key(a0, words):
    c1, c2, c3, k0, k1 = words
    got = lanes(4 * a0, c1, c2, c3, k0, k1)
    assert got == [philox_reference((4 * a0 + j, c1, c2, c3), (k0, k1)) for j in range(4)]


def reference_stream(seed, worker, n):
    """Draw k of a worker's stream is half k mod 2 of the block with counter (k // 2, worker)."""
    out = []
    for k in range(n):
        b = k // 2
        x = philox_reference((b & MASK32, b >> 32, worker & MASK32, worker >> 32),
                             (seed & MASK32, seed >> 32))
        out.append(x[0] | x[1] << 32 if k % 2 == 0 else x[2] | x[3] << 32)
    return out


@njit
def _bits(state, i, n):
    out = np.empty(n, dtype=np.uint64)
    for k in range(n):
        out[k] = streams.next_bits(state, i)
    return out


@pytest.mark.parametrize("seed,worker", [(0, 0), (7, 3), (2**63 - 1, 2**33 + 5)])
def test_a_workers_stream_is_its_own_counters_in_philox(seed, worker):
    state = worker_streams(seed, 1, offset=worker)
    assert [int(v) for v in _bits(state, 0, 21)] == reference_stream(seed, worker, 21)


def test_worker_streams_depend_on_seed_and_worker_only():
    a = worker_streams(5, 8)
    b = worker_streams(5, 4, offset=4)  # workers 4..7 held by another process
    assert np.array_equal(a[4:], b)
    assert not np.array_equal(_bits(worker_streams(6, 8), 4, 8), _bits(a, 4, 8))
    assert len({tuple(_bits(a, i, 4)) for i in range(8)}) == 8


def test_seeding_a_million_workers_is_vectorized():
    state = worker_streams(3, 2**20, offset=10)
    assert state.shape == (2**20, streams.STATE_WORDS) and state.dtype == np.uint64
    assert int(state[-1, 1]) == 2**20 - 1 + 10  # the global index, no hashing


@njit
def _normals(state, workers, n):
    """n draws from each of the first `workers` streams, worker by worker."""
    out = np.empty((workers, n))
    for i in range(workers):
        for k in range(n):
            out[i, k] = streams.normal(state, i)
    return out


@njit
def _uniforms(state, n):
    out = np.empty(n)
    for k in range(n):
        out[k] = streams.uniform(state, 0)
    return out


R = 3.442619855899  # where the ziggurat's base strip hands over to its tail algorithm
P_FLOOR = 1e-4  # every test rejects at a p-value below this; fixed before any run


def normality_pvalues(x):
    """p-values of: Kolmogorov-Smirnov against N(0, 1), chi-square on 100 equiprobable cells,
    and the counts beyond 2, 3, R and 4 in absolute value (binomial, two-sided)."""
    edges = stats.norm.ppf(np.linspace(0, 1, 101))
    counts = np.histogram(x, edges)[0]
    ps = {"ks": stats.kstest(x, "norm").pvalue, "chi2": stats.chisquare(counts).pvalue}
    for c in (2.0, 3.0, R, 4.0):
        k = int(np.count_nonzero(np.abs(x) > c))
        ps[f"tail>{c:.3g}"] = stats.binomtest(k, x.size, 2 * stats.norm.sf(c)).pvalue
    return ps


@pytest.mark.slow
def test_normals_pass_distribution_and_tail_tests_and_their_controls_fail():
    x = _normals(worker_streams(11, 1), 1, 2_000_000).ravel()
    ps = normality_pvalues(x)
    assert min(ps.values()) > P_FLOOR, ps
    assert abs(stats.skew(x)) < 5 * np.sqrt(6 / x.size)
    assert abs(stats.kurtosis(x)) < 5 * np.sqrt(24 / x.size)
    # controls: the tail cut at R (a ziggurat without its tail algorithm), a scale 1% off
    truncated = normality_pvalues(np.clip(x, -R, R))
    assert truncated[f"tail>{R:.3g}"] < P_FLOOR and truncated["tail>4"] < P_FLOOR
    assert normality_pvalues(1.01 * x)["ks"] < P_FLOOR


def test_normals_quick_check():
    x = _normals(worker_streams(12, 1), 1, 200_000).ravel()
    ps = normality_pvalues(x)
    assert min(ps["ks"], ps["chi2"], ps["tail>2"], ps["tail>3"]) > P_FLOOR, ps


def test_uniforms_are_uniform_and_a_biased_control_is_not():
    u = _uniforms(worker_streams(13, 1), 200_000)
    assert 0.0 <= u.min() and u.max() < 1.0
    assert stats.kstest(u, "uniform").pvalue > P_FLOOR
    assert stats.kstest(u**1.02, "uniform").pvalue < P_FLOOR


def cross_worker_pvalues(draws):
    """Draws (workers x n) of neighbouring workers must be independent: the correlation of
    worker w's draws with worker w + 1's, at lags 0 and 1, pooled over all pairs (Fisher)."""
    out = {}
    a, b = draws[:-1], draws[1:]
    for lag in (0, 1):
        x, y = a[:, lag:].ravel(), b[:, : b.shape[1] - lag].ravel()
        r = np.clip(np.corrcoef(x, y)[0, 1], -1 + 1e-15, 1 - 1e-15)
        out[f"lag{lag}"] = 2 * stats.norm.sf(abs(np.arctanh(r)) * np.sqrt(x.size - 3))
    return out


def test_neighbouring_workers_are_independent_and_overlapping_streams_are_caught():
    draws = _normals(worker_streams(14, 2000), 2000, 64)
    ps = cross_worker_pvalues(draws)
    assert min(ps.values()) > P_FLOOR, ps
    # first draws across workers: one sample from each stream
    assert stats.kstest(draws[:, 0], "norm").pvalue > P_FLOOR
    # control: streams that overlap, worker w + 1's stream is worker w's one draw on
    one = _normals(worker_streams(14, 1), 1, 2000 + 64).ravel()
    overlapping = np.stack([one[w: w + 64] for w in range(2000)])
    assert cross_worker_pvalues(overlapping)["lag1"] < P_FLOOR
