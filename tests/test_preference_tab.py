"""The labeling contract through the running app: two annotators label 20 pairs each through gradio_client,
the app is killed with SIGKILL and started again, and every label is still there."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(data_dir: Path, model: str):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "LAB_DATA_DIR"}
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--data-dir", str(data_dir),
                             "--model", model, "--no-preload"], cwd=ROOT, env={**env, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the app exited"
        try:
            with urllib.request.urlopen(url, timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise AssertionError("the app did not answer")


def _stats(data_dir: Path) -> dict:
    p = subprocess.run([sys.executable, "-m", "labs.store", "stats", "--data-dir", str(data_dir)], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return dict(line.split("=", 1) for line in p.stdout.splitlines())


@pytest.mark.slow
def test_forty_labels_survive_sigkill(tmp_path, tiny_model_dir, monkeypatch):
    from gradio_client import Client

    from labs import store
    data_dir = tmp_path / "lab_data"
    proc, url = _start(data_dir, str(tiny_model_dir))
    try:
        client = Client(url, verbose=False)
        # pairs made through the page (the tiny model's answers are random text), topped up to 20 in the store
        note, _ = client.predict(str(tiny_model_dir), "", "typed below", "Say hi\nName a colour\nCount to 3", 3,
                                 0.9, 0.95, 12, 0, api_name="/pref_make_pairs")
        assert note.startswith("Made **")
        monkeypatch.setenv("LAB_DATA_DIR", str(data_dir))
        made = int(_stats(data_dir)["pairs"])
        store.add_pairs([{"prompt": [{"role": "user", "content": f"question {i}"}], "a": f"answer one {i}",
                          "b": f"answer two {i}", "model_a": "m"} for i in range(20 - made)], batch="topped-up")
        assert _stats(data_dir)["pairs"] == "20"
        seen = {}
        for who, choice in (("ana", "A"), ("ben", "B")):
            pid, prompt, a, b = client.predict(who, api_name="/pref_next")
            while pid is not None:
                assert prompt and (a or b)
                seen.setdefault(who, []).append(pid)
                pid, prompt, a, b = client.predict(pid, choice, who, api_name="/pref_label")
        assert sorted(seen["ana"]) == sorted(seen["ben"]) == list(range(1, 21))  # each pair once per annotator
        with pytest.raises(Exception, match="choice"):
            client.predict(1, "C", "ana", api_name="/pref_label")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        st = _stats(data_dir)
        assert (st["pairs"], st["labels"], st["annotators"]) == ("20", "40", "2")
        proc, url = _start(data_dir, str(tiny_model_dir))  # and the restarted app serves them
        client = Client(url, verbose=False)
        assert client.predict("ana", api_name="/pref_next")[0] is None
        md, _ = client.predict("all batches", api_name="/pref_agreement")
        assert "Cohen's kappa" in md and "20 pairs" in md
    finally:
        proc.kill()
        proc.wait(30)
