"""The engine's shape: every module imports alone, every CLI answers --help, dependencies point one way,
no private names cross modules, and labs/ never imports gradio."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LABS = ROOT / "labs"


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(LABS.rglob("*.py")):
        parts = p.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def _clis() -> list[str]:
    """Modules a user runs with `python -m`: packages with __main__.py and modules with a main guard."""
    out = []
    for name, p in _modules().items():
        if name.endswith(".__main__"):
            out.append(name[: -len(".__main__")])
        elif not p.name.startswith("__") and 'if __name__ == "__main__"' in p.read_text():
            out.append(name)
    return sorted(set(out))


def _run(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], cwd=ROOT / "tests", env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_packages_are_there():
    names = set(_modules())
    for pkg in ("labs.runs", "labs.data", "labs.lora", "labs.sft", "labs.evaluation"):
        assert pkg in names, pkg
    for mod in ("labs.runs.directory", "labs.runs.control", "labs.runs.session", "labs.runs.callback",
                "labs.data.io", "labs.data.detect", "labs.data.formats", "labs.data.clean", "labs.data.mask",
                "labs.lora.arithmetic", "labs.lora.memory", "labs.lora.spectra", "labs.lora.sweep", "labs.lora.plots",
                "labs.sft.config", "labs.sft.data", "labs.sft.trainer", "labs.sft.recipe", "labs.sft.export",
                "labs.generate", "labs.evaluation.metrics"):
        assert mod in names, mod
    loose = [p.name for p in LABS.glob("*_*.py") if not p.name.startswith("__")]
    assert not loose, f"topic modules live in their package, not as labs/<topic>_<x>.py: {loose}"


@pytest.mark.slow
def test_every_module_imports_alone_in_a_fresh_interpreter():
    """An import cycle shows up as 'partially initialized module' when a module is imported first."""
    mods = [m for m in _modules() if not m.endswith("__main__")]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda m: (m, _run(["-c", f"import {m}"])), mods))
    failed = {m: p.stderr.strip().splitlines()[-1] for m, p in results if p.returncode}
    assert not failed, failed


@pytest.mark.slow
def test_every_cli_answers_help():
    clis = _clis()
    assert {"labs.runs", "labs.data", "labs.lora", "labs.sft", "labs.models", "labs.sft.export"} <= set(clis)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda m: (m, _run(["-m", m, "--help"])), clis))
    for m, p in results:
        assert p.returncode == 0, (m, p.stderr[-500:])
        assert p.stdout.startswith("usage: python -m " + m) or p.stdout.startswith("usage:"), (m, p.stdout[:200])


def _top_level_imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) of the imports a module runs when it is imported (not those inside functions)."""
    tree = ast.parse(path.read_text())
    out = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
    return out


def _all_imports(path: Path) -> list[tuple[str, list[str]]]:
    tree = ast.parse(path.read_text())
    return [(n.module, [a.name for a in n.names]) for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module and n.level == 0]


def test_dependencies_point_one_way():
    """The graph of module-level imports between labs modules has no cycle."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for target, names in _top_level_imports(p):
            if not target.startswith("labs"):
                continue
            deps = {f"{target}.{n}" for n in names if f"{target}.{n}" in mods} or {target}
            graph[m] |= {d for d in deps if d in mods and d != m}
    # a package's __init__ importing its own submodules is the package's front door, not a cycle
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for d in graph[m]:
            if state.get(d) == 1 and not (m.startswith(d + ".") or d == m.rsplit(".", 1)[0]):
                raise AssertionError(" -> ".join(stack + [m, d]))
            if not state.get(d):
                visit(d, stack + [m])
        state[m] = 2
    for m in graph:
        if not state.get(m):
            visit(m, [])


def test_no_private_names_cross_modules_and_no_gradio_in_labs():
    for p in sorted(LABS.rglob("*.py")) + sorted((ROOT / "components").glob("*.py")) + [ROOT / "app.py"]:
        for target, names in _all_imports(p):
            if target.startswith(("labs", "components")):
                private = [n for n in names if n.startswith("_")]
                assert not private, f"{p.relative_to(ROOT)} imports private {private} from {target}"
        if LABS in p.parents:
            text = p.read_text()
            assert "import gradio" not in text and "from gradio" not in text, p
            assert "matplotlib.pyplot" not in text, p
