"""Training runs: one directory per job, run in its own detached process, followed through files.

    <data-dir>/runs/<run-id>/
        config.yaml      the recipe's config (what reproduces the job; no secrets)
        status.json      queued | running | stopping | stopped | finished | failed | interrupted, + error
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
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import yaml

from labs import paths

STATES = ("queued", "running", "stopping", "stopped", "finished", "failed", "interrupted")
ACTIVE = ("queued", "running", "stopping")
MIN_FREE_GB = float(os.environ.get("LAB_MIN_FREE_GB", "2"))  # refuse to start below this much free disk
ROOT = Path(__file__).resolve().parents[1]
OOM_ADVICE = ("Out of memory. Try, in this order: a smaller batch size (keep the effective batch with "
              "gradient accumulation), a shorter max length, gradient checkpointing, LoRA instead of full "
              "fine-tuning, or a smaller model.")


class RunError(Exception):
    """A run operation was refused; the message says why."""


def runs_dir() -> Path:
    return paths.subdir("runs")


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def _proc_alive(pid: int | None, started: float | None) -> bool:
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
        return self._raw_status().get("recipe") or "sft"

    def _raw_status(self) -> dict:
        try:
            return json.loads((self.dir / "status.json").read_text())
        except (OSError, ValueError):
            return {}

    def status(self) -> dict:
        """status.json, with the truth about the process: an active run whose process is gone is
        reported as interrupted (Resume offered); an unreadable directory as corrupt."""
        p = self.dir / "status.json"
        try:
            st = json.loads(p.read_text())
        except FileNotFoundError:
            return {"state": "corrupt", "error": f"{self.id}: status.json is missing (a half-written run)"}
        except (OSError, ValueError) as e:
            return {"state": "corrupt", "error": f"{self.id}: status.json is unreadable ({e})"}
        if not (self.dir / "config.yaml").exists():
            return {**st, "state": "corrupt", "error": f"{self.id}: config.yaml is missing"}
        if st.get("state") in ACTIVE and not _proc_alive(st.get("pid"), st.get("pid_started")):
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
        rows = []
        try:
            with open(self.dir / "metrics.jsonl") as fh:
                for line in fh:
                    try:
                        rows.append(json.loads(line))
                    except ValueError:
                        continue  # a line cut by a kill mid-write
        except OSError:
            pass
        return rows

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
        st = self._raw_status()
        st.update(fields, updated_at=time.time())
        _write_json(self.dir / "status.json", st)
        return st


# --------------------------------------------------------------------------- app side
def _slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "-", text).strip("-").lower()[:40] or "run"


def create(recipe: str, config: dict, name: str | None = None) -> Run:
    """A new run directory holding `config` (status queued, not started)."""
    import importlib.util
    if not re.fullmatch(r"[a-z_]+", recipe or "") or importlib.util.find_spec(f"labs.{recipe}") is None:
        raise RunError(f"unknown recipe '{recipe}'")
    rid = f"{time.strftime('%Y%m%d-%H%M%S')}-{_slug(name or recipe)}-{uuid.uuid4().hex[:4]}"
    d = runs_dir() / rid
    d.mkdir(parents=True)
    # The recipe is recorded in status.json, so config.yaml stays exactly the recipe's own config.
    (d / "config.yaml").write_text(yaml.safe_dump(dict(config), sort_keys=False))
    _write_json(d / "status.json", {"state": "queued", "recipe": recipe, "name": name or recipe,
                                    "created_at": time.time(), "queued_at": time.time()})
    return Run(d)


def command(run: Run, python: str | None = None) -> list[str]:
    return [python or sys.executable, "-m", f"labs.{run.recipe}", "--config", str(run.dir / "config.yaml")]


def _check_disk(where: Path) -> None:
    free_gb = shutil.disk_usage(where).free / 2**30
    if free_gb < MIN_FREE_GB:
        raise RunError(f"only {free_gb:.1f} GB free on the disk of {where}; a run needs at least "
                       f"{MIN_FREE_GB:g} GB for checkpoints. Delete old runs or free some space.")


def start(run: Run | str, resume: bool = False) -> Run:
    """Launch the run's job detached; it waits in the queue until no other job trains."""
    run = get(run) if isinstance(run, str) else run
    _check_disk(run.dir)
    st = run.status()
    if st.get("state") in ACTIVE:
        raise RunError(f"run {run.id} is already {st['state']}")
    with contextlib.suppress(FileNotFoundError):
        (run.dir / "STOP").unlink()
    run.set_status(state="queued", queued_at=time.time(), resume=resume, error=None, pid=None)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LAB_DATA_DIR": str(paths.data_dir()),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    log = open(run.dir / "train.log", "ab")
    log.write(f"\n=== {'resume' if resume else 'start'} {time.strftime('%Y-%m-%d %H:%M:%S')}: "
              f"{' '.join(command(run))}\n".encode())
    log.flush()
    proc = subprocess.Popen(
        command(run), cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,  # detached: survives the app; its process group is killed as one
        preexec_fn=lambda: os.nice(10),  # lower priority keeps the UI responsive on a small machine
    )
    log.close()
    import psutil
    try:
        started = psutil.Process(proc.pid).create_time()
    except psutil.Error:
        started = None
    run.set_status(pid=proc.pid, pid_started=started)
    threading.Thread(target=proc.wait, daemon=True).start()  # reap it so it never lingers as a zombie
    return run


def submit(recipe: str, config: dict, name: str | None = None) -> Run:
    """Create a run and start it (it queues behind any job already training)."""
    _check_disk(runs_dir())
    return start(create(recipe, config, name))


def get(run_id: str) -> Run:
    run_id = str(run_id).strip()
    d = runs_dir() / run_id
    if not run_id or "/" in run_id or not d.is_dir():
        raise RunError(f"no run '{run_id}' in {runs_dir()}")
    return Run(d)


def list_runs() -> list[Run]:
    return sorted((Run(d) for d in runs_dir().iterdir() if d.is_dir() and not d.name.startswith(".")),
                  key=lambda r: r.id, reverse=True)


def queue_position(run: Run) -> int | None:
    """1 = next to train. Only queued runs whose process is alive count."""
    waiting = []
    for r in list_runs():
        st = r._raw_status()
        if st.get("state") == "queued" and _proc_alive(st.get("pid"), st.get("pid_started")):
            waiting.append((st.get("queued_at", 0), r.id))
    ids = [rid for _, rid in sorted(waiting)]
    return ids.index(run.id) + 1 if run.id in ids else None


def stop(run_id: str) -> dict:
    """Graceful stop: the job finishes its current step, saves a checkpoint and exits (Resume continues)."""
    run = get(run_id)
    st = run.status()
    if st["state"] == "queued":
        _kill_tree(st.get("pid"), st.get("pid_started"))
        return run.set_status(state="stopped", error=None, note="cancelled while queued")
    if st["state"] not in ("running", "stopping"):
        raise RunError(f"run {run.id} is {st['state']}, not running")
    (run.dir / "STOP").write_text(str(time.time()))
    return run.set_status(state="stopping")


def kill(run_id: str) -> dict:
    """Hard kill: the whole process tree, now; memory is freed. Progress since the last checkpoint is lost."""
    run = get(run_id)
    st = run._raw_status()
    _kill_tree(st.get("pid"), st.get("pid_started"))
    return run.set_status(state="stopped", note="killed", pid=None)


def _kill_tree(pid, started) -> None:
    if not _proc_alive(pid, started):
        return
    import psutil
    try:
        parent = psutil.Process(pid)
        procs = parent.children(recursive=True) + [parent]
    except psutil.Error:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(os.getpgid(pid), signal.SIGKILL)  # the job runs in its own session/process group
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(procs, timeout=10)


def resume(run_id: str) -> Run:
    """Start a stopped, failed or interrupted run again from its latest checkpoint."""
    run = get(run_id)
    if run.latest_checkpoint() is None:
        raise RunError(f"run {run.id} has no checkpoint to resume from; start it again instead")
    return start(run, resume=True)


def delete(run_id: str) -> None:
    run = get(run_id)
    if run.status().get("state") in ACTIVE:
        raise RunError(f"run {run.id} is still active; stop or kill it first")
    shutil.rmtree(run.dir)


def wait(run_id: str, timeout_s: float = 600, poll_s: float = 0.5) -> dict:
    """Block until the run reaches a final state (for scripts and tests)."""
    deadline = time.monotonic() + timeout_s
    while True:
        st = get(run_id).status()
        if st["state"] not in ACTIVE:
            return st
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} still {st['state']} after {timeout_s:.0f}s")
        time.sleep(poll_s)


# The job side (recipe_session, RecipeSession) lives in labs.run_session; re-exported here so a recipe
# needs only `from labs import runs`. Imported last: run_session uses the app-side names above.
from labs.run_session import RecipeSession, recipe_session  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m labs.runs", description="List and control training runs.")
    ap.add_argument("action", choices=["list", "stop", "kill", "resume", "delete", "status"])
    ap.add_argument("run_id", nargs="?")
    a = ap.parse_args(argv)
    try:
        if a.action == "list":
            for r in list_runs():
                st = r.status()
                print(f"{r.id}\t{st.get('state')}\t{st.get('step', '-')}/{st.get('max_steps', '-')}")
            return 0
        if not a.run_id:
            raise RunError(f"'{a.action}' needs a RUN_ID (see: python -m labs.runs list)")
        if a.action == "status":
            print(json.dumps(get(a.run_id).status(), indent=1, default=str))
        else:
            {"stop": stop, "kill": kill, "resume": resume, "delete": delete}[a.action](a.run_id)
            print(f"{a.action}: {a.run_id}")
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
