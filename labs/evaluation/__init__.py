"""Evaluation: held-out metrics, comparison of models and runs, error analysis, a forgetting probe and a
bias audit, with one report.

    python -m labs.evaluation --model lab_data/runs/<run-id> --compare-base --forgetting
    python -m labs.evaluation score --task qa --predictions preds.jsonl

Modules: metrics (every score, in one place: the SFT trainer's held-out metrics too), data (examples from
any dataset split), predict (model spec -> answers and losses; other recipes register their predictor),
errors (buckets, worst rows), compare (metric deltas, changed examples, runs' curves, overfitting rule),
forgetting, bias, plots, report, evaluate (one evaluation top to bottom; the job runs it), results (a run
read back: `labs.evaluation.results(run_id)` is what the Evaluation tab shows).
"""
from labs.evaluation.results import results

__all__ = ["results"]
