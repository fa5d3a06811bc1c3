"""What a DPO / ORPO run shows, read back from its run directory (the Preference tab draws exactly this).

    from labs.preference import results
    r = results("20260101-120000-dpo")
    r["eval_metrics"]["held_out"]["after"]["reward_accuracy"]     # eval_metrics is None until the job wrote it

The job (labs/preference/recipe.py) writes metrics.jsonl (TRL's rewards/chosen, rewards/rejected,
rewards/margins, rewards/accuracies, logps/chosen, logps/rejected at every log, then one row with
final: true), and after training eval_metrics.json, odds.jsonl and before_after.jsonl (only with eval_prompts).
"""
from __future__ import annotations

from labs import runs


def results(run_id: str) -> dict:
    """A run's outcome as data; every file the job has not written yet is None.

    state          queued | running | ... | finished (runs.Run.status)
    method         dpo | orpo (from eval_metrics.json, else the run's config)
    metrics        metrics.jsonl rows: the live reward charts
    eval_metrics   eval_metrics.json: {"method", "beta", "train"/"held_out": {"pairs", "before", "after"},
                   "generations"}: reward accuracy and margin, log-odds accuracy, mean log-probs, starting
                   model (adapter off) against trained (adapter on)
    before_after   before_after.jsonl rows {prompt, before, after, before_words, after_words}
    odds           odds.jsonl rows {split, prompt, chosen, rejected, log_odds_before, log_odds_after, ...}
    train_seconds, steps   from the final metrics row (None before it)

    Raises runs.RunError for a name that is no run."""
    run = runs.get(run_id)
    rows = run.metrics()
    final = next((r for r in reversed(rows) if r.get("final")), {})
    ev = run.read_json("eval_metrics.json")
    return {"state": run.status().get("state"),
            "method": (ev or {}).get("method") or run.config.get("method"),
            "metrics": rows,
            "eval_metrics": ev,
            "before_after": run.read_jsonl("before_after.jsonl"),
            "odds": run.read_jsonl("odds.jsonl"),
            "train_seconds": final.get("train_seconds"),
            "steps": final.get("step")}
