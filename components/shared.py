"""Widgets every tab uses: the app context, the run monitor, run and dataset pickers.

A tab's `build(ctx)` receives an AppContext; the run monitor follows any run directory live.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import gradio as gr

from labs import paths, runs

GPU_QUEUE = dict(concurrency_id="gpu", concurrency_limit=1)  # one model-heavy handler at a time


@dataclass
class AppContext:
    data_dir: Path
    model_spec: gr.Dropdown | gr.Textbox  # the header's model picker; its value is a model spec string
    loads: list = field(default_factory=list)  # (fn, outputs): pickers read afresh when shown

    def on_load(self, fn, outputs, inputs=None) -> None:
        """Run fn(*inputs) -> outputs' updates whenever a page (re)loads and whenever the tab that registered it
        is selected, so a picker lists what exists now (a dataset saved in another tab, a run started elsewhere)."""
        self.loads.append((fn, outputs, inputs))

    def run_monitor(self, prefix: str, **kw) -> "RunMonitor":
        mon = run_monitor(prefix, **kw)
        recipe = kw.get("recipe")
        # a reload finds the run that is running (or queued) selected, else the newest one
        self.on_load(lambda: gr.update(choices=run_choices(recipe), value=preferred_run(recipe)), [mon.run_id])
        return mon


def default_context() -> AppContext:
    """For running one tab alone (python -m components.<tab>): a plain model-spec box."""
    from labs.models import DEFAULT_MODEL
    box = gr.Textbox(value=DEFAULT_MODEL, label="Model", scale=3)
    return AppContext(paths.data_dir(), box)


# --------------------------------------------------------------------------- formatting
def fmt_duration(seconds) -> str:
    if seconds is None:
        return "–"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def run_choices(recipe: str | None = None) -> list[tuple[str, str]]:
    out = []
    for r in runs.list_runs():
        st = r.status()
        if recipe and st.get("recipe", r.recipe) != recipe:
            continue
        out.append((f"{r.id} · {st.get('state')}", r.id))
    return out


def preferred_run(recipe: str | None = None) -> str | None:
    """The run a page shows first: a running one, else a queued one, else the newest (None: no runs yet)."""
    found = [(r.id, r.status().get("state")) for r in runs.list_runs()
             if not recipe or r.status().get("recipe", r.recipe) == recipe]
    for state in ("running", "stopping", "queued"):
        active = [rid for rid, st in found if st == state]
        if active:
            return active[0]
    return found[0][0] if found else None


def status_markdown(run_id: str | None) -> str:
    if not run_id:
        return "No run selected."
    try:
        run = runs.get(run_id)
    except runs.RunError as e:
        return f"⚠️ {e}"
    st = run.status()
    state = st.get("state")
    parts = [f"**{state}** · `{run.id}`"]
    if state == "queued":
        pos = st.get("queue_position")
        parts.append(f"waiting for the training slot (place {pos} in the queue)" if pos else "starting")
    step, total = st.get("step"), st.get("max_steps")
    if step is not None and total:
        parts.append(f"step {step}/{total} ({100 * step / total:.0f}%)")
    if state in ("running", "stopping"):
        parts.append(f"ETA {fmt_duration(st.get('eta_s'))}")
    rows = run.metrics()
    last = next((r for r in reversed(rows) if r.get("loss") is not None), None)
    if last:
        parts.append(f"loss {last['loss']:.4f}")
    ev = next((r for r in reversed(rows) if r.get("eval_loss") is not None), None)
    if ev:
        parts.append(f"eval loss {ev['eval_loss']:.4f}")
    tps = next((r["tokens_per_s"] for r in reversed(rows) if r.get("tokens_per_s")), None)
    if tps:
        parts.append(f"{tps:.0f} tokens/s")
    return " · ".join(parts)


def error_markdown(run_id: str | None) -> str:
    if not run_id:
        return ""
    try:
        run = runs.get(run_id)
    except runs.RunError:
        return ""
    st = run.status()
    state = st.get("state")
    if state == "failed":
        tail = st.get("log_tail") or run.log_tail(30)
        advice = f"\n\n**What to try:** {st['advice']}" if st.get("advice") else ""
        return f"### ❌ Run failed\n`{st.get('error')}`{advice}\n\nLast lines of the log:\n```\n{tail}\n```"
    if state == "interrupted":
        ck = run.latest_checkpoint()
        res = f"Resume continues from `{ck.name}`." if ck else "It has no checkpoint: start it again."
        return f"### ⚠️ Interrupted\n{st.get('error')}. {res}\n```\n{run.log_tail(10)}\n```"
    if state == "corrupt":
        return f"### ⚠️ Unreadable run directory\n{st.get('error')}"
    return ""


# --------------------------------------------------------------------------- run monitor
@dataclass
class RunMonitor:
    run_id: gr.Dropdown
    status: gr.Markdown
    loss_plot: gr.Plot
    error: gr.Markdown
    timer: gr.Timer
    seen: gr.State  # per browser session: the RunView on screen
    draws: list     # the events that may redraw the run: pick / re-plot, timer tick, Stop / Kill / Resume

    def after_draw(self, fn, inputs, outputs) -> None:
        """Chain `fn` after each event that may have redrawn the run; `fn` reads `seen` to tell what changed.
        (A gr.State's .change would be the natural trigger, but Gradio sends it only for queued events and
        these run with queue=False.)"""
        for event in self.draws:
            event.then(fn, inputs, outputs, queue=False, show_progress="hidden", api_visibility="private")


class RunView(NamedTuple):
    """What a live view of a run is drawn from, read cheaply: two stats and status.json (psutil only for
    an active run). Equal views: nothing to redraw."""
    run_id: str | None
    state: str | None
    queue_position: int | None
    metrics: tuple | None  # metrics.jsonl (size, mtime_ns): changes with every training log
    status: tuple | None   # status.json (size, mtime_ns): rewritten about once a second while training


def run_view(run_id: str | None) -> RunView:
    if not run_id:
        return RunView(None, None, None, None, None)
    try:
        run = runs.get(run_id)
    except runs.RunError:
        return RunView(run_id, "missing", None, None, None)
    st = run.status()
    return RunView(run_id, st.get("state"), st.get("queue_position"), run.stamp("metrics"),
                   run.stamp("status"))


def is_live(view: RunView | None) -> bool:
    """A run that can still change (queued, running, stopping): its view keeps ticking."""
    return view is not None and view.state in runs.ACTIVE


def refresh(run_id, smoothing=0.0, log_scale=False):
    from labs.plots import loss_figure
    try:
        rows = runs.get(run_id).metrics() if run_id else []
    except runs.RunError:  # a typed id that is no run, or no name ('..'): the status line says which
        rows = []
    fig = loss_figure({run_id or "run": rows}, smoothing=smoothing, log_scale=log_scale)
    return status_markdown(run_id), fig, error_markdown(run_id)


def _act(action, run_id):
    if not run_id:
        raise gr.Error("Pick a run first.")
    try:
        {"stop": runs.stop, "kill": runs.kill, "resume": runs.resume}[action](run_id)
    except runs.RunError as e:
        raise gr.Error(str(e)) from None
    return status_markdown(run_id)


def show(run_id, smoothing=0.0, log_scale=False):
    """Draw the run now (picked, re-plotted, after Stop/Kill/Resume); the timer runs only while the run
    can still change. The view is read before drawing, so a change made meanwhile is drawn at the next tick."""
    view = run_view(run_id)
    return (*refresh(run_id, smoothing, log_scale), view, gr.Timer(active=is_live(view)))


def tick(run_id, smoothing, log_scale, seen):
    """A timer tick: skip every output when the run is as last drawn, redraw the loss figure only when
    metrics.jsonl changed, and switch the timer off once the run has ended (finished, failed, ...)."""
    view = run_view(run_id)
    timer = gr.skip() if is_live(view) else gr.Timer(active=False)
    if view == seen:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), timer
    if seen is None or (view.run_id, view.metrics) != (seen.run_id, seen.metrics):
        status, fig, error = refresh(run_id, smoothing, log_scale)
    else:  # only status.json moved (step, ETA): the figure stays
        status, fig, error = status_markdown(run_id), gr.skip(), error_markdown(run_id)
    return status, fig, error, view, timer


def run_monitor(prefix: str, recipe: str | None = None, every_s: float = 2.0) -> RunMonitor:
    """Progress with ETA, a live loss curve, Stop / Kill / Resume and the error panel for one run.

    The run picker lists the runs of `recipe`; a page reload or an app restart re-attaches to them
    because everything shown is read back from the run directory.
    """
    with gr.Group():
        with gr.Row():
            run_id = gr.Dropdown(choices=run_choices(recipe), label="Run", scale=4, allow_custom_value=True)
            refresh_btn = gr.Button("↻", scale=0, min_width=40)
            stop_btn = gr.Button("Stop (save checkpoint)", scale=1, variant="secondary")
            kill_btn = gr.Button("Kill", scale=0, variant="stop")
            resume_btn = gr.Button("Resume", scale=0)
        status = gr.Markdown("No run selected.")
        with gr.Row():
            smoothing = gr.Slider(0, 0.95, value=0.0, step=0.05, label="Smoothing", scale=2)
            log_scale = gr.Checkbox(label="Log scale", value=False, scale=1)
        loss_plot = gr.Plot(label="Loss")
        error = gr.Markdown()
    # The first tick draws the run the picker shows when the page loads (its first choice, the newest run);
    # after that the timer runs only while the run shown can change: a page left on a finished run sends nothing.
    timer = gr.Timer(every_s)
    seen = gr.State(None)  # per browser session: the RunView on screen

    inputs, outputs = [run_id, smoothing, log_scale], [status, loss_plot, error, seen, timer]
    draws = [timer.tick(tick, [*inputs, seen], outputs, queue=False, show_progress="hidden",
                        api_visibility="private"),
             gr.on([run_id.change, smoothing.release, log_scale.change], show, inputs, outputs, queue=False,
                   api_visibility="private")]
    refresh_btn.click(lambda: gr.Dropdown(choices=run_choices(recipe)), None, run_id, queue=False)
    # ↻ also redraws the run (the API's {prefix}_run_status) and lets the next tick decide about the timer
    refresh_btn.click(refresh, inputs, [status, loss_plot, error], queue=False, api_name=f"{prefix}_run_status").then(
        lambda: (None, gr.Timer(active=True)), None, [seen, timer], queue=False, api_visibility="private")
    for btn, action in ((stop_btn, "stop"), (kill_btn, "kill"), (resume_btn, "resume")):
        draws.append(btn.click(lambda rid, a=action: _act(a, rid), run_id, status, api_name=f"{prefix}_run_{action}")
                     .success(show, inputs, outputs, queue=False, api_visibility="private"))  # Resume re-arms it
    return RunMonitor(run_id, status, loss_plot, error, timer, seen, draws)


def dataset_choices() -> list[str]:
    """Saved datasets (Dataset builder) plus the bundled samples, for every tab's dataset picker."""
    names: list[str] = []
    try:
        from labs import data
        names = list(data.list_datasets())
    except (ImportError, AttributeError):
        pass
    return names


def now() -> str:
    return time.strftime("%H:%M:%S")
