"""A real SFT job on the tiny model reports its phases into status.json in the order it runs them: loading the
data and the model, tokenizing, training step by step, saving, then the held-out evaluation with its own
count (rows x models) and a time measured once its first batch is done."""
from __future__ import annotations

import pytest

from labs import runs

pytestmark = pytest.mark.slow


def test_a_tiny_sft_run_goes_through_its_phases_in_order(data_dir, tiny_model_dir, monkeypatch):
    from labs.sft.recipe import main
    cfg = dict(model=str(tiny_model_dir), dataset="instruct", max_steps=3, batch_size=2, max_length=96,
               logging_steps=1, eval_steps=0, eval_rows=2, eval_base=True, max_train_rows=12, max_eval_rows=4,
               learning_rate=1e-3, device="cpu", precision="fp32")
    run = runs.create("sft", cfg, name="phases")
    writes: list[dict] = []
    real = runs.Run.set_status

    def recording(self, **fields):  # every status.json the job writes, as a reader would find it
        st = real(self, **fields)
        writes.append(dict(st))
        return st
    monkeypatch.setattr(runs.Run, "set_status", recording)
    assert main(["--config", str(run.dir / "config.yaml")]) == 0  # the job, in this process

    names = [w["phase"] for w in writes if w.get("phase")]
    order = [n for i, n in enumerate(names) if i == 0 or names[i - 1] != n]
    assert order == ["loading data", "loading model", "tokenizing", "training", "saving", "evaluating"]

    def counts(phase):
        return [(w["phase_done"], w["phase_total"]) for w in writes if w.get("phase") == phase]
    assert counts("tokenizing")[0] == (0, 16) and counts("tokenizing")[-1] == (16, 16)  # 12 train + 4 validation
    assert counts("training")[0] == (0, 3) and counts("training")[-1] == (3, 3)
    # 2 held-out rows, answered by the fine-tuned model and by the base: 4 answers, counted on from 0
    evals = [w for w in writes if w.get("phase") == "evaluating" and w["state"] == "running"]
    assert [(w["phase_done"], w["phase_total"], w["phase_detail"]) for w in evals][0] == (0, 4, "fine-tuned model")
    assert evals[-1]["phase_done"] == 4 and evals[-1]["phase_detail"] == "base model (adapter off)"
    assert [w["phase_done"] for w in evals] == sorted(w["phase_done"] for w in evals)
    assert evals[0]["phase_eta_s"] is None  # no answer yet: no time
    assert all(w["phase_eta_s"] is not None for w in evals if w["phase_done"])  # then measured
    # while it trained, the plan named the evaluation ahead: the job's time left was not complete
    from labs.runs import progress
    training = next(w for w in writes if w.get("phase") == "training" and w["phase_done"] == 1)
    assert progress.remaining(training, training["phase_at"])["why"] == \
        ["then evaluating 4 answers (2 held-out rows x fine-tuned and base model), timed once it starts"]

    st = run.status()
    assert st["state"] == "finished" and st["step"] == st["max_steps"] == 3
    assert [(p["name"], p["state"]) for p in st["phases"]] == [
        ("loading data", "done"), ("loading model", "done"), ("tokenizing", "done"), ("training", "done"),
        ("saving", "done"), ("evaluating", "done")]
    assert all(p["seconds"] >= 0 for p in st["phases"])
    assert st["queued_at"] <= st["started_at"] <= st["finished_at"]
