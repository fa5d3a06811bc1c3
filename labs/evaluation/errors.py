"""Error analysis: each wrong answer in one bucket, the worst rows by loss, and the table's filters.

    from labs.evaluation.errors import bucket_of, bucket_counts, select
    bucket_of("classification", "Positive review", True, ["negative"], ["negative", "positive"])  # 'format_error'
    select(rows, show="incorrect", category="negative", min_chars=0, max_chars=200)

Buckets, checked in this order (the first that fits names the error):
  empty         the answer is blank (only whitespace).
  truncated     generation stopped at max_new_tokens while the model was still answering, or the answer
                is a strict beginning of a reference (it was cut short).
  wrong_label   classification: the answer is a label of the set, but not the reference's.
  format_error  classification: the answer is no label of the set ("Positive review", "pos") — such an
                answer is counted wrong, never mapped to a label; generation whose reference is a JSON
                object or YAML mapping: the answer does not parse as that kind of mapping, or has none of
                the reference's keys.
  other         anything else wrong: the expected shape with the wrong content (a wrong span, a wrong
                field value, a different sentence).
"""
from __future__ import annotations

from collections import Counter

from labs.evaluation.metrics import normalize, parse_mapping

BUCKETS = ("wrong_label", "format_error", "truncated", "empty", "other")


def bucket_of(task: str, prediction: str, finished: bool | None, references: list[str],
              labels: list[str] | None = None) -> str:
    """The bucket of one wrong answer (see the module docstring)."""
    p = str(prediction).strip()
    if not p:
        return "empty"
    if finished is False or any(normalize(r).startswith(normalize(p)) and normalize(p) != normalize(r)
                                for r in references if r):
        return "truncated"
    if task == "classification":
        return "wrong_label" if normalize(p) in {normalize(x) for x in labels or []} else "format_error"
    if task == "generation" and references:
        kind, want = parse_mapping(references[0])
        got = parse_mapping(p, kind)[1] if want is not None else None
        if want is not None and (got is None or not {normalize(k) for k in got} & {normalize(k) for k in want}):
            return "format_error"
    return "other"


def annotate(rows: list[dict], task: str, labels: list[str] | None = None) -> list[dict]:
    """Add 'bucket' (None when correct) to prediction rows ({prediction, finished, references, correct})."""
    for r in rows:
        r["bucket"] = None if r["correct"] else bucket_of(task, r["prediction"], r.get("finished"),
                                                          r["references"], labels)
    return rows


def bucket_counts(rows: list[dict]) -> dict[str, int]:
    c = Counter(r["bucket"] for r in rows if r.get("bucket"))
    return {b: c.get(b, 0) for b in BUCKETS}


def select(rows: list[dict], show: str = "incorrect", category: str | None = None, min_chars: int = 0,
           max_chars: int | None = None, bucket: str | None = None, n: int = 200) -> list[dict]:
    """Rows for the error table. show: 'incorrect' (every wrong answer), 'worst' (highest loss per trained
    token first, right or wrong) or 'all'. Length is the input's length in characters."""
    out = [r for r in rows
           if (not category or r.get("category") == category)
           and len(r.get("input", "")) >= (min_chars or 0)
           and (max_chars is None or len(r.get("input", "")) <= max_chars)
           and (not bucket or r.get("bucket") == bucket)]
    if show == "incorrect":
        out = [r for r in out if r.get("correct") is False]
    elif show == "worst":
        out = sorted((r for r in out if r.get("loss") is not None), key=lambda r: -r["loss"])
    return out[:n]
