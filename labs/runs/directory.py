"""Training runs: one directory per job, run in its own detached process, followed through files.

    <data-dir>/runs/<run-id>/
        config.yaml      the recipe's config (what reproduces the job; no secrets)
        status.json      queued | running | stopping | stopped | finished | failed | interrupted, + error;
                         queued_at -> started_at -> finished_at; the phase the job is in, its count and
                         time left, and the plan of phases (labs/runs/progress.py)
        metrics.jsonl    one JSON object per log: step, epoch, loss, eval_loss, learning_rate, grad_norm,
                         tokens_per_s, elapsed_s, eta_s, plus method-specific keys
        record.json      library versions, model source and revision, data hash, device, world size
        train.log        the job's stdout and stderr
        checkpoints/     Trainer checkpoints (the last few)
        adapter/ | model/  the final LoRA adapter, or the full fine-tuned model

A job is the same command a user types: `python -m labs.<recipe> --config <run-dir>/config.yaml`.
It is started detached (its own session, lower OS priority), so it outlives the app; a restarted app
finds it again from status.json (pid + process start time). One job trains at a time: the others
wait in a queue, in order of submission, on a lock file that the OS releases if a job dies.

    python -m labs.runs list
    python -m labs.runs stop|kill|resume|delete RUN_ID

This module reads a run directory (labs.runs.control starts and stops jobs; labs.runs.session is the
job's side); `from labs import runs` gives all three.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import yaml

from labs import paths
from labs.errors import LabError

STATES = ("queued", "running", "stopping", "stopped", "finished", "failed", "interrupted")
ACTIVE = ("queued", "running", "stopping")
ROOT = Path(__file__).resolve().parents[2]
OOM_ADVICE = ("Out of memory. Try, in this order: a smaller batch size (keep the effective batch with "
              "gradient accumulation), a shorter max length, gradient checkpointing, LoRA instead of full "
              "fine-tuning, or a smaller model.")


class RunError(LabError):
    """A run operation was refused; the message says why."""


def runs_dir() -> Path:
    return paths.subdir("runs")


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def proc_alive(pid: int | None, started: float | None) -> bool:
    """True when `pid` is running and is the same process (start time matches), not a zombie."""
    if not pid:
        return False
    import psutil
    try:
        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(p.create_time() - started) < 1.0
    except psutil.Error:
        return False


class Run:
    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)
        self.id = self.dir.name

    def __repr__(self):
        return f"Run({self.id})"

    # --- files
    @property
    def config(self) -> dict:
        try:
            return yaml.safe_load((self.dir / "config.yaml").read_text()) or {}
        except (OSError, yaml.YAMLError):
            return {}

    @property
    def recipe(self) -> str:
        return self.raw_status().get("recipe") or "sft"

    def raw_status(self) -> dict:
        try:
            return json.loads((self.dir / "status.json").read_text())
        except (OSError, ValueError):
            return {}

    def status(self) -> dict:
        """status.json, with the truth about the process: an active run whose process is gone is
        reported as interrupted (Resume offered); an unreadable directory as corrupt. The one place that
        decides the state a person sees: the monitor, the run pickers' labels and `runs list` all show this."""
        p = self.dir / "status.json"
        try:
            st = json.loads(p.read_text())
        except FileNotFoundError:
            return {"state": "corrupt", "error": f"{self.id}: status.json is missing (a half-written run)"}
        except (OSError, ValueError) as e:
            return {"state": "corrupt", "error": f"{self.id}: status.json is unreadable ({e})"}
        if not (self.dir / "config.yaml").exists():
            return {**st, "state": "corrupt", "error": f"{self.id}: config.yaml is missing"}
        if st.get("state") in ACTIVE and not proc_alive(st.get("pid"), st.get("pid_started")):
            refused = self._refusal()
            if refused:  # the CLI refused its config before training began and said why
                st = {**st, "state": "failed", "error": refused, "log_tail": self.log_tail(10)}
            else:
                st = {**st, "state": "interrupted",
                      "error": "the job's process ended without a final status (app or machine restarted, or killed)"}
        if st.get("state") == "queued":
            st["queue_position"] = queue_position(self)
        return st

    def metrics(self) -> list[dict]:
        return self.read_jsonl("metrics.jsonl") or []

    def read_jsonl(self, name: str) -> list[dict] | None:
        """The rows of a JSONL file the job writes (metrics.jsonl, eval_predictions.jsonl, ...); None until
        the file is there. A line cut by a kill mid-write is left out."""
        rows = []
        try:
            with open(self.dir / name, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        rows.append(json.loads(line))
                    except ValueError:
                        continue  # a line cut by a kill mid-write (or an empty one)
        except OSError:
            return None
        return rows

    def read_json(self, name: str) -> dict | None:
        """A JSON file the job writes once at the end (eval_metrics.json, evaluation.json); None until it is
        there whole."""
        try:
            return json.loads((self.dir / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def stamp(self, what: str = "metrics") -> tuple[int, int] | None:
        """(size, mtime_ns) of metrics.jsonl ("metrics": changes with every log) or status.json ("status":
        rewritten about once a second while training); None when absent. Two stamps compare without reading
        the file: a live view redraws only when one moved."""
        try:
            s = (self.dir / {"metrics": "metrics.jsonl", "status": "status.json"}[what]).stat()
        except OSError:
            return None
        return s.st_size, s.st_mtime_ns

    def trained_model(self) -> Path | None:
        """The run's saved LoRA adapter (adapter/) or full model (model/); None until one is saved whole."""
        for folder, marker in (("adapter", "adapter_config.json"), ("model", "config.json")):
            if (self.dir / folder / marker).is_file():
                return self.dir / folder
        return None

    def log_tail(self, n: int = 30) -> str:
        try:
            with open(self.dir / "train.log", "rb") as fh:
                fh.seek(0, 2)
                fh.seek(max(0, fh.tell() - 64_000))
                lines = fh.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        lines = [ln.rsplit("\r", 1)[-1] for ln in lines]  # keep the last state of progress bars
        return "\n".join(lines[-n:])

    def _refusal(self) -> str | None:
        """The one-line `error: …` a recipe CLI prints when it refuses its config (exit code 2)."""
        tail = self.log_tail(40).split("\n=== ")[-1].splitlines()
        return next((ln[len("error: "):] for ln in reversed(tail) if ln.startswith("error: ")), None)

    def latest_checkpoint(self) -> Path | None:
        ckpts = [c for c in (self.dir / "checkpoints").glob("checkpoint-*") if c.name.split("-")[-1].isdigit()]
        ckpts = [c for c in ckpts if (c / "trainer_state.json").exists()]  # complete checkpoints only
        return max(ckpts, key=lambda c: int(c.name.split("-")[-1]), default=None)

    def record(self) -> dict:
        try:
            return json.loads((self.dir / "record.json").read_text())
        except (OSError, ValueError):
            return {}

    def set_status(self, **fields) -> dict:
        st = self.raw_status()
        st.update(fields, updated_at=time.time())
        write_json(self.dir / "status.json", st)
        return st



def slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "-", text).strip("-").lower()[:40] or "run"



def get(run_id: str) -> Run:
    """The run named `run_id` (a folder of runs/); stop, kill, resume, delete, wait and the UI all come here."""
    d = paths.child(runs_dir(), run_id, "run id", error=RunError)  # '..', 'a/b', links out of runs/ refused
    if not d.is_dir():
        raise RunError(f"no run '{d.name}' in {runs_dir()}")
    return Run(d)



def list_runs() -> list[Run]:
    """Run directories, newest first: real folders whose names `get` accepts (no links, nothing hidden)."""
    def ok(d: Path) -> bool:
        try:
            return d.is_dir() and not d.is_symlink() and paths.safe_name(d.name, "run id") == d.name
        except paths.NameRefused:
            return False
    return sorted((Run(d) for d in runs_dir().iterdir() if ok(d)), key=lambda r: r.id, reverse=True)



# queue_position is asked twice a second by every waiting job and at each tick of a page showing a queued
# run, so it reads little: a status.json is parsed again only when its (inode, size, mtime) changed
# (write_json replaces the file, so every write gets a new inode), and an active job's liveness (psutil) is
# checked at most once per ALIVE_TTL_S: a job that died while queued still counts for up to 2 s.
# Each call builds fresh dicts from the previous ones (never mutates them): safe from several threads.
ALIVE_TTL_S = 2.0
_active_seen: dict[str, tuple] = {}  # status.json path -> (stat key, (state, queued_at, pid, pid_started) | None)
_alive_seen: dict[tuple, tuple] = {}  # (pid, pid_started) -> (monotonic time checked, alive)


def _line() -> dict[str, list[str]]:
    """Ids of the active runs whose process is alive, by state, in order of queued_at (the queue's order)."""
    global _active_seen, _alive_seen
    seen, alive, now, found = {}, {}, time.monotonic(), []
    for r in list_runs():
        path = str(r.dir / "status.json")
        try:
            s = os.stat(path)
        except OSError:
            continue  # no status: not active
        key = (s.st_ino, s.st_size, s.st_mtime_ns)
        hit = _active_seen.get(path)
        if hit and hit[0] == key:
            q = hit[1]
        else:
            st = r.raw_status()
            q = (st.get("state"), st.get("queued_at", 0), st.get("pid"), st.get("pid_started")) \
                if st.get("state") in ACTIVE else None
        seen[path] = (key, q)
        if q is None:
            continue
        checked = _alive_seen.get(q[2:])
        if checked is None or now - checked[0] >= ALIVE_TTL_S:
            checked = (now, proc_alive(*q[2:]))
        alive[q[2:]] = checked
        if checked[1]:
            found.append((q[1] or 0, r.id, q[0]))
    _active_seen, _alive_seen = seen, alive
    out: dict[str, list[str]] = {state: [] for state in ACTIVE}
    for _, rid, state in sorted(found):
        out[state].append(rid)
    return out


def queue_position(run: Run) -> int | None:
    """1 = next to train. Only queued runs whose process is alive count."""
    ids = _line()["queued"]
    return ids.index(run.id) + 1 if run.id in ids else None


def queue_ahead(run: Run) -> list[str]:
    """The jobs a queued run waits for, in order: the one training (running or stopping), then the queued
    runs before it. Empty when the run is not waiting in the queue."""
    line = _line()
    ids = line["queued"]
    if run.id not in ids:
        return []
    return line["running"] + line["stopping"] + ids[:ids.index(run.id)]


def start_estimate(run: Run, now: float | None = None) -> dict:
    """When a queued run should start, from the jobs ahead of it (labs.runs.progress.start_estimate), with
    "ahead": their ids in order. Reads only those runs' status.json."""
    from labs.runs import progress
    ahead = [(rid, Run(runs_dir() / rid).status()) for rid in queue_ahead(run)]
    return {**progress.start_estimate(ahead, time.time() if now is None else now), "ahead": [rid for rid, _ in ahead]}
