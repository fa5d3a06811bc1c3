"""From stored labels to what trainers read, and how far annotators agree.

    from labs.preference import labels
    rows = labels.to_dpo()            # [{"prompt", "chosen", "rejected", "pair_id", "votes"}], TRL's preference form
    rows = labels.to_kto()            # [{"prompt", "completion", "label"}], TRL's unpaired form
    ex = labels.export("dpo")         # the rows, plus what was left out and why: ex.summary(), ex.warning()
    labels.agreement()                # Cohen's kappa (two annotators) or Fleiss' kappa (more), disagreements

How each choice becomes training data (the labeler's page says the same):
  * A or B: one preference row, the chosen response over the other.
  * tie: no preference row (nothing to learn about which is better) and no KTO row (not known to be good or bad).
  * both_bad: no preference row between the two; both become undesirable KTO rows.
  * an edited ideal answer: the ideal answer is chosen over the response the annotator did not prefer (over
    both responses when they were both bad, or a tie), and is a desirable KTO row.
With several annotators on one pair, the majority choice counts; a pair without a majority (1 vs 1) is left
out and listed among the disagreements. Skips count for nothing. Every batch (no batch named) means every batch
but the blind A/B passes: their prompts are the held-out test, never trained on.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from labs import store

AB_PREFIX = "ab-"  # batches of blind A/B pairs (labs.preference.winrate): a measurement, never training data


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


def _dpo_rows(p: dict, labs: list[dict], choice: str | None, conversational: bool) -> list[dict]:
    prompt = _chat(p["prompt"]) if conversational else store.prompt_text(p["prompt"])
    wrap = _answer if conversational else (lambda t: t)
    out = []
    if choice in ("a", "b"):
        chosen, rejected = (p["a"], p["b"]) if choice == "a" else (p["b"], p["a"])
        out.append({"prompt": prompt, "chosen": wrap(chosen), "rejected": wrap(rejected), "pair_id": p["id"],
                    "votes": len(labs)})
    for lab in labs:  # an edited ideal answer beats what its author did not prefer
        if not lab.get("ideal"):
            continue
        worse = {"a": [p["b"]], "b": [p["a"]]}.get(lab["choice"], [p["a"], p["b"]])
        for w in worse:
            if w.strip() != lab["ideal"].strip():
                out.append({"prompt": prompt, "chosen": wrap(lab["ideal"]), "rejected": wrap(w),
                            "pair_id": p["id"], "votes": 1, "ideal": True})
    return out


def _kto_rows(p: dict, labs: list[dict], choice: str | None, conversational: bool) -> list[dict]:
    prompt = _chat(p["prompt"]) if conversational else store.prompt_text(p["prompt"])
    wrap = _answer if conversational else (lambda t: t)
    verdicts = {"a": [(p["a"], True), (p["b"], False)], "b": [(p["b"], True), (p["a"], False)],
                "both_bad": [(p["a"], False), (p["b"], False)]}.get(choice, [])
    out = [{"prompt": prompt, "completion": wrap(t), "label": good, "pair_id": p["id"]} for t, good in verdicts]
    return out + [{"prompt": prompt, "completion": wrap(lab["ideal"]), "label": True, "pair_id": p["id"],
                   "ideal": True} for lab in labs if lab.get("ideal")]


# The fewest preference pairs each preset was measured moving the default model with (docs/results.md), and where:
# DPO, "Preference loop, unattended" - 32 labels per seed gave 30 to 32 pairs (seed 1: 17 A + 13 B, 2 ties) and the
# held-out answers' mean words fell from 60.8 to 49.4-59.9; ORPO, "Preference presets" - 32 pairs (20 A / 12 B),
# 62.2 -> 51.1 mean words. Nothing was measured with fewer pairs.
MEASURED_PAIRS = {"dpo": (30, "Preference loop, unattended"), "orpo": (32, "Preference presets")}
LEFT_OUT = {"tie": "tied", "both_bad": "both bad", "no_majority": "without a majority (annotators split evenly)",
            "blind_ab": "in blind A/B batches (held-out prompts, never trained on)"}


@dataclass
class Export:
    """What the labels give as training rows, and what they leave out and why (the labeler's export, the CLI's
    and the training panel's Start all say this)."""
    fmt: str                  # dpo (prompt / chosen / rejected) or kto (prompt / completion / label)
    rows: list[dict]
    labels: int               # labels counted (a skip is no label)
    pairs: int                # pairs with at least one label
    left_out: dict[str, int]  # pairs that give no row of their own, by LEFT_OUT reason (zeros dropped)
    ideal_rows: int           # rows from edited ideal answers

    @property
    def preference_pairs(self) -> int:
        """Rows that are a choice between the pair's two answers (ideal edits not counted)."""
        return len(self.rows) - self.ideal_rows if self.fmt == "dpo" else 0

    def summary(self) -> str:
        """One line: rows from labels on pairs, then what was left out."""
        plural = lambda n, word: f"{n} {word}{'s' * (n != 1)}"  # noqa: E731
        what = f"{plural(len(self.rows), 'DPO row' if self.fmt == 'dpo' else 'KTO row')}"
        if self.ideal_rows:
            what += f" ({self.ideal_rows} from edited ideal answers)" if self.ideal_rows > 1 else \
                " (1 from an edited ideal answer)"
        line = f"{what} from {plural(self.labels, 'label')} on {plural(self.pairs, 'labeled pair')}"
        if self.left_out:
            line += "; left out: " + ", ".join(f"{plural(n, 'pair')} {LEFT_OUT[k]}" for k, n in self.left_out.items())
        return line

    def warning(self, steps: int | None = None, method: str = "dpo", run: bool = False) -> str | None:
        """For DPO rows below the fewest the `method`'s preset was measured moving a model with: how little they
        teach. `steps`: the optimizer steps the preset (or, with `run`, this run) makes on them
        (labs.preference.recipe.optimizer_steps)."""
        n, (least, where) = len(self.rows), MEASURED_PAIRS[method]
        if self.fmt != "dpo" or n >= least:
            return None
        name = method.upper()
        by = "this run" if run else f"the {name} preset"
        made = f" ({by} makes {steps} optimizer step{'s' * (steps != 1)} on them)" if steps is not None else ""
        return (f"{n} preference pair{'s' * (n != 1)} teach{'es' * (n == 1)} {name} little{made}. The fewest the "
                f"{name} preset was measured moving the default model with is {least} pairs (docs/results.md, "
                f"'{where}'); with fewer, nothing shows that it moves at all. Label more pairs with A or B.")


def export(fmt: str = "dpo", batch: str | list[str] | None = None, conversational: bool = True) -> Export:
    """The labels of `batch` (a name, a list of names, or None: every batch but the blind A/B ones) as TRL rows,
    with the counts of what was left out: each pair's majority choice decides (A or B: a preference row; tie:
    nothing; both bad: nothing for DPO, two undesirable KTO rows; no majority: nothing), and every edited ideal
    answer adds rows of its own."""
    if fmt not in ("dpo", "kto"):
        raise store.StoreError(f"format {fmt!r}: dpo or kto")
    names = [batch] if isinstance(batch, str) else list(batch or [])
    blind = 0
    if not names:
        every = [b["batch"] for b in store.batches()]
        names = [b for b in every if not b.startswith(AB_PREFIX)]
        blind = sum(len(_by_pair(b)[1]) for b in every if b.startswith(AB_PREFIX))
    rows, left, n_labels, n_pairs, ideal = [], Counter(), 0, 0, 0
    make = _dpo_rows if fmt == "dpo" else _kto_rows
    for name in names:
        pairs, by_pair = _by_pair(name)
        for pid, labs in sorted(by_pair.items()):
            choice = majority(labs)
            got = make(pairs[pid], labs, choice, conversational)
            n_labels, n_pairs = n_labels + len(labs), n_pairs + 1
            ideal += sum(1 for r in got if r.get("ideal"))
            rows += got
            if choice is None:
                left["no_majority"] += 1
            elif choice == "tie" or (choice == "both_bad" and fmt == "dpo"):
                left[choice] += 1
    left["blind_ab"] = blind
    return Export(fmt, rows, n_labels, n_pairs, {k: left[k] for k in LEFT_OUT if left[k]}, ideal)


def to_dpo(batch: str | None = None, conversational: bool = True) -> list[dict]:
    """Preference rows (prompt / chosen / rejected) from the labels, one per decided pair (+ ideal edits);
    None: every batch but the blind A/B ones. `export("dpo", ...)` says what was left out too."""
    return export("dpo", batch, conversational).rows


def to_kto(batch: str | None = None, conversational: bool = True) -> list[dict]:
    """Unpaired rows (prompt / completion / label): the chosen response is desirable, the other undesirable;
    both_bad makes both undesirable; ties give nothing; ideal edits are desirable."""
    return export("kto", batch, conversational).rows


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


def as_seen(choice: str, shown: str) -> str:
    """A stored choice (a, b, tie, both_bad) in the terms its annotator saw: A or B by the order shown to them
    (`shown` is the label's 'ab' or 'ba': which stored answer was on the left, as A)."""
    if choice in ("a", "b"):
        return "A" if shown[0] == choice else "B"
    return choice


def agreement(batch: str | None = None) -> dict:
    """How far annotators agree on the pairs they all labeled, and where they disagree: per disagreement the
    choices in stored terms (`choices`: a, b = the answers as generated, `a` and `b`) and as each annotator saw
    them (`seen`: A or B in their own order)."""
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
                                         "seen": {lab["annotator"]: as_seen(lab["choice"], lab["shown"])
                                                  for lab in labs},
                                         "a": p["a"], "b": p["b"], "majority": majority(labs)})
    return out


def kappa_words(k: float | None) -> str:
    """Landis & Koch's bands, the usual reading of a kappa."""
    if k is None:
        return "undefined"
    for bound, word in ((0, "poor"), (0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial")):
        if k <= bound:
            return word
    return "almost perfect"


def pairwise_agreement(batch: str | None = None) -> list[dict]:
    """For each two annotators: the pairs both labeled, how often they chose the same, and Cohen's kappa."""
    _, by_pair = _by_pair(batch)
    choices: dict[str, dict[int, str]] = {}
    for pid, labs in by_pair.items():
        for lab in labs:
            choices.setdefault(lab["annotator"], {})[pid] = lab["choice"]
    names = sorted(choices)
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            common = sorted(set(choices[a]) & set(choices[b]))
            x, y = [choices[a][p] for p in common], [choices[b][p] for p in common]
            out.append({"annotators": f"{a} · {b}", "pairs": len(common),
                        "same": round(sum(u == v for u, v in zip(x, y)) / len(common), 3) if common else None,
                        "kappa": cohen_kappa(x, y) if common else None})
    return out
