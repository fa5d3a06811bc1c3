"""Dataset formats, part 1: which shape rows have, and column mappings (conversion: labs.data.formats).

Formats the lab reads (detected from the column names, overridable with a column mapping):

    text                 text
    instruction          instruction / input (optional) / output
    prompt_completion    prompt / completion            (strings or message lists)
    messages             messages: [{role, content}, ...]
    sharegpt             conversations: [{from, value}, ...]
    preference           prompt / chosen / rejected     (strings or message lists)
    preference_implicit  chosen / rejected holding whole transcripts ("\\n\\nHuman: ...\\n\\nAssistant: ...")
    preference_ab        prompt / response_A / response_B / preference ("A" or "B")
    unpaired_preference  prompt / completion / label    (label true = good, false = bad; for KTO)
    classification       text / label
    extractive_qa        context / question / answers   ({"text": [...], "answer_start": [...]})
    prompt_only          prompt                         (no answers: for generation, labeling and rating)
"""
from __future__ import annotations

import re

from labs.errors import LabError

FORMATS = {
    "text": ("text",),
    "instruction": ("instruction", "input", "output"),
    "prompt_completion": ("prompt", "completion"),
    "messages": ("messages",),
    "sharegpt": ("conversations",),
    "preference": ("prompt", "chosen", "rejected"),
    "preference_implicit": ("chosen", "rejected"),
    "preference_ab": ("prompt", "response_A", "response_B", "preference"),
    "unpaired_preference": ("prompt", "completion", "label"),
    "classification": ("text", "label"),
    "extractive_qa": ("context", "question", "answers"),
    "prompt_only": ("prompt",),
}
OPTIONAL = {"instruction": {"input"}}
# Column names people use for the same thing; read as the canonical name when it is missing.
ALIASES = {
    "output": ("response", "answer", "target"),
    "completion": ("response", "answer"),
    "prompt": ("question", "query"),
    "text": ("sentence", "review", "content", "passage"),
    "label": ("sentiment", "category", "class"),
}
TRUE_LABELS = {"true", "1", "good", "yes", "desirable", "positive", "thumbs_up", "up"}
FALSE_LABELS = {"false", "0", "bad", "no", "undesirable", "negative", "thumbs_down", "down"}


class DataError(LabError):
    """Input the lab cannot use; the message says what, where, and what to do."""


# --------------------------------------------------------------------------- detection
def is_messages(v, role_key="role", content_key="content") -> bool:
    return isinstance(v, list) and bool(v) and all(
        isinstance(m, dict) and role_key in m and content_key in m for m in v)


def _first(rows, col):
    for r in rows[:50]:
        v = r.get(col)
        if v not in (None, ""):
            return v
    return None


def _bool_like(values) -> bool:
    seen = [v for v in values if v is not None]
    if not seen:
        return False
    return all(isinstance(v, bool) or str(v).strip().lower() in TRUE_LABELS | FALSE_LABELS for v in seen)


def columns_of(rows) -> list[str]:
    cols: dict[str, None] = {}
    for r in rows[:1000]:
        for k in r:
            cols.setdefault(k, None)
    return list(cols)


def detect_format(rows: list[dict]) -> tuple[str, str]:
    """Return (format, reason). Raises DataError naming the columns found when nothing fits."""
    if not rows:
        raise DataError("no rows to detect a format from")
    cols = set(columns_of(rows))
    found = ", ".join(columns_of(rows))
    has = cols.__contains__

    def alias(name):
        if has(name):
            return name
        return next((a for a in ALIASES.get(name, ()) if has(a)), None)

    if has("messages") and is_messages(_first(rows, "messages")):
        return "messages", "column 'messages' holds lists of {role, content} messages"
    if has("conversations") and is_messages(_first(rows, "conversations"), "from", "value"):
        return "sharegpt", "column 'conversations' holds ShareGPT turns {from, value}"
    if {"response_A", "response_B", "preference"} <= cols:
        return "preference_ab", "columns response_A / response_B / preference (\"A\" or \"B\") as in the course's slide 9"
    if {"chosen", "rejected"} <= cols:
        if has("prompt"):
            kind = "message lists" if isinstance(_first(rows, "chosen"), list) else "strings"
            return "preference", f"columns prompt / chosen / rejected ({kind}): explicit prompt"
        return "preference_implicit", "columns chosen / rejected without a prompt: the prompt is the shared start of both"
    p, c = alias("prompt"), alias("completion")
    if p and c and has("label") and _bool_like([r.get("label") for r in rows[:200]]):
        return "unpaired_preference", f"columns {p} / {c} / label with a true/false label: unpaired preference (KTO)"
    if has("instruction") and alias("output"):
        return "instruction", f"columns instruction / {'input / ' if has('input') else ''}{alias('output')}"
    if {"context", "question", "answers"} <= cols:
        return "extractive_qa", "columns context / question / answers: extractive QA (SQuAD style)"
    if p and c:
        return "prompt_completion", f"columns {p} / {c}"
    t, lab = alias("text"), alias("label")
    if t and lab:
        return "classification", f"columns {t} / {lab}: text with a label"
    if t:
        return "text", f"column {t}: plain text"
    if p:
        return "prompt_only", f"column {p} without answers: prompts to generate from, label or rate"
    raise DataError(f"no known format fits the columns found ({found}); map them by hand, "
                    "e.g. instruction=question, output=answer")


def required_columns(fmt: str) -> tuple[str, ...]:
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; one of: {', '.join(FORMATS)}")
    return tuple(c for c in FORMATS[fmt] if c not in OPTIONAL.get(fmt, set()))


def parse_mapping(text: str | dict | None) -> dict[str, str]:
    """'instruction=question, output=answer' -> {"instruction": "question", "output": "answer"}."""
    if not text:
        return {}
    if isinstance(text, dict):
        return {k: v for k, v in text.items() if v}
    out = {}
    for part in re.split(r"[,\n]", text):
        if not part.strip():
            continue
        if "=" not in part:
            raise DataError(f"column mapping {part.strip()!r} is not of the form field=column")
        k, v = (s.strip() for s in part.split("=", 1))
        out[k] = v
    return out


def apply_mapping(rows: list[dict], fmt: str, mapping: dict | str | None = None) -> list[dict]:
    """Rename columns so the rows carry `fmt`'s column names (aliases filled in automatically).

    Raises DataError naming the missing column and listing the columns found."""
    mapping = parse_mapping(mapping)
    cols = columns_of(rows)
    for field, col in mapping.items():
        if col not in cols:
            raise DataError(f"mapped column {col!r} (for {field}) is not in the data; columns found: {', '.join(cols)}")
    for field in FORMATS.get(fmt) or required_columns(fmt):
        if field in mapping or field in cols:
            continue
        a = next((a for a in ALIASES.get(field, ()) if a in cols and a not in mapping.values()), None)
        if a:
            mapping[field] = a
    missing = [f for f in required_columns(fmt) if f not in cols and f not in mapping]
    if missing:
        raise DataError(f"format {fmt} needs column {missing[0]!r}, which is missing; "
                        f"columns found: {', '.join(cols)}")
    if not mapping:
        return rows
    return [{**r, **{field: r.get(col) for field, col in mapping.items()}} for r in rows]
