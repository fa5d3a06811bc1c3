"""The endpoints that write, called directly (gradio_client) in a shared lab as a viewer and as another member:
each refuses with a message that says why, and the data directory stays byte-identical."""
from __future__ import annotations

import pytest

from tests import helpers
from tests.test_rights import digest

pytestmark = pytest.mark.slow
PEOPLE = {"ana": "pw-ana-123:member", "ben": "pw-ben-456:member", "vic": "pw-vic-789:viewer"}


def test_writes_by_the_wrong_person_are_refused_and_change_nothing(tmp_path, tiny_model_dir):
    from gradio_client import Client

    from labs import data, paths, runs, store
    from labs.access import Actor
    from labs.sft.config import preset
    lab = tmp_path / "lab_data"
    paths.set_data_dir(lab)
    pid = store.add_pairs([{"prompt": "p", "a": "x", "b": "y"}], batch="b")[0]
    store.label(pid, "ana", "A")
    data.save_dataset("anas", {"train": [{"prompt": "p", "completion": "c"}]}, fmt="sft",
                      actor=Actor("ana", "member", "auth"))
    planted = tmp_path / "planted.jsonl"
    planted.write_text('{"prompt": "secret", "completion": "s"}\n')
    auth = [x for n, pw in PEOPLE.items() for x in ("--auth", f"{n}:{pw}")]
    proc, url = helpers.start_app(lab, "--model", str(tiny_model_dir), "--no-preload", *auth)
    try:
        paths.set_data_dir(lab)
        cfg = preset("instruction", model=str(tiny_model_dir), max_steps=2000, eval_rows=0, device="cpu",
                     precision="fp32")
        run = runs.submit("sft", cfg.to_dict(), name="anas", actor=Actor("ana", "member", "auth"))
        helpers.wait_until(lambda: run.status()["state"] in ("running", "queued"), 60, "ana's run")
        ben = Client(url, auth=("ben", "pw-ben-456"), verbose=False)
        vic = Client(url, auth=("vic", "pw-vic-789"), verbose=False)
        before = digest(lab / "datasets") + str(sorted((lab_["annotator"], lab_["choice"])
                                                        for lab_ in store.labels("b")))
        tried = {
            "ben kills ana's run": (ben, (run.id,), "/sft_run_kill", "only their own"),
            "ben stops ana's run": (ben, (run.id,), "/sft_run_stop", "only their own"),
            "ben labels as ana": (ben, (pid, "B", "ana"), "/pref_label", "you are signed in as ben"),
            "vic labels": (vic, (pid, "B", "vic"), "/pref_label", "vic is a viewer"),
        }
        for what, (client, args, api, why) in tried.items():
            with pytest.raises(Exception, match=why):
                client.predict(*args, api_name=api)
        # the refusals that come back as the tab's message rather than an error
        msg = ben.predict(str(planted), "auto", "", api_name="/dataset_load_path")
        assert "reads only files inside its data directory" in str(msg) and "secret" not in str(msg)
        assert run.status()["state"] in runs.ACTIVE
        after = digest(lab / "datasets") + str(sorted((lab_["annotator"], lab_["choice"])
                                                       for lab_ in store.labels("b")))
        assert after == before
    finally:
        runs.kill(run.id)
        helpers.stop_app(proc)
