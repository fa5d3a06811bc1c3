"""Training runs: one directory per job, run in its own detached process, followed through files.

    from labs import runs
    run = runs.submit("sft", config)          # control: create, start, stop, kill, resume, delete, wait
    runs.get(run.id).status()                 # directory: the files of a run, listing, the queue (the one
                                              # place that decides the state shown: status.json + the process)
    with runs.recipe_session(path) as s: ...  # session: the job's side (queue, status, metrics)

See labs/runs/directory.py for the layout of a run directory.
"""
from labs.runs.control import command, create, delete, kill, resume, start, stop, submit, wait
from labs.runs.directory import (ACTIVE, OOM_ADVICE, STATES, Run, RunError, get, list_runs, queue_ahead,
                                 queue_position, runs_dir, start_estimate)
from labs.runs.session import RecipeSession, recipe_session

__all__ = ["ACTIVE", "OOM_ADVICE", "STATES", "RecipeSession", "Run", "RunError", "command", "create", "delete",
           "get", "kill", "list_runs", "queue_ahead", "queue_position", "recipe_session", "resume", "runs_dir",
           "start", "start_estimate", "stop", "submit", "wait"]
