"""Starting and stopping jobs: create a run directory, launch its job detached, stop, kill, resume, delete.

    from labs import runs
    run = runs.submit("sft", cfg.to_dict(), name="my run")   # queued behind any job that trains
    runs.stop(run.id); runs.resume(run.id); runs.wait(run.id)
"""
from __future__ import annotations

import contextlib
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
from labs.runs import progress
from labs.runs.directory import (ACTIVE, ROOT, Run, RunError, get, list_runs, proc_alive, runs_dir, slug,
                                 write_json)

MIN_FREE_GB = float(os.environ.get("LAB_MIN_FREE_GB", "2"))  # refuse to start below this much free disk


def create(recipe: str, config: dict, name: str | None = None) -> Run:
    """A new run directory holding `config` (status queued, not started)."""
    import importlib.util
    if not re.fullmatch(r"[a-z_]+", recipe or "") or importlib.util.find_spec(f"labs.{recipe}") is None:
        raise RunError(f"unknown recipe '{recipe}'")
    rid = f"{time.strftime('%Y%m%d-%H%M%S')}-{slug(name or recipe)}-{uuid.uuid4().hex[:4]}"
    d = runs_dir() / rid
    d.mkdir(parents=True)
    # The recipe is recorded in status.json, so config.yaml stays exactly the recipe's own config.
    (d / "config.yaml").write_text(yaml.safe_dump(dict(config), sort_keys=False))
    write_json(d / "status.json", {"state": "queued", "recipe": recipe, "name": name or recipe,
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


# config fields that name a model, a dataset or a file: in shared mode none may point outside the data directory
PATH_FIELDS = ("model", "dataset", "data", "encoder", "prompts", "init_run")


def submit(recipe: str, config: dict, name: str | None = None, actor=None) -> Run:
    """Create a run and start it (it queues behind any job already training). `actor` (labs.access) is its
    owner: in shared mode it needs the right to start runs, stays within its limit of active runs, and no
    model or data field of the config may name a place on the server outside the data directory."""
    from labs import access
    actor = actor or access.actor(None)
    access.check(actor, "start_run", what=f"a {recipe} run")
    if access.shared():
        for key in PATH_FIELDS:
            if isinstance(config.get(key), str):
                paths.check_server_path(config[key], key)
        for spec in config.get("models") or []:
            paths.check_server_path(str(spec), "models")
        limit = access.settings().limits["active_runs"]
        mine = [r.id for r in list_runs() if r.status().get("owner") == actor.name
                and r.status().get("state") in ACTIVE]
        if actor.role != "admin" and len(mine) >= limit:
            raise access.RightsError(f"{actor.name} has {len(mine)} runs queued or running (at most {limit} each); "
                                     "wait for one to end or stop one")
    _check_disk(runs_dir())
    run = create(recipe, config, name)
    run.set_status(owner=actor.name)
    return start(run)


def _check_control(run: Run, actor) -> None:
    from labs import access
    access.check(actor or access.actor(None), "control_run", owner=run.status().get("owner", "local"),
                 what=f"run {run.id}")


def stop(run_id: str, actor=None) -> dict:
    """Graceful stop: the job finishes its current step, saves a checkpoint and exits (Resume continues)."""
    run = get(run_id)
    _check_control(run, actor)
    st = run.status()
    if st["state"] == "queued":
        _kill_tree(st.get("pid"), st.get("pid_started"))
        return run.set_status(state="stopped", error=None, note="cancelled while queued", finished_at=time.time())
    if st["state"] not in ("running", "stopping"):
        raise RunError(f"run {run.id} is {st['state']}, not running")
    (run.dir / "STOP").write_text(str(time.time()))
    return run.set_status(state="stopping")


def kill(run_id: str, actor=None) -> dict:
    """Hard kill: the whole process tree, now; memory is freed. Progress since the last checkpoint is lost."""
    run = get(run_id)
    _check_control(run, actor)
    st = run.raw_status()
    _kill_tree(st.get("pid"), st.get("pid_started"))
    now = time.time()
    active = st.get("state") in ACTIVE
    fields = {"finished_at": now, **progress.close(st, "stopped", now, returned=False)} if active else {}
    return run.set_status(state="stopped", note="killed", pid=None, **fields)  # the run time ends here


def _kill_tree(pid, started) -> None:
    if not proc_alive(pid, started):
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


def resume(run_id: str, actor=None) -> Run:
    """Start a stopped, failed or interrupted run again from its latest checkpoint."""
    run = get(run_id)
    _check_control(run, actor)
    if run.latest_checkpoint() is None:
        raise RunError(f"run {run.id} has no checkpoint to resume from; start it again instead")
    return start(run, resume=True)


def delete(run_id: str, actor=None) -> None:
    run = get(run_id)
    _check_control(run, actor)
    if run.status().get("state") in ACTIVE:
        raise RunError(f"run {run.id} is still active; stop or kill it first")
    if run.dir.is_symlink():  # a link inside runs/: remove the link, never what it points to
        run.dir.unlink()
        return
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


