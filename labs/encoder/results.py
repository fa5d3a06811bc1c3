"""What an encoder run shows, read back from its run directory (the encoder panel draws exactly this).

    from labs.encoder import results
    r = results("20260101-120000-sentiment-full")
    r["eval_metrics"]["f1_macro"], r["eval_metrics"]["confusion"]    # eval_metrics is None until written

The job (labs/encoder/recipe.py) writes metrics.jsonl (one final row with train_seconds), record.json
(trainable and total parameters, device, precision) and, after training, eval_metrics.json (accuracy,
precision/recall/F1 macro and weighted and the confusion matrix; or exact_match and f1 for QA; with the
split, n and seconds) and eval_predictions.jsonl (one row per held-out example).
"""
from __future__ import annotations

from labs import runs

SHOWN_PREDICTIONS = 300  # held-out predictions sent to the page, wrong ones first (the file keeps them all)


def results(run_id: str, predictions: int = SHOWN_PREDICTIONS) -> dict:
    """A run's outcome as data; every file the job has not written yet is None.

    state              queued | running | ... | finished
    eval_metrics       eval_metrics.json as written
    predictions        eval_predictions.jsonl rows {input, reference, prediction, correct[, f1]}: the wrong
                       ones first, each group in file order, the first `predictions` of them
    trainable_params, total_params, device, precision   from record.json
    train_seconds, steps   from the final metrics row

    Raises runs.RunError for a name that is no run."""
    run = runs.get(run_id)
    final = next((r for r in reversed(run.metrics()) if r.get("final")), {})
    rec = run.record()
    preds = run.read_jsonl("eval_predictions.jsonl")
    if preds is not None:
        preds = sorted(preds, key=lambda r: bool(r.get("correct")))[:predictions]  # stable: file order kept
    return {"state": run.status().get("state"),
            "eval_metrics": run.read_json("eval_metrics.json"),
            "predictions": preds,
            "trainable_params": rec.get("trainable_params"),
            "total_params": rec.get("total_params"),
            "device": rec.get("device"),
            "precision": rec.get("precision"),
            "train_seconds": final.get("train_seconds"),
            "steps": final.get("step")}
