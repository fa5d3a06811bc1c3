"""python -m labs.runs list | status RUN_ID | stop | kill | resume | delete RUN_ID"""
from __future__ import annotations

import json
import sys

from labs.runs.control import delete, kill, resume, stop
from labs.runs.directory import RunError, get, list_runs


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
