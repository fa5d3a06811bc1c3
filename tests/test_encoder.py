"""The course's encoder way: varied QA data, classification and extractive QA on a tiny BERT built in-process."""
from __future__ import annotations

import importlib.util
import json
import re

import pytest

from tests.helpers import REVIEW_ROWS, ROOT, make_tiny_bert, write_splits
QA = ROOT / "assets" / "qa_varied"


def _load_make_qa():
    spec = importlib.util.spec_from_file_location("make_qa", ROOT / "assets" / "make_qa.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rows(split):
    return [json.loads(line) for line in (QA / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]


# --------------------------------------------------------------------------- the varied QA set
def test_qa_varied_spans_point_at_their_answers_and_held_out_is_disjoint():
    make_qa = _load_make_qa()
    built = make_qa.build()
    splits = {s: _rows(s) for s in ("train", "validation", "test")}
    assert splits == built  # the committed files are what the seeded generator writes
    for rows in splits.values():
        for r in rows:
            (text,), (start,) = r["answers"]["text"], r["answers"]["answer_start"]
            assert r["context"][start:start + len(text)] == text and r["context"].count(text) == 1
    train = splits["train"]
    train_contexts = {r["context"] for r in train}
    train_questions = {r["question"] for r in train}
    train_forms = {r["question_form"] for r in train}
    held_templates = {t["id"] for t in make_qa.TEMPLATES if t["held"]}
    names = re.compile("|".join(rf"\b{n}\b" for n in
                                make_qa._half(make_qa.FIRST, True) + make_qa._half(make_qa.LAST, True)
                                + make_qa._half(make_qa.CITIES, True) + make_qa._half(make_qa.ORGS, True)))
    for split in ("validation", "test"):
        rows = splits[split]
        assert not {r["context"] for r in rows} & train_contexts
        assert not {r["question"] for r in rows} & train_questions
        assert not {r["question_form"] for r in rows} & train_forms
        assert sum(r["template"] in held_templates for r in rows) >= len(rows) // 4  # unseen paragraph shapes
    assert not any(names.search(r["context"]) for r in train)  # held-out names, cities, organisations
    assert not {r["template"] for r in train} & held_templates
    for key, want in (("style", {"news", "encyclopedia", "instructions", "dialogue"}),
                      ("answer_type", {"number", "name", "place", "date", "phrase"})):
        assert {r[key] for r in splits["test"]} == want and {r[key] for r in train} == want


# --------------------------------------------------------------------------- a tiny BERT, built in-process
CLASS_ROWS = REVIEW_ROWS


def _qa_rows(n=16):
    return [r for r in _rows("train")[:n]]


def _vocab(texts):
    words = sorted({w for t in texts for w in re.findall(r"[a-z]+|\d", t.lower())})
    chars = "abcdefghijklmnopqrstuvwxyz0123456789"
    return (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words + list(".,?!:;'-$\"") +
            [c for c in chars if c not in words] + ["##" + c for c in chars])


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A 2-layer BERT (hidden 32) with random weights and a word-level vocabulary of the test rows."""
    texts = [r["text"] for r in CLASS_ROWS] + [r["context"] + " " + r["question"] for r in _rows("train")[:40]]
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), _vocab(texts), max_positions=160)


def _session(tmp_path):
    from labs.sft.recipe import NullSession
    return NullSession(tmp_path)


def _cfg(tiny_bert, **kw):
    from labs.encoder.config import EncoderRunConfig
    base = dict(encoder=str(tiny_bert), dataset="unused", max_steps=3, batch_size=4, logging_steps=1, device="cpu",
                max_length=48, learning_rate=1e-3, precision="fp32", warmup=0)
    return EncoderRunConfig(**{**base, **kw})


def _snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.slow  # trains 3 steps (trainer.train)
def test_classifier_trains_and_class_weights_enter_the_loss(tiny_bert, tmp_path):
    import torch
    from labs.encoder.recipe import build_trainer
    labels = ["negative", "neutral", "positive"]
    splits = {"train": CLASS_ROWS, "validation": CLASS_ROWS[:6]}
    trainer, tok, _, _ = build_trainer(_cfg(tiny_bert, class_weights="balanced"), _session(tmp_path), splits, labels)
    # balanced: n / (k * n_c) over 24 rows = 12 positive, 8 negative, 4 neutral
    assert trainer.class_weights == pytest.approx([24 / (3 * 8), 24 / (3 * 4), 24 / (3 * 12)])
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(6)])
    model = trainer.model.eval()
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        got = trainer.compute_loss(model, dict(batch))
    logp = torch.log_softmax(logits, -1)[torch.arange(6), batch["labels"]]
    w = torch.tensor(trainer.class_weights)[batch["labels"]]
    assert float(got) == pytest.approx(float(-(w * logp).sum() / w.sum()), rel=1e-5)  # by hand
    assert float(got) != pytest.approx(float(-logp.mean()), rel=1e-3)  # and not the plain mean
    before = _snapshot(trainer.model)
    trainer.model.train()
    trainer.train()
    after = dict(trainer.model.named_parameters())
    changed = {n for n, p in before.items() if not torch.equal(p, after[n])}
    assert "classifier.weight" in changed and any(n.startswith("bert.encoder") for n in changed)
    assert trainer.state.global_step == 3


@pytest.mark.slow  # trains 3 steps (trainer.train)
def test_lora_on_bert_trains_adapters_and_the_new_head_only(tiny_bert, tmp_path):
    import torch
    from labs.encoder.recipe import build_trainer
    splits = {"train": CLASS_ROWS, "validation": CLASS_ROWS[:6]}
    trainer, *_ = build_trainer(_cfg(tiny_bert, method="lora", lora_r=4, lora_alpha=8, class_weights="none"),
                                _session(tmp_path), splits, ["negative", "neutral", "positive"])
    trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "classifier" in n for n in trainable)
    # rank 4 on query and value of 2 layers (32 -> 32): 2 * 2 * 4 * (32 + 32) adapter weights, plus the head 32 * 3 + 3
    assert sum(p.numel() for n, p in trainer.model.named_parameters() if "lora_" in n) == 2 * 2 * 4 * 64
    frozen = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "query.base_layer.weight" in n}
    before = _snapshot(trainer.model)
    trainer.train()
    after = dict(trainer.model.named_parameters())
    assert any(not torch.equal(p, after[n]) for n, p in before.items() if "lora_B" in n)
    assert all(torch.equal(p, after[n]) for n, p in frozen.items())


@pytest.mark.slow  # trains 3 steps (trainer.train)
def test_qa_windows_point_at_the_answer_and_the_qa_head_trains(tiny_bert, tmp_path):
    import torch
    from transformers import AutoTokenizer
    from labs.encoder.data import qa_eval_features, qa_train_features
    from labs.encoder.recipe import build_trainer
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    rows = _qa_rows(16)
    feats = qa_train_features(tok, rows, 40, 12)  # short windows: most contexts need several
    assert len(feats) > len(rows)
    evals = qa_eval_features(tok, rows, 40, 12)
    found = 0
    for f, e in zip(feats, evals):
        r = rows[e["example"]]
        if f["start_positions"]:
            s, t = e["offsets"][f["start_positions"]], e["offsets"][f["end_positions"]]
            assert r["context"][s[0]:t[1]] == r["answers"]["text"][0]  # the labelled tokens cover the answer exactly
            found += 1
        else:
            assert f["end_positions"] == 0  # a window without the whole answer points at [CLS]
    assert found >= len(rows)  # every answer lies whole in at least one window
    trainer, *_ = build_trainer(_cfg(tiny_bert, task="qa", max_length=40, doc_stride=12), _session(tmp_path),
                                {"train": rows, "validation": rows[:4]}, [])
    before = _snapshot(trainer.model)
    trainer.train()
    after = dict(trainer.model.named_parameters())
    assert not torch.equal(before["qa_outputs.weight"], after["qa_outputs.weight"])
    assert trainer.state.global_step == 3 and trainer.state.log_history[0]["loss"] > 0


def test_best_span_on_hand_made_logits():
    from labs.encoder.qa import best_answers, best_span, class_weights
    context = "Ana mapped the river in 1850."
    # tokens: [CLS] who ? [SEP] Ana mapped the river in 1850 . [SEP]
    offsets = [None, None, None, None, (0, 3), (4, 10), (11, 14), (15, 20), (21, 23), (24, 28), (28, 29), None]
    start = [9, 8, 0, 0, 5, 0, 0, 0, 0, 2, 0, 0]   # the best start is in the question: not allowed
    end = [0, 0, 0, 0, 4, 0, 0, 0, 0, 1, 0, 9]     # the best end is [SEP]: not allowed
    assert best_span(start, end, offsets, context) == ("Ana", 9.0)
    assert best_span(start, end, offsets, context, n_best=1) == ("", float("-inf"))  # only invalid tops
    end2 = [0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0]  # Ana ... 1850 (6 tokens) beats 1850 alone only when allowed
    assert best_span(start, end2, offsets, context)[0] == "Ana mapped the river in 1850"
    assert best_span(start, end2, offsets, context, max_answer_length=5)[0] == "1850"
    # an end before its start is never taken: (1850, Ana) would score 10
    assert best_span([0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0], [0, 0, 0, 0, 5, 0, 0, 0, 0, 1, 0, 0], offsets,
                     context)[0] == "1850"
    # over windows: the best-scoring window of each example wins
    feats = [{"example": 0, "offsets": offsets}, {"example": 0, "offsets": offsets}]
    assert best_answers(feats, [start, [0] * 9 + [20, 0, 0]], [end, [0] * 9 + [20, 0, 0]], [context]) == ["1850"]
    assert class_weights([0, 0, 0, 1], 3) == [4 / 9, 4 / 3, 1.0]  # n / (k * n_c); absent class: 1


def test_config_refuses_bad_values_in_user_terms(tmp_path):
    import subprocess
    import sys
    from labs.encoder.config import ConfigError, EncoderRunConfig, preset
    for kw, msg in [({"task": "ner"}, "task: one of classification, qa"),
                    ({"class_weights": "auto"}, "class_weights: one of none, balanced"),
                    ({"task": "qa", "max_length": 64, "doc_stride": 40}, "doc_stride: below max_length / 2"),
                    ({"learning_rate": 1}, "learning_rate: above 0 and at most 0.01")]:
        with pytest.raises(ConfigError, match=msg):
            EncoderRunConfig(**kw)
    assert preset("qa").task == "qa" and preset("sentiment").class_weights == "balanced"
    bad = tmp_path / "run.yaml"
    bad.write_text("task: classification\nbatch_sz: 4\n")
    r = subprocess.run([sys.executable, "-m", "labs.encoder", "--config", str(bad)], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: batch_sz: unknown setting") and "Traceback" not in r.stderr


@pytest.mark.slow
def test_evaluation_cli_scores_a_tiny_encoder_run(tiny_bert, tmp_path, capsys):
    """A run made by the CLI job (run engine, metrics.jsonl, model/) answers `python -m labs.evaluation`."""
    import os
    import subprocess
    import sys
    import yaml
    data = write_splits(tmp_path / "reviews", {"train": CLASS_ROWS, "validation": CLASS_ROWS[:6],
                                               "test": CLASS_ROWS[6:18]})
    cfg = _cfg(tiny_bert, dataset=str(data), max_steps=4).to_dict()
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "LAB_DATA_DIR": str(tmp_path / "lab_data"), "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-m", "labs.encoder", "--config", str(tmp_path / "run.yaml")], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    run = next((tmp_path / "lab_data" / "runs").glob("*-run-*"))
    status = json.loads((run / "status.json").read_text())
    assert status["recipe"] == "encoder" and status["state"] == "finished"
    steps = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("loss" in x for x in steps) and steps[-1]["final"] and (run / "model" / "config.json").is_file()
    own = json.loads((run / "eval_metrics.json").read_text())
    r = subprocess.run([sys.executable, "-m", "labs.evaluation", "--model", str(run), "--data",
                        str(data / "test.jsonl"), "--task", "classification", "--out", str(tmp_path / "report")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    printed = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    assert float(printed["accuracy"]) == pytest.approx(own["accuracy"], abs=1e-4)  # same rows, same answers
    assert float(printed["f1_macro"]) == pytest.approx(own["f1_macro"], abs=1e-4) and printed["n"] == "12"

    # QA: a run trained in-process, scored through the same CLI entry point
    from labs.encoder.recipe import train
    from labs.evaluation.__main__ import main as evaluation_main
    qa_dir = tmp_path / "qa-run"
    qa_cfg = _cfg(tiny_bert, task="qa", max_length=64, doc_stride=16, max_steps=3)
    rows = _qa_rows(12)
    train(qa_cfg, _session(qa_dir), {"train": rows, "validation": rows[:3], "test": rows[:6]}, [])
    (qa_dir / "config.yaml").write_text(yaml.safe_dump(qa_cfg.to_dict()))
    (qa_dir / "status.json").write_text(json.dumps({"recipe": "encoder", "state": "finished"}))
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:6]))
    capsys.readouterr()
    assert evaluation_main(["--model", str(qa_dir), "--data", str(tmp_path / "qa.jsonl"), "--task", "qa",
                            "--out", str(tmp_path / "qa-report")]) == 0
    printed = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines() if "=" in line)
    own = json.loads((qa_dir / "eval_metrics.json").read_text())
    assert float(printed["exact_match"]) == pytest.approx(own["exact_match"], abs=1e-4)
    assert float(printed["f1"]) == pytest.approx(own["f1"], abs=1e-4)


# --------------------------------------------------------------------------- hyperparameter search (slide 13)
def test_search_grid_is_checked_before_anything_is_queued():
    from labs.encoder.search import SearchError, parse_grid, trials_of
    assert parse_grid("learning_rate=2e-5,1e-4; num_epochs=2,4") == {"learning_rate": [2e-5, 1e-4],
                                                                     "num_epochs": [2, 4]}
    for text, msg in (("", "at least one setting"), ("learning_rate", "should be name=value"),
                      ("seed=1,2", "'seed' cannot be searched")):
        with pytest.raises(SearchError, match=msg):
            parse_grid(text)
    trials = trials_of("sentiment", {"learning_rate": [5e-5, 1e-4], "num_epochs": [2, 6]})
    # the preset's own settings first and once (1e-4 with 6 epochs is the preset: not repeated)
    assert trials[0] == {"trial": "default", "settings": {"learning_rate": 1e-4, "num_epochs": 6.0}}
    assert len(trials) == 4 and {"learning_rate": 1e-4, "num_epochs": 6} not in [t["settings"] for t in trials[1:]]
    assert len(trials_of("sentiment", {"learning_rate": [1e-5, 2e-5, 1e-4], "num_epochs": [1, 2]}, 3, 0)) == 4
    with pytest.raises(SearchError, match="learning_rate: above 0 and at most 0.01"):
        trials_of("sentiment", {"learning_rate": [0.5]})


def test_a_search_with_an_interrupted_trial_ends_and_scores_the_best_of_the_others(monkeypatch, data_dir, capsys):
    """A trial whose process died (state interrupted) does not keep the search waiting for ever."""
    from labs.encoder import search
    rec = {"id": "s1", "preset": "sentiment", "score": "f1_macro", "trials": [{"trial": "default"}, {"trial": "1"},
                                                                             {"trial": "2"}]}
    states = {"default": ("finished", 0.5), "1": ("interrupted", None), "2": ("finished", 0.7)}
    monkeypatch.setattr(search, "load", lambda i: rec)
    monkeypatch.setattr(search, "_save", lambda r: None)
    monkeypatch.setattr(search, "_trial_state", lambda t, score: {
        "trial": t["trial"], "run": f"run-{t['trial']}", "state": states[t["trial"]][0], score: states[t["trial"]][1],
        "train_seconds": 1.0})
    monkeypatch.setattr(search, "_test_scores", lambda run, r: {"f1_macro": {"run-2": 0.66, "run-default": 0.4}[run]})
    res = search.results("s1")
    assert res["ended"] and res["best"]["trial"] == "2"
    assert res["test"] == {"best_trial": "2", "best": {"f1_macro": 0.66}, "default": {"f1_macro": 0.4}}
    # the CLI shows a search that was started elsewhere (the panel, an earlier command)
    search._dir("s1").mkdir(parents=True)
    monkeypatch.setattr(search, "figure", lambda r: type("F", (), {"savefig": lambda *a, **k: None})())
    assert search.main(["--show", "s1", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "best_trial=2" in out and "test/best/f1_macro=0.66" in out and "test/default/f1_macro=0.4" in out
    assert search.main(["--grid", "learning_rate=1e-4"]) == 2
    assert "--preset and --grid start a search" in capsys.readouterr().err


@pytest.mark.slow  # three training jobs through the run engine
def test_search_queues_trials_chooses_on_validation_and_scores_test_once(tiny_bert, tmp_path, data_dir,
                                                                         monkeypatch):
    from labs import runs
    from labs.encoder import search
    data = write_splits(tmp_path / "reviews", {"train": CLASS_ROWS, "validation": CLASS_ROWS[:6],
                                               "test": CLASS_ROWS[6:18]})
    fixed = dict(encoder=str(tiny_bert), dataset=str(data), max_steps=2, batch_size=4, logging_steps=1,
                 device="cpu", max_length=48, precision="fp32", warmup=0)
    rec = search.start("sentiment", {"learning_rate": [1e-3, 5e-3]}, overrides=fixed)
    assert [t["trial"] for t in rec["trials"]] == ["default", "1", "2"]
    partial = search.results(rec["id"])
    assert partial["test"] is None and len(partial["trials"]) == 3
    for t in rec["trials"]:
        assert runs.wait(t["run_id"], timeout_s=300)["state"] == "finished", runs.get(t["run_id"]).log_tail(20)
        run = runs.get(t["run_id"])
        assert json.loads((run.dir / "eval_metrics.json").read_text())["split"] == "validation"
        assert json.loads((run.dir / "eval_metrics.json").read_text())["n"] == 6
    res = search.results(rec["id"])
    scores = [t["f1_macro"] for t in res["trials"]]
    assert res["ended"] and res["best"]["f1_macro"] == max(scores)
    assert res["test"]["best_trial"] == res["best"]["trial"] and res["test"]["best"]["n"] == 12
    assert "default" in res["test"] and "Test split, scored once" in search.describe(res)
    # scored once: asking again reads the record, it never scores the test split a second time
    monkeypatch.setattr(search, "_test_scores", lambda *a: pytest.fail("test split scored twice"))
    assert search.results(rec["id"])["test"] == res["test"]
    assert search.figure(res).axes[0].patches.__len__() == 3
    with pytest.raises(search.SearchError, match="no search 'nope'"):
        search.load("nope")
    with pytest.raises(search.SearchError, match="search id"):
        search.load("../x")
