"""Preference labeler tab: people choose the better of two generations; every choice is stored at once.

    python -m components.preference_tab          # this tab alone on http://127.0.0.1:7860

Callable by gradio_client (the labeling contract):
    pref_next(annotator)                    -> (pair id, prompt, A, B); id None when nothing is left
    pref_label(pair_id, choice, annotator)  -> commits one label (A, B, tie, both_bad), returns the next pair
and pref_make_pairs, pref_agreement, pref_export. Pairs and labels live in labs.store (SQLite, WAL); this
file only shows them. Keys (page-wide, not while typing): 1 / 2 = A / B better, 3 = tie, 4 = both bad,
s = skip, u = undo.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import gradio as gr
import pandas as pd

from components.shared import GPU_QUEUE, dataset_choices
from labs import store
from labs.preference import labels as pref_labels
from labs.preference import pairs as pref_pairs
from labs.preference.refill import BACKGROUND, KEEP, MAKE

KEYS_HELP = ("**Keys** (when not typing): **1** A is better · **2** B is better · **3** tie · **4** both bad · "
             "**s** skip · **u** undo")
NONE_LEFT = "Nothing left to label here: make more pairs above, or pick another batch."


def _batch(b) -> str | None:
    return None if b in (None, "", "all batches") else b


def _md(text: str) -> str:
    """Model text for a read-only text box (shown as written: no Markdown or HTML is interpreted)."""
    return text if (text or "").strip() else "(empty answer)"


def _progress_md(annotator, batch=None) -> str:
    try:
        st = store.stats()
        mine = store.progress(store.check_annotator(annotator), _batch(batch)) if (annotator or "").strip() else None
    except store.StoreError:
        mine = None
    you = f"**{annotator.strip()}: {mine['done']} of {mine['total']}** labeled · " if mine else ""
    per = ", ".join(f"{k} {v}" for k, v in st["per_annotator"].items()) or "none yet"
    plural = lambda n, word: f"{n} {word}{'s' * (n != 1)}"  # noqa: E731
    return (f"{you}{plural(st['pairs'], 'pair')} · {plural(st['labels'], 'label')} by "
            f"{plural(st['annotators'], 'annotator')} ({per})")


# --------------------------------------------------------------------------- the labeling contract
def pref_next(annotator: str, batch: str | None = None) -> tuple[int | None, str, str, str]:
    """The next pair this annotator has not labeled: (id, prompt, A, B), A and B in this annotator's order."""
    p = store.next_pair(annotator, _batch(batch))
    if p is None:
        return None, "", "", ""
    return p["id"], store.prompt_text(p["prompt"]), p["A"], p["B"]


def pref_label(pair_id: int, choice: str, annotator: str) -> tuple[int | None, str, str, str]:
    """Commit one label (choice: A, B, tie or both_bad as shown to this annotator); returns the next pair."""
    if choice not in store.CHOICES:
        raise store.StoreError(f"choice {choice!r}: one of {', '.join(store.CHOICES)}")
    store.label(int(pair_id), annotator, choice)
    return pref_next(annotator)


# --------------------------------------------------------------------------- page handlers
def _view(annotator, batch, model_spec=None, auto=False):
    """Everything the page shows for the next pair: id, prompt, A, B, progress, time shown, cleared extras."""
    try:
        pid, prompt, a, b = pref_next(annotator, batch)
    except store.StoreError as e:
        return (None, gr.update(value=f"⚠️ {e}", label="Prompt"), "", "", _progress_md(annotator, batch), None, None,
                "", "")
    if auto and model_spec:  # keep pairs ahead of this annotator (labs.preference.refill, in a thread)
        BACKGROUND.start(annotator, model_spec, batch=_batch(batch))
    if pid is None:
        note = NONE_LEFT + (" More pairs are being made in the background." if BACKGROUND.running else "")
        if BACKGROUND.error and not BACKGROUND.running:
            note += f" ⚠️ The last background refill failed: {BACKGROUND.error}"
        return (None, gr.update(value=note, label="Prompt"), "", "", _progress_md(annotator, batch), None, None,
                "", "")
    return (pid, gr.update(value=prompt, label=f"Prompt (pair {pid})"), _md(a), _md(b),
            _progress_md(annotator, batch), time.time(), None, "", "")


def show_next(annotator, batch, model_spec, auto):
    return _view(annotator, batch, model_spec, auto)


def act(choice, pair_id, annotator, batch, strength, reason, ideal, shown_at, model_spec, auto):
    """A button or key: label (or skip) the pair on screen, then show the next one."""
    if pair_id in (None, "", 0):
        gr.Warning("No pair on screen: make pairs, or press Next.")
        return _view(annotator, batch, model_spec, auto)
    try:
        seconds = round(time.time() - shown_at, 1) if shown_at else None
        store.label(int(pair_id), annotator, choice, strength={"slight": 1, "clear": 2, "strong": 3}.get(strength),
                    reason=reason, ideal=ideal, seconds=seconds)
    except store.StoreError as e:
        gr.Warning(str(e))
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), f"⚠️ {e}", gr.skip(), gr.skip(), gr.skip(), gr.skip()
    return _view(annotator, batch, model_spec, auto)


def undo(annotator, batch, model_spec, auto):
    try:
        pid = store.undo(annotator)
    except store.StoreError as e:
        gr.Warning(str(e))
        return _view(annotator, batch, model_spec, auto)
    if pid is None:
        gr.Info("Nothing to undo.")
        return _view(annotator, batch, model_spec, auto)
    p = store.get_pair(pid, annotator)  # show the undone pair again, in the same order as before
    return (pid, gr.update(value=store.prompt_text(p["prompt"]), label=f"Prompt (pair {pid}, label undone)"),
            _md(p["A"]), _md(p["B"]), _progress_md(annotator, batch), time.time(), None, "", "")


def start_ideal(which, pair_id, annotator):
    if pair_id in (None, "", 0) or not (annotator or "").strip():
        return ""
    p = store.get_pair(int(pair_id), annotator.strip())
    return p[which]


def _load_models(spec, spec_b):
    from labs import models
    model = models.CACHE.get((spec or "").strip() or None)
    model_b = models.CACHE.get(spec_b.strip()) if (spec_b or "").strip() else None
    return model, model_b


def make_pairs(spec, spec_b, source, typed, n, temperature, top_p, max_new_tokens, seed, progress=gr.Progress()):
    """Generate pairs into the store (two samples of the header's model, or one from each of two models)."""
    from labs import models
    try:
        prompts = pref_pairs.typed_prompts(typed) if source == "typed below" else \
            pref_pairs.load_prompts(source or "prompts", "train")
        n = int(n)
        prompts = [prompts[i % len(prompts)] for i in range(n)]
        progress(0, desc="loading the model")
        model, model_b = _load_models(spec, spec_b)
        t0 = time.perf_counter()
        ids = pref_pairs.make_pairs(prompts, model, model_b, temperature=float(temperature), top_p=float(top_p),
                                    max_new_tokens=int(max_new_tokens), seed=int(seed),
                                    progress=lambda d, t: progress(d / t, desc=f"{d} of {t} prompts"))
    except (pref_pairs.PairsError, models.ModelError, store.StoreError, ValueError) as e:
        gr.Warning(str(e))
        return f"⚠️ {e}", gr.skip()
    dt = time.perf_counter() - t0
    return (f"Made **{len(ids)} pairs** in {dt:.1f} s ({2 * len(ids) / max(dt, 1e-9):.1f} responses/s, batched) "
            f"from `{model.source.spec}`" + (f" vs `{model_b.source.spec}`" if model_b else " (two samples each)"),
            gr.update(choices=_batch_choices()))


def _batch_choices() -> list[str]:
    return ["all batches"] + [b["batch"] for b in store.batches()]


def agreement(batch):
    a = pref_labels.agreement(_batch(batch))
    if len(a["annotators"]) < 2:
        md = "Agreement needs at least two annotators on the same pairs."
    else:
        k = a["kappa"]
        md = (f"**{a['measure']}** over {a['items']} pairs labeled by all of {', '.join(a['annotators'])}: "
              f"**{'–' if k is None else f'{k:.2f}'}** ({pref_labels.kappa_words(k)})"
              + (f"; raw agreement {a['raw_agreement']:.0%}" if a.get("raw_agreement") is not None else "")
              + f". {len(a['disagreements'])} pairs with differing choices (below).")
    df = pd.DataFrame([{"pair": d["pair_id"], "prompt": d["prompt"], "majority": d["majority"] or "no majority",
                        **d["choices"]} for d in a["disagreements"]])
    return md, df


def export(fmt, batch, name):
    from labs import data
    rows = (pref_labels.to_dpo if fmt == "dpo" else pref_labels.to_kto)(_batch(batch))
    if not rows:
        gr.Warning("No labels to export yet.")
        return None, "⚠️ no labels to export yet"
    path = Path(tempfile.mkdtemp(prefix="prefs-")) / f"preferences-{fmt}.jsonl"
    clean = [{k: v for k, v in r.items() if k in ("prompt", "chosen", "rejected", "completion", "label")} for r in rows]
    data.write_jsonl(clean, path)
    note = f"Wrote **{len(rows)} {fmt.upper()} rows**."
    if (name or "").strip():
        try:
            split = data.split_rows(clean, validation=0.1, test=0.0, seed=0,
                                    stratify_by="label" if fmt == "kto" else None)
            data.save_dataset(name.strip(), split, fmt="preference" if fmt == "dpo" else "kto",
                              source="preference labels", overwrite=True)
            note += f" Saved as dataset **{name.strip()}** (every tab's dataset picker shows it)."
        except (data.DataError, ValueError) as e:
            note += f" ⚠️ not saved: {e}"
    return str(path), note


# --------------------------------------------------------------------------- layout
def build(ctx):
    gr.Markdown("### Preference labeler\nPick the better of two answers to the same prompt. Every choice is stored "
                "at once (it survives a crash or restart); DPO or ORPO then trains on them below. How choices become "
                "training rows: A/B → chosen over rejected; tie → nothing; both bad → two undesirable KTO rows; an "
                "edited ideal answer → chosen over the answers you did not prefer.")
    with gr.Row():
        annotator = gr.Textbox(label="Your name (labels are recorded per person)", scale=2, elem_id="pref-annotator")
        batch = gr.Dropdown(_batch_choices(), value="all batches", label="Batch", scale=2, allow_custom_value=False)
        next_btn = gr.Button("Start / next pair", scale=1, variant="primary")
    progress_md = gr.Markdown(_progress_md(""))
    with gr.Accordion("Make pairs", open=store.stats()["pairs"] == 0):
        with gr.Row():
            source = gr.Dropdown(["prompts", "typed below", *dataset_choices()], value="prompts",
                                 label="Prompts (bundled set, a saved dataset, or typed)", scale=2)
            n = gr.Slider(1, 200, value=16, step=1, label="Pairs", scale=1)
            spec_b = gr.Textbox(label="Second model (optional: one answer from each, head to head)", scale=2)
        typed = gr.Textbox(label="Prompts, one per line", lines=3, visible=False)
        with gr.Row():
            temperature = gr.Slider(0, 1.5, value=0.8, step=0.05, label="Temperature")
            top_p = gr.Slider(0.05, 1, value=0.95, step=0.05, label="Top-p")
            max_new = gr.Slider(8, 512, value=96, step=8, label="Max new tokens")
            seed = gr.Number(0, precision=0, label="Seed")
        with gr.Row():
            make_btn = gr.Button("Generate pairs")
            auto = gr.Checkbox(value=True, label=f"Keep pairs ahead of me (make {MAKE} more in the background "
                                                 f"when {KEEP} are left)")
        make_md = gr.Markdown()

    pair_id = gr.Number(value=None, visible=False, precision=0)
    shown_at = gr.State(None)
    prompt_md = gr.Textbox("Type your name and press Start / next pair.", label="Prompt", interactive=False,
                           lines=2, max_lines=12)
    with gr.Row(equal_height=True):
        a_md = gr.Textbox(label="A", interactive=False, lines=6, max_lines=30)
        b_md = gr.Textbox(label="B", interactive=False, lines=6, max_lines=30)
    with gr.Row():
        a_btn = gr.Button("A is better [1]", variant="primary", elem_classes="lab-key-1")
        b_btn = gr.Button("B is better [2]", variant="primary", elem_classes="lab-key-2")
        tie_btn = gr.Button("Tie [3]", elem_classes="lab-key-3")
        bad_btn = gr.Button("Both bad [4]", elem_classes="lab-key-4")
        skip_btn = gr.Button("Skip [s]", elem_classes="lab-key-s")
        undo_btn = gr.Button("Undo [u]", elem_classes="lab-key-u")
    with gr.Row():
        strength = gr.Radio(["slight", "clear", "strong"], value=None, label="How much better (optional)")
        reason = gr.Textbox(label="Why (optional)", scale=2)
    with gr.Accordion("Edit an answer into the ideal one (optional; stored with your label)", open=False):
        with gr.Row():
            from_a = gr.Button("Start from A", size="sm")
            from_b = gr.Button("Start from B", size="sm")
        ideal = gr.Textbox(label="Ideal answer", lines=4)
    gr.Markdown(KEYS_HELP)

    with gr.Accordion("Annotators and agreement", open=False):
        agree_btn = gr.Button("Compute agreement")
        agree_md = gr.Markdown()
        agree_df = gr.Dataframe(label="Pairs with differing choices", wrap=True)
    with gr.Accordion("Export the labels", open=False):
        with gr.Row():
            fmt = gr.Radio(["dpo", "kto"], value="dpo", label="Format (TRL's preference or unpaired rows)")
            ds_name = gr.Textbox(label="Also save as a dataset named (optional)", placeholder="my-preferences")
            export_btn = gr.Button("Export")
        export_note = gr.Markdown()
        export_file = gr.File(label="JSONL", interactive=False)

    try:
        from components.preference_train_panel import build_training
    except ImportError:
        build_training = None
    if build_training is not None:
        with gr.Accordion("Train DPO / ORPO on these labels", open=True):
            build_training(ctx)

    # ---- events
    view = [pair_id, prompt_md, a_md, b_md, progress_md, shown_at, strength, reason, ideal]
    common = [pair_id, annotator, batch, strength, reason, ideal, shown_at, ctx.model_spec, auto]
    gr.on([next_btn.click, annotator.submit, batch.change], show_next, [annotator, batch, ctx.model_spec, auto], view,
          api_visibility="private")
    for btn, choice in ((a_btn, "A"), (b_btn, "B"), (tie_btn, "tie"), (bad_btn, "both_bad"), (skip_btn, "skip")):
        btn.click(lambda *args, c=choice: act(c, *args), common, view, api_visibility="private")
    undo_btn.click(undo, [annotator, batch, ctx.model_spec, auto], view, api_visibility="private")
    from_a.click(lambda pid, who: start_ideal("A", pid, who), [pair_id, annotator], ideal, api_visibility="private")
    from_b.click(lambda pid, who: start_ideal("B", pid, who), [pair_id, annotator], ideal, api_visibility="private")
    source.change(lambda s: gr.update(visible=s == "typed below"), source, typed, api_visibility="private")
    batch.focus(lambda: gr.update(choices=_batch_choices()), None, batch, queue=False, api_visibility="private")
    make_btn.click(make_pairs, [ctx.model_spec, spec_b, source, typed, n, temperature, top_p, max_new, seed],
                   [make_md, batch], api_name="pref_make_pairs", **GPU_QUEUE)
    agree_btn.click(agreement, batch, [agree_md, agree_df], api_name="pref_agreement")
    export_btn.click(export, [fmt, batch, ds_name], [export_file, export_note], api_name="pref_export")
    gr.api(pref_next, api_name="pref_next")
    gr.api(pref_label, api_name="pref_label")


if __name__ == "__main__":
    from components.keys import KEYS_JS
    from components.shared import default_context
    with gr.Blocks(title="Preference labeler") as demo:
        build(default_context())
    demo.queue().launch(head=KEYS_JS)
