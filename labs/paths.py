"""Where the lab keeps its durable files.

One data directory holds everything that must survive a restart:

    <data-dir>/models/     dequantized copies of offline model bundles
    <data-dir>/runs/       one folder per training run (see labs.runs)
    <data-dir>/datasets/   datasets saved by the Dataset builder
    <data-dir>/lab.sqlite  ratings and preference pairs (labs.store)

Default `./lab_data`; `--data-dir` or `LAB_DATA_DIR` moves it (`/data` on a Space with
persistent storage). `LAB_MODEL_CACHE` moves only the model cache, so several data
directories (tests, say) can share one dequantized model.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


class DataDirError(Exception):
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
