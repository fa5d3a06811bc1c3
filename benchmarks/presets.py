"""Each SFT task preset trained with several seeds through the real recipe: held-out metrics, mean and spread.

    python benchmarks/presets.py instruction                        # seeds 42,43,44; scored on the test split
    python benchmarks/presets.py instruction transform sentiment qa --seeds 42,43,44
    python benchmarks/presets.py instruction --split validation     # score validation rows instead: the only
                                                                    # split to choose settings on

Each run is what a user would type: the preset's config (`python -m labs.sft --preset NAME --out cfg.yaml`)
with `seed` set, then `python -m labs.sft --config cfg.yaml` in its own process, with LAB_DATA_DIR in a
temporary directory (the model cache, LAB_MODEL_CACHE, is shared so the model is not converted again).
The recipe scores the held-out rows by generation at the end of the run, with the adapter and with the
adapter switched off (the base model). `--split validation` trains on the same rows but saves a copy of
the bundled set without its test split, so the recipe scores the validation rows.

Per seed it prints the held-out metrics, the base model's, the training steps, training seconds (wall)
and training CPU seconds (both from the run's summary; CPU seconds are the steadier measure on a shared
machine), the whole process's seconds (model load and evaluation included) and the CPU seconds other
processes used while it ran (from /proc/stat: other work on the machine slows a run down); then, per
preset, mean ± sample standard deviation and min–max over the seeds. The last line is all results as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
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

# the metrics reported per task metric, where the run has them (labs/evaluation/metrics.py names them;
# field_accuracy: share of the YAML answer's fields right, for the extraction rows)
REPORTED = {"exact_match": ("exact_match", "field_accuracy"), "classification": ("accuracy", "f1"),
            "qa": ("exact_match", "f1")}


def reported(r: dict) -> list[str]:
    return [k for k in REPORTED[r["metric"]] if f"test/{k}" in r]


def machine() -> str:
    model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")),
                 platform.processor() or "unknown CPU") if Path("/proc/cpuinfo").exists() else platform.processor()
    flags = ""
    if Path("/proc/cpuinfo").exists():
        flags = next((ln for ln in open("/proc/cpuinfo") if ln.startswith("flags")), "")
    has = [f for f in ("avx512f", "avx512_bf16", "amx_bf16") if f" {f}" in flags]
    missing = [f for f in ("avx512_bf16", "amx_bf16") if f" {f}" not in flags]
    return (f"{model}, {os.cpu_count()} cores, {' '.join(has) or 'no AVX-512'}"
            + (f" (no {', '.join(missing)})" if missing else ""))


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy since boot (/proc/stat; steal and idle excluded)."""
    try:
        user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in open("/proc/stat").readline().split()[1:8])
    except (OSError, ValueError):
        return float("nan")
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def validation_dataset(data_dir: Path) -> str:
    """The bundled set without its test split, saved in `data_dir`: the recipe then scores validation rows."""
    import datasets
    from labs.data.io import read_rows, save_dataset
    datasets.disable_progress_bars()
    src = ROOT / "assets" / "instruct"
    name = "instruct-without-test"
    save_dataset(name, {s: read_rows(src / f"{s}.jsonl") for s in ("train", "validation")}, data_dir=data_dir,
                 source=str(src), overwrite=True)
    return name


def run_one(name: str, seed: int, work: Path, env: dict, dataset: str | None) -> dict:
    """One headless run of preset `name` with `seed`; returns the recipe's summary plus timings."""
    from labs.sft.config import preset
    cfg = preset(name, seed=seed, **({"dataset": dataset} if dataset else {}))
    path = work / f"{name}-seed{seed}.yaml"
    path.write_text(cfg.to_yaml())
    busy0, own0, t0 = busy_cpu_s(), children_cpu_s(), time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "labs.sft", "--config", str(path)], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    run_s = time.perf_counter() - t0
    own = children_cpu_s() - own0
    other = busy_cpu_s() - busy0 - own
    (work / f"{name}-seed{seed}.log").write_text(out.stdout + out.stderr)
    summary = None
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            try:
                summary = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "train_seconds" in summary:
                break
            summary = None
    if out.returncode != 0 or summary is None:
        tail = (out.stderr.strip() or out.stdout.strip())[-800:]
        raise RuntimeError(f"preset {name} seed {seed}: the run failed (exit {out.returncode}); "
                           f"log {work / f'{name}-seed{seed}.log'}:\n{tail}")
    return {"preset": name, "seed": seed, "metric": cfg.metric(), "run_seconds": round(run_s, 1),
            "other_cpu_seconds": round(other, 1), **summary}


def _spread(xs: list[float], digits: int = 1, scale: float = 1.0) -> str:
    xs = [x * scale for x in xs]
    std = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.mean(xs):.{digits}f} ± {std:.{digits}f} ({min(xs):.{digits}f}–{max(xs):.{digits}f})"


def report(name: str, results: list[dict], split: str) -> None:
    keys = reported(results[0])
    head = "  ".join(f"{k + ' %':>12} {'base':>6}" for k in keys)
    print(f"\npreset {name} · {split} split · {results[0].get('test/n', '?')} rows scored")
    print(f"{'seed':>6}  {head}  {'steps':>5} {'train s':>8} {'train CPU s':>11} {'run s':>7} {'other CPU s':>11}")
    for r in results:
        cells = "  ".join(f"{100 * r[f'test/{k}']:12.1f} {100 * r.get(f'test/base/{k}', float('nan')):6.1f}"
                          for k in keys)
        print(f"{r['seed']:>6}  {cells}  {r['step']:>5} {r['train_seconds']:8.1f} {r['train_cpu_seconds']:11.1f} "
              f"{r['run_seconds']:7.1f} {r['other_cpu_seconds']:11.1f}")
    for k in keys:
        print(f"  {k}: {_spread([r[f'test/{k}'] for r in results], scale=100)} %   "
              f"base: {_spread([r.get(f'test/base/{k}', float('nan')) for r in results], scale=100)} %")
    for k in ("train_seconds", "train_cpu_seconds", "run_seconds", "other_cpu_seconds"):
        print(f"  {k}: {_spread([r[k] for r in results])}")


def main(argv: list[str] | None = None) -> int:
    from labs.sft.config import PRESETS
    names = [n for n in PRESETS if n != "custom"]
    ap = argparse.ArgumentParser(prog="python benchmarks/presets.py", description=__doc__.split("\n")[0])
    ap.add_argument("presets", nargs="+", help=f"one or more of: {', '.join(names)}")
    ap.add_argument("--seeds", default="42,43,44", help="comma separated (default 42,43,44)")
    ap.add_argument("--split", choices=("test", "validation"), default="test",
                    help="held-out rows to score (default test; choose settings on validation only)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data directory (runs, predictions)")
    a = ap.parse_args(argv)
    try:
        seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
        if not seeds or min(seeds) < 0:
            raise ValueError
    except ValueError:
        print(f"error: --seeds: give whole numbers of 0 or more separated by commas, got {a.seeds!r}", file=sys.stderr)
        return 2
    bad = [n for n in a.presets if n not in names]
    if bad:
        print(f"error: no preset '{bad[0]}' (presets: {', '.join(names)})", file=sys.stderr)
        return 2

    from labs import paths
    work = Path(tempfile.mkdtemp(prefix="presets-"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "LAB_DATA_DIR": str(work / "lab_data"),
           "LAB_MODEL_CACHE": os.environ.get("LAB_MODEL_CACHE") or str(paths.model_cache_dir())}
    dataset = validation_dataset(work / "lab_data") if a.split == "validation" else None
    print(f"machine: {machine()} · load average {os.getloadavg()[0]:.2f} at start")
    print(f"python -m labs.sft per run; seeds {seeds}; data dir {work / 'lab_data'}", flush=True)
    every = []
    try:
        for name in a.presets:
            results = []
            for seed in seeds:
                r = run_one(name, seed, work, env, dataset)
                results.append(r)
                keys = reported(r)
                print(f"  {name} seed {seed}: " + ", ".join(f"{k} {100 * r[f'test/{k}']:.1f}%" for k in keys)
                      + f" · {r['train_seconds']} s training ({r['train_cpu_seconds']} CPU s)", flush=True)
            report(name, results, a.split)
            every += results
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        if not a.keep:
            import shutil
            shutil.rmtree(work, ignore_errors=True)
    keep = ("preset", "seed", "step", "train_seconds", "train_cpu_seconds", "run_seconds", "other_cpu_seconds")
    print(json.dumps({"machine": machine(), "split": a.split,
                      "runs": [{k: v for k, v in r.items() if k in keep or k.startswith("test/")} for r in every]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
