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

import gradio as gr
import pandas as pd

from components.form import Form
from components.shared import GPU_QUEUE, actor_of, dataset_choices, run_choices, with_request
from labs import runs, store
from labs.preference import results as run_results
from labs.errors import LabError
from labs.preference.config import PreferenceRunConfig, preset

DPO_BEFORE = ("DPO's reward is beta x (log-prob under the model - log-prob under the starting model): the starting "
              "model is its own reference, so before training every reward is 0 and no pair counts as correct.")


def data_choices() -> list[str]:
    return ["store", *(f"store:{b['batch']}" for b in store.batches()), *dataset_choices()]


FORM = Form(PreferenceRunConfig, exclude=("model",), dynamic={"data": data_choices})  # the model: the header's
FIELDS = FORM.names


def _cfg(model, values) -> PreferenceRunConfig:
    return FORM.config(values, model=(model or "").strip() or PreferenceRunConfig.model)


def _form_values(cfg: PreferenceRunConfig) -> list:
    return FORM.values(cfg)


# --------------------------------------------------------------------------- handlers (plain functions)
def apply_preset(name):
    return FORM.apply_preset(name)


def config_yaml(model, *values):
    return FORM.preview(values, model=(model or "").strip() or PreferenceRunConfig.model)


def start(model, *values, request: gr.Request = None):
    """Validate the form and submit the run; returns (run id for the monitor, message). On the store's labels the
    message says, before any training, what the labels give and leave out (as the export does), the optimizer
    steps the run will make, and a warning when the pairs are too few to teach much."""
    from labs.preference.recipe import load_rows, optimizer_steps, split_rows, store_export
    try:
        cfg = _cfg(model, values)
        ex = None
        if cfg.store_batches() is not None:  # say it here, not in a failed run, when there is nothing to train on
            ex = store_export(cfg)
            n = len(load_rows(cfg))
        else:
            n = None
        run = runs.submit("preference", cfg.to_dict(), name=cfg.method, actor=actor_of(request))
    except LabError as e:
        gr.Warning(str(e))
        return gr.update(), f"⚠️ **{e}**"
    msg = f"Started run `{run.id}` — {cfg.method.upper()}"
    warning = None
    if ex is not None:
        train, held = split_rows(ex.rows, cfg.eval_fraction, cfg.seed)
        steps = optimizer_steps(cfg, len(train))
        held_note = f", {len(held)} held out" if held else ""
        msg += (f", {n} labeled pairs{held_note}: {len(train)} to train on in {steps} optimizer "
                f"step{'s' * (steps != 1)}, effective batch {cfg.effective_batch()}. From the store: "
                f"{ex.summary()}.")
        warning = ex.warning(steps, method=cfg.method, run=True)
    else:
        msg += f", effective batch {cfg.effective_batch()}."
    msg += f" `{cfg.command(str(run.dir / 'config.yaml'))}`"
    if warning:
        gr.Warning(warning)
        msg += f"\n\n⚠️ {warning}"
    return run.id, msg


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


# the tables' columns, shown as their headers before a run has filled them (None draws the headers alone)
BEFORE_AFTER_COLUMNS = ["prompt", "before", "after", "before_words", "after_words"]  # before_after.jsonl's keys
ODDS_COLUMNS = ["split", "prompt", "chosen", "rejected", "log odds before", "log odds after"]


def details(run_id):
    """Live reward charts, then (after the run) the before/after table, accuracies and the per-pair odds."""
    from labs.preference.odds import WHY_NOT_A_COLUMN
    from labs.preference.plots import odds_figure, rewards_figure
    if not run_id:
        return (None, None, "", None, None, "")
    try:
        r = run_results(run_id)
    except runs.RunError as e:
        return (None, None, f"⚠️ {e}", None, None, "")
    md, why, ba, odds_df, odds_fig = "", "", None, None, None
    if r["eval_metrics"] is not None:
        md = accuracy_markdown(r["eval_metrics"])
        if r["steps"] is not None:
            seconds = "?" if r["train_seconds"] is None else r["train_seconds"]
            md += f"\n\nTraining time: {seconds} s over {r['steps']} steps."
    if r["before_after"] is not None:
        ba = pd.DataFrame(r["before_after"])
    if r["odds"] is not None:
        odds_fig = odds_figure(r["odds"])
        odds_df = pd.DataFrame([{"split": o["split"], "prompt": o["prompt"][:120], "chosen": o["chosen"][:160],
                                 "rejected": o["rejected"][:160], "log odds before": round(o["log_odds_before"], 3),
                                 "log odds after": round(o["log_odds_after"], 3)} for o in r["odds"]],
                               columns=ODDS_COLUMNS)
        why = WHY_NOT_A_COLUMN
    return rewards_figure(r["metrics"]), ba, md, odds_df, odds_fig, why


def results(run_id: str) -> dict:
    """A run's outcome as data (labs.preference.results): state, method, metrics rows, eval_metrics.json,
    before_after.jsonl and odds.jsonl rows (None until written), training seconds and steps."""
    try:
        return run_results(run_id)
    except runs.RunError as e:
        raise gr.Error(str(e)) from None


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
def build_training(ctx):
    gr.Markdown("Train on the labels: DPO raises the chosen answer's likelihood relative to the starting model, "
                "ORPO adds an odds-ratio term to supervised training on the chosen answers. Every field says what "
                "it does.")
    default = preset("dpo")
    preset_dd, preset_note = FORM.preset_picker("dpo")
    form = FORM.render(default)
    w = FORM.widgets
    ctx.on_load(FORM.refresh, FORM.dynamic_components)
    start_btn, yaml_btn, msg, yaml_box, cmd_box = FORM.controls()

    mon = ctx.run_monitor("pref_train", recipe="preference")
    rewards_plot = gr.Plot(label="Rewards · margin · reward accuracy · log-probabilities", elem_id="pref-rewards")
    acc_md = gr.Markdown(elem_id="pref-accuracy")
    before_after = gr.Dataframe(headers=BEFORE_AFTER_COLUMNS, label="Held-out prompts: starting model vs trained "
                                "(greedy)", wrap=True, elem_id="pref-before-after")
    with gr.Row():
        odds_df = gr.Dataframe(headers=ODDS_COLUMNS, label="ORPO's log odds ratio per labeled pair", wrap=True, scale=3,
                               elem_id="pref-odds")
        odds_plot = gr.Plot(label="Log odds ratio before vs after", scale=2, elem_id="pref-odds-plot")
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
    start_btn.click(with_request(start), [ctx.model_spec, *form], [mon.run_id, msg], api_name="pref_train_start").success(
        lambda rid: gr.update(choices=run_choices("preference"), value=rid), mon.run_id, mon.run_id, queue=False,
        api_visibility="private")
    out = [rewards_plot, before_after, acc_md, odds_df, odds_plot, why_md]
    drawn = gr.State(None)  # per browser session: (run id, state, metrics stat) the details were drawn from
    # after each monitor draw (a pick, a tick): the monitor's events run unqueued, and a gr.State's .change
    # fires only after queued events, so `mon.seen.change` would never draw a run's results
    mon.after_draw(details_follow, [mon.run_id, mon.seen, drawn], [*out, drawn])
    gr.api(results, api_name="pref_train_results")
    ab_btn.click(ab_make, [mon.run_id, ab_n, ab_temp, ab_new, ab_seed], ab_md, api_name="pref_ab_make", **GPU_QUEUE)
    wr_btn.click(ab_winrate, mon.run_id, ab_md, api_name="pref_winrate")


if __name__ == "__main__":
    from components.shared import default_context
    with gr.Blocks(title="Preference training") as demo:
        build_training(default_context())
    demo.launch()
