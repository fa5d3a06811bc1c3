"""From stored labels to what trainers read, and how far annotators agree.

    from labs.preference import labels
    rows = labels.to_dpo()            # [{"prompt", "chosen", "rejected", "pair_id", "votes"}], TRL's preference form
    rows = labels.to_kto()            # [{"prompt", "completion", "label"}], TRL's unpaired form
    labels.agreement()                # Cohen's kappa (two annotators) or Fleiss' kappa (more), disagreements

How each choice becomes training data (the labeler's page says the same):
  * A or B: one preference row, the chosen response over the other.
  * tie: no preference row (nothing to learn about which is better) and no KTO row (not known to be good or bad).
  * both_bad: no preference row between the two; both become undesirable KTO rows.
  * an edited ideal answer: the ideal answer is chosen over the response the annotator did not prefer (over
    both responses when they were both bad, or a tie), and is a desirable KTO row.
With several annotators on one pair, the majority choice counts; a pair without a majority (1 vs 1) is left
out and listed among the disagreements. Skips count for nothing.
"""
from __future__ import annotations

from collections import Counter, defaultdict

from labs import store


def _chat(prompt):
    return prompt if isinstance(prompt, list) else [{"role": "user", "content": str(prompt)}]


def _answer(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def _by_pair(batch: str | None):
    pairs = {p["id"]: p for p in store.pairs(batch)}
    by_pair: dict[int, list[dict]] = defaultdict(list)
    for lab in store.labels(batch):
        if lab["choice"] != "skip" and lab["pair_id"] in pairs:
            by_pair[lab["pair_id"]].append(lab)
    return pairs, by_pair


def majority(labs: list[dict]) -> str | None:
    """The choice most annotators made; None when the top two are level."""
    counts = Counter(lab["choice"] for lab in labs).most_common()
    if not counts or (len(counts) > 1 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]


def to_dpo(batch: str | None = None, conversational: bool = True) -> list[dict]:
    """Preference rows (prompt / chosen / rejected) from the labels, one per decided pair (+ ideal edits)."""
    pairs, by_pair = _by_pair(batch)
    out = []
    for pid, labs in sorted(by_pair.items()):
        p = pairs[pid]
        prompt = _chat(p["prompt"]) if conversational else store.prompt_text(p["prompt"])
        wrap = _answer if conversational else (lambda t: t)
        choice = majority(labs)
        if choice in ("a", "b"):
            chosen, rejected = (p["a"], p["b"]) if choice == "a" else (p["b"], p["a"])
            out.append({"prompt": prompt, "chosen": wrap(chosen), "rejected": wrap(rejected), "pair_id": pid,
                        "votes": len(labs)})
        for lab in labs:  # an edited ideal answer beats what its author did not prefer
            if not lab.get("ideal"):
                continue
            worse = {"a": [p["b"]], "b": [p["a"]]}.get(lab["choice"], [p["a"], p["b"]])
            for w in worse:
                if w.strip() != lab["ideal"].strip():
                    out.append({"prompt": prompt, "chosen": wrap(lab["ideal"]), "rejected": wrap(w),
                                "pair_id": pid, "votes": 1, "ideal": True})
    return out


def to_kto(batch: str | None = None, conversational: bool = True) -> list[dict]:
    """Unpaired rows (prompt / completion / label): the chosen response is desirable, the other undesirable;
    both_bad makes both undesirable; ties give nothing; ideal edits are desirable."""
    pairs, by_pair = _by_pair(batch)
    out = []
    for pid, labs in sorted(by_pair.items()):
        p = pairs[pid]
        prompt = _chat(p["prompt"]) if conversational else store.prompt_text(p["prompt"])
        wrap = _answer if conversational else (lambda t: t)
        choice = majority(labs)
        verdicts = {"a": [(p["a"], True), (p["b"], False)], "b": [(p["b"], True), (p["a"], False)],
                    "both_bad": [(p["a"], False), (p["b"], False)]}.get(choice, [])
        verdicts += [(lab["ideal"], True) for lab in labs if lab.get("ideal")]
        out += [{"prompt": prompt, "completion": wrap(t), "label": good, "pair_id": pid} for t, good in verdicts]
    return out


# --------------------------------------------------------------------------- agreement
CATEGORIES = ("a", "b", "tie", "both_bad")


def cohen_kappa(x: list[str], y: list[str]) -> float | None:
    """Cohen's kappa of two annotators' choices on the same items (None when it is undefined)."""
    n = len(x)
    if n == 0:
        return None
    po = sum(a == b for a, b in zip(x, y)) / n
    cx, cy = Counter(x), Counter(y)
    pe = sum(cx[c] * cy[c] for c in set(cx) | set(cy)) / (n * n)
    return None if pe == 1 else (po - pe) / (1 - pe)


def fleiss_kappa(table: list[list[int]]) -> float | None:
    """Fleiss' kappa from an items x categories table of counts (the same number of raters per item)."""
    if not table:
        return None
    n_items, raters = len(table), sum(table[0])
    if raters < 2 or any(sum(r) != raters for r in table):
        return None
    p_j = [sum(r[j] for r in table) / (n_items * raters) for j in range(len(table[0]))]
    p_i = [(sum(c * c for c in r) - raters) / (raters * (raters - 1)) for r in table]
    p_bar, pe = sum(p_i) / n_items, sum(p * p for p in p_j)
    return None if pe == 1 else (p_bar - pe) / (1 - pe)


def agreement(batch: str | None = None) -> dict:
    """How far annotators agree on the pairs they all labeled, and where they disagree."""
    pairs, by_pair = _by_pair(batch)
    names = sorted({lab["annotator"] for labs in by_pair.values() for lab in labs})
    out = {"annotators": names, "items": 0, "kappa": None, "measure": None, "disagreements": []}
    if len(names) < 2:
        return out
    common = {pid: {lab["annotator"]: lab["choice"] for lab in labs} for pid, labs in by_pair.items()
              if {lab["annotator"] for lab in labs} == set(names)}
    out["items"] = len(common)
    if len(names) == 2:
        x = [c[names[0]] for c in common.values()]
        y = [c[names[1]] for c in common.values()]
        out.update(kappa=cohen_kappa(x, y), measure="Cohen's kappa",
                   raw_agreement=(sum(a == b for a, b in zip(x, y)) / len(x)) if x else None)
    else:
        table = [[list(c.values()).count(cat) for cat in CATEGORIES] for c in common.values()]
        out.update(kappa=fleiss_kappa(table), measure="Fleiss' kappa")
    for pid, labs in sorted(by_pair.items()):
        if len({lab["choice"] for lab in labs}) > 1:
            p = pairs[pid]
            out["disagreements"].append({"pair_id": pid, "prompt": store.prompt_text(p["prompt"])[:200],
                                         "choices": {lab["annotator"]: lab["choice"] for lab in labs},
                                         "majority": majority(labs)})
    return out


def kappa_words(k: float | None) -> str:
    """Landis & Koch's bands, the usual reading of a kappa."""
    if k is None:
        return "undefined"
    for bound, word in ((0, "poor"), (0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial")):
        if k <= bound:
            return word
    return "almost perfect"
