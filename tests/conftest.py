"""Shared fixtures: tiny in-process models (no download) and the real default tokenizer.

The dequantized default model is cached once in <repo>/lab_data/models (LAB_MODEL_CACHE), shared by
every test session and by `make run`; everything else a test writes goes to a temporary data dir:
`data_dir` gives a test its own, and any code that writes without one lands in a temporary directory
made for this session (LAB_DATA_DIR, inherited by the jobs tests start), never in ./lab_data.

    make test-fast    (pytest -m "not slow": no training jobs, no app start-up, no real default model)
    make test         (everything)
"""
from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

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


def make_tiny_model(out: Path, tokenizer, *, layers: int = 2, hidden: int = 32, seed: int = 0) -> Path:
    """A Llama-architecture model with random weights, SmolLM2's tokenizer and chat template."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=1024, tie_word_embeddings=True,
                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, default_tokenizer) -> Path:
    """Path of a tiny random Llama (2 layers, hidden 32) saved with the real tokenizer."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny-llama"), default_tokenizer)


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _serve_tab(module, data_dir: Path, model_spec: str):
    """One tab (`components.<x>_tab` module) served alone on a free port; yields a gradio_client Client."""
    import gradio as gr
    from gradio_client import Client

    from components.shared import AppContext
    with gr.Blocks() as demo:
        spec = gr.Textbox(value=model_spec, label="Model")
        with gr.Tab(module.__name__):
            module.build(AppContext(Path(data_dir), spec))
    demo.queue().launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield Client(demo.local_url, verbose=False)
    finally:
        demo.close()


@pytest.fixture
def serve_tab():
    """`with serve_tab(components.x_tab, data_dir, model_spec) as client:` — one tab served alone."""
    return _serve_tab
