"""The engine's results are pinned bit for bit (see tests/golden.py): a rebuild of the kernels
must leave every golden trajectory unchanged, or change it deliberately with --write."""

import json

import numpy as np
from golden import FILE, compute, fingerprint

import minmaxlab as mml


def test_every_golden_trajectory_is_unchanged():
    golden = json.loads(FILE.read_text())
    now = compute()
    assert set(now) == set(golden), "the shared cases changed: record them again with --write"
    changed = sorted(k for k in golden if now[k] != golden[k])
    assert not changed, f"{len(changed)} of {len(golden)} trajectories changed: {changed[:5]}"


def test_the_fingerprint_sees_one_bit():
    prob = mml.problem("minty_bowl", workers=4, dim=4, seed=0).with_noise(sigma=0.1)
    topo, alg = mml.topology("ring", 4), mml.DPOSG(eta=0.05, rounds=1)
    z0 = np.full(4, 0.3)
    a = fingerprint(mml.run(prob, topo, alg, 30, z0=z0))
    z1 = z0.copy()
    z1[2] = np.nextafter(z1[2], 1.0)  # the smallest possible change of the start
    b = fingerprint(mml.run(prob, topo, alg, 30, z0=z1))
    assert a != fingerprint(mml.run(prob, topo, alg, 30, z0=z0, seed=1))
    assert a["final"] != b["final"] and a["table"] != b["table"]
    assert a == fingerprint(mml.run(prob, topo, alg, 30, z0=z0))
