"""Widgets every tab uses: the app context, the run monitor, run and dataset pickers.

A tab's `build(ctx)` receives an AppContext; the run monitor follows any run directory live.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import gradio as gr

from labs import access, paths, runs
from labs.errors import LabError
from labs.runs import progress

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
fmt_duration = progress.fmt_duration  # 0:05, 12:34, 1:02:03


def run_choices(recipe: str | None = None) -> list[tuple[str, str]]:
    """(label, run id) of the runs of `recipe`, newest first; the label shows the state Run.status() decides
    (the monitor relabels its picker when the state it shows changes)."""
    out = []
    for r in runs.list_runs():
        st = r.status()
        if recipe and st.get("recipe", r.recipe) != recipe:
            continue
        out.append((f"{r.id} · {st.get('state')}", r.id))
    return out


def preferred_run(recipe: str | None = None) -> str | None:
    """The run a page shows first: a running one, else a queued one, else the newest (None: no runs yet)."""
    found = [(r.id, st.get("state")) for r, st in ((r, r.status()) for r in runs.list_runs())
             if not recipe or st.get("recipe", r.recipe) == recipe]
    for state in ("running", "stopping", "queued"):
        active = [rid for rid, st in found if st == state]
        if active:
            return active[0]
    return found[0][0] if found else None


def status_markdown(run_id: str | None) -> str:
    """The monitor's text: state and times, the current phase with its bar, count and ETA, the whole job's
    time left (with its bar once every phase ahead is timed), the phases, the last loss. A queued run: its
    place and estimated start from the jobs ahead."""
    if not run_id:
        return "No run selected."
    try:
        run = runs.get(run_id)
    except runs.RunError as e:
        return f"⚠️ {e}"
    st, now = run.status(), time.time()
    state = st.get("state")
    head = [f"**{state}** · `{run.id}`"]
    times = progress.times_words(st, now)
    if times:
        head.append(times)
    lines = []
    if state == "queued":
        pos = st.get("queue_position")
        if pos:
            head.append(f"place {pos} in the queue")
            est = runs.start_estimate(run, now)
            lines.append(f"estimated start: {progress.start_words(est, lambda rid: f'`{rid}`')}" if est["ahead"]
                         else "estimated start: now (no job ahead)")
        else:
            head.append("starting")
    cur = progress.current(st, now)
    if cur and cur["detail"]:  # a stage may name a model path: shown as typed, not as markup
        cur["detail"] = escape_md(cur["detail"])
    if cur and state in ("running", "stopping"):
        if cur["total"]:
            lines.append(f"{cur['name']} `{progress.bar(cur['fraction'])}` "
                         + progress.current_words(cur).removeprefix(cur["name"]).lstrip())
        else:
            since = f" · since {time.strftime('%H:%M:%S', time.localtime(cur['since']))}" if cur["since"] else ""
            lines.append(progress.current_words(cur) + since)
        whole = progress.overall_fraction(st, now)
        if whole is not None:
            lines.append(f"whole job `{progress.bar(whole)}` {100 * whole:.0f}% · {progress.left_words(st, now)}")
        else:
            lines.append(f"whole job: {progress.left_words(st, now)}")
        if state == "stopping":
            lines.append("stopping: training ends after the current step (a checkpoint is saved); the phases "
                         "after it still run")
    elif state in ("stopped", "failed", "interrupted") and progress.ended_words(st):
        lines.append(progress.ended_words(st))
    plan = progress.phases_words(st)
    if plan and state != "queued":
        lines.append(plan)
    rows = run.metrics()
    tail = []
    last = next((r for r in reversed(rows) if r.get("loss") is not None), None)
    if last:
        tail.append(f"loss {last['loss']:.4f}")
    ev = next((r for r in reversed(rows) if r.get("eval_loss") is not None), None)
    if ev:
        tail.append(f"eval loss {ev['eval_loss']:.4f}")
    tps = next((r["tokens_per_s"] for r in reversed(rows) if r.get("tokens_per_s")), None)
    if tps:
        tail.append(f"{tps:.0f} tokens/s")
    if tail:
        lines.append(" · ".join(tail))
    return "\n\n".join([" · ".join(head), *lines])


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
    ahead: tuple | None = None  # a queued run: (id, status stamp) of each job ahead; its start estimate moves


def run_view(run_id: str | None) -> RunView:
    if not run_id:
        return RunView(None, None, None, None, None)
    try:
        run = runs.get(run_id)
    except runs.RunError:
        return RunView(run_id, "missing", None, None, None)
    st = run.status()
    ahead = None
    if st.get("state") == "queued" and st.get("queue_position"):
        ahead = tuple((rid, runs.Run(run.dir.parent / rid).stamp("status")) for rid in runs.queue_ahead(run))
    return RunView(run_id, st.get("state"), st.get("queue_position"), run.stamp("metrics"),
                   run.stamp("status"), ahead)


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


def _act(action, run_id, request: gr.Request | None = None):
    if not run_id:
        raise gr.Error("Pick a run first.")
    try:
        {"stop": runs.stop, "kill": runs.kill, "resume": runs.resume}[action](run_id, actor=actor_of(request))
    except LabError as e:  # a run in another state, or someone else's run in a shared lab
        raise gr.Error(str(e)) from None
    return status_markdown(run_id)


def stop_run(run_id, request: gr.Request = None):
    return _act("stop", run_id, request)


def kill_run(run_id, request: gr.Request = None):
    return _act("kill", run_id, request)


def resume_run(run_id, request: gr.Request = None):
    return _act("resume", run_id, request)


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
        handler = {"stop": stop_run, "kill": kill_run, "resume": resume_run}[action]
        draws.append(btn.click(handler, run_id, status, api_name=f"{prefix}_run_{action}")
                     .success(show, inputs, outputs, queue=False, api_visibility="private"))  # Resume re-arms it
    mon = RunMonitor(run_id, status, loss_plot, error, timer, seen, draws)
    # the picker's labels carry a state ("· queued"): read again when the state drawn changes, so the picker
    # never says queued while the monitor says running
    labeled = gr.State(None)  # per browser session: the (run id, state) the labels were last read with
    mon.after_draw(lambda view, was: relabel(recipe, view, was), [seen, labeled], [run_id, labeled])
    return mon


def relabel(recipe: str | None, view: RunView | None, labeled: tuple | None):
    """The picker's choices read afresh when the run drawn is in another state than when they were read."""
    key = (view.run_id, view.state) if view is not None else None
    if key is None or key[0] is None or key == labeled:
        return gr.skip(), gr.skip()
    return gr.update(choices=run_choices(recipe)), key


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


# --------------------------------------------------------------------------- who is asking (labs/access.py)
def actor_of(request: gr.Request | None, typed: str | None = None) -> access.Actor:
    """The person behind an event: the local user (local mode); the signed-in name from --auth (Gradio's
    request.username) or from a Space's sign-in (the OAuth session); with --public the typed name. Never a
    typed name where people sign in. Handlers pass it to the labs functions that check rights."""
    s = access.settings()
    if not s.shared:
        return access.LOCAL
    if s.identity == "oauth":
        return access.actor(oauth_info(request).get("userinfo", {}).get("preferred_username"), via="oauth")
    if s.identity == "auth":
        return access.actor(getattr(request, "username", None), via="auth")
    return access.actor((typed or "").strip() or None, via="public")


def oauth_info(request: gr.Request | None) -> dict:
    """The Space sign-in's session data (userinfo, access_token, scope), {} when signed out. Read from the
    request's session, as Gradio itself does for gr.OAuthProfile: declaring that parameter would switch on
    Gradio's OAuth routes in every mode, and locally they need a Hugging Face login."""
    from gradio.helpers import _session_from_request
    from gradio.oauth import _get_valid_oauth_info_from_session
    try:
        return _get_valid_oauth_info_from_session(_session_from_request(request)) or {}
    except Exception:  # noqa: BLE001 - no session middleware (not signed in through OAuth): nobody
        return {}


def who_line(request: gr.Request | None = None) -> str:
    """The header's line: who the page acts as (shared mode) — text, not markup."""
    a = actor_of(request)
    if not access.shared():
        return ""
    if a.via == "anonymous":
        return "Not signed in: you can read, not write."
    return f"Signed in as **{escape_md(a.name)}** ({a.role})" if a.via != "public" else \
        "Public lab: type your name where you label or rate; names are not verified."


def escape_md(text: str) -> str:
    """Characters that Markdown would read as markup, escaped, so a name or a row shows as typed."""
    import html
    out = html.escape(str(text), quote=False)
    return "".join("\\" + c if c in "\\`*_{}[]()#+-.!|>~" else c for c in out)


def with_request(fn):
    """An event handler that hands Gradio's request on to `fn(*values, request=...)`. Gradio passes gr.Request
    only into a positional parameter before any *args, and the form handlers take the form's values as *values;
    `fn` stays callable as fn(*values) from code and tests."""
    def handler(request: gr.Request, *values):
        return fn(*values, request=request)
    handler.__name__, handler.__doc__ = fn.__name__, fn.__doc__  # not functools.wraps: Gradio would read fn's signature
    return handler


def guidelines_markdown(kind: str) -> str:
    """The guidelines an admin wrote for labeling pairs ('preference') or rating answers ('rating'), as text in a
    box above the pair or the answer; '' when there are none."""
    from labs import store
    g = store.guidelines(kind)
    if not g:
        return ""
    return (f"**Guidelines** (version {g['version']}, by {escape_md(g['author'])}):\n\n"
            + "\n".join(f"> {escape_md(line)}" if line.strip() else ">" for line in g["text"].splitlines()))
