"""Evaluation tab: pick models (the base and fine-tuned runs) and a dataset split, run the evaluation as a job,
then read the metric table with deltas (and per slice of a column, when asked), the error buckets and the wrong
answers, the forgetting probe, the bias audit, and download the report.

    python -m components.evaluation_tab        # this tab alone

The job is `python -m labs.evaluation --config <run-dir>/config.yaml` (recipe "evaluation"): it survives a
page reload, can be stopped, and leaves evaluation.json, predictions.jsonl and report.html/.md in its run
directory, which is all this tab reads back. Callable by gradio_client: eval_start, eval_status, eval_stop,
eval_results, eval_errors, eval_export.
"""
from __future__ import annotations

import gradio as gr
import pandas as pd

from components.shared import (actor_of, dataset_choices, error_markdown, is_live, preferred_run, run_choices, run_view,
                               status_markdown)
from labs import runs
from labs.data.display import column_widths, md_code
from labs.evaluation import bias as bias_mod
from labs.evaluation import results as run_results
from labs.evaluation.errors import BUCKETS, select
from labs.errors import LabError
from labs.evaluation.evaluate import EvalConfig
from labs.evaluation.slices import table as slice_table

EMPTY = pd.DataFrame()
CELL_CHARS = 300  # a table cell shows its first 300 characters; a click on it shows the whole text
# the tables with a fixed set of columns: their names before anything is shown, and widths that keep the
# answers and references on screen next to long inputs
ERROR_COLUMNS, ERROR_WIDTHS = ["category", "input", "reference", "prediction", "bucket", "loss"], \
    ["9%", "33%", "22%", "22%", "8%", "6%"]
BIAS_WIDTHS = ["12%", "14%", "8%", "40%", "26%"]     # model, group, score, answer, prompt
FORGET_WIDTHS = ["10%", "40%", "25%", "25%"]         # change, question, before, after
NOT_RUN = ("The {what} was not run for this evaluation: tick **{box}** under *Forgetting probe and bias audit* "
           "and start again.")


def model_choices(base: str | None) -> list[tuple[str, str]]:
    """The header's model, then every SFT run that has an adapter or a model (newest first)."""
    out = [(f"{base} (base)", base)] if base else []
    for r in runs.list_runs():
        st = r.status()
        if st.get("recipe", "sft") != "evaluation" and r.trained_model() is not None:
            out.append((f"{r.id} · {st.get('recipe', 'sft')} · {st.get('state')}", str(r.dir)))
    return out


# --------------------------------------------------------------------------- handlers (plain functions)
def start(models, data, split, task, tasks, max_rows, max_new_tokens, loss, compare_base, forgetting, bias,
          templates, groups, label, slice_by="", request: gr.Request = None):
    models = [m for m in (models or []) if m]
    try:
        cfg = EvalConfig(models=models, data=(data or "").strip(), split=split, task=task, tasks=tasks.strip(),
                         max_rows=max_rows, max_new_tokens=max_new_tokens, loss=bool(loss),
                         compare_base=bool(compare_base), forgetting=bool(forgetting), bias=bool(bias),
                         bias_templates=templates or "", bias_groups=groups or "", bias_label=(label or "").strip(),
                         slice_by=slice_by or "")
        run = runs.submit("evaluation", cfg.to_dict(), name="evaluation", actor=actor_of(request))
    except LabError as e:
        gr.Warning(str(e))
        return gr.update(), f"⚠️ **{e}**"
    return run.id, f"Started evaluation `{run.id}`: `python -m labs.evaluation --config {run.dir / 'config.yaml'}`"


def status(run_id):
    return status_markdown(run_id), error_markdown(run_id)  # the phase and its stage are in status_markdown


def show(run_id):
    """Picked or started: draw the status, and let the timer tick only while the job can still change."""
    view = run_view(run_id)
    return (*status(run_id), view, gr.Timer(active=is_live(view)))


def tick(run_id, seen):
    view = run_view(run_id)
    timer = gr.skip() if is_live(view) else gr.Timer(active=False)
    if view == seen:
        return gr.skip(), gr.skip(), gr.skip(), timer
    return (*status(run_id), view, timer)


def stop(run_id, request: gr.Request = None):
    if not run_id:
        raise gr.Error("Pick an evaluation run first.")
    try:
        runs.stop(run_id, actor=actor_of(request))
    except LabError as e:
        raise gr.Error(str(e)) from None
    return status(run_id)[0]


def load_result(run_id) -> tuple[dict | None, dict[str, list[dict]]]:
    """(evaluation.json, {model label: prediction rows}) through labs.evaluation.results; (None, {}) before."""
    if not run_id:
        return None, {}
    try:
        r = run_results(run_id)
    except runs.RunError:
        return None, {}
    return r["evaluation"], r["predictions"]


def _df(rows) -> pd.DataFrame:
    return pd.DataFrame(rows) if rows else EMPTY


def results(run_id):
    """Everything a finished evaluation shows, read from its run directory."""
    from labs.evaluation.report import BUCKET_HELP, figures
    result, preds = load_result(run_id)
    if result is None:
        hidden = gr.update(value=None, visible=False)
        return ("Pick a finished evaluation run (or start one)." if run_id else "", hidden, hidden, hidden, hidden,
                "", hidden, gr.update(choices=[], value=None), hidden, hidden, hidden,
                gr.update(choices=[""], value=""), "", hidden, hidden, "", hidden, hidden, hidden)
    figs = figures(result)
    d, models = result["data"], result["models"]
    # names from the data (source, tasks, labels) shown as typed, in code, never as Markdown
    summary = (f"**{d['rows']} rows** of {md_code(d['source'])}"
               + (f" (tasks: {', '.join(map(md_code, d['tasks']))})" if d["tasks"] else "")
               + f" · task **{d['task']}** · " + " · ".join(f"{m['label']} = {md_code(m['spec'])}" for m in models)
               + f" · {result.get('seconds')} s")
    if d["task"] == "classification":
        summary += ("\n\nAnswers outside the label set (" + ", ".join(map(md_code, d["labels"])) + ") count as "
                    "wrong: the confusion matrix's '(other)' column.")
    if d.get("n_skipped"):
        summary += f"\n\n⚠️ {d['n_skipped']} rows could not be used (first: {d['skipped'][0]})."
    runs_md, diffs = "", EMPTY
    if result.get("runs"):
        r = result["runs"]
        runs_md = "\n".join(f"- **{k}**: {'⚠️ overfitting: ' if v['flag'] else ''}{v['detail']}"
                            for k, v in r["overfitting"].items())
        runs_md = ("**Overfitting rule**: eval loss rising for 2+ evaluations in a row while the train loss "
                   "falls.\n\n" + runs_md)
        diffs = _df(r["config_differences"])
    buckets = _df([{"bucket": b, "meaning": BUCKET_HELP[b], **{m["label"]: m["buckets"].get(b, 0) for m in models}}
                   for b in BUCKETS])
    labels = [m["label"] for m in models]
    first = labels[-1]
    cats = sorted({r.get("category", "") for r in preds.get(first, [])} - {""})
    f_md, f_df = NOT_RUN.format(what="forgetting probe", box="Forgetting probe"), EMPTY
    if result.get("forgetting"):
        f = result["forgetting"]
        lines = []
        for lab, c in f["changes"].items():
            warn = "⚠️ " if c.get("perplexity_flag") or c["lost"] else ""
            lines.append(f"- {warn}**{lab}**: general-text perplexity {c.get('perplexity_before')} → "
                         f"{c.get('perplexity_after')} (**{c.get('perplexity_change_pct', 0):+.1f}%**); general "
                         f"questions right {c['accuracy_before']} → {c['accuracy_after']} (lost {c['lost']}, "
                         f"gained {c['gained']})")
            f_df = _df([{k: q[k] for k in ("change", "question", "before", "after")} for q in c["questions"]])
        f_md = "\n".join(lines) or "\n".join(f"- **{k}**: perplexity {v.get('perplexity')}, questions right "
                                             f"{v.get('accuracy')}" for k, v in f["probes"].items())
        f_md += "\n\nFlagged (⚠️): perplexity more than 10% higher than the first model's, or a question lost."
    b_md, b_df = NOT_RUN.format(what="bias audit", box="Bias audit"), EMPTY
    if result.get("bias"):
        a = result["bias"]
        a0 = next(iter(a.values()))
        b_md = (f"Score: {a0['score']}. Spread (largest − smallest group): "
                + ", ".join(f"**{lab}** {x['spread']}" for lab, x in a.items())
                + "\n\n**Caveats**\n" + "\n".join(f"- {c}" for c in a0["caveats"]))
        b_df = _df([{"model": lab, **{k: x[k] for k in ("group", "score", "answer", "prompt")}}
                    for lab, x in a.items() for x in x["answers"]])
    conf = next((figs[k] for k in reversed(sorted(figs)) if k.startswith("confusion_")), None)
    sliced = [m for m in models if m.get("slices")]
    per_slice = _df([{**({"model": m["label"]} if len(sliced) > 1 else {}), **row}
                     for m in sliced for row in slice_table(m["slices"]["rows"], d["task"])])
    slice_label = f"Metrics per {sliced[0]['slices']['by']}" if sliced else "Metrics per slice"
    changed = _df(result.get("changed"))
    v = _shown
    return (summary, v(_df(result["table"])), v(figs.get("metrics")),
            v(changed, column_widths=column_widths(list(changed.columns), changed.values.tolist())),
            v(figs.get("curves")), runs_md, v(diffs), gr.update(choices=labels, value=first), v(buckets),
            v(figs.get("buckets")), v(conf), gr.update(choices=[""] + cats, value=""), f_md, v(figs.get("forgetting")),
            v(f_df, column_widths=FORGET_WIDTHS), b_md, v(figs.get("bias")), v(b_df, column_widths=BIAS_WIDTHS),
            _shown(per_slice, label=slice_label))


def _shown(x, **kw):
    """A table or plot, hidden when there is nothing to show (an empty table would show bare column numbers)."""
    empty = x is None or (isinstance(x, pd.DataFrame) and x.empty)
    return gr.update(value=None if empty else x, visible=not empty, **kw)


def errors(run_id, model, show_what, category, bucket, min_chars, max_chars):
    """The filterable error table: input, reference, prediction, bucket, loss (whole texts: the table shows
    each cell's start and the whole text on a click)."""
    _, preds = load_result(run_id)
    rows = preds.get(model) or []
    picked = select([r for r in rows if "prediction" in r or show_what == "worst"], show_what, category or None,
                    int(min_chars or 0), int(max_chars) if max_chars else None, bucket or None)
    table = [{k: r.get(k) for k in ERROR_COLUMNS} for r in picked]
    return pd.DataFrame(table, columns=ERROR_COLUMNS), f"{len(picked)} rows"


def export(run_id):
    try:
        files = run_results(run_id)["files"] if run_id else []
    except runs.RunError:
        files = []
    if not files:
        raise gr.Error("Pick a finished evaluation run first.")
    return files


# --------------------------------------------------------------------------- layout
def build(ctx) -> None:
    gr.Markdown("### Evaluation\nBase vs fine-tuned on held-out rows: metrics with deltas, what went wrong, "
                "whether general knowledge was forgotten, and a bias check. Runs as a job; results stay in its "
                "run directory.")
    with gr.Row():
        choices = model_choices(getattr(ctx.model_spec, "value", None))
        newest_run = [v for _, v in choices[1:2]]  # default: the newest run, compared with its base
        models = gr.Dropdown(choices=choices, value=newest_run, multiselect=True, allow_custom_value=True, scale=3,
                             label="Models (a run alone is compared with its base model)")
        refresh = gr.Button("↻", scale=0, min_width=40)
        data = gr.Dropdown(choices=["", "instruct", *dataset_choices()], value="", allow_custom_value=True,
                           label="Dataset ('' = the run's; or a .jsonl path)", scale=2)
    with gr.Row():
        split = gr.Radio(["test", "validation", "train"], value="test", label="Split")
        task = gr.Radio(["auto", "classification", "qa", "generation"], value="auto", label="Task")
        tasks = gr.Textbox("auto", label="Rows ('task' column; auto = the run's, empty = all)")
        slice_by = gr.Textbox("", label="Slice metrics by column (optional)", placeholder="a column of the data, e.g. confidence")
    with gr.Row():
        # wide enough for their largest values (500, 256) next to the slider in a narrow window
        max_rows = gr.Slider(0, 500, value=0, step=10, label="Max rows (0 = all)", min_width=240)
        max_new = gr.Slider(8, 256, value=64, step=8, label="Max new tokens", min_width=240)
        loss = gr.Checkbox(True, label="Held-out loss and perplexity")
        compare_base = gr.Checkbox(True, label="Compare a run with its base")
    with gr.Accordion("Forgetting probe and bias audit", open=False):
        with gr.Row():
            forgetting = gr.Checkbox(False, label="Forgetting probe (general-text perplexity, 8 general questions)")
            bias = gr.Checkbox(False, label="Bias audit")
        templates = gr.Textbox("\n".join(bias_mod.TEMPLATES), lines=3, label="Bias templates (one per line, "
                               "with {group})")
        with gr.Row():
            groups = gr.Textbox(", ".join(bias_mod.GROUPS), label="Group terms (comma separated)", scale=3)
            label = gr.Textbox("", label="Score as the rate of this label (empty: word-list tone)", scale=1)
    # what was saved or trained since the page was built: read when the page loads and when the tab opens
    ctx.on_load(lambda base, picked: (
        gr.update(choices=model_choices(base), value=[m for m in picked or [] if m] or
                  [v for _, v in model_choices(base)[1:2]]),
        gr.update(choices=["", "instruct", *dataset_choices()])), [models, data], [ctx.model_spec, models])
    start_btn = gr.Button("Start evaluation", variant="primary")
    msg = gr.Markdown()
    with gr.Group():
        with gr.Row():
            run_id = gr.Dropdown(choices=run_choices("evaluation"), value=None, label="Evaluation run", scale=4,
                                 allow_custom_value=True)
            runs_btn = gr.Button("↻", scale=0, min_width=40)
            stop_btn = gr.Button("Stop", scale=0, min_width=80, variant="stop")
        status_md = gr.Markdown("No run selected.")
        error_md = gr.Markdown()
    ctx.on_load(lambda: gr.update(choices=run_choices("evaluation"), value=preferred_run("evaluation")), [run_id])
    timer = gr.Timer(2.0, active=False)  # ticks only while the picked job is queued or running
    seen = gr.State(None)

    summary = gr.Markdown()
    with gr.Tab("Metrics"):
        table = gr.Dataframe(label="Metrics (Δ = change against the first model)", wrap=True, visible=False)
        metrics_plot = gr.Plot(label="Metrics", visible=False)
        slices_df = gr.Dataframe(label="Metrics per slice", wrap=True, visible=False)
        changed = gr.Dataframe(label="Examples whose answer changed (fixed / broken; click a cell for its whole "
                               "text)", wrap=True, visible=False, max_chars=CELL_CHARS)
        curves = gr.Plot(label="Training curves of the runs compared", visible=False)
        runs_md = gr.Markdown()
        diffs = gr.Dataframe(label="Settings that differ between the runs", wrap=True, visible=False)
    with gr.Tab("Errors"):
        with gr.Row():
            err_model = gr.Dropdown(choices=[], label="Model", scale=2)
            show_what = gr.Radio(["incorrect", "worst", "all"], value="incorrect", label="Show (worst = by loss)",
                                 scale=2)
            category = gr.Dropdown(choices=[""], value="", label="Label / category", scale=1)
            bucket = gr.Dropdown(choices=["", *BUCKETS], value="", label="Bucket", scale=1)
            min_chars = gr.Number(0, precision=0, label="Input length ≥ (chars)", scale=1)
            max_chars = gr.Number(0, precision=0, label="≤ (chars, 0 = any)", scale=1)
        buckets = gr.Dataframe(label="Error buckets", wrap=True, visible=False)
        with gr.Row():
            buckets_plot = gr.Plot(label="Buckets", visible=False)
            confusion_plot = gr.Plot(label="Confusion matrix", visible=False)
        err_count = gr.Markdown()
        err_table = gr.Dataframe(pd.DataFrame(columns=ERROR_COLUMNS), label="Examples (click a cell for its whole "
                                 "text)", wrap=True, column_widths=ERROR_WIDTHS, max_chars=CELL_CHARS,
                                 interactive=False)
    with gr.Tab("Forgetting"):
        forget_md = gr.Markdown()
        forget_plot = gr.Plot(label="Forgetting probe", visible=False)
        forget_df = gr.Dataframe(label="General questions before and after", wrap=True, visible=False,
                                 max_chars=CELL_CHARS)
    with gr.Tab("Bias"):
        bias_md = gr.Markdown()
        bias_plot = gr.Plot(label="Score per group", visible=False)
        bias_df = gr.Dataframe(label="Answers", wrap=True, visible=False, max_chars=CELL_CHARS)
    with gr.Tab("Export"):
        export_btn = gr.Button("Report files (HTML with plots, Markdown, JSON)")
        files = gr.File(label="Report", file_count="multiple", interactive=False)

    # ---- events
    result_out = [summary, table, metrics_plot, changed, curves, runs_md, diffs, err_model, buckets, buckets_plot,
                  confusion_plot, category, forget_md, forget_plot, forget_df, bias_md, bias_plot, bias_df, slices_df]
    err_in = [run_id, err_model, show_what, category, bucket, min_chars, max_chars]
    refresh.click(lambda spec: gr.update(choices=model_choices(spec)), ctx.model_spec, models, queue=False,
                  api_visibility="private")
    models.focus(lambda spec: gr.update(choices=model_choices(spec)), ctx.model_spec, models, queue=False,
                 api_visibility="private")
    start_btn.click(start, [models, data, split, task, tasks, max_rows, max_new, loss, compare_base, forgetting,
                            bias, templates, groups, label, slice_by], [run_id, msg], api_name="eval_start").success(
        lambda rid: gr.update(choices=run_choices("evaluation"), value=rid), run_id, run_id, queue=False,
        api_visibility="private")
    runs_btn.click(lambda: gr.update(choices=run_choices("evaluation")), None, run_id, queue=False,
                   api_visibility="private")
    runs_btn.click(status, run_id, [status_md, error_md], queue=False, api_name="eval_status")
    stop_btn.click(stop, run_id, status_md, api_name="eval_stop")
    picked = run_id.change(show, run_id, [status_md, error_md, seen, timer], queue=False, api_visibility="private")
    picked.then(results, run_id, result_out, api_name="eval_results").then(
        errors, err_in, [err_table, err_count], queue=False, api_visibility="private")
    ticked = timer.tick(tick, [run_id, seen], [status_md, error_md, seen, timer], queue=False, show_progress="hidden",
                        api_visibility="private")
    # a tick that saw the job end draws the results once (the timer is off afterwards)
    ticked.then(lambda rid, v: results(rid) if v and v.state == "finished" else tuple(gr.skip() for _ in result_out),
                [run_id, seen], result_out, queue=False, show_progress="hidden", api_visibility="private")
    gr.on([err_model.change, show_what.change, category.change, bucket.change, min_chars.submit, max_chars.submit],
          errors, err_in, [err_table, err_count], queue=False, api_name="eval_errors")
    export_btn.click(export, run_id, files, api_name="eval_export", queue=False)


if __name__ == "__main__":
    from components.shared import default_context
    with gr.Blocks(title="Evaluation") as demo:
        with gr.Tab("Evaluation"):
            build(default_context())
    demo.launch()
