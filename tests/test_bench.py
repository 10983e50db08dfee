"""The benchmark command runs and its numpy reference computes the engine's iterates (no timing
assertions: speed is reported by `minmaxlab bench`, not tested)."""

import numpy as np
import pytest

import minmaxlab as mml
from minmaxlab.bench import format_rows, reference_dposg


def test_reference_matches_engine_exactly_and_with_noise_statistically():
    prob = mml.problem("minty_bowl", workers=8, dim=10, seed=0)
    topo = mml.topology("ring", 8)
    z0 = np.linspace(-1, 1, 10)
    X, _, hist = reference_dposg(prob, topo.W, 2, 40, z0)
    tr = mml.run(prob, topo, mml.DPOSG(eta=0.05, rounds=2), iterations=40, z0=z0, record="all")
    assert np.allclose(tr.final_x, X, atol=1e-13)
    assert np.allclose(tr.to_frame().stationarity_local[1:], hist[:, 0], rtol=1e-10)


@pytest.mark.slow
def test_bench_quick_prints_three_ratios(capsys):
    from minmaxlab.cli import main

    assert main(["bench", "--quick"]) == 0
    out = capsys.readouterr().out
    for w in ("W1", "W2", "W3"):
        assert any(line.startswith(w) and "x" in line for line in out.splitlines())
    assert "peak MiB" in out and format_rows([]).startswith("    workload")


@pytest.mark.slow
def test_bench_gan_reaches_what_the_readme_says(capsys):
    """The README quotes this command's training result (5/8 modes, 68% high quality since the
    streams became Philox's): the run is seeded, so the command must print exactly that (its
    timings are not checked)."""
    from pathlib import Path

    from minmaxlab.cli import main

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "reach 5/8 modes and 68% high-quality" in " ".join(readme.split())
    assert main(["bench", "--gan"]) == 0
    assert "modes 5/8, high-quality 68%" in capsys.readouterr().out


# JAX starts threads that a later fork (the studies' worker pools) could deadlock on: every test
# that imports JAX runs it in a child process
_SAME_ITERATES = """
import json, sys
import numpy as np
import minmaxlab as mml
from minmaxlab import jax_reference as J
from minmaxlab.simulate import default_start

topology, rounds = sys.argv[1], int(sys.argv[2])
prob = mml.problem("minty_bowl", workers=16, dim=6, seed=0)
topo = mml.topology(topology, 16)
# workers that start apart, so that the gossip matters to the iterates
z0 = default_start(prob) + np.linspace(-0.5, 0.5, 16)[:, None]
engine = mml.run(prob, topo, mml.DPOSG(eta=0.05, rounds=rounds), 40, z0=z0, record=2)
diff = {form: float(np.max(np.abs(J.final_iterate(prob, topo, rounds, 0.05, form, z0, 40)
                                  - engine.final_x))) for form in J.GOSSIP_FORMS}
# a control: one gossip round more is a different method, and the check must see it
X = J.final_iterate(prob, topo, rounds + 1, 0.05, "stencil", z0, 40)
diff["one round more"] = float(np.max(np.abs(X - engine.final_x)))
print(json.dumps(diff))
"""


def _child(args, timeout=600):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


@pytest.mark.parametrize("topology, rounds", [("ring", 1), ("torus", 3)])
def test_jax_reference_computes_the_engines_iterates(topology, rounds):
    import json

    pytest.importorskip("jax", reason="JAX is the optional bench extra: pip install -e '.[bench]'")
    diff = json.loads(_child(["-c", _SAME_ITERATES, topology, str(rounds)]).splitlines()[-1])
    assert diff["dense"] < 1e-12 and diff["stencil"] < 1e-12, diff
    assert diff["one round more"] > 1e-6, diff


def test_the_stencil_is_the_mixing_matrix():
    from minmaxlab.jax_reference import neighbour_stencil

    topo = mml.topology("erdos_renyi", 12, p=0.4, seed=3)
    nbr, w = neighbour_stencil(topo)
    Y = np.random.default_rng(0).standard_normal((12, 3))
    assert np.allclose(np.einsum("mk,mkd->md", w, Y[nbr]), topo.W @ Y, atol=1e-15)


def test_bench_vs_jax_without_jax_is_one_clear_line(monkeypatch, capsys):
    import importlib.util

    from minmaxlab.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "jax" else real(n, *a))
    assert main(["bench", "--quick", "--only", "W1", "--vs", "jax"]) == 2
    err = capsys.readouterr().err
    assert "needs JAX" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_bench_vs_jax_prints_both_gossip_forms():
    pytest.importorskip("jax", reason="JAX is the optional bench extra: pip install -e '.[bench]'")
    out = _child(["-m", "minmaxlab", "bench", "--quick", "--only", "W1,W2", "--vs", "jax"])
    assert "JAX dense" in out and "best JAX/engine" in out
    lines = [ln for ln in out.splitlines() if ln.startswith(("W1 ", "W2 ")) and "JAX" not in ln]
    assert len(lines) == 4  # the numpy table and the JAX table, two workloads each
