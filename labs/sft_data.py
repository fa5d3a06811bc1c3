"""Data for the SFT recipe: find the dataset, turn rows into prompt/completion, show the loss mask.

    from labs.sft_data import load_splits, mask_preview
    splits = load_splits("instruct", tasks=["extraction"])     # {"train": [...], "validation": [...], "test": [...]}
    mask_preview(tokenizer, splits["train"][0], max_length=512)  # [(token_text, trained?), ...]

A dataset is the bundled set's name ("instruct" -> assets/instruct/*.jsonl), a dataset saved by the
Datasets tab (labs.data.load_saved), or a .jsonl path (a single file is split 90/10 into train and
validation, seeded). Rows may be prompt/completion (plain strings or chat lists), `messages`
(a chat: the conversation up to the last assistant turn becomes the prompt, that turn the
completion, so the loss covers the final answer — which is what the mask preview shows), or `text`.
"""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = {"instruct": ROOT / "assets" / "instruct"}


class DataError(ValueError):
    """The dataset could not be found or read; the message says which and why."""


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DataError(f"dataset {path}: line {i} is not JSON ({e.msg})") from None
    return rows


def to_prompt_completion(row: dict) -> dict:
    """One training row in TRL's conversational prompt/completion form (or {"text": ...})."""
    if "messages" in row:
        msgs = list(row["messages"])
        last = max((i for i, m in enumerate(msgs) if m.get("role") == "assistant"), default=None)
        if last is None:
            raise DataError("a messages row has no assistant turn to learn")
        return {"prompt": msgs[:last], "completion": [msgs[last]]}
    if "prompt" in row and "completion" in row:
        p, c = row["prompt"], row["completion"]
        if isinstance(p, str):
            p = [{"role": "user", "content": p}]
        if isinstance(c, str):
            c = [{"role": "assistant", "content": c}]
        return {"prompt": p, "completion": c}
    if "instruction" in row and ("output" in row or "response" in row):  # Alpaca-style
        prompt = row["instruction"] + (("\n\n" + row["input"]) if row.get("input") else "")
        return {"prompt": [{"role": "user", "content": prompt}],
                "completion": [{"role": "assistant", "content": row.get("output", row.get("response"))}]}
    if "text" in row:
        return {"text": row["text"]}
    raise DataError(f"a row has none of prompt/completion, messages, instruction/output or text (keys: "
                    f"{', '.join(sorted(row))[:120]})")


def reference(row: dict) -> str:
    """The expected answer of a prompt/completion row."""
    c = row["completion"]
    return c[-1]["content"] if isinstance(c, list) else str(c)


def _raw_splits(name: str) -> dict[str, list[dict]]:
    if name in BUNDLED:
        d = BUNDLED[name]
        return {s: _read_jsonl(d / f"{s}.jsonl") for s in ("train", "validation", "test") if (d / f"{s}.jsonl").exists()}
    p = Path(name).expanduser()
    if p.suffix == ".jsonl" or p.is_file():
        if not p.exists():
            raise DataError(f"dataset '{name}': file not found")
        rows = _read_jsonl(p)
        random.Random(0).shuffle(rows)
        n_val = max(1, len(rows) // 10)
        return {"train": rows[n_val:], "validation": rows[:n_val]}
    try:
        from labs import data as saved  # the Datasets tab's store, when present
        dd = saved.load_saved(name)
    except ImportError:
        dd = None
    except Exception as e:  # noqa: BLE001 - their message is for people
        raise DataError(f"dataset '{name}': {e}") from None
    if dd is None:
        raise DataError(f"dataset '{name}': not 'instruct', not a saved dataset and not a .jsonl file")
    return {s: [dict(r) for r in dd[s]] for s in dd}


def load_splits(name: str, tasks: list[str] | None = None, max_train_rows: int = 0) -> dict[str, list[dict]]:
    """Train/validation/test rows in prompt/completion form; `tasks` keeps rows whose 'task' is listed."""
    raw = _raw_splits(name)
    if not raw.get("train"):
        raise DataError(f"dataset '{name}': no training rows")
    out = {}
    for split, rows in raw.items():
        if tasks and any("task" in r for r in rows):
            rows = [r for r in rows if r.get("task") in tasks]
        conv = []
        for r in rows:
            pc = to_prompt_completion(r)
            if "task" in r:
                pc["task"] = r["task"]
            conv.append(pc)
        out[split] = conv
    if not out["train"]:
        raise DataError(f"dataset '{name}': no training rows for tasks {', '.join(tasks or [])}")
    if not out.get("validation"):  # carve a validation split out of train
        rows = out["train"][:]
        random.Random(0).shuffle(rows)
        n = max(1, len(rows) // 10)
        out["validation"], out["train"] = rows[:n], rows[n:]
    if max_train_rows:
        out["train"] = out["train"][:max_train_rows]
    return out


def data_hash(splits: dict[str, list[dict]]) -> str:
    h = hashlib.sha256()
    for s in sorted(splits):
        for r in splits[s]:
            h.update(json.dumps(r, sort_keys=True, ensure_ascii=False).encode())
    return h.hexdigest()[:16]


def training_rows(rows: list[dict]) -> list[dict]:
    """Only the columns TRL reads (extra columns such as 'task' would reach the collator)."""
    keep = ("prompt", "completion") if "prompt" in rows[0] else ("text",)
    return [{k: r[k] for k in keep} for r in rows]


def _ids(tok, messages, **kw) -> list[int]:
    out = tok.apply_chat_template(messages, tokenize=True, return_dict=True, **kw)
    return list(out["input_ids"])


def tokenize_row(tokenizer, row: dict, max_length: int = 512, completion_only: bool = True) -> dict:
    """{'input_ids', 'labels'} for one row: what the trainer gets, and what the mask preview shows.

    TRL's rule for conversational prompt/completion rows: the prompt is rendered with the generation
    prompt, the completion starts where that and the full rendering diverge; labels are -100 on the
    prompt unless completion_only is off; then the row is truncated to max_length.
    """
    if "text" in row:
        ids = tokenizer(row["text"] + tokenizer.eos_token)["input_ids"]
        return {"input_ids": ids[:max_length], "labels": list(ids[:max_length]), "full_length": len(ids)}
    prompt = _ids(tokenizer, row["prompt"], add_generation_prompt=True)
    full = _ids(tokenizer, row["prompt"] + row["completion"])
    n = 0
    while n < min(len(prompt), len(full)) and prompt[n] == full[n]:
        n += 1
    labels = [t if (not completion_only or i >= n) else -100 for i, t in enumerate(full)]
    return {"input_ids": full[:max_length], "labels": labels[:max_length], "full_length": len(full)}


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


def row_preview(tokenizer, row: dict, max_length: int = 512,
                completion_only: bool = True) -> tuple[list[tuple[str, bool]], dict]:
    """mask_preview's tokens plus the row's truncation_report (its 'warning', if max_length cuts it)."""
    if "messages" in row or isinstance(row.get("prompt"), str) or "instruction" in row:
        row = to_prompt_completion(row)
    t = tokenize_row(tokenizer, row, max_length, completion_only)
    toks = [(tokenizer.decode([i]), lab != -100) for i, lab in zip(t["input_ids"], t["labels"])]
    return toks, truncation_report([t], max_length)


def mask_preview(tokenizer, row: dict, max_length: int = 512, completion_only: bool = True) -> list[tuple[str, bool]]:
    """The tokens of one row as the trainer sees them, each with True where the loss is computed."""
    return row_preview(tokenizer, row, max_length, completion_only)[0]
