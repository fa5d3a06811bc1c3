"""Data for the SFT recipe: find the dataset and bring its rows into an SFT form.

    from labs.sft.data import load_splits
    splits = load_splits("instruct", tasks=["extraction"])   # {"train": [...], "validation": [...], "test": [...]}

A dataset is the bundled set's name ("instruct" -> assets/instruct/*.jsonl), a dataset saved by the
Dataset builder (labs.data.load_saved), or a data file (read by labs.data.read_rows; one file is
split 90/10 into train and validation, seeded). Rows may be prompt/completion (plain strings or chat
lists), `messages` (every assistant turn is trained), instruction/output, or `text`: see
labs.data.mask, whose tokenize_row the trainer and both previews share. Raw task rows are asked the
way the evaluation asks them (labs.data.formats.conversation, also labs.evaluation.data): text/label
rows as "Label this text with one of: <the training split's labels>", SQuAD-style context/question/
answers rows as a span to copy from the context, so a run is scored on exactly the prompt it learned.
A folder holding train.jsonl (validation.jsonl, test.jsonl) is a dataset too (assets/qa_varied).
"""
from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from labs.data.detect import DataError
from labs.data.io import load_saved, read_rows
from labs.data.mask import prompt_of, reference, sft_row  # noqa: F401 - the recipe's names for a row

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = {"instruct": ROOT / "assets" / "instruct"}


def _raw_splits(name: str) -> dict[str, list[dict]]:
    if name in BUNDLED:
        d = BUNDLED[name]
        return {s: read_rows(d / f"{s}.jsonl") for s in ("train", "validation", "test") if (d / f"{s}.jsonl").exists()}
    p = Path(name).expanduser()
    if p.is_dir() and (p / "train.jsonl").is_file():
        return {s: read_rows(p / f"{s}.jsonl") for s in ("train", "validation", "test") if (p / f"{s}.jsonl").exists()}
    if p.suffix == ".jsonl" or p.is_file():
        if not p.exists():
            raise DataError(f"dataset '{name}': file not found")
        rows = read_rows(p)
        random.Random(0).shuffle(rows)
        n_val = max(1, len(rows) // 10)
        return {"train": rows[n_val:], "validation": rows[:n_val]}
    try:
        dd = load_saved(name)
    except DataError as e:
        raise DataError(f"dataset '{name}': not 'instruct', not a .jsonl file, and {e}") from None
    return {s: [dict(r) for r in dd[s]] for s in dd}


TASK_FORMATS = ("classification", "extractive_qa")


def task_format(rows: list[dict]) -> str | None:
    """'classification' or 'extractive_qa' for raw task rows (labs.data.detect), else None."""
    from labs.data.detect import detect_format
    try:
        fmt = detect_format(rows)[0]
    except DataError:
        return None
    return fmt if fmt in TASK_FORMATS else None


def prompted(raw: dict[str, list[dict]], fmt: str) -> dict[str, list[dict]]:
    """Raw classification / extractive QA splits as chat prompt/completion rows (the evaluation's prompt)."""
    from labs.data.detect import apply_mapping
    from labs.data.formats import conversation
    mapped = {s: apply_mapping(rows, fmt) for s, rows in raw.items()}
    labels = sorted({str(r["label"]) for r in mapped["train"] if r.get("label") not in (None, "")}) \
        if fmt == "classification" else None
    out = {}
    for split, rows in mapped.items():
        out[split] = []
        for i, r in enumerate(rows):
            try:
                msgs = conversation(r, fmt, labels)
            except ValueError as e:
                raise DataError(f"{split} row {i + 1}: {e}") from None
            row = {"prompt": msgs[:-1], "completion": msgs[-1:]}
            if "task" in r:
                row["task"] = r["task"]
            out[split].append(row)
    return out


def load_splits(name: str, tasks: list[str] | None = None, max_train_rows: int = 0) -> dict[str, list[dict]]:
    """Train/validation/test rows in an SFT form (labs.data.mask.sft_row); `tasks` keeps rows whose 'task' is listed."""
    raw = _raw_splits(name)
    if not raw.get("train"):
        raise DataError(f"dataset '{name}': no training rows")
    out = {}
    fmt = task_format(raw["train"])
    for split, rows in raw.items():
        if tasks and any("task" in r for r in rows):
            rows = [r for r in rows if r.get("task") in tasks]
        out[split] = rows if fmt else [sft_row(r) for r in rows]
    if fmt and out["train"]:
        out = prompted(out, fmt)
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
