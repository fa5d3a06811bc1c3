"""Admin tab: who is online, the queue with its owners, who labeled and rated how much, agreement per pair of
annotators, the labeling guidelines every annotator and rater sees, and one-click export of everything.

    python -m components.admin_tab        # this tab alone

Everyone may look (the numbers are the team's own); the controls act only for an admin, and the check is in
labs (labs.access), so calling admin_* endpoints directly changes nothing for anyone else. In local mode the
one person is the admin. Callable by gradio_client: admin_overview, admin_guidelines_save, admin_export,
admin_run_stop, admin_run_kill (hidden from the API page; they check rights themselves).
"""
from __future__ import annotations

import gradio as gr
import pandas as pd

from components.shared import actor_of, escape_md, fmt_duration
from labs import access, runs, store
from labs.errors import LabError
from labs.preference import labels

QUEUE_COLUMNS = ["run", "recipe", "owner", "state", "place", "queued for", "running for"]
ONLINE_COLUMNS = ["person", "last seen"]
WORK_COLUMNS = ["person", "pair labels", "answer ratings", "last active"]
AGREE_COLUMNS = ["annotators", "pairs both labeled", "same choice", "Cohen's kappa"]
HISTORY_COLUMNS = ["version", "kind", "author", "written", "first line"]


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


def queue_rows() -> list[dict]:
    import time
    out = []
    now = time.time()
    for r in runs.list_runs():
        st = r.status()
        if st.get("state") not in runs.ACTIVE:
            continue
        started = st.get("started_at")
        out.append({"run": r.id, "recipe": st.get("recipe", r.recipe), "owner": st.get("owner", "local"),
                    "state": st.get("state"), "place": st.get("queue_position") or "",
                    "queued for": fmt_duration((started or now) - (st.get("queued_at") or now)),
                    "running for": fmt_duration(now - started) if started else ""})
    return out


def overview(request: gr.Request = None):
    """Everything the tab shows, read now: (who, online, queue, work, agreement, guideline history)."""
    import time
    who = actor_of(request)
    mode = access.settings()
    head = (f"**Mode:** {'shared' if mode.shared else 'local (one person)'} · sign-in: {mode.identity} · you: "
            f"{escape_md(who.name)} ({who.role})" + ("" if access.allowed(who, "admin") else
                                                    " — the controls below act only for an admin"))
    online = [{"person": n, "last seen": f"{s:.0f} s ago"} for n, s in access.online()]
    work = [{"person": w["name"], "pair labels": w["labels"], "answer ratings": w["ratings"],
             "last active": time.strftime("%Y-%m-%d %H:%M", time.localtime(w["last"])) if w["last"] else ""}
            for w in store.work_by_person()]
    agree = [{"annotators": a["annotators"], "pairs both labeled": a["pairs"], "same choice": a["same"],
              "Cohen's kappa": None if a["kappa"] is None else round(a["kappa"], 3)} for a in labels.pairwise_agreement()]
    hist = [{"version": g["version"], "kind": g["kind"], "author": g["author"],
             "written": time.strftime("%Y-%m-%d %H:%M", time.localtime(g["created_at"])),
             "first line": (g["text"].splitlines() or [""])[0][:80]}
            for kind in store.GUIDELINE_KINDS for g in store.guideline_history(kind)]
    return (head, _frame(online, ONLINE_COLUMNS), _frame(queue_rows(), QUEUE_COLUMNS), _frame(work, WORK_COLUMNS),
            _frame(agree, AGREE_COLUMNS), _frame(hist, HISTORY_COLUMNS))


def current_guidelines():
    return tuple((store.guidelines(kind) or {}).get("text", "") for kind in store.GUIDELINE_KINDS)


def save_guidelines(kind: str, text: str, request: gr.Request = None) -> str:
    who = actor_of(request)
    try:
        access.check(who, "admin", what="guidelines")
        version = store.set_guidelines(kind, text, who.name)
    except LabError as e:
        gr.Warning(str(e))
        return f"⚠️ {escape_md(str(e))}"
    return f"Saved version {version} of the {kind} guidelines: every {'annotator' if kind == 'preference' else 'rater'} " \
           "sees it from the next item on; labels record the version in force when they were made."


def run_action(action: str, run_id: str, request: gr.Request = None) -> str:
    try:
        {"stop": runs.stop, "kill": runs.kill}[action](run_id, actor=actor_of(request))
    except LabError as e:
        gr.Warning(str(e))
        return f"⚠️ {escape_md(str(e))}"
    return f"{action}: `{run_id}` done."


def save_preference_guidelines(text: str, request: gr.Request = None) -> str:
    return save_guidelines("preference", text, request)


def save_rating_guidelines(text: str, request: gr.Request = None) -> str:
    return save_guidelines("rating", text, request)


def stop_run(run_id: str, request: gr.Request = None) -> str:
    return run_action("stop", (run_id or "").strip(), request)


def kill_run(run_id: str, request: gr.Request = None) -> str:
    return run_action("kill", (run_id or "").strip(), request)


def export(request: gr.Request = None):
    """One zip of everything a restart would lose (admins; the one local user)."""
    from labs import paths, snapshot
    try:
        access.check(actor_of(request), "admin", what="the export of everything")
        return str(snapshot.export_zip(paths.data_dir())), "Export ready: labels, ratings (also as JSONL), runs, " \
            "datasets and loops."
    except LabError as e:
        gr.Warning(str(e))
        return None, f"⚠️ {escape_md(str(e))}"


def build(ctx) -> None:
    gr.Markdown("### Admin\nThe team's lab at a glance. Everyone sees the numbers; only an admin's controls act.")
    head = gr.Markdown()
    refresh = gr.Button("↻ Refresh")
    with gr.Row():
        online = gr.Dataframe(_frame([], ONLINE_COLUMNS), label="Online (last 5 minutes)", interactive=False)
        work = gr.Dataframe(_frame([], WORK_COLUMNS), label="Work by person", interactive=False)
    queue = gr.Dataframe(_frame([], QUEUE_COLUMNS), label="Queue: jobs queued or running, with their owners",
                         interactive=False, wrap=True)
    with gr.Row():
        run_id = gr.Textbox(label="Run id (from the queue)", scale=3)
        stop_btn = gr.Button("Stop (checkpoint)", scale=1)
        kill_btn = gr.Button("Kill", variant="stop", scale=1)
    run_md = gr.Markdown()
    agree = gr.Dataframe(_frame([], AGREE_COLUMNS), label="Agreement per pair of annotators", interactive=False)
    gr.Markdown("#### Guidelines (shown above every pair and every answer to rate)")
    with gr.Row():
        pref_text = gr.Textbox(label="Preference labeling guidelines", lines=6, scale=1)
        rate_text = gr.Textbox(label="Rating guidelines", lines=6, scale=1)
    with gr.Row():
        pref_save = gr.Button("Save preference guidelines")
        rate_save = gr.Button("Save rating guidelines")
    guide_md = gr.Markdown()
    history = gr.Dataframe(_frame([], HISTORY_COLUMNS), label="Guideline versions", interactive=False)
    gr.Markdown("#### Export")
    with gr.Row():
        export_btn = gr.Button("Export everything (zip)")
        export_file = gr.File(label="Download", interactive=False)
    export_md = gr.Markdown()

    outputs = [head, online, queue, work, agree, history]
    refresh.click(overview, None, outputs, api_name="admin_overview", api_visibility="private", queue=False)
    ctx.on_load(overview, outputs)
    ctx.on_load(current_guidelines, [pref_text, rate_text])
    pref_save.click(save_preference_guidelines, pref_text, guide_md, api_name="admin_guidelines_save",
                    api_visibility="private").then(overview, None, outputs)
    rate_save.click(save_rating_guidelines, rate_text, guide_md, api_visibility="private").then(overview, None,
                                                                                                  outputs)
    stop_btn.click(stop_run, run_id, run_md, api_name="admin_run_stop", api_visibility="private").then(
        overview, None, outputs)
    kill_btn.click(kill_run, run_id, run_md, api_name="admin_run_kill", api_visibility="private").then(
        overview, None, outputs)
    export_btn.click(export, None, [export_file, export_md], api_name="admin_export", api_visibility="private")


if __name__ == "__main__":
    from components.shared import default_context
    with gr.Blocks(title="Admin") as demo:
        build(default_context())
    demo.launch()
