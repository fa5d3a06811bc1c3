"""Where the lab keeps its durable files.

One data directory holds everything that must survive a restart:

    <data-dir>/models/     dequantized copies of offline model bundles
    <data-dir>/runs/       one folder per training run (see labs.runs)
    <data-dir>/datasets/   datasets saved by the Dataset builder
    <data-dir>/lab.sqlite  ratings and preference pairs (labs.store)

Default `./lab_data`; `--data-dir` or `LAB_DATA_DIR` moves it (`/data` on a Space with
persistent storage). `LAB_MODEL_CACHE` moves only the model cache, so several data
directories (tests, say) can share one dequantized model.

Every name a user gives that becomes a path (run id, dataset name, sweep name) goes through `child`
(or `safe_name`): `paths.child(runs_dir(), run_id, "run id", error=RunError)`.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from labs.errors import LabError


class DataDirError(LabError):
    """The data directory cannot be used; the message says why and what to do."""


def data_dir() -> Path:
    return Path(os.environ.get("LAB_DATA_DIR", "lab_data")).resolve()


def set_data_dir(path: str | os.PathLike) -> Path:
    """Check that `path` is a writable directory (creating it) and make it the data directory."""
    p = Path(path).expanduser().resolve()
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=p, prefix=".write-test-"):
            pass
    except OSError as e:
        raise DataDirError(
            f"data directory {p} is not writable ({e.strerror or e}); "
            "choose another with --data-dir or LAB_DATA_DIR"
        ) from None
    os.environ["LAB_DATA_DIR"] = str(p)
    return p


def subdir(name: str, base: Path | None = None) -> Path:
    d = (base or data_dir()) / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def model_cache_dir() -> Path:
    env = os.environ.get("LAB_MODEL_CACHE")
    d = Path(env).resolve() if env else data_dir() / "models"
    d.mkdir(parents=True, exist_ok=True)
    return d


# --------------------------------------------------------------------------- names that become paths
# The longest name the lab makes itself is a torchrun run directory, slug(stem)-slug(launch id): 40+1+40 = 81
# characters; 128 leaves room for the prefixes and suffixes added to a name (".<name>.tmp-<pid>", ".json")
# within the 255 bytes a file name may have.
MAX_NAME = 128
_NAME_CHARS = re.compile(r"[A-Za-z0-9_.-]+")


class NameRefused(LabError, ValueError):
    """A name typed by a user (run id, dataset name, sweep name) cannot name a file; the message says why."""


def safe_name(name, what: str = "name", error: type[Exception] = NameRefused) -> str:
    """`name` (surrounding spaces removed) when it can name one file or folder inside a folder of the lab,
    else `error` ("run id '..': ...") - the ONE check for every user-supplied name that becomes a path.

    Refused: empty, '.' and '..', path separators and absolute paths, NUL and control characters, a
    leading '.' (hidden; the lab's own temporary files) or '-' (read as an option), over MAX_NAME characters,
    and any character but letters, digits, '-', '_' and '.' (the names the lab makes are of that kind)."""
    text = "" if name is None else str(name).strip(" ")
    shown = repr(text) if any(not c.isprintable() for c in text) else f"'{text}'"
    if len(shown) > 80:
        shown = shown[:60] + "..." + shown[-12:]

    def refuse(why: str):
        raise error(f"{what} {shown}: {why}")

    if not text:
        refuse("is empty; give a name")
    if text in (".", ".."):
        refuse("names a folder ('.' is this one, '..' the one above), not a name; give a name")
    if "/" in text or "\\" in text or os.sep in text or (os.altsep and os.altsep in text):
        refuse("is a path; give a name without '/' or '\\'")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        refuse("contains a control character (NUL, newline, tab ...); give a plain name")
    if text[0] in ".-":
        refuse(f"starts with '{text[0]}'; start it with a letter, a digit or '_'")
    if len(text) > MAX_NAME:
        refuse(f"is {len(text)} characters long; at most {MAX_NAME}")
    if not _NAME_CHARS.fullmatch(text):
        bad = sorted({c for c in text if not _NAME_CHARS.fullmatch(c)})
        refuse(f"contains {' '.join(repr(c) for c in bad)}; use only a-z, A-Z, 0-9, '-', '_' and '.'")
    return text


def child(root: Path, name, what: str = "name", error: type[Exception] = NameRefused, suffix: str = "") -> Path:
    """`root / (name + suffix)` for a user-supplied `name` checked by safe_name, once resolved (symlinks
    followed) still inside `root`: a link in runs/ pointing out of it is refused like '..' is.
    The path returned is the unresolved one, so the name the user gave stays the name shown."""
    text = safe_name(name, what, error)
    root = Path(root).resolve()
    p = root / f"{text}{suffix}"
    real = p.resolve()
    if real == root or not real.is_relative_to(root):
        raise error(f"{what} '{text}': points outside {root} (a link to {real}); remove the link "
                    "or give another name")
    return p


ROOT = Path(__file__).resolve().parent.parent
PUBLIC = (ROOT / "assets",)  # bundled sample data: readable by anyone


def upload_roots() -> list[Path]:
    """Where Gradio keeps the files people upload (its cache): readable in a shared lab, like the data directory."""
    return [Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")]


def check_server_path(spec: str, what: str = "path", shared: bool | None = None, uploads: bool = False) -> str:
    """A user-typed model, data or file spec, refused in shared mode when it names a place on this server outside
    the data directory (and the bundled assets). A spec that is no existing path (a Hub id, a saved dataset's
    name) is left to its loader. Returns the spec."""
    from labs import access
    spec = (spec or "").strip()
    if not spec or not (access.shared() if shared is None else shared):
        return spec
    p = Path(spec).expanduser()
    if not (p.is_absolute() or p.exists() or spec.startswith((".", "~"))):
        return spec
    real = (p if p.is_absolute() else Path.cwd() / p).resolve()
    roots = [data_dir().resolve(), *(r.resolve() for r in (*PUBLIC, *(upload_roots() if uploads else [])))]
    if any(real == r or r in real.parents for r in roots):
        return spec
    raise NameRefused(f"{what} {spec!r}: this lab is shared, so it reads only files inside its data directory "
                      "(saved datasets, runs, uploads) and the bundled samples, not other places on the server")

