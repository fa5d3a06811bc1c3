"""The bundled instruction set: reproducible, and its held-out splits are really held out."""
from __future__ import annotations

import collections
import json
import re
import sys

import yaml

from tests.helpers import ROOT, write_splits
DIR = ROOT / "assets" / "instruct"


def _rows(split):
    return [json.loads(line) for line in (DIR / f"{split}.jsonl").read_text().splitlines() if line.strip()]


def _text(row):
    return "\n".join(m["content"] for m in row["prompt"] + row["completion"])


def _generator():
    sys.path.insert(0, str(ROOT / "assets"))
    try:
        import make_instruct
    finally:
        sys.path.pop(0)
    return make_instruct


def test_files_match_the_seeded_generator(tmp_path):
    built = _generator().build()
    for split in ("train", "validation", "test"):
        assert built[split] == _rows(split), f"{split}.jsonl is stale: run python assets/make_instruct.py"


def test_size_tasks_and_format():
    rows = {s: _rows(s) for s in ("train", "validation", "test")}
    assert sum(len(r) for r in rows.values()) >= 300
    for split, rs in rows.items():
        tasks = collections.Counter(r["task"] for r in rs)
        assert set(tasks) == {"extraction", "sentiment", "qa", "transform"}, split
        for r in rs:
            assert r["prompt"][0]["role"] == "user" and r["completion"][0]["role"] == "assistant"
            assert r["completion"][0]["content"].strip()


def test_held_out_uses_no_training_phrasing_or_entity():
    train = _rows("train")
    train_templates = {r["template"] for r in train}
    train_text = "\n".join(_text(r) for r in train)
    for split in ("validation", "test"):
        for r in _rows(split):
            assert r["template"] not in train_templates, (split, r["template"])
            for e in r["entities"]:
                assert not re.search(rf"\b{re.escape(e)}\b", train_text), (split, e)
    # and the two held-out splits share no prompt
    val = {r["prompt"][0]["content"] for r in _rows("validation")}
    assert not val & {r["prompt"][0]["content"] for r in _rows("test")}


def test_extraction_test_split_is_fresh():
    """The extraction test rows come from their own pools: no sentence shape, instruction phrasing, name or
    city of theirs is in training or validation, and every test-only shape and phrasing is used."""
    gen = _generator()
    test = [r for r in _rows("test") if r["task"] == "extraction"]
    seen_text = "\n".join(_text(r) for s in ("train", "validation") for r in _rows(s))
    seen_templates = {r["template"] for s in ("train", "validation") for r in _rows(s) if r["task"] == "extraction"}
    for r in test:
        assert r["template"] not in seen_templates, r["template"]
        name, city = r["entities"]
        for e in (name, city, *name.split()):
            assert not re.search(rf"\b{re.escape(e)}\b", seen_text), e
    prompts = [r["prompt"][0]["content"] for r in test]
    for shape in gen.TEST_SENT:  # each shape: its fixed words (before the first or after the last field)
        words = [w for w in re.split(r"\{[nca]\}", shape) if len(w.strip(" .,:;-()")) > 3]
        assert any(all(w.strip() in p for w in words) for p in prompts), shape
    for ask in gen.TEST_ASK:
        fixed = max(ask.split("{s}"), key=len).strip()
        assert sum(fixed in p for p in prompts) >= 5, ask
        assert not any(fixed in m for m in gen.TRAIN_ASK + gen.HELD_ASK), ask
    for held, test_pool in ((gen.TRAIN_FIRST + gen.HELD_FIRST, gen.TEST_FIRST),
                            (gen.TRAIN_LAST + gen.HELD_LAST, gen.TEST_LAST),
                            (gen.TRAIN_CITY + gen.HELD_CITY, gen.TEST_CITY),
                            (gen.TRAIN_SENT + gen.HELD_SENT, gen.TEST_SENT)):
        assert not set(held) & set(test_pool)


def test_headline_task_is_open_ended():
    """Extraction answers are not a small closed set: the majority answer is rare."""
    test = [r for r in _rows("test") if r["task"] == "extraction"]
    answers = collections.Counter(r["completion"][0]["content"] for r in test)
    assert len(answers) >= 0.9 * len(test)
    assert answers.most_common(1)[0][1] / len(test) <= 0.3
    for r in test:  # a YAML mapping whose values are copied from the sentence
        rec = yaml.safe_load(r["completion"][0]["content"])
        assert list(rec) == ["name", "city", "age"] and isinstance(rec["age"], int)
        assert rec["name"] in r["prompt"][0]["content"] and rec["city"] in r["prompt"][0]["content"]


# --------------------------------------------------------------------------- raw task rows: the evaluation's prompt
def test_raw_classification_and_qa_rows_train_on_the_prompt_the_evaluation_asks(tmp_path):
    from labs.evaluation.data import load_examples
    from labs.sft.data import load_splits
    cls = [{"text": f"review {i}", "label": lab} for i, lab in enumerate(["good", "bad", "meh"] * 3)]
    folder = write_splits(tmp_path / "reviews", {"train": cls, "validation": cls[:3], "test": cls[3:6]})
    splits = load_splits(str(folder))
    row = splits["test"][0]
    assert row["prompt"][0]["content"] == "Label this text with one of: bad, good, meh.\n\nText: review 3"
    assert row["completion"] == [{"role": "assistant", "content": "good"}]
    ex = load_examples(str(folder), split="test", task="classification")
    assert [e["prompt"] for e in ex.rows] == [r["prompt"] for r in splits["test"]]  # one prompt, both sides
    qa = [{"context": "Ada was born in 1815 in London.", "question": "When was Ada born?",
           "answers": {"text": ["1815"], "answer_start": [16]}}] * 4
    splits = load_splits(str(write_splits(tmp_path / "qa", {"train": qa, "validation": qa[:1]})))
    assert splits["train"][0]["prompt"][0]["content"].startswith("Answer the question with a short span copied")
    assert splits["train"][0]["completion"][0]["content"] == "1815"
    assert load_examples(str(tmp_path / "qa" / "train.jsonl"), task="qa").rows[0]["prompt"] == \
        splits["train"][0]["prompt"]


def test_a_real_dataset_is_built_on_first_use(data_dir):
    from labs.data.io import list_datasets
    from labs.sft.data import load_splits
    assert "drugs-real" not in list_datasets()
    splits = load_splits("drugs-real")
    assert len(splits["test"]) == 379 and "drugs-real" in list_datasets()
    assert splits["train"][0]["prompt"][0]["content"].startswith(
        "Label this text with one of: negative, neutral, positive.")


def test_a_real_dataset_saved_meanwhile_by_another_process_is_used(data_dir, monkeypatch):
    """Queued runs start together: the one that loses the race to save a real dataset reads the winner's."""
    from labs.data import real
    from labs.data.io import load_saved
    built = real.build("drugs-real")

    def build_while_another_saves(name, **kw):
        real.save(name, *built, data_dir)  # the other process finishes first
        return built
    monkeypatch.setattr(real, "build", build_while_another_saves)
    assert len(load_saved("drugs-real")["test"]) == 379


def test_a_real_dataset_finished_by_another_process_during_our_save_is_left_whole(data_dir, monkeypatch):
    """The other process renames its finished folder into place after our existence check and before our
    rename: ours must give way, not delete theirs under a reader (queued runs failed that way)."""
    import datasets
    from labs.data import real
    from labs.data.io import _dataset_dir, load_saved
    built = real.build("drugs-real")
    save_to_disk = datasets.DatasetDict.save_to_disk
    theirs = {}

    def other_finishes_meanwhile(self, path, *a, **kw):
        save_to_disk(self, path, *a, **kw)
        if not theirs:
            theirs["saving"] = True
            folder = real.save("drugs-real", *built, data_dir)
            (folder / "theirs.txt").write_text("a reader is using this folder")
    monkeypatch.setattr(datasets.DatasetDict, "save_to_disk", other_finishes_meanwhile)
    monkeypatch.setattr(real, "build", lambda name, **kw: built)
    assert len(load_saved("drugs-real")["test"]) == 379
    assert (_dataset_dir("drugs-real") / "theirs.txt").is_file()  # their folder, untouched
    assert not [p for p in _dataset_dir("drugs-real").parent.iterdir() if ".tmp-" in p.name]
