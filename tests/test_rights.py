"""Rights enforced in labs, not in the page: runs, datasets, labels and ratings in shared mode refuse what the
caller may not do, and change nothing then (the data directory stays byte-identical)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from labs import access, paths, runs, store
from labs.access import Actor, RightsError

ANA, BEN = Actor("ana", "member", "auth"), Actor("ben", "member", "auth")
VIC, BOSS = Actor("vic", "viewer", "auth"), Actor("boss", "admin", "auth")


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith(("-wal", "-shm"))):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


@pytest.fixture
def shared_lab(data_dir, monkeypatch):
    paths.set_data_dir(data_dir)
    access.configure(shared=True, identity="auth")
    import subprocess

    import psutil
    jobs = []

    def start(run, resume=False):  # a stand-in job (rights only): a sleeping process in its own session
        p = subprocess.Popen(["sleep", "120"], start_new_session=True)
        jobs.append(p)
        run.set_status(pid=p.pid, pid_started=psutil.Process(p.pid).create_time())
        return run
    monkeypatch.setattr(runs.control, "start", start)
    yield data_dir
    access.configure()
    for p in jobs:
        p.kill()
        p.wait()


def test_runs_record_their_owner_and_only_the_owner_or_an_admin_controls_them(shared_lab):
    run = runs.submit("sft", {"model": "m", "dataset": "instruct"}, actor=ANA)
    assert run.status()["owner"] == "ana"
    before = digest(shared_lab)
    for who in (BEN, VIC, access.ANONYMOUS):
        for act in (runs.stop, runs.kill, runs.resume, runs.delete):
            with pytest.raises(RightsError):
                act(run.id, actor=who)
    assert digest(shared_lab) == before
    runs.kill(run.id, actor=BOSS)  # an admin may
    assert run.status()["state"] == "stopped"


def test_starting_runs_needs_the_right_a_limit_and_no_server_paths(shared_lab, tmp_path):
    for who in (VIC, access.ANONYMOUS):
        with pytest.raises(RightsError):
            runs.submit("sft", {"model": "m"}, actor=who)
    planted = tmp_path / "planted.jsonl"
    planted.write_text("{}\n")
    with pytest.raises(paths.NameRefused, match="reads only files inside its data directory"):
        runs.submit("evaluation", {"models": ["m"], "data": str(planted)}, actor=ANA)
    with pytest.raises(paths.NameRefused):
        runs.submit("sft", {"model": str(tmp_path), "dataset": "instruct"}, actor=ANA)
    runs.submit("sft", {"model": "m"}, actor=ANA)
    runs.submit("sft", {"model": "m"}, actor=ANA)
    with pytest.raises(RightsError, match=r"^ana has 2 runs queued or running \(at most 2 each\)"):
        runs.submit("sft", {"model": "m"}, actor=ANA)
    runs.submit("sft", {"model": "m"}, actor=BEN)  # the limit is per person


def test_a_member_cannot_replace_anothers_dataset(shared_lab):
    from labs import data
    rows = {"train": [{"prompt": "p", "completion": "c"}]}
    data.save_dataset("team", rows, fmt="sft", actor=ANA)
    before = digest(shared_lab)
    with pytest.raises(RightsError, match="only their own; dataset 'team' belongs to ana"):
        data.save_dataset("team", rows, fmt="sft", overwrite=True, actor=BEN)
    with pytest.raises(RightsError):
        data.save_dataset("vics", rows, fmt="sft", actor=VIC)
    assert digest(shared_lab) == before
    data.save_dataset("team", rows, fmt="sft", overwrite=True, actor=ANA)
    data.save_dataset("team", rows, fmt="sft", overwrite=True, actor=BOSS)


def test_labels_are_the_signed_in_persons_never_a_typed_name(shared_lab):
    pid = store.add_pairs([{"prompt": "p", "a": "x", "b": "y"}], batch="b")[0]
    store.label(pid, "ana", "A", actor=ANA)
    before = digest(shared_lab)
    with pytest.raises(RightsError, match="you are signed in as ben; labels and ratings are recorded under your "
                                          "own name, not 'ana'"):
        store.label(pid, "ana", "B", actor=BEN)       # overwriting ana's label under her name
    with pytest.raises(RightsError, match="sign in to label pairs"):
        store.label(pid, "ana", "B")                  # no identity
    with pytest.raises(RightsError):
        store.label(pid, "vic", "B", actor=VIC)       # a viewer
    with pytest.raises(RightsError):
        store.undo("ana", actor=BEN)                  # deleting it through undo
    assert digest(shared_lab) == before
    assert store.label(pid, "", "B", actor=BEN)["annotator"] == "ben"  # no name typed: the signed-in one
    assert sorted(lab["annotator"] for lab in store.labels("b")) == ["ana", "ben"]


def test_the_local_lab_keeps_its_typed_names(data_dir):
    paths.set_data_dir(data_dir)
    access.configure()
    pid = store.add_pairs([{"prompt": "p", "a": "x", "b": "y"}], batch="b")[0]
    assert store.label(pid, "anyone", "A")["annotator"] == "anyone"


def test_guidelines_are_versioned_and_each_label_has_the_version_it_was_made_under(data_dir):
    import time

    from components.shared import guidelines_markdown
    paths.set_data_dir(data_dir)
    access.configure()
    assert store.guidelines("preference") is None and guidelines_markdown("preference") == ""
    v1 = store.set_guidelines("preference", "Prefer the *shorter* answer.", "boss")
    pid = store.add_pairs([{"prompt": "p", "a": "x", "b": "y"}], batch="g")[0]
    store.label(pid, "ana", "A")
    made = time.time()
    time.sleep(0.01)
    v2 = store.set_guidelines("preference", "Prefer the correct answer.\nThen the shorter.", "boss")
    assert v2 == v1 + 1 and store.guidelines("preference")["text"].startswith("Prefer the correct")
    assert store.guidelines("preference", at=made)["version"] == v1  # the version the label was made under
    assert store.guidelines("rating") is None
    md = guidelines_markdown("preference")
    assert md == (f"**Guidelines** (version {v2}, by boss):\n\n> Prefer the correct answer\\.\n> Then the shorter\\.")
    with pytest.raises(store.StoreError, match="kind one of preference, rating"):
        store.set_guidelines("labels", "x", "boss")
