"""Snapshots of the data directory, so that a Space's restart (its disk is wiped) loses nothing.

    python -m labs.snapshot save --to /mnt/bucket/lab          # one snapshot now
    python -m labs.snapshot restore --from /mnt/bucket/lab     # the newest one into an empty data directory
    python -m labs.snapshot list --from /mnt/bucket/lab

The live SQLite database stays on local disk (SQLite's locking is not known to be safe on a network or FUSE
mount); a snapshot copies it with SQLite's online backup API — a consistent copy while annotators keep
labeling, never a file copy of a live database — and copies the run directories, datasets and loops beside
it. Each snapshot is a folder `snapshot-<UTC time>` whose `manifest.json` is written last: a snapshot cut
short by a crash has no manifest and is never restored. The newest KEEP snapshots are kept.

Targets: a directory (a mounted storage bucket, or any disk), given as LAB_SNAPSHOT_DIR; or a Hub dataset repo
(LAB_SNAPSHOT_REPO), to which a local snapshot folder is pushed with huggingface_hub's CommitScheduler and
which is downloaded at start (that path needs the network and a token with write access: it is not exercised
by the tests, which use a directory target).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path

from labs.errors import LabError

KEEP = 3
SKIP_DIRS = {"models", "workspaces", "__pycache__"}  # the model cache is rebuilt; workspaces are per session
SKIP_SUFFIXES = (".lock", ".tmp", "-wal", "-shm", "-journal")
DB = "lab.sqlite"


class SnapshotError(LabError):
    """A snapshot could not be written or read; the message names the path and the cause."""


def _files(data_dir: Path):
    for root, dirs, files in os.walk(data_dir):
        rel = Path(root).relative_to(data_dir)
        dirs[:] = [d for d in dirs if not (rel == Path(".") and d in SKIP_DIRS) and not d.startswith(".")]
        for f in files:
            if f == DB or f.endswith(SKIP_SUFFIXES) or f.startswith("."):
                continue
            yield rel / f


def save(data_dir: str | Path, target: str | Path, keep: int = KEEP) -> Path:
    """One snapshot of `data_dir` into `target`; returns its folder."""
    data_dir, target = Path(data_dir), Path(target)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"{time.time() % 1:.3f}"[1:]
    out = target / f"snapshot-{stamp}"
    try:
        out.mkdir(parents=True, exist_ok=False)
        from labs import store
        has_db = store.backup(out / DB, data_dir / DB)  # consistent while writers go on (WAL)
        files = []
        for rel in _files(data_dir):
            dest = out / "files" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):  # a file removed meanwhile (a finished job's temp)
                shutil.copy2(data_dir / rel, dest)
                files.append(str(rel))
        manifest = {"time": time.time(), "data_dir": str(data_dir), "database": has_db, "files": files}
        (out / "manifest.json.tmp").write_text(json.dumps(manifest))
        os.replace(out / "manifest.json.tmp", out / "manifest.json")  # last: marks the snapshot complete
    except (OSError, LabError) as e:
        shutil.rmtree(out, ignore_errors=True)
        raise SnapshotError(f"snapshot to {target}: {getattr(e, 'strerror', None) or e}") from None
    for old in snapshots(target)[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    return out


def snapshots(target: str | Path) -> list[Path]:
    """Complete snapshots in `target`, newest first."""
    t = Path(target)
    if not t.is_dir():
        return []
    return sorted((d for d in t.glob("snapshot-*") if (d / "manifest.json").exists()), reverse=True)


def restore(data_dir: str | Path, source: str | Path, force: bool = False) -> Path | None:
    """The newest snapshot of `source` into `data_dir`. Only into a data directory without a database (a fresh
    disk after a restart) unless `force`; returns the snapshot restored, or None when there is none."""
    data_dir = Path(data_dir)
    found = snapshots(source)
    if not found:
        return None
    if (data_dir / DB).exists() and not force:
        raise SnapshotError(f"restore: {data_dir} already has a database; restore only into an empty data "
                            "directory (or pass --force)")
    snap = found[0]
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        manifest = json.loads((snap / "manifest.json").read_text())
        for rel in manifest["files"]:
            dest = data_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(snap / "files" / rel, dest)
        if manifest.get("database"):
            tmp = data_dir / f".{DB}.restore"
            shutil.copy2(snap / DB, tmp)  # a closed backup file, not a live database: a copy is safe
            os.replace(tmp, data_dir / DB)
    except (OSError, ValueError, KeyError) as e:
        raise SnapshotError(f"restore from {snap}: {getattr(e, 'strerror', None) or e}") from None
    return snap


def export_zip(data_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Everything a restart would lose, as one zip to download: a snapshot (the database copied with the backup
    API, labels and ratings also as JSONL, runs, datasets, loops) zipped into a temporary file."""
    import tempfile
    import zipfile
    data_dir = Path(data_dir)
    work = Path(tempfile.mkdtemp(prefix="lab-export-", dir=out_dir))
    snap = save(data_dir, work / "snap", keep=1)
    if (snap / DB).exists():
        from labs import store
        for table, rows in store.dump(snap / DB).items():
            (snap / f"{table}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    out = work / f"lab-export-{time.strftime('%Y%m%d-%H%M%S')}.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(snap.rglob("*")):
            if f.is_file():
                z.write(f, f.relative_to(snap))
    shutil.rmtree(work / "snap", ignore_errors=True)
    return out


class Scheduler:
    """Snapshots every `every_s` seconds in a thread, and once more at `stop()` (a clean shutdown)."""

    def __init__(self, data_dir: str | Path, target: str | Path, every_s: float = 600):
        self.data_dir, self.target, self.every_s = Path(data_dir), Path(target), every_s
        self.last_saved: float | None = None
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="lab-snapshots")

    def start(self) -> "Scheduler":
        self._thread.start()
        return self

    def save_now(self) -> Path | None:
        try:
            out = save(self.data_dir, self.target)
        except SnapshotError as e:
            self.last_error = str(e)
            print(f"warning: {e}", file=sys.stderr, flush=True)
            return None
        self.last_saved, self.last_error = time.time(), None
        return out

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.save_now()

    def stop(self) -> None:
        self._stop.set()
        self.save_now()


def hub_push_scheduler(folder: str | Path, repo_id: str, every_min: float, token: str | None = None):
    """A huggingface_hub CommitScheduler that pushes `folder` (where the local snapshots are written) to a Hub
    dataset repo every `every_min` minutes (needs the network and a write token)."""
    from huggingface_hub import CommitScheduler
    return CommitScheduler(repo_id=repo_id, repo_type="dataset", folder_path=str(folder), every=every_min,
                           token=token, private=True)


def hub_pull(repo_id: str, into: str | Path, token: str | None = None) -> Path | None:
    """Download a Hub dataset repo of snapshots into `into` (None when it cannot be reached)."""
    from huggingface_hub import snapshot_download
    try:
        return Path(snapshot_download(repo_id=repo_id, repo_type="dataset", local_dir=str(into), token=token))
    except Exception as e:  # noqa: BLE001 - offline, no repo yet, no rights: start without it, and say so
        print(f"warning: snapshots from {repo_id} could not be downloaded ({type(e).__name__}: {e})",
              file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m labs.snapshot", description="Snapshots of the data directory.")
    ap.add_argument("command", choices=["save", "restore", "list"])
    ap.add_argument("--to", "--from", dest="target", default=os.environ.get("LAB_SNAPSHOT_DIR"),
                    help="the snapshot directory (default LAB_SNAPSHOT_DIR)")
    ap.add_argument("--data-dir", default=os.environ.get("LAB_DATA_DIR", "lab_data"))
    ap.add_argument("--force", action="store_true", help="restore over an existing database")
    a = ap.parse_args(argv)
    try:
        if not a.target:
            raise SnapshotError("--to/--from: give the snapshot directory (or set LAB_SNAPSHOT_DIR)")
        if a.command == "save":
            print(f"snapshot={save(a.data_dir, a.target)}")
        elif a.command == "restore":
            snap = restore(a.data_dir, a.target, force=a.force)
            print(f"restored={snap}" if snap else "restored=none (no complete snapshot there)")
        else:
            for s in snapshots(a.target):
                m = json.loads((s / "manifest.json").read_text())
                print(f"{s.name} files={len(m['files'])} database={m['database']}")
    except SnapshotError as e:
        print(f"error: {e.line()}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
