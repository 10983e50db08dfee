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
    """The README quotes this command's training result (8/8 modes, 88% high quality): the run is
    seeded, so the command must print exactly that (its timings are not checked)."""
    from pathlib import Path

    from minmaxlab.cli import main

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "reach 8/8 modes and 88% high-quality" in " ".join(readme.split())
    assert main(["bench", "--gan"]) == 0
    assert "modes 8/8, high-quality 88%" in capsys.readouterr().out
