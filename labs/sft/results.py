"""What an SFT run shows, read back from its run directory (the SFT trainer tab draws exactly this).

    from labs.sft import results
    r = results("20260101-120000-sft")
    r["held_out"]      # [{"metric": "exact_match", "base": 0.0, "fine_tuned": 0.8}, ...] ([] until evaluated)

The job (labs/sft/recipe.py) writes metrics.jsonl (loss, learning rate, grad norm, tokens/s; eval rows with
eval_generations; one final row), record.json (with the truncation report), and after training
eval_metrics.json (the held-out metrics, "base/<metric>" for the base model) and eval_predictions.jsonl.
"""
from __future__ import annotations

from labs import runs

SHOWN_EVALUATIONS = 3    # the generation table shows the answers of the last 3 evaluations
SHOWN_PREDICTIONS = 200  # held-out predictions sent to the page (the file keeps them all)


def results(run_id: str, predictions: int = SHOWN_PREDICTIONS) -> dict:
    """A run's outcome as data; every file the job has not written yet is None (held_out: []).

    state              queued | running | ... | finished
    metrics            metrics.jsonl rows: the loss, learning rate, grad norm and tokens/s charts
    generations        [{step, prompt, answer, reference}] of the last SHOWN_EVALUATIONS evaluations
    eval_metrics       eval_metrics.json as written
    held_out           [{metric, base, fine_tuned}] in the file's order (base None when not measured)
    n                  rows the held-out metrics were measured on
    predictions        the first `predictions` rows of eval_predictions.jsonl
    train_seconds, steps   from the final metrics row (None before it)
    truncation_warning     record.json's warning when training rows were cut at max_length, else None

    Raises runs.RunError for a name that is no run."""
    run = runs.get(run_id)
    rows = run.metrics()
    final = next((r for r in reversed(rows) if r.get("final")), {})
    evals = [r for r in rows if "eval_generations" in r][-SHOWN_EVALUATIONS:]
    ev = run.read_json("eval_metrics.json")
    held_out = [{"metric": k, "base": ev.get(f"base/{k}"), "fine_tuned": v}
                for k, v in (ev or {}).items() if not k.startswith("base/") and k != "n"]
    preds = run.read_jsonl("eval_predictions.jsonl") if ev is not None else None
    return {"state": run.status().get("state"),
            "metrics": rows,
            "generations": [{"step": r["step"], "prompt": g["prompt"], "answer": g["answer"],
                             "reference": g["reference"]} for r in evals for g in r["eval_generations"]],
            "eval_metrics": ev,
            "held_out": held_out,
            "n": (ev or {}).get("n"),
            "predictions": None if preds is None else preds[:predictions],
            "train_seconds": final.get("train_seconds"),
            "steps": final.get("step"),
            "truncation_warning": (run.record().get("truncation") or {}).get("warning")}
