"""Rank sweeps: short real LoRA SFT runs, one per rank (and/or alpha), with the same budget.

Each point is an ordinary SFT run (labs/sft.py) submitted through the run engine, so it queues
behind other jobs, trains in its own process and survives a page reload. A sweep is a named group:
<data-dir>/sweeps/<name>.json lists its run ids, so the tab (or this module) re-attaches later.

    python -m labs.lora sweep --ranks 1,2,4,8 --steps 50 --wait          # default model, bundled task
    from labs.lora import sweep as lora_sweep
    sw = lora_sweep.start_sweep("ranks", ranks=[1, 2, 4, 8], max_steps=50)
    lora_sweep.wait_sweep("ranks"); lora_sweep.sweep_rows("ranks")     # eval loss, metric, time, params

Every run gets the same seed (same data order and adapter initialisation), the same steps, learning
rate and batch size; only lora_r (and lora_alpha) differ. By default alpha = 2·rank, so the scaling
alpha/r stays 2 and the comparison is about capacity, not step size (or set use_rslora).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from labs import paths
from labs.lora.arithmetic import LoraError

TASK_METRICS = ("exact_match", "accuracy", "f1")  # the first one a run reports is plotted
MIN_STEPS = 1          # the UI asks for >= 50; tests use a few
MAX_POINTS = 24


def sweeps_dir() -> Path:
    return paths.subdir("sweeps")


def _record_path(name: str) -> Path:
    """<data-dir>/sweeps/<name>.json, for a name that passes the lab's one name check (labs.paths.child)."""
    return paths.child(sweeps_dir(), name, "sweep name", error=LoraError, suffix=".json")


def sweep_configs(ranks: list[int], alphas: list[float] | None = None, *, model: str | None = None,
                  targets: str = "all-linear", max_steps: int = 50, dataset: str | None = None,
                  seed: int = 42, learning_rate: float | None = None, batch_size: int = 4,
                  max_length: int = 256, use_rslora: bool = False, eval_rows: int = 20,
                  preset_name: str = "instruction", **overrides) -> list[dict]:
    """One SFT config per (rank, alpha) point. `alphas` empty: alpha = 2·rank for each rank;
    one alpha: that alpha for every rank; as many alphas as ranks: paired; otherwise every pair."""
    from labs.sft.config import ConfigError, preset
    ranks = [int(r) for r in ranks]
    if not ranks:
        raise LoraError("ranks: give at least one rank (e.g. 1,2,4,8)")
    if any(r < 1 or r > 1024 for r in ranks):
        raise LoraError("ranks: each rank must be between 1 and 1024")
    if max_steps < MIN_STEPS:
        raise LoraError(f"steps: at least {MIN_STEPS}")
    if not alphas:
        points = [(r, 2 * r) for r in ranks]
    elif len(alphas) == 1:
        points = [(r, alphas[0]) for r in ranks]
    elif len(alphas) == len(ranks):
        points = list(zip(ranks, alphas))
    else:
        points = [(r, a) for r in ranks for a in alphas]
    if len(points) > MAX_POINTS:
        raise LoraError(f"{len(points)} runs: a sweep holds at most {MAX_POINTS}")
    if batch_size < 1:
        raise LoraError("batch size: at least 1")
    out = []
    for i, (r, a) in enumerate(points):
        # Cheap enough to sweep on a CPU: validation loss at half-way and at the end, and the base
        # model's held-out answers once (the first point) - the base is the same for every rank.
        kw = dict(method="lora", lora_r=r, lora_alpha=a, lora_targets=targets, max_steps=max_steps,
                  eval_steps=max(1, max_steps // 2), seed=seed, batch_size=batch_size, max_length=max_length,
                  use_rslora=use_rslora, eval_rows=eval_rows, eval_base=i == 0, save_total_limit=1,
                  logging_steps=max(1, max_steps // 25))
        if model:
            kw["model"] = model
        if dataset:
            kw["dataset"] = dataset
        if learning_rate:
            kw["learning_rate"] = learning_rate
        kw.update(overrides)
        try:
            out.append(preset(preset_name, **kw).to_dict())
        except ConfigError as e:
            raise LoraError(str(e)) from None
    return out


def start_sweep(name: str | None, ranks: list[int], alphas: list[float] | None = None, actor=None, **kw) -> dict:
    """Submit one SFT run per point (they run one at a time through the queue) and save the record."""
    from labs import runs
    path = _record_path(name or time.strftime("sweep-%Y%m%d-%H%M%S"))
    name = path.stem
    if path.exists():
        raise LoraError(f"sweep '{name}' exists already; pick another name (or open it)")
    configs = sweep_configs(ranks, alphas, **kw)
    record = {"name": name, "created_at": time.time(), "points": [], "run_ids": [],
              "settings": {k: v for k, v in configs[0].items() if k not in ("lora_r", "lora_alpha")}}
    path.write_text(json.dumps(record, indent=1))  # written first: a crash mid-submit still lists what ran
    for cfg in configs:
        run = runs.submit("sft", cfg, name=f"{name}-r{cfg['lora_r']}-a{cfg['lora_alpha']:g}", actor=actor)
        record["points"].append({"run_id": run.id, "rank": cfg["lora_r"], "alpha": cfg["lora_alpha"]})
        record["run_ids"].append(run.id)
        path.write_text(json.dumps(record, indent=1))
    return record


def load_sweep(name: str) -> dict:
    path = _record_path(name)
    if not path.exists():
        raise LoraError(f"no sweep '{path.stem}' in {sweeps_dir()}")
    return json.loads(path.read_text())


def list_sweeps() -> list[str]:
    names = []
    for p in sweeps_dir().glob("*.json"):
        try:  # offer only what load_sweep accepts: no '.x.json', no links out of sweeps/
            names.append(_record_path(p.stem).stem)
        except LoraError:
            pass
    return sorted(names, reverse=True)


def run_result(run) -> dict:
    """Final numbers of one run: state, eval loss, task metric, wall time, trainable parameters."""
    st = run.status()
    rows = run.metrics()
    evals = [r for r in rows if r.get("eval_loss") is not None]
    final = next((r for r in reversed(rows) if r.get("final")), {})
    eval_metrics = {}
    p = run.dir / "eval_metrics.json"
    if p.exists():
        try:
            eval_metrics = json.loads(p.read_text())
        except ValueError:
            pass
    metric_name = next((m for m in TASK_METRICS if m in eval_metrics), None)
    record = run.record()
    steps = max((r.get("step") or 0 for r in rows), default=0)
    from labs.runs.progress import durations
    queued_s, run_s = durations(st, time.time())  # queued_at -> started_at -> finished_at (or now)
    return {"state": st.get("state"), "queue_seconds": queued_s, "run_seconds": run_s,
            "step": steps, "max_steps": run.config.get("max_steps"),
            "eval_loss": evals[-1]["eval_loss"] if evals else None,
            "best_eval_loss": final.get("best_eval_loss"),
            "metric": metric_name, "metric_value": eval_metrics.get(metric_name) if metric_name else None,
            "base_metric_value": eval_metrics.get(f"base/{metric_name}") if metric_name else None,
            "train_seconds": final.get("train_seconds") or (rows[-1].get("elapsed_s") if rows else None),
            "trainable_params": record.get("trainable_params"), "error": st.get("error")}


def sweep_results(name: str) -> list[dict]:
    from labs import runs
    out = []
    for p in load_sweep(name)["points"]:
        try:
            res = run_result(runs.get(p["run_id"]))
        except runs.RunError:
            res = {"state": "deleted"}
        out.append({"rank": p["rank"], "alpha": p["alpha"], "run_id": p["run_id"], **res})
    base = next((r["base_metric_value"] for r in out if r.get("base_metric_value") is not None), None)
    for r in out:  # the base model is measured once per sweep (same base, same rows)
        if r.get("state") == "finished" and r.get("base_metric_value") is None:
            r["base_metric_value"] = base
    return out


def sweep_rows(name: str) -> list[dict]:
    """The status table: one row per run, in the user's words (time queued and time run apart, M:SS)."""
    from labs.runs.progress import fmt_duration
    results = sweep_results(name)
    metric = next((r["metric"] for r in results if r.get("metric")), "task metric")  # one column for every row
    rows = []
    for r in results:
        rows.append({
            "rank": r["rank"], "alpha": r["alpha"], "state": r.get("state"),
            "queued": fmt_duration(r.get("queue_seconds")), "ran": fmt_duration(r.get("run_seconds")),
            "step": f"{r.get('step') or 0}/{r.get('max_steps') or '?'}",
            "eval loss": None if r.get("eval_loss") is None else round(r["eval_loss"], 4),
            metric: r.get("metric_value"),
            "base model": r.get("base_metric_value"),
            "training wall s": r.get("train_seconds"),  # trainer.train(), its evaluations included
            "trainable params": r.get("trainable_params"),
            "run": r["run_id"],
        })
    return rows


def sweep_done(name: str) -> bool:
    return all(r.get("state") in ("finished", "failed", "stopped", "interrupted", "deleted", "corrupt")
               for r in sweep_results(name))


def wait_sweep(name: str, timeout_s: float = 3600) -> list[dict]:
    from labs import runs
    t0 = time.time()
    for p in load_sweep(name)["points"]:
        runs.wait(p["run_id"], timeout_s=max(1.0, timeout_s - (time.time() - t0)))
    return sweep_results(name)


def stop_sweep(name: str, actor=None) -> None:
    """Stop the running point gracefully and kill the queued ones (their configs stay on disk)."""
    from labs import runs
    for r in sweep_results(name):
        if r.get("state") == "running":
            runs.stop(r["run_id"], actor=actor)
        elif r.get("state") == "queued":
            runs.kill(r["run_id"], actor=actor)
