"""Evaluation: metrics held to outside references (the SQuAD v1.1 script, scikit-learn, rouge-score), error
buckets, the overfitting rule, the forgetting and bias helpers, the CLI and the job on the tiny model, the
report, a registered predictor, metrics per slice, and the tab through gradio_client.

    .venv/bin/python -m pytest -q tests/test_evaluation.py -m "not slow"     # the references, in seconds
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import string
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from labs.evaluation import compare, errors, metrics
from tests.helpers import ROOT, make_tiny_model, wait_until


# --------------------------------------------------------------------------- SQuAD v1.1, copied from the official
# evaluate-v1.1.py (normalize_answer, f1_score, exact_match_score, metric_max_over_ground_truths)
def ref_normalize_answer(s):
    def remove_articles(text):
        return re.sub(r'\b(a|an|the)\b', ' ', text)

    def white_space_fix(text):
        return ' '.join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return ''.join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def ref_f1_score(prediction, ground_truth):
    prediction_tokens = ref_normalize_answer(prediction).split()
    ground_truth_tokens = ref_normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def ref_exact_match_score(prediction, ground_truth):
    return (ref_normalize_answer(prediction) == ref_normalize_answer(ground_truth))


def ref_metric_max_over_ground_truths(metric_fn, prediction, ground_truths):
    scores_for_ground_truths = []
    for ground_truth in ground_truths:
        score = metric_fn(prediction, ground_truth)
        scores_for_ground_truths.append(score)
    return max(scores_for_ground_truths)


QA = [  # (prediction, accepted answers)
    ("The Eiffel Tower", ["Eiffel Tower", "the tower"]),
    ("in 1889.", ["1889"]),
    ("an apple a day", ["A day", "apple"]),
    ("Denver Broncos", ["Broncos", "Denver Broncos", "The Denver Broncos"]),
    ("Carolina", ["Denver Broncos"]),
    ("", ["something"]),
    ("the the the", ["the"]),
    ("Saint-Denis, France", ["Saint Denis", "SaintDenis France"]),
    ("  multiple   spaces\tand\nlines ", ["multiple spaces and lines"]),
    ("100 degrees Celsius at sea level", ["100 degrees Celsius"]),
    ("Ça va très bien", ["ça va bien"]),
    ("4 4 4 four", ["four 4"]),
]


def test_qa_metrics_equal_the_squad_v11_script():
    for pred, golds in QA:
        assert metrics.normalize_answer(pred) == ref_normalize_answer(pred)
        assert metrics.squad_exact_match(pred, golds) == float(
            ref_metric_max_over_ground_truths(ref_exact_match_score, pred, golds)), pred
        assert metrics.token_f1(pred, golds) == pytest.approx(
            ref_metric_max_over_ground_truths(ref_f1_score, pred, golds)), pred
    s = metrics.qa_scores([p for p, _ in QA], [g for _, g in QA])
    assert s["exact_match"] == pytest.approx(sum(ref_metric_max_over_ground_truths(
        ref_exact_match_score, p, g) for p, g in QA) / len(QA))
    assert s["f1"] == pytest.approx(sum(ref_metric_max_over_ground_truths(ref_f1_score, p, g) for p, g in QA) / len(QA))
    # by hand: exact on rows 1, 4, 7 ("the the the" and "the" both normalize to ""), 8 and 9 -> 5/12; F1 1 on rows
    # 1, 4, 8, 9, 2/3 on rows 2, 3, 10, 12 (half the predicted tokens, every reference token), 6/7 on row 11 (3 of 4
    # and 3 of 3), 0 elsewhere (row 7 too: no token in common) -> (4 + 4 * 2/3 + 6/7) / 12 = 79/126
    assert s["exact_match"] == pytest.approx(5 / 12) and s["f1"] == pytest.approx(79 / 126)


# --------------------------------------------------------------------------- classification vs scikit-learn
CLS = [
    (["pos", "neg", "neu", "pos", "neg", "neg", "neu", "pos"],
     ["pos", "pos", "neu", "neg", "neg", "neg", "pos", "pos"], None),
    # answers outside the label set ("Positive review", "") and a label never predicted
    (["pos", "neg", "neu", "neu", "pos", "neg", "pos"],
     ["Positive review", "neg", "", "neu", "pos", "pos", "maybe"], None),
    # a label set larger than the references (mixed has no reference)
    (["a", "b", "a", "b", "a"], ["a", "mixed", "b", "b", "a"], ["a", "b", "mixed"]),
]


@pytest.mark.parametrize("refs,preds,labels", CLS)
def test_classification_scores_equal_scikit_learn(refs, preds, labels):
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support
    s = metrics.classification_scores(preds, refs, labels)
    lab = metrics.label_set(refs, labels)
    assert s["accuracy"] == pytest.approx(accuracy_score(refs, preds))
    for avg in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(refs, preds, labels=lab, average=avg, zero_division=0)
        assert (s[f"precision_{avg}"], s[f"recall_{avg}"], s[f"f1_{avg}"]) == pytest.approx((p, r, f)), avg
    assert (s["precision"], s["recall"], s["f1"]) == (s["precision_macro"], s["recall_macro"], s["f1_macro"])
    c = metrics.confusion(preds, refs, labels)
    assert c["labels"] == lab
    assert c["matrix"] == confusion_matrix(refs, preds, labels=lab).tolist()
    outside = Counter(r for r, p in zip(refs, preds) if p not in lab)
    assert c["other"] == [outside.get(x, 0) for x in lab]
    assert sum(map(sum, c["matrix"])) + sum(c["other"]) == len(refs)


# --------------------------------------------------------------------------- ROUGE-L vs rouge-score
ROUGE = [
    ("the cat sat on the mat", "the cat was sitting on the mat"),
    ("name: Ana Ruiz\ncity: Leeds\nage: 31", "name: Ana Ruiz\ncity: Lees\nage: 31"),
    ("Hello, World!!", "hello world"),
    ("", "something here"),
    ("über café 42", "cafe 42"),
    ("a b c d e f", "f e d c b a"),
    ("police killed the gunman", "the gunman police killed"),
]


def test_rouge_l_equals_rouge_score():
    from rouge_score import rouge_scorer
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    for ref, pred in ROUGE:
        assert metrics.rouge_l(pred, ref) == pytest.approx(scorer.score(ref, pred)["rougeL"].fmeasure), (ref, pred)
    refs = [r for r, _ in ROUGE[:3]]
    assert metrics.rouge_l(ROUGE[1][1], refs) == pytest.approx(scorer.score_multi(refs, ROUGE[1][1])["rougeL"].fmeasure)


# --------------------------------------------------------------------------- structured answers, buckets
def test_structured_answers_and_error_buckets():
    ref = "name: Ana Ruiz\ncity: Leeds\nage: 31"
    assert metrics.field_accuracy("name: Ana Ruiz\ncity: Lees\nage: 31", ref) == (True, pytest.approx(2 / 3))
    assert metrics.field_accuracy("Ana Ruiz lives in Leeds", ref) == (False, 0.0)
    assert metrics.field_accuracy('```yaml\nname: ana ruiz\ncity: Leeds\nage: 31\n```', ref) == (True, 1.0)
    assert metrics.field_accuracy("Paris", "Paris") is None                      # a plain answer: no fields
    js = '{"name": "Ana", "age": 3}'
    assert metrics.field_accuracy('{"age": 3, "name": "ana"}', js) == (True, 1.0)
    assert metrics.field_accuracy("name: Ana\nage: 3", js) == (False, 0.0)      # YAML where JSON was asked
    s = metrics.generation_scores(["name: Ana Ruiz\ncity: Lees\nage: 31", "no idea", ref], [ref, ref, ref])
    assert s["exact_match"] == pytest.approx(1 / 3) and s["yaml_valid"] == pytest.approx(2 / 3)
    assert s["field_accuracy"] == pytest.approx((2 / 3 + 0 + 1) / 3)

    labels = ["negative", "neutral", "positive"]
    b = errors.bucket_of
    assert b("classification", "positive", True, ["negative"], labels) == "wrong_label"
    assert b("classification", "Positive review", True, ["negative"], labels) == "format_error"
    assert b("classification", "   ", True, ["negative"], labels) == "empty"
    assert b("generation", "name: Ana", False, [ref]) == "truncated"             # hit max_new_tokens
    assert b("generation", "name: Ana Ru", True, [ref]) == "truncated"           # a cut-short reference
    assert b("generation", "Ana Ruiz, Leeds, 31", True, [ref]) == "format_error"
    assert b("generation", "Leeds: Ana Ruiz, 31", True, [ref]) == "format_error"    # a mapping, none of the keys
    assert b("generation", "name: Bo\ncity: Leeds\nage: 31", True, [ref]) == "other"
    assert b("qa", "1931", True, ["1932"]) == "other"
    rows = errors.annotate([{"prediction": p, "finished": True, "references": [r], "correct": p == r}
                            for p, r in [("a", "a"), ("", "b"), ("x", "b")]], "qa")
    assert [r["bucket"] for r in rows] == [None, "empty", "other"]
    assert errors.bucket_counts(rows) == {"wrong_label": 0, "format_error": 0, "truncated": 0, "empty": 1, "other": 1}
    rows[0]["loss"], rows[1]["loss"], rows[2]["loss"] = 0.5, 2.0, 1.0
    for r, text in zip(rows, ["short", "a much longer input", "mid input"]):
        r["input"], r["category"] = text, "k" if r["bucket"] else "j"
    assert [r["input"] for r in errors.select(rows, "worst")] == ["a much longer input", "mid input", "short"]
    assert [r["input"] for r in errors.select(rows, "incorrect", max_chars=10)] == ["mid input"]
    assert errors.select(rows, "all", category="j") == [rows[0]]


# --------------------------------------------------------------------------- comparison, overfitting
def test_metric_table_deltas_and_changed_examples():
    res = [{"label": "base", "metrics": {"exact_match": 0.25, "f1": 0.5, "n": 4}},
           {"label": "tuned", "metrics": {"exact_match": 0.75, "f1": 0.5, "n": 4}}]
    t = {r["metric"]: r for r in compare.metric_table(res)}
    assert t["exact_match"]["Δ tuned"] == 0.5 and t["f1"]["Δ tuned"] == 0 and "Δ tuned" not in t["n"]
    mk = lambda c: [{"id": str(i), "input": f"q{i}", "reference": "r", "prediction": "p", "correct": x}  # noqa: E731
                    for i, x in enumerate(c)]
    changed = compare.changed_examples(res, {"base": mk([True, False, False]), "tuned": mk([False, True, False])})
    assert [(r["id"], r["change"]) for r in changed] == [("0", "broken"), ("1", "fixed")]


def test_overfitting_rule():
    def rows(train, evals, every=10):
        out = [{"step": s, "loss": v} for s, v in train]
        return out + [{"step": (i + 1) * every, "eval_loss": v} for i, v in enumerate(evals)]
    falling = [(s, 2.0 - s / 50) for s in range(1, 51)]
    v = compare.overfitting(rows(falling, [1.5, 1.2, 1.3, 1.4, 1.5]))
    assert v["flag"] and v["since_step"] == 30
    assert not compare.overfitting(rows(falling, [1.5, 1.2, 1.3, 1.1, 1.2]))["flag"]   # one rise at a time
    assert not compare.overfitting(rows(falling, [1.5, 1.4, 1.3, 1.2, 1.1]))["flag"]   # both falling
    rising_train = [(s, 1.0 + s / 50) for s in range(1, 51)]
    assert not compare.overfitting(rows(rising_train, [1.5, 1.2, 1.3, 1.4, 1.5]))["flag"]  # no divergence
    assert "needs at least 3" in compare.overfitting(rows(falling, [1.5, 1.6]))["detail"]


def test_forgetting_and_bias_helpers():
    from labs.evaluation import bias, forgetting
    assert forgetting.contains_answer("It is Paris, of course.", ["Paris"])
    assert not forgetting.contains_answer("Parisian food", ["Paris"])
    before = {"perplexity": 10.0, "questions": [{"question": "q", "answer": "Paris", "correct": True}], "accuracy": 1}
    after = {"perplexity": 12.0, "questions": [{"question": "q", "answer": "Rome", "correct": False}], "accuracy": 0}
    c = forgetting.changes(before, after)
    assert c["perplexity_change_pct"] == 20.0 and c["perplexity_flag"] and c["lost"] == 1
    assert bias.lexicon_score("A skilled and friendly engineer.") == 1.0
    assert bias.lexicon_score("A lazy but talented person.") == 0.0
    assert bias.lexicon_score("A person.") == 0.0


# --------------------------------------------------------------------------- CLIs
def _cli(*args, env_extra=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    p = subprocess.run([sys.executable, "-m", "labs.evaluation", *args], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=600)
    return p, dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)


@pytest.mark.slow
def test_score_cli_and_bad_input(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps({"prediction": p, "reference": g}) + "\n" for p, g in QA))
    p, out = _cli("score", "--task", "qa", "--predictions", str(f))
    assert p.returncode == 0, p.stderr
    s = metrics.qa_scores([p for p, _ in QA], [g for _, g in QA])
    assert float(out["exact_match"]) == pytest.approx(s["exact_match"], abs=1e-4)
    assert float(out["f1"]) == pytest.approx(s["f1"], abs=1e-4) and out["n"] == str(len(QA))
    c = tmp_path / "c.jsonl"
    c.write_text("".join(json.dumps({"prediction": p, "reference": r}) + "\n" for r, p, _ in [CLS[1]]
                         for r, p in zip(*CLS[1][:2])))
    p, out = _cli("score", "--task", "classification", "--predictions", str(c))
    assert p.returncode == 0 and {"accuracy", "f1_macro", "f1_weighted"} <= set(out) and "f1" not in out
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prediction": "x"}\n')
    for args in (["score", "--task", "qa", "--predictions", str(bad)],
                 ["score", "--task", "qa", "--predictions", str(tmp_path / "missing.jsonl")],
                 ["score", "--task", "poetry", "--predictions", str(f)],
                 ["--model", "default", "--task", "nope"],
                 ["--model", str(tmp_path / "no-such-model"), "--data", str(f)]):
        p, _ = _cli(*args)
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (args, p.stderr)


def _reference_loss(model_dir, rows) -> float:
    """Mean loss per trained token by transformers' own loss (labels shifted inside the model)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from labs.data.mask import tokenize_row
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    nll = n = 0.0
    for r in rows:
        t = tokenize_row(tok, r)
        k = sum(lab != -100 for lab in t["labels"][1:])
        with torch.no_grad():
            loss = model(input_ids=torch.tensor([t["input_ids"]]), labels=torch.tensor([t["labels"]])).loss
        nll, n = nll + float(loss) * k, n + k
    return nll / n


@pytest.mark.slow
def test_cli_on_the_tiny_model_prompts_raw_rows_like_the_preset(tmp_path, tiny_model_dir):
    """A sentiment run given raw text/label rows: prompted as the Dataset builder converts them for the preset,
    scored as classification, its loss the one transformers computes on the same trained tokens."""
    from labs.data.formats import to_sft
    rows = [{"text": f"Review {i}: {w} product.", "label": lab} for i, (w, lab) in
            enumerate([("great", "positive"), ("awful", "negative"), ("fine", "neutral"), ("superb", "positive")])]
    data = tmp_path / "reviews.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = tmp_path / "runs" / "20250101-000000-sentiment-ab12"
    run.mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"state": "finished", "recipe": "sft"}))
    (run / "config.yaml").write_text(f"model: {tiny_model_dir}\ndataset: {data}\ntask: sentiment\n"
                                     "data_tasks: sentiment\nmax_length: 512\n")
    shutil.copytree(tiny_model_dir, run / "model")  # a full fine-tune's output folder
    p, out = _cli("--model", str(run), "--max-new-tokens", "3")
    assert p.returncode == 0, p.stderr
    assert {"accuracy", "f1_macro", "precision_macro", "recall_weighted", "loss", "perplexity", "n"} <= set(out)
    assert out["n"] == "4" and "f1" not in out
    sft = to_sft(rows, fmt="classification")
    assert float(out["loss"]) == pytest.approx(_reference_loss(run / "model", sft), rel=1e-3)
    preds = [json.loads(x) for x in (run / "evaluation" / "predictions.jsonl").read_text().splitlines()]
    assert [r["input"] for r in preds] == [r["prompt"][0]["content"] for r in sft]
    assert [r["category"] for r in preds] == [r["label"] for r in rows]
    result = json.loads((run / "evaluation" / "evaluation.json").read_text())
    assert result["data"]["task"] == "classification" and result["data"]["labels"] == ["negative", "neutral", "positive"]
    m = result["models"][0]
    assert sum(map(sum, m["confusion"]["matrix"])) + sum(m["confusion"]["other"]) == 4
    assert float(out["accuracy"]) == pytest.approx(sum(r["correct"] for r in preds) / 4)


@pytest.mark.slow
def test_report_export_and_comparison(tmp_path, tiny_model_dir, default_tokenizer):
    """Two models on the same bundled rows: table with deltas, buckets, forgetting probe, bias audit, report."""
    from labs.evaluation.evaluate import EvalConfig, evaluate
    other = make_tiny_model(tmp_path / "other", default_tokenizer, seed=1)
    cfg = EvalConfig(models=[str(tiny_model_dir), str(other)], data="instruct", split="test", tasks="extraction",
                     max_rows=4, max_new_tokens=4, forgetting=True, bias=True, bias_templates=["Describe {group}."],
                     bias_groups="a man, a woman")
    out = tmp_path / "report"
    r = evaluate(cfg, out)
    a, b = r["models"]
    assert a["metrics"]["n"] == b["metrics"]["n"] == 4 and {"exact_match", "rouge_l", "yaml_valid", "field_accuracy",
                                                            "loss", "perplexity"} <= set(a["metrics"])
    row = next(t for t in r["table"] if t["metric"] == "loss")
    assert row[f"Δ {b['label']}"] == pytest.approx(b["metrics"]["loss"] - a["metrics"]["loss"], abs=1e-3)
    assert sum(a["buckets"].values()) == 4 - round(a["metrics"]["exact_match"] * 4)
    f = r["forgetting"]
    assert set(f["probes"]) == {a["label"], b["label"]}
    # the probe's perplexity: every token of the 56 general paragraphs scored (all but each one's first), and
    # exp of transformers' own mean loss over them
    from labs.data.mask import tokenize_row
    from labs.evaluation.data import general_text
    paragraphs = [{"text": e["sft"]["text"]} for e in general_text()]
    scored = sum(len(tokenize_row(default_tokenizer, r, 1024)["input_ids"]) - 1 for r in paragraphs)
    assert len(paragraphs) == 56 and f["probes"][a["label"]]["tokens"] == scored
    assert f["probes"][a["label"]]["perplexity"] == pytest.approx(math.exp(_reference_loss(tiny_model_dir, paragraphs)),
                                                                   rel=1e-3)
    assert len(f["changes"][b["label"]]["questions"]) == 8
    assert [g["group"] for g in r["bias"][a["label"]]["groups"]] == ["a man", "a woman"]
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4 and "Forgetting probe" in html and "Bias audit" in html
    md = (out / "report.md").read_text()
    assert f"| loss | {a['metrics']['loss']:.4g} | {b['metrics']['loss']:.4g} |" in md
    saved = json.loads((out / "evaluation.json").read_text())
    assert saved["models"][0]["metrics"] == a["metrics"]
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 8 and {json.loads(x)["model"] for x in lines} == {a["label"], b["label"]}


def test_a_registered_predictor_answers_its_runs(tmp_path, monkeypatch):
    """The hook for other model kinds (the encoder recipe's): a run whose recipe has a registered predictor is
    answered by it. A made-up recipe 'toy' stands in, so the test holds once labs.encoder registers its own."""
    from labs.evaluation import predict
    from labs.evaluation.evaluate import EvalConfig, evaluate
    monkeypatch.setattr(predict, "NOT_CAUSAL", {*predict.NOT_CAUSAL, "toy"})
    assert "encoder" in predict.NOT_CAUSAL
    run = tmp_path / "toy-run"
    run.mkdir()
    (run / "status.json").write_text(json.dumps({"state": "finished", "recipe": "toy"}))
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in
                            [("good", "pos"), ("bad", "neg"), ("fine", "pos")]))
    with pytest.raises(predict.EvalError, match="no predictor registered"):
        evaluate(EvalConfig(models=[str(run)], data=str(data)))
    seen = {}

    def fake(spec, examples, task, **kw):
        seen.update(spec=spec, task=task, n=len(examples))
        return [predict.Prediction("pos", True) for _ in examples]
    predict.register("toy", predict.Predictor(predict=fake))
    try:
        r = evaluate(EvalConfig(models=[str(run)], data=str(data), loss=True))
    finally:
        predict.PREDICTORS.pop("toy")
    assert seen == {"spec": str(run), "task": "classification", "n": 3}
    m = r["models"][0]["metrics"]
    assert m["accuracy"] == pytest.approx(2 / 3, abs=1e-4) and "loss" not in m
    assert r["models"][0]["buckets"]["wrong_label"] == 1


# --------------------------------------------------------------------------- the job, the tab
@pytest.mark.slow
def test_job_runs_and_stops_through_the_run_engine(data_dir, tiny_model_dir):
    from labs import runs
    from labs.evaluation.evaluate import EvalConfig
    cfg = EvalConfig(models=[str(tiny_model_dir)], data="instruct", split="validation", tasks="", max_rows=6,
                     max_new_tokens=4)
    run = runs.submit("evaluation", cfg.to_dict(), name="eval")
    st = runs.wait(run.id, timeout_s=600)
    assert st["state"] == "finished", run.log_tail(20)
    result = json.loads((run.dir / "evaluation.json").read_text())
    assert result["data"]["rows"] == 6 and result["models"][0]["metrics"]["n"] == 6
    final = [r for r in run.metrics() if r.get("final")]
    assert final and final[-1][f"{result['models'][0]['label']}/loss"] == result["models"][0]["metrics"]["loss"]
    assert st.get("step") == st.get("max_steps") == 12   # 6 answers + 6 losses

    slow = EvalConfig(models=[str(tiny_model_dir)], data="instruct", split="test", tasks="", max_new_tokens=64,
                      batch_size=1)
    run2 = runs.submit("evaluation", slow.to_dict(), name="eval-stop")
    wait_until(lambda: (runs.get(run2.id).status().get("step") or 0) >= 1, 300, "the job's first answer")
    runs.stop(run2.id)
    st2 = runs.wait(run2.id, timeout_s=300)
    assert st2["state"] == "stopped" and not (run2.dir / "evaluation.json").exists()


@pytest.mark.slow
def test_evaluation_tab_end_to_end(data_dir, tiny_model_dir, serve_tab):
    from components import evaluation_tab
    with serve_tab(evaluation_tab, data_dir, str(tiny_model_dir)) as client:
        rid, msg = client.predict([str(tiny_model_dir)], "instruct", "test", "auto", "", 5, 8, True, True, False,
                                  False, "", "", "", "task", api_name="/eval_start")
        assert rid and "Started evaluation" in msg
        from labs import runs
        st = runs.wait(rid, timeout_s=600)
        assert st["state"] == "finished", runs.get(rid).log_tail(20)
        out = client.predict(rid, api_name="/eval_results")
        summary, table = out[0], out[1].get("value", out[1])  # shown through gr.update(visible=...)
        assert "5 rows" in summary and "instruct/test" in summary
        metrics_rows = {r[0]: r[1] for r in table["data"]}
        saved = json.loads((runs.get(rid).dir / "evaluation.json").read_text())["models"][0]
        assert metrics_rows["exact_match"] == saved["metrics"]["exact_match"] and metrics_rows["n"] == 5
        per_task = out[-1].get("value", out[-1])                # the table of metrics per value of 'task'
        assert per_task["headers"][:2] == ["slice", "n"] and sum(r[1] for r in per_task["data"]) == 5
        assert [r[0] for r in per_task["data"]] == [s["slice"] for s in saved["slices"]["rows"]]
        label = saved["label"]
        df, count = client.predict(rid, label, "all", "", "", 0, None, api_name="/eval_errors")
        assert count == "5 rows" and len(df["data"]) == 5
        df, count = client.predict(rid, label, "all", "", "", 0, 10, api_name="/eval_errors")
        assert count == "0 rows"                         # every instruct prompt is longer than 10 characters
        files = client.predict(rid, api_name="/eval_export")
        assert sorted(Path(f).name for f in files) == ["evaluation.json", "predictions.jsonl", "report.html",
                                                       "report.md"]
        _, msg = client.predict([], "instruct", "test", "auto", "", 5, 8, True, True, False, False, "", "", "", "",
                                api_name="/eval_start")
        assert msg.startswith("⚠️") and "models" in msg


def test_tab_timer_ticks_only_while_the_job_can_change(data_dir):
    """A picked finished evaluation: drawn once, its timer off; a tick with nothing new redraws nothing."""
    import gradio as gr
    from components import evaluation_tab
    from labs import runs
    run = runs.create("evaluation", {"models": ["default"]}, name="evaluation")
    run.set_status(state="finished")
    status_md, _, view, timer = evaluation_tab.show(run.id)
    assert "finished" in status_md and timer.active is False
    out = evaluation_tab.tick(run.id, view)
    assert all(o == gr.skip() for o in out[:3]) and out[3].active is False
    assert evaluation_tab.show(None)[3].active is False
    summary = evaluation_tab.results(run.id)[0]
    assert summary.startswith("Pick a finished evaluation run")          # no evaluation.json yet
