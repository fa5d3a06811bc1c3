"""Every format is detected (with its reason) and converted correctly, on the bundled sample files."""
from __future__ import annotations

from pathlib import Path

import pytest

from labs import data

ROOT = Path(__file__).resolve().parents[1]
F = ROOT / "assets" / "formats"
DETECT = {
    "text.jsonl": "text", "instruction.jsonl": "instruction", "prompt_completion.jsonl": "prompt_completion",
    "prompt_completion.parquet": "prompt_completion", "messages.jsonl": "messages", "sharegpt.json": "sharegpt",
    "preference.jsonl": "preference", "preference_messages.jsonl": "preference",
    "preference_implicit.jsonl": "preference_implicit", "preference_ab.csv": "preference_ab",
    "unpaired.jsonl": "unpaired_preference", "classification.tsv": "classification",
    "extractive_qa.jsonl": "extractive_qa",
}


@pytest.mark.parametrize("name,fmt", DETECT.items())
def test_detects_every_sample_format(name, fmt):
    d = data.read_file(F / name)
    assert d.format == fmt and len(d) >= 4
    named = [c for c in d.columns if c in d.reason]  # the reason names the columns that decided it
    assert named, (d.reason, d.columns)


def test_bundled_sets_detect():
    assert data.read_file(ROOT / "assets/preference/preference.jsonl").format == "preference"
    assert data.read_file(ROOT / "assets/sentiment/reviews.csv").format == "classification"
    assert data.read_file(ROOT / "assets/qa/qa.jsonl").format == "extractive_qa"
    assert data.read_file(ROOT / "assets/general/general_text.jsonl").format == "text"
    assert data.read_file(ROOT / "assets/prompts/prompts.jsonl").format == "prompt_only"
    assert len(data.read_file(ROOT / "assets/sentiment/reviews.csv")) >= 300
    qa = data.read_file(ROOT / "assets/qa/qa.jsonl")
    for r in qa:  # SQuAD style: answer_start points at the answer inside the context
        a, s = r["answers"]["text"][0], r["answers"]["answer_start"][0]
        assert r["context"][s:s + len(a)] == a


def test_instruction_to_sft_prompt_completion_and_messages():
    rows = data.read_file(F / "instruction.jsonl")
    pc = data.to_sft(rows)
    assert pc[0]["prompt"] == [{"role": "user", "content": rows[0]["instruction"] + "\n\n" + rows[0]["input"]}]
    assert pc[0]["completion"] == [{"role": "assistant", "content": rows[0]["output"]}]
    assert pc[2]["prompt"][0]["content"] == rows[2]["instruction"]  # empty input: no blank lines appended
    msgs = data.to_sft(rows, form="messages", system="Be brief.")
    assert [m["role"] for m in msgs[0]["messages"]] == ["system", "user", "assistant"]


def test_sharegpt_and_messages_split_at_last_assistant():
    sg = data.to_sft(data.read_file(F / "sharegpt.json"))
    assert sg[0]["prompt"][0]["role"] == "user" and sg[0]["completion"][0]["role"] == "assistant"
    multi = data.to_sft(data.read_file(F / "messages.jsonl"))[-1]
    assert len(multi["prompt"]) == 3 and "omelette" in multi["completion"][0]["content"]
    assert len(data.to_sft(data.read_file(F / "messages.jsonl"), all_turns=True)) == 5


@pytest.mark.parametrize("name", ["preference.jsonl", "preference_messages.jsonl", "preference_implicit.jsonl",
                                  "preference_ab.csv", "unpaired.jsonl"])
def test_every_preference_shape_gives_the_same_pairs(name):
    ref = data.to_preference(data.read_file(F / "preference.jsonl"))
    got = data.to_preference(data.read_file(F / name))
    key = lambda r: r["prompt"][0]["content"]  # noqa: E731
    assert sorted(got, key=key) == sorted(ref, key=key)


def test_ab_preference_picks_the_preferred_side():
    rows = [{"prompt": "p", "response_A": "a", "response_B": "b", "preference": "B"},
            {"prompt": "p", "response_A": "a", "response_B": "b", "preference": "tie"}]
    out = data.to_preference(rows)
    assert out[0]["chosen"][0]["content"] == "b" and out[0]["rejected"][0]["content"] == "a"
    assert out.skipped == [(2, "preference is 'tie', expected \"A\" or \"B\"")]


def test_kto_and_sft_from_unpaired():
    rows = data.read_file(F / "unpaired.jsonl")
    kto = data.to_kto(rows)
    assert len(kto) == 12 and [r["label"] for r in kto[:2]] == [True, False]
    sft = data.to_sft(rows)
    assert len(sft) == 6 and len(sft.skipped) == 6  # bad answers are not SFT targets


def test_classification_and_qa_become_instruction_rows():
    cls = data.to_sft(data.read_file(F / "classification.tsv"))
    assert "one of: negative, neutral, positive" in cls[0]["prompt"][0]["content"]
    assert cls[0]["completion"][0]["content"] in {"negative", "neutral", "positive"}
    qa = data.read_file(F / "extractive_qa.jsonl")
    out = data.to_sft(qa)
    assert qa[0]["context"] in out[0]["prompt"][0]["content"] and qa[0]["question"] in out[0]["prompt"][0]["content"]
    assert out[0]["completion"][0]["content"] == qa[0]["answers"]["text"][0]


def test_implicit_transcript_prompt_extraction():
    row = {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: 2+2?\n\nAssistant: 4",
           "rejected": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: 2+2?\n\nAssistant: 5"}
    p = data.to_preference([row])[0]
    assert [m["role"] for m in p["prompt"]] == ["user", "assistant", "user"]
    assert p["chosen"] == [{"role": "assistant", "content": "4"}]
    std = data.to_preference([row], conversational=False)[0]
    assert std["prompt"].endswith("Human: 2+2?\n\nAssistant:") and std["chosen"] == "4"


def test_manual_mapping_and_aliases():
    rows = [{"q": "What is 2+2?", "a": "4"}, {"q": "Capital of Peru?", "a": "Lima"}]
    with pytest.raises(data.DataError, match=r"columns found \(q, a\)"):
        data.detect_format(rows)
    d = data.detect(rows, fmt="prompt_completion", mapping="prompt=q, completion=a")
    assert d.format == "prompt_completion" and data.to_sft(d)[1]["completion"][0]["content"] == "Lima"
    assert data.detect_format([{"question": "x", "answer": "y"}])[0] == "prompt_completion"
    with pytest.raises(data.DataError, match="'output', which is missing; columns found: instruction, extra"):
        data.apply_mapping([{"instruction": "x", "extra": 1}], "instruction")
    with pytest.raises(data.DataError, match="mapped column 'nope'"):
        data.apply_mapping(rows, "prompt_completion", {"prompt": "nope"})


def test_wrong_types_are_skipped_with_row_numbers():
    rows = [{"instruction": "ok", "output": "fine"}, {"instruction": "x", "output": 42},
            {"instruction": ["list"], "output": "y"}]
    out = data.to_sft(rows, "instruction")
    assert len(out) == 1
    assert out.skipped == [(2, "output should be text, got int"), (3, "instruction should be text, got list")]
    with pytest.raises(data.DataError, match="has no preferences"):
        data.to_preference(rows, "instruction")
