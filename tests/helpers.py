"""What several test files need: a free port, the app started (as a process or one tab in this process), waiting
with a deadline, tiny models built in-process, and a few small readers of what the engine wrote.

    from tests.helpers import start_app, stop_app, wait_until
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- waiting
def wait_until(predicate, timeout: float = 120, what: str = "condition", interval: float = 0.3):
    """Call `predicate` until it returns something true and return that; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------- the app
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_app(data_dir: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """`python app.py --port <free> --data-dir <data_dir> ARGS...` started, not waited for: (process, url).
    The test session's LAB_DATA_DIR is not passed on (the app's data directory is the one given); its output
    goes to a temporary file that `app_output(proc)` reads."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "LAB_DATA_DIR"}
    log = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--data-dir", str(data_dir), *args],
                            cwd=ROOT, env={**env, "PYTHONUNBUFFERED": "1"}, stdout=log, stderr=subprocess.STDOUT,
                            text=True)
    proc.log = log
    return proc, f"http://127.0.0.1:{port}/"


def app_output(proc: subprocess.Popen) -> str:
    """What the app printed so far (stdout and stderr)."""
    proc.log.seek(0)
    return proc.log.read()


def wait_for_app(proc: subprocess.Popen, url: str, timeout: float = 120) -> float:
    """Seconds until the page answered HTTP 200; fails (with the app's output) if it exits or stays silent."""
    t0 = time.monotonic()

    def answers() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the app exited with {proc.returncode}:\n{app_output(proc)[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status == 200
        except OSError:
            return False
    wait_until(answers, timeout, f"the app to answer at {url}")
    return time.monotonic() - t0


def start_app(data_dir: Path, *args: str, timeout: float = 120) -> tuple[subprocess.Popen, str]:
    """The app started on a free port and answering: (process, url). Stop it with `stop_app`."""
    proc, url = launch_app(data_dir, *args)
    try:
        wait_for_app(proc, url, timeout)
    except BaseException:
        stop_app(proc)
        raise
    return proc, url


def stop_app(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Terminate (or kill, if it does not end in time) an app started by `launch_app` / `start_app`."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    proc.log.close()


def kill_app(proc: subprocess.Popen) -> None:
    """SIGKILL: the app gets no chance to shut down (to flush or close anything); returns once it is gone."""
    proc.kill()
    stop_app(proc)


@contextlib.contextmanager
def serve_tab(module, data_dir: Path, model_spec: str):
    """One tab (a `components.<x>_tab` module, or anything with `__name__` and `build(ctx)`) served alone in this
    process on a free port, under the test session's environment; yields a gradio_client Client."""
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


def store_stats(data_dir: Path) -> dict[str, str]:
    """`python -m labs.store stats` on a data directory, as the key=value lines it prints."""
    p = subprocess.run([sys.executable, "-m", "labs.store", "stats", "--data-dir", str(data_dir)], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return dict(line.split("=", 1) for line in p.stdout.splitlines())


# --------------------------------------------------------------------------- tiny models, built in-process
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


# 24 short drug reviews in three classes (12 positive, 8 negative, 4 neutral): the tiny BERT's classification rows
REVIEW_ROWS = [{"text": t, "label": lab} for t, lab in [
    ("the drug worked well and i sleep fine", "positive"), ("awful pain all week", "negative"),
    ("it was okay nothing special", "neutral"), ("great relief from the pain", "positive"),
    ("bad side effects and awful nights", "negative"), ("works well for me", "positive")] * 4]


def make_tiny_bert(out: Path, vocab: list[str], *, max_positions: int) -> Path:
    """A 2-layer BERT (hidden 32) with random weights (seed 0) and a word-level tokenizer of `vocab`."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer
    tok = BertTokenizer(vocab={w: i for i, w in enumerate(dict.fromkeys(vocab))})
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=max_positions)).save_pretrained(out)
    tok.save_pretrained(out)
    return out


# --------------------------------------------------------------------------- data on disk
def write_splits(folder: Path, rows_by_split: dict[str, list[dict]]) -> Path:
    """A folder dataset as a user makes one: <split>.jsonl per split, one JSON row per line."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in rows_by_split.items():
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


# --------------------------------------------------------------------------- runs
def resume_for_more_steps(run, recipe_main, max_steps: int, checkpoint: str, **config_changes) -> None:
    """Raise a finished run's max_steps (and apply `config_changes`) in its config.yaml, resume it in this process
    with the recipe's `main`, and check that it went on from `checkpoint` to `max_steps` without redoing step 1."""
    import yaml

    from labs import runs
    cfg = yaml.safe_load((run.dir / "config.yaml").read_text())
    cfg.update(max_steps=max_steps, **config_changes)
    (run.dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert recipe_main(["--config", str(run.dir / "config.yaml"), "--resume"]) == 0
    st = runs.get(run.id).status()
    assert st["state"] == "finished" and st["resumed_from"].endswith(checkpoint), st
    steps = [r["step"] for r in runs.get(run.id).metrics() if "loss" in r]
    assert steps.count(1) == 1 and max(steps) == max_steps, steps
