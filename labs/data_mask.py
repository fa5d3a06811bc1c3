"""Which tokens of a training row carry loss: exactly what TRL 1.16's SFTTrainer computes.

    from labs import data, models
    tok = models.load_tokenizer()
    row = data.to_sft(rows, "instruction")[0]          # {"prompt": [...], "completion": [...]}
    for token, token_id, trained in data.training_mask(tok, row): ...

TRL 1.16 (trl/trainer/sft_trainer.py, `_prepare_dataset`):
  * prompt/completion, conversational: prompt_ids = chat template of the prompt with the generation
    prompt; ids = chat template of prompt + completion; the completion starts where the two stop
    agreeing (`common_prefix_length`); `completion_only_loss` (on by default for these rows) sets
    labels of the prompt part to -100.
  * prompt/completion, plain strings: EOS is appended to the completion, then the same split.
  * messages / text: every token carries loss (assistant_only_loss cannot patch SmolLM2's template).
  * max_length: keep the first max_length tokens; a row left with no trained token is dropped.
  * The collator pads labels with -100 separately from input_ids, so a real `<|im_end|>` inside the
    row keeps its label even though SmolLM2's pad token is the same token.
"""
from __future__ import annotations

import html

from labs.data_detect import DataError


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


def training_ids(tokenizer, row: dict, completion_only_loss: bool | None = None) -> tuple[list[int], list[int]]:
    """(input_ids, labels) for one SFT row, labels -100 where no loss is computed."""
    if "prompt" in row and "completion" in row:
        prompt, completion = row["prompt"], row["completion"]
        if isinstance(prompt, list) != isinstance(completion, list):
            raise DataError("prompt and completion must both be text or both be message lists")
        if isinstance(prompt, list):
            p_ids = _ids(tokenizer, prompt, add_generation_prompt=True)
            ids = _ids(tokenizer, prompt + completion)
        else:
            eos = tokenizer.eos_token
            if not completion.endswith(eos):
                completion = completion + eos
            p_ids = _ids(tokenizer, prompt)
            ids = _ids(tokenizer, prompt + completion)
        n = _common_prefix(p_ids, ids)
        only = True if completion_only_loss is None else completion_only_loss
        labels = [-100 if (only and k < n) else t for k, t in enumerate(ids)]
        return ids, labels
    if "messages" in row:
        ids = _ids(tokenizer, row["messages"])
        return ids, list(ids)
    if "text" in row:
        text = row["text"]
        if not text.endswith(tokenizer.eos_token):
            text += tokenizer.eos_token
        ids = _ids(tokenizer, text)
        return ids, list(ids)
    raise DataError(f"not an SFT row (needs prompt/completion, messages or text); keys: {', '.join(row)}")


def training_mask(tokenizer, row: dict, max_length: int | None = None,
                  completion_only_loss: bool | None = None) -> list[tuple[str, int, bool]]:
    """[(token text, token id, trained)] for the sequence TRL trains on, truncated to max_length.

    Returns [] when truncation leaves no trained token (TRL drops such a row)."""
    ids, labels = training_ids(tokenizer, row, completion_only_loss)
    if max_length is not None:
        ids, labels = ids[:max_length], labels[:max_length]
        if all(x == -100 for x in labels):
            return []
    toks = tokenizer.convert_ids_to_tokens(ids)
    return [(tokenizer.convert_tokens_to_string([t]), i, lab != -100) for t, i, lab in zip(toks, ids, labels)]


def sequence_length(tokenizer, row: dict) -> int:
    return len(training_ids(tokenizer, row)[0])


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
    side = tokenizer.padding_side
    tokenizer.padding_side = "right"
    try:
        p = tokenizer(prompt, truncation=True, padding="max_length", max_length=max_length)["input_ids"]
        t = tokenizer(target, truncation=True, padding="max_length", max_length=max_length)["input_ids"]
    finally:
        tokenizer.padding_side = side
    pad = tokenizer.pad_token_id
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


def length_figure(lengths: list[int], max_length: int):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6, 2.6), layout="constrained")
    ax = fig.add_subplot()
    if lengths:
        ax.hist(lengths, bins=min(40, max(5, len(set(lengths)))), color="#5470c6")
    longest = max(lengths, default=0)
    if longest * 1.5 >= max_length or not lengths:
        ax.axvline(max_length, color="#c0392b", linestyle="--", label=f"max length {max_length}")
    else:  # short rows: keep the x-axis on the data and say where the limit is instead of squeezing them
        ax.plot([], [], color="#c0392b", linestyle="--", label=f"max length {max_length} (off the axis →)")
    st = length_stats(lengths, max_length)
    ax.set_title(f"{st['rows']} rows · {st['truncated']} longer than {max_length} tokens · longest {st['longest']}",
                 fontsize=9)
    ax.set_xlabel("tokens per training sequence")
    ax.set_ylabel("rows")
    ax.legend(fontsize=8)
    return fig


def balance_figure(counts: dict, title: str = "label distribution"):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(5, 2.4), layout="constrained")
    ax = fig.add_subplot()
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    ax.bar([str(k) for k, _ in items], [v for _, v in items], color="#91cc75")
    for k, (_, v) in enumerate(items):
        ax.text(k, v, str(v), ha="center", va="bottom", fontsize=8)
    ax.set_title(title if items else "no label column", fontsize=9)
    return fig
