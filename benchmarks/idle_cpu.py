"""CPU an idle app uses: browser sessions left open on the SFT tab, each showing a finished run.

    python benchmarks/idle_cpu.py --make-runs /tmp/idle-data          # 3 finished SFT runs (fabricated files)
    python app.py --port 7871 --data-dir /tmp/idle-data --no-preload &
    flock /tmp/lab-heavy.lock python benchmarks/idle_cpu.py --port 7871 --sessions 3 --seconds 60

Needs Playwright (`pip install playwright`) and a Chromium binary (Debian: `apt-get install chromium`,
used through --chromium; nothing is downloaded). Each session is its own browser context, so the app
sees separate page sessions. A session opens the page, clicks the SFT tab, picks a finished run in
the run monitor and waits until the monitor says **finished**; then the app process's CPU time
(psutil cpu_times: user + system, children included) is taken over --seconds while the pages stay
open, and so is the number of HTTP requests and websocket messages the pages sent meanwhile.

Prints `cpu_s=<x>` and then a one-line summary.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# --------------------------------------------------------------------------- fabricated finished runs
def make_runs(data_dir: Path, n: int = 3, steps: int = 120, log_every: int = 2) -> list[str]:
    """`n` finished SFT run directories in the run directory's format (labs/runs/directory.py):
    config.yaml (the instruction preset), status.json, metrics.jsonl (steps/log_every rows with
    loss, eval_loss, learning_rate, grad_norm, tokens_per_s, two evaluations with generations),
    eval_metrics.json and eval_predictions.jsonl."""
    import yaml

    from labs.sft.config import preset
    runs_dir = data_dir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    ids = []
    for i in range(n):
        rng = random.Random(i)
        rid = f"20250101-0{i}0000-idle-{i}-{i:04x}"
        d = runs_dir / rid
        d.mkdir(exist_ok=True)
        cfg = preset("instruction").to_dict()
        cfg["max_steps"] = steps
        (d / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        t0 = 1735689600.0 + 3600 * i
        rows, loss = [], 2.2 + 0.1 * i
        for step in range(log_every, steps + 1, log_every):
            loss = max(0.05, loss * 0.965 + rng.uniform(-0.03, 0.03))
            rows.append({"step": step, "epoch": round(step / steps, 4), "loss": round(loss, 4),
                         "grad_norm": round(rng.uniform(0.3, 1.5), 4),
                         "learning_rate": cfg["learning_rate"] * (1 - step / steps), "num_tokens": 410.0 * step,
                         "elapsed_s": round(2.9 * step, 2), "eta_s": 2.9 * (steps - step),
                         "tokens_per_s": round(rng.uniform(130, 150), 1)})
            if step % (steps // 2) == 0:
                rows.append({"step": step, "epoch": round(step / steps, 4), "eval_loss": round(loss * 1.1, 4),
                             "elapsed_s": round(2.9 * step + 5, 2), "eta_s": 2.9 * (steps - step)})
                rows.append({"step": step, "eval_generations": [
                    {"prompt": f"Extract the person's name, city and age as YAML. Person {k} lives in Porto.",
                     "answer": f"name: Person {k}\ncity: Porto\nage: {30 + k}",
                     "reference": f"name: Person {k}\ncity: Porto\nage: {30 + k}"} for k in range(3)]})
        rows.append({"step": steps, "final": True, "train_seconds": round(2.9 * steps, 1),
                     "train_loss_final": round(loss, 4), "world_size": 1})
        (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (d / "eval_metrics.json").write_text(json.dumps({"n": 60, "exact_match": 0.95, "base/exact_match": 0.0}))
        (d / "eval_predictions.jsonl").write_text("".join(json.dumps(
            {"prompt": f"row {k}", "answer": "name: A", "reference": "name: A", "exact_match": 1.0}) + "\n"
            for k in range(20)))
        (d / "record.json").write_text(json.dumps({"device": "cpu", "world_size": 1}))
        (d / "train.log").write_text("training done\n")
        (d / "status.json").write_text(json.dumps({
            "state": "finished", "recipe": "sft", "name": f"idle-{i}", "created_at": t0, "queued_at": t0,
            "pid": None, "started_at": t0 + 1, "step": steps, "max_steps": steps, "eta_s": 0.0,
            "finished_at": t0 + 3 * steps, "updated_at": t0 + 3 * steps}, indent=1))
        ids.append(rid)
    return ids


# --------------------------------------------------------------------------- measurement
def app_process(port: int, pid: int | None) -> psutil.Process:
    if pid:
        return psutil.Process(pid)
    for c in psutil.net_connections("tcp"):
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port and c.pid:
            return psutil.Process(c.pid)
    raise SystemExit(f"error: no process listens on port {port}; start the app first or give --pid")


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def open_session(browser, url: str, tab: str, run_id: str, timeout_ms: int, counts: dict, shot: str | None):
    ctx = browser.new_context(viewport={"width": 1400, "height": 2400})
    page = ctx.new_page()

    def on_ws(ws):
        ws.on("framesent", lambda _: counts.__setitem__("ws", counts["ws"] + 1))
    page.on("request", lambda _: counts.__setitem__("http", counts["http"] + 1))
    page.on("websocket", on_ws)
    page.goto(url, timeout=timeout_ms)
    page.get_by_role("tab", name=tab).click(timeout=timeout_ms)
    box = page.get_by_label("Run", exact=True).locator("visible=true").first
    box.click(timeout=timeout_ms)
    page.get_by_role("option", name=run_id).first.click(timeout=timeout_ms)
    page.get_by_text(f"finished · {run_id}").first.wait_for(timeout=timeout_ms)
    if shot:
        page.wait_for_timeout(3000)  # the plots render after the status line
        page.screenshot(path=shot, full_page=True)
    return page


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python benchmarks/idle_cpu.py", description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=7860)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--url-path", default="/", help="path of the app's page; default /")
    ap.add_argument("--sessions", type=int, default=3, help="browser sessions, one finished run each")
    ap.add_argument("--seconds", type=float, default=60.0, help="measurement window")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds to wait after the pages are ready")
    ap.add_argument("--tab", default="SFT trainer", help="tab whose run monitor shows the run")
    ap.add_argument("--data-dir", default=None, help="the app's data dir (run ids are read from its runs/)")
    ap.add_argument("--pid", type=int, default=None, help="app process id; default: whoever listens on --port")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--screenshot", default=None, help="PNG of the first session's page, taken before measuring")
    ap.add_argument("--make-runs", metavar="DATA_DIR", default=None,
                    help="only write 3 finished SFT runs under DATA_DIR/runs and exit")
    a = ap.parse_args(argv)

    if a.make_runs:
        for rid in make_runs(Path(a.make_runs)):
            print(rid)
        return 0
    if a.sessions < 1 or a.seconds <= 0:
        print("error: --sessions must be >= 1 and --seconds > 0", file=sys.stderr)
        return 2
    proc = app_process(a.port, a.pid)
    cmd = proc.cmdline()
    data_dir = a.data_dir or (cmd[cmd.index("--data-dir") + 1] if "--data-dir" in cmd[:-1] else "lab_data")
    runs_dir = Path(proc.cwd()) / data_dir / "runs"  # an absolute data_dir replaces the app's cwd
    finished = sorted(p.name for p in runs_dir.iterdir()
                      if (p / "status.json").exists() and '"finished"' in (p / "status.json").read_text())
    if not finished:
        print(f"error: no finished run in {runs_dir}; make some with --make-runs DATA_DIR", file=sys.stderr)
        return 2

    from playwright.sync_api import sync_playwright
    url = f"http://{a.host}:{a.port}{a.url_path}"
    counts = {"http": 0, "ws": 0}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=a.chromium, headless=True)
        pages = [open_session(browser, url, a.tab, finished[i % len(finished)], 120_000, counts,
                              a.screenshot if i == 0 else None) for i in range(a.sessions)]
        time.sleep(a.settle)
        counts.update(http=0, ws=0)
        c0, t0 = cpu_seconds(proc), time.monotonic()
        end = t0 + a.seconds
        while time.monotonic() < end:  # the pages' timers run in the browser; pump its events meanwhile
            pages[0].wait_for_timeout(min(1000, max(1, (end - time.monotonic()) * 1000)))
        cpu, wall = cpu_seconds(proc) - c0, time.monotonic() - t0
        sent = dict(counts)
        browser.close()
    print(f"cpu_s={cpu:.2f}")
    print(f"app pid {proc.pid}: {cpu:.2f} CPU s over {wall:.0f} s ({100 * cpu / wall:.1f}% of one core) with "
          f"{a.sessions} sessions on finished runs ({a.tab}); pages sent {sent['http']} HTTP requests and "
          f"{sent['ws']} websocket messages meanwhile")
    return 0


if __name__ == "__main__":
    sys.exit(main())
