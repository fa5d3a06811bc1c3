"""labs.encoder.results on run directories written here as finished encoder jobs leave them (a classifier
and an extractive-QA model), and the encoder panel drawn from them: the scores table, the run's facts, the
confusion matrix and the predictions, wrong ones first."""
from __future__ import annotations

import json

import pytest

from labs import runs
from labs.runs.directory import write_json

CLASS_EVAL = {"accuracy": 0.75, "precision_macro": 0.5, "recall_macro": 0.6, "f1_macro": 0.5454,
              "precision_weighted": 0.7, "recall_weighted": 0.75, "f1_weighted": 0.72, "n": 4,
              "confusion": {"labels": ["negative", "positive"], "matrix": [[1, 1], [0, 2]], "other": [0, 0]},
              "split": "test", "seconds": 0.4}
CLASS_PREDS = [{"input": "great", "reference": "positive", "prediction": "positive", "correct": True},
               {"input": "awful " * 60, "reference": "negative", "prediction": "positive", "correct": False},
               {"input": "fine", "reference": "positive", "prediction": "positive", "correct": True},
               {"input": "bad", "reference": "negative", "prediction": "negative", "correct": False}]
QA_EVAL = {"exact_match": 0.5, "f1": 0.625, "n": 2, "split": "validation", "seconds": 1.25}
QA_PREDS = [{"input": "Where? Porto.", "reference": ["Porto", "in Porto"], "prediction": "Porto", "correct": True,
             "f1": 1.0},
            {"input": "When? 1990.", "reference": ["1990"], "prediction": "in 1990 or", "correct": False, "f1": 0.25}]


def encoder_run(task: str, ev: dict | None, preds: list[dict] | None) -> runs.Run:
    run = runs.create("encoder", {"encoder": "minilm", "task": task, "method": "full"}, name=f"{task}-full")
    run.set_status(state="finished" if ev else "failed")
    rows = [{"step": 5, "loss": 0.6}] + ([{"step": 10, "train_seconds": 42.0, "final": True}] if ev else [])
    (run.dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_json(run.dir / "record.json", {"trainable_params": 22_713_219, "total_params": 22_713_219,
                                         "device": "cpu", "precision": "fp32"})
    if ev is not None:
        (run.dir / "eval_metrics.json").write_text(json.dumps(ev, indent=1))
    if preds is not None:
        (run.dir / "eval_predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds))
    return run


def test_results_of_a_finished_classifier(data_dir):
    from labs.encoder import results
    run = encoder_run("classification", CLASS_EVAL, CLASS_PREDS)
    r = results(run.id)
    assert r["state"] == "finished" and r["eval_metrics"] == CLASS_EVAL
    assert r["predictions"] == [CLASS_PREDS[1], CLASS_PREDS[3], CLASS_PREDS[0], CLASS_PREDS[2]]  # wrong first
    assert results(run.id, predictions=1)["predictions"] == [CLASS_PREDS[1]]
    assert (r["trainable_params"], r["total_params"]) == (22_713_219, 22_713_219)
    assert (r["device"], r["precision"], r["train_seconds"], r["steps"]) == ("cpu", "fp32", 42.0, 10)


def test_results_of_a_failed_run_and_of_no_run(data_dir):
    from labs.encoder import results
    r = results(encoder_run("classification", None, None).id)
    assert r["state"] == "failed" and r["eval_metrics"] is None and r["predictions"] is None
    assert (r["train_seconds"], r["steps"]) == (None, None)
    with pytest.raises(runs.RunError, match="no run"):
        results("nope")


def test_the_panel_shows_the_classifier(data_dir):
    from components import sft_encoder_panel as ui
    md, conf, preds = ui.details(encoder_run("classification", CLASS_EVAL, CLASS_PREDS).id)
    assert md.splitlines() == [
        "**Held-out scores** on the test split (4 rows, scored in 0.4 s):", "",
        "| metric | value |", "|---|---|",
        "| accuracy | 75.0% |", "| precision (macro) | 50.0% |", "| recall (macro) | 60.0% |",
        "| F1 (macro) | 54.5% |", "| precision (weighted) | 70.0% |", "| recall (weighted) | 75.0% |",
        "| F1 (weighted) | 72.0% |", "",
        "trainable parameters **22,713,219** of 22,713,219 (100.00%) · training **42.0 s** over 10 steps · cpu, fp32"]
    assert conf.to_dict("records") == [
        {"reference": "negative", "predicted negative": 1, "predicted positive": 1},
        {"reference": "positive", "predicted negative": 0, "predicted positive": 2}]
    assert preds["correct"].tolist() == ["✗", "✗", "✓", "✓"]
    assert preds.iloc[0]["input"] == ("awful " * 60)[:240] + "…" and preds.iloc[1]["input"] == "bad"


def test_the_panel_shows_the_qa_model(data_dir):
    from components import sft_encoder_panel as ui
    run = encoder_run("qa", QA_EVAL, QA_PREDS)
    md, conf, preds = ui.details(run.id)
    assert "| exact match | 50.0% |" in md.splitlines() and "| token F1 | 62.5% |" in md.splitlines()
    assert md.startswith("**Held-out scores** on the validation split (2 rows, scored in 1.25 s)")
    assert conf is None  # no confusion matrix for spans
    assert preds.to_dict("records")[0] == {"correct": "✗", "prediction": "in 1990 or", "reference": "1990",
                                           "input": "When? 1990.", "token F1": 0.25}
    assert preds.iloc[1]["reference"] == "Porto | in Porto"
    assert ui.results(run.id)["eval_metrics"] == QA_EVAL  # the encoder_results endpoint
