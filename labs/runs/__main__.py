"""python -m labs.runs list | status RUN_ID | stop | kill | resume | delete RUN_ID

`list`: one line per run, tab-separated: id, state, step/max_steps, queue=M:SS (time queued), run=M:SS (time
run), and what it is doing (phase, count, ETA; a queued run's place and estimated start)."""
from __future__ import annotations

import json
import sys
import time

from labs.runs import progress
from labs.runs.control import delete, kill, resume, stop
from labs.runs.directory import RunError, get, list_runs, start_estimate


def list_line(run, now: float | None = None) -> str:
    """One run, tab-separated: id, state, step/max_steps (as always), then queue=M:SS (queued_at ->
    started_at), run=M:SS (started_at -> finished_at, or now), and what it is doing: the phase with its count
    and ETA and the whole job's time left, a queued run's place and estimated start, where a run ended."""
    now = time.time() if now is None else now
    st = run.status()
    state = st.get("state")
    q, ran = progress.durations(st, now)
    doing = "-"
    cur = progress.current(st, now)
    if state == "queued":
        pos = st.get("queue_position")
        doing = f"place {pos}, start {progress.start_words(start_estimate(run, now))}" if pos else "starting"
    elif state in ("running", "stopping") and cur:
        doing = f"{progress.current_words(cur)}; whole job: {progress.left_words(st, now)}"
    elif state in ("stopped", "failed", "interrupted"):
        doing = progress.ended_words(st) or "-"
    return (f"{run.id}\t{state}\t{st.get('step', '-')}/{st.get('max_steps', '-')}\t"
            f"queue={progress.fmt_duration(q)}\trun={progress.fmt_duration(ran)}\t{doing}")


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m labs.runs", description="List and control training runs.")
    ap.add_argument("action", choices=["list", "stop", "kill", "resume", "delete", "status"])
    ap.add_argument("run_id", nargs="?")
    a = ap.parse_args(argv)
    try:
        if a.action == "list":
            for r in list_runs():
                print(list_line(r))
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
