"""The course's tasks both ways, side by side: the encoder recipe and the LLM (SFT) preset on the same splits.

    python benchmarks/course_tasks.py sentiment-real drugs-real qa              # seeds 42,43,44, test split
    python benchmarks/course_tasks.py sentiment-real --ways llm --split validation --seeds 42 \\
        --llm-set learning_rate=1e-3 --llm-set max_steps=60                      # choose settings on validation
    python benchmarks/course_tasks.py qa --chart /tmp/side_by_side.png
    python benchmarks/course_tasks.py --from /tmp/course-tasks-a /tmp/course-tasks-b --chart c.png   # no training
    python benchmarks/course_tasks.py sentiment-real qa --from /tmp/course-tasks-a          # only those tasks

Tasks (data, then the preset each way starts from):
    sentiment-real  the sentiment-real dataset (python -m labs.data real-sets): tweets, 3 classes
    drugs-real      the drugs-real dataset: UCI drug reviews, 3 classes
    qa              assets/qa_varied: extractive QA over varied paragraphs
Each run is what a user would type: the preset's config with `dataset` and `seed` set (plus any --llm-set /
--encoder-set), `python -m labs.sft --config` or `python -m labs.encoder --config` in its own process, then
`python -m labs.evaluation --model <run dir> --data <data> --split <split> --task <task>` - the one evaluation
entry point, which prompts raw rows the way the LLM preset trained - scores the chosen split. LLM runs skip
their own end-of-run scoring (eval_rows 0): the evaluation CLI scores every row once. The real datasets are
rebuilt in a temporary data directory from the installed packages (the model cache is shared).

Per run: the task's metrics (accuracy and F1 macro, or exact match and F1), training seconds (wall and CPU),
milliseconds per answered row (model loaded; batch 16 for the LLM, 32 for the encoder), trainable and total
parameters. Per task and way: mean ± sample standard deviation over the seeds. The table is printed as
Markdown, a chart (score with its spread, training time) is written with --chart, and the last line is all
results as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from benchmarks.presets import busy_cpu_s, children_cpu_s, machine  # noqa: E402

TASKS = {
    "sentiment-real": {"data": "sentiment-real", "task": "classification", "llm": "sentiment", "encoder": "sentiment"},
    "drugs-real": {"data": "drugs-real", "task": "classification", "llm": "sentiment", "encoder": "sentiment"},
    "qa": {"data": "assets/qa_varied", "task": "qa", "llm": "qa", "encoder": "qa"},
}
SCORES = {"classification": ("accuracy", "f1_macro"), "qa": ("exact_match", "f1")}
WAYS = ("encoder", "llm")


def parse_sets(items: list[str]) -> dict:
    """key=value overrides; numbers read as numbers (1e-3, 16), true/false as booleans, else text."""
    from labs.encoder.search import scalar
    out = {}
    for it in items or []:
        if "=" not in it:
            raise ValueError(f"--*-set: expected key=value, got {it!r}")
        k, v = it.split("=", 1)
        out[k.strip()] = scalar(v)
    return out


def config_for(way: str, task: str, seed: int, sets: dict) -> dict:
    t = TASKS[task]
    if way == "llm":
        from labs.sft.config import preset
        cfg = preset(t["llm"], dataset=t["data"], data_tasks="", seed=seed, eval_rows=0, **sets)
    else:
        from labs.encoder.config import preset
        cfg = preset(t["encoder"], dataset=t["data"], seed=seed, **sets)
    return cfg.to_dict()


def _summary(stdout: str) -> dict | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                s = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "train_seconds" in s:
                return s
    return None


def run_one(way: str, task: str, seed: int, split: str, sets: dict, work: Path, env: dict) -> dict:
    import yaml
    name = f"{task}-{way}-seed{seed}"
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config_for(way, task, seed, sets), sort_keys=False))
    module = "labs.sft" if way == "llm" else "labs.encoder"
    busy0, own0 = busy_cpu_s(), children_cpu_s()
    out = subprocess.run([sys.executable, "-m", module, "--config", str(path)], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    (work / f"{name}.log").write_text(out.stdout + out.stderr)
    if out.returncode != 0 or _summary(out.stdout) is None or not re.search(r"^run directory: ", out.stdout, re.M):
        raise RuntimeError(f"{name}: the run failed (exit {out.returncode}); log {work / f'{name}.log'}:\n"
                           f"{(out.stderr.strip() or out.stdout.strip())[-800:]}")
    run_dir = Path(re.search(r"^run directory: (.+)$", out.stdout, re.M).group(1).strip())
    t = TASKS[task]
    ev = subprocess.run([sys.executable, "-m", "labs.evaluation", "--model", str(run_dir), "--data", t["data"],
                         "--split", split, "--task", t["task"], "--batch-size", "16" if way == "llm" else "32", "--no-loss",
                         "--max-new-tokens", "16" if t["task"] == "classification" else "32"],
                        cwd=ROOT, env=env, capture_output=True, text=True)
    (work / f"{name}.eval.log").write_text(ev.stdout + ev.stderr)
    if ev.returncode != 0:
        raise RuntimeError(f"{name}: evaluation failed (exit {ev.returncode}): {ev.stderr.strip()[-400:]}")
    other = busy_cpu_s() - busy0 - (children_cpu_s() - own0)
    return {**read_result(work, name, split, sets), "other_cpu_seconds": round(other, 1)}


NAME = re.compile(r"^(?P<task>.+)-(?P<way>encoder|llm)-seed(?P<seed>\d+)$")


def read_result(work: Path, name: str, split: str, sets: dict) -> dict:
    """One run's row of the table, read back from its files in the work directory: <name>.log (the run's
    output: run directory and summary), <name>.eval.log (the evaluation's name=value lines), record.json."""
    m = NAME.match(name)
    task, way, seed = m["task"], m["way"], int(m["seed"])
    log = (work / f"{name}.log").read_text()
    summary = _summary(log)
    run_dir = Path(re.search(r"^run directory: (.+)$", log, re.M).group(1).strip())
    metrics = {}
    for line in (work / f"{name}.eval.log").read_text().splitlines():
        k, _, v = line.partition("=")
        try:
            metrics[k] = float(v)
        except ValueError:
            pass
    rec = json.loads((run_dir / "record.json").read_text())
    return {"task": task, "way": way, "seed": seed, "split": split, "run_dir": str(run_dir), "settings": sets,
            **{k: metrics.get(k) for k in (*SCORES[TASKS[task]["task"]], "ms_per_row", "n")},
            "train_seconds": summary["train_seconds"], "train_cpu_seconds": summary["train_cpu_seconds"],
            "steps": summary["step"], "trainable_params": rec.get("trainable_params"),
            "total_params": rec.get("total_params"), "other_cpu_seconds": None}


def collect(works: list[str]) -> list[dict]:
    """Every finished run of kept work directories (--keep), for the table and chart without training again.
    A run of a later directory replaces one of the same task, way and seed of an earlier one."""
    got: dict[tuple, dict] = {}
    for w in works:
        work = Path(w)
        if not work.is_dir():
            raise ValueError(f"--from: {w} is not a directory")
        for ev in sorted(work.glob("*.eval.log")):
            name = ev.name[:-len(".eval.log")]
            if not NAME.match(name) or not (work / f"{name}.log").is_file():
                continue
            split = re.search(r" rows of .+/(\w+)(?:\.\w+)?, task ", ev.read_text())
            try:
                r = read_result(work, name, split.group(1) if split else "?", {})
            except (OSError, AttributeError, KeyError, TypeError, json.JSONDecodeError) as e:
                raise ValueError(f"--from: {work / name}: not a finished run ({e})") from None
            got[(r["task"], r["way"], r["seed"])] = r
    if not got:
        raise ValueError(f"--from: no finished run in {', '.join(works)}")
    return list(got.values())


def spread(xs: list[float], scale: float = 1.0, digits: int = 1) -> str:
    xs = [x * scale for x in xs if x is not None]
    if not xs:
        return "–"
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):.{digits}f} ± {sd:.{digits}f}"


def table(results: list[dict]) -> str:
    lines = ["| task | way | score 1 | score 2 | training s | ms per row | trainable / total params | seeds |",
             "|---|---|---|---|---|---|---|---|"]
    for task in TASKS:
        for way in WAYS:
            rs = [r for r in results if r["task"] == task and r["way"] == way]
            if not rs:
                continue
            k1, k2 = SCORES[TASKS[task]["task"]]
            lines.append(f"| {task} ({rs[0]['split']}, {int(rs[0]['n'] or 0)} rows) | {way} | {k1} "
                         f"{spread([r[k1] for r in rs], 100)} % | {k2} {spread([r[k2] for r in rs], 100)} % | "
                         f"{spread([r['train_seconds'] for r in rs], digits=0)} | "
                         f"{spread([r['ms_per_row'] for r in rs])} | "
                         f"{rs[0]['trainable_params']:,} / {rs[0]['total_params']:,} | {len(rs)} |")
    return "\n".join(lines)


def chart(results: list[dict], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    groups = [t for t in TASKS if any(r["task"] == t for r in results)]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    width = 0.38
    for i, way in enumerate(WAYS):
        means, sds, secs, ssd = [], [], [], []
        for t in groups:
            rs = [r for r in results if r["task"] == t and r["way"] == way]
            k = SCORES[TASKS[t]["task"]][1]
            xs = [100 * r[k] for r in rs if r[k] is not None] or [float("nan")]  # no bar where not measured
            ts = [r["train_seconds"] for r in rs] or [float("nan")]
            means.append(statistics.mean(xs)), sds.append(statistics.stdev(xs) if len(xs) > 1 else 0)
            secs.append(statistics.mean(ts)), ssd.append(statistics.stdev(ts) if len(ts) > 1 else 0)
        xs = [j + (i - 0.5) * width for j in range(len(groups))]
        axes[0].bar(xs, means, width, yerr=sds, capsize=3, label=way)
        axes[1].bar(xs, secs, width, yerr=ssd, capsize=3, label=way)
    labels = [f"{t}\n({SCORES[TASKS[t]['task']][1]})" for t in groups]
    for ax, title in ((axes[0], "held-out score, % (mean ± sd over seeds)"), (axes[1], "training seconds")):
        ax.set_xticks(range(len(groups)), labels)
        ax.set_title(title, fontsize=10)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python benchmarks/course_tasks.py", description=__doc__.split("\n")[0])
    ap.add_argument("tasks", nargs="*", help=f"one or more of: {', '.join(TASKS)}")
    ap.add_argument("--ways", default="encoder,llm", help="encoder, llm or both (default both)")
    ap.add_argument("--seeds", default="42,43,44")
    ap.add_argument("--split", choices=("test", "validation"), default="test",
                    help="rows to score (default test; choose settings on validation only)")
    ap.add_argument("--llm-set", action="append", default=[], help="key=value over the LLM preset (repeatable)")
    ap.add_argument("--encoder-set", action="append", default=[], help="key=value over the encoder preset")
    ap.add_argument("--chart", default=None, help="write the side-by-side chart to this PNG")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    ap.add_argument("--from", dest="from_", nargs="+", metavar="DIR", default=None,
                    help="no training: the table and chart of the finished runs kept in these work directories "
                         "(--keep prints each one's path; a later one's run replaces the same task/way/seed)")
    a = ap.parse_args(argv)
    if a.from_:
        try:
            bad = [t for t in a.tasks if t not in TASKS]
            if bad:
                raise ValueError(f"no task {bad[0]!r} (tasks: {', '.join(TASKS)})")
            results = [r for r in collect(a.from_) if not a.tasks or r["task"] in a.tasks]  # tasks given: only those
            if not results:
                raise ValueError(f"--from: no finished run of {', '.join(a.tasks)}")
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return report(results, a.chart)
    try:
        if not a.tasks:
            raise ValueError("give one or more tasks, or --from DIR")
        bad = [t for t in a.tasks if t not in TASKS]
        if bad:
            raise ValueError(f"no task {bad[0]!r} (tasks: {', '.join(TASKS)})")
        ways = [w.strip() for w in a.ways.split(",") if w.strip()]
        if not ways or any(w not in WAYS for w in ways):
            raise ValueError(f"--ways: encoder, llm or both, got {a.ways!r}")
        seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
        sets = {"llm": parse_sets(a.llm_set), "encoder": parse_sets(a.encoder_set)}
        for t in a.tasks:  # refuse a bad override before anything trains
            for w in ways:
                config_for(w, t, seeds[0], sets[w])
    except Exception as e:  # noqa: BLE001 - one readable line
        print(f"error: {e}", file=sys.stderr)
        return 2
    from labs import paths
    work = Path(tempfile.mkdtemp(prefix="course-tasks-"))
    data_dir = work / "lab_data"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LAB_DATA_DIR": str(data_dir),
           "LAB_MODEL_CACHE": os.environ.get("LAB_MODEL_CACHE") or str(paths.model_cache_dir())}
    real = [t for t in a.tasks if TASKS[t]["data"] in ("sentiment-real", "drugs-real")]
    if real:
        only = [x for t in real for x in ("--only", TASKS[t]["data"])]
        subprocess.run([sys.executable, "-m", "labs.data", "real-sets", *only], cwd=ROOT, env=env, check=True,
                       capture_output=True)
    print(f"machine: {machine()} · load average {os.getloadavg()[0]:.2f} at start")
    print(f"split {a.split}; seeds {seeds}; overrides {sets}; data dir {data_dir}", flush=True)
    results = []
    t0 = time.perf_counter()
    try:
        for task in a.tasks:
            for way in ways:
                for seed in seeds:
                    r = run_one(way, task, seed, a.split, sets[way], work, env)
                    results.append(r)
                    k1, k2 = SCORES[TASKS[task]["task"]]
                    print(f"  {task} {way} seed {seed}: {k1} {100 * (r[k1] or 0):.1f}%, {k2} {100 * (r[k2] or 0):.1f}% "
                          f"· {r['train_seconds']} s training ({r['train_cpu_seconds']} CPU s, {r['steps']} steps) "
                          f"· {r['ms_per_row']} ms/row · other CPU {r['other_cpu_seconds']} s", flush=True)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        if not a.keep:
            import shutil
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n({time.perf_counter() - t0:.0f} s in all; work directory {work if a.keep else 'removed'})")
    return report(results, a.chart)


def report(results: list[dict], chart_path: str | None) -> int:
    """The table, the chart (when asked) and, last, every result as one JSON line."""
    print(f"\n{table(results)}")
    if chart_path:
        chart(results, chart_path)
        print(f"chart: {chart_path}")
    print(json.dumps({"machine": machine(), "splits": sorted({r["split"] for r in results}), "runs": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
