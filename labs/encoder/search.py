"""Hyperparameter search for the encoder recipe (the course's slide 13): trials queued in the run engine, the
best chosen on the validation split, the test split scored once.

    python -m labs.encoder search --preset sentiment --grid "learning_rate=2e-5,5e-5,1e-4 num_epochs=2,4"
    python -m labs.encoder search --preset qa --grid "learning_rate=5e-5,1e-4,2e-4 batch_size=8,16" --random 4
    python -m labs.encoder search --show 20261202-162801-sentiment          # where a search stands
    from labs.encoder import search
    rec = search.start("sentiment", {"learning_rate": [2e-5, 1e-4]})   # queues one run per trial
    search.results(rec["id"])        # the trials' validation scores so far; best and test once all finished

The trials are the grid's combinations (or `random` of them, drawn with `seed`), each the preset's config
with those settings and `eval_split: validation`, so every trial is scored on validation rows only; the
preset's own settings are always one trial ("default"). Each trial is a run of the run engine (recipe
encoder): queued, one at a time, stoppable, listed with every other run. When the last trial has ended
(finished, or failed, stopped, interrupted: those have no score),
the best by the validation score (F1 macro for classification - the classes are imbalanced -, F1 for QA;
a tie goes to the earlier trial) and the default trial are scored on the test split, once: the result is
kept in the search's record (<data-dir>/searches/<id>/search.json) and never recomputed.
"""
from __future__ import annotations

import itertools
import json
import random
import sys
import time
from pathlib import Path

from labs import paths, runs
from labs.encoder.config import ConfigError, EncoderRunConfig, preset
from labs.errors import LabError

SCORE = {"classification": "f1_macro", "qa": "f1"}
TUNABLE = ("learning_rate", "batch_size", "num_epochs", "weight_decay", "warmup", "lora_r", "lora_alpha",
           "class_weights", "max_length", "method")
MAX_TRIALS = 24


class SearchError(LabError, ValueError):
    """A search that cannot start or be read; the message says why."""


def scalar(text: str):
    """A typed value as a number where it reads as one (2e-5, 16, 2.5), true/false, else the text."""
    t = str(text).strip()
    for kind in (int, float):
        try:
            return kind(t)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(t.lower(), t)


def parse_grid(text: str) -> dict[str, list]:
    """'learning_rate=2e-5,5e-5 num_epochs=2,4' (spaces or ';' between settings) -> {name: [values]}."""
    grid: dict[str, list] = {}
    for part in (text or "").replace(";", " ").replace("\n", " ").split():
        name, eq, values = part.partition("=")
        name = name.strip()
        if not eq or not values.strip():
            raise SearchError(f"grid: '{part}' should be name=value,value (e.g. learning_rate=2e-5,5e-5)")
        if name not in TUNABLE:
            raise SearchError(f"grid: '{name}' cannot be searched here (searchable: {', '.join(TUNABLE)})")
        grid[name] = [scalar(v) for v in values.split(",") if v.strip()]
    if not grid:
        raise SearchError("grid: give at least one setting, e.g. learning_rate=2e-5,5e-5,1e-4")
    return grid


def trials_of(preset_name: str, grid: dict[str, list], n_random: int = 0, seed: int = 0,
              overrides: dict | None = None) -> list[dict]:
    """The trials' settings: 'default' (the preset's own) first, then the grid's combinations (or n_random of
    them). Each is checked by EncoderRunConfig: a bad value is refused before anything is queued."""
    base = preset(preset_name, **(overrides or {}))
    names = list(grid)
    combos = [dict(zip(names, vals)) for vals in itertools.product(*(grid[n] for n in names))]
    if n_random and n_random < len(combos):
        combos = random.Random(seed).sample(combos, n_random)
    default = {n: getattr(base, n) for n in names}
    combos = [c for c in combos if c != default]
    if len(combos) + 1 > MAX_TRIALS:
        raise SearchError(f"grid: {len(combos) + 1} trials; at most {MAX_TRIALS} (use --random N to draw some)")
    out = [{"trial": "default", "settings": default}]
    for i, c in enumerate(combos, 1):
        try:
            EncoderRunConfig(**{**base.to_dict(), **c})
        except ConfigError as e:
            raise SearchError(f"grid: {e}") from None
        out.append({"trial": str(i), "settings": c})
    return out


def _dir(search_id: str) -> Path:
    return paths.child(paths.subdir("searches"), search_id, "search id", SearchError)


def _save(rec: dict) -> None:
    d = _dir(rec["id"])
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / "search.json.tmp"
    tmp.write_text(json.dumps(rec, indent=1))
    tmp.replace(d / "search.json")


def load(search_id: str) -> dict:
    p = _dir(search_id) / "search.json"
    if not p.is_file():
        raise SearchError(f"no search {search_id!r} (searches: {', '.join(list_ids()) or 'none yet'})")
    return json.loads(p.read_text())


def list_ids() -> list[str]:
    d = paths.data_dir() / "searches"  # listing creates nothing
    return sorted((p.name for p in d.iterdir() if (p / "search.json").is_file()), reverse=True) if d.is_dir() else []


def start(preset_name: str, grid: dict[str, list], *, n_random: int = 0, seed: int = 0,
          overrides: dict | None = None, actor=None) -> dict:
    """Queue one run per trial; returns the search's record (its id, the trials and their run ids)."""
    trials = trials_of(preset_name, grid, n_random, seed, overrides)
    base = preset(preset_name, **(overrides or {}))
    search_id = time.strftime(f"%Y%m%d-%H%M%S-{preset_name}")
    taken = set(list_ids())
    k = 1
    while search_id in taken:  # two searches in one second get their own records
        k += 1
        search_id = time.strftime(f"%Y%m%d-%H%M%S-{preset_name}") + f"-{k}"
    rec = {"id": search_id, "preset": preset_name, "base": base.to_dict(), "grid": grid, "random": n_random,
           "seed": seed, "task": base.task, "score": SCORE[base.task], "created_at": time.time(), "trials": trials,
           "test": None}
    for t in trials:
        cfg = EncoderRunConfig(**{**base.to_dict(), **t["settings"], "eval_split": "validation"})
        t["run_id"] = runs.submit("encoder", cfg.to_dict(), name=f"search-{t['trial']}", actor=actor).id
    _save(rec)
    return rec


def _trial_state(t: dict, score: str) -> dict:
    out = {"trial": t["trial"], **t["settings"], "run": t["run_id"], "state": "missing", score: None,
           "train_seconds": None}
    try:
        run = runs.get(t["run_id"])
    except runs.RunError:
        return out
    out["state"] = run.status().get("state")
    ev = run.dir / "eval_metrics.json"
    if out["state"] == "finished" and ev.is_file():
        m = json.loads(ev.read_text())
        out[score] = m.get(score)
        out["validation_accuracy" if score == "f1_macro" else "validation_exact_match"] = \
            m.get("accuracy" if score == "f1_macro" else "exact_match")
    final = [r for r in run.metrics() if r.get("final")]
    if final:
        out["train_seconds"] = final[-1].get("train_seconds")
    return out


def _test_scores(run_id: str, rec: dict) -> dict:
    from labs.evaluation.evaluate import EvalConfig, evaluate
    run = runs.get(run_id)
    res = evaluate(EvalConfig(models=[str(run.dir)], data=rec["base"]["dataset"], split="test",
                              task=rec["task"] if rec["task"] == "qa" else "classification", loss=False))
    return {k: v for k, v in res["models"][0]["metrics"].items() if isinstance(v, (int, float))}


def results(search_id: str, score_test: bool = True) -> dict:
    """The trials with their validation scores; once every trial has finished: the best (by validation) and
    the default, each scored on the test split once (kept in the record)."""
    rec = load(search_id)
    score = rec["score"]
    table = [_trial_state(t, score) for t in rec["trials"]]
    done = [r for r in table if r[score] is not None]
    # the run engine's view: a trial whose process is gone reads as interrupted, not active, and will not
    # finish by itself; a missing or broken folder neither
    ended = all(r["state"] not in runs.ACTIVE for r in table)
    best = max(done, key=lambda r: (r[score], -table.index(r))) if done else None
    if ended and best and score_test and rec.get("test") is None:
        default = next((r for r in table if r["trial"] == "default" and r[score] is not None), None)
        test = {"best_trial": best["trial"], "best": _test_scores(best["run"], rec)}
        if default and default is not best:
            test["default"] = _test_scores(default["run"], rec)
        elif default is best:
            test["default"] = test["best"]
        rec["test"] = test
        _save(rec)
    return {"id": rec["id"], "preset": rec["preset"], "score": score, "trials": table, "ended": ended,
            "best": best, "test": rec.get("test"), "dir": str(_dir(rec["id"]))}


def figure(res: dict):
    """Validation score per trial (the best one marked)."""
    from matplotlib.figure import Figure  # a Figure object, never pyplot (labs/plots.py)
    score = res["score"]
    trials = res["trials"]
    fig = Figure(figsize=(max(4.5, 0.6 * len(trials) + 2), 3.4), dpi=100)
    ax = fig.add_subplot()
    vals = [100 * (t[score] or 0) for t in trials]
    best = res["best"]["trial"] if res.get("best") else None
    colors = ["#d62728" if t["trial"] == best else ("#7f7f7f" if t["trial"] == "default" else "#1f77b4")
              for t in trials]
    ax.bar(range(len(trials)), vals, color=colors)
    ax.set_xticks(range(len(trials)), [t["trial"] for t in trials])
    ax.set_xlabel("trial (grey: the preset's settings, red: best on validation)")
    ax.set_ylabel(f"validation {score} (%)")
    lo = min([v for v in vals if v > 0] or [0])
    ax.set_ylim(max(0, lo - 10), min(100, max(vals or [0]) + 5))
    fig.tight_layout()
    return fig


def describe(res: dict) -> str:
    """The search as Markdown: its trials and, when ended, best vs default on the test split."""
    score = res["score"]
    keys = [k for k in res["trials"][0] if k not in ("trial", "run", "state", score, "train_seconds")
            and not k.startswith("validation_")] if res["trials"] else []
    lines = [f"| trial | {' | '.join(keys)} | validation {score} | training s | state |",
             "|---|" + "---|" * (len(keys) + 3)]
    for t in res["trials"]:
        v = "–" if t[score] is None else f"{100 * t[score]:.1f}%"
        lines.append(f"| {t['trial']} | {' | '.join(str(t[k]) for k in keys)} | {v} | "
                     f"{t['train_seconds'] if t['train_seconds'] is not None else '–'} | {t['state']} |")
    out = "\n".join(lines)
    test = res.get("test")
    if test:
        metric_names = ("accuracy", "f1_macro") if score == "f1_macro" else ("exact_match", "f1")
        fmt = lambda m: ", ".join(f"{k} {100 * m[k]:.1f}%" for k in metric_names if k in m)  # noqa: E731
        out += (f"\n\n**Test split, scored once:** best trial {test['best_trial']} (chosen on validation): "
                f"{fmt(test['best'])}; the preset's settings: {fmt(test.get('default', {}))}.")
    elif not res["ended"]:
        out += "\n\nTrials are still queued or running; the test split is scored once when the last has finished."
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse
    import os
    ap = argparse.ArgumentParser(prog="python -m labs.encoder search", description=__doc__.split("\n")[0])
    ap.add_argument("--preset", choices=["sentiment", "qa"])
    ap.add_argument("--grid", help="e.g. 'learning_rate=2e-5,5e-5,1e-4 num_epochs=2,4'")
    ap.add_argument("--show", metavar="SEARCH_ID", help="no new search: where that one stands (its test split is "
                                                          "scored once when every trial has ended)")
    ap.add_argument("--random", type=int, default=0, help="draw this many of the grid's combinations (0 = all)")
    ap.add_argument("--seed", type=int, default=0, help="the draw's seed (--random)")
    ap.add_argument("--dataset", default=None, help="another dataset than the preset's")
    ap.add_argument("--set", action="append", default=[], help="key=value over the preset for every trial")
    ap.add_argument("--data-dir", default=os.environ.get("LAB_DATA_DIR", "lab_data"))
    ap.add_argument("--timeout", type=float, default=7200, help="seconds to wait for the trials")
    a = ap.parse_args(argv)
    if a.show:
        try:
            paths.set_data_dir(a.data_dir)
            return _report(results(a.show))
        except (SearchError, paths.DataDirError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    if not a.preset or not a.grid:
        print("error: --preset and --grid start a search; --show SEARCH_ID shows one", file=sys.stderr)
        return 2
    try:
        paths.set_data_dir(a.data_dir)
        overrides = {k.strip(): scalar(v) for k, _, v in (s.partition("=") for s in a.set)}
        if a.dataset:
            overrides["dataset"] = a.dataset
        rec = start(a.preset, parse_grid(a.grid), n_random=a.random, seed=a.seed, overrides=overrides)
    except (SearchError, ConfigError, paths.DataDirError, runs.RunError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"search {rec['id']}: {len(rec['trials'])} trials queued", flush=True)
    for t in rec["trials"]:
        st = runs.wait(t["run_id"], timeout_s=a.timeout)
        print(f"  trial {t['trial']} {t['settings']}: {st.get('state')}", flush=True)
    return _report(results(rec["id"]))


def _report(res: dict) -> int:
    """The table, the chart and the name=value lines (best trial, its validation score, test scores)."""
    print(describe(res))
    fig = figure(res)
    fig.savefig(Path(res["dir"]) / "validation.png", dpi=110)
    print(f"chart: {Path(res['dir']) / 'validation.png'}")
    if res["best"]:
        print(f"best_trial={res['best']['trial']}")
        print(f"best_validation_{res['score']}={res['best'][res['score']]}")
    for which in ("best", "default"):
        for k, v in ((res.get("test") or {}).get(which) or {}).items():
            if k in ("accuracy", "f1_macro", "exact_match", "f1"):
                print(f"test/{which}/{k}={v}")
    return 0 if res["best"] else 1


if __name__ == "__main__":
    sys.exit(main())
