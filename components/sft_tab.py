"""SFT trainer tab: fill the form (or a task preset), see what the loss trains on, start a run, watch it
learn, then chat with it next to the base model, merge and export it.

    python -m components.sft_tab        # this tab alone

The form *is* labs.sft.config.SFTRunConfig: "Copy config as YAML" and "Copy command" show the job
exactly as the run directory keeps it (`python -m labs.sft --config run.yaml` runs it headless).
Callable by gradio_client: sft_preset, sft_mask_preview, sft_config_yaml, sft_start, sft_load_config,
sft_details, sft_compare, sft_export (+ the run monitor's sft_run_status/stop/kill/resume); the encoder way's
panel, an accordion at the end of the tab, adds encoder_* (components/sft_encoder_panel.py).
"""
from __future__ import annotations

import gradio as gr
import pandas as pd

from components.form import Form
from components.shared import GPU_QUEUE, actor_of, dataset_choices, run_choices, with_request
from labs import runs
from labs.errors import LabError
from labs.sft import results as run_results
from labs.sft.config import ConfigError, SFTRunConfig, preset

DATASETS = ["instruct", "sentiment-real", "drugs-real", "assets/qa_varied"]
# the tables' columns, named before a run has filled them; widths keep the answers on screen next to long prompts
GEN_COLUMNS, GEN_WIDTHS = ["step", "prompt", "answer", "reference"], ["6%", "40%", "27%", "27%"]
PRED_COLUMNS, PRED_WIDTHS = ["prompt", "reference", "prediction", "correct", "task"], ["34%", "25%", "25%", "8%", "8%"]
CELL_CHARS = 300  # a cell shows its first 300 characters; a click on it shows the whole text
FORM = Form(SFTRunConfig, exclude=("model",),  # the model comes from the header
            dynamic={"dataset": lambda: [*DATASETS, *dataset_choices()]})
FIELDS = FORM.names


def _cfg(model, values) -> SFTRunConfig:
    return FORM.config(values, model=(model or "").strip() or SFTRunConfig.model)


def _form_values(cfg: SFTRunConfig) -> list:
    return FORM.values(cfg)


# --------------------------------------------------------------------------- handlers (plain functions)
def apply_preset(name):
    return FORM.apply_preset(name)


def effective_batch(batch, accum):
    try:
        return f"Effective batch: **{int(batch)} × {int(accum)} = {int(batch) * int(accum)}** rows per optimizer step " \
               "(× number of processes)"
    except (TypeError, ValueError):
        return ""


def config_yaml(model, *values):
    return FORM.preview(values, model=(model or "").strip() or SFTRunConfig.model)


def start(model, *values, request: gr.Request = None):
    """Validate the form and submit the run; returns (run id for the monitor, message)."""
    try:
        cfg = _cfg(model, values)
        run = runs.submit("sft", cfg.to_dict(), actor=actor_of(request))
    except LabError as e:
        gr.Warning(str(e))
        return gr.update(), f"⚠️ **{e}**"
    return (run.id,
            f"Started run `{run.id}` — {cfg.method}, effective batch {cfg.effective_batch()}; "
            f"`{cfg.command(str(run.dir / 'config.yaml'))}`")


def mask_preview_row(model, dataset, data_tasks, row, max_length, completion_only):
    """The mask preview of training row `row`, counted from 1 as the form shows it (the sft_mask_preview API)."""
    return mask_preview(model, dataset, data_tasks, max(1, int(row or 1)) - 1, max_length, completion_only)


def mask_preview(model, dataset, data_tasks, index, max_length, completion_only):
    """Training row `index` (0-based, past the end: the last row) as tokens, those in the loss marked."""
    from labs import models
    from labs.data.mask import row_preview
    from labs.sft.data import DataError, load_splits
    try:
        rows = load_splits(dataset, [t.strip() for t in (data_tasks or "").split(",") if t.strip()])["train"]
        tok = models.load_tokenizer(model or None)
    except (DataError, models.ModelError) as e:
        gr.Warning(str(e))
        return [], f"⚠️ {e}"
    index = max(0, min(int(index or 0), len(rows) - 1))
    toks, cut = row_preview(tok, rows[index], int(max_length), bool(completion_only))
    toks = [(t, m) for t, _, m in toks]
    n = sum(m for _, m in toks)
    md = (f"{len(toks)} tokens, **{n} trained** (highlighted), {len(toks) - n} masked · training row "
          f"{index + 1} of {len(rows)}")
    for k in ("warning", "note"):
        if cut.get(k):
            md += f"\n\n⚠️ {cut[k]}"
    return [(t, "trained" if m else None) for t, m in toks], md


def load_config(run_id):
    if not run_id:
        raise gr.Error("Pick a run first.")
    try:
        raw = dict(runs.get(run_id).config)
        raw.pop("recipe", None)
        cfg = SFTRunConfig.from_dict(raw)
    except (runs.RunError, ConfigError) as e:
        raise gr.Error(str(e)) from None
    return _form_values(cfg)


def details(run_id, overlay):
    """Learning rate / grad norm / tokens/s, the overlay of earlier runs, eval generations, task metrics."""
    from labs.plots import loss_figure, metric_figure
    if not run_id:
        return None, None, None, "", None
    try:
        r = run_results(run_id)
    except runs.RunError as e:
        return None, None, None, f"⚠️ {e}", None
    series = {run_id: r["metrics"]}
    for other in overlay or []:
        if other != run_id:
            try:
                series[other] = runs.get(other).metrics()
            except runs.RunError:
                pass
    loss = loss_figure(series, title="Loss: this run and earlier runs") if len(series) > 1 else None
    extra = metric_figure(r["metrics"], ["learning_rate", "grad_norm", "tokens_per_s"])
    table = pd.DataFrame(columns=GEN_COLUMNS)  # named columns while there is nothing yet
    if r["generations"]:
        table = pd.DataFrame([{**g, "prompt": g["prompt"][:120]} for g in r["generations"]])
    md, preds = "", pd.DataFrame(columns=PRED_COLUMNS)
    if r["eval_metrics"] is not None:
        n = "?" if r["n"] is None else r["n"]
        md = (f"**Held-out metrics** ({n} rows, answers by generation):\n\n| metric | base | fine-tuned |\n"
              "|---|---|---|\n" + "\n".join(f"| {h['metric']} | {'–' if h['base'] is None else h['base']} | "
                                           f"{h['fine_tuned']} |" for h in r["held_out"]))
        if r["steps"] is not None:
            seconds = "?" if r["train_seconds"] is None else r["train_seconds"]
            md += f"\n\nTraining time: {seconds} s over {r['steps']} steps."
        if r["predictions"] is not None:
            preds = pd.DataFrame(r["predictions"])
    if r["truncation_warning"]:
        md = f"⚠️ {r['truncation_warning']}\n\n{md}"
    return loss, extra, table, md, preds


def details_follow(run_id, overlay, seen, drawn):
    """After the monitor drew (`seen`, its RunView): redraw the details only when the run's metrics or
    state changed since they were last drawn (`drawn`), not for a status.json tick (step, ETA)."""
    key = None if seen is None else (seen.run_id, seen.state, seen.metrics)
    if key is None or key == drawn:
        return gr.skip()
    return (*details(run_id, overlay), key)


def compare(run_id, base_model, prompt, max_new_tokens):
    """The same prompt to the base model and to the fine-tuned run, side by side."""
    from labs import generate, models
    if not run_id:
        raise gr.Error("Pick a finished run first.")
    if not (prompt or "").strip():
        raise gr.Error("Type a prompt.")
    n = int(max_new_tokens)
    try:
        tuned = models.CACHE.get(str(runs.get(run_id).dir))
        if tuned.source.kind == "adapter":  # the base model is the same weights with the adapter switched off
            return generate.chat(tuned, prompt, n, adapter=False), generate.chat(tuned, prompt, n)
        base = models.CACHE.get(runs.get(run_id).config.get("model") or base_model)
    except (models.ModelError, runs.RunError) as e:
        raise gr.Error(str(e)) from None
    return generate.chat(base, prompt, n), generate.chat(tuned, prompt, n)


def export(run_id, repo_id, token, request: gr.Request = None):
    from labs.sft.export import export as do_export, model_card
    if not run_id:
        raise gr.Error("Pick a finished run first.")
    try:
        run = runs.get(run_id)
        out = do_export(run.dir, push_to_hub=(repo_id or "").strip(), token=(token or "").strip() or None,
                        actor=actor_of(request))
    except LabError as e:
        raise gr.Error(str(e)) from None
    pushed = f" and pushed to `{repo_id}`" if (repo_id or "").strip() else ""
    return f"Merged model saved to `{out}`{pushed}.", model_card(run.dir)


# --------------------------------------------------------------------------- layout
def build(ctx):
    gr.Markdown("### Supervised fine-tuning\nPick a task preset, check what the loss trains on, start, and "
                "watch the loss and the model's answers change. The preset fills every setting; the few that "
                "decide most stand up front, the rest are under *Advanced settings*, each saying what it does.")
    preset_dd, preset_note = FORM.preset_picker("instruction", "Task preset")
    default = preset("instruction")
    form = FORM.render(default)
    w = FORM.widgets
    ctx.on_load(FORM.refresh, FORM.dynamic_components)
    eff = gr.Markdown(effective_batch(default.batch_size, default.grad_accum))
    with gr.Accordion("What the loss trains on (mask preview)", open=False):
        with gr.Row():
            row_ix = gr.Number(1, precision=0, label="Training row (from 1)", scale=1)  # 0 or less: row 1
            preview_btn = gr.Button("Show the trained tokens", scale=1)
        mask_md = gr.Markdown()
        mask_hl = gr.HighlightedText(label="Tokens (highlighted = in the loss)", color_map={"trained": "green"},
                                     combine_adjacent=False, show_legend=True)
    start_btn, yaml_btn, msg, yaml_box, cmd_box = FORM.controls()

    gr.Markdown("### Live monitor")
    mon = ctx.run_monitor("sft", recipe="sft")
    with gr.Row():
        overlay = gr.Dropdown(choices=run_choices("sft"), multiselect=True, label="Overlay earlier runs", scale=4)
        load_btn = gr.Button("Load this run's config into the form", scale=1)
    overlay_plot = gr.Plot(label="Overlay")
    extra_plot = gr.Plot(label="Learning rate · grad norm · tokens/s")
    gens = gr.Dataframe(pd.DataFrame(columns=GEN_COLUMNS), label="Answers to fixed validation prompts at each "
                        "evaluation", wrap=True, column_widths=GEN_WIDTHS, max_chars=CELL_CHARS, interactive=False)
    task_md = gr.Markdown()
    preds = gr.Dataframe(pd.DataFrame(columns=PRED_COLUMNS), label="Held-out predictions (click a cell for its "
                         "whole text)", wrap=True, column_widths=PRED_WIDTHS, max_chars=CELL_CHARS, interactive=False)

    gr.Markdown("### After training: base vs fine-tuned")
    with gr.Row():
        prompt = gr.Textbox(label="Prompt", lines=3, scale=4,
                            value="Extract the person's name, city and age as YAML with the keys name, city, age."
                                  "\n\nLena Novak is 41 years old and lives in Porto.")
        max_new = gr.Slider(8, 256, value=64, step=8, label="Max new tokens", scale=1, min_width=240)  # 256 fits
    compare_btn = gr.Button("Ask both")
    with gr.Row():
        base_out = gr.Textbox(label="Base model", lines=4)
        tuned_out = gr.Textbox(label="Fine-tuned", lines=4)
    with gr.Accordion("Merge and export", open=False):
        with gr.Row():
            repo = gr.Textbox(label="Push to Hub repo (optional)", placeholder="user/my-model")
            token = gr.Textbox(label="Hub token (used once, never saved)", type="password")
        export_btn = gr.Button("Merge adapter and export (safetensors + model card)")
        export_md = gr.Markdown()
        card = gr.Code(language="markdown", label="Model card (README.md)", interactive=False)

    # ---- events
    preset_dd.change(apply_preset, preset_dd, [*form, preset_note], api_name="sft_preset", queue=False)
    gr.on([w["batch_size"].change, w["grad_accum"].change], effective_batch, [w["batch_size"], w["grad_accum"]],
          eff, queue=False, api_visibility="private")
    preview_btn.click(mask_preview_row, [ctx.model_spec, w["dataset"], w["data_tasks"], row_ix, w["max_length"],
                                     w["completion_only"]], [mask_hl, mask_md], api_name="sft_mask_preview")
    yaml_btn.click(config_yaml, [ctx.model_spec, *form], [yaml_box, cmd_box], api_name="sft_config_yaml",
                   queue=False)
    start_btn.click(with_request(start), [ctx.model_spec, *form], [mon.run_id, msg], api_name="sft_start").success(
        lambda rid: gr.update(choices=run_choices("sft"), value=rid), mon.run_id, mon.run_id, queue=False,
        api_visibility="private")
    load_btn.click(load_config, mon.run_id, form, api_name="sft_load_config", queue=False)
    detail_out = [overlay_plot, extra_plot, gens, task_md, preds]
    drawn = gr.State(None)  # per browser session: (run id, state, metrics stat) the details were drawn from
    # No timer of its own: it follows the monitor's draws (a pick, a tick), and the monitor's timer is off
    # for an ended run, so a page left on a finished run asks for nothing.
    mon.after_draw(details_follow, [mon.run_id, overlay, mon.seen, drawn], [*detail_out, drawn])
    overlay.change(details, [mon.run_id, overlay], detail_out, queue=False, api_name="sft_details")
    overlay.focus(lambda: gr.update(choices=run_choices("sft")), None, overlay, queue=False, api_visibility="private")
    compare_btn.click(compare, [mon.run_id, ctx.model_spec, prompt, max_new], [base_out, tuned_out],
                      api_name="sft_compare", **GPU_QUEUE)
    export_btn.click(export, [mon.run_id, repo, token], [export_md, card], api_name="sft_export", **GPU_QUEUE)

    try:
        from components.sft_encoder_panel import build_encoder
    except ImportError:
        build_encoder = None
    if build_encoder is not None:
        with gr.Accordion("The encoder way: BERT-style classifier or extractive QA (course slides 5, 10-14)",
                          open=False):
            build_encoder(ctx)


if __name__ == "__main__":
    from components.shared import default_context
    with gr.Blocks(title="SFT trainer") as demo:
        with gr.Tab("SFT trainer"):
            build(default_context())
    demo.launch()
