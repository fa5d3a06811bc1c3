"""Metrics per slice of a data column (labs/evaluation/slices.py): the bins, evaluate's slice_by, the CLI's
`slice/` lines and the Evaluation tab's table, on a run answered in-process by a registered predictor."""
from __future__ import annotations

import json

import pytest


def _answered(values, correct=None, column="c"):
    """Answered classification rows whose data row has `column` = each value (a value None: no column)."""
    correct = correct or [True] * len(values)
    return [{"prediction": "pos" if ok else "neg", "references": ["pos"],
             "row": {} if v is None else {column: v}} for v, ok in zip(values, correct)]


def test_slices_of_a_numeric_column_are_quantile_bins_with_edges_from_the_data():
    from labs.evaluation.slices import slice_metrics
    vals = list(range(1, 21))                                 # 20 distinct values: 4 bins, edges 1, 5, 10, 15, 20
    ok = [v % 2 == 0 for v in vals]
    s = slice_metrics(_answered(vals, ok), "c", "classification", ["neg", "pos"])
    assert [(x["slice"], x["n"]) for x in s] == [("[1, 5)", 4), ("[5, 10)", 5), ("[10, 15)", 5), ("[15, 20]", 6)]
    group = [v for v in vals if 5 <= v < 10]
    assert s[1]["accuracy"] == pytest.approx(sum(v % 2 == 0 for v in group) / len(group), abs=1e-4)
    assert "f1_macro" in s[0] and "f1" not in s[0]           # the table's names, each number once
    # a skewed column: repeated edges merge, no bin is empty; strings that parse as numbers count as numbers
    skewed = [0.6] * 10 + ["0.7", 0.75, 0.8, "0.85", 0.9, 0.95, 1.0]
    s = slice_metrics(_answered(skewed), "c", "classification")
    assert [(x["slice"], x["n"]) for x in s] == [("[0.6, 0.8)", 12), ("[0.8, 1]", 5)]
    # the largest value on a quarter of the rows or more (confidence 1): a slice of its own, not the last bin's bulk
    s = slice_metrics(_answered([0.61, 0.62, 0.65, 0.7, 0.72, 0.8, 0.9, 0.95] + [1.0] * 4), "c", "classification")
    assert [(x["slice"], x["n"]) for x in s] == [("[0.61, 0.65)", 2), ("[0.65, 0.8)", 3), ("[0.8, 1)", 3), ("1", 4)]


def test_slices_of_few_values_categories_and_missing_rows():
    from labs.evaluation.slices import slice_metrics
    s = slice_metrics(_answered([3, "1", 2.0, 1, None, "", 3, 3]), "c", "qa")
    assert [(x["slice"], x["n"]) for x in s] == [("1", 2), ("2", 1), ("3", 3), ("(missing)", 2)]
    assert {"exact_match", "f1"} <= set(s[0])
    # a categorical column: by count, the 12 most common, the rest in '(other)', missing rows last
    cats = [f"k{i:02d}" for i in range(14) for _ in range(14 - i)] + [None]
    s = slice_metrics(_answered(cats), "c", "generation")
    assert [x["slice"] for x in s] == [f"k{i:02d}" for i in range(12)] + ["(other)", "(missing)"]
    assert [x["n"] for x in s] == [14 - i for i in range(12)] + [2 + 1, 1]
    assert sum(x["n"] for x in s) == len(cats)
    mixed = slice_metrics(_answered([1, 2, "n/a", 1]), "c", "qa")   # one value that is no number: all categorical
    assert [(x["slice"], x["n"]) for x in mixed] == [("1", 2), ("2", 1), ("n/a", 1)]


@pytest.fixture
def toy_run(tmp_path, monkeypatch):
    """A run answered in-process by a registered predictor that says each row's 'guess' column: (run, data)."""
    from labs.evaluation import predict
    monkeypatch.setattr(predict, "NOT_CAUSAL", {*predict.NOT_CAUSAL, "toy"})
    run = tmp_path / "toy-run"
    run.mkdir()
    (run / "status.json").write_text(json.dumps({"state": "finished", "recipe": "toy"}))
    rows = [{"text": f"review {i}", "label": lab, "guess": guess, "confidence": conf} for i, (lab, guess, conf) in
            enumerate([("pos", "pos", 0.6), ("neg", "pos", 0.62), ("pos", "pos", 0.7), ("neg", "neg", 0.74),
                       ("pos", "neg", 0.8), ("neg", "neg", 0.85), ("pos", "pos", 0.9), ("neg", "neg", 0.95),
                       ("pos", "pos", 1.0)])]
    rows.append({"text": "no confidence given", "label": "neg", "guess": "pos"})
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    calls = []

    def guess(spec, examples, task, **kw):
        calls.append(len(examples))
        return [predict.Prediction(e["row"]["guess"], True) for e in examples]
    monkeypatch.setitem(predict.PREDICTORS, "toy", predict.Predictor(predict=guess))
    return run, data, calls


def test_evaluate_slice_by_scores_the_answered_rows_per_slice(toy_run, tmp_path):
    from labs.evaluation.evaluate import EvalConfig, evaluate
    from labs.evaluation.predict import EvalError
    run, data, calls = toy_run
    r = evaluate(EvalConfig(models=[str(run)], data=str(data), slice_by=" confidence "), tmp_path / "out")
    m = r["models"][0]
    sl = m["slices"]
    assert sl["by"] == "confidence"
    assert [(x["slice"], x["n"]) for x in sl["rows"]] == [("[0.6, 0.7)", 2), ("[0.7, 0.8)", 2), ("[0.8, 0.9)", 2),
                                                          ("[0.9, 1]", 3), ("(missing)", 1)]
    assert sum(x["n"] for x in sl["rows"]) == m["metrics"]["n"] == 10
    assert [x["accuracy"] for x in sl["rows"]] == [0.5, 1.0, 0.5, 1.0, 0.0]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Metrics per confidence" in md and "| slice | n | accuracy | f1_macro |" in md
    assert "| [0.9, 1] | 3 | 1 |" in md
    assert "Metrics per confidence" in (tmp_path / "out" / "report.html").read_text()
    assert "slices" not in evaluate(EvalConfig(models=[str(run)], data=str(data)))["models"][0]
    calls.clear()
    with pytest.raises(EvalError) as e:
        evaluate(EvalConfig(models=[str(run)], data=str(data), slice_by="source"))
    assert str(e.value) == "slice_by: no evaluated row has a column 'source' (columns: text, label, guess, confidence)"
    assert calls == []                                        # checked before any model answers


def test_cli_prints_metrics_per_slice_after_the_metric_lines(toy_run, capsys):
    from labs.evaluation.__main__ import main
    run, data, _ = toy_run

    def lines(*extra):
        rc = main(["--model", str(run), "--data", str(data), *extra])
        cap = capsys.readouterr()
        return rc, [x for x in cap.out.splitlines() if not x.startswith("ms_per_row=")], cap.err
    rc, plain, _ = lines()
    assert rc == 0 and "accuracy=0.7" in plain
    rc, sliced, _ = lines("--slice-by", "confidence")
    assert rc == 0 and sliced[:len(plain)] == plain               # the metric lines as they were, then the slices
    extra = sliced[len(plain):]
    assert extra[:2] == ["slice/confidence:[0.6, 0.7)/n=2", "slice/confidence:[0.6, 0.7)/accuracy=0.5"]
    assert "slice/confidence:(missing)/accuracy=0.0" in extra and all(x.startswith("slice/") for x in extra)
    assert len({x.rsplit("/", 1)[0] for x in extra}) == 5          # five slices
    rc, out, err = lines("--slice-by", "source")
    assert rc == 2 and out == [] and err.strip().splitlines() == [
        "error: slice_by: no evaluated row has a column 'source' (columns: text, label, guess, confidence)"]


def test_tab_shows_the_metrics_per_slice(data_dir, toy_run):
    from components import evaluation_tab
    from labs import runs
    from labs.evaluation.evaluate import EvalConfig, evaluate
    run_dir, data, _ = toy_run
    run = runs.create("evaluation", {"models": [str(run_dir)]}, name="evaluation")
    evaluate(EvalConfig(models=[str(run_dir)], data=str(data), slice_by="confidence"), run.dir)
    run.set_status(state="finished")
    shown = evaluation_tab.results(run.id)[-1]
    assert shown["visible"] and shown["label"] == "Metrics per confidence"
    assert list(shown["value"].columns) == ["slice", "n", "accuracy", "f1_macro"]
    assert shown["value"]["n"].tolist() == [2, 2, 2, 3, 1]
    evaluate(EvalConfig(models=[str(run_dir)], data=str(data)), run.dir)   # no slice_by: no table
    assert evaluation_tab.results(run.id)[-1]["visible"] is False
