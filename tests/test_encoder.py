"""The course's encoder way: varied QA data, classification and extractive QA on a tiny BERT built in-process."""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
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
