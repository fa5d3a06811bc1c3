"""One loss-mask truth: the Dataset builder's preview, the SFT tab's preview and the trainer's batches all
come from labs.data.mask.tokenize_row, and it equals TRL 1.16's own tokenization where TRL tokenizes."""
from __future__ import annotations

import copy
import json
import re
from html import unescape
from pathlib import Path

import pytest

from labs import data
from labs.data.mask import row_preview, sft_row, tokenize_row

ROOT = Path(__file__).resolve().parents[1]
FORMATS = sorted((ROOT / "assets" / "formats").iterdir())
SYSTEM = "You are a terse assistant."
CHAT = [{"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Name a primary colour."},
        {"role": "assistant", "content": "Red."},
        {"role": "user", "content": "And another one, please?"},
        {"role": "assistant", "content": "Blue, and there is also yellow."}]


def _sft_rows(path: Path, form: str) -> list[dict]:
    """The file's rows converted for SFT as the Dataset builder saves them ([] for formats with no answer)."""
    loaded = data.read_file(path)
    try:
        return list(data.to_sft(loaded, loaded.format, form=form))
    except data.DataError:
        return []


def _trained(mask) -> list[bool]:
    return [t for *_, t in mask]


# --------------------------------------------------------------------------- against TRL
def test_tokenize_row_equals_trl_where_trl_tokenizes(tiny_model_dir, tmp_path):
    """Conversational and standard prompt/completion rows and text rows: our ids and labels are TRL's."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    conv = [r for p in FORMATS for r in _sft_rows(p, "prompt_completion") if isinstance(r.get("prompt"), list)]
    std = data.to_sft(data.read_file(ROOT / "assets/formats/instruction.jsonl"), "instruction", conversational=False)
    std = list(std) + [{"prompt": "2+2=", "completion": " 4"}]
    text = [r for r in _sft_rows(ROOT / "assets/formats/text.jsonl", "prompt_completion")]
    assert len(conv) > 30 and len(std) >= 6 and len(text) >= 4
    for rows, max_length in ((conv, None), (conv, 50), (std, None), (text, None)):
        args = SFTConfig(output_dir=str(tmp_path / "out"), use_cpu=True, report_to=[], max_length=max_length,
                         per_device_train_batch_size=2)
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)
        prepared = list(trainer.train_dataset)
        ours = [tokenize_row(tok, r, max_length) for r in rows]
        ours = [t for t in ours if any(lab != -100 for lab in t["labels"])]  # TRL drops rows with nothing to train
        if max_length == 50:
            assert len(ours) < len(rows)  # some prompts alone fill 50 tokens
        assert len(prepared) == len(ours)
        for ex, t in zip(prepared, ours):
            assert ex["input_ids"] == t["input_ids"]
            trl_labels = ex.get("labels") or [i if m else -100 for i, m in
                                              zip(ex["input_ids"], ex.get("completion_mask", [1] * len(ex["input_ids"])))]
            assert [lab != -100 for lab in trl_labels] == [lab != -100 for lab in t["labels"]]


# --------------------------------------------------------------------------- previews == the trainer's batch
def _segments(batch) -> list[tuple[list[int], list[int]]]:
    """A padding-free batch split back into its rows: (input_ids, labels) per row."""
    ids, labels, pos = (batch[k][0].tolist() for k in ("input_ids", "labels", "position_ids"))
    starts = [i for i, p in enumerate(pos) if p == 0] + [len(ids)]
    return [(ids[a:b], labels[a:b]) for a, b in zip(starts, starts[1:])]


@pytest.mark.slow
@pytest.mark.parametrize("form", ["prompt_completion", "messages"])
def test_every_bundled_format_preview_equals_the_trainers_first_batch(form, tiny_model_dir, default_tokenizer,
                                                                       tmp_path, data_dir):
    """For every bundled format converted for SFT in both forms: the previews' trained tokens are the labels
    of the trainer's first collated batch, row for row."""
    from components.sft_tab import mask_preview as sft_tab_preview
    from labs.sft.config import SFTRunConfig
    from labs.sft.data import load_splits
    from labs.sft.recipe import NullSession, build_trainer

    seen = 0
    for path in FORMATS:
        rows = _sft_rows(path, form)
        if len(rows) < 2:
            continue
        f = tmp_path / f"{path.stem}-{form}.jsonl"
        f.write_text("".join(json.dumps(r) + "\n" for r in rows))
        train = load_splits(str(f))["train"]
        cfg = SFTRunConfig(model=str(tiny_model_dir), dataset=str(f), data_tasks="", max_steps=1,
                           batch_size=len(train), eval_rows=0, max_length=256, device="cpu")
        trainer, tok, splits, _ = build_trainer(cfg, NullSession(str(tmp_path / f"r-{path.stem}")))
        assert splits["train"] == train
        batch = next(iter(trainer.get_train_dataloader()))
        segs = _segments(batch)
        assert len(segs) == len(train), path.name
        for r_ix, row in enumerate(train):
            builder = _trained(row_preview(default_tokenizer, row, 256)[0])      # the Dataset builder's view
            tab, _ = sft_tab_preview(str(tiny_model_dir), str(f), "", r_ix, 256, True)  # the SFT tab's view
            assert [m == "trained" for _, m in tab] == builder, (path.name, r_ix)
            ids = tokenize_row(default_tokenizer, row, 256)["input_ids"]
            seg = next(s for s in segs if s[0] == ids)                          # the same row in the batch
            # position 0 of every row is masked by the padding-free collator (nothing before it to predict from)
            assert [lab != -100 for lab in seg[1]][1:] == builder[1:], (path.name, r_ix)
            assert any(builder), (path.name, r_ix)
        seen += 1
    assert seen >= 8  # every format with answers: instruction, prompt/completion, messages, sharegpt, ...


def test_builder_and_sft_tab_show_the_same_trained_tokens_on_the_messages_sample(default_tokenizer,
                                                                                  default_model_dir, data_dir):
    """The two tabs' handlers on the bundled multi-turn sample: same trained tokens, every assistant turn."""
    from components import dataset_tab
    from components.sft_tab import mask_preview as sft_tab_preview

    sample = ROOT / "assets/formats/messages.jsonl"
    st, *_ = dataset_tab.load_sample("formats/messages.jsonl", "auto", "", dict(dataset_tab.EMPTY))
    raw = [json.loads(line) for line in sample.read_text().splitlines() if line.strip()]
    from labs.sft.data import load_splits
    train = load_splits(str(sample))["train"]
    for r_ix, row in enumerate(train):
        src_ix = raw.index({k: v for k, v in row.items()}) + 1
        _, html, _, _ = dataset_tab.preview(st, src_ix, str(default_model_dir), 1024, "auto")
        builder = "".join(unescape(t) for t in re.findall(r'<span class="tok-train"[^>]*>(.*?)</span>', html))
        tab, _ = sft_tab_preview(str(default_model_dir), str(sample), "", r_ix, 1024, True)
        sft = "".join(t for t, m in tab if m == "trained")
        assert builder.replace("↵<br>", "\n") == sft
        answers = [m["content"] for m in row["messages"] if m["role"] == "assistant"]
        assert all(a in sft for a in answers)
        assert not any(m["content"] in sft for m in row["messages"] if m["role"] != "assistant")


# --------------------------------------------------------------------------- what a conversation trains on
def _assistant_spans(text: str, msgs: list[dict]) -> list[tuple[int, int]]:
    """Char spans of each assistant turn's content plus its <|im_end|>, found in the rendered string."""
    spans, pos = [], 0
    for m in msgs:
        head = f"<|im_start|>{m['role']}\n"
        start = text.index(head + m["content"] + "<|im_end|>", pos) + len(head)
        end = start + len(m["content"]) + len("<|im_end|>")
        if m["role"] == "assistant":
            spans.append((start, end))
        pos = end
    return spans


def test_a_conversation_trains_every_assistant_turn_and_nothing_else(default_tokenizer):
    """Independently of the code under test: offsets in the rendered chat decide which tokens carry loss."""
    tok = default_tokenizer
    text = tok.apply_chat_template(CHAT, tokenize=False)
    enc = tok(text, return_offsets_mapping=True, add_special_tokens=False)
    t = tokenize_row(tok, sft_row({"messages": CHAT}))
    assert t["input_ids"] == enc["input_ids"] and t["note"] == ""
    spans = _assistant_spans(text, CHAT)
    for (s, e), tid, lab in zip(enc["offset_mapping"], t["input_ids"], t["labels"]):
        inside = any(a <= s and e <= b for a, b in spans)
        if inside:
            assert lab == tid, f"assistant token {tok.decode([tid])!r} at {s} not trained"
        elif not any(s < b and e > a for a, b in spans) and text[s:e] != "\n":
            assert lab == -100, f"token {tok.decode([tid])!r} at {s} outside the assistant turns is trained"
    trained = tok.decode([i for i, lab in zip(t["input_ids"], t["labels"]) if lab != -100])
    assert trained.count("<|im_end|>") == 2 and "Red." in trained and "yellow" in trained
    assert SYSTEM not in trained and "primary colour" not in trained and "please" not in trained
    # the last turn's labels are exactly those of the prompt/completion form of the same conversation
    pc = tokenize_row(tok, {"prompt": CHAT[:4], "completion": CHAT[4:]})
    last = [i for i, lab in zip(pc["input_ids"], pc["labels"]) if lab != -100]
    assert trained.endswith(tok.decode(last))


def test_a_template_that_rewrites_history_falls_back_to_the_last_turn(default_tokenizer):
    """A template that renders an earlier assistant turn differently once more turns follow (as templates
    that drop old reasoning do) cannot be split turn by turn: only the last answer is trained, and said so."""
    tok = copy.deepcopy(default_tokenizer)  # the shared fixture is never changed
    tok.chat_template = ("{% for m in messages %}<|im_start|>{{ m.role }}\n"
                         "{% if m.role == 'assistant' and not loop.last %}[earlier answer]{% else %}{{ m.content }}"
                         "{% endif %}<|im_end|>\n{% endfor %}"
                         "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    t = tokenize_row(tok, {"messages": CHAT})
    assert "only the last assistant turn" in t["note"]
    trained = tok.decode([i for i, lab in zip(t["input_ids"], t["labels"]) if lab != -100])
    assert trained.startswith("Blue, and there is also yellow.<|im_end|>") and "Red." not in trained
    assert "only the last" in row_preview(tok, {"messages": CHAT})[1]["note"]


def test_completion_only_off_and_truncation(default_tokenizer):
    tok = default_tokenizer
    row = {"prompt": CHAT[:4], "completion": CHAT[4:]}
    full = tokenize_row(tok, row, completion_only=False)
    assert full["labels"] == full["input_ids"]
    cut = tokenize_row(tok, row, max_length=5)
    assert len(cut["input_ids"]) == 5 and all(lab == -100 for lab in cut["labels"]) and cut["full_length"] > 5
    assert data.training_mask(tok, row, max_length=5) == []  # the prompt alone fills 5 tokens: TRL drops the row
    toks, report = row_preview(tok, row, 5)
    assert len(toks) == 5 and report["no_trained_token"] == 1 and "whole answer" in report["warning"]
    html = data.mask_html(data.training_mask(tok, row))
    assert html.count('class="tok-train"') == sum(_trained(data.training_mask(tok, row)))


def test_slide7_masking_is_shown_wrong(default_tokenizer):
    side = default_tokenizer.padding_side
    s = data.slide7_labels(default_tokenizer, "Instruction: Say hi\nOutput: ", "Hi there!", max_length=64)
    assert default_tokenizer.padding_side == side  # a shared tokenizer is not changed
    assert s["positions"] == 64 and s["label_positions_trained"] == 64
    assert s["pad_labels_trained"] == 64 - s["target_tokens"] > 50
    assert "pad = EOS" in data.slide7_html(s)
