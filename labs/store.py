"""The lab's durable human judgements: preference pairs and labels, RLHF samples and ratings, in one SQLite file.

    python -m labs.store stats                      # pairs=…, labels=…, annotators=… (one name=value a line)
    python -m labs.store stats --data-dir /data

    from labs import store
    ids = store.add_pairs([{"prompt": [...], "a": "…", "b": "…", "model_a": spec, "model_b": spec,
                            "sampling": {...}}], batch="b1")
    p = store.next_pair("ana")              # the oldest pair ana has not labeled or skipped, in her display order
    store.label(p["id"], "ana", "A")        # A / B as shown to her, tie, both_bad; committed at once

<data-dir>/lab.sqlite, WAL mode: readers never wait for the writer, and every label is its own committed
transaction, so a label survives a SIGKILL of the app the moment `label` returns. Writes take SQLite's
write lock up front (BEGIN IMMEDIATE) and wait up to 30 s for it, so concurrent annotators (threads of
one app, or several processes) never lose or duplicate a label: one label per (pair, annotator), a
second one replaces the first (UNIQUE + upsert).

A pair's responses are stored as generated (a = first candidate, b = second). Each annotator sees them
in an order drawn once per (pair, annotator) from a hash (so a reload shows the same order), and the
label records that order and the choice in stored terms: `choice` is a, b, tie or both_bad.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import sys
import time
from pathlib import Path

from labs import paths
from labs.errors import LabError

CHOICES = ("A", "B", "tie", "both_bad")  # as an annotator sees them
SCHEMA = """
CREATE TABLE IF NOT EXISTS annotators (name TEXT PRIMARY KEY, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS pairs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    batch TEXT NOT NULL,
    prompt TEXT NOT NULL,              -- JSON: a chat (list of turns) or a plain string
    a TEXT NOT NULL, b TEXT NOT NULL,  -- the two responses as generated
    model_a TEXT NOT NULL, model_b TEXT NOT NULL,
    sampling TEXT NOT NULL,            -- JSON: temperature, top_p, max_new_tokens, seed
    source TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS pairs_batch ON pairs(batch);
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pair_id INTEGER NOT NULL REFERENCES pairs(id),
    annotator TEXT NOT NULL REFERENCES annotators(name),
    choice TEXT NOT NULL CHECK (choice IN ('a', 'b', 'tie', 'both_bad', 'skip')),
    shown TEXT NOT NULL CHECK (shown IN ('ab', 'ba')),   -- which stored response was on the left (A)
    strength INTEGER, reason TEXT, ideal TEXT,           -- optional: 1-3, why, an edited ideal answer
    seconds REAL,                                        -- time from display to label, when known
    created_at REAL NOT NULL, updated_at REAL NOT NULL,
    UNIQUE (pair_id, annotator));
CREATE INDEX IF NOT EXISTS labels_annotator ON labels(annotator, updated_at);
CREATE TABLE IF NOT EXISTS samples (            -- the RLHF loop: one completion of the policy to rate
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    loop TEXT NOT NULL, round INTEGER NOT NULL,
    prompt TEXT NOT NULL,                       -- JSON, as in pairs
    completion TEXT NOT NULL,
    policy TEXT NOT NULL,                       -- the model spec that generated it (base or a round's adapter)
    sampling TEXT NOT NULL,                     -- JSON: temperature, top_p, max_new_tokens, seed, k, index
    created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS samples_round ON samples(loop, round);
CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sample_id INTEGER NOT NULL REFERENCES samples(id),
    rater TEXT NOT NULL REFERENCES annotators(name),
    rating REAL NOT NULL,                       -- 1-5 stars; thumbs are stored as 1 (down) and 5 (up)
    kind TEXT NOT NULL CHECK (kind IN ('stars', 'thumbs', 'best_of_k')),
    simulated INTEGER NOT NULL DEFAULT 0,       -- 1 when a scripted rater gave it
    created_at REAL NOT NULL, updated_at REAL NOT NULL,
    UNIQUE (sample_id, rater));
CREATE TABLE IF NOT EXISTS guidelines (         -- what annotators and raters are asked to judge by, versioned
    version INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('preference', 'rating')),
    text TEXT NOT NULL, author TEXT NOT NULL, created_at REAL NOT NULL);
"""
RATING_KINDS = ("stars", "thumbs", "best_of_k")


class StoreError(LabError, ValueError):
    """A store operation was refused; the message says why."""


def db_path() -> Path:
    return paths.data_dir() / "lab.sqlite"


def connect() -> sqlite3.Connection:
    """A new connection (one per call site: sqlite3 connections are not shared between threads)."""
    p = db_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(p, timeout=30, isolation_level=None)  # autocommit; writes open BEGIN IMMEDIATE
    con.row_factory = sqlite3.Row
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a committed label survives a killed process
    con.execute("PRAGMA foreign_keys=ON")
    con.execute("PRAGMA busy_timeout=30000")
    con.executescript(SCHEMA)
    return con


@contextlib.contextmanager
def _write():
    """One write transaction: the write lock is taken at BEGIN, so two writers queue instead of failing."""
    con = connect()
    try:
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
    finally:
        con.close()


@contextlib.contextmanager
def _read():
    con = connect()
    try:
        yield con
    finally:
        con.close()


# --------------------------------------------------------------------------- annotators
def check_annotator(name: str | None) -> str:
    name = (name or "").strip()
    if not name:
        raise StoreError("annotator: type your name first (labels are recorded per person)")
    if len(name) > 64 or any(ord(c) < 32 for c in name):
        raise StoreError(f"annotator {name[:20]!r}...: up to 64 printable characters")
    return name


def as_person(name: str | None, actor, action: str) -> str:
    """The name a label or rating is recorded under. Local mode: the typed name. Shared mode: the signed-in
    person (labs.access), who needs the right to `action`; a different typed name is refused, not recorded."""
    from labs import access
    if not access.shared():
        return check_annotator(name)
    actor = actor or access.ANONYMOUS
    access.check(actor, action)
    typed = (name or "").strip()
    if typed and typed != actor.name and actor.via != "public":
        raise access.RightsError(f"you are signed in as {actor.name}; labels and ratings are recorded under your "
                                 f"own name, not {typed[:64]!r}")
    return check_annotator(typed if actor.via == "public" and typed else actor.name)


def _ensure_annotator(con, name: str) -> None:
    con.execute("INSERT OR IGNORE INTO annotators(name, created_at) VALUES (?, ?)", (name, time.time()))


# --------------------------------------------------------------------------- pairs
def add_pairs(pairs: list[dict], *, batch: str, source: str = "") -> list[int]:
    """Store pairs ({prompt, a, b, model_a, model_b, sampling}); returns their ids, in order."""
    now = time.time()
    ids = []
    with _write() as con:
        for p in pairs:
            if not str(p.get("a", "")).strip() and not str(p.get("b", "")).strip():
                raise StoreError("a pair needs at least one non-empty response")
            cur = con.execute(
                "INSERT INTO pairs(batch, prompt, a, b, model_a, model_b, sampling, source, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (batch, json.dumps(p["prompt"], ensure_ascii=False), p["a"], p["b"], p.get("model_a", ""),
                 p.get("model_b", p.get("model_a", "")), json.dumps(p.get("sampling", {})), source or p.get("source", ""),
                 now))
            ids.append(cur.lastrowid)
    return ids


def _pair(row) -> dict:
    d = dict(row)
    d["prompt"] = json.loads(d["prompt"])
    d["sampling"] = json.loads(d["sampling"])
    return d


def prompt_text(prompt) -> str:
    if isinstance(prompt, list):
        return "\n\n".join(m["content"] for m in prompt if m.get("role") != "system")
    return str(prompt)


def shown_order(pair_id: int, annotator: str) -> str:
    """'ab' (stored a on the left as A) or 'ba': random-looking, the same on every reload."""
    h = hashlib.sha256(f"{pair_id}\0{annotator}".encode()).digest()[0]
    return "ab" if h % 2 == 0 else "ba"


def get_pair(pair_id: int, annotator: str | None = None) -> dict:
    with _read() as con:
        row = con.execute("SELECT * FROM pairs WHERE id = ?", (int(pair_id),)).fetchone()
    if row is None:
        raise StoreError(f"no pair {pair_id}")
    p = _pair(row)
    if annotator:
        order = shown_order(p["id"], annotator)
        p["shown"] = order
        p["A"], p["B"] = (p["a"], p["b"]) if order == "ab" else (p["b"], p["a"])
    return p


def next_pair(annotator: str, batch: str | None = None) -> dict | None:
    """The oldest pair this annotator has neither labeled nor skipped (None when all are done)."""
    annotator = check_annotator(annotator)
    q = ("SELECT p.id FROM pairs p WHERE NOT EXISTS (SELECT 1 FROM labels l WHERE l.pair_id = p.id "
         "AND l.annotator = ?)" + (" AND p.batch = ?" if batch else "") + " ORDER BY p.id LIMIT 1")
    with _read() as con:
        row = con.execute(q, (annotator, batch) if batch else (annotator,)).fetchone()
    return get_pair(row["id"], annotator) if row else None


def label(pair_id: int, annotator: str, choice: str, *, strength: int | None = None, reason: str | None = None,
          ideal: str | None = None, seconds: float | None = None, actor=None) -> dict:
    """Commit one label; `choice` is A, B (as shown to this annotator), tie, both_bad, or skip. In shared mode
    the label is the signed-in `actor`'s (labs.access)."""
    annotator = as_person(annotator, actor, "label")
    if choice not in CHOICES + ("skip",):
        raise StoreError(f"choice {choice!r}: one of {', '.join(CHOICES)} (or skip)")
    if strength is not None and int(strength) not in (1, 2, 3):
        raise StoreError(f"strength {strength}: 1 (slight), 2 (clear) or 3 (strong)")
    order = shown_order(int(pair_id), annotator)
    stored = {"A": order[0], "B": order[1]}.get(choice, choice)
    now = time.time()
    with _write() as con:
        if con.execute("SELECT 1 FROM pairs WHERE id = ?", (int(pair_id),)).fetchone() is None:
            raise StoreError(f"no pair {pair_id}")
        _ensure_annotator(con, annotator)
        con.execute(
            "INSERT INTO labels(pair_id, annotator, choice, shown, strength, reason, ideal, seconds, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(pair_id, annotator) DO UPDATE SET "
            "choice = excluded.choice, shown = excluded.shown, strength = excluded.strength, "
            "reason = excluded.reason, ideal = excluded.ideal, seconds = excluded.seconds, "
            "updated_at = excluded.updated_at",
            (int(pair_id), annotator, stored, order, strength, (reason or "").strip() or None,
             (ideal or "").strip() or None, seconds, now, now))
    return {"pair_id": int(pair_id), "annotator": annotator, "choice": stored, "shown": order}


def undo(annotator: str, actor=None) -> int | None:
    """Remove this annotator's most recent label (or skip); returns its pair id, None when there is none. In
    shared mode only one's own."""
    annotator = as_person(annotator, actor, "label")
    with _write() as con:
        row = con.execute("SELECT id, pair_id FROM labels WHERE annotator = ? ORDER BY updated_at DESC, id DESC "
                          "LIMIT 1", (annotator,)).fetchone()
        if row is None:
            return None
        con.execute("DELETE FROM labels WHERE id = ?", (row["id"],))
    return row["pair_id"]


# --------------------------------------------------------------------------- RLHF samples and ratings
def add_samples(samples: list[dict], *, loop: str, round: int) -> list[int]:
    """Store completions to rate ({prompt, completion, policy, sampling}); returns their ids, in order."""
    now = time.time()
    with _write() as con:
        return [con.execute(
            "INSERT INTO samples(loop, round, prompt, completion, policy, sampling, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (loop, int(round), json.dumps(s["prompt"], ensure_ascii=False), s["completion"], s.get("policy", ""),
             json.dumps(s.get("sampling", {})), now)).lastrowid for s in samples]


def _sample(row) -> dict:
    d = dict(row)
    d["prompt"] = json.loads(d["prompt"])
    d["sampling"] = json.loads(d["sampling"])
    return d


def sample(sample_id: int) -> dict | None:
    """One stored sample by id (its loop, round, prompt, completion, policy, sampling); None when there is none."""
    with _read() as con:
        row = con.execute("SELECT * FROM samples WHERE id = ?", (int(sample_id),)).fetchone()
    return _sample(row) if row else None


def samples(loop: str, round: int | None = None) -> list[dict]:
    q = "SELECT * FROM samples WHERE loop = ?" + (" AND round = ?" if round is not None else "") + " ORDER BY id"
    with _read() as con:
        return [_sample(r) for r in con.execute(q, (loop, int(round)) if round is not None else (loop,))]


def next_sample(rater: str, loop: str, round: int | None = None) -> dict | None:
    """The oldest sample of the loop (or round) this rater has not rated."""
    rater = check_annotator(rater)
    q = ("SELECT * FROM samples s WHERE s.loop = ? " + ("AND s.round = ? " if round is not None else "") +
         "AND NOT EXISTS (SELECT 1 FROM ratings r WHERE r.sample_id = s.id AND r.rater = ?) ORDER BY s.id LIMIT 1")
    args = (loop, int(round), rater) if round is not None else (loop, rater)
    with _read() as con:
        row = con.execute(q, args).fetchone()
    return _sample(row) if row else None


def rate(sample_id: int, rater: str, rating: float, kind: str = "stars", simulated: bool = False, actor=None) -> dict:
    """Commit one rating: stars 1-5, thumbs (1 = down, 5 = up; also "up"/"down"), or best_of_k (5 for the
    best of a prompt's k samples, 1 for the others). A second rating by the same rater replaces the first."""
    return rate_many([(sample_id, rating)], rater, kind, simulated, actor=actor)[0]


def rate_many(items: list[tuple[int, float]], rater: str, kind: str = "stars", simulated: bool = False,
              actor=None) -> list[dict]:
    """Commit several (sample id, rating) of one rater as one action: one transaction, one time stamp (a best-of-k
    pick rates a prompt's k answers at once; `undo_rating` takes it back whole). Ratings as in `rate`."""
    rater = check_annotator(rater) if simulated else as_person(rater, actor, "rate")
    if kind not in RATING_KINDS:
        raise StoreError(f"kind {kind!r}: one of {', '.join(RATING_KINDS)}")
    values = []
    for sample_id, rating in items:
        if isinstance(rating, str) and rating.strip().lower() in ("up", "down"):
            rating = 5.0 if rating.strip().lower() == "up" else 1.0
        try:
            value = float(rating)
        except (TypeError, ValueError):
            raise StoreError(f"rating {rating!r}: a number from 1 to 5") from None
        if not 1 <= value <= 5 or (kind != "stars" and value not in (1.0, 5.0)):
            raise StoreError(f"rating {rating!r}: 1-5 stars" if kind == "stars" else
                             f"rating {rating!r}: {kind} ratings are 1 (down / not best) or 5 (up / best)")
        values.append((int(sample_id), value))
    now = time.time()
    with _write() as con:
        _ensure_annotator(con, rater)
        for sample_id, value in values:
            if con.execute("SELECT 1 FROM samples WHERE id = ?", (sample_id,)).fetchone() is None:
                raise StoreError(f"no sample {sample_id}")
            con.execute(
                "INSERT INTO ratings(sample_id, rater, rating, kind, simulated, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(sample_id, rater) DO UPDATE SET rating = excluded.rating, "
                "kind = excluded.kind, simulated = excluded.simulated, updated_at = excluded.updated_at",
                (sample_id, rater, value, kind, int(bool(simulated)), now, now))
    return [{"sample_id": sid, "rater": rater, "rating": value, "kind": kind} for sid, value in values]


def undo_rating(rater: str, loop: str, round: int | None = None, actor=None) -> list[dict]:
    """Take back this rater's newest rating action in a loop (or one round of it): every rating it committed at that
    moment is deleted (one answer, or a best-of-k pick's k answers), so those answers are to rate again. Returns
    the deleted ratings ({sample_id, rating, kind}; sample-id order), [] when there is none."""
    rater = as_person(rater, actor, "rate")
    where = "r.rater = ? AND s.loop = ?" + (" AND s.round = ?" if round is not None else "")
    args = (rater, loop, int(round)) if round is not None else (rater, loop)
    with _write() as con:
        last = con.execute(f"SELECT MAX(r.updated_at) FROM ratings r JOIN samples s ON s.id = r.sample_id WHERE {where}",
                           args).fetchone()[0]
        if last is None:
            return []
        rows = [dict(r) for r in con.execute(
            f"SELECT r.id, r.sample_id, r.rating, r.kind FROM ratings r JOIN samples s ON s.id = r.sample_id "
            f"WHERE {where} AND r.updated_at = ? ORDER BY r.sample_id", (*args, last))]
        con.executemany("DELETE FROM ratings WHERE id = ?", [(r["id"],) for r in rows])
    return [{k: r[k] for k in ("sample_id", "rating", "kind")} for r in rows]


def ratings(loop: str, round: int | None = None) -> list[dict]:
    """Ratings joined with their samples (prompt, completion, round, policy)."""
    q = ("SELECT r.*, s.round, s.prompt, s.completion, s.policy, s.sampling FROM ratings r JOIN samples s "
         "ON s.id = r.sample_id WHERE s.loop = ?" + (" AND s.round = ?" if round is not None else "") + " ORDER BY r.id")
    with _read() as con:
        return [_sample(r) for r in con.execute(q, (loop, int(round)) if round is not None else (loop,))]


# --------------------------------------------------------------------------- reading back
def labels(batch: str | None = None) -> list[dict]:
    q = ("SELECT l.*, p.batch FROM labels l JOIN pairs p ON p.id = l.pair_id" +
         (" WHERE p.batch = ?" if batch else "") + " ORDER BY l.id")
    with _read() as con:
        return [dict(r) for r in con.execute(q, (batch,) if batch else ())]


def pairs(batch: str | None = None) -> list[dict]:
    q = "SELECT * FROM pairs" + (" WHERE batch = ?" if batch else "") + " ORDER BY id"
    with _read() as con:
        return [_pair(r) for r in con.execute(q, (batch,) if batch else ())]


def batches() -> list[dict]:
    with _read() as con:
        return [dict(r) for r in con.execute(
            "SELECT batch, COUNT(*) AS pairs, MIN(created_at) AS created_at, MIN(model_a) AS model_a, "
            "MIN(model_b) AS model_b FROM pairs GROUP BY batch ORDER BY MIN(id)")]


def progress(annotator: str, batch: str | None = None) -> dict:
    """{"done", "total"} for one annotator (skips count as done)."""
    q_total = "SELECT COUNT(*) FROM pairs" + (" WHERE batch = ?" if batch else "")
    q_done = ("SELECT COUNT(*) FROM labels l JOIN pairs p ON p.id = l.pair_id WHERE l.annotator = ?" +
              (" AND p.batch = ?" if batch else ""))
    with _read() as con:
        total = con.execute(q_total, (batch,) if batch else ()).fetchone()[0]
        done = con.execute(q_done, (annotator, batch) if batch else (annotator,)).fetchone()[0]
    return {"done": done, "total": total}


# --------------------------------------------------------------------------- copies (labs/snapshot.py)
TABLES = ("pairs", "labels", "samples", "ratings", "guidelines")


def backup(dest: Path, source: Path | None = None) -> bool:
    """A consistent copy of the database (SQLite's online backup API: writers go on meanwhile) into `dest`;
    False when there is no database yet."""
    src_path = source or db_path()
    if not src_path.exists():
        return False
    try:
        src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True, timeout=30)
        dst = sqlite3.connect(dest)
        with contextlib.closing(src), contextlib.closing(dst):
            src.backup(dst)
    except sqlite3.Error as e:
        raise StoreError(f"copying the database to {dest}: {e}") from None
    return True


def dump(db: Path) -> dict[str, list[dict]]:
    """Every row of every table of a database file (a snapshot's copy), as dicts; tables it lacks are left out."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    out = {}
    with contextlib.closing(con):
        for table in TABLES:
            try:
                out[table] = [dict(r) for r in con.execute(f"SELECT * FROM {table} ORDER BY rowid")]  # noqa: S608
            except sqlite3.OperationalError:  # a database from before that table
                continue
    return out


def integrity(db: Path) -> str:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    with contextlib.closing(con):
        return con.execute("PRAGMA integrity_check").fetchone()[0]


# --------------------------------------------------------------------------- guidelines (an admin writes them)
GUIDELINE_KINDS = ("preference", "rating")
MAX_GUIDELINE = 20_000


def set_guidelines(kind: str, text: str, author: str) -> int:
    """A new version of the guidelines for labeling pairs ('preference') or rating answers ('rating')."""
    if kind not in GUIDELINE_KINDS:
        raise StoreError(f"guidelines: kind one of {', '.join(GUIDELINE_KINDS)}, got {kind!r}")
    text = (text or "").strip()
    if len(text) > MAX_GUIDELINE:
        raise StoreError(f"guidelines: at most {MAX_GUIDELINE:,} characters, got {len(text):,}")
    with _write() as con:
        return con.execute("INSERT INTO guidelines(kind, text, author, created_at) VALUES (?, ?, ?, ?)",
                           (kind, text, author, time.time())).lastrowid


def guidelines(kind: str, at: float | None = None) -> dict | None:
    """The guidelines in force for `kind` now, or at time `at` (the version a label made then was given under)."""
    with _read() as con:
        row = con.execute("SELECT * FROM guidelines WHERE kind = ? AND created_at <= ? ORDER BY version DESC "
                          "LIMIT 1", (kind, time.time() if at is None else at)).fetchone()
    return dict(row) if row and row["text"] else None


def guideline_history(kind: str) -> list[dict]:
    with _read() as con:
        return [dict(r) for r in con.execute("SELECT * FROM guidelines WHERE kind = ? ORDER BY version", (kind,))]


def work_by_person() -> list[dict]:
    """Per person: labels (pairs), ratings (answers) and when they last did either, most active first."""
    with _read() as con:
        rows = con.execute(
            "SELECT name, (SELECT COUNT(*) FROM labels WHERE annotator = name AND choice != 'skip') AS labels, "
            "(SELECT COUNT(*) FROM ratings WHERE rater = name) AS ratings, "
            "MAX(COALESCE((SELECT MAX(updated_at) FROM labels WHERE annotator = name), 0), "
            "COALESCE((SELECT MAX(updated_at) FROM ratings WHERE rater = name), 0)) AS last FROM annotators").fetchall()
    return sorted((dict(r) for r in rows), key=lambda r: (-(r["labels"] + r["ratings"]), r["name"]))


def stats() -> dict:
    """Counts for `python -m labs.store stats` and the labeler's header."""
    with _read() as con:
        one = lambda q: con.execute(q).fetchone()[0]  # noqa: E731
        out = {
            "pairs": one("SELECT COUNT(*) FROM pairs"),
            "labels": one("SELECT COUNT(*) FROM labels WHERE choice != 'skip'"),
            "annotators": one("SELECT COUNT(DISTINCT annotator) FROM labels"),
            "skipped": one("SELECT COUNT(*) FROM labels WHERE choice = 'skip'"),
            "labeled_pairs": one("SELECT COUNT(DISTINCT pair_id) FROM labels WHERE choice != 'skip'"),
            "batches": one("SELECT COUNT(DISTINCT batch) FROM pairs"),
        }
        for c in ("a", "b", "tie", "both_bad"):
            out[f"choice_{c}"] = con.execute("SELECT COUNT(*) FROM labels WHERE choice = ?", (c,)).fetchone()[0]
        out["ideal_edits"] = one("SELECT COUNT(*) FROM labels WHERE ideal IS NOT NULL")
        out["samples"] = one("SELECT COUNT(*) FROM samples")
        out["ratings"] = one("SELECT COUNT(*) FROM ratings")
        out["raters"] = one("SELECT COUNT(DISTINCT rater) FROM ratings")
        out["per_annotator"] = {r[0]: r[1] for r in con.execute(
            "SELECT annotator, COUNT(*) FROM labels WHERE choice != 'skip' GROUP BY annotator ORDER BY annotator")}
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m labs.store", description="The labels and pairs store.")
    ap.add_argument("action", choices=["stats", "path"])
    ap.add_argument("--data-dir", default=os.environ.get("LAB_DATA_DIR", "lab_data"),
                    help="the app's data directory (default: LAB_DATA_DIR or ./lab_data)")
    a = ap.parse_args(argv)
    try:
        paths.set_data_dir(a.data_dir)
        if a.action == "path":
            print(db_path())
            return 0
        for k, v in stats().items():
            if isinstance(v, dict):
                for name, n in v.items():
                    print(f"{k}.{name}={n}")
            else:
                print(f"{k}={v}")
    except (StoreError, paths.DataDirError, sqlite3.Error) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
