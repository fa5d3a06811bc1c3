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


def test_every_cli_answers_help():
    clis = _clis()
    assert {"labs.runs", "labs.data", "labs.lora", "labs.sft", "labs.models", "labs.sft.export"} <= set(clis)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda m: (m, _run(["-m", m, "--help"])), clis))
    for m, p in results:
        assert p.returncode == 0, (m, p.stderr[-500:])
        # the usage line is the command a user types: `python -m` this module, or the package command it serves
        # (labs.sft.recipe is `python -m labs.sft`), never a file name such as __main__.py
        assert p.stdout.startswith("usage: python -m "), (m, p.stdout[:200])
        command = p.stdout.split()[3]
        assert command in clis and (command == m or m.startswith(command + ".")), (m, p.stdout[:200])


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every import in a module, at the top and inside functions alike: an import
    moved into a function still runs, and still makes a cycle when the two modules need each other."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
    return out


def _packages_of(name: str) -> set[str]:
    """labs.data.mask -> {labs, labs.data}: importing a module runs its packages' __init__ first."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def import_graph() -> dict[str, set[str]]:
    """labs module -> the labs modules and packages it imports, anywhere in its file."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for target, names in _imports(p):
            if not target.startswith("labs"):
                continue
            deps = {f"{target}.{n}" for n in names if f"{target}.{n}" in mods} or {target}
            deps |= {pkg for d in deps for pkg in _packages_of(d)}
            graph[m] |= {d for d in deps if d in mods and d != m}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (a -> b -> ... -> a), or None. A module importing its own package (whose
    __init__ gathers the package's names) is the package's front door, not a cycle."""
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for d in sorted(graph[m]):
            if state.get(d) == 1 and not m.startswith(d + "."):
                return stack + [m, d]
            if not state.get(d):
                found = visit(d, stack + [m])
                if found:
                    return found
        state[m] = 2
        return None
    for m in sorted(graph):
        if not state.get(m):
            found = visit(m, [])
            if found:
                return found
    return None


def test_dependencies_point_one_way():
    """The graph of imports between labs modules, those inside functions too, has no cycle."""
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_check_reads_imports_inside_functions(tmp_path):
    """An import hidden in a function counts, and importing a package's module counts as importing the package
    (labs.plots -> labs.data.mask runs labs/data/__init__.py, which imports labs.plots)."""
    f = tmp_path / "m.py"
    f.write_text("import os\n\n\ndef late():\n    from labs.data.mask import length_stats\n    import labs.store\n")
    assert _imports(f) == [("os", []), ("labs.data.mask", ["length_stats"]), ("labs.store", [])]
    graph = {"labs.plots": {"labs.data.mask", "labs.data"}, "labs.data": {"labs.plots", "labs.data.mask"},
             "labs.data.mask": set()}
    assert find_cycle(graph) == ["labs.data", "labs.plots", "labs.data"]
    assert find_cycle({"labs.data": {"labs.data.io"}, "labs.data.io": {"labs.data"}}) is None  # the front door


def test_no_private_names_cross_modules_and_no_gradio_in_labs():
    for p in sorted(LABS.rglob("*.py")) + sorted((ROOT / "components").glob("*.py")) + [ROOT / "app.py"]:
        for target, names in _imports(p):
            if target.startswith(("labs", "components")):
                private = [n for n in names if n.startswith("_")]
                assert not private, f"{p.relative_to(ROOT)} imports private {private} from {target}"
        if LABS in p.parents:
            text = p.read_text()
            assert "import gradio" not in text and "from gradio" not in text, p
            assert "matplotlib.pyplot" not in text, p


RUN_FILES = ("metrics.jsonl", "status.json", "record.json", "eval_metrics.json",
             "eval_predictions.jsonl", "before_after.jsonl", "odds.jsonl", "evaluation.json", "predictions.jsonl",
             "report.md", "report.html", "loop.json", "adapter_config.json")


def _code_strings(path: Path) -> list[str]:
    """The string constants of a module that are not docstrings."""
    tree = ast.parse(path.read_text())
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docs]


def test_the_ui_reads_runs_through_labs_and_holds_no_engine_threads():
    """components/ and app.py name no file of a run directory (labs.<recipe>.results and runs.Run read them)
    and start no thread of their own, except the app header's model load; labs never imports components."""
    for p in sorted((ROOT / "components").glob("*.py")) + [ROOT / "app.py"]:
        named = [s for s in _code_strings(p) if any(f in s for f in RUN_FILES)]
        assert not named, f"{p.relative_to(ROOT)} reads run files itself: {named}"
        if p.parent.name == "components":
            assert "threading" not in {t.split(".")[0] for t, _ in _imports(p)}, p
    for p in sorted(LABS.rglob("*.py")):
        assert not [t for t, _ in _imports(p) if t.startswith("components")], p
