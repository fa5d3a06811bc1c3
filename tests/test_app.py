"""The app shell: start-up, header, bad input at launch, and a run started through the UI's API."""
from __future__ import annotations

import re
import socket
import subprocess
import sys
import urllib.request

import pytest

from tests.helpers import ROOT, free_port, launch_app, stop_app, wait_for_app, wait_until


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app as `make run` starts it (the default model loads in the background): (url, data dir, seconds
    until the page answered)."""
    data_dir = tmp_path_factory.mktemp("app") / "lab_data"
    proc, url = launch_app(data_dir)
    try:
        seconds = wait_for_app(proc, url, timeout=60)
        yield url, data_dir, seconds
    finally:
        stop_app(proc)


@pytest.mark.slow
@pytest.mark.integration  # the app loads the real default model for its header
def test_page_serves_and_header_shows_the_default_model(app):
    from gradio_client import Client
    url, _, seconds = app
    print(f"page answered HTTP 200 after {seconds:.1f} s")
    client = Client(url, verbose=False)

    def loaded_header():
        header, _ = client.predict("HuggingFaceTB/SmolLM2-135M-Instruct", api_name="/model_status")
        return None if "loading" in header else header
    header = wait_until(loaded_header, 120, "the header to show the loaded default model", interval=1)
    assert "SmolLM2-135M-Instruct" in header and "offline bundle" in header and "cpu" in header, header
    assert "134.5M params" in header, header  # the loaded weights' count (134,515,008), not a name's claim


@pytest.mark.slow  # the app's start-up: ~5 s
def test_bad_model_spec_is_a_message_and_the_app_keeps_serving(app):
    from gradio_client import Client
    url, _, _ = app
    client = Client(url, verbose=False)
    client.predict("./definitely/not/a/model", api_name="/pick_model")

    def settled_header():
        header, _ = client.predict("./definitely/not/a/model", api_name="/model_status")
        return None if "loading" in header else header
    header = wait_until(settled_header, 30, "the header to settle on the bad spec", interval=0.5)
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
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert out.stdout.startswith("usage: python app.py [-h] "), out.stdout  # the command as a user types it
    usage, _, options = out.stdout.partition("\noptions:\n")
    for flag, metavar in (("--host", "HOST"), ("--port", "PORT"), ("--model", "MODEL"), ("--data-dir", "DATA_DIR"),
                          ("--no-preload", "")):
        shown = f"{flag} {metavar}".strip()
        assert f"[{shown}]" in " ".join(usage.split()), (flag, usage)  # in the usage line, optional
        # and explained: its own line under options, with a help text after it
        assert re.search(rf"^  {re.escape(shown)} +\S", options, re.M), (flag, options)


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

    def running_with_loss():
        status, plot, error = client.predict(run_id, 0.0, False, api_name="/sft_run_status")
        assert "failed" not in status, error
        return (status, plot) if "loss" in status and "running" in status else None
    status, plot = wait_until(running_with_loss, 180, "the monitor to show a running run's loss", interval=1)
    assert "running" in status and "step" in status and "loss" in status, status
    assert plot["type"] == "matplotlib" and plot["plot"].startswith("data:image/")  # the live loss curve
    client.predict(run_id, api_name="/sft_run_stop")

    def stopped():
        status, _, _ = client.predict(run_id, 0.0, False, api_name="/sft_run_status")
        return status if "**stopped**" in status else None
    status = wait_until(stopped, 120, "the run to stop", interval=1)
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
