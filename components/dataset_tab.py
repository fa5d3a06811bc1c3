"""Dataset builder tab: import, detect, preview what the model trains on, validate, clean, split, save.

    python -m components.dataset_tab          # this tab alone on http://127.0.0.1:7860

Every handler is a plain function of values around labs.data. The rows being built live on disk
(labs.data.workspace); a browser session's gr.State holds only their handle (id, version, format, row
count), and what is saved goes to <data-dir>/datasets/<name>/ for the other tabs.
"""
from __future__ import annotations

import functools
from html import escape
import json
import tempfile
from pathlib import Path

import gradio as gr
import pandas as pd

from components.shared import actor_of
from labs import data, models
from labs.data import workspace
from labs.data.display import chat_html, column_widths, md_code
from labs.errors import LabError

FORMAT_CHOICES = ["auto"] + list(data.FORMATS)
PREVIEW_ROWS = 200
CELL_CHARS = 200    # a cell shows its first 200 characters; a click on it shows the whole text
ROWS_WIDTH = 94     # percent of the rows table shared by its columns; the rest is the row-number column
SCRUB_COLUMNS = ["row", "field", "before", "after", "found"]
EMPTY = dict(workspace.EMPTY)


@functools.lru_cache(maxsize=4)
def _tokenizer(spec: str):
    return models.load_tokenizer(spec or None)


def _cell(v):
    return v if isinstance(v, (str, int, float, bool)) or v is None else json.dumps(v, ensure_ascii=False)


def _frame(rows: list[dict], limit: int = PREVIEW_ROWS) -> pd.DataFrame:
    cols = data.columns_of(rows)
    return pd.DataFrame([[_cell(r.get(c)) for c in cols] for r in rows[:limit]], columns=cols or ["(no rows)"])


def _rows_view(rows: list[dict]):
    """The rows table: the first PREVIEW_ROWS rows, each column a width in proportion to its text, so a long
    prompt column leaves the answer and the short columns on screen."""
    df = _frame(rows)
    return gr.update(value=df, column_widths=column_widths(list(df.columns), df.values.tolist(), total=ROWS_WIDTH))


def _summary(st: dict) -> str:
    if not st["n"]:
        return "No data loaded yet."
    # the source and the column names are the data's own: shown as typed (code spans), never as markup
    return (f"**{st['n']} rows** from {md_code(st['source'])} · format **{st['format']}** — {st['reason']}  \n"
            f"columns: {', '.join(md_code(c) for c in st['columns'])}")


def _rows(st: dict) -> list[dict]:
    return workspace.rows(st)


def _table_value(rows: list[dict]):
    """The editable table gets the loaded rows only when it can hold all of them: "Use these rows" on a
    200-row excerpt of a longer file would silently drop the rest."""
    return _frame(rows) if len(rows) <= PREVIEW_ROWS else gr.update()


def _ingest(load, fmt, mapping, st, source: str | None = None):
    """Run a loader; on bad input keep the previous rows and say what was wrong."""
    try:
        loaded = load()
        loaded = data.detect(list(loaded), source=source or getattr(loaded, "source", "table"),
                             fmt=None if fmt in (None, "", "auto") else fmt, mapping=mapping or None)
    except (LabError, OSError) as e:  # unreadable data, a model, a refused server path
        # said once, in the summary under the loaders (a toast as well would say it twice)
        kept = f"\n\nStill loaded: {_summary(st)}" if st["n"] else ""
        return st, f"⚠️ {e}{kept}", _rows_view(_rows(st)), gr.update()
    st = workspace.put(list(loaded), format=loaded.format, reason=loaded.reason, source=loaded.source, previous=st)
    rows = _rows(st)
    return st, _summary(st), _rows_view(rows), _table_value(rows)


# --------------------------------------------------------------------------- import
def load_file(file, fmt, mapping, st):
    if not file:
        return _ingest(lambda: (_ for _ in ()).throw(data.DataError("choose a file to upload first")), fmt, mapping, st)
    path = file if isinstance(file, str) else getattr(file, "name", str(file))
    # the upload's temporary path (/tmp/gradio/<hash>/x.jsonl) means nothing to the user: show its name
    return _ingest(lambda: data.read_file(path), fmt, mapping, st, source=Path(path).name)


def load_path(path, fmt, mapping, st):
    return _ingest(lambda: data.read_user_file(Path(path.strip()).expanduser()) if path and path.strip()
                   else (_ for _ in ()).throw(data.DataError("type a file or folder path first")), fmt, mapping, st)


def load_sample(name, fmt, mapping, st):
    samples = data.samples()
    if name not in samples:
        return _ingest(lambda: (_ for _ in ()).throw(data.DataError(f"no bundled sample {name!r}")), fmt, mapping, st)
    return _ingest(lambda: data.read_file(samples[name]), fmt, mapping, st, source=f"sample {name}")


def load_hub(dataset_id, split, fmt, mapping, st):
    return _ingest(lambda: data.load_hub(dataset_id or "", split or "train"), fmt, mapping, st)


def load_table(table, fmt, mapping, st):
    def rows():
        df = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table["data"], columns=table["headers"])
        out = []
        for rec in df.to_dict("records"):
            rec = {str(k): v for k, v in rec.items() if str(k).strip()}
            if not any(str(v).strip() for v in rec.values() if v is not None):
                continue  # blank row
            for k, v in rec.items():
                if isinstance(v, str) and v.strip()[:1] in "[{":
                    try:
                        rec[k] = json.loads(v)
                    except json.JSONDecodeError:
                        pass
            out.append(rec)
        if not out:
            raise data.DataError("the table has no filled-in rows")
        return out
    return _ingest(rows, fmt, mapping, st)


# --------------------------------------------------------------------------- inspect and preview
def _sft_rows(st) -> tuple[list, list[int]]:
    """Training rows for the length and mask views, and which input row (1-based) each came from."""
    out = data.to_sft(_rows(st), st["format"])
    skipped = {i for i, _ in out.skipped}
    return list(out), [i for i in range(1, st["n"] + 1) if i not in skipped]


def _lengths(st, spec) -> list[int] | None:
    if st["format"] == "prompt_only":
        return None
    tok = _tokenizer(spec)
    rows, origin = _sft_rows(st)
    by_row = dict(zip(origin, (data.sequence_length(tok, r) for r in rows)))
    return [by_row.get(i, 0) for i in range(1, st["n"] + 1)]


def inspect(st, near, max_length, spec):
    """Validation report, balance chart and the length histogram for the loaded rows."""
    if not st["n"]:
        return "Load data first.", None, None, gr.update(choices=[])
    try:
        lengths = _lengths(st, spec)
    except (models.ModelError, data.DataError) as e:
        gr.Warning(f"token lengths skipped: {e}")
        lengths = None
    rows = _rows(st)
    rep = data.validate(rows, st["format"], lengths=lengths, max_length=int(max_length),
                        near_threshold=float(near))
    counts = data.label_counts(rows, st["format"])
    bal = data.balance_figure(dict(counts), f"{st['format']}: label distribution") if counts else None
    hist = data.length_figure([n for n in (lengths or []) if n], int(max_length)) if lengths else None
    md = rep.markdown()
    if lengths:
        s = data.length_stats([n for n in lengths if n], int(max_length))
        md += (f"\n\nTokens per training sequence (`{spec}` chat template): mean {s['mean']}, longest {s['longest']}; "
               f"**{s['truncated']} row{'' if s['truncated'] == 1 else 's'}** would be truncated at max length {s['max_length']}.")
    fixes = [(f"{p.fix}: {p.title} ({p.count} rows)", p.kind) for p in rep.problems if p.fix]
    return md, bal, hist, gr.update(choices=fixes, value=fixes[0][1] if fixes else None)


def apply_fix(st, kind, near, max_length, spec):
    if not st["n"] or not kind:
        gr.Warning("Run the validation and pick a fix first.")
        return st, _summary(st), _rows_view(_rows(st))
    lengths = _lengths(st, spec) if kind == "too_long" else None
    rows = _rows(st)
    rep = data.validate(rows, st["format"], lengths=lengths, max_length=int(max_length),
                        near_threshold=float(near))
    p = rep.problem(kind)
    if p is None:
        gr.Info("That problem is already gone.")
        return st, _summary(st), _rows_view(rows)
    before = len(rows)
    fn = None
    if kind == "too_long":
        fn = functools.partial(_truncate_tokens, _tokenizer(spec), st["format"])
    rows = data.apply_fix(rows, p, truncate_fn=fn)
    st = workspace.put(rows, format=st["format"], reason=st["reason"], source=st["source"] + f" · {p.fix} {p.kind}",
                       previous=st)
    return st, _summary(st) + f"  \nFixed **{p.title}**: {before} → {len(rows)} rows ({p.count} rows touched).", \
        _rows_view(rows)


def _truncate_tokens(tok, fmt, row, max_length):
    """Cut the row's longest text by characters until its training sequence fits max_length tokens."""
    from labs.data.clean import truncate_chars
    for ratio in (4, 3, 2, 1):
        new = truncate_chars(row, max_length * ratio // 4)
        out = data.to_sft([new], fmt)
        if not out or data.sequence_length(tok, out[0]) <= max_length:
            return new
    return new


def preview(st, index, spec, max_length, form="auto"):
    """Row `index` (1-based, as the rows table numbers them) as chat, its tokens with the loss mask, and what
    slide 7 would train on.

    The row is converted with the SFT form chosen under "Convert, split and save", so the preview shows
    what the SFT trainer trains on that saved row (labs.data.mask.tokenize_row, the trainer's own). The chat
    is the row's characters (labs.data.display.chat_html), never its markup: the same text as the tokens."""
    if not st["n"]:
        return "", "Load data first.", "", ""
    index = max(1, min(int(index or 1), st["n"]))
    try:
        row = _rows(st)[index - 1]
    except data.DataError as e:
        return "", f"⚠️ {e}", "", ""
    try:
        sft = data.to_sft([row], st["format"], form=form or "auto")
        if not sft:
            raise data.DataError(f"row {index} has nothing to train on: {sft.skipped[0][1]}")
        train_row = sft[0]
        chat = train_row.get("messages") or ((train_row["prompt"] + train_row["completion"]) if "prompt" in train_row
                                             else [{"role": "user", "content": train_row["text"]}])
        if isinstance(chat, str):  # the standard (plain string) form
            chat = [{"role": "user", "content": train_row["prompt"]},
                    {"role": "assistant", "content": train_row["completion"]}]
        tok = _tokenizer(spec)
        mask, report = data.row_preview(tok, train_row, max_length=int(max_length))
        trains = ("every assistant turn" if "messages" in train_row else "the answer" if "prompt" in train_row
                  else "every token")
        head = (f"Row {index} of {st['n']}, as the SFT trainer trains on it with <code>{escape(spec or '')}"
                f"</code>'s chat template: loss on {trains}, max length {int(max_length)}:")
        warn = "".join(f"<p>⚠️ {escape(report[k])}</p>" for k in ("warning", "note") if report.get(k))
        html = f"<p>{head}</p>{warn}" + data.mask_html(mask if any(t for *_, t in mask) else [])
        prompt = data.prompt_of(train_row)
        if prompt:
            prompt = prompt if isinstance(prompt, str) else \
                "\n".join(m["content"] for m in prompt if m["role"] != "system")
            s7 = data.slide7_html(data.slide7_labels(tok, f"Instruction: {prompt}\nOutput: ",
                                                     data.reference(train_row)))
        else:
            s7 = "<p>Slide 7's comparison applies to rows with a prompt and an answer.</p>"
    except (data.DataError, models.ModelError) as e:
        return "", f"⚠️ {e}", "", ""
    return chat_html(chat), html, s7, f"Showing row {index}."


def after_load(st, spec, max_length, form="auto"):
    """New rows: show row 1 and clear the report, plots and fixes that described the previous rows."""
    chat, mask, s7, note = preview(st, 1, spec, max_length, form)
    report = "Press **Validate** to check these rows." if st["n"] else ""
    return 1, chat, mask, s7, note, report, None, None, gr.update(choices=[], value=None)


# --------------------------------------------------------------------------- cleaning
def scrub_preview(st, kinds):
    if not st["n"]:
        return pd.DataFrame(columns=SCRUB_COLUMNS), "Load data first."
    _, changes = data.scrub_rows(_rows(st), tuple(kinds or ()))
    df = pd.DataFrame([{**c, "before": _cell(c["before"]), "after": _cell(c["after"])} for c in changes[:500]],
                      columns=SCRUB_COLUMNS)
    rows = len({c["row"] for c in changes})
    return df, f"{len(changes)} field{'s' * (len(changes) != 1)} in {rows} row{'s' * (rows != 1)} would change (look-alikes such as versions, dates and prices are kept)."


def scrub_apply(st, kinds):
    if not st["n"]:
        return st, "Load data first.", _rows_view([])
    rows, changes = data.scrub_rows(_rows(st), tuple(kinds or ()))
    st = workspace.put(rows, format=st["format"], reason=st["reason"], source=st["source"] + " · PII scrubbed",
                       previous=st)
    return st, _summary(st) + f"  \nScrubbed {len(changes)} fields.", _rows_view(rows)


# --------------------------------------------------------------------------- convert, split, save
def _convert(st, target, form):
    if not st["n"]:
        raise data.DataError("load data first")
    kw = {"form": form} if target == "sft" else {}
    out = data.convert(_rows(st), target, st["format"], **kw)
    if not out:
        why = f": row {out.skipped[0][0]}: {out.skipped[0][1]}" if out.skipped else ""
        raise data.DataError(f"no row could be converted to {target}{why}")
    return out


def convert(st, target, form):
    """The converted rows as a JSONL download, and what happened."""
    try:
        out = _convert(st, target, form)
    except data.DataError as e:  # said once, in the note under the buttons
        return None, f"⚠️ {e}"
    path = Path(tempfile.mkdtemp(prefix="dataset-")) / f"{target}.jsonl"
    data.write_jsonl(out, path)
    skipped = "".join(f"\n- row {i}: {why}" for i, why in out.skipped[:20])
    return str(path), (f"Detected format **{st['format']}** · wrote **{len(out)} rows** for {target}"
                       + (f" · skipped {len(out.skipped)}:{skipped}" if out.skipped else ""))


def save(st, target, form, validation, test, seed, name, overwrite, request: gr.Request = None):
    try:
        out = _convert(st, target, form)
        strat = "label" if target == "kto" else None
        splits = data.split_rows(list(out), validation=float(validation), test=float(test), seed=int(seed),
                                 stratify_by=strat)
        path = data.save_dataset((name or "").strip(), splits, fmt={"sft": "sft", "preference": "preference",
                                                                       "kto": "kto"}[target],
                                 source=st["source"], overwrite=bool(overwrite),
                                 extra={"input_format": st["format"], "seed": int(seed)}, actor=actor_of(request))
    except (LabError, ValueError) as e:  # said once, in the note under the buttons (a refusal of rights too)
        return f"⚠️ {e}", None, gr.update()
    counts = ", ".join(f"{k} {len(v)}" for k, v in splits.items())
    files = [str(p) for p in sorted(path.glob("*.jsonl"))]
    dl = Path(tempfile.mkdtemp(prefix="dataset-")) / f"{path.name}.jsonl"
    data.write_jsonl([{**r, "split": k} for k, v in splits.items() for r in v], dl)
    return (f"Saved **{path.name}** ({counts}) to `{path}` — it now appears in every tab's dataset picker.\n\n"
            f"Files: {', '.join(Path(f).name for f in files)}, hf/, meta.json"), str(dl), \
        gr.update(choices=data.list_datasets(), value=path.name)


def push(name, repo_id, token, private, request: gr.Request = None):
    try:
        url = data.push_to_hub(name, (repo_id or "").strip(), token=token or None, private=bool(private),
                               actor=actor_of(request))
    except LabError as e:  # said once, in the note under the button
        return f"⚠️ {e}"
    return f"Pushed to {url}"


def list_saved():
    return data.list_datasets()


# --------------------------------------------------------------------------- layout
def build(ctx) -> None:
    st = gr.State(dict(EMPTY), delete_callback=workspace.drop)  # the rows on disk go with the browser session
    gr.Markdown("### Dataset builder\nBring data in any common shape, see exactly what the model will be trained "
                "on, fix problems, and save it for the SFT, preference and evaluation tabs.")
    with gr.Row():
        fmt = gr.Dropdown(FORMAT_CHOICES, value="auto", label="Format (auto-detect or choose)", scale=1)
        mapping = gr.Textbox(label="Column mapping (field=column, …)", placeholder="instruction=question, output=answer",
                             scale=2)
    with gr.Tabs():
        with gr.Tab("Upload"):
            upload = gr.File(label="JSONL, JSON, CSV, TSV or Parquet", file_types=list(data.EXTENSIONS))
            upload_btn = gr.Button("Load file")
        with gr.Tab("Sample"):
            sample = gr.Dropdown(list(data.samples()), label="Bundled sample", value="preference/preference.jsonl")
            sample_btn = gr.Button("Load sample")
        with gr.Tab("Local path"):
            path = gr.Textbox(label="File or save_to_disk folder on this machine")
            path_btn = gr.Button("Load path")
        with gr.Tab("Hugging Face Hub"):
            with gr.Row():
                hub_id = gr.Textbox(label="Dataset id", placeholder="trl-lib/ultrafeedback_binarized")
                hub_split = gr.Textbox(label="Split", value="train")
            hub_btn = gr.Button("Load from the Hub")
        with gr.Tab("Type or paste"):
            table = gr.Dataframe(value=pd.DataFrame({"prompt": ["", ""], "completion": ["", ""]}), interactive=True,
                                 label="Rows (add rows/columns; cells holding JSON lists are parsed)", wrap=True)
            table_btn = gr.Button("Use these rows")
    summary = gr.Markdown("No data loaded yet.")
    rows_view = gr.Dataframe(_frame([]), label=f"Rows (first {PREVIEW_ROWS}; click a cell for its whole text)",
                             interactive=False, wrap=True, max_height=300, max_chars=CELL_CHARS,
                             show_row_numbers=True)  # numbered from 1, as "Row" below counts them

    with gr.Accordion("Preview: what the model is trained on", open=True):
        with gr.Row():
            index = gr.Number(value=1, precision=0, label="Row", minimum=1)
            max_length = gr.Slider(64, 4096, value=1024, step=64, label="Max length (tokens)")
            preview_btn = gr.Button("Show row")
        preview_note = gr.Markdown()
        with gr.Row():
            with gr.Column():  # titles above the views, not over them: nothing covers a row's first words
                gr.Markdown("**As chat**")
                chat = gr.HTML()
            with gr.Column():
                gr.Markdown("**As the trainer sees it** (tokens that carry loss highlighted)")
                mask = gr.HTML()
        with gr.Accordion("What the course's slide 7 would do instead, and why that is wrong", open=False):
            slide7 = gr.HTML()

    with gr.Accordion("Validate and fix", open=True):
        with gr.Row():
            near = gr.Slider(0.5, 1.0, value=data.DEFAULT_NEAR_THRESHOLD, step=0.01,
                             label="Near-duplicate threshold (character 5-gram Jaccard)")
            inspect_btn = gr.Button("Validate", variant="primary")
        report = gr.Markdown()
        with gr.Row():
            balance = gr.Plot(label="Balance")
            lengths = gr.Plot(label="Token lengths")
        with gr.Row():
            fix_kind = gr.Dropdown([], label="Fix", scale=3)
            fix_btn = gr.Button("Apply fix", scale=1)

    with gr.Accordion("Clean personal data (emails, phones, IPs, card numbers)", open=False):
        kinds = gr.CheckboxGroup(list(data.PII_KINDS), value=list(data.PII_KINDS), label="Scrub")
        with gr.Row():
            scrub_btn = gr.Button("Preview changes")
            scrub_apply_btn = gr.Button("Apply scrubbing")
        scrub_note = gr.Markdown()
        scrub_table = gr.Dataframe(pd.DataFrame(columns=SCRUB_COLUMNS), label="Before / after", interactive=False,
                                   wrap=True, max_height=300, max_chars=CELL_CHARS,
                                   column_widths=["7%", "10%", "37%", "37%", "9%"])

    with gr.Accordion("Convert, split and save", open=True):
        with gr.Row():
            target = gr.Radio(["sft", "preference", "kto"], value="sft", label="For trainer")
            form = gr.Radio(list(data.SFT_FORMS), value="auto",
                            label="SFT form: prompt_completion trains the last answer, messages every assistant "
                                  "turn; auto keeps conversations as messages")
        with gr.Row():
            val_frac = gr.Slider(0, 0.5, value=0.1, step=0.05, label="Validation fraction")
            test_frac = gr.Slider(0, 0.5, value=0.1, step=0.05, label="Test fraction")
            seed = gr.Number(value=0, precision=0, label="Seed")
        with gr.Row():
            name = gr.Textbox(label="Dataset name", placeholder="my-dataset")
            overwrite = gr.Checkbox(label="Replace if it exists", value=False)
        with gr.Row():
            convert_btn = gr.Button("Convert (download JSONL)")
            save_btn = gr.Button("Save dataset", variant="primary")
        save_note = gr.Markdown()
        download = gr.File(label="Download", interactive=False)
        with gr.Row():
            saved = gr.Dropdown(data.list_datasets(), label="Saved datasets", allow_custom_value=True)
            refresh = gr.Button("↻", scale=0, min_width=40)
        with gr.Row():
            repo = gr.Textbox(label="Hub repo id", placeholder="you/my-dataset")
            token = gr.Textbox(label="Hub token (or set HF_TOKEN)", type="password")
            private = gr.Checkbox(label="Private", value=True)
            push_btn = gr.Button("Push to the Hub")
        push_note = gr.Markdown()

    loaded = [st, summary, rows_view, table]
    fresh = dict(fn=after_load, inputs=[st, ctx.model_spec, max_length, form],
                 outputs=[index, chat, mask, slide7, preview_note, report, balance, lengths, fix_kind])
    upload_btn.click(load_file, [upload, fmt, mapping, st], loaded, api_name="dataset_load_file").then(**fresh)
    upload.upload(load_file, [upload, fmt, mapping, st], loaded).then(**fresh)  # no extra click after a drop
    sample_btn.click(load_sample, [sample, fmt, mapping, st], loaded, api_name="dataset_load_sample").then(**fresh)
    path_btn.click(load_path, [path, fmt, mapping, st], loaded, api_name="dataset_load_path").then(**fresh)
    hub_btn.click(load_hub, [hub_id, hub_split, fmt, mapping, st], loaded, api_name="dataset_load_hub").then(**fresh)
    table_btn.click(load_table, [table, fmt, mapping, st], loaded, api_name="dataset_load_table").then(**fresh)
    preview_btn.click(preview, [st, index, ctx.model_spec, max_length, form], [chat, mask, slide7, preview_note],
                      api_name="dataset_preview")
    form.change(preview, [st, index, ctx.model_spec, max_length, form], [chat, mask, slide7, preview_note],
                api_visibility="private")
    inspect_btn.click(inspect, [st, near, max_length, ctx.model_spec], [report, balance, lengths, fix_kind],
                      api_name="dataset_inspect")
    fix_btn.click(apply_fix, [st, fix_kind, near, max_length, ctx.model_spec], [st, summary, rows_view],
                  api_name="dataset_fix").then(
        inspect, [st, near, max_length, ctx.model_spec], [report, balance, lengths, fix_kind])
    scrub_btn.click(scrub_preview, [st, kinds], [scrub_table, scrub_note], api_name="dataset_scrub_preview")
    scrub_apply_btn.click(scrub_apply, [st, kinds], [st, summary, rows_view], api_name="dataset_scrub_apply")
    convert_btn.click(convert, [st, target, form], [download, save_note], api_name="dataset_convert")
    save_btn.click(save, [st, target, form, val_frac, test_frac, seed, name, overwrite], [save_note, download, saved],
                   api_name="dataset_save")
    refresh.click(lambda: gr.update(choices=list_saved()), None, saved, queue=False)
    push_btn.click(push, [saved, repo, token, private], push_note, api_name="dataset_push")
    list_btn = gr.Button("List saved datasets", visible=False)
    list_out = gr.JSON(visible=False)
    list_btn.click(list_saved, None, list_out, api_name="dataset_list")


if __name__ == "__main__":
    from components.shared import default_context
    with gr.Blocks(title="Dataset builder") as demo:
        with gr.Tab("Dataset builder"):
            build(default_context())
    demo.launch()
