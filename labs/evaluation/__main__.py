"""Evaluate any model on any dataset split, score predictions made anywhere, or run the evaluation job.

    python -m labs.evaluation --model default --data instruct --split test --task generation
    python -m labs.evaluation --model lab_data/runs/<run-id>                # its dataset, rows and task
    python -m labs.evaluation --model lab_data/runs/<run-id> --compare-base --forgetting --out /tmp/report
    python -m labs.evaluation --model default --data assets/qa/qa.jsonl --task qa
    python -m labs.evaluation --model <run-dir> --data sentiment-real --slice-by confidence   # + metrics per bin
    python -m labs.evaluation score --task qa --predictions preds.jsonl      # rows: prediction, reference
    python -m labs.evaluation --config run.yaml                              # the job (recipe "evaluation")

Prints one `name=value` per metric (accuracy, f1_macro, exact_match, f1, rouge_l, loss, perplexity, ...);
with several models, `<label>/name=value` and `delta/<label>/name=value` against the first. With --slice-by,
then `slice/<column>:<slice>/name=value` per slice (n first; `<label>/slice/...` with several models). Notes go to
stderr. Reports (report.html, report.md, evaluation.json, predictions.jsonl) go to --out, or, for a run,
to <run-dir>/evaluation/. Bad input: exit 2 and one `error: ...` line.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one `error:` line and exit 2, not the usage text
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def _print_metrics(result: dict) -> None:
    from labs.evaluation.metrics import shown
    models = result["models"]
    if len(models) == 1:
        for k, v in shown(models[0]["metrics"]).items():
            print(f"{k}={v}")
    else:
        for m in models:
            for k, v in shown(m["metrics"]).items():
                print(f"{m['label']}/{k}={v}")
        for row in result["table"]:
            for m in models[1:]:
                d = row.get(f"Δ {m['label']}")
                if d is not None:
                    print(f"delta/{m['label']}/{row['metric']}={d:+g}")
    for m in models:
        if not m.get("slices"):
            continue
        prefix = f"{m['label']}/" if len(models) > 1 else ""
        for s in m["slices"]["rows"]:
            name = s["slice"].replace("=", ":")  # one `name=value` per line, whatever the column's values hold
            for k, v in s.items():
                if k != "slice":
                    print(f"{prefix}slice/{m['slices']['by']}:{name}/{k}={v}")


def _progress_printer(every_s: float = 5.0):
    """progress(done, total, message) to stderr, at most every `every_s` seconds."""
    last = [0.0]

    def progress(done, total, message):
        now = time.monotonic()
        if now - last[0] >= every_s or done == total:
            last[0] = now
            print(f"{message}: {done}/{total}", file=sys.stderr, flush=True)
    return progress


def _score(argv: list[str]) -> int:
    from labs.data.detect import DataError
    from labs.data.io import read_rows
    from labs.evaluation.metrics import TASKS, score, shown
    ap = Parser(prog="python -m labs.evaluation score",
                                 description="Score predictions made anywhere: JSONL rows with 'prediction' and "
                                             "'reference' (a string or a list of accepted answers).")
    ap.add_argument("--task", required=True, choices=TASKS)
    ap.add_argument("--predictions", required=True, help="a .jsonl file")
    ap.add_argument("--labels", default="", help="classification: the label set, comma separated "
                    "(default: the references' labels)")
    a = ap.parse_args(argv)
    try:
        rows = read_rows(a.predictions)
    except DataError as e:
        print(f"error: --predictions: {e}", file=sys.stderr)
        return 2
    for i, r in enumerate(rows, 1):
        if "prediction" not in r or not any(k in r for k in ("reference", "references")):
            print(f"error: --predictions: row {i} needs 'prediction' and 'reference' (has: {', '.join(r)})",
                  file=sys.stderr)
            return 2
    preds = ["" if r["prediction"] is None else str(r["prediction"]) for r in rows]
    refs = [r.get("references", r.get("reference")) for r in rows]
    labels = [x.strip() for x in a.labels.split(",") if x.strip()] or None
    for k, v in shown(score(a.task, preds, refs, labels)).items():
        print(f"{k}={round(v, 4)}")
    print(f"n={len(rows)}")
    return 0


def _job(cfg, session) -> None:
    """The evaluation job (recipe "evaluation"): its phases into the run's status (loading the data and the
    first model, then evaluating: answers, losses, probes, counted together), metrics printed at the end."""
    from labs.evaluation.evaluate import Stopped, evaluate
    session.plan("loading model", ("evaluating", None, "items"))
    session.phase("loading model", detail="the data and the first model")

    def progress(done, total, message):  # time left: the phase's measured seconds per item x items left
        session.phase("evaluating", done, total, unit="items", detail=message, step=done, max_steps=total,
                      stage=message)
    try:
        result = evaluate(cfg, session.dir, progress, session.should_stop)
    except Stopped:
        print("stopped", flush=True)
        return None
    session.log({"final": True, "seconds": result["seconds"],
                 **{f"{m['label']}/{k}": v for m in result["models"] for k, v in m["metrics"].items()}})
    _print_metrics(result)
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["score"]:
        return _score(argv[1:])
    ap = Parser(prog="python -m labs.evaluation", description=__doc__.split("\n")[0],
                                 epilog="Also: python -m labs.evaluation score --task qa --predictions FILE.jsonl")
    ap.add_argument("--model", action="append", help="model spec (Hub id, local dir, run dir, 'default'); repeat "
                    "to compare")
    ap.add_argument("--data", default="", help="'instruct', a saved dataset or a data file (default: the run's)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--task", default="auto", choices=["auto", "classification", "qa", "generation"])
    ap.add_argument("--tasks", default="auto", help="rows whose 'task' column is listed (auto: the run's; "
                    "'' = all)")
    ap.add_argument("--max-rows", type=int, default=0)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--no-loss", action="store_true", help="skip the held-out loss and perplexity")
    ap.add_argument("--compare-base", action="store_true", help="a run given alone is compared with its base")
    ap.add_argument("--forgetting", action="store_true", help="general-text perplexity and general questions")
    ap.add_argument("--bias", action="store_true", help="the bias audit's templates and groups")
    ap.add_argument("--slice-by", default="", metavar="COLUMN", help="also score the answered rows per value (or "
                    "bin, for a numeric column) of this column of the data")
    ap.add_argument("--out", default="", help="folder for the report (default: <run-dir>/evaluation for a run)")
    ap.add_argument("--config", help="run.yaml of an evaluation job (keys: labs/evaluation/evaluate.py)")
    if any(x == "--config" or x.startswith("--config=") for x in argv):  # the job: the recipes' entry point
        from labs.evaluation.evaluate import EvalConfig
        from labs.recipe import recipe_main
        return recipe_main(EvalConfig, _job, argv, resume=False, description="The evaluation job.")
    a = ap.parse_args(argv)
    from labs.errors import LabError
    from labs.evaluation.data import run_settings
    from labs.evaluation.evaluate import EvalConfig, evaluate
    from labs.evaluation.predict import EvalError
    try:
        if not a.model:
            raise EvalError("--model: give a model spec (a Hub id, a local directory, a run directory or 'default')")
        cfg = EvalConfig(models=a.model, data=a.data, split=a.split, task=a.task, tasks=a.tasks, max_rows=a.max_rows,
                         max_new_tokens=a.max_new_tokens, batch_size=a.batch_size, loss=not a.no_loss,
                         compare_base=a.compare_base, forgetting=a.forgetting, bias=a.bias,
                         slice_by=a.slice_by)
        out = a.out or next((str(Path(m) / "evaluation") for m in reversed(a.model) if run_settings(m)), None)
        result = evaluate(cfg, out, _progress_printer())
    except LabError as e:
        print(f"error: {e.line()}", file=sys.stderr)
        return 2
    d = result["data"]
    print(f"{d['rows']} rows of {d['source']}" + (f" (tasks: {', '.join(d['tasks'])})" if d["tasks"] else "") +
          f", task {d['task']}, {result['seconds']} s" + (f"; report: {result['files']['html']}" if out else ""),
          file=sys.stderr)
    _print_metrics(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
