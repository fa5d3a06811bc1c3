"""Validation before training, one-click fixes, PII scrubbing, label balance, seeded splits.

    report = validate(rows, fmt, lengths=token_lengths, max_length=1024, near_threshold=0.8)
    rows = apply_fix(rows, report.problem("near_duplicates"))      # drop / dedupe / truncate / balance
    new_rows, changes = scrub_rows(rows, kinds=("email", "phone", "ip", "card"))

Near duplicates: Jaccard similarity of the sets of character 5-grams of the row's text (lower-cased,
punctuation dropped, whitespace collapsed). Candidates come from MinHash (64 hashes, 16 bands of 4 rows: a pair at Jaccard
0.8 becomes a candidate with probability 1-(1-0.8^4)^16 ≈ 99.99%), then every candidate pair is
checked with its exact Jaccard against the threshold, so what is reported is exact, not estimated.
A band bucket holding 500 rows or more is not expanded (it would cost over 125k comparisons), so on data
where hundreds of rows are alike some pairs are missed: tests/test_data_clean.py measures the share found
on 1,000 near-identical reviews and holds it at 90% or more.
"""
from __future__ import annotations

import json
import random
import re
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from labs.data.detect import FORMATS, OPTIONAL
from labs.data.formats import label_bool

SHINGLE = 5
N_HASH, BANDS = 64, 16
DEFAULT_NEAR_THRESHOLD = 0.8
IMBALANCE_RATIO = 3.0  # largest class / smallest class above this is reported


@dataclass
class Problem:
    kind: str                 # "missing", "wrong_type", "exact_duplicates", ...
    title: str                # one line for people
    rows: list[int]           # offending row numbers (1-based)
    fix: str | None = None    # "drop" | "dedupe" | "truncate" | "balance" | None
    detail: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.rows)


@dataclass
class Report:
    n_rows: int
    problems: list[Problem]

    def problem(self, kind: str) -> Problem | None:
        return next((p for p in self.problems if p.kind == kind), None)

    def ok(self) -> bool:
        return not self.problems

    def markdown(self, max_rows: int = 20) -> str:
        if not self.problems:
            return f"**No problems found** in {self.n_rows} rows."
        kinds = "1 kind of problem" if len(self.problems) == 1 else f"{len(self.problems)} kinds of problems"
        lines = [f"**{kinds}** in {self.n_rows} rows:", "",
                 "| problem | count | rows | fix |", "|---|---|---|---|"]
        for p in self.problems:
            shown = ", ".join(map(str, p.rows[:max_rows])) + (" …" if p.count > max_rows else "")
            lines.append(f"| {p.title}{' — ' + p.detail if p.detail else ''} | {p.count} | {shown} | {p.fix or '—'} |")
        return "\n".join(lines)


# --------------------------------------------------------------------------- text of a row
def _strings(v):
    if isinstance(v, str):
        yield v
    elif isinstance(v, dict):
        for x in v.values():
            yield from _strings(x)
    elif isinstance(v, list):
        for x in v:
            yield from _strings(x)


def row_text(row: dict) -> str:
    return "\n".join(s for v in row.values() for s in _strings(v))


def _norm(s: str) -> str:
    """Lower case, punctuation dropped, whitespace collapsed: "Hi, there!" and "hi there" are the same."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", s.lower())).strip()


def shingles(s: str, n: int = SHINGLE) -> set[int]:
    s = _norm(s)
    if len(s) <= n:
        return {zlib.crc32(s.encode())}
    return {zlib.crc32(s[i:i + n].encode()) for i in range(len(s) - n + 1)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / max(1, len(a | b))


def near_duplicate_pairs(texts: list[str], threshold: float = DEFAULT_NEAR_THRESHOLD,
                         seed: int = 0) -> list[tuple[int, int, float]]:
    """(i, j, jaccard) for index pairs i < j whose char-5-gram Jaccard >= threshold (exact, MinHash-blocked)."""
    sets = [shingles(t) for t in texts]
    rng = np.random.default_rng(seed)
    p = np.uint64((1 << 61) - 1)
    a = rng.integers(1, 1 << 31, N_HASH, dtype=np.uint64)
    b = rng.integers(0, 1 << 31, N_HASH, dtype=np.uint64)
    buckets: dict[tuple, list[int]] = defaultdict(list)
    r = N_HASH // BANDS
    for i, s in enumerate(sets):
        x = np.fromiter(s, dtype=np.uint64)
        sig = ((x[:, None] * a[None, :] + b[None, :]) % p).min(axis=0)  # 32-bit x * 31-bit a fits in 64 bits
        for band in range(BANDS):
            buckets[(band, *sig[band * r:(band + 1) * r].tolist())].append(i)
    cand = set()
    for members in buckets.values():
        if 1 < len(members) < 500:
            cand.update((m, n) for k, m in enumerate(members) for n in members[k + 1:])
    out = []
    for i, j in sorted(cand):
        jac = jaccard(sets[i], sets[j])
        if jac >= threshold:
            out.append((i, j, round(jac, 3)))
    return out


# --------------------------------------------------------------------------- validation
_MOJIBAKE = re.compile(r"Ã[\u0080-\u00bf]|â€[\u0090-\u00bf™œ“”˜]|[\x00-\x08\x0b\x0c\x0e-\x1f]")
# U+FFFD: a byte that was not UTF-8 (labs.data.io reads such a line with one U+FFFD per bad byte)
_UNDECODABLE = "\ufffd"


def validate(rows: list[dict], fmt: str, *, lengths: list[int] | None = None, max_length: int | None = None,
             near_threshold: float = DEFAULT_NEAR_THRESHOLD, imbalance_ratio: float = IMBALANCE_RATIO) -> Report:
    """Check rows before training. `lengths` (tokens per row) and `max_length` enable the over-long check."""
    problems: list[Problem] = []
    fields = [f for f in FORMATS.get(fmt, ()) if f not in OPTIONAL.get(fmt, set())]
    missing, wrong = defaultdict(list), defaultdict(list)
    for i, row in enumerate(rows, 1):
        for f in fields:
            v = row.get(f)
            if v is None or (isinstance(v, (str, list, dict)) and not (v.strip() if isinstance(v, str) else v)):
                missing[f].append(i)
            elif f == "label":
                if fmt == "unpaired_preference":
                    try:
                        label_bool(v)
                    except ValueError:
                        wrong[f].append(i)
                elif isinstance(v, (list, dict)):
                    wrong[f].append(i)
            elif f in ("messages", "conversations"):
                if not isinstance(v, list) or not all(isinstance(m, dict) for m in v):
                    wrong[f].append(i)
            elif f == "answers":
                if not isinstance(v, (dict, list, str)):
                    wrong[f].append(i)
            elif f in ("prompt", "chosen", "rejected", "completion"):
                if not isinstance(v, (str, list)):
                    wrong[f].append(i)
            elif not isinstance(v, str):
                wrong[f].append(i)
    for f, rs in missing.items():
        problems.append(Problem("missing", f"empty or missing '{f}'", rs, "drop", extra={"field": f}))
    for f, rs in wrong.items():
        problems.append(Problem("wrong_type", f"'{f}' has the wrong type", rs, "drop",
                                detail="expected text" if f not in ("messages", "conversations") else "expected a list of messages",
                                extra={"field": f}))

    keys = [json.dumps(r, sort_keys=True, ensure_ascii=False, default=str) for r in rows]
    first: dict[str, int] = {}
    exact = []
    for i, k in enumerate(keys, 1):
        if k in first:
            exact.append(i)
        else:
            first[k] = i
    if exact:
        problems.append(Problem("exact_duplicates", "exact duplicate of an earlier row", exact, "dedupe"))

    exact_set = set(exact)
    idx = [i for i in range(len(rows)) if i + 1 not in exact_set]
    pairs = near_duplicate_pairs([row_text(rows[i]) for i in idx], near_threshold)
    near = sorted({idx[j] + 1 for _, j, _ in pairs})
    if near:
        problems.append(Problem(
            "near_duplicates", "near duplicate of an earlier row", near, "dedupe",
            detail=f"character {SHINGLE}-gram Jaccard ≥ {near_threshold:g}",
            extra={"pairs": [(idx[i] + 1, idx[j] + 1, s) for i, j, s in pairs][:200]}))

    if lengths is not None and max_length:
        long_rows = [i for i, n in enumerate(lengths, 1) if n > max_length]
        if long_rows:
            problems.append(Problem("too_long", f"longer than {max_length} tokens", long_rows, "truncate",
                                    detail=f"longest {max(lengths)} tokens", extra={"max_length": max_length}))

    if fmt in ("preference", "preference_implicit"):
        same = [i for i, r in enumerate(rows, 1) if r.get("chosen") is not None and r.get("chosen") == r.get("rejected")]
    elif fmt == "preference_ab":
        same = [i for i, r in enumerate(rows, 1) if r.get("response_A") is not None and r.get("response_A") == r.get("response_B")]
    else:
        same = []
    if same:
        problems.append(Problem("chosen_equals_rejected", "chosen identical to rejected", same, "drop"))

    texts = [row_text(r) for r in rows]
    undecodable = [i for i, t in enumerate(texts, 1) if _UNDECODABLE in t]
    if undecodable:
        problems.append(Problem("undecodable", "bytes that are not UTF-8 (read as \ufffd)", undecodable, "drop",
                                detail="another encoding's bytes; drop these rows, or save the file as UTF-8"))
    bad = [i for i, t in enumerate(texts, 1) if _MOJIBAKE.search(t)]
    if bad:
        problems.append(Problem("bad_encoding", "bad encoding (mojibake or control characters)", bad, "drop"))

    counts = label_counts(rows, fmt)
    if len(counts) >= 2:
        hi, lo = max(counts.values()), min(counts.values())
        if hi / lo > imbalance_ratio:
            major = {k for k, v in counts.items() if v == hi}
            rs = [i for i, r in enumerate(rows, 1) if _label_key(r, fmt) in major]
            problems.append(Problem("label_imbalance", "label imbalance", rs, "balance",
                                    detail=", ".join(f"{k}: {v}" for k, v in counts.most_common()) +
                                    f" (ratio {hi / lo:.1f} > {imbalance_ratio:g})", extra={"counts": dict(counts)}))
    return Report(len(rows), problems)


def _label_key(row, fmt):
    v = row.get("label")
    if v is None:
        return None
    if fmt == "unpaired_preference":
        try:
            return str(label_bool(v)).lower()
        except ValueError:
            return str(v)
    return str(v)


def label_counts(rows: list[dict], fmt: str) -> Counter:
    """Label distribution (classification, KTO), or the chosen side for A/B preferences."""
    if fmt == "preference_ab":
        return Counter(str(r.get("preference")).strip().upper() for r in rows)
    if fmt not in ("classification", "unpaired_preference"):
        return Counter()
    return Counter(k for r in rows if (k := _label_key(r, fmt)) is not None)


# --------------------------------------------------------------------------- fixes
def apply_fix(rows: list[dict], problem: Problem, *, seed: int = 0, truncate_fn=None) -> list[dict]:
    """Return a new list of rows with `problem` fixed (the input list is not changed).

    drop / dedupe: remove the listed rows (for duplicates the first occurrence stays).
    truncate: `truncate_fn(row, max_length) -> row` shortens each listed row (default: cut the longest
    text field by characters, 4 characters per token).
    balance: downsample every label to the size of the smallest one (seeded)."""
    bad = set(problem.rows)
    if problem.fix in ("drop", "dedupe"):
        return [r for i, r in enumerate(rows, 1) if i not in bad]
    if problem.fix == "truncate":
        n = problem.extra.get("max_length", 1024)
        fn = truncate_fn or truncate_chars
        return [fn(r, n) if i in bad else r for i, r in enumerate(rows, 1)]
    if problem.fix == "balance":
        counts = problem.extra["counts"]
        target = min(counts.values())
        by_label = defaultdict(list)
        fmt = "unpaired_preference" if set(counts) <= {"true", "false"} else "classification"
        for i, r in enumerate(rows):
            by_label[_label_key(r, fmt)].append(i)
        rng = random.Random(seed)
        keep = set()
        for label, idx in by_label.items():
            keep.update(rng.sample(idx, min(target, len(idx))) if label in counts else idx)
        return [r for i, r in enumerate(rows) if i in keep]
    raise ValueError(f"no automatic fix for {problem.kind}")


def truncate_chars(row: dict, max_tokens: int) -> dict:
    row = json.loads(json.dumps(row))
    budget = max_tokens * 4
    # the longest string in the row (the answer or the passage, usually) is the one that is cut
    holders = []

    def walk(obj):
        for k, v in (obj.items() if isinstance(obj, dict) else enumerate(obj)):
            if isinstance(v, str):
                holders.append((len(v), obj, k))
            elif isinstance(v, (dict, list)):
                walk(v)
    walk(row)
    total = sum(n for n, _, _ in holders)
    if holders and total > budget:
        n, obj, k = max(holders, key=lambda h: h[0])
        obj[k] = obj[k][:max(0, n - (total - budget))]
    return row


# --------------------------------------------------------------------------- PII
EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# +44 20 7946 0958 · (555) 123-4567 · 555-123-4567 · 555.123.4567; not dates (2024-01-15), not versions
PHONE = re.compile(r"(?<![\w.\-/+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"
                   r"|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}|\d{3}[-. ]\d{3}[-. ]\d{4})(?![\w.\-/]*\d)")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
# four octets; not preceded by "v", "version" or a digit/dot, not followed by more dotted digits
IPV4 = re.compile(rf"(?<![\w.])(?<!version )(?<!v){_OCTET}(?:\.{_OCTET}){{3}}(?![\w]|\.\d)")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}(?![\w:])"
                  r"|(?<![\w:])(?:[0-9a-fA-F]{1,4}:){1,6}:(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4}){0,5})?(?![\w:])")
# not inside a decimal or dotted number, but a sentence may end right after it ("card 4111 1111 1111 1111.")
CARD = re.compile(r"(?<!\w)(?<!\d[.,])\d(?:[ -]?\d){12,18}(?!\w|[.,]\d)")
PII_KINDS = ("email", "phone", "ip", "card")


def luhn_ok(digits: str) -> bool:
    total = 0
    for k, ch in enumerate(reversed(digits)):
        d = int(ch)
        if k % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def scrub_text(text: str, kinds=PII_KINDS) -> tuple[str, list[tuple[str, str]]]:
    """Replace PII with [EMAIL] [PHONE] [IP] [CARD]; returns (new text, [(kind, what was replaced)])."""
    found: list[tuple[str, str]] = []

    def sub(pattern, kind, tag, check=None):
        nonlocal text

        def rep(m):
            if check and not check(m.group(0)):
                return m.group(0)
            found.append((kind, m.group(0)))
            return tag
        text = pattern.sub(rep, text)

    if "email" in kinds:
        sub(EMAIL, "email", "[EMAIL]")
    if "card" in kinds:  # before phones: a card number would otherwise look like a long phone number
        sub(CARD, "card", "[CARD]", lambda s: 13 <= len(d := re.sub(r"\D", "", s)) <= 19 and luhn_ok(d))
    if "ip" in kinds:
        sub(IPV4, "ip", "[IP]")
        sub(IPV6, "ip", "[IP]", lambda s: s.count(":") >= 2 and any(c.isalpha() for c in s) or s.count(":") >= 7)
    if "phone" in kinds:
        sub(PHONE, "phone", "[PHONE]", lambda s: 7 <= len(re.sub(r"\D", "", s)) <= 15)
    return text, found


def _scrub_value(v, kinds, found):
    if isinstance(v, str):
        new, f = scrub_text(v, kinds)
        found.extend(f)
        return new
    if isinstance(v, list):
        return [_scrub_value(x, kinds, found) for x in v]
    if isinstance(v, dict):
        return {k: _scrub_value(x, kinds, found) for k, x in v.items()}
    return v


def scrub_rows(rows: list[dict], kinds=PII_KINDS) -> tuple[list[dict], list[dict]]:
    """Scrub every text field; returns (new rows, changes: [{row, field, before, after, found}])."""
    out, changes = [], []
    for i, row in enumerate(rows, 1):
        new = {}
        for k, v in row.items():
            found: list = []
            new[k] = _scrub_value(v, kinds, found)
            if found:
                changes.append({"row": i, "field": k, "before": v, "after": new[k],
                                "found": ", ".join(f"{kind}: {s}" for kind, s in found)})
        out.append(new)
    return out, changes


# --------------------------------------------------------------------------- split
def split_rows(rows: list[dict], *, validation: float = 0.1, test: float = 0.1, seed: int = 0,
               stratify_by: str | None = "label") -> dict[str, list[dict]]:
    """Seeded train/validation/test split; stratified on `stratify_by` when every row has that column."""
    if not 0 <= validation < 1 or not 0 <= test < 1 or validation + test >= 1:
        raise ValueError(f"validation ({validation}) and test ({test}) fractions must be in [0, 1) and sum below 1")
    rng = random.Random(seed)
    strat = stratify_by and rows and all(stratify_by in r and isinstance(r[stratify_by], (str, int, bool))
                                         for r in rows)
    groups = defaultdict(list)
    for i, r in enumerate(rows):
        groups[r[stratify_by] if strat else None].append(i)
    parts = {"train": [], "validation": [], "test": []}
    for key in sorted(groups, key=str):
        idx = groups[key]
        rng.shuffle(idx)
        n_test, n_val = round(len(idx) * test), round(len(idx) * validation)
        parts["test"] += idx[:n_test]
        parts["validation"] += idx[n_test:n_test + n_val]
        parts["train"] += idx[n_test + n_val:]
    out = {}
    for name, idx in parts.items():
        if idx:
            rng.shuffle(idx)
            out[name] = [rows[i] for i in idx]
    return out
