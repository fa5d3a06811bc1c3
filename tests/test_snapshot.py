"""Snapshots survive a wiped data directory (labs/snapshot.py): labels, runs and datasets come back, same ids."""
from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from labs import paths, snapshot, store

ROOT = Path(__file__).resolve().parents[1]


def _labels(data: Path) -> list[tuple]:
    con = sqlite3.connect(data / "lab.sqlite")
    try:
        return con.execute("SELECT id, pair_id, annotator, choice FROM labels ORDER BY id").fetchall()
    finally:
        con.close()


def _fill(data: Path) -> list[int]:
    paths.set_data_dir(data)
    ids = store.add_pairs([{"prompt": f"p{i}", "a": f"a{i}", "b": f"b{i}"} for i in range(6)], batch="snap")
    for who in ("ana", "ben"):
        for pid in ids:
            store.label(pid, who, "A" if pid % 2 else "B")
    run = data / "runs" / "20260101-000000-r-abcd"
    (run / "adapter").mkdir(parents=True)
    (run / "status.json").write_text('{"state": "finished"}')
    (run / "adapter" / "adapter_model.safetensors").write_bytes(b"\0" * 1000)
    (data / "models" / "cache").mkdir(parents=True)
    (data / "models" / "cache" / "big.bin").write_bytes(b"\0" * 10)
    return ids


def test_labels_runs_and_datasets_come_back_after_a_wipe(tmp_path):
    data, target = tmp_path / "lab_data", tmp_path / "bucket"
    _fill(data)
    before = _labels(data)
    assert len(before) == 12
    snap = snapshot.save(data, target)
    assert snapshot.snapshots(target) == [snap]
    shutil.rmtree(data)                      # a Space restarts: the disk is new
    assert snapshot.restore(data, target) == snap
    assert _labels(data) == before           # every label, same ids, same authors
    assert (data / "runs" / "20260101-000000-r-abcd" / "adapter" / "adapter_model.safetensors").stat().st_size == 1000
    assert not (data / "models").exists()    # the model cache is rebuilt, not carried
    paths.set_data_dir(data)
    assert store.next_pair("carol", "snap")["id"] == min(p for _, p, _, _ in before)  # the store works on


def test_a_snapshot_is_consistent_while_annotators_keep_labeling(tmp_path):
    data, target = tmp_path / "lab_data", tmp_path / "bucket"
    ids = _fill(data)
    more = store.add_pairs([{"prompt": f"q{i}", "a": "x", "b": "y"} for i in range(200)], batch="busy")
    stop = threading.Event()

    def label_on():
        for pid in more:
            if stop.is_set():
                return
            store.label(pid, "dee", "A")
    t = threading.Thread(target=label_on)
    t.start()
    snaps = [snapshot.save(data, target, keep=10) for _ in range(3)]
    stop.set()
    t.join()
    for s in snaps:  # each copy is a whole database: opens, passes its integrity check, holds the 12 first labels
        con = sqlite3.connect(s / "lab.sqlite")
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT COUNT(*) FROM labels WHERE pair_id IN (%s)" % ",".join(map(str, ids))).fetchone()[0] == 12
        con.close()


def test_an_unfinished_snapshot_is_never_restored_and_old_ones_are_pruned(tmp_path):
    data, target = tmp_path / "lab_data", tmp_path / "bucket"
    _fill(data)
    first = snapshot.save(data, target, keep=2)
    (target / "snapshot-99999999T999999.999").mkdir()  # cut short: no manifest
    snapshot.save(data, target, keep=2)
    third = snapshot.save(data, target, keep=2)
    assert len(snapshot.snapshots(target)) == 2 and first not in snapshot.snapshots(target)
    shutil.rmtree(data)
    assert snapshot.restore(data, target) == third
    with pytest.raises(snapshot.SnapshotError, match="already has a database"):
        snapshot.restore(data, target)


def test_cli(tmp_path):
    data, target = tmp_path / "lab_data", tmp_path / "bucket"
    _fill(data)
    run = lambda *a: subprocess.run([sys.executable, "-m", "labs.snapshot", *a, "--data-dir", str(data)],  # noqa: E731
                                    capture_output=True, text=True, cwd=ROOT, timeout=60)
    p = run("save", "--to", str(target))
    assert p.returncode == 0 and p.stdout.startswith("snapshot=")
    shutil.rmtree(data)
    p = run("restore", "--from", str(target))
    assert p.returncode == 0 and p.stdout.startswith("restored=") and len(_labels(data)) == 12
    p = run("save")
    assert (p.returncode, p.stderr.strip()) == (2, "error: --to/--from: give the snapshot directory (or set "
                                                   "LAB_SNAPSHOT_DIR)")


@pytest.mark.slow
def test_the_app_snapshots_at_shutdown_and_restores_into_a_wiped_data_directory(tmp_path, tiny_model_dir):
    """A Space's life: people label, the Space stops (SIGTERM), its disk is wiped, it starts again."""
    from gradio_client import Client

    from tests import helpers
    data, target = tmp_path / "lab_data", tmp_path / "bucket"
    paths.set_data_dir(data)
    ids = store.add_pairs([{"prompt": f"p{i}", "a": f"a{i}", "b": f"b{i}"} for i in range(3)], batch="space")
    args = ("--model", str(tiny_model_dir), "--no-preload", "--auth", "ana:pw-ana-123", "--snapshot-dir", str(target))
    proc, url = helpers.start_app(data, *args)
    try:
        c = Client(url, auth=("ana", "pw-ana-123"), verbose=False)
        for pid in ids:
            c.predict(pid, "A", "ana", api_name="/pref_label")
    finally:
        helpers.stop_app(proc)  # SIGTERM: the final snapshot is written on the way out
    before = _labels(data)
    assert [(p, who) for _, p, who, _ in before] == [(pid, "ana") for pid in ids]
    shutil.rmtree(data)
    proc, url = helpers.start_app(data, *args)
    try:
        assert _labels(data) == before  # every label back, same ids
        assert "restored" in helpers.app_output(proc)
    finally:
        helpers.stop_app(proc)
