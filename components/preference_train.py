"""Training on the labels (inside the Preference labeler tab): the DPO / ORPO form, Start, the live run,
then the starting model against the trained one.

    build_training(ctx)          # called by components/preference_tab.py inside its Blocks

The form *is* labs.preference.config.PreferenceRunConfig: "Copy config as YAML / command" shows the job as
the run directory keeps it (`python -m labs.preference --config run.yaml` runs it headless). Callable by
gradio_client: pref_train_preset, pref_train_config_yaml, pref_train_start, pref_train_results (+ the run
monitor's pref_train_run_status/stop/kill/resume), pref_ab_make (a blind A/B batch: the trained run against its
starting model on held-out prompts, labeled in the labeler above) and pref_winrate (its win rate, 95% interval).
"""
from __future__ import annotations

import json
from dataclasses import fields

import gradio as gr
import pandas as pd

from components.shared import GPU_QUEUE, dataset_choices, run_choices
from labs import runs, store
from labs.preference.config import (HELP, LINEAR_NAMES, LOSS_TYPES, PRESETS, ConfigError, PreferenceRunConfig,
                                    preset)

FIELDS = [f.name for f in fields(PreferenceRunConfig) if f.name != "model"]  # the model comes from the header
NOTES = {"dpo": "DPO with LoRA on every decided label in the store; the reference is the starting model.",
         "orpo": "ORPO with LoRA: supervised on the chosen answers plus the odds-ratio term; no reference model."}
DPO_BEFORE = ("DPO's reward is beta x (log-prob under the model - log-prob under the starting model): the starting "
              "model is its own reference, so before training every reward is 0 and no pair counts as correct.")


def _cfg(model, values) -> PreferenceRunConfig:
    d = dict(zip(FIELDS, values))
    d["lora_targets"] = ",".join(d["lora_targets"]) if isinstance(d["lora_targets"], list) else d["lora_targets"]
    return PreferenceRunConfig(model=(model or "").strip() or PreferenceRunConfig.model, **d)


def _form_values(cfg: PreferenceRunConfig) -> list:
    out = []
    for name in FIELDS:
        v = getattr(cfg, name)
        if name == "lora_targets":
            v = ["all-linear"] if v in ("", "all-linear") else [t.strip() for t in v.split(",")]
        out.append(v)
    return out


def data_choices() -> list[str]:
    return ["store", *(f"store:{b['batch']}" for b in store.batches()), *dataset_choices()]


# --------------------------------------------------------------------------- handlers (plain functions)
def apply_preset(name):
    return [*_form_values(preset(name)), f"Preset **{name}**: {NOTES[name]}"]


def config_yaml(model, *values):
    try:
        cfg = _cfg(model, values)
    except ConfigError as e:
        gr.Warning(str(e))
        return f"# invalid: {e}", ""
    return cfg.to_yaml(), cfg.command("run.yaml") + "   # save the YAML above as run.yaml first"


def start(model, *values):
    """Validate the form and submit the run; returns (run id for the monitor, message)."""
    try:
        cfg = _cfg(model, values)
        if cfg.store_batches() is not None:  # say it here, not in a failed run, when there is nothing to train on
            from labs.preference.recipe import load_rows
            n = len(load_rows(cfg))
        else:
            n = None
    except ConfigError as e:
        gr.Warning(str(e))
        return gr.update(), f"⚠️ **{e}**"
    run = runs.submit("preference", cfg.to_dict(), name=cfg.method)
    pairs = f"{n} labeled pairs, " if n is not None else ""
    return (run.id, f"Started run `{run.id}` — {cfg.method.upper()}, {pairs}effective batch "
                    f"{cfg.effective_batch()}; `{cfg.command(str(run.dir / 'config.yaml'))}`")


def _fmt(v, pct=False):
    if v is None:
        return "–"
    return f"{100 * v:.0f}%" if pct else f"{v:.3f}"


def accuracy_markdown(m: dict) -> str:
    """The starting model against the trained one, on the labeled pairs (and held-out pairs, if any)."""
    lines = ["| on the labeled pairs | starting model | trained |", "|---|---|---|"]
    for split, title in (("train", "training pairs"), ("held_out", "held-out pairs")):
        if split not in m:
            continue
        s = m[split]
        b, a = s["before"], s["after"]
        lines += [f"| reward accuracy ({title}, n={s['pairs']}) | {_fmt(b['reward_accuracy'], True)} | "
                  f"{_fmt(a['reward_accuracy'], True)} |",
                  f"| mean reward margin ({title}) | {_fmt(b['reward_margin'])} | {_fmt(a['reward_margin'])} |",
                  f"| log-odds accuracy, ORPO ({title}) | {_fmt(b['log_odds_accuracy'], True)} | "
                  f"{_fmt(a['log_odds_accuracy'], True)} |",
                  f"| mean log-prob of chosen / rejected ({title}) | {_fmt(b['logps_chosen'])} / "
                  f"{_fmt(b['logps_rejected'])} | {_fmt(a['logps_chosen'])} / {_fmt(a['logps_rejected'])} |"]
    g = m.get("generations")
    if g:
        lines.append(f"| mean words per answer ({g['prompts']} held-out prompts, greedy) | "
                     f"{g['before_mean_words']:.1f} | {g['after_mean_words']:.1f} |")
    note = f"\n\n{DPO_BEFORE}" if m.get("method") == "dpo" else \
        "\n\nORPO's reward is beta x the mean token log-prob of an answer: accuracy = the chosen answer more likely."
    return "**Starting model vs trained** (measured after training, adapter off vs on)\n\n" + "\n".join(lines) + note


def details(run_id):
    """Live reward charts, then (after the run) the before/after table, accuracies and the per-pair odds."""
    from labs.preference.odds import WHY_NOT_A_COLUMN
    from labs.preference.plots import odds_figure, rewards_figure
    empty = (None, None, "", None, None, "")
    if not run_id:
        return empty
    try:
        run = runs.get(run_id)
    except runs.RunError as e:
        return (None, None, f"⚠️ {e}", None, None, "")
    fig = rewards_figure(run.metrics())
    ba = odds_df = odds_fig = None
    md, why = "", ""
    ev = run.dir / "eval_metrics.json"
    if ev.exists():
        md = accuracy_markdown(json.loads(ev.read_text()))
        final = [r for r in run.metrics() if r.get("final")]
        if final:
            md += f"\n\nTraining time: {final[-1].get('train_seconds', '?')} s over {final[-1].get('step')} steps."
    p = run.dir / "before_after.jsonl"
    if p.exists():
        ba = pd.DataFrame([json.loads(x) for x in p.read_text().splitlines()])
    p = run.dir / "odds.jsonl"
    if p.exists():
        rows = [json.loads(x) for x in p.read_text().splitlines()]
        odds_fig = odds_figure(rows)
        odds_df = pd.DataFrame([{"split": r["split"], "prompt": r["prompt"][:120], "chosen": r["chosen"][:160],
                                 "rejected": r["rejected"][:160], "log odds before": round(r["log_odds_before"], 3),
                                 "log odds after": round(r["log_odds_after"], 3)} for r in rows])
        why = WHY_NOT_A_COLUMN
    return fig, ba, md, odds_df, odds_fig, why


def results(run_id: str) -> dict:
    """A run's outcome as data: state, eval_metrics.json, before_after.jsonl and odds.jsonl rows (None until written)."""
    run = runs.get(run_id)
    read = lambda name: [json.loads(x) for x in (run.dir / name).read_text().splitlines()] \
        if (run.dir / name).exists() else None  # noqa: E731
    ev = run.dir / "eval_metrics.json"
    return {"state": run.status().get("state"), "eval_metrics": json.loads(ev.read_text()) if ev.exists() else None,
            "before_after": read("before_after.jsonl"), "odds": read("odds.jsonl")}


def ab_make(run_id, n, temperature, max_new_tokens, seed, progress=gr.Progress()):
    """Store a blind A/B batch for the run; the annotators label it in the labeler (Batch: ab-...)."""
    from labs import models
    from labs.preference import pairs as pref_pairs
    from labs.preference import winrate
    if not run_id:
        return "⚠️ Pick a finished run above first."
    try:
        run = runs.get(run_id)
        if run.status().get("state") != "finished":
            raise pref_pairs.PairsError(f"run {run_id} is {run.status().get('state')}: a blind A/B pass needs a "
                                        f"finished run")
        progress(0, desc="loading the trained model")
        loaded = models.CACHE.get(str(run.dir))
        batch, ids = winrate.make_ab_pairs(str(run.dir), n=int(n or 0), temperature=float(temperature),
                                           max_new_tokens=int(max_new_tokens), seed=int(seed or 0), loaded=loaded,
                                           batch=f"{winrate.AB_PREFIX}{run_id}-{int(seed or 0)}",
                                           progress=lambda d, t: progress(d / t, desc=f"{d} of {t} prompts"))
    except (pref_pairs.PairsError, models.ModelError, store.StoreError, runs.RunError, ValueError) as e:
        gr.Warning(str(e))
        return f"⚠️ {e}"
    return (f"Stored **{len(ids)} blind pairs** in batch **{batch}**: pick it in *Batch* at the top of this tab and "
            f"label as usual. The page never says which side is the trained model; each annotator sees the two in "
            f"an order of their own. Then press *Win rate*.")


def ab_winrate(run_id):
    """The trained run's win rate over every labeled A/B batch made for it."""
    from labs.preference import winrate
    if not run_id:
        return "⚠️ Pick a finished run above first."
    try:
        spec = str(runs.get(run_id).dir)
        batches = [b["batch"] for b in store.batches()
                   if b["batch"].startswith(winrate.AB_PREFIX) and b["model_a"] == spec]
        if not batches:
            raise store.StoreError(f"no blind A/B batch for run {run_id} yet: press *Make blind A/B pairs*")
        parts = [winrate.winrate_from_labels(b, spec) for b in batches]
    except (store.StoreError, runs.RunError) as e:
        return f"⚠️ {e}"
    w, l, t = (sum(r[k] for r in parts) for k in ("wins", "losses", "ties"))
    total = winrate.win_rate(w, l, t)
    return (f"**Trained vs starting model, blind:** {winrate.describe(total)} (batches: {', '.join(batches)}). "
            f"Above 50% with the whole interval above it: people prefer the trained model.")


def details_follow(run_id, seen, drawn):
    """Redraw only when the monitored run's metrics or state changed since last drawn (not for an ETA tick)."""
    key = None if seen is None else (seen.run_id, seen.state, seen.metrics)
    if key is None or key == drawn:
        return gr.skip()
    return (*details(run_id), key)


# --------------------------------------------------------------------------- layout
def _widget(name, default):
    info, label = HELP[name], name.replace("_", " ")
    choices = {"method": list(PRESETS), "loss_type": list(LOSS_TYPES), "precision": ["auto", "bf16", "fp16", "fp32"],
               "device": ["auto", "cpu", "cuda", "mps"]}
    if name in choices:
        return gr.Dropdown(choices[name], value=default, label=label, info=info)
    if name == "data":
        return gr.Dropdown(data_choices(), value=default, label=label, info=info, allow_custom_value=True)
    if name == "lora_targets":
        return gr.Dropdown(["all-linear", *LINEAR_NAMES], value=["all-linear"], multiselect=True, label=label,
                           info=info)
    if name == "lora_r":
        return gr.Slider(1, 128, value=default, step=1, label=label, info=info)
    if name == "eval_fraction":
        return gr.Slider(0, 0.5, value=default, step=0.05, label=label, info=info)
    if isinstance(default, bool):
        return gr.Checkbox(value=default, label=label, info=info)
    if isinstance(default, int):
        return gr.Number(value=default, precision=0, label=label, info=info)
    if isinstance(default, float):
        return gr.Number(value=default, label=label, info=info)
    return gr.Textbox(value=default, label=label, info=info)


GROUPS = [
    ("Data and method", ["method", "data", "eval_fraction"]),
    ("Loss", ["beta", "loss_type", "sft_weight"]),
    ("LoRA", ["lora_r", "lora_alpha", "lora_targets"]),
    ("Optimization", ["learning_rate", "num_epochs", "max_steps", "batch_size", "grad_accum", "max_length", "seed"]),
    ("Speed", ["precision", "device", "precompute_ref", "completion_head"]),
    ("Logging and before/after", ["logging_steps", "save_steps", "eval_prompts", "max_new_tokens"]),
]


def build_training(ctx):
    gr.Markdown("Train on the labels: DPO raises the chosen answer's likelihood relative to the starting model, "
                "ORPO adds an odds-ratio term to supervised training on the chosen answers. Every field says what "
                "it does.")
    default = preset("dpo")
    w: dict[str, gr.components.Component] = {}
    with gr.Row():
        preset_dd = gr.Dropdown(list(PRESETS), value="dpo", label="Preset", scale=1)
        preset_note = gr.Markdown(f"Preset **dpo**: {NOTES['dpo']}")
    for title, names in GROUPS:
        with gr.Accordion(title, open=title in ("Data and method", "Loss")):
            with gr.Row(equal_height=False):
                for n in names:
                    w[n] = _widget(n, getattr(default, n))
    form = [w[n] for n in FIELDS]
    with gr.Row():
        start_btn = gr.Button("Start training", variant="primary")
        yaml_btn = gr.Button("Copy config as YAML / command")
    msg = gr.Markdown()
    with gr.Row():
        yaml_box = gr.Code(language="yaml", label="run.yaml", interactive=False)
        cmd_box = gr.Textbox(label="Command", buttons=["copy"], interactive=False)

    mon = ctx.run_monitor("pref_train", recipe="preference")
    rewards_plot = gr.Plot(label="Rewards · margin · reward accuracy · log-probabilities")
    acc_md = gr.Markdown()
    before_after = gr.Dataframe(label="Held-out prompts: starting model vs trained (greedy)", wrap=True)
    with gr.Row():
        odds_df = gr.Dataframe(label="ORPO's log odds ratio per labeled pair", wrap=True, scale=3)
        odds_plot = gr.Plot(label="Log odds ratio before vs after", scale=2)
    why_md = gr.Markdown()
    with gr.Accordion("Blind A/B: trained vs starting model (win rate with its 95% interval)", open=False):
        gr.Markdown("For each held-out prompt, one sampled answer of the finished run above and one of its starting "
                    "model are stored as a pair; label them in the labeler like any pair (you are not told which "
                    "is which). These pairs are never trained on.")
        with gr.Row():
            ab_n = gr.Number(0, precision=0, label="Held-out prompts (0 = all)")
            ab_temp = gr.Slider(0, 1.5, value=0.8, step=0.05, label="Temperature")
            ab_new = gr.Slider(8, 512, value=96, step=8, label="Max new tokens")
            ab_seed = gr.Number(0, precision=0, label="Seed")
        with gr.Row():
            ab_btn = gr.Button("Make blind A/B pairs")
            wr_btn = gr.Button("Win rate")
        ab_md = gr.Markdown()

    # ---- events
    preset_dd.change(apply_preset, preset_dd, [*form, preset_note], api_name="pref_train_preset", queue=False)
    w["data"].focus(lambda: gr.update(choices=data_choices()), None, w["data"], queue=False, api_visibility="private")
    yaml_btn.click(config_yaml, [ctx.model_spec, *form], [yaml_box, cmd_box], api_name="pref_train_config_yaml",
                   queue=False)
    start_btn.click(start, [ctx.model_spec, *form], [mon.run_id, msg], api_name="pref_train_start").success(
        lambda rid: gr.update(choices=run_choices("preference"), value=rid), mon.run_id, mon.run_id, queue=False,
        api_visibility="private")
    out = [rewards_plot, before_after, acc_md, odds_df, odds_plot, why_md]
    drawn = gr.State(None)  # per browser session: (run id, state, metrics stat) the details were drawn from
    mon.seen.change(details_follow, [mon.run_id, mon.seen, drawn], [*out, drawn], queue=False,
                    show_progress="hidden", api_visibility="private")
    gr.api(results, api_name="pref_train_results")
    ab_btn.click(ab_make, [mon.run_id, ab_n, ab_temp, ab_new, ab_seed], ab_md, api_name="pref_ab_make", **GPU_QUEUE)
    wr_btn.click(ab_winrate, mon.run_id, ab_md, api_name="pref_winrate")


if __name__ == "__main__":
    from components.shared import default_context
    with gr.Blocks(title="Preference training") as demo:
        build_training(default_context())
    demo.launch()
