"""The encoder way (inside the SFT trainer tab): fine-tune a BERT-style encoder for sequence classification or
extractive QA, watch the run, read its held-out scores, and search its hyperparameters.

    build_encoder(ctx)           # called by components/sft_tab.py inside its Blocks

The form *is* labs.encoder.config.EncoderRunConfig: "Copy config as YAML / command" shows the job as the run
directory keeps it (`python -m labs.encoder --config run.yaml` runs it headless). The hyperparameter search
(labs.encoder.search) queues one encoder run per trial, chooses on the validation split and scores the test
split once. Callable by gradio_client: encoder_preset, encoder_config_yaml, encoder_start, encoder_results (a
run's state, eval_metrics.json, trainable/total parameters and training seconds, as data), encoder_search_start,
encoder_search_show, encoder_search_results (search.results as data) (+ the run monitor's
encoder_run_status/stop/kill/resume).
"""
from __future__ import annotations

import json
from dataclasses import fields

import gradio as gr
import pandas as pd

from components.shared import GPU_QUEUE, dataset_choices, run_choices
from labs import runs
from labs.encoder.config import (CLASS_WEIGHTS, HELP, METHODS, PRECISIONS, PRESETS, SCHEDULERS, TASKS, ConfigError,
                                 EncoderRunConfig, preset)

FIELDS = [f.name for f in fields(EncoderRunConfig)]
ENCODERS = ["minilm", "distilbert-base-uncased", "bert-base-uncased", "roberta-base"]
QA_FOLDER = "assets/qa_varied"
NOTES = {"sentiment": "drug reviews -> negative / neutral / positive (drugs-real); all-MiniLM-L6-v2 fully "
                      "fine-tuned, balanced class weights (neutral is 9% of the rows).",
         "qa": "the varied extractive-QA set (assets/qa_varied): the answer is a span of the given context; "
               "exact match and token F1."}
CLASS_METRICS = [("accuracy", "accuracy"), ("precision_macro", "precision (macro)"),
                 ("recall_macro", "recall (macro)"), ("f1_macro", "F1 (macro)"),
                 ("precision_weighted", "precision (weighted)"), ("recall_weighted", "recall (weighted)"),
                 ("f1_weighted", "F1 (weighted)")]
QA_METRICS = [("exact_match", "exact match"), ("f1", "token F1")]
DEFAULT_GRID = "learning_rate=5e-5,1e-4,2e-4 num_epochs=4,6"
INTRO = (
    "**When an encoder is the better tool.** The answer is one of a fixed set of labels (sentiment, topic, "
    "intent) or a span of a text you already have (extractive QA): a BERT-size encoder with a small head learns "
    "that from a few hundred rows, trains in minutes on a CPU and answers in milliseconds, with no generation to "
    "parse. **The LLM way** (the form above) fits open-ended answers and one model for many tasks, at the cost of "
    "size and speed. The README's *course's tasks* section has the two measured side by side on the same data.")


def _cfg(values) -> EncoderRunConfig:
    return EncoderRunConfig(**dict(zip(FIELDS, values)))


def _form_values(cfg: EncoderRunConfig) -> list:
    return [getattr(cfg, n) for n in FIELDS]


def _command(path: str) -> str:
    return f"python -m labs.encoder --config {path}"


def data_choices() -> list[str]:
    return [*dict.fromkeys([*dataset_choices(), "drugs-real", "sentiment-real", QA_FOLDER])]


# --------------------------------------------------------------------------- handlers (plain functions)
def apply_preset(name):
    return [*_form_values(preset(name)), f"Preset **{name}**: {NOTES.get(name, '')}"]


def config_yaml(*values):
    try:
        cfg = _cfg(values)
    except ConfigError as e:
        gr.Warning(str(e))
        return f"# invalid: {e}", ""
    return cfg.to_yaml(), _command("run.yaml") + "   # save the YAML above as run.yaml first"


def start(*values):
    """Validate the form (and that the dataset can be read), submit the run; returns (run id, message)."""
    from labs.encoder.data import EncoderError, load_splits
    try:
        cfg = _cfg(values)
        splits, labels = load_splits(cfg.dataset, cfg.task, cfg.seed)  # a bad dataset is refused here, not in a run
        run = runs.submit("encoder", cfg.to_dict(), name=f"{cfg.task}-{cfg.method}")
    except (ConfigError, EncoderError, runs.RunError) as e:
        gr.Warning(str(e))
        return gr.update(), f"⚠️ **{e}**"
    rows = ", ".join(f"{len(v)} {k}" for k, v in splits.items())
    label_note = f"; labels: {', '.join(labels)}" if labels else ""
    return run.id, (f"Started run `{run.id}` — {cfg.task}, {cfg.method} fine-tuning of `{cfg.encoder}` on "
                    f"{rows} rows{label_note}; `{_command(str(run.dir / 'config.yaml'))}`")


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def metrics_markdown(run) -> str:
    ev = run.dir / "eval_metrics.json"
    if not ev.exists():
        return ""
    m = json.loads(ev.read_text())
    names = QA_METRICS if "exact_match" in m else CLASS_METRICS
    md = (f"**Held-out scores** on the {m.get('split', 'test')} split ({m.get('n', '?')} rows, scored in "
          f"{m.get('seconds', '?')} s):\n\n| metric | value |\n|---|---|\n"
          + "\n".join(f"| {label} | {_pct(m.get(k))} |" for k, label in names if k in m))
    rec = run.record()
    t, n = rec.get("trainable_params"), rec.get("total_params")
    final = [r for r in run.metrics() if r.get("final")]
    facts = []
    if t and n:
        facts.append(f"trainable parameters **{t:,}** of {n:,} ({100 * t / n:.2f}%)")
    if final:
        facts.append(f"training **{final[-1].get('train_seconds', '?')} s** over {final[-1].get('step')} steps")
    if rec.get("device"):
        facts.append(f"{rec['device']}, {rec.get('precision')}")
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


def predictions_table(run, limit: int = 300) -> pd.DataFrame | None:
    p = run.dir / "eval_predictions.jsonl"
    if not p.exists():
        return None
    rows = [json.loads(x) for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]
    rows.sort(key=lambda r: bool(r.get("correct")))  # wrong ones first; stable, so file order within each
    out = []
    for r in rows[:limit]:
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
        run = runs.get(run_id)
    except runs.RunError as e:
        return f"⚠️ {e}", None, None
    ev = run.dir / "eval_metrics.json"
    m = json.loads(ev.read_text()) if ev.exists() else {}
    return metrics_markdown(run), confusion_table(m), predictions_table(run)


def details_follow(run_id, seen, drawn):
    """Redraw only when the monitored run's metrics or state changed since last drawn (not for an ETA tick)."""
    key = None if seen is None else (seen.run_id, seen.state, seen.metrics)
    if key is None or key == drawn:
        return gr.skip()
    return (*details(run_id), key)


def results(run_id: str) -> dict:
    """A run's outcome as data: its state, eval_metrics.json (None until written), parameters and training time."""
    try:
        run = runs.get(run_id)
    except runs.RunError as e:
        raise gr.Error(str(e)) from None
    ev = run.dir / "eval_metrics.json"
    rec = run.record()
    final = [r for r in run.metrics() if r.get("final")]
    return {"state": run.status().get("state"), "eval_metrics": json.loads(ev.read_text()) if ev.exists() else None,
            "trainable_params": rec.get("trainable_params"), "total_params": rec.get("total_params"),
            "train_seconds": final[-1].get("train_seconds") if final else None}


# --------------------------------------------------------------------------- hyperparameter search
def _search_view(search_id):
    from labs.encoder import search
    res = search.results(search_id)
    return search.describe(res), search.figure(res)  # a Figure object, never held by pyplot


def search_start(search_preset, grid, n_random, form_preset, *values):
    """Queue the trials: the search preset with what the form changed from its own preset (encoder, dataset,
    steps, device, ...), each with the grid's settings. Returns (message, picker, table, chart)."""
    from labs.encoder import search
    try:
        cfg = _cfg(values)
        base = preset(form_preset) if form_preset in PRESETS else EncoderRunConfig()
        changes = {n: getattr(cfg, n) for n in FIELDS if getattr(cfg, n) != getattr(base, n) and n != "eval_split"}
        rec = search.start(search_preset, search.parse_grid(grid), n_random=int(n_random or 0),
                           overrides=changes)
    except (ConfigError, search.SearchError, runs.RunError, ValueError) as e:
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
CHOICES = {"task": list(TASKS), "method": list(METHODS), "class_weights": list(CLASS_WEIGHTS),
           "lr_scheduler": list(SCHEDULERS), "precision": list(PRECISIONS), "device": ["auto", "cpu", "cuda", "mps"],
           "eval_split": ["test", "validation"]}


def _widget(name, default):
    info, label = HELP.get(name, ""), name.replace("_", " ")
    if name in CHOICES:
        return gr.Dropdown(CHOICES[name], value=default, label=label, info=info)
    if name == "encoder":
        return gr.Dropdown(ENCODERS, value=default, label=label, info=info, allow_custom_value=True)
    if name == "dataset":
        return gr.Dropdown(data_choices(), value=default, label=label, info=info, allow_custom_value=True)
    if isinstance(default, bool):
        return gr.Checkbox(value=default, label=label, info=info)
    if isinstance(default, int):
        return gr.Number(value=default, precision=0, label=label, info=info)
    if isinstance(default, float):
        return gr.Number(value=default, label=label, info=info)
    return gr.Textbox(value=default, label=label, info=info)


GROUPS = [  # (title, rows of fields)
    ("Encoder, task and data", [["encoder", "task", "dataset", "eval_split", "max_train_rows", "eval_rows"]]),
    ("Method", [["method", "class_weights", "lora_r", "lora_alpha", "lora_dropout", "lora_targets"]]),
    ("Optimization", [["learning_rate", "lr_scheduler", "warmup", "weight_decay"],
                      ["num_epochs", "max_steps", "batch_size", "grad_accum", "seed"]]),
    ("Tokens and QA windows", [["max_length", "doc_stride", "max_answer_length", "n_best"]]),
    ("Speed and logging", [["precision", "device", "eval_steps", "logging_steps"]]),
]


def _groups():
    """GROUPS, with any config field they do not name as a last row: the form always covers the config."""
    named = {n for _, rows in GROUPS for row in rows for n in row}
    rest = [n for n in FIELDS if n not in named]
    out = [(t, [[n for n in row if n in FIELDS] for row in rows]) for t, rows in GROUPS]
    if rest:
        out[-1][1].append(rest)
    return out


def build_encoder(ctx):
    gr.Markdown(INTRO)
    default = preset("sentiment")
    w: dict[str, gr.components.Component] = {}
    with gr.Row():
        preset_dd = gr.Dropdown(list(PRESETS), value="sentiment", label="Encoder preset", scale=1)
        preset_note = gr.Markdown(f"Preset **sentiment**: {NOTES['sentiment']}")
    for title, rows in _groups():
        with gr.Accordion(title, open=title in ("Encoder, task and data", "Method", "Optimization")):
            for names in rows:
                with gr.Row(equal_height=False):
                    for n in names:
                        w[n] = _widget(n, getattr(default, n))
    form = [w[n] for n in FIELDS]
    with gr.Row():
        start_btn = gr.Button("Start encoder training", variant="primary")
        yaml_btn = gr.Button("Copy config as YAML / command")
    msg = gr.Markdown()
    with gr.Row():
        yaml_box = gr.Code(language="yaml", label="run.yaml", interactive=False)
        cmd_box = gr.Textbox(label="Command", buttons=["copy"], interactive=False)

    gr.Markdown("#### Encoder run")
    mon = ctx.run_monitor("encoder", recipe="encoder")
    scores_md = gr.Markdown()
    conf_df = gr.Dataframe(label="Confusion matrix (rows: reference label, columns: predicted label)",
                           interactive=False)
    preds_df = gr.Dataframe(label="Held-out predictions (wrong ones first)", wrap=True, interactive=False,
                            max_height=420)

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
    start_btn.click(start, form, [mon.run_id, msg], api_name="encoder_start").success(
        lambda rid: gr.update(choices=run_choices("encoder"), value=rid), mon.run_id, mon.run_id, queue=False,
        api_visibility="private")
    out = [scores_md, conf_df, preds_df]
    drawn = gr.State(None)  # per browser session: (run id, state, metrics stat) the details were drawn from
    mon.after_draw(details_follow, [mon.run_id, mon.seen, drawn], [*out, drawn])
    gr.api(results, api_name="encoder_results")
    s_btn.click(search_start, [s_preset, s_grid, s_random, preset_dd, *form], [s_msg, s_pick, s_md, s_plot],
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
