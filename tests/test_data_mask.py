"""The loss-mask preview: equal to what TRL 1.16's SFTTrainer trains on, and right on the real tokenizer."""
from __future__ import annotations

import pytest

from labs import data

SYSTEM = "You are a terse assistant."
CHAT = [{"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Name a primary colour."},
        {"role": "assistant", "content": "Red."},
        {"role": "user", "content": "And another one, please?"},
        {"role": "assistant", "content": "Blue, and there is also yellow."}]


def _rows():
    rows = data.to_sft(data.read_file("assets/formats/instruction.jsonl"), "instruction")
    rows += data.to_sft([{"messages": CHAT}], "messages")
    rows += data.to_sft([{"prompt": "Say hi.", "completion": "Hi!"}, {"prompt": "2+2=", "completion": " 4"}],
                        "prompt_completion", conversational=False)
    return rows


def test_mask_matches_trl_sft_trainer(tiny_model_dir, tmp_path):
    """Our labels == the labels in TRL's own prepared dataset, and the collator keeps the final <|im_end|>."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    conv = [r for r in _rows() if isinstance(r["prompt"], list)]
    std = [r for r in _rows() if isinstance(r["prompt"], str)]
    for rows, max_length in ((conv, None), (conv, 50), (std, None)):
        args = SFTConfig(output_dir=str(tmp_path / "out"), use_cpu=True, report_to=[], max_length=max_length,
                         per_device_train_batch_size=2)
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok)
        prepared = trainer.train_dataset
        ours = [data.training_mask(tok, r, max_length=max_length) for r in rows]
        ours = [m for m in ours if m]  # TRL drops rows with nothing left to train on
        if max_length == 50:
            assert len(ours) < len(rows)  # some prompts alone fill 50 tokens
        assert len(prepared) == len(ours)
        for ex, mask in zip(prepared, ours):
            assert ex["input_ids"] == [i for _, i, _ in mask]
            assert [lab != -100 for lab in ex["labels"]] == [t for *_, t in mask]
        # the collator pads with pad == eos == <|im_end|>; the real end-of-turn token keeps its label
        batch = trainer.data_collator([prepared[0], prepared[1]])
        for k in range(2):
            n = len(prepared[k]["input_ids"])
            labels = batch["labels"][k].tolist()
            if max_length is None:
                last_eos = max(j for j, t in enumerate(prepared[k]["input_ids"]) if t == tok.eos_token_id)
                assert labels[last_eos] == tok.eos_token_id
            assert all(x == -100 for x in labels[n:])
    assert tok.pad_token_id == tok.eos_token_id


def _assistant_spans(text: str, msgs: list[dict]) -> list[tuple[int, int]]:
    """Char spans of each assistant turn's content plus its <|im_end|>, found from the rendered string."""
    spans, pos = [], 0
    for m in msgs:
        head = f"<|im_start|>{m['role']}\n"
        start = text.index(head + m["content"] + "<|im_end|>", pos) + len(head)
        end = start + len(m["content"]) + len("<|im_end|>")
        if m["role"] == "assistant":
            spans.append((start, end))
        pos = end
    return spans


@pytest.mark.parametrize("all_turns", [False, True])
def test_real_tokenizer_trains_assistant_and_end_of_turn_only(default_tokenizer, all_turns):
    """Independently of TRL: offsets of the rendered chat decide which tokens must carry loss."""
    tok = default_tokenizer
    rows = data.to_sft([{"messages": CHAT}], "messages", all_turns=all_turns)
    assert len(rows) == (2 if all_turns else 1)
    trained_turns = set()
    for row in rows:
        msgs = row["prompt"] + row["completion"]
        text = tok.apply_chat_template(msgs, tokenize=False)
        enc = tok(text, return_offsets_mapping=True, add_special_tokens=False)
        mask = data.training_mask(tok, row)
        assert [i for _, i, _ in mask] == enc["input_ids"]
        answer = _assistant_spans(text, msgs)[-1]   # the completion: the last assistant turn
        for (tok_s, tok_e), (_, tid, trained) in zip(enc["offset_mapping"], mask):
            inside = answer[0] <= tok_s and tok_e <= answer[1]
            if inside:
                assert trained, f"assistant token {tid} at {tok_s} not trained"
            elif tok_e <= answer[0]:
                assert not trained, f"prompt token {tok.decode([tid])!r} at {tok_s} is trained"
        # the token closing the answer is <|im_end|> and is trained
        end_idx = next(k for k, (s, e) in enumerate(enc["offset_mapping"]) if e == answer[1])
        assert mask[end_idx][1] == tok.convert_tokens_to_ids("<|im_end|>") and mask[end_idx][2]
        # no system or user token is trained (everything before the answer was checked above)
        trained_text = "".join(t for t, _, tr in mask if tr)
        assert SYSTEM not in trained_text and "primary colour" not in trained_text and "please" not in trained_text
        assert trained_text.startswith(row["completion"][0]["content"])
        trained_turns.add(row["completion"][0]["content"])
    if all_turns:
        assert trained_turns == {"Red.", "Blue, and there is also yellow."}


def test_messages_form_trains_everything_and_truncation(default_tokenizer):
    tok = default_tokenizer
    row = data.to_sft([{"messages": CHAT}], "messages", form="messages")[0]
    mask = data.training_mask(tok, row)
    assert all(t for *_, t in mask)  # TRL 1.16 cannot mask SmolLM2's template for messages rows
    pc = data.to_sft([{"messages": CHAT}], "messages")[0]
    assert data.training_mask(tok, pc, max_length=5) == []  # prompt alone fills 5 tokens: TRL drops the row
    assert len(data.training_mask(tok, pc, max_length=80)) <= 80
    html = data.mask_html(data.training_mask(tok, pc))
    assert "tok-train" in html and "tok-masked" in html


def test_slide7_masking_is_shown_wrong(default_tokenizer):
    s = data.slide7_labels(default_tokenizer, "Instruction: Say hi\nOutput: ", "Hi there!", max_length=64)
    assert s["positions"] == 64 and s["label_positions_trained"] == 64
    assert s["pad_labels_trained"] == 64 - s["target_tokens"] > 50
    assert "pad = EOS" in data.slide7_html(s)
