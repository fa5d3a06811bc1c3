"""The job side of a run: what a recipe process (`python -m labs.<recipe> --config …`) uses.

    with runs.recipe_session(config_path) as session:   # queue, mark running, record how it ended
        session.plan("loading model", ("training", max_steps, "steps"), "saving", ("evaluating", 60, "rows"))
        session.phase("loading model")                   # each phase as it begins (labs/runs/progress.py)
        session.record(model_source=..., data_hash=...)
        trainer = SFTTrainer(..., callbacks=[session.callback()])   # reports the training phase's steps
        session.phase("evaluating", done, total, unit="rows")         # ETA: measured seconds per row x rows left

The app side (create, start, stop, kill, resume, list) is labs.runs.control and labs.runs.directory;
`from labs import runs` gives recipe_session too.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import yaml

from labs.runs.control import create
from labs.runs import progress as phases
from labs.runs.directory import OOM_ADVICE, ROOT, Run, RunError, queue_position, runs_dir, slug, write_json


def versions() -> dict:
    from importlib import metadata
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("torch", "transformers", "peft", "trl", "datasets", "accelerate", "gradio"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    with contextlib.suppress(Exception):
        out["lab_commit"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                           capture_output=True, text=True, timeout=5).stdout.strip() or None
    return out


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


class RecipeSession:
    """What a recipe sees of its run: directory, config, resume point, metrics and stop requests."""

    def __init__(self, run: Run, resume_checkpoint: Path | None):
        self.run = run
        self.dir = run.dir
        self.config = run.config
        self.resume_checkpoint = str(resume_checkpoint) if resume_checkpoint else None
        self.is_main = _rank() == 0
        self._lock = threading.Lock()
        self._phase = self._detail = None  # the phase last written, and when (monotonic)
        self._written, self._done0 = 0.0, 0

    def should_stop(self) -> bool:
        return (self.dir / "STOP").exists()

    def log(self, row: dict) -> None:
        if not self.is_main:
            return
        with self._lock, open(self.dir / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps({"time": time.time(), **row}, default=float) + "\n")

    def progress(self, step: int, max_steps: int, eta_s: float | None = None, phase: str = "training",
                 **extra) -> None:
        """A trainer's steps (the callback throttles them): phase `phase` at step/max_steps, with the fields
        step, max_steps and eta_s (that phase's time left) as the monitor and `runs list` read them."""
        self.phase(phase, step, max_steps, unit="steps", seconds_left=eta_s, every_s=0.0, step=step,
                   max_steps=max_steps, eta_s=eta_s, **extra)

    def plan(self, *items) -> None:
        """The phases this job will go through, in order: names, or (name, total, unit[, detail]) for work
        that is counted; the monitor shows what is still ahead (\"then evaluating 60 rows\")."""
        if self.is_main:
            self.run.set_status(phases=phases.plan_entries(items, self.run.raw_status().get("phases")))

    def phase(self, name: str, done: int | None = None, total: int | None = None, *, unit: str | None = None,
              detail: str | None = None, seconds_left: float | None = None, every_s: float = 1.0,
              **extra) -> None:
        """The job is in phase `name`, `done` of `total` units (`extra`: more status fields written with it).
        Written at once when the phase (or its detail) changes or the count reaches its total, else at most
        every `every_s` seconds. seconds_left None: the phase's own measured rate (seconds per unit so far x
        units left), known once a unit is done."""
        if not self.is_main:
            return
        now, mono = time.time(), time.monotonic()
        fresh = (name, detail) != (self._phase, self._detail)
        if not fresh and done != total and mono - self._written < every_s:
            return
        if name != self._phase:
            self._done0 = done or 0  # a resumed training starts past 0: its rate counts from here
        self._phase, self._detail, self._written = name, detail, mono
        fields = phases.advance(self.run.raw_status(), name, done, total, unit, detail, seconds_left, now,
                                self._done0)
        self.run.set_status(**fields, **extra)

    def record(self, **fields) -> None:
        if not self.is_main:
            return
        rec = self.run.record()
        rec.update(fields)
        rec.setdefault("versions", versions())
        rec["world_size"] = int(os.environ.get("WORLD_SIZE", "1"))
        write_json(self.dir / "record.json", rec)

    def callback(self, phase: str = "training"):
        """The Trainer callback: metrics.jsonl, the phase `phase` step by step, Stop."""
        from labs.runs.callback import ProgressCallback
        return ProgressCallback(self, phase=phase)


def _wait_for_queue(run: Run) -> None:
    """Block until this run is first in line and holds the training lock; hold it until exit."""
    lock_path = runs_dir() / ".train.lock"
    fh = open(lock_path, "a+")
    while True:
        pos = queue_position(run)
        if pos in (None, 1):
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                run._lock_fh = fh  # released by the OS when this process ends
                return
            except BlockingIOError:
                pass
        if (run.dir / "STOP").exists():
            raise SystemExit(0)
        time.sleep(0.5)


def _locate_run(config_path: Path, recipe: str, config: dict | None = None) -> Run:
    """The run a config belongs to: its own run dir, or a new run for a config kept elsewhere (holding
    `config`, the validated settings, when given; else the file as it is)."""
    config_path = config_path.resolve()
    if (config_path.parent / "status.json").exists():
        return Run(config_path.parent)
    try:
        cfg = config if config is not None else (yaml.safe_load(config_path.read_text()) or {})
    except (OSError, yaml.YAMLError) as e:
        raise RunError(f"config {config_path}: cannot be read ({e})") from None
    group = os.environ.get("TORCHELASTIC_RUN_ID")
    if group and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Under torchrun every rank arrives here: they share one run directory named by the launch.
        d = runs_dir() / f"{slug(config_path.stem)}-{slug(group)}"
        if _rank() == 0 and not (d / "status.json").exists():
            d.mkdir(parents=True, exist_ok=True)
            (d / "config.yaml").write_text(yaml.safe_dump(dict(cfg), sort_keys=False))
            write_json(d / "status.json", {"state": "queued", "recipe": recipe, "name": config_path.stem,
                                            "created_at": time.time(), "queued_at": time.time()})
        deadline = time.monotonic() + 60
        while not (d / "status.json").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        run = Run(d)
    else:
        run = create(recipe, cfg, name=config_path.stem)
    if _rank() == 0:
        print(f"run directory: {run.dir}", flush=True)
    return run


@contextlib.contextmanager
def recipe_session(config_path: str | os.PathLike, resume: bool | None = None, recipe: str = "sft",
                   config: dict | None = None):
    """Wrap a recipe's work: queue, mark running, and record how it ended.

    resume=None takes the choice from status.json (runs.resume sets it); True resumes from the
    latest checkpoint. Under torchrun only rank 0 writes status and metrics.
    """
    run = _locate_run(Path(config_path), recipe, config)
    st = run.raw_status()
    resume = st.get("resume", False) if resume is None else resume
    ckpt = run.latest_checkpoint() if resume else None
    if resume and ckpt is None:
        raise RunError(f"run {run.id} has no checkpoint to resume from")
    main = _rank() == 0
    if main:
        import psutil
        me = psutil.Process()
        run.set_status(state="queued", pid=os.getpid(), pid_started=me.create_time(),
                       queued_at=st.get("queued_at") or time.time())
        _wait_for_queue(run)
        if ckpt is not None:
            _truncate_metrics(run, int(ckpt.name.split("-")[-1]))
        # a new attempt: the phases are the ones this attempt reports (labs/runs/progress.py)
        run.set_status(state="running", started_at=time.time(), finished_at=None, error=None, log_tail=None,
                       resumed_from=str(ckpt) if ckpt else None, phase=None, phases=[], phase_started_at=None,
                       phase_eta_s=None, phase_done=None, phase_total=None, phase_detail=None)
    session = RecipeSession(run, ckpt)
    try:
        yield session
    except BaseException as e:  # noqa: BLE001 - every ending is recorded, then re-raised
        if main:
            now = time.time()
            if isinstance(e, (KeyboardInterrupt, SystemExit)) and not (isinstance(e, SystemExit) and e.code):
                run.set_status(state="stopped", finished_at=now, note="interrupted by signal",
                               **phases.close(run.raw_status(), "stopped", now, returned=False))
            else:
                text = f"{type(e).__name__}: {e}"
                oom = "out of memory" in text.lower() or type(e).__name__ == "OutOfMemoryError"
                traceback.print_exc()
                sys.stderr.flush()
                run.set_status(state="failed", finished_at=now, error=text[:2000],
                               advice=OOM_ADVICE if oom else None, log_tail=run.log_tail(30),
                               **phases.close(run.raw_status(), "failed", now, returned=False))
        raise
    else:
        if main:
            ending, now = "stopped" if session.should_stop() else "finished", time.time()
            run.set_status(state=ending, finished_at=now, **phases.close(run.raw_status(), ending, now))
            with contextlib.suppress(FileNotFoundError):
                (run.dir / "STOP").unlink()


def _truncate_metrics(run: Run, step: int) -> None:
    """On resume from checkpoint-N, rows logged after step N are replaced by the resumed job's."""
    rows = [r for r in run.metrics() if r.get("step", 0) <= step]
    tmp = run.dir / ".metrics.jsonl.tmp"
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, run.dir / "metrics.jsonl")
