"""The preference store and what labels become: durable, one label per person and pair, order-blind, and
turned into TRL rows by the rules the labeler's page states."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from labs import store
from labs.preference import labels

ROOT = Path(__file__).resolve().parents[1]


def _pairs(n, batch="b1"):
    return store.add_pairs([{"prompt": [{"role": "user", "content": f"q{i}"}], "a": f"long answer {i} " * 3,
                             "b": f"short {i}", "model_a": "m", "sampling": {"temperature": 0.8}}
                            for i in range(n)], batch=batch)


def _say(pid, who, stored, **kw):
    """Label in stored terms (a / b), translated into what this annotator was shown (A / B)."""
    shown = store.shown_order(pid, who)
    choice = {"a": "A" if shown == "ab" else "B", "b": "B" if shown == "ab" else "A"}.get(stored, stored)
    return store.label(pid, who, choice, **kw)


def test_labels_are_stored_in_stored_terms_whatever_order_was_shown(data_dir):
    ids = _pairs(12)
    orders = {pid: store.shown_order(pid, "ana") for pid in ids}
    assert set(orders.values()) == {"ab", "ba"}  # both orders occur
    assert all(store.shown_order(pid, "ana") == o for pid, o in orders.items())  # and stay put on reload
    for pid in ids:
        p = store.next_pair("ana")
        assert p["id"] == pid  # oldest first
        assert {p["A"], p["B"]} == {p["a"], p["b"]} and (p["A"] == p["a"]) == (orders[pid] == "ab")
        shown_short = "A" if p["A"].startswith("short") else "B"
        store.label(pid, "ana", shown_short)
    assert store.next_pair("ana") is None
    assert {lab["choice"] for lab in store.labels()} == {"b"}  # always the stored short answer, b
    st = store.stats()
    assert (st["pairs"], st["labels"], st["annotators"], st["choice_b"]) == (12, 12, 1, 12)


def test_relabel_replaces_undo_removes_skip_hides(data_dir):
    a, b, c = _pairs(3)
    store.label(a, "bo", "A")
    store.label(a, "bo", "tie", strength=2, reason="same", ideal="better")  # a second label replaces the first
    labs_ = store.labels()
    assert len(labs_) == 1 and labs_[0]["choice"] == "tie" and labs_[0]["ideal"] == "better"
    store.label(b, "bo", "skip")
    assert store.next_pair("bo")["id"] == c and store.stats()["labels"] == 1 and store.stats()["skipped"] == 1
    assert store.undo("bo") == b and store.next_pair("bo")["id"] == b  # undo brings the skipped pair back
    assert store.undo("bo") == a and store.undo("bo") is None and store.stats()["labels"] == 0
    for bad, msg in ((lambda: store.label(a, "bo", "C"), "choice 'C'"), (lambda: store.label(999, "bo", "A"), "no pair"),
                     (lambda: store.label(a, " ", "A"), "type your name"),
                     (lambda: store.label(a, "bo", "A", strength=7), "strength 7")):
        with pytest.raises(store.StoreError, match=msg):
            bad()
    assert store.stats()["labels"] == 0  # refused labels left nothing behind


def test_concurrent_annotators_lose_and_duplicate_nothing(data_dir):
    """Threads of one app and a second process label at once: every label lands exactly once."""
    ids = _pairs(30)
    errors = []

    def annotate(name):
        try:
            for pid in ids:
                store.label(pid, name, "A")
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    threads = [threading.Thread(target=annotate, args=(f"t{k}",)) for k in range(4)]
    code = ("from labs import store\n" + f"for pid in {ids}:\n    store.label(pid, 'proc', 'B')\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert proc.wait(120) == 0 and not errors
    st = store.stats()
    assert st["labels"] == 5 * 30 and st["annotators"] == 5
    assert st["per_annotator"] == {**{f"t{k}": 30 for k in range(4)}, "proc": 30}


def test_choices_become_training_rows_by_the_stated_rules(data_dir):
    pa, pb, pt, px, pe = _pairs(5)
    store.label(pa, "x", "A")
    store.label(pb, "x", "B")
    store.label(pt, "x", "tie")
    store.label(px, "x", "both_bad", ideal="The ideal.")
    store.label(pe, "x", "A", ideal="Edited best.")
    stored = {lab["pair_id"]: lab["choice"] for lab in store.labels()}
    p = {q["id"]: q for q in store.pairs()}
    dpo = labels.to_dpo()
    plain = [r for r in dpo if not r.get("ideal")]
    assert {r["pair_id"] for r in plain} == {pa, pb, pe}  # tie and both-bad give no preference row
    for r in plain:
        want = p[r["pair_id"]][stored[r["pair_id"]]]
        assert r["chosen"] == [{"role": "assistant", "content": want}] and r["rejected"][0]["content"] != want
    ideal_rows = [r for r in dpo if r.get("ideal")]
    assert sorted((r["pair_id"], r["chosen"][0]["content"]) for r in ideal_rows) == \
        sorted([(px, "The ideal."), (px, "The ideal."), (pe, "Edited best.")])  # both-bad: over both answers
    kto = labels.to_kto()
    by = {(r["pair_id"], r["completion"][0]["content"]): r["label"] for r in kto}
    assert not any(k[0] == pt for k in by)  # a tie says nothing about either answer
    assert by[(px, p[px]["a"])] is False and by[(px, p[px]["b"])] is False and by[(px, "The ideal.")] is True
    win = p[pa][stored[pa]]
    assert by[(pa, win)] is True and sum(1 for k in by if k[0] == pa) == 2


def test_majority_across_annotators_and_agreement(data_dir):
    ids = _pairs(4)
    for pid, (x, y, z) in zip(ids, (("a", "a", "b"), ("tie", "tie", "tie"), ("a", "b", "tie"), ("b", "b", "b"))):
        for who, ch in (("x", x), ("y", y), ("z", z)):
            _say(pid, who, ch)
    dpo = labels.to_dpo()
    assert [(r["pair_id"], r["chosen"][0]["content"]) for r in dpo] == \
        [(ids[0], store.get_pair(ids[0])["a"]), (ids[3], store.get_pair(ids[3])["b"])]  # majority a; unanimous b
    assert all(r["votes"] == 3 for r in dpo)  # the 3-way split and the unanimous tie give no row
    a = labels.agreement()
    assert a["measure"] == "Fleiss' kappa" and a["items"] == 4
    assert [d["pair_id"] for d in a["disagreements"]] == [ids[0], ids[2]] and a["disagreements"][1]["majority"] is None
    # by hand: rows a/b/tie/both_bad = [2,1,0,0], [0,0,3,0], [1,1,1,0], [0,3,0,0] -> P̄ = (1/3+1+0+1)/4,
    # p = (3/12, 5/12, 4/12, 0) -> Pe = 50/144; kappa = (7/12 - 50/144) / (1 - 50/144)
    assert a["kappa"] == pytest.approx((7 / 12 - 50 / 144) / (1 - 50 / 144))


def test_kappas_against_textbook_values():
    # Cohen: 50 items; both yes 20, only the first yes 5, only the second yes 10, both no 15 -> 0.4
    x = ["y"] * 20 + ["y"] * 5 + ["n"] * 10 + ["n"] * 15
    y = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert labels.cohen_kappa(x, y) == pytest.approx(0.4)
    # Fleiss (1971) as worked on Wikipedia: 10 items, 14 raters, 5 categories -> 0.210
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert labels.fleiss_kappa(table) == pytest.approx(0.210, abs=5e-4)
    assert labels.kappa_words(0.4) == "fair" and labels.kappa_words(0.85) == "almost perfect"


def test_store_stats_cli(data_dir):
    _pairs(3)
    store.label(1, "ana", "A")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "labs.store", "stats", "--data-dir", str(data_dir)], cwd=ROOT / "tests",
                       env=env, capture_output=True, text=True, timeout=60)
    lines = dict(line.split("=", 1) for line in p.stdout.splitlines())
    assert p.returncode == 0 and (lines["pairs"], lines["labels"], lines["annotators"]) == ("3", "1", "1")
    bad = subprocess.run([sys.executable, "-m", "labs.store", "stats", "--data-dir", "/proc/nope"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and len(bad.stderr.strip().splitlines()) == 1
