"""The encoder way's panel (inside the SFT tab): the form covers the config, refusals name the field, and (slow,
through gradio_client) a tiny BERT run is started, scored and shown, then a two-trial hyperparameter search
chooses on validation and scores the test split once."""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import yaml

from labs.encoder.config import EncoderRunConfig
from tests.helpers import REVIEW_ROWS, make_tiny_bert, write_splits

ROWS = REVIEW_ROWS


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A 2-layer BERT (hidden 32) with random weights and a word-level vocabulary of ROWS."""
    words = sorted({w for r in ROWS for w in re.findall(r"[a-z]+", r["text"])})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *".,?!'-"]
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), vocab, max_positions=64)


@pytest.fixture
def reviews(tmp_path):
    """A folder dataset: train / validation / test .jsonl with text and label."""
    return write_splits(tmp_path / "reviews", {"train": ROWS, "validation": ROWS[:6], "test": ROWS[6:18]})


def test_form_covers_the_config_and_refuses_in_the_fields_terms(monkeypatch):
    from components import sft_encoder_panel as ui
    assert ui.FIELDS == [s.name for s in EncoderRunConfig.specs()]  # the generated form covers the config
    values = ui.apply_preset("qa")
    form = dict(zip(ui.FIELDS, values))
    assert form["task"] == "qa" and form["dataset"] == "assets/qa_varied" and "exact match" in values[-1]
    yaml_text, cmd = ui.config_yaml(*values[:-1])
    assert EncoderRunConfig.from_dict(yaml.safe_load(yaml_text)) == EncoderRunConfig(**form)
    assert cmd.startswith("python -m labs.encoder --config run.yaml")
    warned = []
    monkeypatch.setattr(ui.gr, "Warning", warned.append)
    bad = dict(form, doc_stride=100)
    assert ui.config_yaml(*bad.values())[0].startswith("# invalid: doc_stride: below max_length / 2 (96)")
    _, msg = ui.start(*bad.values())
    assert "doc_stride: below max_length / 2" in msg and len(warned) == 2 and "Traceback" not in msg
    # the predictions table puts the wrong answers first; the confusion table reads reference x predicted
    conf = ui.confusion_table({"confusion": {"labels": ["neg", "pos"], "matrix": [[3, 1], [0, 4]], "other": [0, 1]}})
    assert list(conf.columns) == ["reference", "predicted neg", "predicted pos", "predicted something else"]
    assert conf.values.tolist() == [["neg", 3, 1, 0], ["pos", 0, 4, 1]]


@pytest.mark.slow
def test_panel_trains_a_tiny_bert_shows_its_scores_and_searches(data_dir, tiny_bert, reviews, serve_tab):
    from components import sft_encoder_panel as ui
    from labs import runs
    tab = SimpleNamespace(__name__="sft_encoder_panel", build=ui.build_encoder)
    with serve_tab(tab, data_dir, "tiny") as client:
        values = client.predict("sentiment", api_name="/encoder_preset")
        assert "drugs-real" in values[-1]
        form = dict(zip(ui.FIELDS, values[:-1]))
        form.update(encoder=str(tiny_bert), dataset=str(reviews), max_steps=2, batch_size=4, logging_steps=1,
                    device="cpu", precision="fp32", max_length=32, warmup=0, learning_rate=1e-3)
        yaml_text, cmd = client.predict(*form.values(), api_name="/encoder_config_yaml")
        assert EncoderRunConfig.from_dict(yaml.safe_load(yaml_text)) == EncoderRunConfig(**form)
        assert cmd.startswith("python -m labs.encoder --config run.yaml")

        # refusals name the field and make no run
        _, msg = client.predict(*dict(form, learning_rate=0.5).values(), api_name="/encoder_start")
        assert "learning_rate: above 0 and at most 0.01, got 0.5" in msg
        _, msg = client.predict(*dict(form, dataset=str(reviews / "nothing")).values(), api_name="/encoder_start")
        assert "dataset:" in msg and "neither a saved dataset" in msg
        msg, *_ = client.predict("sentiment", "seed=1,2", 0, "sentiment", *form.values(),
                                 api_name="/encoder_search_start")
        assert "'seed' cannot be searched" in msg and not runs.list_runs()

        run_id, msg = client.predict(*form.values(), api_name="/encoder_start")
        assert run_id in msg and "labels: negative, neutral, positive" in msg
        # the search queues behind the run: the preset with the form's changes, default + one grid value
        msg, search_id, md, _ = client.predict("sentiment", "learning_rate=5e-3", 0, "sentiment", *form.values(),
                                               api_name="/encoder_search_start")
        assert "**2 trials**" in msg and search_id and "| default |" in md
        assert runs.wait(run_id, timeout_s=300)["state"] == "finished", runs.get(run_id).log_tail(30)
        res = client.predict(run_id, api_name="/encoder_results")
        trials = client.predict(search_id, api_name="/encoder_search_results")["trials"]
        for t in trials:
            assert runs.wait(t["run"], timeout_s=300)["state"] == "finished", runs.get(t["run"]).log_tail(30)
        searched = client.predict(search_id, api_name="/encoder_search_results")
        shown, _ = client.predict(search_id, api_name="/encoder_search_show")

    m = res["eval_metrics"]
    assert res["state"] == "finished" and m["split"] == "test" and m["n"] == 12
    assert m["confusion"]["labels"] == ["negative", "neutral", "positive"]
    assert sum(map(sum, m["confusion"]["matrix"])) + sum(m["confusion"]["other"]) == 12
    right = sum(m["confusion"]["matrix"][i][i] for i in range(3))  # the confusion matrix's diagonal
    assert m["accuracy"] == pytest.approx(right / 12, abs=1e-4)
    # a full fine-tune trains every weight: the tiny BERT's plus the new 32 -> 3 classification head
    from transformers import AutoModel
    bert = sum(p.numel() for p in AutoModel.from_pretrained(tiny_bert).parameters())
    assert res["trainable_params"] == res["total_params"] == bert + 32 * 3 + 3 and res["train_seconds"] is not None
    md, conf, preds = ui.details(run_id)
    assert "F1 (macro)" in md and "trainable parameters" in md and conf.shape == (3, 4) and len(preds) == 12
    wrong = list(preds["correct"] == "✗")
    assert wrong == sorted(wrong, reverse=True) and sum(wrong) == 12 - right  # wrong ones first, as many as scored

    assert [t["trial"] for t in searched["trials"]] == ["default", "1"]
    assert [t["learning_rate"] for t in searched["trials"]] == [1e-3, 5e-3]  # the form's value is the default
    assert searched["ended"] and searched["test"]["best_trial"] == searched["best"]["trial"]
    assert searched["test"]["best"]["n"] == 12 and "accuracy" in searched["test"]["default"]
    for t in searched["trials"]:
        cfg = runs.get(t["run"]).config
        assert cfg["encoder"] == str(tiny_bert) and cfg["max_steps"] == 2 and cfg["eval_split"] == "validation"
    assert "Test split, scored once" in shown
