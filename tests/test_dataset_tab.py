"""The Dataset builder tab driven through gradio_client: upload, inspect, preview, convert, save."""
from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import pandas as pd
import pytest
from gradio_client import handle_file

from components import dataset_tab
from labs import data

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def client(data_dir, tiny_model_dir, serve_tab):
    with serve_tab(dataset_tab, data_dir, str(tiny_model_dir)) as c:
        yield c, str(tiny_model_dir)


def test_upload_inspect_convert_save(client, tmp_path):
    c, spec = client
    src = tmp_path / "prefs.csv"
    src.write_text((ROOT / "assets/formats/preference_ab.csv").read_text() +
                   '"Say hi","hi","hi","A"\n')  # chosen identical to rejected
    summary = c.predict(handle_file(str(src)), "auto", "", api_name="/dataset_load_file")[0]
    assert "**7 rows**" in summary and "preference_ab" in summary
    report, *_ = c.predict(0.8, 1024, spec, api_name="/dataset_inspect")
    assert "chosen identical to rejected" in report and "| 1 | 7 |" in report
    fixed = c.predict("chosen_equals_rejected", 0.8, 1024, spec, api_name="/dataset_fix")[0]
    assert "7 → 6 rows" in fixed
    chat, mask, slide7, _ = c.predict(1, spec, 1024, "auto", api_name="/dataset_preview")
    assert '<div class="turn assistant">' in chat and "tok-train" in mask and "pad = EOS" in slide7
    path, note = c.predict("preference", "prompt_completion", api_name="/dataset_convert")
    assert "wrote **6 rows** for preference" in note and open(path).read().count("\n") == 6
    note, dl, _ = c.predict("kto", "prompt_completion", 0.2, 0.0, 0, "ab-kto", False, api_name="/dataset_save")
    assert "Saved **ab-kto**" in note
    assert "ab-kto" in data.list_datasets() and "ab-kto" in c.predict(api_name="/dataset_list")
    dd = data.load_saved("ab-kto")
    assert set(dd) == {"train", "validation"} and sum(len(d) for d in dd.values()) == 12


def test_bad_input_keeps_serving(client, tmp_path):
    c, spec = client
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"text": "a"}\n{"text": \n')
    summary = c.predict(handle_file(str(bad)), "auto", "", api_name="/dataset_load_file")[0]
    assert summary.startswith("⚠️") and "line 2 is not valid JSON" in summary
    hub = c.predict("trl-lib/ultrafeedback_binarized", "train", "auto", "", api_name="/dataset_load_hub")[0]
    assert "HF_HUB_OFFLINE=1" in hub
    # still serving: a sample loads, PII preview works, a missing name is refused
    summary = c.predict("formats/instruction.jsonl", "auto", "", api_name="/dataset_load_sample")[0]
    assert "**5 rows**" in summary and "instruction" in summary
    table, note = c.predict(["email", "phone", "ip", "card"], api_name="/dataset_scrub_preview")
    assert "0 fields" in note
    note = c.predict("sft", "prompt_completion", 0.1, 0.1, 0, "", False, api_name="/dataset_save")[0]
    assert note.startswith("⚠️") and "dataset name" in note
    summary = c.predict({"headers": ["q", "a"], "data": [["What is 2+2?", "4"], ["", ""]]}, "prompt_completion",
                        "prompt=q, completion=a", api_name="/dataset_load_table")[0]
    assert "**1 rows**" in summary and "prompt_completion" in summary


def test_new_data_replaces_old_views(data_dir, tiny_model_dir, tmp_path):
    spec = str(tiny_model_dir)
    st = dict(dataset_tab.EMPTY)
    st, *_ = dataset_tab.load_sample("formats/instruction.jsonl", "auto", "", st)
    report, bal, hist, _ = dataset_tab.inspect(st, 0.8, 1024, spec)
    assert bal is None  # no label column: no empty balance chart
    assert sum(bar.get_height() for bar in hist.axes[0].patches) == 5  # the length histogram counts the 5 rows
    src = tmp_path / "other.jsonl"
    src.write_text('{"prompt": "Name a colour.", "completion": "Teal."}\n')
    st, summary, _, _ = dataset_tab.load_file(str(src), "auto", "", st)
    assert "`other.jsonl`" in summary and str(tmp_path) not in summary  # the file's name, not its temp path
    index, chat, mask, _, note, report, bal, hist, fixes = dataset_tab.after_load(st, spec, 1024)
    assert index == 1 and chat.endswith('<div class="text">Teal.</div></div></div>') and "tok-train" in mask
    assert bal is None and hist is None and "Validate" in report and fixes["choices"] == []


def test_failed_load_keeps_rows_and_says_so(data_dir, tmp_path):
    st, *_ = dataset_tab.load_sample("formats/instruction.jsonl", "auto", "", dict(dataset_tab.EMPTY))
    bad = tmp_path / "empty.jsonl"
    bad.write_text("")
    st2, summary, _, table = dataset_tab.load_file(str(bad), "auto", "", st)
    assert st2 is st and summary.startswith("⚠️ empty.jsonl is empty") and "Still loaded: **5 rows**" in summary


def test_long_file_does_not_fill_the_editable_table(data_dir):
    """"Use these rows" on a 200-row excerpt would drop the rest of a longer file."""
    st, _, view, table = dataset_tab.load_sample("instruct/train.jsonl", "auto", "", dict(dataset_tab.EMPTY))
    assert st["n"] > dataset_tab.PREVIEW_ROWS and len(view["value"]) == dataset_tab.PREVIEW_ROWS
    assert not isinstance(table, pd.DataFrame)  # left as it was
    st, _, _, table = dataset_tab.load_sample("formats/instruction.jsonl", "auto", "", st)
    assert isinstance(table, pd.DataFrame) and len(table) == 5


def test_session_state_is_a_small_handle_and_rows_live_on_disk(data_dir):
    """A browser session keeps a handle of a few fields; the rows are in <data-dir>/workspaces and go with it."""
    from labs.data import workspace
    st, *_ = dataset_tab.load_sample("instruct/train.jsonl", "auto", "", dict(dataset_tab.EMPTY))
    assert "rows" not in st and len(json.dumps(st)) < 1000 and st["n"] == 600
    on_disk = list((data_dir / "workspaces" / st["id"]).glob("rows-*.jsonl"))
    assert len(on_disk) == 1 and sum(1 for _ in open(on_disk[0])) == 600
    scrubbed, *_ = dataset_tab.scrub_apply(st, ["email"])
    assert scrubbed["id"] == st["id"] and scrubbed["version"] == st["version"] + 1
    assert [p.name for p in (data_dir / "workspaces" / st["id"]).glob("rows-*.jsonl")] == \
        [f"rows-{scrubbed['version']}.jsonl"]  # the older version is removed
    workspace._cache.clear()  # read back from disk, not from the cache
    assert workspace.rows(scrubbed) == [json.loads(line) for line in open(ROOT / "assets/instruct/train.jsonl")]
    workspace.drop(scrubbed)  # the browser session ended
    assert not (data_dir / "workspaces" / st["id"]).exists()
    assert dataset_tab.preview(scrubbed, 1, "", 512)[1].startswith("⚠️") and "load the data again" in \
        dataset_tab.preview(scrubbed, 1, "", 512)[1]


def test_rows_table_widths_and_a_warning_said_once(data_dir, tmp_path, monkeypatch):
    """The rows table shares its width by the columns' text (a long prompt column leaves room for the others);
    a file that cannot be read is said in the summary only, not again in a toast."""
    st, _, view, _ = dataset_tab.load_sample("instruct/train.jsonl", "auto", "", dict(dataset_tab.EMPTY))
    widths = [float(w.rstrip("%")) for w in view["column_widths"]]
    assert list(view["value"].columns) == ["prompt", "completion", "task", "template", "entities"]
    assert sum(widths) == pytest.approx(dataset_tab.ROWS_WIDTH, abs=0.5) and max(widths) < 40
    warned = []
    monkeypatch.setattr(dataset_tab.gr, "Warning", lambda msg, *a, **k: warned.append(msg))
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"text": \n')
    _, summary, *_ = dataset_tab.load_file(str(bad), "auto", "", st)
    assert summary.startswith("⚠️ broken.jsonl: line 1 is not valid JSON") and warned == []


def test_preview_shows_a_rows_characters_not_its_markup(data_dir, tiny_model_dir, tmp_path):
    row = {"prompt": "<img src=http://example.invalid/x.png> **bold** [a](http://example.invalid)",
           "completion": "<script>alert(1)</script> &amp;"}
    src = tmp_path / "markup.jsonl"
    src.write_text(json.dumps(row) + "\n")
    st, summary, *_ = dataset_tab.load_file(str(src), "auto", "", dict(dataset_tab.EMPTY))
    chat, mask, _, note = dataset_tab.preview(st, 1, str(tiny_model_dir), 512)
    assert note == "Showing row 1." and "<img" not in chat and "<script" not in chat
    texts = [unescape(t) for t in re.findall(r'<div class="text">(.*?)</div>', chat, re.S)]
    assert texts == [row["prompt"], row["completion"]]
    assert "columns: `prompt`, `completion`" in summary
