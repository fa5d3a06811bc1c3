"""The app shell: start-up, header, bad input at launch, and a run started through the UI's API."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(tmp_path, *args, data_dir=None):
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("LAB_DATA_DIR", None)
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port),
                             "--data-dir", str(data_dir or tmp_path / "lab_data"), *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, f"http://127.0.0.1:{port}/"


def wait_http(url, proc, timeout=60) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"app exited: {proc.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except OSError:
            time.sleep(0.2)
    raise AssertionError("app did not answer")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app")
    proc, url = launch(tmp)
    try:
        seconds = wait_http(url, proc)
        yield url, tmp / "lab_data", seconds
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.slow
@pytest.mark.integration  # the app loads the real default model for its header
def test_page_serves_and_header_shows_the_default_model(app):
    from gradio_client import Client
    url, _, seconds = app
    print(f"page answered HTTP 200 after {seconds:.1f} s")
    client = Client(url, verbose=False)
    deadline = time.monotonic() + 120
    header = ""
    while time.monotonic() < deadline:
        header, _ = client.predict("HuggingFaceTB/SmolLM2-135M-Instruct", api_name="/model_status")
        if "loading" not in header:
            break
        time.sleep(1)
    assert "SmolLM2-135M-Instruct" in header and "offline bundle" in header and "cpu" in header, header


@pytest.mark.slow  # the app's start-up: ~5 s
def test_bad_model_spec_is_a_message_and_the_app_keeps_serving(app):
    from gradio_client import Client
    url, _, _ = app
    client = Client(url, verbose=False)
    client.predict("./definitely/not/a/model", api_name="/pick_model")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        header, _ = client.predict("./definitely/not/a/model", api_name="/model_status")
        if "loading" not in header:
            break
        time.sleep(0.5)
    assert "⚠️" in header and "'./definitely/not/a/model'" in header and "not found" in header
    with urllib.request.urlopen(url, timeout=5) as r:
        assert r.status == 200


def test_port_in_use_and_unwritable_data_dir_are_one_line_errors(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        out = subprocess.run([sys.executable, "app.py", "--port", str(port), "--data-dir", str(tmp_path)],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip() == f"error: port {port} on 127.0.0.1 is in use; choose another with --port (or PORT=… for make run)"
    f = tmp_path / "file"
    f.write_text("x")  # a directory cannot be made under a file, even as root
    out = subprocess.run([sys.executable, "app.py", "--port", str(free_port()), "--data-dir", str(f / "sub")],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "is not writable" in out.stderr


def test_help_lists_the_options():
    out = subprocess.run([sys.executable, "app.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("usage: ") and out.stderr == "", out.stderr
    for flag in ("--host", "--port", "--model", "--data-dir"):
        assert flag in out.stdout


@pytest.mark.slow
def test_a_run_started_through_the_sft_tab_reports_metrics_live(app, tiny_model_dir, monkeypatch):
    """The whole app: start a tiny run with the SFT tab's endpoint, follow it with the run monitor's."""
    from gradio_client import Client

    from components.sft_tab import FIELDS
    url, data_dir, _ = app
    client = Client(url, verbose=False)
    values = list(client.predict("instruction", api_name="/sft_preset"))
    form = dict(zip(FIELDS, values[:len(FIELDS)]))
    form.update(max_steps=400, batch_size=2, max_length=96, logging_steps=1, eval_steps=0, eval_rows=0,
                device="cpu", precision="fp32")
    run_id, msg = client.predict(str(tiny_model_dir), *[form[f] for f in FIELDS], api_name="/sft_start")
    assert run_id in msg and "Started" in msg, msg
    assert (data_dir / "runs" / run_id / "config.yaml").exists()  # the app's own data dir
    deadline = time.monotonic() + 180
    status = ""
    while time.monotonic() < deadline:
        status, plot, error = client.predict(run_id, 0.0, False, api_name="/sft_run_status")
        if "loss" in status and "running" in status:
            break
        assert "failed" not in status, error
        time.sleep(1)
    assert "running" in status and "step" in status and "loss" in status, status
    assert plot["type"] == "matplotlib" and plot["plot"].startswith("data:image/")  # the live loss curve
    client.predict(run_id, api_name="/sft_run_stop")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "**stopped**" not in status:
        status, _, _ = client.predict(run_id, 0.0, False, api_name="/sft_run_status")
        time.sleep(1)
    assert "**stopped**" in status
    # what that image draws: the monitor's figure for this run holds every logged training loss
    from components.shared import refresh
    from labs import runs
    monkeypatch.setenv("LAB_DATA_DIR", str(data_dir))
    rows = [r for r in runs.get(run_id).metrics() if r.get("loss") is not None]
    _, fig, _ = refresh(run_id)
    (line,) = [ln for ln in fig.axes[0].lines if ln.get_label() == f"{run_id} train"]
    assert list(line.get_xdata()) == [r["step"] for r in rows] and len(rows) >= 1
    assert list(line.get_ydata()) == pytest.approx([r["loss"] for r in rows])
    last = rows[-1]
    assert f"loss {last['loss']:.4f}" in status  # the status line shows the latest of them
