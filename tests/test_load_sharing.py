"""Twenty people labeling and twenty rating one shared lab at once (benchmarks/load_labels.py): none lost, none
duplicated, every label and rating under its sender. Time is printed by the benchmark, not asserted here."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests import helpers

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
pytestmark = pytest.mark.slow
PEOPLE, ITEMS = 20, 50


def test_twenty_annotators_and_twenty_raters_at_once(tmp_path, tiny_model_dir):
    import load_labels as load
    data = tmp_path / "lab_data"
    load.prepare(data, ITEMS, tiny_model_dir)
    annotators = [(f"ann{i:02d}", f"pw-ann-{i:02d}") for i in range(PEOPLE)]
    raters = [(f"rat{i:02d}", f"pw-rat-{i:02d}") for i in range(PEOPLE)]
    auth = [x for n, p in annotators + raters for x in ("--auth", f"{n}:{p}")]
    proc, url = helpers.start_app(data, "--model", str(tiny_model_dir), "--no-preload", *auth)
    try:
        for kind, people in (("labels", annotators), ("ratings", raters)):
            res = load.run(url, people, kind)
            assert res["errors"] == []
            got = load.check(data, res, kind)
            assert got == {"sent": PEOPLE * ITEMS, "stored": PEOPLE * ITEMS, "duplicates": 0, "lost": 0,
                           "not_their_sender": 0, "errors": 0}, got
            print(f"{kind}: p50 {res['p50_ms']:.0f} ms, p95 {res['p95_ms']:.0f} ms over {res['calls']} calls")
    finally:
        helpers.stop_app(proc)
