"""Which tokens of an SFT row carry loss: the ONE function every view and the trainer call.

    from labs.data.mask import sft_row, tokenize_row, training_mask
    row = sft_row({"messages": [...]})                      # the forms below, checked
    t = tokenize_row(tokenizer, row, max_length=512)        # {"input_ids", "labels", "full_length", "note"}
    training_mask(tokenizer, row, max_length=512)           # [(token text, token id, trained)] for previews

The SFT trainer tokenizes its rows here and hands TRL the ids and labels as they are; the Dataset
builder's and the SFT tab's previews draw these same labels (tests/test_mask_truth.py holds the three
together, and holds this function to TRL 1.16's own tokenization where TRL tokenizes: a test).

An SFT row takes one of three forms (`sft_row` turns the other shapes into one of them):
  * prompt/completion as message lists (TRL's conversational form): prompt = the chat template of the
    prompt with the generation prompt, full = the template of prompt + completion; the completion
    starts where the two stop agreeing (TRL's rule); labels are -100 before it.
  * prompt/completion as plain strings (TRL's standard form): EOS is appended to the completion, no
    chat template; the same split (TRL's rule).
  * messages (a whole conversation): every assistant turn carries loss, with its end-of-turn token;
    system and user turns do not. TRL 1.16's `assistant_only_loss` needs `{% generation %}` markers
    that SmolLM2's template (like most) lacks, so the lab finds each assistant turn by rendering the
    conversation turn by turn: the tokens between "history + generation prompt" and "history + this
    turn" are that turn. A template that renders earlier turns differently once later ones follow
    (e.g. one that drops old reasoning) fails that check; then only the last assistant turn is
    trained, and `note` says so.
  * text: every token, with EOS appended (TRL's rule).
completion_only=False trains every token of any form. max_length keeps the first max_length tokens;
a row left with no trained token adds nothing to the loss (TRL drops such rows; so do the previews).
The collator pads labels with -100 apart from input_ids, so a real `<|im_end|>` keeps its label
although SmolLM2's pad token is the same token.
"""
from __future__ import annotations

import html

from labs.data.detect import DataError


# --------------------------------------------------------------------------- the forms of an SFT row
def _is_chat(v) -> bool:
    return isinstance(v, list) and all(isinstance(m, dict) and "role" in m and "content" in m for m in v)


def sft_row(row: dict) -> dict:
    """One row in an SFT form: {"prompt", "completion"} (both message lists or both strings),
    {"messages"} or {"text"}; an Alpaca-style instruction/input/output row becomes a chat.
    A 'task' column is kept (the held-out metrics report per task)."""
    if "messages" in row:
        msgs = list(row["messages"])
        if not _is_chat(msgs):
            raise DataError("a messages row must be a list of {role, content} turns")
        if not any(m["role"] == "assistant" for m in msgs[1:]):
            raise DataError("a messages row has no assistant turn after the first turn: nothing to learn")
        out = {"messages": msgs}
    elif "prompt" in row and "completion" in row:
        p, c = row["prompt"], row["completion"]
        if isinstance(p, str) and isinstance(c, str):
            out = {"prompt": p, "completion": c}
        elif _is_chat(p) and _is_chat(c):
            out = {"prompt": list(p), "completion": list(c)}
        elif isinstance(p, str) and _is_chat(c) or _is_chat(p) and isinstance(c, str):
            raise DataError("prompt and completion must both be text or both be message lists")
        else:
            raise DataError("prompt and completion must be text or lists of {role, content} turns")
    elif "instruction" in row and ("output" in row or "response" in row):
        prompt = row["instruction"] + (("\n\n" + row["input"]) if row.get("input") else "")
        out = {"prompt": [{"role": "user", "content": prompt}],
               "completion": [{"role": "assistant", "content": row.get("output", row.get("response"))}]}
    elif "text" in row:
        out = {"text": str(row["text"])}
    else:
        raise DataError(f"a row has none of prompt/completion, messages, instruction/output or text (keys: "
                        f"{', '.join(sorted(row))[:120]})")
    if "task" in row:
        out["task"] = row["task"]
    return out


def prompt_of(row: dict):
    """What a model is asked to continue, for generation: the chat up to the last assistant turn, or the
    plain prompt string (standard form). None for text rows."""
    if "messages" in row:
        msgs = row["messages"]
        last = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
        return msgs[:last]
    return row.get("prompt")


def reference(row: dict) -> str:
    """The expected answer: the completion, or the last assistant turn of a conversation."""
    if "messages" in row:
        return next(m["content"] for m in reversed(row["messages"]) if m["role"] == "assistant")
    c = row["completion"]
    return c[-1]["content"] if isinstance(c, list) else str(c)


def prompt_text(row: dict) -> str:
    """The prompt as one line of text, for tables."""
    p = prompt_of(row)
    if isinstance(p, list):
        return p[-1]["content"] if p else ""
    return str(p or row.get("text", ""))


# --------------------------------------------------------------------------- the one tokenization
def _ids(tokenizer, x, **kw) -> list[int]:
    if isinstance(x, list):
        out = tokenizer.apply_chat_template(x, tokenize=True, return_dict=True, **kw)["input_ids"]
    else:
        out = tokenizer(text=x)["input_ids"]
    return list(out)


def _common_prefix(a, b) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _assistant_spans(tokenizer, msgs: list[dict], ids: list[int]) -> list[tuple[int, int]] | None:
    """[start, end) token spans of every assistant turn in `ids`, or None when the template is not
    prefix-consistent (an earlier turn renders differently once later turns follow)."""
    spans = []
    for k, m in enumerate(msgs):
        if m["role"] != "assistant" or k == 0:
            continue
        before = _ids(tokenizer, msgs[:k], add_generation_prompt=True)
        upto = _ids(tokenizer, msgs[:k + 1])
        if ids[:len(upto)] != upto or upto[:len(before)] != before:
            return None
        spans.append((len(before), len(upto)))
    return spans


def tokenize_row(tokenizer, row: dict, max_length: int | None = None, completion_only: bool = True) -> dict:
    """{'input_ids', 'labels', 'full_length', 'note'} for one SFT row (see the module docstring):
    labels are -100 where no loss is computed; ids and labels are cut to max_length."""
    row = row if ("messages" in row or "text" in row or "prompt" in row) else sft_row(row)
    note = ""
    if "messages" in row:
        msgs = row["messages"]
        ids = _ids(tokenizer, msgs)
        keep = [True] * len(ids)
        if completion_only:
            spans = _assistant_spans(tokenizer, msgs, ids)
            if spans is None:  # fall back to the last assistant turn, TRL's prompt/completion rule
                last = max(i for i, m in enumerate(msgs) if m["role"] == "assistant")
                spans = [(_common_prefix(_ids(tokenizer, msgs[:last], add_generation_prompt=True), ids), len(ids))]
                note = ("this chat template renders earlier turns differently once later turns follow, so only "
                        "the last assistant turn is trained")
            keep = [False] * len(ids)
            for a, b in spans:
                keep[a:b] = [True] * (b - a)
        labels = [t if k else -100 for t, k in zip(ids, keep)]
    elif "prompt" in row:
        prompt, completion = row["prompt"], row["completion"]
        if isinstance(prompt, list) != isinstance(completion, list):
            raise DataError("prompt and completion must both be text or both be message lists")
        if isinstance(prompt, list):
            p_ids = _ids(tokenizer, prompt, add_generation_prompt=True)
            ids = _ids(tokenizer, prompt + completion)
        else:
            if not completion.endswith(tokenizer.eos_token):
                completion = completion + tokenizer.eos_token
            p_ids = _ids(tokenizer, prompt)
            ids = _ids(tokenizer, prompt + completion)
        n = _common_prefix(p_ids, ids) if completion_only else 0
        labels = [-100 if k < n else t for k, t in enumerate(ids)]
    elif "text" in row:
        text = row["text"]
        if not text.endswith(tokenizer.eos_token):
            text += tokenizer.eos_token
        ids = _ids(tokenizer, text)
        labels = list(ids)
    else:
        raise DataError(f"not an SFT row (needs prompt/completion, messages or text); keys: {', '.join(row)}")
    full = len(ids)
    if max_length is not None:
        ids, labels = ids[:max_length], labels[:max_length]
    return {"input_ids": ids, "labels": labels, "full_length": full, "note": note}


def truncation_report(tokenized: list[dict], max_length: int) -> dict:
    """How many rows max_length cuts, and how many lose their whole answer (they then train nothing)."""
    cut = sum(r.get("full_length", len(r["input_ids"])) > max_length for r in tokenized)
    empty = sum(all(lab == -100 for lab in r["labels"]) for r in tokenized)
    out = {"rows": len(tokenized), "truncated": cut, "no_trained_token": empty, "max_length": max_length}
    if empty:
        out["warning"] = (f"max_length {max_length} cuts the whole answer of {empty} of {len(tokenized)} rows: "
                          f"they add nothing to the loss. Raise max_length or shorten the prompts.")
    elif cut:
        out["warning"] = f"max_length {max_length} truncates {cut} of {len(tokenized)} rows (their answers are cut)."
    return out


def training_mask(tokenizer, row: dict, max_length: int | None = None,
                  completion_only: bool = True) -> list[tuple[str, int, bool]]:
    """[(token text, token id, trained)] of the sequence the trainer trains on, cut to max_length.

    Returns [] when truncation leaves no trained token (TRL drops such a row)."""
    toks = row_preview(tokenizer, row, max_length, completion_only)[0]
    return toks if any(t for *_, t in toks) else []


def row_preview(tokenizer, row: dict, max_length: int | None = None,
                completion_only: bool = True) -> tuple[list[tuple[str, int, bool]], dict]:
    """training_mask's tokens plus the row's truncation_report (its 'warning' when max_length cuts it)
    and the tokenizer's 'note' (when a chat template forces the last-turn fallback)."""
    t = tokenize_row(tokenizer, sft_row(row), max_length, completion_only)
    report = truncation_report([t], max_length if max_length is not None else t["full_length"])
    if t["note"]:
        report["note"] = t["note"]
    toks = tokenizer.convert_ids_to_tokens(t["input_ids"])
    return [(tokenizer.convert_tokens_to_string([s]), i, lab != -100)
            for s, i, lab in zip(toks, t["input_ids"], t["labels"])], report


def sequence_length(tokenizer, row: dict) -> int:
    return tokenize_row(tokenizer, sft_row(row))["full_length"]


def length_stats(lengths: list[int], max_length: int) -> dict:
    n_trunc = sum(1 for n in lengths if n > max_length)
    return {"rows": len(lengths), "max_length": max_length, "truncated": n_trunc,
            "longest": max(lengths, default=0), "mean": round(sum(lengths) / max(1, len(lengths)), 1)}


# --------------------------------------------------------------------------- the course's slide 7
def slide7_labels(tokenizer, prompt: str, target: str, max_length: int = 512) -> dict:
    """What the course's slide-7 code trains on: prompt and target each padded to max_length, labels=target.

    Returns the aligned positions [(input token, label token, label is pad)] and counts that show why
    it is wrong: the answer never appears in the input, position k of the prompt is taught to predict
    token k of the answer (not the next token), and every pad position carries loss (labels are not
    -100) — with SmolLM2 pad == EOS, so the model is taught to emit EOS hundreds of times."""
    pad = tokenizer.pad_token_id
    # padding="max_length" on the right, done by hand: the tokenizer may be shared, so it is never mutated

    def padded(text):
        ids = tokenizer(text)["input_ids"][:max_length]
        return ids + [pad] * (max_length - len(ids))
    p, t = padded(prompt), padded(target)
    n_target = len(tokenizer(target)["input_ids"])
    n_prompt = len(tokenizer(prompt)["input_ids"])
    conv = tokenizer.convert_ids_to_tokens
    pairs = [(tokenizer.convert_tokens_to_string([a]), tokenizer.convert_tokens_to_string([b]), bid == pad)
             for a, b, bid in zip(conv(p), conv(t), t)]
    return {"pairs": pairs, "positions": len(t), "label_positions_trained": sum(1 for x in t if x != -100),
            "pad_labels_trained": sum(1 for x in t if x == pad), "target_tokens": n_target,
            "prompt_tokens": n_prompt}


# --------------------------------------------------------------------------- rendering
def mask_html(mask: list[tuple[str, int, bool]], max_tokens: int = 2000) -> str:
    """Tokens as spans: trained ones highlighted, masked ones dimmed; hover shows the token id."""
    if not mask:
        return "<p><em>Nothing left to train on after truncation: TRL drops this row.</em></p>"
    spans = []
    for tok, tid, trained in mask[:max_tokens]:
        cls = "tok-train" if trained else "tok-masked"
        shown = html.escape(tok).replace("\n", "↵<br>")
        spans.append(f'<span class="{cls}" title="id {tid}{" · trained" if trained else " · masked"}">{shown}</span>')
    n_tr = sum(1 for *_, t in mask if t)
    more = f" (first {max_tokens} shown)" if len(mask) > max_tokens else ""
    return ("<style>.tok-train{background:#c8f7c5;color:#0b3d0b;border-bottom:2px solid #2e7d32}"
            ".tok-masked{opacity:.45;background:#eee;color:#333}.tokseq span{font-family:monospace;"
            "white-space:pre-wrap;margin:0 1px;border-radius:2px}</style>"
            f"<p><b>{n_tr}</b> of <b>{len(mask)}</b> tokens carry loss (highlighted); masked tokens are dimmed{more}.</p>"
            f'<div class="tokseq">{"".join(spans)}</div>')


def slide7_html(s: dict, show: int = 48) -> str:
    rows = "".join(
        f"<tr><td>{k}</td><td><code>{html.escape(a)}</code></td><td><code>{html.escape(b)}</code>"
        f"{' <em>(pad = EOS, still trained)</em>' if pad else ''}</td></tr>"
        for k, (a, b, pad) in enumerate(s["pairs"][:show]))
    return (f"<p>The course's slide 7 pads prompt and target to {s['positions']} tokens each and uses the padded "
            f"target as labels for the prompt. Result: <b>{s['label_positions_trained']}</b> label positions carry "
            f"loss, of which <b>{s['pad_labels_trained']}</b> are padding (SmolLM2's pad is its EOS, so the model "
            f"is drilled to stop); the {s['target_tokens']} answer tokens never appear in the input; and position k "
            "of the prompt is taught to predict token k of the answer instead of the next token. The correct mask "
            "(above) feeds prompt + answer as one sequence and trains only the answer and its end-of-turn token.</p>"
            f'<div style="max-height:360px;overflow-y:auto"><p>First {min(show, len(s["pairs"]))} of '
            f'{s["positions"]} positions:</p>'
            f"<table><tr><th>pos</th><th>input token</th><th>label token</th></tr>{rows}</table></div>")
