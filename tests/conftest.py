"""Shared fixtures: tiny in-process models (no download) and the real default tokenizer.

The dequantized default model is cached once in <repo>/lab_data/models (LAB_MODEL_CACHE), shared by
every test session and by `make run`; everything else a test writes goes to a temporary data dir:
`data_dir` gives a test its own, and any code that writes without one lands in a temporary directory
made for this session (LAB_DATA_DIR, inherited by the jobs tests start), never in ./lab_data.

    make test-fast    (pytest -m "not slow": no training job, no app server; of the real default model only
                       its tokenizer, read from the model cache, which a fresh checkout builds once)
    make test         (everything: training jobs on tiny models, the app, the real model in the `integration` tests)

Helpers shared by several test files (a free port, the app started and waited for, wait_until, tiny models) are
in tests/helpers.py: `from tests.helpers import ...`.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.helpers")  # its asserts report their values, as a test's do
from tests import helpers  # noqa: E402
from tests.helpers import make_tiny_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("LAB_MODEL_CACHE", str(ROOT / "lab_data" / "models"))
_SESSION_DATA = tempfile.mkdtemp(prefix="lab-tests-")
os.environ["LAB_DATA_DIR"] = _SESSION_DATA  # not setdefault: a user's own data dir is never written by tests
atexit.register(shutil.rmtree, _SESSION_DATA, ignore_errors=True)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A fresh, empty data directory for one test (runs, datasets, the SQLite store)."""
    d = tmp_path / "lab_data"
    d.mkdir()
    monkeypatch.setenv("LAB_DATA_DIR", str(d))
    return d


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    """Local directory of the real default model (offline bundle, dequantized once)."""
    from labs import models
    return Path(models.offline_bundle().path)


@pytest.fixture(scope="session")
def default_tokenizer(default_model_dir):
    """The real SmolLM2-135M-Instruct tokenizer and chat template."""
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(default_model_dir)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, default_tokenizer) -> Path:
    """Path of a tiny random Llama (2 layers, hidden 32) saved with the real tokenizer."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny-llama"), default_tokenizer)


@pytest.fixture
def serve_tab():
    """`with serve_tab(components.x_tab, data_dir, model_spec) as client:` — one tab served alone."""
    return helpers.serve_tab


# --------------------------------------------------------------------------- a real browser (tests/browser.py)
@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    from tests.browser import launch_browser
    with sync_playwright() as p:
        b = launch_browser(p)
        yield b
        b.close()


@pytest.fixture(scope="session")
def lab(tmp_path_factory, tiny_model_dir):
    """The whole app on a free port, one for every browser test of the session (a start costs ~20 s here): its
    own data directory, the tiny model, no preload. (url, data_dir). Tests share it: each names what it makes
    (datasets, loops, annotators) so that no other test depends on it."""
    data = tmp_path_factory.mktemp("browser") / "lab_data"
    proc, url = helpers.start_app(data, "--model", str(tiny_model_dir), "--no-preload")
    try:
        yield url, data
    finally:
        helpers.stop_app(proc)


@pytest.fixture
def page(browser, lab):
    """A fresh browser context on `lab`; an uncaught error in the page fails the test."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(lab[0], wait_until="load")
    pg.get_by_role("tab", name="Dataset builder", exact=True).wait_for(timeout=60_000)
    yield pg
    context.close()
    assert not errors, f"errors in the page: {errors}"
