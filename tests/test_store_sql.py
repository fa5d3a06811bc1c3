"""SQL lives in labs/store.py only: no other module of the lab, tab or script opens the database, runs a
query or holds SQL text; what they need is a store function (store.sample reads one RLHF sample by id)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from labs import store

ROOT = Path(__file__).resolve().parents[1]
SQL_CALL = re.compile(r"\bsqlite3\b|\.execute(many|script)?\(|\bstore\.connect\(")
SQL_TEXT = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|PRAGMA|BEGIN)\b")


def _sources() -> list[Path]:
    files = [*ROOT.joinpath("labs").rglob("*.py"), *ROOT.joinpath("components").glob("*.py"), ROOT / "app.py",
             *ROOT.joinpath("benchmarks").glob("*.py")]
    return sorted(p for p in files if p != ROOT / "labs" / "store.py")


def test_no_sql_outside_the_store():
    found = []
    for p in _sources():
        text = p.read_text()
        found += [f"{p.relative_to(ROOT)}: {m.group(0)}" for m in SQL_CALL.finditer(text)]
        found += [f"{p.relative_to(ROOT)}: {n.value[:40]!r}" for n in ast.walk(ast.parse(text))
                  if isinstance(n, ast.Constant) and isinstance(n.value, str) and SQL_TEXT.match(n.value)]
    assert not found, found


def test_the_check_would_see_a_query(tmp_path):
    """The patterns match the forms a query takes (what loop.sample_by_id held before store.sample)."""
    code = 'with contextlib.closing(store.connect()) as con:\n    con.execute("SELECT id FROM samples WHERE id = ?")\n'
    assert [m.group(0) for m in SQL_CALL.finditer(code)] == ["store.connect(", ".execute("]
    assert SQL_TEXT.match("SELECT id FROM samples WHERE id = ?") and not SQL_TEXT.match("Select a run first.")


def test_one_sample_by_id(data_dir):
    ids = store.add_samples([{"prompt": [{"role": "user", "content": "Hi?"}], "completion": "Hello.",
                              "policy": "base", "sampling": {"seed": 3, "k": 2, "index": 1}}], loop="l1", round=2)
    s = store.sample(ids[0])
    assert {k: s[k] for k in ("id", "loop", "round", "prompt", "completion", "policy", "sampling")} == {
        "id": ids[0], "loop": "l1", "round": 2, "prompt": [{"role": "user", "content": "Hi?"}],
        "completion": "Hello.", "policy": "base", "sampling": {"seed": 3, "k": 2, "index": 1}}
    assert s == store.samples("l1", 2)[0]  # the same row as the per-round reader gives
    assert store.sample(ids[0] + 1) is None


def test_the_loop_reads_a_sample_through_the_store(data_dir):
    from labs.feedback import loop
    ids = store.add_samples([{"prompt": "Hi?", "completion": "Hello."}], loop="l1", round=1)
    assert loop.sample_by_id(ids[0])["completion"] == "Hello."
    with pytest.raises(loop.LoopError, match=f"no sample {ids[0] + 5}"):
        loop.sample_by_id(ids[0] + 5)
