"""labs.evaluation.results on a run directory written here as a finished evaluation job leaves it
(evaluation.json, predictions.jsonl, the reports), and the Evaluation tab's error table and downloads
read through it."""
from __future__ import annotations

import json

import gradio as gr
import pytest

from labs import runs

EVALUATION = {"data": {"rows": 3, "source": "instruct/test", "task": "generation", "tasks": []},
              "models": [{"label": "base", "spec": "tiny"}, {"label": "fine-tuned", "spec": "runs/x"}],
              "table": [{"metric": "exact_match", "base": 0.0, "fine-tuned": 0.667}], "seconds": 2.5}
PREDICTIONS = [
    {"model": "base", "input": "Say hi.", "reference": "hi", "prediction": "hello", "correct": False,
     "bucket": "wrong", "loss": 2.5},
    {"model": "fine-tuned", "input": "Say hi.", "reference": "hi", "prediction": "hi", "correct": True,
     "bucket": "correct", "loss": 0.5},
    {"model": "fine-tuned", "input": "Say a long greeting to the whole room.", "reference": "hello all",
     "prediction": "hi", "correct": False, "bucket": "too_short", "loss": 1.5},
    {"model": "base", "input": "Say a long greeting to the whole room.", "reference": "hello all",
     "prediction": "hello all", "correct": True, "bucket": "correct", "loss": 0.25}]


def evaluation_run(written: bool = True) -> runs.Run:
    run = runs.create("evaluation", {"models": ["runs/x"]}, name="evaluation")
    run.set_status(state="finished" if written else "failed")
    if written:
        (run.dir / "evaluation.json").write_text(json.dumps(EVALUATION, indent=1))
        (run.dir / "predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PREDICTIONS))
        (run.dir / "report.md").write_text("# Evaluation\n")
        (run.dir / "report.html").write_text("<h1>Evaluation</h1>")
    return run


def test_results_of_a_finished_evaluation(data_dir):
    from labs.evaluation import results
    run = evaluation_run()
    r = results(run.id)
    assert r["state"] == "finished" and r["evaluation"] == EVALUATION
    assert list(r["predictions"]) == ["base", "fine-tuned"]  # in the file's order of first appearance
    assert [p["prediction"] for p in r["predictions"]["fine-tuned"]] == ["hi", "hi"]
    assert all("model" not in p for rows in r["predictions"].values() for p in rows)
    assert r["predictions"]["base"][1] == {k: v for k, v in PREDICTIONS[3].items() if k != "model"}
    assert r["files"] == [str(run.dir / n) for n in ("report.html", "report.md", "evaluation.json",
                                                      "predictions.jsonl")]


def test_results_before_the_evaluation_is_written(data_dir):
    from labs.evaluation import results
    run = evaluation_run(written=False)
    (run.dir / "predictions.jsonl").write_text(json.dumps(PREDICTIONS[0]) + "\n")  # evaluation.json comes last
    assert results(run.id) == {"state": "failed", "evaluation": None, "predictions": {}, "files": []}
    with pytest.raises(runs.RunError, match="no run"):
        results("nope")


def test_the_tab_reads_errors_and_downloads_through_labs(data_dir):
    from components import evaluation_tab
    run = evaluation_run()
    table, count = evaluation_tab.errors(run.id, "fine-tuned", "incorrect", "", "", 0, None)
    assert count == "1 rows" and table.to_dict("records") == [
        {"category": None, "input": "Say a long greeting to the whole room.", "reference": "hello all",
         "prediction": "hi", "bucket": "too_short", "loss": 1.5}]
    table, count = evaluation_tab.errors(run.id, "base", "worst", "", "", 0, None)
    assert table["loss"].tolist() == [2.5, 0.25]
    assert [f.rsplit("/", 1)[-1] for f in evaluation_tab.export(run.id)] == [
        "report.html", "report.md", "evaluation.json", "predictions.jsonl"]
    with pytest.raises(gr.Error, match="Pick a finished evaluation run"):
        evaluation_tab.export(evaluation_run(written=False).id)
    assert evaluation_tab.load_result("nope") == (None, {})
