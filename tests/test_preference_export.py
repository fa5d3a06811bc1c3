"""What an export of the labels says: the rows it writes, the pairs it leaves out and why, and a warning when the
pairs are too few to teach DPO much - the same words in the labs function, the labeler's Export, the CLI and the
training panel's Start. Also: answers cut at max new tokens are known to the sampler, stored with the pair and
marked in the labeler; the disagreement table speaks in the terms each person saw; the page's first read."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

from labs import store
from labs.preference import labels
from labs.preference.config import preset
from labs.preference.recipe import optimizer_steps
from tests.helpers import ROOT


def _pairs(n, batch):
    return store.add_pairs([{"prompt": [{"role": "user", "content": f"q{i}"}], "a": f"first {i}", "b": f"second {i}",
                             "model_a": "m"} for i in range(n)], batch=batch)


def _say(pid, who, stored, **kw):
    """Label in stored terms (a / b), translated into what this annotator was shown (A / B)."""
    shown = store.shown_order(pid, who)
    choice = {"a": "A" if shown == "ab" else "B", "b": "B" if shown == "ab" else "A"}.get(stored, stored)
    return store.label(pid, who, choice, **kw)


def seventeen_labels(batch="b1"):
    """17 labels on 12 pairs that give 3 DPO rows: 3 decided A/B (one by 2 of 3 votes), 4 ties, 2 both bad,
    2 pairs split 1 vs 1, 1 pair only skipped."""
    ids = _pairs(12, batch)
    plan = [("a",), ("b",), ("a", "a", "b"), ("tie", "tie"), ("tie",), ("tie",), ("tie",), ("both_bad", "both_bad"),
            ("both_bad",), ("a", "b"), ("tie", "b"), ("skip",)]
    for pid, choices in zip(ids, plan):
        for who, c in zip(("ana", "ben", "cy"), choices):
            _say(pid, who, c)
    return ids


def test_export_counts_what_it_leaves_out_and_why(data_dir):
    seventeen_labels()
    ab = _pairs(2, "ab-run-0")  # a blind A/B pass: its prompts are the test, never exported with "every batch"
    _say(ab[0], "ana", "a")
    ex = labels.export("dpo")
    assert len(ex.rows) == ex.preference_pairs == 3 and ex.labels == 17 and ex.pairs == 11
    assert ex.left_out == {"tie": 4, "both_bad": 2, "no_majority": 2, "blind_ab": 1}
    assert ex.summary() == ("3 DPO rows from 17 labels on 11 labeled pairs; left out: 4 pairs tied, 2 pairs both bad, "
                            "2 pairs without a majority (annotators split evenly), 1 pair in blind A/B batches "
                            "(held-out prompts, never trained on)")
    assert labels.to_dpo() == ex.rows and {r["pair_id"] for r in ex.rows}.isdisjoint(ab)
    kto = labels.export("kto")  # both bad gives two undesirable rows, so only ties and splits are left out
    assert len(kto.rows) == 3 * 2 + 2 * 2 and kto.left_out == {"tie": 4, "no_majority": 2, "blind_ab": 1}
    assert kto.warning() is None
    assert labels.export("dpo", "ab-run-0").left_out == {}  # a blind batch picked by name is what was asked for


def test_few_pairs_warn_with_the_measured_minimum_and_the_steps(data_dir):
    seventeen_labels()
    ex = labels.export("dpo")
    steps = optimizer_steps(preset("dpo"), len(ex.rows))
    assert steps == 3  # batch 4, 3 epochs: one step per epoch
    w = ex.warning(steps)
    assert w.startswith("3 preference pairs teach DPO little (the DPO preset makes 3 optimizer steps on them).")
    assert "is 30 pairs (docs/results.md, 'Preference loop, unattended')" in w
    assert "teach ORPO little (this run makes 5 optimizer steps" in ex.warning(5, method="orpo", run=True)
    # the numbers are the repository's measurements: the fewest pairs a run of each preset was measured on
    results = (ROOT / "docs" / "results.md").read_text()
    assert "| 1 | 17 / 13 / 2 |" in results and labels.MEASURED_PAIRS["dpo"][0] == 17 + 13  # a seed of the loop
    assert "(32 pairs, 20/12 A/B labels" in results and labels.MEASURED_PAIRS["orpo"][0] == 32  # the presets' runs
    for heading in ("Preference loop, unattended", "Preference presets"):
        assert f"## {heading}" in results or f"### {heading}" in results
    ids = _pairs(30, "big")
    for pid in ids:
        _say(pid, "ana", "a")
    assert labels.export("dpo", "big").warning() is None
    assert labels.export("dpo", "big").warning(method="orpo").startswith("30 preference pairs teach ORPO little")


def test_optimizer_steps_as_the_trainer_counts_them():
    dpo = preset("dpo")
    assert optimizer_steps(dpo, 32) == 24  # docs/results.md: 32 pairs, "24 steps of 4 pairs"
    assert optimizer_steps(dpo, 1) == 3 and optimizer_steps(dpo, 5) == 6
    assert optimizer_steps(preset("dpo", grad_accum=2), 12) == 6  # 3 batches -> 2 steps an epoch (the last one short)
    assert optimizer_steps(preset("dpo", max_steps=7), 100) == 7
    assert optimizer_steps(preset("dpo", num_epochs=1.5), 8) == 3


def test_export_command_prints_counts_and_warning(data_dir, tmp_path):
    seventeen_labels()
    out = tmp_path / "prefs.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "labs.preference", "export", "--out", str(out), "--data-dir",
                        str(data_dir)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    line = json.loads(p.stdout)
    assert (line["rows"], line["labels"], line["pairs"]) == (3, 17, 11)
    assert line["left_out"] == {"tie": 4, "both_bad": 2, "no_majority": 2}
    assert "wrote 3 DPO rows from 17 labels on 11 labeled pairs; left out: 4 pairs tied" in p.stderr
    assert "warning: 3 preference pairs teach DPO little" in p.stderr
    assert len(out.read_text().splitlines()) == 3


def test_the_labelers_export_and_the_training_start_say_the_same(data_dir, tiny_model_dir, monkeypatch):
    from components import preference_tab as tab
    from components import preference_train_panel as panel
    seventeen_labels()
    path, note = tab.export("dpo", "all batches", "")
    note = note.replace("\\", "")
    assert note.startswith("Wrote 3 DPO rows from 17 labels on 11 labeled pairs; left out: 4 pairs tied")
    assert "3 preference pairs teach DPO little" in note and len(open(path).read().splitlines()) == 3
    _, empty = tab.export("dpo", "nothing-here", "")
    assert empty.startswith("⚠️ Nothing to export: 0 DPO rows from 0 labels")
    submitted = []  # the fast tier starts no job: the run engine's submit is replaced by a recorder

    def submit(recipe, config, name, actor=None):
        submitted.append(config)
        return SimpleNamespace(id="run-1", dir=data_dir / "runs" / "run-1")
    monkeypatch.setattr(panel.runs, "submit", submit)
    values = panel._form_values(preset("dpo", model=str(tiny_model_dir), max_steps=2, device="cpu"))
    run_id, msg = panel.start(str(tiny_model_dir), *values)
    msg = msg.replace("\\", "")  # the Markdown's escapes (what it shows is text)
    assert run_id == "run-1" and submitted[0]["max_steps"] == 2
    assert "3 labeled pairs: 3 to train on in 2 optimizer steps" in msg
    assert "From the store: 3 DPO rows from 17 labels on 11 labeled pairs; left out: 4 pairs tied" in msg
    assert "3 preference pairs teach DPO little (this run makes 2 optimizer steps on them)" in msg


def test_disagreements_say_what_each_person_saw(data_dir):
    from components import preference_tab as tab
    md, df = tab.agreement("all batches")
    assert list(df.columns) == tab.AGREE_COLUMNS and df.empty  # headers even with nothing to show
    (pid,) = _pairs(1, "b1")
    _say(pid, "ana", "a")
    _say(pid, "ben", "b")
    d = labels.agreement()["disagreements"][0]
    seen = {who: labels.as_seen(c, store.shown_order(pid, who)) for who, c in d["choices"].items()}
    assert d["seen"] == seen and (d["a"], d["b"]) == ("first 0", "second 0")
    md, df = tab.agreement("all batches")
    row = df.iloc[0].to_dict()
    assert row["ana"] == f"{seen['ana']} (answer 1)" and row["ben"] == f"{seen['ben']} (answer 2)"
    assert (row["answer 1"], row["answer 2"], row["majority"]) == ("first 0", "second 0", "no majority")


def test_names_are_text_not_markup(data_dir):
    from components import preference_tab as tab
    (pid,) = _pairs(1, "b1")
    store.label(pid, "**bo** [x](http://e.org) <b>", "A")
    md = tab._progress_md("**bo** [x](http://e.org) <b>")
    assert "\\*\\*bo\\*\\* \\[x\\]\\(http://e\\.org\\) &lt;b&gt;" in md and "**bo**" not in md


def test_the_page_reads_the_store_and_the_remembered_name(data_dir):
    from components import preference_tab as tab
    _pairs(2, "b1")
    store.label(1, "ana", "A")
    md, batches = tab.page_load("", "all batches")
    assert md == "2 pairs · 1 label by 1 annotator (ana 1)" and batches["choices"] == ["all batches", "b1"]
    name, md = tab.recall("ana", "", "all batches")
    assert name == "ana" and md.startswith("**ana: 1 of 2** labeled")
    assert tab.recall("ana", "ben", "all batches") == (tab.gr.skip(), tab.gr.skip())  # a typed name stays


# --------------------------------------------------------------------------- answers cut at max new tokens
def test_the_sampler_knows_which_answers_were_cut(tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from labs import generate
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    prompt = [[{"role": "user", "content": "Say hi"}]]
    [[text]] = generate.sample(model, tok, prompt, max_new_tokens=6)
    assert generate.sample(model, tok, prompt, max_new_tokens=6, return_ended=True) == [[(text, False)]]  # random
    with torch.no_grad():  # the greedy answer's third token (transformers' generate, which the lab's equals)
        ids = torch.tensor([generate.prompt_ids(tok, prompt[0])])
        third = model.generate(ids, max_new_tokens=3, do_sample=False)[0, -1].item()
    model.generation_config.eos_token_id = [third]  # ...now ends the answer
    [[(text, ended)]] = generate.sample(model, tok, prompt, max_new_tokens=6, return_ended=True)
    assert ended and len(tok(text, add_special_tokens=False)["input_ids"]) <= 2
    [[(_, ended)]] = generate.sample(model, tok, prompt, max_new_tokens=3, return_ended=True)
    assert ended  # an end token drawn at the last step still counts as an end


def test_pairs_store_and_show_cut_answers(data_dir, tiny_model_dir):
    from components import preference_tab as tab
    from labs import models
    from labs.preference import pairs
    loaded = models.CACHE.get(str(tiny_model_dir))
    steps = []
    ids = pairs.make_pairs([[{"role": "user", "content": "Say hi"}]] * 3, loaded, max_new_tokens=8, batch="cut",
                           progress=lambda d, t: steps.append((d, t)))
    assert steps == [(0, 3), (3, 3)]  # before the first batched call, then after it
    p = store.get_pair(ids[0], "ana")
    assert p["sampling"]["ended"] == {"a": False, "b": False} and pairs.cut(p) == {"a": True, "b": True,
                                                                                     "A": True, "B": True}
    a, b = tab._sides(p)
    assert a["label"] == "A · ✂ cut at 8 new tokens (the model had not finished)"
    assert b["label"].startswith("B · ✂")
    old = store.add_pairs([{"prompt": "q", "a": "x", "b": "y", "model_a": "m"}], batch="old")[0]
    assert pairs.cut(store.get_pair(old, "ana")) == {"a": False, "b": False, "A": False, "B": False}
    assert [u["label"] for u in tab._sides(store.get_pair(old, "ana"))] == ["A", "B"]  # not recorded: no mark


def test_make_pairs_says_loading_only_while_the_model_loads(data_dir, tiny_model_dir):
    from components import preference_tab as tab
    from labs import models
    models.CACHE.get(str(tiny_model_dir))
    seen = []
    out = list(tab.make_pairs(str(tiny_model_dir), "", "typed below", "Say hi\nName a colour", 2, 0.8, 0.95, 8, 0,
                              progress=lambda p, desc=None, **kw: seen.append((p, desc))))
    notes = [o[0] for o in out]
    assert not any("Loading the model" in n for n in notes)
    assert notes[0].startswith("⏳ Generating 2 pairs") and notes[-1].startswith("Made **2 pairs**")
    assert seen == [((0, 2), "generating pairs"), ((2, 2), "generating pairs")]
    assert "2 of them have an answer cut at 8 new tokens" in notes[-1]
    fresh = str(tiny_model_dir) + "/"  # another spec of the same files: not loaded yet
    notes = [o[0] for o in tab.make_pairs(fresh, "", "typed below", "Say hi", 1, 0.8, 0.95, 8, 0,
                                          progress=lambda *a, **k: None)]
    assert notes[0] == f"⏳ Loading the model `{fresh}` (its first use in this app; then the pairs are generated)"
