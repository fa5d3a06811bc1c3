"""The run engine: detached jobs, progress, stop, resume, kill, failure report, re-attach, queue.

Every job here is the real SFT recipe on a tiny in-process-built model, launched as its CLI.
"""
from __future__ import annotations

import json
import os
import signal

import pytest

from labs import runs
from labs.runs import control
from labs.runs.__main__ import main as runs_cli
from labs.runs.directory import proc_alive
from tests.helpers import wait_until


def tiny_config(model_dir, **kw) -> dict:
    cfg = dict(model=str(model_dir), dataset="instruct", max_steps=2000, batch_size=2, max_length=96,
               logging_steps=1, eval_steps=0, eval_rows=0, early_stopping_patience=0, learning_rate=1e-3,
               device="cpu", precision="fp32", save_total_limit=2)
    cfg.update(kw)
    return cfg


@pytest.mark.slow
def test_start_progress_stop_resume_and_crash(data_dir, tiny_model_dir):
    run = runs.submit("sft", tiny_config(tiny_model_dir), name="lifecycle")
    assert (run.dir / "config.yaml").exists()
    wait_until(lambda: len([r for r in run.metrics() if r.get("loss") is not None]) >= 3, what="loss rows")
    st = run.status()
    assert st["state"] == "running" and st["max_steps"] == 2000
    row = next(r for r in run.metrics() if r.get("loss") is not None)
    assert {"step", "epoch", "loss", "learning_rate", "elapsed_s"} <= set(row)

    # Graceful stop: finishes the step, saves a checkpoint, ends as "stopped".
    runs.stop(run.id)
    final = runs.wait(run.id, timeout_s=120)
    assert final["state"] == "stopped", final
    ckpt = run.latest_checkpoint()
    assert ckpt is not None
    stopped_at = int(ckpt.name.split("-")[1])
    # the phases after the training still ran; the training says where it ended
    from labs.runs import progress
    assert [(p["name"], p["state"]) for p in final["phases"]][-2:] == [("training", "done"), ("saving", "done")]
    assert progress.ended_words(final) == f"training ended at step {stopped_at}/2000"
    rec = run.record()
    import re
    import trl
    assert rec["versions"]["trl"] == trl.__version__ and rec["model_source"]["kind"] == "local"
    assert re.fullmatch(r"[0-9a-f]{16}", rec["data_hash"]), rec["data_hash"]

    # Resume continues from the checkpoint, not from step 0.
    runs.resume(run.id)
    wait_until(lambda: run.status().get("state") == "running" and (run.status().get("step") or 0) > stopped_at,
             what="progress after resume")
    assert run.status()["resumed_from"].endswith(ckpt.name)
    steps = [r["step"] for r in run.metrics() if r.get("loss") is not None]
    assert min(s for s in steps if s > stopped_at) == stopped_at + 1  # no restart from 0

    # A restarted app sees the same truth from the run directory alone; a job whose process died
    # without a final status (machine crash) shows as interrupted, with Resume offered.
    assert runs.get(run.id).status()["state"] == "running"
    os.killpg(os.getpgid(run.status()["pid"]), signal.SIGKILL)
    st = wait_until(lambda: run.status() if run.status()["state"] == "interrupted" else None, what="interrupted")
    assert "without a final status" in st["error"]
    from components.shared import error_markdown
    assert "Resume continues from" in error_markdown(run.id)


@pytest.mark.slow
def test_failed_job_reports_error_and_log(data_dir, tiny_model_dir):
    run = runs.submit("sft", tiny_config(tiny_model_dir, dataset="no-such-dataset"))
    st = runs.wait(run.id, timeout_s=120)
    assert st["state"] == "failed"
    assert "no-such-dataset" in st["error"]
    assert st["log_tail"]
    from components.shared import error_markdown
    assert "Run failed" in error_markdown(run.id) and "no-such-dataset" in error_markdown(run.id)

    # A config the recipe's CLI refuses before training: failed, with its one-line reason.
    refused = runs.submit("sft", tiny_config(tiny_model_dir, learning_rate=5))
    st = runs.wait(refused.id, timeout_s=120)
    assert st["state"] == "failed" and st["error"].startswith("learning_rate"), st


@pytest.mark.slow
def test_queue_runs_one_job_at_a_time(data_dir, tiny_model_dir):
    first = runs.submit("sft", tiny_config(tiny_model_dir), name="first")
    second = runs.submit("sft", tiny_config(tiny_model_dir), name="second")
    wait_until(lambda: first.status()["state"] == "running", what="first running")

    def first_trains_while_second_waits():
        st2 = second.status()
        assert st2["state"] == "queued" and st2["queue_position"] == 1, st2  # checked at every poll
        return len([r for r in first.metrics() if r.get("loss") is not None]) >= 3
    # the second job is alive and polling the queue lock the whole time the first one logs 3 steps
    wait_until(first_trains_while_second_waits, what="3 steps of the first run while the second waits")
    assert proc_alive(second.status()["pid"], second.status()["pid_started"])
    # its place, and its start from the first job's time left (training, then only saving: no untimed work)
    from components.shared import status_markdown
    md = status_markdown(second.id)
    assert "place 1 in the queue" in md and "estimated start: in about " in md, md
    # Hard kill: the whole process tree ends at once, and the next job in the queue starts.
    pid = first.status()["pid"]
    runs.kill(first.id)
    assert first.status()["state"] == "stopped" and first.status()["note"] == "killed"
    assert "stopped during training at step" in status_markdown(first.id)  # killed mid-phase
    assert not proc_alive(pid, None)
    wait_until(lambda: second.status()["state"] == "running", what="second starts after the first")
    runs.stop(second.id)
    assert runs.wait(second.id)["state"] == "stopped"


def test_corrupt_and_refused(data_dir, monkeypatch, capsys):
    bad = runs.runs_dir() / "20260101-000000-broken-0000"
    bad.mkdir()
    (bad / "status.json").write_text("{not json")
    half = runs.runs_dir() / "20260101-000001-half-0000"
    half.mkdir()
    (half / "status.json").write_text(json.dumps({"state": "running", "pid": 1}))
    sts = {r.id: r.status() for r in runs.list_runs()}
    assert sts[bad.name]["state"] == "corrupt" and "unreadable" in sts[bad.name]["error"]
    assert sts[half.name]["state"] == "corrupt" and "config.yaml is missing" in sts[half.name]["error"]
    from components.shared import error_markdown, status_markdown
    assert "Unreadable run directory" in error_markdown(bad.name)
    assert "no run" in status_markdown("nope")
    with pytest.raises(runs.RunError, match="unknown recipe"):
        runs.create("rm -rf", {})
    with pytest.raises(runs.RunError, match="no run 'missing'"):
        runs.stop("missing")
    monkeypatch.setattr(control, "MIN_FREE_GB", 1e9)
    with pytest.raises(runs.RunError, match=r"only [\d.]+ GB free .* at least 1e\+09 GB"):
        runs.submit("sft", {})
    assert sorted(p.name for p in runs.runs_dir().iterdir()) == [bad.name, half.name]  # no run created
    capsys.readouterr()
    assert runs_cli(["stop"]) == 2
    assert capsys.readouterr().err == "error: 'stop' needs a RUN_ID (see: python -m labs.runs list)\n"


def test_delete_refuses_active_and_removes_finished(data_dir):
    import psutil
    active = runs.create("sft", {"model": "x"}, name="active")
    # a live process (this test's own) stands in for the job: the run is really active
    active.set_status(state="running", pid=os.getpid(), pid_started=psutil.Process().create_time())
    (active.dir / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n')
    before = {p.name: p.read_bytes() for p in active.dir.iterdir()}
    with pytest.raises(runs.RunError, match=f"run {active.id} is still active; stop or kill it first"):
        runs.delete(active.id)
    assert {p.name: p.read_bytes() for p in active.dir.iterdir()} == before  # nothing removed or rewritten
    assert runs.get(active.id).status()["state"] == "running"
    assert runs_cli(["delete", active.id]) == 2 and active.dir.is_dir()  # the CLI refuses too

    done = runs.create("sft", {"model": "x"}, name="done")
    done.set_status(state="finished")
    runs.delete(done.id)
    assert not done.dir.exists()
    assert [r.id for r in runs.list_runs()] == [active.id]  # only the finished one went
    with pytest.raises(runs.RunError, match=f"no run '{done.id}'"):
        runs.delete(done.id)
