"""The project's structure: layers point downward only, no import cycles, every module imports first.

Layers, bottom to top (docs/architecture.md):

    fsio <- synthetic <- imagedata <- pretrain <- measure <- evaluate / invariance <- reports

A package may import its own modules and the packages of lower layers; ``evaluate`` and
``invariance`` share a layer and never import each other (both add their tasks to the registry in
``measure.tasks``, which loads them by name). ``bench/`` sits on top and may use anything.
"""
from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"fsio": 0, "synthetic": 1, "imagedata": 2, "pretrain": 3, "measure": 4, "evaluate": 5, "invariance": 5,
          "reports": 6}
TORCH_FREE = ("fsio", "reports", "pretrain.runid", "measure.results", "measure.tasks")


def module_files() -> dict[str, Path]:
    """Every project module: dotted name -> file."""
    out = {}
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


MODULES = module_files()


def _resolve(module: str, node: ast.ImportFrom | ast.Import, is_package: bool) -> list[str]:
    """The project modules an import statement loads (the target, or ``pkg.name`` when that is a module)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        parts = module.split(".")
        anchor = parts if is_package else parts[:-1]
        anchor = anchor[:len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([base] if base else []))
    out = []
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        out.append(sub if sub in MODULES else base)
    return out


def imports(module: str, top_level_only: bool) -> set[str]:
    """Project modules that ``module`` imports (all of them, or only those run at import time)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:   # imports under module-level if / try run at import time too
        nodes = [n for top in tree.body if not isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                ast.ClassDef)) for n in ast.walk(top)]
    found = set()
    for node in nodes:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for target in _resolve(module, node, path.name == "__init__.py"):
                if target.split(".")[0] in LAYERS:
                    found.add(target)
    return found


def test_the_layer_map_covers_every_package() -> None:
    """No project package outside the layer map (a new top-level package must be placed in a layer)."""
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages - {"tests"} == set(LAYERS)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down_the_layers(module: str) -> None:
    """Every import (module level or inside a function) stays in its package or goes to a lower layer."""
    own = module.split(".")[0]
    up = sorted(t for t in imports(module, top_level_only=False)
                if t.split(".")[0] != own and LAYERS[t.split(".")[0]] >= LAYERS[own])
    assert not up, f"{module} imports {', '.join(up)}: layer {LAYERS[own]} may import only lower layers"


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph() -> dict[str, set[str]]:
    """Module-level import edges, with the packages (``__init__``) each import runs on the way."""
    graph = {}
    for module in MODULES:
        mine = set(_ancestors(module)) | {module}
        edges = set()
        for target in imports(module, top_level_only=True):
            edges |= {t for t in [*_ancestors(target), target] if t in MODULES and t not in mine}
        graph[module] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


CHILD = textwrap.dedent("""
    import os, sys, traceback
    sys.path.insert(0, {root!r})
    import numpy, pandas, scipy, torch, torchvision, sklearn, PIL, yaml  # third-party only: no project module
    assert not [m for m in sys.modules if m.split(".")[0] in {packages!r}]
    failed = 0
    for name in {modules!r}:
        pid = os.fork()
        if pid == 0:
            try:
                __import__(name)
                os._exit(0)
            except BaseException:
                sys.stderr.write(f"--- {{name}}\\n" + traceback.format_exc())
                sys.stderr.flush()
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        failed += status != 0
    sys.exit(1 if failed else 0)
""")


def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    """Each module is the first project module imported, in its own fresh process (forked from an
    interpreter that has loaded only third-party libraries): a cycle that only bites in one import
    order, or an import that works only after another module, fails here."""
    code = CHILD.format(root=str(ROOT), packages=set(LAYERS), modules=sorted(MODULES))
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-6000:]


@pytest.mark.parametrize("module", TORCH_FREE)
def test_torch_free_modules_do_not_load_torch(module: str) -> None:
    """The results store, the task registry, the run id and the reports work without torch."""
    names = [m for m in MODULES if m == module or m.startswith(module + ".")]
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); import importlib\n"
            f"for n in {names!r}: importlib.import_module(n)\n"
            "bad = [m for m in ('torch', 'torchvision') if m in sys.modules]\n"
            "sys.exit(f'loaded {bad}' if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
