"""Live views tick only while their run can change and redraw only on new data: the run monitor, the SFT
details panel, the LoRA sweep view and the header; a queued run's place is found without re-reading
every run. The handlers are called directly (they are plain functions); one test serves the SFT tab."""
from __future__ import annotations

import json
import os
import time

import gradio as gr
import psutil
import pytest
import yaml

from components import lora_tab, shared, sft_tab
from labs import runs
from labs.runs import directory

SKIP = gr.skip()


def make_run(data_dir, run_id, state="finished", n_rows=10, **status):
    """A run directory as the engine writes it (labs/runs/directory.py): config, status, metrics."""
    d = data_dir / "runs" / run_id
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump({"model": "tiny", "max_steps": 2 * n_rows}))
    directory.write_json(d / "status.json", {"state": state, "recipe": "sft", "queued_at": time.time(), **status})
    (d / "metrics.jsonl").write_text("".join(json.dumps({"step": 2 * i + 2, "loss": 2.0 - 0.1 * i}) + "\n"
                                             for i in range(n_rows)))
    return runs.get(run_id)


def alive_here() -> dict:
    """status.json fields naming this test process as the job: proc_alive() says it runs."""
    return {"pid": os.getpid(), "pid_started": psutil.Process().create_time()}


@pytest.fixture
def figures(monkeypatch):
    """Counts the loss figures built (the costly part of a redraw)."""
    import labs.plots
    built = []
    real = labs.plots.loss_figure

    def counting(*a, **kw):
        built.append(a)
        return real(*a, **kw)
    monkeypatch.setattr(labs.plots, "loss_figure", counting)
    return built


def test_monitor_on_a_finished_run_switches_its_timer_off_and_draws_nothing(data_dir, figures):
    run = make_run(data_dir, "done", "finished")
    status, fig, error, view, timer = shared.show(run.id)  # the run is picked
    assert "**finished**" in status and len(figures) == 1 and fig.axes[0].lines
    assert timer.active is False and view.state == "finished"
    out = shared.tick(run.id, 0.0, False, view)  # a tick still in flight when the timer went off
    assert out[:4] == (SKIP,) * 4 and out[4].active is False
    assert len(figures) == 1  # no figure was rebuilt
    # no view yet (the first tick after a page load, or after ↻): the tick draws once, then the timer is off
    status, fig, _, view2, timer = shared.tick(run.id, 0.0, False, None)
    assert "**finished**" in status and len(figures) == 2 and timer.active is False and view2 == view


def test_monitor_on_a_running_run_redraws_only_when_metrics_grew(data_dir, figures):
    run = make_run(data_dir, "live", "running", step=20, max_steps=40, **alive_here())
    *_, view, timer = shared.show(run.id)
    assert timer.active is True and len(figures) == 1
    assert shared.tick(run.id, 0.0, False, view) == (SKIP,) * 5  # nothing new: nothing sent, timer stays on

    with open(run.dir / "metrics.jsonl", "a") as fh:  # the job logs a step
        fh.write(json.dumps({"step": 22, "loss": 0.123}) + "\n")
    status, fig, error, view2, timer = shared.tick(run.id, 0.0, False, view)
    assert len(figures) == 2 and fig.axes[0].lines[0].get_ydata()[-1] == pytest.approx(0.123)
    assert "loss 0.1230" in status and view2 != view and timer == SKIP

    before = (run.dir / "status.json").stat().st_mtime_ns
    run.set_status(step=23, eta_s=30)  # status.json only (about once a second while training)
    os.utime(run.dir / "status.json", ns=(before + 10**9, before + 10**9))  # later, also on coarse clocks
    status, fig, error, view3, timer = shared.tick(run.id, 0.0, False, view2)
    assert "step 23/40" in status and fig == SKIP and len(figures) == 2 and timer == SKIP

    run.set_status(state="finished", pid=None)  # the job ends: one last draw, then the timer stops
    status, fig, error, view4, timer = shared.tick(run.id, 0.0, False, view3)
    assert "**finished**" in status and timer.active is False


def test_no_run_picked_keeps_the_timer_off(data_dir, figures):
    *_, view, timer = shared.show(None)
    assert timer.active is False
    assert shared.tick(None, 0.0, False, view)[4].active is False and len(figures) == 1


def test_sft_details_redraw_only_when_the_runs_data_changed(data_dir):
    run = make_run(data_dir, "d", "running", **alive_here())
    view = shared.run_view(run.id)
    overlay, extra, table, md, preds, drawn = sft_tab.details_follow(run.id, [], view, None)
    assert drawn == (run.id, "running", view.metrics)
    assert [list(ln.get_xdata()) for ax in extra.axes for ln in ax.lines] == [[]]  # no learning rate logged yet
    assert sft_tab.details_follow(run.id, [], view._replace(status=(1, 2)), drawn) == SKIP  # a status tick
    with open(run.dir / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"step": 30, "loss": 0.5, "learning_rate": 1e-4}) + "\n")
    out = sft_tab.details_follow(run.id, [], shared.run_view(run.id), drawn)
    assert len(out) == 6 and out[-1] != drawn
    (ax,) = out[1].axes  # redrawn from the new row: the learning rate logged at step 30
    assert ax.get_title() == "learning_rate" and [(x, y) for ln in ax.lines for x, y in ln.get_xydata()] == [(30, 1e-4)]


def test_sweep_view_ticks_while_a_point_runs(data_dir):
    done = make_run(data_dir, "sw-r1", "finished")
    live = make_run(data_dir, "sw-r2", "running", **alive_here())
    (data_dir / "sweeps").mkdir()
    (data_dir / "sweeps" / "s.json").write_text(json.dumps({"name": "s", "run_ids": [done.id, live.id], "points": [
        {"run_id": done.id, "rank": 1, "alpha": 2}, {"run_id": live.id, "rank": 2, "alpha": 4}]}))
    table, plot, md, view, timer = lora_tab.sweep_show("s")
    assert "1/2 finished" in md and timer.active is True
    assert lora_tab.sweep_tick("s", view) == (SKIP,) * 5
    live.set_status(step=3)  # status.json alone does not change the table or the plot
    assert lora_tab.sweep_tick("s", view) == (SKIP,) * 5
    live.set_status(state="finished", pid=None)
    table, plot, md, view2, timer = lora_tab.sweep_tick("s", view)
    assert "2/2 finished" in md and timer.active is False
    assert lora_tab.sweep_tick("s", view2)[:4] == (SKIP,) * 4


def test_header_timer_runs_only_while_a_model_loads(data_dir, monkeypatch):
    import app
    demo = app.build("some/model")
    tick = next(f.fn for f in demo.fns.values() if f.api_name == "model_status")
    monkeypatch.setattr(app.MODEL, "items", {})
    header, timer = tick("some/model")  # --no-preload: nothing loads, nothing to follow
    assert "not loaded yet" in header and timer.active is False
    monkeypatch.setattr(app.MODEL, "items", {"some/model": {"state": "loading", "message": "reading"}})
    assert tick("some/model")[1].active is True
    monkeypatch.setattr(app.MODEL, "items", {"some/model": {"state": "ready", "message": "m", "seconds": 1.0}})
    assert tick("some/model")[1].active is False


def test_queue_position_reads_only_what_changed(data_dir, monkeypatch):
    first = make_run(data_dir, "q1", "queued", queued_at=1.0, **alive_here())
    second = make_run(data_dir, "q2", "queued", queued_at=2.0, **alive_here())
    make_run(data_dir, "old", "finished")
    reads, checks = [], []
    real_raw, real_alive = runs.Run.raw_status, directory.proc_alive
    monkeypatch.setattr(runs.Run, "raw_status", lambda self: reads.append(self.id) or real_raw(self))
    monkeypatch.setattr(directory, "proc_alive", lambda *a: checks.append(a) or real_alive(*a))

    assert directory.queue_position(second) == 2 and directory.queue_position(first) == 1
    assert sorted(reads) == ["old", "q1", "q2"]  # the first call reads every status once...
    assert len(checks) == 2  # ...and asks psutil once per queued job
    reads.clear(), checks.clear()
    assert second.status()["queue_position"] == 2
    assert reads == [] and len(checks) == 1  # only the run's own liveness (Run.status), no scan of files

    first.set_status(state="running")  # the first job takes the training slot
    reads.clear()
    assert directory.queue_position(second) == 1 and reads == ["q1"]  # the changed status alone is re-read

    gone = make_run(data_dir, "q0", "queued", queued_at=0.5, pid=2 ** 22 + 7, pid_started=1.0)  # no such process
    assert directory.queue_position(second) == 1 and directory.queue_position(gone) is None


def test_sft_tab_endpoints_keep_their_shape(data_dir, serve_tab):
    """Through gradio_client: the monitor's status and the details endpoints answer as before, on a
    finished run, with no training (the session states stay out of the API)."""
    run = make_run(data_dir, "served", "finished")
    with serve_tab(sft_tab, data_dir, "tiny") as client:
        status, plot, error = client.predict(run.id, 0.0, False, api_name="/sft_run_status")
        assert "**finished**" in status and "loss 1.1000" in status
        assert plot["type"] == "matplotlib" and plot["plot"].startswith("data:image/") and error == ""
        overlay, extra, gens, md, preds = client.predict(run.id, [], api_name="/sft_details")
        assert overlay is None and extra["type"] == "matplotlib"
