"""The labeling contract through the running app: two annotators label 20 pairs each through gradio_client,
the app is killed with SIGKILL and started again, and every label is still there."""
from __future__ import annotations


import pytest

from tests.helpers import kill_app, start_app, store_stats


@pytest.mark.slow
def test_forty_labels_survive_sigkill(tmp_path, tiny_model_dir, monkeypatch):
    from gradio_client import Client

    from labs import store
    data_dir = tmp_path / "lab_data"
    proc, url = start_app(data_dir, "--model", str(tiny_model_dir), "--no-preload")
    try:
        client = Client(url, verbose=False)
        # pairs made through the page (the tiny model's answers are random text), topped up to 20 in the store
        note, _ = client.predict(str(tiny_model_dir), "", "typed below", "Say hi\nName a colour\nCount to 3", 3,
                                 0.9, 0.95, 12, 0, api_name="/pref_make_pairs")
        assert note.startswith("Made **")
        monkeypatch.setenv("LAB_DATA_DIR", str(data_dir))
        made = int(store_stats(data_dir)["pairs"])
        store.add_pairs([{"prompt": [{"role": "user", "content": f"question {i}"}], "a": f"answer one {i}",
                          "b": f"answer two {i}", "model_a": "m"} for i in range(20 - made)], batch="topped-up")
        assert store_stats(data_dir)["pairs"] == "20"
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
        kill_app(proc)
        st = store_stats(data_dir)
        assert (st["pairs"], st["labels"], st["annotators"]) == ("20", "40", "2")
        # and the restarted app serves them
        proc, url = start_app(data_dir, "--model", str(tiny_model_dir), "--no-preload")
        client = Client(url, verbose=False)
        assert client.predict("ana", api_name="/pref_next")[0] is None
        md, _ = client.predict("all batches", api_name="/pref_agreement")
        assert "Cohen's kappa" in md and "20 pairs" in md
    finally:
        kill_app(proc)
