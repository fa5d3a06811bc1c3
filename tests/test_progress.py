"""Progress that tells the truth: phases with their counts, time left measured (never invented), a queued
job's start from the jobs ahead, queue time and run time apart, and one state shown everywhere.

The functions of labs/runs/progress.py are pure (a status dict and a time in, numbers and words out), so
these tests give exact values; the monitor and `python -m labs.runs list` are checked on run directories
written here, with this test process standing in for the jobs."""
from __future__ import annotations

import os
import time

import psutil
import pytest
import yaml

from labs import runs
from labs.runs import directory, progress
from labs.runs.progress import advance, close, durations, plan_entries, rate_eta, remaining, start_estimate

SFT_PLAN = ["loading model", ("tokenizing", 10, "rows"), ("training", 64, "steps"), "saving",
            ("evaluating", 40, "answers", "20 held-out rows x fine-tuned and base model")]
EVAL_AHEAD = "then evaluating 40 answers (20 held-out rows x fine-tuned and base model), timed once it starts"


def report(st: dict, *a, **kw) -> dict:
    """status.json after one report (what RecipeSession.phase writes)."""
    return {**st, **advance(st, *a, **kw)}


def sft_status(until: str) -> dict:
    """An SFT job's status at t=100 (started at t=0), reported phase by phase with explicit times."""
    st = {"state": "running", "queued_at": -5.0, "started_at": 0.0, "phases": plan_entries(SFT_PLAN)}
    st = report(st, "loading model", now=1.0)
    st = report(st, "tokenizing", 0, 10, "rows", now=13.0)
    st = report(st, "tokenizing", 10, 10, "rows", now=14.0)
    st = report(st, "training", 0, 64, "steps", now=14.0)
    st = report(st, "training", 32, 64, "steps", eta_s=64.0, now=78.0)  # the callback's own ETA
    if until == "training":
        return st
    st = report(st, "training", 64, 64, "steps", eta_s=0.0, now=142.0)
    st = report(st, "saving", now=142.0)
    st = report(st, "evaluating", 0, 40, "answers", "fine-tuned model", now=143.0)
    return report(st, "evaluating", 16, 40, "answers", "fine-tuned model", now=175.0)  # 2 s per answer


# --------------------------------------------------------------------------- the numbers
def test_time_left_is_the_measured_rate_times_what_is_left():
    assert rate_eta(10, 40, 20.0) == 60.0        # 2 s per unit x 30 units left
    assert rate_eta(40, 40, 80.0) == 0.0
    assert rate_eta(0, 40, 5.0) is None          # nothing done yet: no rate, no time
    assert rate_eta(None, 40, 5.0) is None
    assert progress.fmt_duration(65) == "1:05" and progress.fmt_duration(3725) == "1:02:05"
    assert progress.fmt_duration(None) == "–"
    assert progress.bar(0.5, 10) == "█████░░░░░" and progress.bar(1.0, 4) == "████"
    assert progress.bar(None, 4) == "░░░░" and progress.bar(0.99, 10) == "█████████░"


def test_phases_go_in_order_with_their_seconds_and_counts():
    st = sft_status("evaluating")
    assert [(p["name"], p["state"], p.get("seconds")) for p in st["phases"]] == [
        ("loading model", "done", 12.0), ("tokenizing", "done", 1.0), ("training", "done", 128.0),
        ("saving", "done", 1.0), ("evaluating", "running", None)]
    assert (st["phase"], st["phase_done"], st["phase_total"], st["phase_unit"], st["phase_detail"]) == \
        ("evaluating", 16, 40, "answers", "fine-tuned model")
    assert st["phase_started_at"] == 143.0 and st["phase_at"] == 175.0
    assert st["phase_eta_s"] == 48.0  # 32 s for 16 answers = 2 s each, x 24 answers left

    ended = {**st, **close(st, "finished", now=223.0)}
    assert [(p["state"], p.get("seconds")) for p in ended["phases"]][-1] == ("done", 80.0)
    failed = {**st, **close(st, "failed", now=180.0)}
    assert failed["phases"][-1]["state"] == "failed" and failed["phase_eta_s"] is None
    early = close(sft_status("training"), "stopped", now=100.0)["phases"]
    assert [p["state"] for p in early] == ["done", "done", "stopped", "skipped", "skipped"]
    assert progress.ended_words({**sft_status("training"), "state": "stopped", "phases": early}) == \
        "stopped during training at step 32/64"


def test_a_stop_in_training_then_the_phases_after_it_run_whole():
    """Stop ends the training early; the job still saves and evaluates: those phases are done, the training
    says where it ended."""
    st = report(sft_status("training"), "saving", now=80.0)  # the trainer returned at step 32 of 64
    st = report(st, "evaluating", 40, 40, "answers", now=120.0)
    st = {**st, "state": "stopped", **close(st, "stopped", now=121.0)}
    assert [(p["name"], p["state"]) for p in st["phases"]][2:] == [
        ("training", "done"), ("saving", "done"), ("evaluating", "done")]
    assert progress.ended_words(st) == "training ended at step 32/64"
    assert "✓ training 1:06 (ended at step 32/64)" in progress.phases_words(st)
    # a job that failed (or was killed) mid-phase: that phase is the one that did not end
    failed = {**st, "state": "failed", **close({**st, "phases": st["phases"][:4] + [
        {**st["phases"][4], "state": "running", "done": 16}]}, "failed", 121.0, returned=False)}
    assert progress.ended_words(failed) == "failed during evaluating at 16/40 answers"


def test_a_resumed_training_counts_its_rate_from_where_it_resumed():
    st = report({"state": "running"}, "training", 50, 100, "steps", now=0.0, done0=50)
    st = report(st, "training", 60, 100, "steps", now=10.0, done0=50)
    assert st["phase_eta_s"] == 40.0  # 10 steps in 10 s since the resume, 40 left (not 60/10 x 40)


def test_a_later_plan_keeps_the_phases_begun_and_replaces_those_ahead():
    st = report({"state": "running"}, "loading data", now=0.0)
    phases = plan_entries(["loading model", ("training", 8, "steps")], st["phases"])
    assert [(p["name"], p["state"]) for p in phases] == [
        ("loading data", "running"), ("loading model", "pending"), ("training", "pending")]
    assert plan_entries([("loading data", 3, "files")], phases)[0]["total"] == 3  # the running one's count
    # a phase not planned runs before those still pending; a planned one passed over is skipped
    st = report({**st, "phases": phases}, "training", 0, 8, "steps", now=5.0)
    assert [(p["name"], p["state"]) for p in st["phases"]] == [
        ("loading data", "done"), ("loading model", "skipped"), ("training", "running")]


def test_the_eta_of_training_names_the_evaluation_after_it_without_inventing_its_time():
    st = sft_status("training")
    left = remaining(st, now=88.0)  # 64 s of training at t=78, 10 s ago
    assert left == {"known_s": 54.0, "complete": False,
                    "why": [EVAL_AHEAD]}
    assert progress.overall_fraction(st, 88.0) is None
    assert progress.left_words(st, 88.0) == f"time left unknown: {EVAL_AHEAD} (at least 0:54)"


def test_once_the_evaluation_runs_the_whole_job_has_a_time():
    st = sft_status("evaluating")
    assert remaining(st, now=185.0) == {"known_s": 38.0, "complete": True, "why": []}  # 48 s at t=175
    assert progress.overall_fraction(st, 185.0) == pytest.approx(185 / (185 + 38))
    assert progress.left_words(st, 185.0) == "about 0:38 left"
    cur = progress.current(st, 185.0)
    assert progress.current_words(cur) == \
        "evaluating 16/40 answers (40%) · fine-tuned model · 2 s/answer · ETA 0:38"
    # before the first answer: no time, and it says so
    first = report(st, "evaluating", 0, 40, "answers", "base model", now=200.0)
    first = {**first, "phase_eta_s": None, "phase_done": 0}
    assert remaining(first, 200.0)["why"] == ["evaluating 0/40 answers, not timed yet"]


def test_a_queued_jobs_start_is_the_time_left_of_the_jobs_ahead_or_unknown():
    evaluating = sft_status("evaluating")
    training = sft_status("training")
    queued = {"state": "queued", "queued_at": 150.0}
    assert start_estimate([("a", evaluating)], now=185.0) == {"eta_s": 38.0, "at_least_s": 38.0, "unknown": []}
    assert start_estimate([], now=0.0) == {"eta_s": 0.0, "at_least_s": 0.0, "unknown": []}
    est = start_estimate([("a", evaluating), ("b", queued)], now=185.0)
    assert est == {"eta_s": None, "at_least_s": 38.0, "unknown": [("b", "not started yet")]}
    assert progress.start_words(est) == "unknown (b: not started yet; at least 0:38)"
    est = start_estimate([("a", training)], now=88.0)
    assert est["eta_s"] is None and est["at_least_s"] == 54.0
    assert progress.start_words(start_estimate([("a", evaluating)], 185.0)) == "in about 0:38"
    # a job that reports steps only (no phases): its ETA is its time left
    legacy = {"state": "running", "eta_s": 30.0, "updated_at": 100.0}
    assert start_estimate([("c", legacy)], now=110.0)["eta_s"] == 20.0
    assert start_estimate([("d", {"state": "running"})], now=0.0)["unknown"] == [("d", "no estimate yet")]


def test_queue_time_and_run_time_apart():
    done = {"state": "finished", "queued_at": 10.0, "started_at": 15.0, "finished_at": 75.0, "updated_at": 76.0}
    assert durations(done, now=500.0) == (5.0, 60.0)
    assert durations({"state": "queued", "queued_at": 10.0}, now=30.0) == (20.0, None)
    assert durations({"state": "running", "queued_at": 10.0, "started_at": 15.0}, now=45.0) == (5.0, 30.0)
    # resumed: queued again after the first attempt ended; the new wait counts from the new queued_at
    again = {**done, "state": "queued", "queued_at": 200.0}
    assert durations(again, now=230.0) == (30.0, None)
    # ended without finished_at (interrupted): up to its last status write
    assert durations({"state": "interrupted", "queued_at": 0.0, "started_at": 2.0, "updated_at": 12.0}, 99.0) \
        == (2.0, 10.0)
    assert progress.times_words(done, 500.0) == "queued 0:05 · ran 1:00"
    assert progress.times_words({"state": "queued", "queued_at": 10.0}, 30.0) == "waiting 0:20"


# --------------------------------------------------------------------------- on run directories
def alive_here() -> dict:
    return {"pid": os.getpid(), "pid_started": psutil.Process().create_time()}


def make_run(data_dir, run_id: str, **status) -> runs.Run:
    d = data_dir / "runs" / run_id
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump({"model": "tiny"}))
    directory.write_json(d / "status.json", {"recipe": "sft", **status})
    return runs.get(run_id)


@pytest.fixture
def line_of_jobs(data_dir, monkeypatch):
    """a: evaluating (its time known); b: queued first; c: queued after b. The clock stops at `now`
    (sft_status's t=185), so the times drawn are exact."""
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now)
    st = sft_status("evaluating")
    shift = now - 185.0  # sft_status's t=185 is now
    for k in ("queued_at", "started_at", "phase_started_at", "phase_at"):
        st[k] += shift
    a = make_run(data_dir, "a", **{**st, **alive_here()}, step=64, max_steps=64)
    b = make_run(data_dir, "b", state="queued", queued_at=now - 20, **alive_here())
    c = make_run(data_dir, "c", state="queued", queued_at=now - 10, **alive_here())
    return a, b, c


def test_the_monitor_draws_the_phase_bar_and_the_queue(line_of_jobs):
    from components import shared
    a, b, c = line_of_jobs
    assert shared.status_markdown(a.id).split("\n\n") == [
        "**running** · `a` · queued 0:05 · running 3:05",
        # the stage is shown as typed: Markdown's characters escaped (a model path's _ would be italics)
        "evaluating `████████░░░░░░░░░░░░` 16/40 answers (40%) · fine\\-tuned model · 2 s/answer · ETA 0:38",
        "whole job `████████████████░░░░` 83% · about 0:38 left",  # 185 s spent of 185 + 38
        "✓ loading model 0:12 · ✓ tokenizing 0:01 · ✓ training 2:08 · ✓ saving 0:01 · ▶ evaluating"]
    assert shared.status_markdown(b.id).split("\n\n") == [
        "**queued** · `b` · waiting 0:20 · place 1 in the queue", "estimated start: in about 0:38"]
    assert shared.status_markdown(c.id).split("\n\n") == [
        "**queued** · `c` · waiting 0:10 · place 2 in the queue",
        "estimated start: unknown (`b`: not started yet; at least 0:38)"]
    assert runs.queue_ahead(c) == ["a", "b"] and runs.queue_ahead(a) == []
    # during a's training (its evaluation still ahead), b's start is not known either
    st = sft_status("training")
    shift = time.time() - 88.0
    for k in ("queued_at", "started_at", "phase_started_at", "phase_at"):
        st[k] += shift
    a.set_status(**st)
    assert shared.status_markdown(a.id).split("\n\n")[1:3] == [
        "training `██████████░░░░░░░░░░` step 32/64 (50%) · 2 s/step · ETA 0:54",
        f"whole job: time left unknown: {EVAL_AHEAD} (at least 0:54)"]
    assert shared.status_markdown(b.id).split("\n\n")[1] == f"estimated start: unknown (`a`: {EVAL_AHEAD}; at least 0:54)"


def test_runs_list_adds_queue_and_run_time_and_what_a_run_does(line_of_jobs, data_dir, capsys):
    from labs.runs.__main__ import list_line, main
    a, b, c = line_of_jobs
    now = time.time()
    done = make_run(data_dir, "done", state="finished", queued_at=now - 100, started_at=now - 95,
                    finished_at=now - 35, step=8, max_steps=8)
    cols = list_line(done, now).split("\t")
    assert cols == ["done", "finished", "8/8", "queue=0:05", "run=1:00", "-"]  # the first three as before
    assert list_line(a, now).split("\t") == [
        "a", "running", "64/64", "queue=0:05", "run=3:05",
        "evaluating 16/40 answers (40%) · fine-tuned model · 2 s/answer · ETA 0:38; whole job: about 0:38 left"]
    assert list_line(b, now).split("\t")[3:] == ["queue=0:20", "run=–", "place 1, start in about 0:38"]
    assert main(["list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [ln.split("\t")[:2] for ln in out] == [["done", "finished"], ["c", "queued"], ["b", "queued"],
                                                  ["a", "running"]]


def test_one_state_everywhere_the_monitor_the_picker_and_the_list(data_dir):
    """A job whose process is gone is 'interrupted' in every view, never 'running' in one of them."""
    from components import shared
    from labs.runs.__main__ import list_line
    now = time.time()
    gone = make_run(data_dir, "gone", state="running", queued_at=now - 100, started_at=now - 90,
                    updated_at=now - 30, pid=2 ** 22 + 7, pid_started=1.0, phase="training", phase_done=3,
                    phase_total=8, phase_unit="steps", phases=[
                        {"name": "training", "total": 8, "unit": "steps", "state": "running", "done": 3}])
    assert dict((v, k) for k, v in shared.run_choices("sft"))["gone"] == "gone · interrupted"
    assert shared.status_markdown("gone").startswith("**interrupted** · `gone` · queued 0:10 · ran 1:00")
    assert "interrupted during training at step 3/8" in shared.status_markdown("gone")
    assert "✗ training (interrupted)" in shared.status_markdown("gone")
    assert list_line(gone).split("\t")[1] == "interrupted"
    assert shared.run_view("gone").state == "interrupted"


def test_the_picker_is_relabelled_when_the_state_drawn_changes(data_dir):
    from components import shared
    run = make_run(data_dir, "r", state="queued", queued_at=time.time(), **alive_here())
    view = shared.run_view("r")
    choices, labeled = shared.relabel("sft", view, None)
    assert choices["choices"] == [("r · queued", "r")] and labeled == ("r", "queued")
    assert shared.relabel("sft", view, labeled) == (shared.gr.skip(), shared.gr.skip())  # nothing changed
    run.set_status(state="running", started_at=time.time())
    choices, labeled = shared.relabel("sft", shared.run_view("r"), labeled)
    assert choices["choices"] == [("r · running", "r")] and labeled == ("r", "running")


def test_the_sweep_table_shows_queue_time_and_run_time_apart(data_dir):
    import json
    from labs.lora import sweep as lora_sweep
    now = time.time()
    make_run(data_dir, "p1", state="finished", queued_at=now - 300, started_at=now - 200, finished_at=now - 80)
    make_run(data_dir, "p2", state="queued", queued_at=now - 300, **alive_here())
    (data_dir / "sweeps").mkdir()
    (data_dir / "sweeps" / "s.json").write_text(json.dumps({"name": "s", "run_ids": ["p1", "p2"], "points": [
        {"run_id": "p1", "rank": 1, "alpha": 2}, {"run_id": "p2", "rank": 2, "alpha": 4}]}))
    rows = lora_sweep.sweep_rows("s")
    assert [(r["state"], r["queued"], r["ran"]) for r in rows] == [("finished", "1:40", "2:00"),
                                                                  ("queued", "5:00", "–")]
