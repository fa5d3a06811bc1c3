"""Preference labeler tab: people choose the better of two generations; every choice is stored at once.

    python -m components.preference_tab          # this tab alone on http://127.0.0.1:7860

Callable by gradio_client (the labeling contract):
    pref_next(annotator)                    -> (pair id, prompt, A, B); id None when nothing is left
    pref_label(pair_id, choice, annotator)  -> commits one label (A, B, tie, both_bad), returns the next pair
and pref_make_pairs, pref_agreement, pref_export. Pairs and labels live in labs.store (SQLite, WAL); this
file only shows them. Keys (page-wide, not while typing): 1 / 2 = A / B better, 3 = tie, 4 = both bad,
s = skip, u = undo. The name typed is remembered in this browser (gr.BrowserState, localStorage): a convenience
on one person's machine, not identity. Names and other people's text are shown as text, never as markup.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import gradio as gr
import pandas as pd

from components.shared import GPU_QUEUE, actor_of, dataset_choices, escape_md, guidelines_markdown
from labs import store
from labs.errors import LabError
from labs.preference import labels as pref_labels
from labs.preference import pairs as pref_pairs
from labs.preference.refill import BACKGROUND, KEEP, MAKE

KEYS_HELP = ("**Keys** (when not typing): **1** A is better · **2** B is better · **3** tie · **4** both bad · "
             "**s** skip · **u** undo")
NONE_LEFT = "Nothing left to label here: make more pairs above, or pick another batch."
# The browser keeps the typed name under this key (encrypted by Gradio with this fixed key, so it survives an app
# restart). Not a secret and not identity: whoever uses this browser sees it, and anyone can type any name.
NAME_KEY = "fine-tuning-lab/preference/annotator"
NO_MARKUP = dict(latex_delimiters=[])  # Markdown that shows names: no $$...$$ maths either
AGREE_COLUMNS = ["pair", "prompt", "answer 1", "answer 2", "majority"]
AGREE_NOTE = ("Each person's cell: the side they clicked, as they saw it (everyone sees the two answers in an order "
              "of their own), then which answer that was: answer 1 and answer 2 as generated.")


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
    you = f"**{escape_md(annotator.strip())}: {mine['done']} of {mine['total']}** labeled · " if mine else ""
    per = ", ".join(f"{escape_md(k)} {v}" for k, v in st["per_annotator"].items()) or "none yet"
    plural = lambda n, word: f"{n} {word}{'s' * (n != 1)}"  # noqa: E731
    return (f"{you}{plural(st['pairs'], 'pair')} · {plural(st['labels'], 'label')} by "
            f"{plural(st['annotators'], 'annotator')} ({per})")


# --------------------------------------------------------------------------- the labeling contract
def _annotator(typed: str | None, request: gr.Request | None) -> str:
    """Whom a label is recorded under: the typed name (one person, or --public), else the signed-in person."""
    who = actor_of(request, typed)
    return (typed or "") if who.via in ("local", "public") else who.name


def pref_next(annotator: str, batch: str | None = None, request: gr.Request = None) -> tuple[int | None, str, str, str]:
    """The next pair this annotator has not labeled: (id, prompt, A, B), A and B in this annotator's order. In a
    shared lab the annotator is the signed-in person."""
    annotator = _annotator(annotator, request)
    p = store.next_pair(annotator, _batch(batch))
    if p is None:
        return None, "", "", ""
    return p["id"], store.prompt_text(p["prompt"]), p["A"], p["B"]


def pref_label(pair_id: int, choice: str, annotator: str, request: gr.Request = None) -> tuple[int | None, str, str, str]:
    """Commit one label (choice: A, B, tie or both_bad as shown to this annotator); returns the next pair. In a
    shared lab the label is the signed-in person's: a different typed name is refused, never recorded."""
    if choice not in store.CHOICES:
        raise store.StoreError(f"choice {choice!r}: one of {', '.join(store.CHOICES)}")
    store.label(int(pair_id), annotator, choice, actor=actor_of(request, annotator))
    return pref_next(annotator, None, request)


# --------------------------------------------------------------------------- page handlers
def _sides(p: dict) -> tuple[dict, dict]:
    """The A and B boxes for a pair read for an annotator: its text, and a label that marks an answer cut at
    max new tokens (it never reached the model's end token)."""
    cut = pref_pairs.cut(p)
    limit = (p.get("sampling") or {}).get("max_new_tokens")
    def box(side):
        label = side if not cut[side] else f"{side} · ✂ cut at {limit} new tokens (the model had not finished)"
        return gr.update(value=_md(p[side]), label=label)
    return box("A"), box("B")


def _view(annotator, batch, model_spec=None, auto=False, request=None):
    """Everything the page shows for the next pair: id, prompt, A, B, progress, time shown, cleared extras. In a
    shared lab the pairs are the signed-in person's to label, whatever the name box says."""
    annotator = _annotator(annotator, request)
    try:
        p = store.next_pair(annotator, _batch(batch))
    except store.StoreError as e:
        return (None, gr.update(value=f"⚠️ {e}", label="Prompt"), gr.update(value="", label="A"),
                gr.update(value="", label="B"), _progress_md(annotator, batch), None, None, "", "")
    if auto and model_spec:  # keep pairs ahead of this annotator (labs.preference.refill, in a thread)
        BACKGROUND.start(annotator, model_spec, batch=_batch(batch), actor=actor_of(request, annotator))
    if p is None:
        note = NONE_LEFT + (" More pairs are being made in the background." if BACKGROUND.running else "")
        if BACKGROUND.error and not BACKGROUND.running:
            note += f" ⚠️ The last background refill failed: {BACKGROUND.error}"
        return (None, gr.update(value=note, label="Prompt"), gr.update(value="", label="A"),
                gr.update(value="", label="B"), _progress_md(annotator, batch), None, None, "", "")
    return (p["id"], gr.update(value=store.prompt_text(p["prompt"]), label=f"Prompt (pair {p['id']})"), *_sides(p),
            _progress_md(annotator, batch), time.time(), None, "", "")


def show_next(annotator, batch, model_spec, auto, request: gr.Request = None):
    return _view(annotator, batch, model_spec, auto, request)


def act(choice, pair_id, annotator, batch, strength, reason, ideal, shown_at, model_spec, auto,
        request: gr.Request = None):
    """A button or key: label (or skip) the pair on screen, then show the next one."""
    if pair_id in (None, "", 0):
        gr.Warning("No pair on screen: make pairs, or press Next.")
        return _view(annotator, batch, model_spec, auto, request)
    try:
        seconds = round(time.time() - shown_at, 1) if shown_at else None
        store.label(int(pair_id), annotator, choice, strength={"slight": 1, "clear": 2, "strong": 3}.get(strength),
                    reason=reason, ideal=ideal, seconds=seconds, actor=actor_of(request, annotator))
    except LabError as e:
        gr.Warning(str(e))
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), f"⚠️ {escape_md(e)}", gr.skip(), gr.skip(), gr.skip(), \
            gr.skip()
    return _view(annotator, batch, model_spec, auto, request)


def _labeling(choice):
    """The handler of one choice's button or key (Gradio hands the request only to a named parameter)."""
    def handler(pair_id, annotator, batch, strength, reason, ideal, shown_at, model_spec, auto,
                request: gr.Request = None):
        return act(choice, pair_id, annotator, batch, strength, reason, ideal, shown_at, model_spec, auto, request)
    return handler


def undo(annotator, batch, model_spec, auto, request: gr.Request = None):
    try:
        pid = store.undo(annotator, actor=actor_of(request, annotator))
    except LabError as e:
        gr.Warning(str(e))
        return _view(annotator, batch, model_spec, auto, request)
    if pid is None:
        gr.Info("Nothing to undo.")
        return _view(annotator, batch, model_spec, auto, request)
    p = store.get_pair(pid, annotator)  # show the undone pair again, in the same order as before
    return (pid, gr.update(value=store.prompt_text(p["prompt"]), label=f"Prompt (pair {pid}, label undone)"),
            *_sides(p), _progress_md(annotator, batch), time.time(), None, "", "")


def start_ideal(which, pair_id, annotator):
    if pair_id in (None, "", 0) or not (annotator or "").strip():
        return ""
    p = store.get_pair(int(pair_id), annotator.strip())
    return p[which]


def _model_ready(spec) -> bool:
    from labs import models
    return ((spec or "").strip() or models.DEFAULT_MODEL) in models.CACHE.loaded_specs()


def make_pairs(spec, spec_b, source, typed, n, temperature, top_p, max_new_tokens, seed, progress=gr.Progress(),
               request: gr.Request = None):
    """Generate pairs into the store (two samples of the header's model, or one from each of two models). A
    generator: the note under the button says what is happening now - loading the model (only while one
    loads: its first use, or a load the header started, which this waits for), then generating pairs i/n."""
    from labs import models
    try:
        prompts = pref_pairs.typed_prompts(typed) if source == "typed below" else \
            pref_pairs.load_prompts(source or "prompts", "train")
        n = int(n)
        prompts = [prompts[i % len(prompts)] for i in range(n)]
        loaded = []
        for s in [spec] + ([spec_b] if (spec_b or "").strip() else []):
            name = (s or "").strip() or models.DEFAULT_MODEL
            if not _model_ready(name):
                yield f"⏳ Loading the model `{name}` (its first use in this app; then the pairs are generated)", \
                    gr.skip()
            loaded.append(models.CACHE.get(name))
        model, model_b = loaded[0], (loaded[1] if len(loaded) > 1 else None)
        yield f"⏳ Generating {n} pair{'s' * (n != 1)} with `{model.source.spec}`…", gr.skip()
        t0 = time.perf_counter()
        ids = pref_pairs.make_pairs(prompts, model, model_b, temperature=float(temperature), top_p=float(top_p),
                                    max_new_tokens=int(max_new_tokens), seed=int(seed),
                                    progress=lambda d, t: progress((d, t), desc="generating pairs", unit="pairs"),
                                    actor=actor_of(request))
    except (LabError, ValueError) as e:
        gr.Warning(str(e))
        yield f"⚠️ {escape_md(e)}", gr.skip()
        return
    dt = time.perf_counter() - t0
    cut = sum(any(pref_pairs.cut(p)[s] for s in "ab") for p in map(store.get_pair, ids))
    yield (f"Made **{len(ids)} pairs** in {dt:.1f} s ({2 * len(ids) / max(dt, 1e-9):.1f} responses/s, batched) "
           f"from `{model.source.spec}`" + (f" vs `{model_b.source.spec}`" if model_b else " (two samples each)")
           + (f". {cut} of them have an answer cut at {int(max_new_tokens)} new tokens (marked ✂ where it is "
              f"shown): raise *Max new tokens* for whole answers." if cut else ""),
           gr.update(choices=_batch_choices()))


def _batch_choices() -> list[str]:
    return ["all batches"] + [b["batch"] for b in store.batches()]


def page_load(typed, batch):
    """At each page load (and when the tab is opened): the header's counts and the batches, read from the store
    now (not when the app started)."""
    return _progress_md(typed or "", batch), gr.update(choices=_batch_choices())


def recall(remembered, typed, batch):
    """The name this browser remembers, once its storage is read (the tab's first display), unless one is typed."""
    name = (remembered or "").strip()
    if (typed or "").strip() or not name:
        return gr.skip(), gr.skip()
    return name, _progress_md(name, batch)


def _seen(choice_seen: str, stored: str) -> str:
    if stored in ("a", "b"):
        return f"{choice_seen} (answer {'1' if stored == 'a' else '2'})"
    return {"both_bad": "both bad"}.get(stored, stored)


def agreement(batch):
    a = pref_labels.agreement(_batch(batch))
    if len(a["annotators"]) < 2:
        md = "Agreement needs at least two annotators on the same pairs."
    else:
        k = a["kappa"]
        md = (f"**{a['measure']}** over {a['items']} pairs labeled by all of "
              f"{', '.join(escape_md(n) for n in a['annotators'])}: "
              f"**{'–' if k is None else f'{k:.2f}'}** ({pref_labels.kappa_words(k)})"
              + (f"; raw agreement {a['raw_agreement']:.0%}" if a.get("raw_agreement") is not None else "")
              + f". {len(a['disagreements'])} pairs with differing choices (below). {AGREE_NOTE}")
    majority = {"a": "answer 1", "b": "answer 2", "tie": "tie", "both_bad": "both bad", None: "no majority"}
    column = {who: who if who not in AGREE_COLUMNS else f"{who} (annotator)" for who in a["annotators"]}
    rows = [{"pair": d["pair_id"], "prompt": d["prompt"], "answer 1": d["a"][:300], "answer 2": d["b"][:300],
             "majority": majority[d["majority"]],
             **{column[who]: _seen(d["seen"][who], c) for who, c in d["choices"].items()}} for d in a["disagreements"]]
    return md, pd.DataFrame(rows, columns=[*AGREE_COLUMNS, *column.values()] if rows else AGREE_COLUMNS)


def export(fmt, batch, name, request: gr.Request = None):
    from labs import data
    from labs.preference.config import preset
    from labs.preference.recipe import optimizer_steps
    ex = pref_labels.export(fmt, _batch(batch))
    if not ex.rows:
        gr.Warning(f"Nothing to export: {ex.summary()}.")
        return None, f"⚠️ Nothing to export: {ex.summary()}."
    path = Path(tempfile.mkdtemp(prefix="prefs-")) / f"preferences-{fmt}.jsonl"
    clean = [{k: v for k, v in r.items() if k in ("prompt", "chosen", "rejected", "completion", "label")}
             for r in ex.rows]
    data.write_jsonl(clean, path)
    note = f"Wrote {ex.summary()}."
    warning = ex.warning(optimizer_steps(preset("dpo"), len(ex.rows)))
    if warning:
        note += f"\n\n⚠️ {warning}"
    if (name or "").strip():
        try:
            split = data.split_rows(clean, validation=0.1, test=0.0, seed=0,
                                    stratify_by="label" if fmt == "kto" else None)
            data.save_dataset(name.strip(), split, fmt="preference" if fmt == "dpo" else "kto",
                              source="preference labels", overwrite=True, actor=actor_of(request))
            note += f"\n\nSaved as dataset **{escape_md(name.strip())}** (every tab's dataset picker shows it)."
        except (LabError, ValueError) as e:
            note += f"\n\n⚠️ not saved: {escape_md(e)}"
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
    remembered = gr.BrowserState("", storage_key=NAME_KEY, secret=NAME_KEY)  # this browser's last typed name
    progress_md = gr.Markdown(_progress_md(""), elem_id="pref-progress", **NO_MARKUP)
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
        make_md = gr.Markdown(elem_id="pref-make-note", **NO_MARKUP)

    pair_id = gr.Number(value=None, visible=False, precision=0)
    shown_at = gr.State(None)
    guide_md = gr.Markdown()  # the admin's labeling guidelines (Admin tab), read when the page loads
    ctx.on_load(lambda: guidelines_markdown("preference"), [guide_md])
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
        agree_md = gr.Markdown(**NO_MARKUP)
        agree_df = gr.Dataframe(headers=AGREE_COLUMNS, label="Pairs with differing choices", wrap=True,
                                elem_id="pref-disagreements")
    with gr.Accordion("Export the labels", open=False):
        with gr.Row():
            fmt = gr.Radio(["dpo", "kto"], value="dpo", label="Format (TRL's preference or unpaired rows)")
            ds_name = gr.Textbox(label="Also save as a dataset named (optional)", placeholder="my-preferences")
            export_btn = gr.Button("Export")
        export_note = gr.Markdown(elem_id="pref-export-note", **NO_MARKUP)
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
    ctx.on_load(page_load, [progress_md, batch], [annotator, batch])
    # the browser reads its storage when this tab is first shown (Gradio renders a tab's content then), and says
    # so with a change event: that fills the name in; a name typed and left (or entered) is remembered
    remembered.change(recall, [remembered, annotator, batch], [annotator, progress_md], queue=False,
                      show_progress="hidden", api_visibility="private")
    gr.on([annotator.blur, annotator.submit], lambda name: (name or "").strip() or gr.skip(), annotator, remembered,
          queue=False, show_progress="hidden", api_visibility="private")
    for btn, choice in ((a_btn, "A"), (b_btn, "B"), (tie_btn, "tie"), (bad_btn, "both_bad"), (skip_btn, "skip")):
        btn.click(_labeling(choice), common, view, api_visibility="private")
    undo_btn.click(undo, [annotator, batch, ctx.model_spec, auto], view, api_visibility="private")
    from_a.click(lambda pid, who: start_ideal("A", pid, who), [pair_id, annotator], ideal, api_visibility="private")
    from_b.click(lambda pid, who: start_ideal("B", pid, who), [pair_id, annotator], ideal, api_visibility="private")
    source.change(lambda s: gr.update(visible=s == "typed below"), source, typed, api_visibility="private")
    batch.focus(lambda: gr.update(choices=_batch_choices()), None, batch, queue=False, api_visibility="private")
    make_btn.click(make_pairs, [ctx.model_spec, spec_b, source, typed, n, temperature, top_p, max_new, seed],
                   [make_md, batch], api_name="pref_make_pairs", show_progress_on=make_md, **GPU_QUEUE)
    agree_btn.click(agreement, batch, [agree_md, agree_df], api_name="pref_agreement")
    export_btn.click(export, [fmt, batch, ds_name], [export_file, export_note], api_name="pref_export")
    gr.api(pref_next, api_name="pref_next")
    gr.api(pref_label, api_name="pref_label")


if __name__ == "__main__":
    from components.keys import KEYS_JS
    from components.shared import default_context
    with gr.Blocks(title="Preference labeler") as demo:
        context = default_context()
        build(context)
        for fn, outputs, inputs in context.loads:  # what app.py does: read the store at each page load
            demo.load(fn, inputs, outputs, queue=False, show_progress="hidden", api_visibility="private")
    demo.queue().launch(head=KEYS_JS)
