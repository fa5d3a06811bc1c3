"""labs.preference.refill: pairs are made when an annotator has KEEP or fewer left (from code, in the
labeler's background thread, and from `python -m labs.preference refill`), from the bundled prompts where
the store's count left off, into the batch auto-refill; never for a picked batch; one refill at a time.
Generation is replaced by a recorder here (labs.preference.pairs.make_pairs has tests of its own)."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from labs import store
from labs.preference import refill as refill_mod

ROOT = Path(__file__).resolve().parents[1]


def add_pairs(n: int, batch: str = "b1") -> list[int]:
    return store.add_pairs([{"prompt": [{"role": "user", "content": f"prompt {i}"}], "a": "x", "b": "y",
                             "model_a": "m"} for i in range(n)], batch=batch)


@pytest.fixture
def made(monkeypatch):
    """Each make_pairs call as (prompt texts, model, seed, batch); the pairs are stored as the real one does."""
    from labs import models
    from labs.preference import pairs
    calls, loads = [], []
    monkeypatch.setattr(models.CACHE, "get", lambda spec=None, **kw: loads.append(spec) or f"loaded:{spec}")

    def make_pairs(prompts, model, model_b=None, *, seed=0, batch=None, **kw):
        calls.append(([p[-1]["content"] for p in prompts], model, seed, batch))
        return store.add_pairs([{"prompt": p, "a": "a", "b": "b", "model_a": "m"} for p in prompts], batch=batch)
    monkeypatch.setattr(pairs, "make_pairs", make_pairs)
    return calls, loads


def test_due_counts_what_is_left_to_the_annotator(data_dir):
    assert refill_mod.due("ana") == {"done": 0, "total": 0}  # an empty store: due
    ids = add_pairs(5)
    assert refill_mod.due("ana") is None  # 5 left > KEEP (3)
    for pid in ids[:2]:
        store.label(pid, "ana", "A")
    assert refill_mod.due("ana") == {"done": 2, "total": 5}  # 3 left
    assert refill_mod.due("bo") is None and refill_mod.due("ana", keep=2) is None
    assert refill_mod.due("ana", batch="b1") is None  # a picked batch is never refilled
    with pytest.raises(store.StoreError, match="type your name"):
        refill_mod.due("  ")


def test_refill_makes_pairs_from_where_the_store_left_off(data_dir, made):
    from labs.preference.pairs import load_prompts
    calls, loads = made
    add_pairs(2)
    ids = refill_mod.refill("ana", "my/model")
    prompts = [p[-1]["content"] for p in load_prompts("prompts", "train")]
    assert len(ids) == refill_mod.MAKE == 8 and loads == ["my/model"]
    assert calls == [([prompts[(2 + i) % len(prompts)] for i in range(8)], "loaded:my/model", 2, "auto-refill")]
    assert {p["batch"] for p in store.pairs()} == {"b1", "auto-refill"}
    assert refill_mod.refill("ana", "my/model") == [] and len(calls) == 1  # 10 left now: nothing made...
    assert loads == ["my/model"]  # ...and no model loaded
    assert len(refill_mod.refill("ana", None, keep=10, n=3)) == 3 and calls[-1][2] == 10 and loads[-1] is None
    with pytest.raises(ValueError, match="n: at least 1"):
        refill_mod.refill("ana", n=0)


def test_background_refills_one_at_a_time(data_dir, made, monkeypatch):
    calls, _ = made
    from labs.preference import pairs
    release, started = threading.Event(), threading.Event()
    real = pairs.make_pairs

    def slow(*a, **kw):
        started.set()
        release.wait(10)
        return real(*a, **kw)
    monkeypatch.setattr(pairs, "make_pairs", slow)
    bg = refill_mod.Background()
    assert bg.start("", "m") is False  # no name typed yet
    assert bg.start("ana", "m", batch="b1") is False  # a picked batch
    assert bg.start("ana", "m") is True and started.wait(10) and bg.running
    assert bg.start("ana", "m") is False  # one at a time
    release.set()
    for t in [t for t in threading.enumerate() if t.name == "pref-refill"]:
        t.join(10)
    assert not bg.running and bg.error == "" and len(calls) == 1 and store.stats()["pairs"] == 8

    def broken(*a, **kw):
        raise pairs.PairsError("no prompts to make pairs from")
    monkeypatch.setattr(pairs, "make_pairs", broken)
    assert bg.start("ana", "m", keep=8) is True
    for t in [t for t in threading.enumerate() if t.name == "pref-refill"]:
        t.join(10)
    assert not bg.running and bg.error == "no prompts to make pairs from"  # kept for the page to show


def test_the_labeler_refills_through_labs(data_dir, made, monkeypatch):
    """The labeler's page asks labs.preference.refill's one background refiller; it holds no thread itself."""
    from components import preference_tab
    started = []
    monkeypatch.setattr(preference_tab.BACKGROUND, "start", lambda *a, **kw: started.append((a, kw)) or True)
    pid, prompt, *_ = preference_tab.show_next("ana", "all batches", "my/model", True)
    from labs import access
    assert pid is None and started == [(("ana", "my/model"), {"batch": None, "actor": access.LOCAL})]
    preference_tab.show_next("ana", "b1", "my/model", True)
    assert started[-1] == (("ana", "my/model"), {"batch": "b1", "actor": access.LOCAL})
    preference_tab.show_next("ana", "all batches", "my/model", False)  # the checkbox off: no refill asked
    assert len(started) == 2


def test_the_refill_command(data_dir, made, capsys):
    from labs.preference.__main__ import main
    assert main(["refill", "--annotator", "ana", "--n", "4", "--data-dir", str(data_dir)]) == 0
    assert capsys.readouterr().out.strip() == "pairs=4"
    assert main(["refill", "--annotator", "ana", "--data-dir", str(data_dir)]) == 0
    assert capsys.readouterr().out.strip() == "pairs=0"  # 4 left > 3
    assert main(["refill", "--annotator", " ", "--data-dir", str(data_dir)]) == 2
    assert capsys.readouterr().err.startswith("error: annotator: type your name first")


def test_the_refill_command_in_its_own_process(data_dir):
    """As a user types it: with enough pairs left, nothing is made and no model is loaded."""
    add_pairs(5)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    p = subprocess.run([sys.executable, "-m", "labs.preference", "refill", "--annotator", "ana", "--data-dir",
                        str(data_dir)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert (p.returncode, p.stdout.strip()) == (0, "pairs=0"), p.stderr
    assert store.stats()["pairs"] == 5
