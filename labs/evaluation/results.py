"""What an evaluation run shows, read back from its run directory (the Evaluation tab draws exactly this).

    from labs.evaluation import results
    r = results("20260101-120000-evaluation")
    r["evaluation"]["table"], r["predictions"]["fine-tuned"][0]["bucket"]   # evaluation is None until written

The job (`python -m labs.evaluation --config <run-dir>/config.yaml`, report.write_all) writes evaluation.json
(data, models with metrics, buckets and slices, the metric table, changed examples, runs, forgetting, bias),
predictions.jsonl (one row per model and example, with the model's label under "model"), report.md and
report.html.
"""
from __future__ import annotations

from labs import runs

REPORT_FILES = ("report.html", "report.md", "evaluation.json", "predictions.jsonl")


def results(run_id: str) -> dict:
    """An evaluation run's outcome as data.

    state         queued | running | ... | finished
    evaluation    evaluation.json as written (None until the job wrote it)
    predictions   {model label: its rows of predictions.jsonl, in file order, without the "model" key}
                  ({} before evaluation.json is there)
    files         the paths of the report files present, in REPORT_FILES order (for download)

    Raises runs.RunError for a name that is no run."""
    run = runs.get(run_id)
    evaluation = run.read_json("evaluation.json")
    predictions: dict[str, list[dict]] = {}
    for r in (run.read_jsonl("predictions.jsonl") or []) if evaluation is not None else []:
        predictions.setdefault(r.pop("model", ""), []).append(r)
    return {"state": run.status().get("state"),
            "evaluation": evaluation,
            "predictions": predictions,
            "files": [str(run.dir / n) for n in REPORT_FILES if (run.dir / n).is_file()] if evaluation else []}
