"""Validation report, one-click fixes, near duplicates, PII scrubbing with look-alikes, seeded splits."""
from __future__ import annotations

from collections import Counter

import pytest

from labs import data


def test_validation_finds_every_problem_with_row_numbers():
    rows = [
        {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"},                      # 1 ok
        {"prompt": "What is 2+2?", "chosen": "4", "rejected": "5"},                      # 2 exact dup of 1
        {"prompt": "", "chosen": "x", "rejected": "y"},                                  # 3 empty prompt
        {"prompt": "Same?", "chosen": "yes", "rejected": "yes"},                         # 4 chosen == rejected
        {"prompt": "Caf\u00c3\u00a9 menu please", "chosen": "ok", "rejected": "no"},     # 5 mojibake
        {"prompt": "Tell me about the Eiffel Tower in Paris, please.", "chosen": "It is a tower in Paris built for 1889.", "rejected": "No."},
        {"prompt": "Tell me more about the Eiffel Tower in Paris please!", "chosen": "It is a tower in Paris built for 1889.", "rejected": "No."},  # 7 near dup of 6
        {"prompt": "Long one", "chosen": 7, "rejected": "z"},                             # 8 wrong type
    ]
    rep = data.validate(rows, "preference", lengths=[10, 10, 10, 10, 10, 10, 10, 999], max_length=100)
    got = {p.kind: p.rows for p in rep.problems}
    assert got["exact_duplicates"] == [2]
    assert got["missing"] == [3]
    assert got["chosen_equals_rejected"] == [4]
    assert got["bad_encoding"] == [5]
    assert got["near_duplicates"] == [7]
    assert got["wrong_type"] == [8]
    assert got["too_long"] == [8]
    near = rep.problem("near_duplicates")
    assert "Jaccard ≥ 0.8" in near.detail and near.extra["pairs"][0][:2] == (6, 7)
    md = rep.markdown()
    assert "| near duplicate of an earlier row" in md and "dedupe" in md
    # the threshold is adjustable: at 0.99 the near pair is no longer reported
    assert data.validate(rows, "preference", near_threshold=0.99).problem("near_duplicates") is None
    fixed = data.apply_fix(rows, rep.problem("exact_duplicates"))
    assert len(fixed) == 7 and fixed[0] == rows[0]
    assert len(data.apply_fix(rows, rep.problem("near_duplicates"))) == 7
    short = data.apply_fix(rows, rep.problem("too_long"), truncate_fn=lambda r, n: {**r, "prompt": "cut"})
    assert short[7]["prompt"] == "cut" and short[0] == rows[0]


def _jaccard_5grams(texts):
    """Reference: exact Jaccard of every pair's character 5-gram sets (lower case, punctuation dropped,
    whitespace collapsed, as labs.data.clean documents), all pairs at once as a matrix product."""
    import re

    import numpy as np
    grams = []
    for t in texts:
        t = " ".join(re.sub(r"[^\w\s]", " ", t.lower()).split())
        grams.append({t[i:i + 5] for i in range(len(t) - 4)})
    vocab = {g: k for k, g in enumerate(sorted(set().union(*grams)))}
    m = np.zeros((len(texts), len(vocab)))
    for i, gs in enumerate(grams):
        m[i, [vocab[g] for g in gs]] = 1
    inter = m @ m.T
    sizes = m.sum(1)
    return inter / (sizes[:, None] + sizes[None, :] - inter)


def test_near_duplicates_scale_and_threshold():
    import numpy as np
    texts = [f"Review number {i}: the kettle {w} and I would buy it again." for i, w in
             enumerate(["works", "boils fast", "is quiet", "leaks", "is fine"] * 200)]
    pairs = data.near_duplicate_pairs(texts, 0.8)
    ref = _jaccard_5grams(texts)
    want = {(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(ref >= 0.8 - 1e-6, k=1)))}
    got = {(i, j): s for i, j, s in pairs}
    assert set(got) <= want  # every reported pair is a real near duplicate (no false positive) ...
    assert all(s == round(ref[i, j], 3) for (i, j), s in got.items())  # ... with its exact score (3 decimals)
    assert all(i % 5 == j % 5 for i, j in got)  # only reviews that say the same thing
    # MinHash finds candidates, so recall is probabilistic: measured 54,815 of 57,740 pairs (94.9%) here
    assert len(got) >= 0.9 * len(want), (len(got), len(want))
    assert data.near_duplicate_pairs(["completely different", "nothing alike here at all"], 0.5) == []


def test_label_imbalance_and_balance_fix():
    rows = [{"text": f"good {i}", "label": "pos"} for i in range(20)] + [{"text": f"bad {i}", "label": "neg"} for i in range(4)]
    rep = data.validate(rows, "classification")
    p = rep.problem("label_imbalance")
    assert p and "pos: 20, neg: 4" in p.detail and p.fix == "balance"
    balanced = data.apply_fix(rows, p, seed=0)
    assert Counter(r["label"] for r in balanced) == {"pos": 4, "neg": 4}


PII = [
    ("Write to jane.doe+news@example.co.uk today", "Write to [EMAIL] today"),
    ("Call +1 (555) 123-4567 or 555-987-6543.", "Call [PHONE] or [PHONE]."),
    ("London office: +44 20 7946 0958", "London office: [PHONE]"),
    ("Server 192.168.10.20 and 2001:db8:85a3::8a2e:370:7334 are down", "Server [IP] and [IP] are down"),
    ("Card 4111 1111 1111 1111 expires soon", "Card [CARD] expires soon"),
    ("Paid with 5500-0000-0000-0004", "Paid with [CARD]"),
    ("My card is 4111 1111 1111 1111.", "My card is [CARD]."),     # at the end of a sentence
    ("cards: 4111111111111111, 5500000000000004", "cards: [CARD], [CARD]"),
]
LOOKALIKES = [
    "Upgrade to version 2.10.3 or v1.2.3.4 today.",            # version numbers (also four-part)
    "Python 3.11.4 was released on 2023-06-06.",               # version + ISO date
    "The meeting is on 15/01/2024 at 12:30:45.",               # date and time
    "It costs $1,234.56, or 1234.56 EUR, down from $2,000.",   # prices
    "Order 4111 1111 1111 1112 is not a valid card.",          # fails the Luhn check
    "ISBN 978-0-306-40615-7 and a score of +12 points.",
    "Temperatures hit 35.5 degrees on 01.02.2023.",
    "Pi is about 3.4111111111111111 here.",                   # digits after a decimal point
]


@pytest.mark.parametrize("before,after", PII)
def test_pii_is_scrubbed(before, after):
    assert data.scrub_text(before)[0] == after


@pytest.mark.parametrize("text", LOOKALIKES)
def test_lookalikes_are_kept(text):
    assert data.scrub_text(text) == (text, [])


def test_scrub_rows_preview_and_kinds():
    rows = [{"messages": [{"role": "user", "content": "mail me: a@b.io"}]}, {"messages": [{"role": "user", "content": "hi"}]}]
    new, changes = data.scrub_rows(rows)
    assert new[0]["messages"][0]["content"] == "mail me: [EMAIL]" and rows[0]["messages"][0]["content"] == "mail me: a@b.io"
    assert changes == [{"row": 1, "field": "messages", "before": rows[0]["messages"], "after": new[0]["messages"],
                        "found": "email: a@b.io"}]
    assert data.scrub_text("a@b.io 10.0.0.1", kinds=("ip",))[0] == "a@b.io [IP]"
    assert data.luhn_ok("4111111111111111") and not data.luhn_ok("4111111111111112")


def test_split_is_seeded_and_stratified():
    rows = [{"text": f"t{i}", "label": "a" if i % 4 else "b"} for i in range(100)]
    s1 = data.split_rows(rows, validation=0.1, test=0.2, seed=3)
    s2 = data.split_rows(rows, validation=0.1, test=0.2, seed=3)
    assert s1 == s2 and {k: len(v) for k, v in s1.items()} == {"train": 70, "validation": 10, "test": 20}
    assert Counter(r["label"] for r in s1["test"]) == {"a": 15, "b": 5}
    assert data.split_rows(rows, seed=4) != s1
    with pytest.raises(ValueError, match="sum below 1"):
        data.split_rows(rows, validation=0.5, test=0.5)
