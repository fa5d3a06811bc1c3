"""Metrics per slice: the answered rows grouped by one column of the data, each group scored like the whole.

    from labs.evaluation.slices import slice_metrics, table
    s = slice_metrics(answered, "confidence", "classification", labels)
    # [{'slice': '[0.6, 0.8)', 'n': 41, 'accuracy': 0.78, 'f1_macro': ...}, ..., {'slice': '[0.9, 1]', ...}]
    table(s, "classification")      # slice, n and the task's main metrics (the report's and the tab's table)

Each row has 'prediction', 'references' and 'row' (the data row, as labs.evaluation.data keeps it); the
column is read from 'row'. Buckets:
  * numeric column (every non-empty value parses as a number): at most MAX_VALUES distinct values -> one
    slice per value; more -> up to BINS quantile bins '[lo, hi)', the last one closed '[lo, hi]'. The edges
    are values of the data (the lower quantiles), deduplicated, so no bin is empty. Ascending. When the
    largest value alone fills the top quantile (a confidence of 1 on most rows), it is a slice of its own
    ('[0.68, 1)', '1') rather than the bulk of the last bin.
  * any other column: one slice per value, the TOP most common by count, the rest in '(other)'.
  * a row without the column (absent, None or '') goes to '(missing)', listed last.
Each slice is scored by metrics.score with the evaluation's label set, so a classification slice that holds
few labels has a lower macro F1 than its accuracy suggests (labels it never sees count as 0).
"""
from __future__ import annotations

import math
from collections import Counter

from labs.evaluation.metrics import score, shown

MAX_VALUES = 6   # a numeric column with this many distinct values or fewer: one slice per value
BINS = 4         # otherwise: quantile bins
TOP = 12         # a categorical column: its most common values, the rest in OTHER
OTHER, MISSING = "(other)", "(missing)"
MAIN = {"classification": ("accuracy", "f1_macro"), "qa": ("exact_match", "f1"),
        "generation": ("exact_match", "rouge_l", "field_accuracy")}


def _missing(v) -> bool:
    return v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, float) and math.isnan(v))


def _number(v) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    try:
        x = float(str(v).strip())
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _num_name(x: float) -> str:
    return f"{x:g}"


def _text_name(v, n: int = 60) -> str:
    s = " ".join(str(v).split())
    return s if len(s) <= n else s[:n - 1] + "…"


def buckets(values: list) -> tuple[list[str], list[str]]:
    """(the bucket name of each value, the bucket names in order)."""
    present = [v for v in values if not _missing(v)]
    nums = [_number(v) for v in present]
    names: list[str | None] = [None] * len(values)
    if present and all(x is not None for x in nums):
        xs = sorted(set(nums))
        if len(xs) <= MAX_VALUES:
            order = [_num_name(x) for x in xs]
            name_of = {x: _num_name(x) for x in xs}
            names = [None if _missing(v) else name_of[_number(v)] for v in values]
        else:
            s = sorted(nums)
            edges = sorted({s[int(q * (len(s) - 1) / BINS)] for q in range(BINS)} | {s[-1]})
            top = s[int((BINS - 1) * (len(s) - 1) / BINS)] == s[-1]  # the largest value fills a bin: its own slice
            order = [f"[{_num_name(lo)}, {_num_name(hi)}{']' if i == len(edges) - 2 and not top else ')'}"
                     for i, (lo, hi) in enumerate(zip(edges, edges[1:]))] + ([_num_name(s[-1])] if top else [])

            def bin_of(x):
                return next((order[i] for i in range(len(edges) - 1) if x < edges[i + 1]), order[-1])
            names = [None if _missing(v) else bin_of(_number(v)) for v in values]
    else:
        counts = Counter(_text_name(v) for v in present)
        order = [k for k, _ in counts.most_common(TOP)]
        kept = set(order)
        names = [None if _missing(v) else (_text_name(v) if _text_name(v) in kept else OTHER) for v in values]
        if len(counts) > TOP:
            order.append(OTHER)
    names = [MISSING if n is None else n for n in names]
    if MISSING in names:
        order.append(MISSING)
    return names, order


def slice_metrics(rows: list[dict], column: str, task: str, labels: list[str] | None = None) -> list[dict]:
    """[{'slice': name, 'n': rows, **metrics}] for the answered rows grouped by `column` (see the module doc)."""
    names, order = buckets([(r.get("row") or {}).get(column) for r in rows])
    out = []
    for name in order:
        group = [r for r, b in zip(rows, names) if b == name]
        m = shown(score(task, [r["prediction"] for r in group], [r["references"] for r in group], labels))
        out.append({"slice": name, "n": len(group),
                    **{k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()}})
    return out


def table(slices: list[dict], task: str) -> list[dict]:
    """slice, n and the task's main metrics, for the report and the tab."""
    keys = [k for k in MAIN.get(task, ()) if any(k in s for s in slices)]
    return [{"slice": s["slice"], "n": s["n"], **{k: s.get(k) for k in keys}} for s in slices]
