"""`minmaxlab run FILE.toml`: one configuration from a file -> table + provenance JSON."""

import json
import os

import numpy as np
import pandas as pd
import pytest

import minmaxlab as mml
from minmaxlab.cli import main
from minmaxlab.config import load_run_config, run_config
from minmaxlab.errors import ConfigError

RUN = """
[problem]
name = "minty_bowl"
workers = 8
params = { dim = 6, seed = 0 }
noise = { sigma = 0.1, batch = 4 }

[topology]
name = "ring"

[algorithm]
name = "dposg"
eta = 0.05
rounds = 2

[run]
iterations = 500
seed = 1
"""


def test_run_file_writes_table_and_provenance(tmp_path):
    f = tmp_path / "minty.toml"
    f.write_text(RUN)
    out = tmp_path / "res" / "minty.csv"
    trace, (table, meta) = run_config(load_run_config(f), out=str(out))
    df = pd.read_csv(table)
    assert df.iteration.iloc[-1] == 500 and (df.status == "ok").all()
    m = json.loads(meta.read_text())
    assert m["seed"] == 1 and m["label"] == "dposg[rounds=2,eta=0.05]"
    assert m["problem"]["noise"]["sigma"] == 0.1 and m["topology"]["name"] == "ring"
    assert "numpy" in m["versions"] and m["git_revision"]
    # the file run equals the same run through the API
    prob = mml.problem("minty_bowl", workers=8, dim=6, seed=0).with_noise(sigma=0.1, batch=4)
    api = mml.run(prob, mml.topology("ring", 8), mml.DPOSG(eta=0.05, rounds=2), 500, seed=1)
    assert np.array_equal(api.final_z, trace.final_z)
    assert np.allclose(df.stationarity_local, api.to_frame().stationarity_local, rtol=1e-15)
    assert not list(tmp_path.glob("res/.*.tmp"))  # atomic writes leave no partial files


def test_cli_run_and_other_topologies(tmp_path, capsys):
    f = tmp_path / "c.toml"
    f.write_text(RUN.replace('name = "ring"', 'matrix = [[0.5, 0.5], [0.5, 0.5]]')
                 .replace("workers = 8", "workers = 2")
                 .replace('name = "dposg"', 'name = "dposg_single"'))
    assert main(["run", str(f), "--out", str(tmp_path / "c.csv")]) == 0
    assert "dposg_single[rounds=2" in capsys.readouterr().out
    g = tmp_path / "g.toml"
    g.write_text(RUN.replace('name = "ring"', 'name = "one_peer_exponential"')
                 .replace("[run]", "[output]\npath = \"" + str(tmp_path / "g.csv") + "\"\n\n[run]"))
    assert main(["run", str(g)]) == 0
    assert (tmp_path / "g.csv.json").exists()


def test_run_file_errors(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[problem\nname = 1")
    with pytest.raises(ConfigError, match="malformed TOML"):
        load_run_config(bad)
    inc = tmp_path / "inc.toml"
    inc.write_text(RUN.split("[algorithm]")[0])
    with pytest.raises(ConfigError, match=r"missing section \[algorithm\]"):
        load_run_config(inc)
    extra = tmp_path / "extra.toml"
    extra.write_text(RUN + "\n[plot]\nx = 1\n")
    with pytest.raises(ConfigError, match="unknown section"):
        load_run_config(extra)
    alg = tmp_path / "alg.toml"
    alg.write_text(RUN.replace("eta = 0.05", "eta = -1"))
    assert main(["run", str(alg)]) == 2
    assert "eta" in capsys.readouterr().err
    unk = tmp_path / "unk.toml"
    unk.write_text(RUN.replace('name = "minty_bowl"', 'name = "nope"'))
    assert main(["run", str(unk)]) == 2
    assert "unknown problem 'nope'" in capsys.readouterr().err


def test_diverging_run_from_file_is_recorded(tmp_path):
    f = tmp_path / "div.toml"
    f.write_text(RUN.replace('name = "minty_bowl"', 'name = "bilinear"')
                 .replace("params = { dim = 6, seed = 0 }", "")
                 .replace('name = "dposg"', 'name = "dsgda"').replace("eta = 0.05", "eta = 5.0")
                 .replace("rounds = 2", "rounds = 1").replace("iterations = 500", "iterations = 100000"))
    trace, (table, meta) = run_config(load_run_config(f), out=str(tmp_path / "div.csv"))
    m = json.loads(meta.read_text())
    assert m["status"] == "diverged" and m["diverged_at"] == trace.diverged_at
    df = pd.read_csv(table)
    assert df.status.iloc[-1] == "diverged"


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("seed = 1", "seeed = 1"), r"unknown key 'seeed' \(did you mean 'seed'\?\)"),
    (lambda t: t.replace("seed = 1", "seed = 1.7"), "seed must be an integer"),
    (lambda t: t.replace("seed = 1", "seed = true"), "seed must be an integer"),
    (lambda t: t.replace("seed = 1", 'every_iteration = "false"'), "every_iteration must be true or false"),
    (lambda t: t.replace("iterations = 500", 'iterations = "500"'), "iterations must be an integer"),
    (lambda t: t + "\n[output]\npaht = 'x.csv'\n", r"unknown key 'paht' \(did you mean 'path'\?\)"),
    (lambda t: t.replace("params = { dim = 6, seed = 0 }", "params = 6"), "params must be a table"),
    (lambda t: t.replace("noise = { sigma = 0.1, batch = 4 }", "constraints = { w = { ball = 1.0 } }"),
     r"unknown key 'w'"),
    (lambda t: t.replace("[run]", "run = 3\n[runs]"), "unknown section"),
    (lambda t: t.replace("sigma = 0.1", "sgima = 0.1"), r"unknown key 'sgima' \(did you mean 'sigma'\?\)"),
    (lambda t: t.replace("[topology]", 'z0 = "a"\n[topology]'), "z0 must be an array"),
])
def test_run_file_input_is_refused_not_bent(tmp_path, edit, message):
    f = tmp_path / "bad.toml"
    f.write_text(edit(RUN))
    with pytest.raises(mml.MinmaxlabError, match=message):
        run_config(load_run_config(f), out=str(tmp_path / "x.csv"))
    assert not (tmp_path / "x.csv").exists()


def test_record_is_refused_not_bent(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text(RUN.replace("seed = 1", "seed = 1\nrecord = 2.5"))
    with pytest.raises(mml.MinmaxlabError, match="record must be"):
        run_config(load_run_config(f), out=str(tmp_path / "x.csv"))


def test_output_is_checked_before_the_run(tmp_path, monkeypatch, capsys):
    f = tmp_path / "ok.toml"
    f.write_text(RUN)
    ran = []
    monkeypatch.setattr("minmaxlab.simulate.run", lambda *a, **k: ran.append(1))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    folder = tmp_path / "looks_like.csv"
    folder.mkdir()
    for out, message in ((tmp_path / "x.txt", "must end in .csv"), (folder, "is a folder")):
        with pytest.raises(ConfigError, match=message):
            run_config(load_run_config(f), out=str(out))
    if os.geteuid() != 0:  # root writes anywhere
        with pytest.raises(ConfigError, match="not writable"):
            run_config(load_run_config(f), out=str(locked / "x.csv"))
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)  # no parquet writer
    with pytest.raises(ConfigError, match="needs pyarrow"):
        run_config(load_run_config(f), out=str(tmp_path / "x.parquet"))
    assert not ran
    assert main(["run", str(tmp_path)]) == 2
    assert "is a folder, not a TOML file" in capsys.readouterr().err


def test_the_documented_run_file_runs_as_written(tmp_path, monkeypatch):
    """The example at the top of minmaxlab/config.py (where the README sends its readers),
    extracted and run through the command line."""
    import textwrap

    import minmaxlab.config as config
    from minmaxlab.cli import main

    example = textwrap.dedent(config.__doc__.split("\n\n", 1)[1])
    assert example.lstrip().startswith("[problem]") and "[output]" in example
    monkeypatch.chdir(tmp_path)
    (tmp_path / "example.toml").write_text(example)
    assert main(["run", "example.toml"]) == 0
    frame = pd.read_csv(tmp_path / "results" / "minty_ring.csv")
    assert frame["iteration"].iloc[-1] == 10000 and (frame["status"] == "ok").all()
