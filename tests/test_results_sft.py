"""labs.sft.results on a run directory written here as a finished SFT job leaves it, and the SFT trainer tab's
details drawn from it: the held-out metrics table (base vs fine-tuned), the answers at the last evaluations,
the held-out predictions and the truncation warning."""
from __future__ import annotations

import json

import pytest

from labs import runs
from labs.runs.directory import write_json

TRAIN = [{"step": s, "epoch": s / 10, "loss": 2.0 - 0.1 * s, "learning_rate": 1e-4, "grad_norm": 1.5,
          "tokens_per_s": 180.0} for s in (1, 2, 3, 4)]
EVALS = [{"step": s, "eval_generations": [
    {"prompt": f"Q{s}: " + "x" * 130, "reference": "name: Ana", "answer": f"answer at step {s}"},
    {"prompt": f"Q{s}b", "reference": "name: Bo", "answer": "name: Bo"}]} for s in (1, 2, 3, 4)]
FINAL = {"step": 4, "train_seconds": 31.4, "train_loss_final": 1.7, "final": True, "test/exact_match": 0.8}
# eval_metrics.json as labs.sft.recipe.train writes it: the fine-tuned metrics, n, then base/<metric> (LoRA)
EVAL = {"exact_match": 0.8, "token_f1": 0.9, "n": 5, "base/exact_match": 0.2}
PREDS = [{"input": f"row {i}", "reference": "name: Ana", "prediction": "name: Ana" if i % 2 else "Ana",
          "correct": bool(i % 2)} for i in range(5)]
WARNING = "2 of 40 training rows are longer than max_length 64: their ends are cut"


def sft_run(finished: bool = True) -> runs.Run:
    run = runs.create("sft", {"model": "tiny", "method": "lora", "max_steps": 4}, name="sft")
    run.set_status(state="finished" if finished else "stopped")
    rows = [r for pair in zip(TRAIN, EVALS) for r in pair] + ([FINAL] if finished else [])
    (run.dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_json(run.dir / "record.json", {"truncation": {"rows": 40, "truncated": 2, "warning": WARNING}})
    if finished:
        (run.dir / "eval_metrics.json").write_text(json.dumps(EVAL, indent=1))
        (run.dir / "eval_predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PREDS))
    return run


def test_results_of_a_finished_sft_run(data_dir):
    from labs.sft import results
    run = sft_run()
    r = results(run.id)
    assert r["state"] == "finished" and r["eval_metrics"] == EVAL and r["n"] == 5
    assert r["held_out"] == [{"metric": "exact_match", "base": 0.2, "fine_tuned": 0.8},
                             {"metric": "token_f1", "base": None, "fine_tuned": 0.9}]
    assert [g["step"] for g in r["generations"]] == [2, 2, 3, 3, 4, 4]  # the last 3 evaluations
    assert r["generations"][-2] == {"step": 4, "prompt": "Q4: " + "x" * 130, "reference": "name: Ana",
                                    "answer": "answer at step 4"}
    assert r["predictions"] == PREDS and results(run.id, predictions=2)["predictions"] == PREDS[:2]
    assert (r["train_seconds"], r["steps"]) == (31.4, 4) and r["truncation_warning"] == WARNING
    assert len(r["metrics"]) == 9 and r["metrics"][-1] == FINAL


def test_results_of_a_run_stopped_before_its_evaluation(data_dir):
    from labs.sft import results
    r = results(sft_run(finished=False).id)
    assert r["state"] == "stopped" and r["eval_metrics"] is None and r["held_out"] == [] and r["n"] is None
    assert r["predictions"] is None and (r["train_seconds"], r["steps"]) == (None, None)
    assert len(r["generations"]) == 6  # what the job logged before it stopped is still shown
    with pytest.raises(runs.RunError, match="no run"):
        results("nope")


def test_the_tab_shows_the_finished_sft_run(data_dir):
    from components import sft_tab
    run = sft_run()
    overlay, extra, table, md, preds = sft_tab.details(run.id, [])
    assert overlay is None  # no earlier run picked
    assert [ax.get_title() for ax in extra.axes] == ["learning_rate", "grad_norm", "tokens_per_s"]
    assert extra.axes[0].lines[0].get_xdata().tolist() == [1, 2, 3, 4]
    assert list(table.columns) == ["step", "prompt", "answer", "reference"] and len(table) == 6
    assert table.iloc[4]["prompt"] == "Q4: " + "x" * 116  # prompts cut at 120 characters
    assert md.splitlines() == [
        f"⚠️ {WARNING}", "",
        "**Held-out metrics** (5 rows, answers by generation):", "",
        "| metric | base | fine-tuned |", "|---|---|---|",
        "| exact_match | 0.2 | 0.8 |",
        "| token_f1 | – | 0.9 |", "",
        "Training time: 31.4 s over 4 steps."]
    assert preds.to_dict("records") == PREDS
    earlier = sft_run(finished=False)
    overlay, *_ = sft_tab.details(run.id, [earlier.id])
    assert len(overlay.axes[0].get_legend().get_texts()) == 2  # this run's and the earlier run's train loss
