"""Per-player constraint sets and proximal terms, applied after each local step.

    prob = mml.problem("bilinear").with_constraints(u=mml.Ball(1.0), v=mml.Simplex())

Projected / proximal optimistic methods: after the local step y = x - eta g, each player's block is
replaced by its projection onto the set (Ball, Box, Simplex) or by the proximal map of eta times the
regularizer (L1: soft-thresholding at eta * lam), then gossiped. Convex sets are closed under the
averaging of gossip, so iterates stay feasible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from minmaxlab.engine import projections
from minmaxlab.errors import ProblemError


def _pos(name, field, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise ProblemError(f"{name}: {field} must be a positive number, got {v!r}")
    return float(v)


@dataclass(frozen=True)
class Ball:
    """Euclidean ball {y : ||y|| <= radius} (centred at 0)."""

    radius: float = 1.0

    def __post_init__(self):
        _pos("Ball", "radius", self.radius)

    def encode(self):
        return projections.PROJ_BALL, float(self.radius), 0.0


@dataclass(frozen=True)
class Box:
    """Box [lo, hi]^n."""

    lo: float = -1.0
    hi: float = 1.0

    def __post_init__(self):
        if not (isinstance(self.lo, (int, float)) and isinstance(self.hi, (int, float))
                and self.lo < self.hi):
            raise ProblemError(f"Box: need numbers lo < hi, got lo={self.lo!r}, hi={self.hi!r}")

    def encode(self):
        return projections.PROJ_BOX, float(self.lo), float(self.hi)


@dataclass(frozen=True)
class Simplex:
    """Scaled probability simplex {y >= 0, sum y = total}."""

    total: float = 1.0

    def __post_init__(self):
        _pos("Simplex", "total", self.total)

    def encode(self):
        return projections.PROJ_SIMPLEX, float(self.total), 0.0


@dataclass(frozen=True)
class L1:
    """Regularizer lam * ||y||_1 handled by its proximal map (soft-thresholding at eta * lam)."""

    lam: float = 0.01

    def __post_init__(self):
        _pos("L1", "lam", self.lam)

    def encode(self):
        return projections.PROJ_L1, float(self.lam), 0.0


CONSTRAINTS = {"ball": Ball, "box": Box, "simplex": Simplex, "l1": L1}


def encode_pair(pair):
    kinds, a, b = [], [], []
    for c in pair:
        k, x, y = (projections.PROJ_NONE, 0.0, 0.0) if c is None else c.encode()
        kinds.append(k)
        a.append(x)
        b.append(y)
    return kinds, a, b
