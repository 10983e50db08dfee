"""The code base is ruff-clean (ruff comes with the [dev] extra) and its modules import one
another without cycles."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    res = subprocess.run([ruff, "check", "minmaxlab", "tests"], cwd=ROOT, capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def _imports(path, modules):
    """The package modules a file imports, at any depth (function-level imports included: an
    import hidden in a function still ties the two modules together)."""
    me = _module(path)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                      for a in node.names}
    return {m for m in found if m in modules and m != me}


def _module(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_import_cycles():
    import networkx as nx

    files = {_module(p): p for p in (ROOT / "minmaxlab").rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(files)
    for name, path in files.items():
        graph.add_edges_from((name, target) for target in _imports(path, files))
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert not cycles, f"modules that import each other (directly or through others): {cycles}"
    # the check sees a cycle when there is one
    graph.add_edge("minmaxlab.topology", "minmaxlab.simulate")
    assert any(len(c) > 1 for c in nx.strongly_connected_components(graph))


def test_no_private_names_imported_across_modules():
    """A module imports another one's public names only (its private ones may change freely); a
    package's own ``__init__`` may use its private modules."""
    found = []
    for path in (ROOT / "minmaxlab").rglob("*.py"):
        me = _module(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("minmaxlab"):
                continue
            own_package = path.name == "__init__.py" and node.module == me
            names = [a.name for a in node.names
                     if a.name.startswith("_") and not a.name.startswith("__") and not own_package]
            parts = [p for p in node.module.split(".") if p.startswith("_")]
            found += [f"{me}: {node.module} {n}" for n in names + parts]
    assert not found, found
