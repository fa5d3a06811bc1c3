"""LoRA explorer tab: what rank, alpha and target modules cost and buy — counted, trained, looked inside.

    python -m components.lora_tab        # this tab alone

Four parts: the calculator (parameters, adapter size, memory, from the config alone), scaling
(alpha/r vs rsLoRA's alpha/√r), rank sweeps (real short SFT runs through the run engine) and the
learned update's spectra (σ of ΔW, effective rank, subspace similarity of two adapters).
Every action is callable by gradio_client: lora_layers, lora_count, lora_scaling, lora_sweep_start,
lora_sweep_status, lora_sweep_stop, lora_spectra, lora_similarity.
"""
from __future__ import annotations

import gradio as gr
import pandas as pd

from components.shared import GPU_QUEUE, actor_of, is_live, run_view
from labs import lora
from labs.errors import LabError
from labs.lora import LoraError
from labs.sft.config import PRESETS

RANK_CHOICES = [1, 2, 4, 8, 16, 32, 64, 128]
GPU_CHOICES = [8, 12, 16, 24, 40, 48, 80, 141]
DEFAULT_TARGETS = ["q_proj", "v_proj"]
# the columns of labs.lora's tables, named before anything fills them (an unnamed empty table shows 1 2 3)
COUNT_COLUMNS = ["module", "layers", "shape in→out", "params per layer", "trainable params"]
MEMORY_COLUMNS = ["method", "weights", "gradients", "optimizer", "activations", "total", "verdict"]
SWEEP_COLUMNS = ["rank", "alpha", "state", "step", "eval loss", "task metric", "base model", "training wall s",
                 "trainable params", "run"]
SPECTRA_COLUMNS = ["layer", "shape out×in", "rank", "effective rank (90%)", "stable rank", "σ top", "‖ΔW‖",
                   "‖ΔW‖/‖W‖"]
SLIDER_WIDTH = 240  # px: in a narrower column a slider cuts its largest value (seen at a 1000 px window)


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(columns=columns)


def _spec(box_value: str | None, header_value: str | None) -> str | None:
    return (box_value or "").strip() or (header_value or "").strip() or None


def _error(msg: str) -> str:
    return f"⚠️ **{msg}**"


# --------------------------------------------------------------------------- calculator
def read_layers(box, header):
    """Linear layers of the model, for the targets picker."""
    try:
        shapes = lora.model_shapes(_spec(box, header))
    except LoraError as e:
        gr.Warning(str(e))
        return gr.update(), _error(str(e))
    names = shapes.target_choices()
    keep = [t for t in DEFAULT_TARGETS if t in names] or names[1:2]
    return (gr.update(choices=names, value=keep),
            f"**{shapes.description}** · {shapes.architecture} · {shapes.total_params:,} parameters · "
            f"linear layers: {', '.join(names[1:])}")


def calculate(box, header, rank, alpha, targets, use_dora, use_rslora, dtype, batch, seq, gpu_gb, dropout=0.0):
    from labs.lora import memory as lora_memory, plots as lora_plots
    empty = (_empty(COUNT_COLUMNS), None, _empty(MEMORY_COLUMNS), None)
    try:
        rank = lora.check_rank(rank)
        shapes = lora.model_shapes(_spec(box, header))
        count = lora.count_trainable(shapes, rank, targets or [], use_dora=bool(use_dora))
        est = lora_memory.estimate(shapes, count, dtype=dtype, batch_size=int(batch), seq_len=int(seq),
                                   gpu_gb=float(gpu_gb), lora_dropout=float(dropout or 0))
    except LoraError as e:
        gr.Warning(str(e))
        return (_error(str(e)), *empty)
    size = lora.adapter_file_bytes(shapes, count)
    s = lora.scaling(float(alpha), rank, bool(use_rslora))
    md = (f"**{count.trainable:,} trainable parameters** = {100 * count.trainable_share:.4f}% of "
          f"{count.total_params:,} (PEFT's count: base {shapes.total_params:,} + adapter) · adapter file ≈ "
          f"**{lora.fmt_bytes(size)}** (fp32 safetensors) vs {lora.fmt_bytes(shapes.total_params * lora_memory.DTYPE_BYTES[dtype])} "
          f"for the full model in {dtype} · scaling = {alpha:g}/{'√' if use_rslora else ''}{rank} = **{s:.4g}**\n\n"
          f"Same count from the command line: `python -m labs.lora count --model {shapes.spec} --rank {rank} "
          f"--targets {','.join(targets) if isinstance(targets, list) else targets}{' --dora' if use_dora else ''}`")
    table = pd.DataFrame(count.rows)
    mem = pd.DataFrame(lora_memory.table_rows(est))
    return md, table, lora_plots.count_figure(count), mem, lora_plots.memory_figure(est)


# --------------------------------------------------------------------------- scaling
def scaling_view(alpha):
    from labs.lora import plots as lora_plots
    try:
        alpha = float(alpha)
        if alpha <= 0:
            raise ValueError
    except (TypeError, ValueError):
        gr.Warning("alpha must be a number > 0")
        return None, None
    return lora_plots.scaling_figure(alpha), scaling_table(alpha)


def scaling_table(alpha: float) -> pd.DataFrame:
    return pd.DataFrame([{"rank": r, "alpha/r": round(lora.scaling(alpha, r), 5),
                          "alpha/√r (rsLoRA)": round(lora.scaling(alpha, r, True), 5)} for r in RANK_CHOICES])


# --------------------------------------------------------------------------- sweeps
def sweep_start(name, header, ranks, alpha_mode, alpha, targets, steps, lr, eval_rows, use_rslora, batch=4,
                request: gr.Request = None):
    from labs.lora import sweep as lora_sweep
    try:
        ranks = sorted(int(r) for r in (ranks or []))
        if len(ranks) < 1:
            raise LoraError("ranks: tick at least one rank")
        alphas = None if alpha_mode == "alpha = 2 × rank" else sorted(float(a) for a in (alpha or []))
        if alphas == []:
            raise LoraError("alphas: tick at least one alpha, or choose alpha = 2 × rank")
        rec = lora_sweep.start_sweep((name or "").strip() or None, ranks=ranks, alphas=alphas,
                                     model=(header or "").strip() or None, targets=targets, max_steps=int(steps),
                                     learning_rate=float(lr), eval_rows=int(eval_rows), use_rslora=bool(use_rslora),
                                     batch_size=int(batch or 4), actor=actor_of(request))
    except LabError as e:
        gr.Warning(str(e))
        return gr.update(), _error(str(e))
    return (gr.update(choices=lora_sweep.list_sweeps(), value=rec["name"]),
            f"Sweep **{rec['name']}** queued: {len(rec['run_ids'])} runs, one at a time.")


def sweep_status(name):
    from labs.lora import plots as lora_plots, sweep as lora_sweep
    if not name:
        return _empty(SWEEP_COLUMNS), None, "No sweep selected."
    try:
        results = lora_sweep.sweep_results(name)
        rows = lora_sweep.sweep_rows(name)
    except LoraError as e:
        return _empty(SWEEP_COLUMNS), None, _error(str(e))
    done = sum(r.get("state") == "finished" for r in results)
    failed = [r for r in results if r.get("state") in ("failed", "interrupted", "corrupt")]
    md = f"**{name}**: {done}/{len(results)} finished"
    if failed:
        md += " · " + "; ".join(f"r={r['rank']} {r['state']}: {r.get('error') or ''}" for r in failed)[:600]
    return pd.DataFrame(rows, dtype=object), lora_plots.sweep_figure(results, title=f"sweep {name}"), md


def sweep_view(name):
    """What the sweep's table and plot are drawn from, read cheaply: each point's run id, state and
    metrics.jsonl stat (components.shared.RunView without status.json's once-a-second rewrite)."""
    from labs.lora import sweep as lora_sweep
    if not name:
        return None
    try:
        points = lora_sweep.load_sweep(name)["points"]
    except (LoraError, OSError, ValueError):
        return (name,)
    return (name, *(run_view(p["run_id"])._replace(status=None) for p in points))


def _sweep_live(view) -> bool:
    return bool(view) and any(is_live(v) for v in view[1:])


def sweep_show(name):
    """Draw the sweep now (picked, started); the timer runs only while one of its points can still change."""
    view = sweep_view(name)  # read before drawing: a change made meanwhile is drawn at the next tick
    return (*sweep_status(name), view, gr.Timer(active=_sweep_live(view)))


def sweep_tick(name, seen):
    """A timer tick: nothing is sent when no point moved; the timer stops once every point has ended."""
    view = sweep_view(name)
    timer = gr.skip() if _sweep_live(view) else gr.Timer(active=False)
    if view == seen:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), timer
    return (*sweep_status(name), view, timer)


def sweep_stop(name, request: gr.Request = None):
    from labs.lora import sweep as lora_sweep
    if not name:
        return "No sweep selected."
    try:
        lora_sweep.stop_sweep(name, actor=actor_of(request))
    except LabError as e:
        return _error(str(e))
    return f"Stopping **{name}**: the running point saves a checkpoint; queued points are cancelled."


def sweep_choices():
    from labs.lora import sweep as lora_sweep
    return gr.update(choices=lora_sweep.list_sweeps())


# --------------------------------------------------------------------------- spectra
def adapter_choices() -> list[str]:
    from labs import runs
    out = []
    for r in runs.list_runs():
        model = r.trained_model()
        if model is not None and model.name == "adapter":  # a LoRA run (a full model has no spectra)
            out.append(r.id)
    return out


def _adapter_path(value: str):
    from labs import paths, runs
    value = (value or "").strip()
    if not value:
        raise LoraError("pick a run or type an adapter directory")
    if "/" in value or "\\" in value:  # a folder typed as a path
        return value
    # else a run id: the one name check (labs.paths) keeps '..' and links out of runs/ away
    d = paths.child(runs.runs_dir(), value, "run id", error=LoraError)
    return d if d.is_dir() else value


def spectra(adapter):
    from labs.lora import plots as lora_plots, spectra as lora_spectra
    try:
        res = lora_spectra.adapter_spectra(_adapter_path(adapter))
    except LoraError as e:
        gr.Warning(str(e))
        return _error(str(e)), _empty(SPECTRA_COLUMNS), None, gr.update()
    mods = [lay.module for lay in res.layers]
    return (res.summary(), pd.DataFrame(lora_spectra.spectra_rows(res)), lora_plots.spectra_figure(res),
            gr.update(choices=mods, value=mods[len(mods) // 2]))


def similarity(adapter_a, adapter_b, module):
    from labs.lora import plots as lora_plots, spectra as lora_spectra
    try:
        sim = lora_spectra.subspace_similarity(_adapter_path(adapter_a), _adapter_path(adapter_b), module or None)
    except LoraError as e:
        gr.Warning(str(e))
        return _error(str(e)), None
    return sim.summary(), lora_plots.similarity_figure(sim, "first", "second")


# --------------------------------------------------------------------------- layout
def build(ctx) -> None:
    header = ctx.model_spec
    gr.Markdown("## LoRA explorer\nWhat rank, alpha and target modules cost (counted from the model's config, "
                "no weights loaded), what they buy (real short training runs), and what the trained update "
                "looks like inside.\n\nEncoders count too (the course's BERT way): give the bundled "
                "all-MiniLM-L6-v2 folder (`python -c \"from labs.encoder.data import minilm_path; "
                "print(minilm_path())\"`) and the targets `query,value`: rank 8 trains 73,728 adapter weights "
                "(`python -m labs.lora count --model <that folder> --rank 8 --targets query,value`); PEFT's "
                "SEQ_CLS task type also trains the new 3-label head, 74,883 in all (labs/encoder/recipe.py).")
    with gr.Tabs():
        with gr.Tab("Calculator"):
            with gr.Row():
                model_box = gr.Textbox(label="Model (empty: the header's model)", scale=3,
                                       placeholder="Hub id, local model dir, or a dir holding only config.json")
                layers_btn = gr.Button("Read layers", scale=1)
            model_info = gr.Markdown()
            with gr.Row():
                rank = gr.Number(8, label="rank r", precision=0, minimum=1, maximum=4096)
                dropout = gr.Slider(0, 0.3, value=0.0, step=0.01, min_width=SLIDER_WIDTH, scale=2,  # its long label
                                    label="lora_dropout (adds activations; the SFT default is 0)")
                alpha = gr.Number(16, label="lora_alpha", minimum=0.001)
                use_dora = gr.Checkbox(label="DoRA (+ magnitude vector)")
                use_rslora = gr.Checkbox(label="rsLoRA scaling (alpha/√r)")
            targets = gr.CheckboxGroup(choices=[lora.ALL_LINEAR, *lora.DEFAULT_LINEAR_NAMES], value=DEFAULT_TARGETS,
                                       label="target modules")
            with gr.Row():
                dtype = gr.Radio(["bf16", "fp16", "fp32"], value="bf16", label="weights dtype")
                batch = gr.Slider(1, 128, value=8, step=1, label="batch size", min_width=SLIDER_WIDTH)
                seq = gr.Slider(64, 32768, value=512, step=64, label="sequence length", min_width=SLIDER_WIDTH)
                gpu = gr.Dropdown(GPU_CHOICES, value=24, label="GPU memory (GiB)", allow_custom_value=True)
            calc_btn = gr.Button("Calculate", variant="primary")
            calc_md = gr.Markdown()
            with gr.Row():
                count_table = gr.Dataframe(_empty(COUNT_COLUMNS), label="trainable parameters per target module",
                                           interactive=False)
                count_plot = gr.Plot(label="per module")
            mem_table = gr.Dataframe(_empty(MEMORY_COLUMNS), interactive=False,
                                     label="training memory (formula in labs/lora/memory.py; ±30% of measured peaks)")
            mem_plot = gr.Plot(label="memory")

        with gr.Tab("Scaling") as scaling_tab:
            sc_alpha = gr.Number(16, label="lora_alpha", minimum=0.001)
            sc_btn = gr.Button("Plot")
            sc_plot = gr.Plot()
            sc_table = gr.Dataframe(scaling_table(16), interactive=False)  # drawn again when the tab opens
            gr.Markdown(lora.SCALING_EXPLAINED)

        with gr.Tab("Rank sweep"):
            gr.Markdown("Short LoRA SFT runs on the bundled instruction task, one per rank, same seed, steps, "
                        "learning rate and batch — so you see on real runs whether a small rank suffices. "
                        "Runs train one at a time in the run engine's queue (the SFT tab shows each). Each run "
                        "evaluates at half-way and at the end; the base model answers the held-out rows once. "
                        "On 2 CPU cores a 50-step point at batch 4 takes about 3 minutes.")
            with gr.Row():
                sw_name = gr.Textbox(label="sweep name (empty: dated)", scale=2)
                sw_ranks = gr.CheckboxGroup(RANK_CHOICES, value=[1, 2, 4, 8], label="ranks", scale=3)
            with gr.Row():
                sw_alpha_mode = gr.Radio(["alpha = 2 × rank", "every alpha ticked × every rank"],
                                         value="alpha = 2 × rank", label="alpha")
                sw_alpha = gr.CheckboxGroup([1, 2, 4, 8, 16, 32, 64, 128], value=[16],
                                            label="alphas (one: the same alpha for every rank)")
                sw_rslora = gr.Checkbox(label="rsLoRA")
                sw_targets = gr.Dropdown(["all-linear", "q_proj,v_proj", "q_proj,k_proj,v_proj,o_proj"],
                                         value="all-linear", label="targets", allow_custom_value=True)
            with gr.Row():
                sw_steps = gr.Slider(50, 1000, value=50, step=10, label="steps per run (same for all)",
                                     min_width=SLIDER_WIDTH)
                sw_lr = gr.Number(PRESETS["instruction"]["learning_rate"], label="learning rate", minimum=1e-7,
                                  maximum=1e-2)
                sw_batch = gr.Slider(1, 32, value=4, step=1, label="batch size", min_width=SLIDER_WIDTH)
                sw_eval = gr.Slider(0, 100, value=20, step=1, label="held-out rows for the task metric",
                                    min_width=SLIDER_WIDTH)
            with gr.Row():
                sw_start = gr.Button("Start sweep", variant="primary")
                sw_stop = gr.Button("Stop sweep", variant="stop")
            sw_msg = gr.Markdown()
            with gr.Row():
                from labs.lora import sweep as lora_sweep
                sw_pick = gr.Dropdown(lora_sweep.list_sweeps(), label="sweep", allow_custom_value=True, scale=4)
                sw_refresh = gr.Button("↻", scale=0, min_width=40)
            sw_status = gr.Markdown()
            sw_table = gr.Dataframe(_empty(SWEEP_COLUMNS), interactive=False)
            sw_plot = gr.Plot()
            # first tick: draws the sweep the picker shows at page load; then on only while a point can change
            sw_timer = gr.Timer(3.0)
            sw_seen = gr.State(None)  # per browser session: the sweep_view on screen

        with gr.Tab("Inside an adapter"):
            gr.Markdown("Singular values of each learned update ΔW = scaling·B·A (PEFT's scaling, rsLoRA-aware), "
                        "**effective rank = how many singular values hold 90% of Σσ²**, and ‖ΔW‖_F/‖W‖_F against "
                        "the frozen weight. Two adapters of different rank on the same data: φ(i, j) = "
                        "‖U_iᵀU_j‖²_F / min(i, j) with U the right-singular vectors of each A (LoRA paper §7).")
            with gr.Row():
                ad_a = gr.Dropdown(adapter_choices(), label="adapter (run or directory)", allow_custom_value=True, scale=4)
                ad_refresh = gr.Button("↻", scale=0, min_width=40)
                ad_btn = gr.Button("Analyse", variant="primary", scale=1)
            ad_md = gr.Markdown()
            ad_plot = gr.Plot()
            ad_table = gr.Dataframe(_empty(SPECTRA_COLUMNS), interactive=False)
            with gr.Row():
                ad_b = gr.Dropdown(adapter_choices(), label="second adapter (other rank, same data)",
                                   allow_custom_value=True, scale=3)
                ad_layer = gr.Dropdown([], label="layer", allow_custom_value=True, scale=3)
                sim_btn = gr.Button("Compare subspaces", scale=1)
            sim_md = gr.Markdown()
            sim_plot = gr.Plot()

    # ---- events
    layers_in = [model_box, header]
    layers_btn.click(read_layers, layers_in, [targets, model_info], api_name="lora_layers")
    header.change(read_layers, layers_in, [targets, model_info], api_visibility="private")
    calc_btn.click(calculate, [model_box, header, rank, alpha, targets, use_dora, use_rslora, dtype, batch, seq, gpu, dropout],
                   [calc_md, count_table, count_plot, mem_table, mem_plot], api_name="lora_count")
    sc_btn.click(scaling_view, sc_alpha, [sc_plot, sc_table], api_name="lora_scaling")
    scaling_tab.select(scaling_view, sc_alpha, [sc_plot, sc_table], api_visibility="private")
    sw_start.click(sweep_start, [sw_name, header, sw_ranks, sw_alpha_mode, sw_alpha, sw_targets, sw_steps, sw_lr,
                                 sw_eval, sw_rslora, sw_batch], [sw_pick, sw_msg], api_name="lora_sweep_start")
    sw_stop.click(sweep_stop, sw_pick, sw_msg, api_name="lora_sweep_stop")
    sw_out = [sw_table, sw_plot, sw_status, sw_seen, sw_timer]
    sw_pick.change(sweep_show, sw_pick, sw_out, queue=False, show_progress="hidden", api_visibility="private")
    sw_timer.tick(sweep_tick, [sw_pick, sw_seen], sw_out, queue=False, show_progress="hidden",
                  api_visibility="private")
    sw_refresh.click(sweep_choices, None, sw_pick, queue=False, api_visibility="private")
    # ↻ also redraws the sweep (the API's lora_sweep_status) and lets the next tick decide about the timer
    sw_refresh.click(sweep_status, sw_pick, [sw_table, sw_plot, sw_status], api_name="lora_sweep_status").then(
        lambda: (None, gr.Timer(active=True)), None, [sw_seen, sw_timer], queue=False, api_visibility="private")
    ad_refresh.click(lambda: (gr.update(choices=adapter_choices()),) * 2, None, [ad_a, ad_b], queue=False, api_visibility="private")
    # adapters trained since the page was built: listed when the page loads and when the tab opens, the newest picked
    ctx.on_load(lambda a: (gr.update(choices=adapter_choices(), value=a or next(iter(adapter_choices()), None)),
                           gr.update(choices=adapter_choices())), [ad_a, ad_b], [ad_a])
    ad_btn.click(spectra, ad_a, [ad_md, ad_table, ad_plot, ad_layer], api_name="lora_spectra", **GPU_QUEUE)
    sim_btn.click(similarity, [ad_a, ad_b, ad_layer], [sim_md, sim_plot], api_name="lora_similarity", **GPU_QUEUE)
    gr.on([model_box.submit], read_layers, layers_in, [targets, model_info], api_visibility="private")


if __name__ == "__main__":
    from components.shared import default_context
    with gr.Blocks(title="LoRA explorer") as demo:
        with gr.Tab("LoRA explorer"):
            build(default_context())
    demo.launch()
