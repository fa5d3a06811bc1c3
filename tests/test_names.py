"""Names are data, not paths: every name a user gives (run id, dataset name, sweep name, the run an export
names) is refused when it would leave its folder - '..', separators, NUL and control characters, a leading
'.' or '-', over-long names, links out of the data directory - by the engine functions, the CLIs and the
app's endpoints. After every attempt the data directory (a sentinel in it and in datasets/, a run, a
dataset, a sweep) and the folder the links point to are byte for byte as before.

    .venv/bin/python -m pytest -q -s tests/test_names.py      # -s prints the attempts tried/refused per entry point
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest

from labs import data, paths, runs
from labs.lora import sweep as lora_sweep
from labs.lora.arithmetic import LoraError
from labs.sft import export as sft_export

ROOT = Path(__file__).resolve().parents[1]
KEEP = "20250101-000000-keep-ab12"  # a run that must survive every attempt
ATTEMPTS = [  # (label in the table, the name tried)
    ("..", ".."), (".", "."), ("../x", "../x"), ("../../etc/passwd", "../../etc/passwd"), ("/etc", "/etc"),
    ("/", "/"), ("a/b", "a/b"), ("a\\b", "a\\b"), ("..\\..\\x", "..\\..\\x"), (".hidden", ".hidden"),
    ("-rf", "-rf"), ("x NUL y", "x\x00y"), ("x newline y", "x\ny"), ("ESC[31m", "\x1b[31m"), ("empty", ""),
    ("space", " "), ("300 chars", "a" * 300), ("~root", "~root"),
    ("link out of data dir", "escape"), ("link to data dir", "up"),
]
TALLY: dict[str, list[int]] = {}  # entry point -> [tried, refused]


@pytest.fixture(scope="module", autouse=True)
def table():
    yield
    if TALLY:
        width = max(map(len, TALLY))
        lines = [f"{'entry point':<{width}}  tried  refused", "-" * (width + 16)]
        lines += [f"{k:<{width}}  {t:>5}  {r:>7}" for k, (t, r) in TALLY.items()]
        lines.append(f"{'total':<{width}}  {sum(t for t, _ in TALLY.values()):>5}  "
                     f"{sum(r for _, r in TALLY.values()):>7}")
        print("\n" + "\n".join(lines))


def snapshot(root: Path) -> dict[str, str]:
    """Every file, folder and link under `root` (links not followed), with file contents hashed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


class World:
    """A data directory holding a run, a dataset, a sweep and sentinels, and links out of it."""

    def __init__(self, root: Path, outside: Path):
        self.root, self.outside = root, outside
        for sub in ("runs", "datasets", "sweeps"):
            (root / sub).mkdir(exist_ok=True)
        (root / "SENTINEL").write_text("data dir")
        (root / "datasets" / "SENTINEL").write_text("datasets")
        run = root / "runs" / KEEP
        run.mkdir()
        (run / "config.yaml").write_text("model: /nonexistent-model\nmax_steps: 1\n")
        (run / "status.json").write_text(json.dumps({"state": "finished", "recipe": "sft"}))
        data.save_dataset("keep", {"train": [{"text": "hello"}]})
        (root / "sweeps" / "keep.json").write_text(json.dumps(
            {"name": "keep", "points": [{"run_id": KEEP, "rank": 1, "alpha": 2}], "run_ids": [KEEP]}))
        # what the links point to: a run, a dataset and a sweep record outside the data directory
        o_run = outside / "run"
        o_run.mkdir(parents=True)
        (o_run / "config.yaml").write_text("model: /nonexistent-model\n")
        (o_run / "status.json").write_text(json.dumps({"state": "finished", "recipe": "sft"}))
        data.save_dataset("ds", {"train": [{"text": "outside"}]}, data_dir=outside)
        (outside / "sweep.json").write_text(json.dumps({"name": "escape", "points": [], "run_ids": []}))
        (outside / "SENTINEL").write_text("outside")
        (root / "runs" / "escape").symlink_to(o_run)
        (root / "runs" / "up").symlink_to(root)
        (root / "datasets" / "escape").symlink_to(outside / "datasets" / "ds")
        (root / "datasets" / "up").symlink_to(root)
        (root / "sweeps" / "escape.json").symlink_to(outside / "sweep.json")
        (root / "sweeps" / "up.json").symlink_to(root / "SENTINEL")
        self.before = snapshot(root), snapshot(outside)

    def intact(self) -> None:
        assert (self.root / "SENTINEL").read_text() == "data dir"
        assert (self.root / "datasets" / "SENTINEL").read_text() == "datasets"
        assert (snapshot(self.root), snapshot(self.outside)) == self.before


@pytest.fixture
def world(data_dir, tmp_path):
    import datasets
    datasets.disable_progress_bars()  # the table printed with -s stays readable
    try:
        yield World(data_dir, tmp_path / "outside")
    finally:
        datasets.enable_progress_bars()


def attempt(world: World, entry: str, label: str, refused_if, call, *args) -> None:
    """Try `call(*args)` (one name on one entry point); count it; the data must be intact whatever happened."""
    value = None
    try:
        value = call(*args)
        text, raised = _text(value), None
    except Exception as e:  # what each entry point raises is checked by `refused_if`
        text, raised = str(e), e
    refused = bool(refused_if(value, text, raised))
    TALLY.setdefault(entry, [0, 0])
    TALLY[entry][0] += 1
    TALLY[entry][1] += refused
    world.intact()
    assert refused, f"{entry} with {label!r}: not refused ({type(raised).__name__ if raised else 'returned'}: {text[:300]})"


def _text(out) -> str:
    if isinstance(out, (list, tuple)):
        return "\n".join(_text(x) for x in out)
    if isinstance(out, dict) and "headers" in out and not out.get("data"):
        return ""  # an empty table, as the client receives it
    return "" if out is None else str(out)


def refused_by_check(error: type[Exception], what: str):
    """The lab's own error class, one line, saying which name was wrong ('run id '..': ...')."""
    pattern = re.compile(what)
    return lambda value, text, raised: isinstance(raised, error) and "\n" not in text and pattern.search(text)


# --------------------------------------------------------------------------- the one check
def test_safe_name_and_child(tmp_path):
    for ok in ("run-1", KEEP, "a.b_c", "_x", "9", "a" * paths.MAX_NAME, " padded "):
        assert paths.safe_name(ok) == ok.strip(" ")
    for _, bad in ATTEMPTS[:-2] + [("", "a" * (paths.MAX_NAME + 1)), ("", "données"), ("", "a b"), ("", None)]:
        with pytest.raises(paths.NameRefused):
            paths.safe_name(bad, "run id")
    assert issubclass(paths.NameRefused, ValueError)
    with pytest.raises(LoraError, match=r"^sweep name '\.\.': "):
        paths.safe_name("..", "sweep name", error=LoraError)
    with pytest.raises(paths.NameRefused, match=r"run id 'x\\x00y': contains a control character"):
        paths.safe_name("x\x00y", "run id")
    root = tmp_path / "root"
    root.mkdir()
    assert paths.child(root, "a", suffix=".json") == root.resolve() / "a.json"
    (root / "inside").mkdir()
    (root / "alias").symlink_to(root / "inside")  # a link that stays inside is a name like any other
    assert paths.child(root, "alias") == root.resolve() / "alias"
    (root / "out").symlink_to(tmp_path)
    (root / "self").symlink_to(root)
    for name in ("out", "self"):
        with pytest.raises(paths.NameRefused, match=f"name '{name}': points outside"):
            paths.child(root, name)


# --------------------------------------------------------------------------- engine functions
def engine_entries(world: World) -> dict:
    run_check = refused_by_check(runs.RunError, r"run id '")
    data_check = refused_by_check(data.DataError, r"dataset name '")
    sweep_check = refused_by_check(LoraError, r"sweep name '")
    return {
        "runs.get": (runs.get, run_check),
        "runs.get(...).status": (lambda n: runs.get(n).status(), run_check),
        "runs.stop": (runs.stop, run_check),
        "runs.kill": (runs.kill, run_check),
        "runs.resume": (runs.resume, run_check),
        "runs.start": (runs.start, run_check),
        "runs.delete": (runs.delete, run_check),
        "runs.wait": (lambda n: runs.wait(n, timeout_s=1), run_check),
        "data.save_dataset": (lambda n: data.save_dataset(n, {"train": [{"text": "x"}]}, overwrite=True), data_check),
        "data.load_saved": (data.load_saved, data_check),
        "data.dataset_meta": (data.dataset_meta, data_check),
        "data.push_to_hub": (lambda n: data.push_to_hub(n, "me/x", token="hf_dummy"), data_check),
        "lora start_sweep": (lambda n: lora_sweep.start_sweep(n, ranks=[1], max_steps=1, model="/nonexistent-model"),
                             sweep_check),
        "lora load_sweep": (lora_sweep.load_sweep, sweep_check),
        "lora sweep_results": (lora_sweep.sweep_results, sweep_check),
        "lora sweep_rows": (lora_sweep.sweep_rows, sweep_check),
        "lora sweep_done": (lora_sweep.sweep_done, sweep_check),
        "lora wait_sweep": (lambda n: lora_sweep.wait_sweep(n, timeout_s=1), sweep_check),
        "lora stop_sweep": (lora_sweep.stop_sweep, sweep_check),
        # a name is a run id; a value with a separator is a folder, which must be a run's
        "sft export": (sft_export.export, refused_by_check(sft_export.ExportError, r"run id '|is not a run's folder")),
    }


def test_engine_functions_refuse_every_attempt(world):
    entries = engine_entries(world)
    # the same functions accept a real name: they refuse the attempts, not everything
    assert runs.get(KEEP).status()["state"] == "finished" and runs.get(f" {KEEP} ").id == KEEP
    assert data.dataset_meta("keep")["rows"] == {"train": 1} and len(data.load_saved("keep")["train"]) == 1
    assert lora_sweep.sweep_rows("keep")[0]["run"] == KEEP and lora_sweep.sweep_done("keep")
    assert sft_export.run_folder(KEEP) == world.root / "runs" / KEEP
    world.intact()
    for entry, (fn, refused_if) in entries.items():
        for label, name in ATTEMPTS:
            if entry == "lora start_sweep" and name == "":
                continue  # an empty sweep name asks for a dated one (documented), not a refusal
            attempt(world, entry, label, refused_if, fn, name)
    assert runs.get(KEEP).status()["state"] == "finished"
    # the pickers' lists offer only names the functions accept: no links out of the data directory
    assert data.list_datasets() == ["keep"] and lora_sweep.list_sweeps() == ["keep"]


def test_export_folder_never_the_data_directory(world):
    """An export writes model files into its folder: never the data directory, what holds it, or its folders."""
    refused_if = refused_by_check(sft_export.ExportError, r"export folder .*: is the lab's data directory")
    outs = {"data dir": world.root, "its parent": world.root.parent, "runs/": world.root / "runs",
            "datasets/": world.root / "datasets", "models/": world.root / "models",
            "a run's folder": world.root / "runs" / KEEP, "via ..": world.root / "runs" / KEEP / ".." / ".."}
    for label, out in outs.items():
        attempt(world, "sft export --out", label, refused_if, sft_export.export, KEEP, out)
    assert sft_export.out_folder(None, world.root / "runs" / KEEP) == world.root / "runs" / KEEP / "merged"


def test_hub_dataset_ids_are_not_local_folders(data_dir):
    for bad in ("..", "../x", ".x/y", "me/-x"):
        with pytest.raises(data.DataError, match="Hub dataset id part"):
            data.load_hub(bad)


# --------------------------------------------------------------------------- command lines
def _cli(world: World, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LAB_DATA_DIR": str(world.root), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def _one_error_line(r: subprocess.CompletedProcess | None, text: str, raised) -> bool:
    """Exit code 2, one `error: ...` line on stderr, nothing on stdout (the house rule for bad input)."""
    if r is None:
        return False
    lines = r.stderr.strip().splitlines()
    return r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and not r.stdout.strip()


@pytest.mark.slow
def test_command_lines_refuse_every_attempt(world):
    commands = {f"python -m labs.runs {a}": lambda n, a=a: ("labs.runs", a, "--", n)
                for a in ("status", "stop", "kill", "resume", "delete")}
    commands["python -m labs.lora sweep-status"] = lambda n: ("labs.lora", "sweep-status", "--", n)
    commands["python -m labs.lora sweep --name"] = lambda n: ("labs.lora", "sweep", f"--name={n}", "--ranks", "1",
                                                            "--steps", "1", "--model", "/nonexistent-model")
    commands["python -m labs.sft.export"] = lambda n: ("labs.sft.export", "--", n)
    # the command lines accept a real name
    r = _cli(world, "labs.runs", "status", KEEP)
    assert r.returncode == 0 and json.loads(r.stdout)["state"] == "finished"
    for entry, argv in commands.items():
        for label, name in ATTEMPTS:
            if "\x00" in name:
                continue  # a NUL cannot be passed in a command line at all
            if entry.endswith("--name") and name == "":
                continue  # an empty sweep name asks for a dated one
            attempt(world, entry, label, _one_error_line, _cli, world, *argv(name))
    for label, out in {"data dir": world.root, "runs/": world.root / "runs"}.items():
        attempt(world, "python -m labs.sft.export --out", label, _one_error_line,
                _cli, world, "labs.sft.export", KEEP, "--out", str(out))
    assert (world.root / "runs" / KEEP / "status.json").exists()


# --------------------------------------------------------------------------- the app's endpoints
# "adapter '...'": the LoRA tab reads a value with a '/' as a folder the user typed (read only), and says it is none
APP_REFUSAL = re.compile(r"(run id|sweep name|dataset name|adapter) '|Pick a|pick a run|No run selected|No sweep selected")


def refused_in_app(name: str):
    """The handler said which name was wrong (an error raised to the client or a ⚠️ line), or, for a blank
    name, showed nothing; a blank name must not act either."""
    return lambda value, text, raised: bool(APP_REFUSAL.search(text)) or (not name.strip() and not text.strip())


def try_endpoints(world: World, client, endpoints: dict, skip=lambda entry, name: False) -> None:
    for entry, args in endpoints.items():
        for label, name in ATTEMPTS:
            if not skip(entry, name):
                attempt(world, f"app {entry}", label, refused_in_app(name), partial(client.predict, api_name=entry),
                        *args(name))


@pytest.mark.slow
def test_sft_tab_endpoints_refuse_every_attempt(world, serve_tab):
    from components import sft_tab
    endpoints = {f"/sft_run_{a}": (lambda n: (n,)) for a in ("stop", "kill", "resume")}
    endpoints.update({
        "/sft_run_status": lambda n: (n, 0, False),
        "/sft_load_config": lambda n: (n,),
        "/sft_details": lambda n: (n, []),
        "/sft_compare": lambda n: (n, "/nonexistent-model", "hello", 8),
        "/sft_export": lambda n: (n, "", ""),
    })
    with serve_tab(sft_tab, world.root, "/nonexistent-model") as client:
        try_endpoints(world, client, endpoints)
        status, _, _ = client.predict(KEEP, 0, False, api_name="/sft_run_status")  # still serving, a real id works
        assert f"**finished** · `{KEEP}`" in status


@pytest.mark.slow
def test_lora_tab_endpoints_refuse_every_attempt(world, serve_tab):
    from components import lora_tab
    endpoints = {
        "/lora_sweep_status": lambda n: (n,),
        "/lora_sweep_stop": lambda n: (n,),
        "/lora_sweep_start": lambda n: (n, "/nonexistent-model", [1], "alpha = 2 × rank", [16], "all-linear", 50,
                                        3e-4, 0, False, 4),
        "/lora_spectra": lambda n: (n,),
        "/lora_similarity": lambda n: (n, n, ""),
    }

    def skip(entry, name):  # a blank sweep name asks for a dated sweep (the field's label says so)
        return entry == "/lora_sweep_start" and not name.strip()

    with serve_tab(lora_tab, world.root, "/nonexistent-model") as client:
        try_endpoints(world, client, endpoints, skip)
        _, _, md = client.predict("keep", api_name="/lora_sweep_status")
        assert md.startswith("**keep**: 1/1 finished")


@pytest.mark.slow
def test_dataset_tab_endpoints_refuse_every_attempt(world, serve_tab):
    from components import dataset_tab
    endpoints = {"/dataset_save": lambda n: ("sft", "auto", 0.0, 0.0, 0, n, True),
                 "/dataset_push": lambda n: (n, "me/x", "hf_dummy", True)}
    with serve_tab(dataset_tab, world.root, "/nonexistent-model") as client:
        client.predict("formats/instruction.jsonl", "auto", "", api_name="/dataset_load_sample")
        world.before = snapshot(world.root), snapshot(world.outside)  # the loaded rows are kept in the data dir
        try_endpoints(world, client, endpoints)
        note, _, _ = client.predict("sft", "auto", 0.0, 0.0, 0, "fresh", False, api_name="/dataset_save")
        assert "Saved **fresh**" in note and (world.root / "datasets" / "fresh" / "meta.json").is_file()
