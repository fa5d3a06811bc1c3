"""The encoder way (inside the SFT trainer tab): fine-tune a BERT-style encoder for sequence classification or
extractive QA, watch the run, read its held-out scores, and search its hyperparameters.

    build_encoder(ctx)           # called by components/sft_tab.py inside its Blocks

The form *is* labs.encoder.config.EncoderRunConfig: "Copy config as YAML / command" shows the job as the run
directory keeps it (`python -m labs.encoder --config run.yaml` runs it headless). The hyperparameter search
(labs.encoder.search) queues one encoder run per trial, chooses on the validation split and scores the test
split once. Callable by gradio_client: encoder_preset, encoder_config_yaml, encoder_start, encoder_results
(labs.encoder.results: a run's state, scores, predictions, parameters and training seconds), encoder_search_start,
encoder_search_show, encoder_search_results (search.results as data) (+ the run monitor's
encoder_run_status/stop/kill/resume).
"""
from __future__ import annotations


import gradio as gr
import pandas as pd

from components.form import Form
from components.shared import GPU_QUEUE, actor_of, dataset_choices, run_choices, with_request
from labs import runs
from labs.encoder import results as run_results
from labs.encoder.config import PRESETS, EncoderRunConfig, preset
from labs.errors import LabError

ENCODERS = ["minilm", "distilbert-base-uncased", "bert-base-uncased", "roberta-base"]
QA_FOLDER = "assets/qa_varied"
CLASS_METRICS = [("accuracy", "accuracy"), ("precision_macro", "precision (macro)"),
                 ("recall_macro", "recall (macro)"), ("f1_macro", "F1 (macro)"),
                 ("precision_weighted", "precision (weighted)"), ("recall_weighted", "recall (weighted)"),
                 ("f1_weighted", "F1 (weighted)")]
QA_METRICS = [("exact_match", "exact match"), ("f1", "token F1")]
DEFAULT_GRID = "learning_rate=5e-5,1e-4,2e-4 num_epochs=4,6"
PRED_COLUMNS = ["correct", "prediction", "reference", "input"]  # predictions_table's (+ "token F1" for QA)
INTRO = (
    "**When an encoder is the better tool.** The answer is one of a fixed set of labels (sentiment, topic, "
    "intent) or a span of a text you already have (extractive QA): a BERT-size encoder with a small head learns "
    "that from a few hundred rows, trains in minutes on a CPU and answers in milliseconds, with no generation to "
    "parse. **The LLM way** (the form above) fits open-ended answers and one model for many tasks, at the cost of "
    "size and speed. docs/results.md (*The course's tasks*) has the two measured side by side on the same data.")


def data_choices() -> list[str]:
    return [*dict.fromkeys([*dataset_choices(), "drugs-real", "sentiment-real", QA_FOLDER])]


FORM = Form(EncoderRunConfig, dynamic={"encoder": lambda: ENCODERS, "dataset": data_choices})
FIELDS = FORM.names


def _cfg(values) -> EncoderRunConfig:
    return FORM.config(values)


def _form_values(cfg: EncoderRunConfig) -> list:
    return FORM.values(cfg)


# --------------------------------------------------------------------------- handlers (plain functions)
def apply_preset(name):
    return FORM.apply_preset(name)


def config_yaml(*values):
    return FORM.preview(values)


def start(*values, request: gr.Request = None):
    """Validate the form (and that the dataset can be read), submit the run; returns (run id, message)."""
    from labs.encoder.data import load_splits
    try:
        cfg = _cfg(values)
        splits, labels = load_splits(cfg.dataset, cfg.task, cfg.seed)  # a bad dataset is refused here, not in a run
        run = runs.submit("encoder", cfg.to_dict(), name=f"{cfg.task}-{cfg.method}", actor=actor_of(request))
    except LabError as e:
        gr.Warning(str(e))
        return gr.update(), f"⚠️ **{e}**"
    rows = ", ".join(f"{len(v)} {k}" for k, v in splits.items())
    label_note = f"; labels: {', '.join(labels)}" if labels else ""
    return run.id, (f"Started run `{run.id}` — {cfg.task}, {cfg.method} fine-tuning of `{cfg.encoder}` on "
                    f"{rows} rows{label_note}; `{cfg.command(str(run.dir / 'config.yaml'))}`")


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def metrics_markdown(r: dict) -> str:
    """The held-out scores table and the run's facts, from labs.encoder.results."""
    m = r["eval_metrics"]
    if m is None:
        return ""
    names = QA_METRICS if "exact_match" in m else CLASS_METRICS
    md = (f"**Held-out scores** on the {m.get('split', 'test')} split ({m.get('n', '?')} rows, scored in "
          f"{m.get('seconds', '?')} s):\n\n| metric | value |\n|---|---|\n"
          + "\n".join(f"| {label} | {_pct(m.get(k))} |" for k, label in names if k in m))
    t, n = r["trainable_params"], r["total_params"]
    facts = []
    if t and n:
        facts.append(f"trainable parameters **{t:,}** of {n:,} ({100 * t / n:.2f}%)")
    if r["steps"] is not None:
        seconds = "?" if r["train_seconds"] is None else r["train_seconds"]
        facts.append(f"training **{seconds} s** over {r['steps']} steps")
    if r["device"]:
        facts.append(f"{r['device']}, {r['precision']}")
    return md + ("\n\n" + " · ".join(facts) if facts else "")


def confusion_table(m: dict) -> pd.DataFrame | None:
    conf = m.get("confusion")
    if not conf:
        return None
    labels = conf["labels"]
    df = pd.DataFrame(conf["matrix"], columns=[f"predicted {lab}" for lab in labels])
    if any(conf.get("other") or []):
        df["predicted something else"] = conf["other"]
    df.insert(0, "reference", labels)
    return df


def predictions_table(rows: list[dict] | None) -> pd.DataFrame | None:
    """labs.encoder.results' predictions (wrong ones first) as the table shows them."""
    if rows is None:
        return None
    out = []
    for r in rows:
        text, ref = str(r.get("input", "")), r.get("reference")
        row = {"correct": "✓" if r.get("correct") else "✗", "prediction": r.get("prediction"),
               "reference": " | ".join(map(str, ref)) if isinstance(ref, list) else ref,
               "input": text if len(text) <= 240 else text[:240] + "…"}
        if "f1" in r:
            row["token F1"] = r["f1"]
        out.append(row)
    return pd.DataFrame(out)


def details(run_id):
    """After the run: the held-out scores, the confusion matrix (classification) and the predictions."""
    if not run_id:
        return "", None, None
    try:
        r = run_results(run_id)
    except runs.RunError as e:
        return f"⚠️ {e}", None, None
    return metrics_markdown(r), confusion_table(r["eval_metrics"] or {}), predictions_table(r["predictions"])


def details_follow(run_id, seen, drawn):
    """Redraw only when the monitored run's metrics or state changed since last drawn (not for an ETA tick)."""
    key = None if seen is None else (seen.run_id, seen.state, seen.metrics)
    if key is None or key == drawn:
        return gr.skip()
    md, conf, preds = details(run_id)
    # no confusion matrix (QA, or not scored yet): hidden; no predictions yet: the table's named columns
    return (md, gr.update(value=conf, visible=conf is not None),
            pd.DataFrame(columns=PRED_COLUMNS) if preds is None else preds, key)


def results(run_id: str) -> dict:
    """A run's outcome as data (labs.encoder.results): its state, eval_metrics.json (None until written), the
    held-out predictions (wrong ones first), parameters, device and training time."""
    try:
        return run_results(run_id)
    except runs.RunError as e:
        raise gr.Error(str(e)) from None


# --------------------------------------------------------------------------- hyperparameter search
def _search_view(search_id):
    from labs.encoder import search
    res = search.results(search_id)
    return search.describe(res), search.figure(res)  # a Figure object, never held by pyplot


def search_start(search_preset, grid, n_random, form_preset, *values, request: gr.Request = None):
    """Queue the trials: the search preset with what the form changed from its own preset (encoder, dataset,
    steps, device, ...), each with the grid's settings. Returns (message, picker, table, chart)."""
    from labs.encoder import search
    try:
        cfg = _cfg(values)
        base = preset(form_preset) if form_preset in PRESETS else EncoderRunConfig()
        changes = {n: getattr(cfg, n) for n in FIELDS if getattr(cfg, n) != getattr(base, n) and n != "eval_split"}
        rec = search.start(search_preset, search.parse_grid(grid), n_random=int(n_random or 0),
                           overrides=changes, actor=actor_of(request))
    except (LabError, ValueError) as e:
        gr.Warning(str(e))
        return f"⚠️ **{e}**", gr.update(), gr.update(), gr.update()
    md, fig = _search_view(rec["id"])
    kept = ", ".join(f"{k}={v}" for k, v in changes.items()) or "none"
    msg = (f"Search `{rec['id']}`: **{len(rec['trials'])} trials** queued as encoder runs (one at a time; each "
           f"is listed in the run picker above). Settings kept from the form: {kept}.")
    return msg, rec["id"], md, fig


def search_ids() -> list[str]:
    from labs.encoder import search
    return search.list_ids()


def search_show(search_id):
    """The search's trials with their validation scores and, once all ended, best vs default on test."""
    from labs.encoder import search
    if not search_id:
        return "No search yet: set a grid and press *Start search*.", None
    try:
        return _search_view(search_id)
    except search.SearchError as e:
        return f"⚠️ {e}", None


def search_refresh(search_id):
    ids = search_ids()
    pick = search_id if search_id in ids else (ids[0] if ids else None)
    return (gr.update(choices=ids, value=pick), *search_show(pick))


def search_results(search_id: str) -> dict:
    """search.results as data: the trials (settings, state, validation score), best, and test once ended."""
    from labs.encoder import search
    try:
        return search.results(search_id)
    except search.SearchError as e:
        raise gr.Error(str(e)) from None


# --------------------------------------------------------------------------- layout
def build_encoder(ctx):
    gr.Markdown(INTRO)
    default = preset("sentiment")
    preset_dd, preset_note = FORM.preset_picker("sentiment", "Encoder preset")
    form = FORM.render(default)
    w = FORM.widgets
    ctx.on_load(FORM.refresh, FORM.dynamic_components)
    start_btn, yaml_btn, msg, yaml_box, cmd_box = FORM.controls("Start encoder training")

    gr.Markdown("#### Encoder run")
    mon = ctx.run_monitor("encoder", recipe="encoder")
    scores_md = gr.Markdown()
    conf_df = gr.Dataframe(label="Confusion matrix (rows: reference label, columns: predicted label)",
                           interactive=False, visible=False)
    preds_df = gr.Dataframe(pd.DataFrame(columns=PRED_COLUMNS), label="Held-out predictions (wrong ones first)",
                            wrap=True, interactive=False, max_height=420,
                            column_widths=["8%", "22%", "22%", "40%"])  # the rest: QA's token F1

    with gr.Accordion("Hyperparameter search", open=False):
        gr.Markdown(
            "Each trial is one encoder run: the search preset, with what you changed in the form above from its "
            "preset (encoder, dataset, steps, device, ...), and one combination of the grid. The preset's own "
            "settings are always a trial (*default*). **Trials are scored on the validation split only**; the "
            "test split is scored once, for the best trial and for the preset's settings, when the last trial "
            "ends (press *Refresh*).")
        with gr.Row():
            s_preset = gr.Dropdown(list(PRESETS), value="sentiment", label="Search preset", scale=1)
            s_grid = gr.Textbox(DEFAULT_GRID, label="Grid", scale=3,
                                info="name=value,value ... separated by spaces; searchable: learning_rate, "
                                     "batch_size, num_epochs, weight_decay, warmup, lora_r, lora_alpha, "
                                     "class_weights, max_length, method")
            s_random = gr.Number(0, precision=0, label="Random N", scale=1,
                                 info="Draw N of the grid's combinations; 0 = all")
        s_btn = gr.Button("Start search")
        s_msg = gr.Markdown()
        with gr.Row():
            s_pick = gr.Dropdown(search_ids(), value=None, label="Search", scale=4, allow_custom_value=True)
            s_refresh = gr.Button("Refresh", scale=1)
        s_md = gr.Markdown()
        s_plot = gr.Plot(label="Validation score per trial")

    # ---- events
    preset_dd.change(apply_preset, preset_dd, [*form, preset_note], api_name="encoder_preset", queue=False)
    preset_dd.change(lambda p: p, preset_dd, s_preset, queue=False, api_visibility="private")
    w["dataset"].focus(lambda: gr.update(choices=data_choices()), None, w["dataset"], queue=False,
                       api_visibility="private")
    yaml_btn.click(config_yaml, form, [yaml_box, cmd_box], api_name="encoder_config_yaml", queue=False)
    start_btn.click(with_request(start), form, [mon.run_id, msg], api_name="encoder_start").success(
        lambda rid: gr.update(choices=run_choices("encoder"), value=rid), mon.run_id, mon.run_id, queue=False,
        api_visibility="private")
    out = [scores_md, conf_df, preds_df]
    drawn = gr.State(None)  # per browser session: (run id, state, metrics stat) the details were drawn from
    mon.after_draw(details_follow, [mon.run_id, mon.seen, drawn], [*out, drawn])
    gr.api(results, api_name="encoder_results")
    s_btn.click(with_request(search_start), [s_preset, s_grid, s_random, preset_dd, *form], [s_msg, s_pick, s_md, s_plot],
                api_name="encoder_search_start").success(
        lambda sid: gr.update(choices=search_ids(), value=sid), s_pick, s_pick, queue=False, api_visibility="private")
    # showing a search may score its test split (once, when the last trial has ended): a model-heavy handler
    s_pick.input(search_show, s_pick, [s_md, s_plot], api_name="encoder_search_show", **GPU_QUEUE)
    s_refresh.click(search_refresh, s_pick, [s_pick, s_md, s_plot], api_visibility="private", **GPU_QUEUE)
    gr.api(search_results, api_name="encoder_search_results", **GPU_QUEUE)


if __name__ == "__main__":
    from components.shared import default_context
    with gr.Blocks(title="Encoder") as demo:
        build_encoder(default_context())
    demo.launch()
