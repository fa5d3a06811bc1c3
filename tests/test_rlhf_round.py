"""The RLHF loop as its tab shows it, without a browser: the settings a round uses, a new loop's name, undoing a
rating, a round's progress, answers cut at max_new_tokens, an update's queue and run time, and the tables' columns.
Rounds are generated on the tiny in-process model (well under a second each)."""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

U = lambda text: [{"role": "user", "content": text}]  # noqa: E731


def _load(spec):
    from labs import models
    return models.load(spec, device="cpu", dtype="fp32")


def _round_by_hand(name, texts, kind="stars", k=2):
    """A round of stored answers (k per prompt) without a model, as generate_round records it."""
    from labs import store
    from labs.feedback import loop
    number = max((r["round"] for r in loop.load(name)["rounds"]), default=0) + 1
    ids = store.add_samples([{"prompt": U(f"p{i // k}"), "completion": t} for i, t in enumerate(texts)],
                            loop=name, round=number)
    with loop.edit(name) as st:
        st["rounds"].append({"round": number, "seed": 0, "policy_run": None, "policy": "starting model",
                             "kind": kind, "threshold": 4.0, "k": k, "sample_ids": ids, "prompts": [], "gen_s": 0,
                             "eval_s": 0, "kl": 0.0, "created_at": time.time(), "probe": [], "update": None,
                             "reverted": False})
    return ids


# --------------------------------------------------------------------------- settings: the form is what runs
def test_a_round_uses_the_settings_saved_before_it(data_dir, tiny_model_dir):
    """The tab's Generate saves the form first: a round then has the form's prompts x k answers."""
    from components import rlhf_tab as tab
    from labs import store
    from labs.feedback import loop
    loop.start("form", model=str(tiny_model_dir), prompts=4, k=2, max_new_tokens=4)
    assert len(loop.generate_round("form", loader=_load)["sample_ids"]) == 8
    form = tab.FORM.values(tab.LoopSettings.from_dict({**loop.load("form")["settings"], "prompts": 3, "k": 3}))
    assert loop.settings_changes("form", **dict(zip(tab.FORM.names, form))) == [
        "Prompts per round: 4 → 3", "Answers per prompt (k): 2 → 3"]
    note = tab.settings_note("form", "prompts", "", *form)
    assert note.startswith("✎ Not saved yet: Prompts per round: 4 → 3 · Answers per prompt \\(k\\): 2 → 3.")
    assert "Prompts per round: 4 → 3" in tab.save_settings("form", "prompts", "", *form)
    assert tab.settings_note("form", "prompts", "", *form) == ""  # saved: loop.json says what the form says
    assert len(loop.generate_round("form", loader=_load)["sample_ids"]) == 9
    assert len(store.samples("form", 2)) == 9
    assert "next round: 3 prompts × k=3" in tab.loop_status("form")
    bad = tab.FORM.values(tab.LoopSettings.from_dict({**loop.load("form")["settings"], "k": 3}))
    bad[tab.FORM.names.index("kind")] = "best_of_k"
    bad[tab.FORM.names.index("k")] = 12
    assert "⚠️" in tab.settings_note("form", "prompts", "", *bad)
    with pytest.raises(tab.gr.Error, match="at most 8 answers"):
        tab.save_settings("form", "prompts", "", *bad)
    assert loop.load("form")["settings"]["k"] == 3  # nothing saved


def test_typed_prompts_show_in_the_form_and_count_as_a_change(data_dir, tiny_model_dir):
    from components import rlhf_tab as tab
    from labs.feedback import loop
    loop.start("typed", model=str(tiny_model_dir), pool="typed", typed="Say hi\nName a colour")
    shown = tab.fill_settings("typed")
    assert shown[:2] == ["typed below", "Say hi\nName a colour"]
    assert loop.settings_changes("typed", "Say hi\n\nName a colour\n") == []  # blank lines are no prompts
    assert loop.settings_changes("typed", "Say hi\nCount to 3") == ["typed prompts"]


# --------------------------------------------------------------------------- a new name: a new loop, no errors
def test_a_new_or_refused_loop_name_is_a_state_not_an_error(data_dir, tiny_model_dir):
    from components import rlhf_tab as tab
    from labs.feedback import loop
    loop.start("old", model=str(tiny_model_dir), prompts=2, k=2)
    _round_by_hand("old", ["a", "b", "c", "d"])
    assert "New loop **fresh**" in tab.loop_status("fresh") and "Start / continue" in tab.loop_status("fresh")
    assert loop.current("fresh") is None
    view = tab.rating_view("fresh", "ana")
    assert view[0] is None and view[-1].startswith("No round to rate yet.")  # not the old loop's answers
    plot, table, probe, revert_to = tab.history_view("fresh")
    assert list(table["value"].columns) == list(tab.ALWAYS) and table["value"].empty
    assert list(probe["value"].columns) == list(tab.PROBE_EMPTY)
    assert revert_to["choices"] == []
    assert tab.fill_settings("fresh") == [tab.gr.skip()] * (2 + len(tab.FORM.names))
    assert tab.loop_status("a/b").startswith("⚠️ loop name 'a/b': is a path")
    assert tab.rating_view("a/b", "ana")[0] is None and tab.history_view("a/b")[1]["value"].empty
    form = tab.FORM.values(tab.LoopSettings())
    assert tab.settings_note("a/b", "prompts", "", *form) == tab.save_settings("a/b", "prompts", "", *form) == ""
    assert tab.loop_status("a_*b*") .startswith("⚠️ loop name 'a\\_\\*b\\*'")  # characters, not emphasis


# --------------------------------------------------------------------------- undo
def test_undo_takes_back_ones_last_rating_in_the_newest_round(data_dir, tiny_model_dir):
    from components import rlhf_tab as tab
    from labs import store
    from labs.feedback import loop
    loop.start("undo", model=str(tiny_model_dir), prompts=2, k=2, kind="best_of_k")
    old = _round_by_hand("undo", ["a", "b", "c", "d"], kind="best_of_k")
    loop.rate(old[0], "ana", 5)
    ids = _round_by_hand("undo", ["e", "f", "g", "h"], kind="best_of_k")
    loop.rate(ids[1], "ana", 5)  # best of p0: e is rated 1 at the same time
    loop.rate(ids[1], "ben", 5)
    loop.rate(ids[3], "ana", 5)
    assert tab.rlhf_next("ana", "undo")[0] is None
    out = loop.undo_rating("ana", "undo")
    assert (out["round"], [(u["sample_id"], u["rating"]) for u in out["undone"]]) == (2, [(ids[2], 1.0),
                                                                                           (ids[3], 5.0)])
    assert tab.rlhf_next("ana", "undo")[0] == ids[2]  # the prompt is to rate again
    assert tab.rlhf_undo("ana", "undo")[0] == ids[0]  # then the pick before it, whole
    assert tab.rlhf_undo("ana", "undo") == (None, "", "")  # round 1's rating stays: an update may have used it
    assert sorted((r["sample_id"], r["rater"]) for r in store.ratings("undo")) == [
        (old[0], "ana"), (old[1], "ana"), (ids[0], "ben"), (ids[1], "ben")]
    loop.start("stars", model=str(tiny_model_dir), prompts=2, k=2)
    ids = _round_by_hand("stars", ["a", "b", "c", "d"])
    for sid, v in zip(ids, (4, 2, 5)):
        loop.rate(sid, "ana", v)
    view = tab.undo("stars", "ana")
    assert view[:2] == [ids[2], "p1"] and view[2]["value"] == "c" and "ana: 2/4" in view[-1]
    assert [r["sample_id"] for r in store.ratings("stars")] == ids[:2]


# --------------------------------------------------------------------------- progress, cut answers
def test_a_round_reports_real_progress_and_marks_cut_answers(data_dir, tiny_model_dir):
    from peft import LoraConfig, get_peft_model

    from components import rlhf_tab as tab
    from labs import store
    from labs.feedback import loop
    loop.start("prog", model=str(tiny_model_dir), prompts=3, k=2, max_new_tokens=5)
    seen = []
    loaded = _load(str(tiny_model_dir))
    policy = SimpleNamespace(model=get_peft_model(loaded.model, LoraConfig(r=2, target_modules=["q_proj"])),
                             tokenizer=loaded.tokenizer)  # an adapter: KL is measured (0 while B is zero)
    r = loop.generate_round("prog", loader=lambda spec: policy, progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0 and fractions[-1] == 1.0
    assert len(set(fractions)) > 8  # a step per token, not one constant
    text = [m for _, m in seen]
    assert text[0].startswith("loading the policy")
    assert "generating 3 prompts × 2 answers: 0/3 prompts done · token 5 of at most 5" in text
    assert "measuring KL to the starting model: 6/6 answers" in text
    assert any(m.startswith("answering the 4 held-out prompts") and m.endswith("token 1 of at most 5") for m in text)
    order = [next(i for i, m in enumerate(text) if m.startswith(p)) for p in ("loading", "generating", "measuring",
                                                                               "answering")]
    assert order == sorted(order)
    # a random tiny model never ends an answer within 5 tokens: every one is cut, and said so
    samples = store.samples("prog", r["round"])
    assert r["cut"] == 6 and all(loop.cut_at(s) == 5 for s in samples)
    assert tab.answer_text(samples[0]) == f"{samples[0]['completion']} … (cut at 5 tokens)"
    # every token an end token: every answer ended (empty), none marked
    loaded.model.generation_config.eos_token_id = list(range(len(loaded.tokenizer)))
    r = loop.generate_round("prog", loader=lambda spec: loaded)
    samples = store.samples("prog", r["round"])
    assert r["cut"] == 0 and all(loop.cut_at(s) is None and s["completion"] == "" for s in samples)
    assert tab.answer_text(samples[0]) == "(empty answer)"


# --------------------------------------------------------------------------- the history tables
def test_an_updates_queue_time_and_run_time_are_shown_apart(data_dir, tiny_model_dir):
    from components import rlhf_tab as tab
    from labs import runs
    from labs.feedback import loop
    loop.start("times", model=str(tiny_model_dir), prompts=2, k=2)
    _round_by_hand("times", ["a", "b", "c", "d"])
    run = runs.create("feedback", {"loop": "times", "round": 1}, name="times-r1")
    t = 1_700_000_000.0
    run.set_status(state="finished", queued_at=t, started_at=t + 1240, finished_at=t + 1725)
    with loop.edit("times") as st:
        st["rounds"][0]["update"] = {"run_id": run.id, "mode": "kto", "submitted_at": t, "update_s": 1725.0}
    (row,) = loop.history("times")
    assert (row["queue_s"], row["run_s"], row["update_state"]) == (1240, 485, "finished")
    (shown,) = tab.rlhf_history("times")
    assert (shown["update"], shown["update queue + run s"]) == ("kto · finished", "1240 + 485")


def test_tables_have_named_columns_and_widths_that_fit(data_dir, tiny_model_dir):
    from components import rlhf_tab as tab
    from labs.feedback import loop
    loop.start("cols", model=str(tiny_model_dir), prompts=2, k=2)
    for n in range(5):
        _round_by_hand("cols", ["a", "b", "c", "d"])
    with loop.edit("cols") as st:
        for r in st["rounds"]:
            r["probe"] = [{"prompt": f"q{i}", "answer": "a long answer " * 20} for i in range(4)]
    _, table, probe, _ = tab.history_view("cols")
    assert list(probe["value"].columns) == ["held-out prompt"] + [f"round {n} (starting model)" for n in (1, 3, 4, 5)]
    for t in (table, probe):
        widths = [float(w.rstrip("%")) for w in t["column_widths"]]
        assert len(widths) == len(t["value"].columns) and sum(widths) == pytest.approx(100, abs=0.5)
    assert list(table["value"].columns) == [*tab.ALWAYS, "seed"]
