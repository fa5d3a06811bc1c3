"""The rows a person is building in the Dataset builder: kept on disk, handed around as a small handle.

    from labs.data import workspace
    h = workspace.put(rows, format="messages", reason="...", source="sample x")   # a dict of a few fields
    workspace.rows(h)                                                          # the rows again
    h = workspace.put(cleaned, previous=h, source=h["source"] + " · scrubbed")  # a new version, same place

A browser session's state holds only the handle (id, version, format, counts), so a 200 MB upload is not
copied into every session's memory and every event's state. The rows live in
<data-dir>/workspaces/<id>/rows-<version>.jsonl (written atomically; older versions removed); a few
recent versions stay in a process-wide cache bounded by bytes (MAX_CACHE_MB). A workspace is removed
when its browser session ends (`drop`, the state's delete callback), and any left by a crash are
removed after MAX_AGE_S by `sweep`, which `put` runs now and then.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path

from labs import paths
from labs.data.detect import DataError, columns_of

MAX_CACHE_MB = float(os.environ.get("LAB_WORKSPACE_CACHE_MB", "256"))
MAX_AGE_S = 24 * 3600  # a workspace untouched for a day belongs to a browser session that is gone
EMPTY = {"id": None, "version": 0, "format": None, "reason": "", "source": "", "n": 0, "columns": []}

_cache: OrderedDict[tuple[str, int], tuple[list[dict], int]] = OrderedDict()  # (id, version) -> (rows, bytes)
_lock = threading.Lock()
_last_sweep = [0.0]


def _dir(ws_id: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{32}", str(ws_id)):  # ids are made here (uuid4 hex), never typed by a user
        raise DataError(f"workspace id {ws_id!r} is not one this app made")
    return paths.subdir("workspaces") / ws_id


def _remember(key: tuple[str, int], rows: list[dict], size: int) -> None:
    with _lock:
        _cache[key] = (rows, size)
        _cache.move_to_end(key)
        total = sum(s for _, s in _cache.values())
        while len(_cache) > 1 and total > MAX_CACHE_MB * 2**20:
            _, (_, s) = _cache.popitem(last=False)
            total -= s


def put(rows: list[dict], *, format: str | None, reason: str = "", source: str = "",
        previous: dict | None = None) -> dict:
    """Store `rows` as the next version of `previous`'s workspace (or a new one); returns the handle."""
    ws_id = (previous or {}).get("id") or uuid.uuid4().hex
    version = int((previous or {}).get("version") or 0) + 1
    d = _dir(ws_id)
    d.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows)
    tmp = d / f".rows-{version}.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, d / f"rows-{version}.jsonl")
    for old in d.glob("rows-*.jsonl"):
        if old.name != f"rows-{version}.jsonl":
            old.unlink(missing_ok=True)
    # what is cached is what a reload would give (default=str applied), so both paths agree
    stored = [json.loads(line) for line in text.splitlines()]
    _remember((ws_id, version), stored, len(text))
    if time.time() - _last_sweep[0] > 3600:
        sweep()
    return {"id": ws_id, "version": version, "format": format, "reason": reason, "source": source,
            "n": len(stored), "columns": columns_of(stored)}


def rows(handle: dict | None) -> list[dict]:
    """The rows of a handle ([] for the empty one)."""
    if not handle or not handle.get("id"):
        return []
    key = (handle["id"], int(handle["version"]))
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit[0]
    path = _dir(handle["id"]) / f"rows-{handle['version']}.jsonl"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError("the rows being built are gone (the workspace expired or was cleaned up); load the data "
                        "again") from None
    out = [json.loads(line) for line in text.splitlines() if line]
    _remember(key, out, len(text))
    return out


def drop(handle: dict | None) -> None:
    """Remove a workspace (called when its browser session ends)."""
    if handle and handle.get("id"):
        with _lock:
            for key in [k for k in _cache if k[0] == handle["id"]]:
                del _cache[key]
        shutil.rmtree(_dir(handle["id"]), ignore_errors=True)


def sweep(max_age_s: float = MAX_AGE_S) -> int:
    """Remove workspaces untouched for max_age_s; returns how many."""
    _last_sweep[0] = time.time()
    root = paths.subdir("workspaces")
    n = 0
    for d in root.iterdir():
        try:
            if d.is_dir() and time.time() - d.stat().st_mtime > max_age_s:
                shutil.rmtree(d, ignore_errors=True)
                n += 1
        except OSError:
            continue
    return n
