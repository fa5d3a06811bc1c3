"""The RLHF loop: scripted raters' tastes, ratings -> TRL rows (KTO, DPO, reward-model pairs) row by row, a round
on the tiny model whose update changes the adapter, the unattended CLI, reverts that reproduce a round's answers,
and ratings through the app's rlhf_rate that survive a SIGKILL."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, kill_app, start_app, store_stats
U = lambda text: [{"role": "user", "content": text}]  # noqa: E731
A = lambda text: [{"role": "assistant", "content": text}]  # noqa: E731


# --------------------------------------------------------------------------- scripted raters
def test_shorter_maps_word_counts_to_stars():
    from labs.feedback import raters
    stars = {n: raters.shorter_stars(" ".join(["w"] * n)) for n in (0, 1, 10, 11, 25, 26, 40, 41, 60, 61, 200)}
    assert stars == {0: 5, 1: 5, 10: 5, 11: 4, 25: 4, 26: 3, 40: 3, 41: 2, 60: 2, 61: 1, 200: 1}


def test_mentions_counts_whole_words_in_any_case():
    from labs.feedback import raters
    r = raters.get("mentions:water")
    assert r.name == "simulated:mentions:water"
    assert [r.stars(t) for t in ("Drink more.", "Water helps.", "water, WATER!", "Watery soup.", "hot-water bottle")] \
        == [1, 4, 5, 1, 4]
    assert raters.get("simulated:shorter").name == "simulated:shorter"
    for bad in ("longer", "mentions:", "mentions:two words", ""):
        with pytest.raises(raters.RaterError, match="rater"):
            raters.get(bad)


def test_scripted_verdicts_as_thumbs_and_best_of_k():
    from labs.feedback import raters
    s = [{"prompt": U("p"), "completion": " ".join(["w"] * n)} for n in (30, 5, 5, 70)] + \
        [{"prompt": U("q"), "completion": "a b"}, {"prompt": U("q"), "completion": "a " * 50}]
    r = raters.get("shorter")
    assert raters.verdicts(s, r, "stars") == [3.0, 5.0, 5.0, 1.0, 5.0, 2.0]
    assert raters.verdicts(s, r, "thumbs", threshold=4) == [1.0, 5.0, 5.0, 1.0, 5.0, 1.0]
    assert raters.verdicts(s, r, "best_of_k") == [1.0, 5.0, 1.0, 1.0, 5.0, 1.0]  # first of equals wins


# --------------------------------------------------------------------------- ratings -> rows
def _r(sid, rnd, prompt, completion, rating, rater="ana"):
    return {"sample_id": sid, "round": rnd, "prompt": U(prompt), "completion": completion, "rating": rating,
            "rater": rater, "simulated": 0}


RATINGS = [_r(1, 1, "p", "long answer", 2), _r(2, 1, "p", "short", 5), _r(3, 1, "p", "mid", 4),
           _r(3, 1, "p", "mid", 3, rater="ben"),           # two raters: sample 3 scores 3.5
           _r(4, 1, "q", "same", 4), _r(5, 1, "q", "same", 1),  # equal texts give no pair
           _r(6, 2, "p", "round two", 1)]                  # another round: not paired with round 1's


def test_scores_average_raters():
    from labs.feedback import rows
    rated = rows.scored(RATINGS)
    assert [(s["sample_id"], s["score"], s["n"]) for s in rated] == [(1, 2.0, 1), (2, 5.0, 1), (3, 3.5, 2),
                                                                      (4, 4.0, 1), (5, 1.0, 1), (6, 1.0, 1)]


def test_kto_rows_binarize_at_the_threshold_and_balance_weights():
    from labs.feedback import rows
    kto = rows.kto_rows(rows.scored(RATINGS), threshold=3.5)
    assert kto == [{"prompt": U("p"), "completion": A("long answer"), "label": False},
                   {"prompt": U("p"), "completion": A("short"), "label": True},
                   {"prompt": U("p"), "completion": A("mid"), "label": True},
                   {"prompt": U("q"), "completion": A("same"), "label": True},
                   {"prompt": U("q"), "completion": A("same"), "label": False},
                   {"prompt": U("p"), "completion": A("round two"), "label": False}]
    assert rows.kto_weights(kto) == (1.0, 1.0)
    label = lambda good, bad: [{"label": True}] * good + [{"label": False}] * bad  # noqa: E731
    assert rows.kto_weights(label(3, 9)) == (3.0, 1.0)
    assert rows.kto_weights(label(9, 3)) == (1.0, 3.0)
    assert rows.kto_weights(label(3, 7)) == (2.34, 1.0)  # 2.34 * 3 / 7 = 1.003: in KTO's [1, 4/3]
    assert rows.kto_weights(label(4, 0)) == (1.0, 1.0)


def test_dpo_pairs_within_one_prompt_and_round():
    from labs.feedback import rows
    assert rows.dpo_pairs(rows.scored(RATINGS)) == [
        {"prompt": U("p"), "chosen": A("short"), "rejected": A("long answer")},
        {"prompt": U("p"), "chosen": A("mid"), "rejected": A("long answer")},
        {"prompt": U("p"), "chosen": A("short"), "rejected": A("mid")}]


def test_reward_model_pairs_carry_margins_and_split_by_prompt():
    from labs.feedback import rows
    pairs = rows.rm_pairs(rows.scored(RATINGS))
    assert [(p["chosen"][0]["content"], p["rejected"][0]["content"], p["margin"]) for p in pairs] == [
        ("short", "long answer", 0.75), ("mid", "long answer", 0.375), ("short", "mid", 0.375)]
    many = [{"prompt": U(f"prompt {i}"), "chosen": A("a"), "rejected": A("b")} for i in range(200)]
    # a pair per prompt twice over: both pairs of a prompt land on the same side
    train, held = rows.split_pairs(many + many[::-1], 0.25)
    # held out by a hash of the prompt (the same split on every run and machine): 25% of the [0, 1000) buckets
    bucket = lambda p: int(hashlib.sha256(json.dumps(p, sort_keys=True).encode()).hexdigest(), 16) % 1000  # noqa: E731
    want = [p for p in many + many[::-1] if bucket(p["prompt"]) < 250]
    assert held == want and len(held) == 2 * 55 and len(train) == 400 - 110  # 55 of the 200 prompts
    assert not {json.dumps(p["prompt"]) for p in train} & {json.dumps(p["prompt"]) for p in held}
    assert rows.split_pairs(many + many[::-1], 0.25) == (train, held)  # the same split every time


def test_rating_stats_per_sample_then_over_samples():
    from labs.feedback.measure import rating_stats
    st = rating_stats(RATINGS[:4], threshold=4)
    assert (st["rated"], st["ratings"], st["mean"], st["thumbs_up"]) == (3, 4, 3.5, 1 / 3)
    assert st["sd"] == pytest.approx(((1.5 ** 2 + 1.5 ** 2 + 0) / 3) ** 0.5)
    assert st["raters"] == {"ana": 3, "ben": 1}


# --------------------------------------------------------------------------- the loop on disk, without a model
def _loop_with_samples(name, model, kind="stars", texts=("one", "two", "three", "four")):
    from labs import store
    from labs.feedback import loop
    loop.start(name, model=str(model), prompts=2, k=2, kind=kind)
    ids = store.add_samples([{"prompt": U(f"p{i // 2}"), "completion": t} for i, t in enumerate(texts)],
                            loop=name, round=1)
    with loop.edit(name) as st:
        st["rounds"].append({"round": 1, "seed": 0, "policy_run": None, "policy": "starting model", "kind": kind,
                             "threshold": 4.0, "k": 2, "sample_ids": ids, "prompts": ["p0", "p1"], "gen_s": 0,
                             "eval_s": 0, "kl": 0.0, "created_at": time.time(), "probe": [], "update": None,
                             "reverted": False})
    return ids


def test_best_of_k_and_thumbs_ratings_and_the_next_sample(data_dir, tiny_model_dir):
    from labs import store
    from labs.feedback import loop

    def rlhf_next(rater, name=None):  # what the tab's rlhf_next / rlhf_rate return, from the engine's functions
        s = loop.next_to_rate(rater, name)
        return (None, "", "") if s is None else (s["id"], store.prompt_text(s["prompt"]), s["completion"])

    def rlhf_rate(sample_id, rating, rater):
        return rlhf_next(rater, loop.rate(sample_id, rater, rating)["loop"])
    ids = _loop_with_samples("bok", tiny_model_dir, kind="best_of_k")
    assert rlhf_next("ana") == (ids[0], "p0", "one")
    assert rlhf_rate(ids[1], 5, "ana") == (ids[2], "p1", "three")  # best of p0: the other answer is rated 1 too
    assert [(r["sample_id"], r["rating"], r["kind"]) for r in store.ratings("bok")] == \
        [(ids[1], 5.0, "best_of_k"), (ids[0], 1.0, "best_of_k")]
    with pytest.raises(store.StoreError, match="best_of_k"):
        rlhf_rate(ids[2], 3, "ana")
    ids = _loop_with_samples("thumbs", tiny_model_dir, kind="thumbs")
    assert rlhf_next("ben") == (ids[0], "p0", "one")  # the newest round of any loop
    rlhf_rate(ids[0], "up", "ben")
    rlhf_rate(ids[1], "down", "ben")
    assert [r["rating"] for r in store.ratings("thumbs")] == [5.0, 1.0]
    assert loop.progress("thumbs", 1) == {"samples": 4, "raters": {"ben": 2}, "simulated": set()}


def test_rounds_ask_the_same_prompts_or_walk_through_the_pool(data_dir, tiny_model_dir):
    from labs.feedback import loop
    st = loop.start("walk", model=str(tiny_model_dir), prompts=8, seed=3, draw="walk")
    rounds = [loop.draw(st, s) for s in (3, 4, 5, 6)]
    texts = [[p[-1]["content"] for p in r] for r in rounds]
    assert all(len(set(t)) == 8 for t in texts)
    assert len({t for r in texts for t in r}) == 32  # 34 bundled prompts to rate: four rounds of 8 without a repeat
    assert loop.draw(st, 4) == rounds[1]  # a seed gives its prompts again
    st = loop.start("same", model=str(tiny_model_dir), prompts=8, seed=3)  # draw "same", the default
    assert [loop.draw(st, s) for s in (3, 4, 9)] == [rounds[0]] * 3


def test_bad_loop_settings_and_names_are_refused(data_dir, tiny_model_dir):
    from labs.feedback import loop
    for bad, msg in ((dict(k=0), "k:"), (dict(prompts=0), "prompts:"), (dict(kind="x"), "kind:"),
                     (dict(k=1, mode="dpo"), "k >= 2"), (dict(threshold=1), "threshold"),
                     (dict(temperature=0, k=2), "temperature"), (dict(draw="random"), "draw")):
        with pytest.raises(loop.LoopError, match=msg):
            loop.start("bad", model=str(tiny_model_dir), **bad)
    with pytest.raises(loop.LoopError, match="pool: prompts 'no-such-dataset'"):
        loop.start("nopool", model=str(tiny_model_dir), pool="no-such-dataset")
    assert not loop.exists("nopool")
    for name in ("..", "a/b", ".hidden", ""):
        with pytest.raises(loop.LoopError, match="loop name"):
            loop.start(name, model=str(tiny_model_dir))
    with pytest.raises(loop.LoopError, match="no ratings"):
        loop.start("empty", model=str(tiny_model_dir))
        _loop_with_samples("empty", tiny_model_dir)
        loop.submit_update("empty")


def test_cli_refuses_bad_arguments_in_one_line(tmp_path):
    env = {**os.environ, "LAB_DATA_DIR": str(tmp_path)}
    for args in (["--rounds", "0", "--rater", "shorter"], ["--rounds", "1", "--rater", "longer"],
                 ["--rounds", "1", "--rater", "shorter", "--mode", "ppo"], ["--rounds", "x"],
                 ["--rounds", "1", "--rater", "shorter", "--prompts", "0", "--data-dir", str(tmp_path)], ["--rater", "shorter"]):
        p = subprocess.run([sys.executable, "-m", "labs.feedback", *args], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 2, (args, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, p.stderr)


# --------------------------------------------------------------------------- with the tiny model
def _adapter_b(path: Path):
    from safetensors.torch import load_file
    w = load_file(str(path / "adapter_model.safetensors"))
    return {k: v for k, v in w.items() if "lora_B" in k}


@pytest.mark.slow
def test_one_round_on_the_tiny_model_changes_the_adapter(data_dir, tiny_model_dir):
    from labs import models, store
    from labs.feedback import loop, recipe
    from labs.feedback.config import UpdateConfig
    from labs.feedback.measure import policy_kl
    from labs.sft.recipe import NullSession
    loop.start("tiny", model=str(tiny_model_dir), prompts=3, k=2, max_new_tokens=24, threshold=4)
    r = loop.generate_round("tiny", loader=lambda spec: models.load(spec, device="cpu"))
    assert (r["round"], len(r["sample_ids"]), r["kl"]) == (1, 6, 0.0)  # the starting model: KL 0
    values = loop.rate_round("tiny", 1, "shorter")
    got = store.ratings("tiny", 1)
    assert [x["rater"] for x in got] == ["simulated:shorter"] * 6 and all(x["simulated"] == 1 for x in got)
    from labs.feedback import raters
    assert values == [float(raters.shorter_stars(s["completion"])) for s in store.samples("tiny", 1)]
    cfg = UpdateConfig(loop="tiny", round=1, mode="kto", model=str(tiny_model_dir), max_steps=2, batch_size=2,
                       learning_rate=1e-2, device="cpu")
    out = data_dir / "update"
    summary = recipe.train(cfg, NullSession(out))
    assert summary["step"] == 2 and summary["rows"] == 6
    assert [json.loads(x)["label"] for x in (out / "rows.jsonl").read_text().splitlines()].count(True) == \
        sum(v >= 4 for v in values)
    b = _adapter_b(out / "adapter")
    assert b and any(float(t.abs().max()) > 0 for t in b.values())  # LoRA B starts at zero: training moved it
    policy = models.load(str(out / "adapter"), device="cpu")
    samples = store.samples("tiny", 1)
    prompts, texts = [s["prompt"] for s in samples], [s["completion"] for s in samples]
    kl = policy_kl(policy.model, policy.tokenizer, prompts, texts)
    assert kl == pytest.approx(_kl_by_hand(policy.model, policy.tokenizer, prompts, texts), rel=1e-4)
    assert kl > 1e-9  # the update moved the policy away from the starting model


def _kl_by_hand(model, tok, prompts, completions) -> float:
    """Mean per completion token of KL(policy || starting model) over the whole vocabulary: one row at a time, no
    padding, in float64; the starting model is the same weights with the adapter off."""
    import torch
    model.eval()
    total, n = 0.0, 0
    for prompt, text in zip(prompts, completions):
        p = tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
        c = tok(text, add_special_tokens=False)["input_ids"]
        if not c:
            continue
        ids = torch.tensor([list(p) + list(c)])
        at = slice(len(p) - 1, len(p) + len(c) - 1)  # the positions whose next token is a completion token
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits[0, at].double(), -1)
            with model.disable_adapter():
                logq = torch.log_softmax(model(input_ids=ids).logits[0, at].double(), -1)
        total += float((logp.exp() * (logp - logq)).sum())
        n += len(c)
    return total / n


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["rloo", "grpo"])
def test_reward_model_then_rl_on_the_tiny_model(data_dir, tiny_model_dir, algo):
    """rm: a reward model from the rated pairs (accuracy on held-out prompts' pairs), then one RL step on a prompt
    nobody rated; the policy's adapter is saved and moved."""
    from labs import store
    from labs.feedback import loop, recipe, rows
    from labs.feedback.config import UpdateConfig
    from labs.sft.recipe import NullSession
    texts = [t for i in range(8) for t in (f"short {i}", f"a much longer answer number {i} that rambles on")]
    ids = _loop_with_samples("rm", tiny_model_dir, texts=texts)
    for sid in ids:  # the short answer of each prompt gets 5 stars, the long one 2
        loop.rate(sid, "ana", 5 if loop.sample_by_id(sid)["completion"].startswith("short") else 2)
    cfg = UpdateConfig(loop="rm", round=1, mode="rm", model=str(tiny_model_dir), rm_steps=2, rl_steps=1, rl_prompts=1,
                       rl_k=2, max_new_tokens=8, batch_size=4, device="cpu", rl_algo=algo)
    pairs = rows.rm_pairs(rows.scored(store.ratings("rm")))
    train, held = rows.split_pairs(pairs, cfg.rm_held_out)
    assert len(pairs) == 8 and held  # these 8 prompts hold some out
    out = data_dir / "rm-update"
    s = recipe.train(cfg, NullSession(out))
    assert (s["rm_pairs_train"], s["rm_pairs_held_out"]) == (len(train), len(held))
    # the share of held-out pairs whose chosen answer the saved reward model scores higher, scored here pair by pair
    assert s["rm_held_out_accuracy"] == pytest.approx(_reward_accuracy(tiny_model_dir, out / "reward_model", held))
    assert s["rl_algo"] == algo and s["step"] == 1
    assert s["rl_prompt_source"] == "unrated prompts"  # p0..p7 were rated; the bundled prompts were not
    assert (out / "reward_model" / "adapter_config.json").exists()
    assert any(float(t.abs().max()) > 0 for t in _adapter_b(out / "adapter").values())


def _reward_accuracy(base_dir, adapter_dir, pairs) -> float:
    """Share of pairs whose chosen answer gets the higher reward: the base model with a one-output head and the saved
    LoRA adapter (and head), each conversation alone through the chat template, without padding."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(base_dir)
    base = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=1)
    base.config.pad_token_id = tok.pad_token_id
    rm = PeftModel.from_pretrained(base, adapter_dir).eval()

    def reward(messages):
        ids = tok.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
        with torch.no_grad():
            return float(rm(input_ids=torch.tensor([ids])).logits[0, 0])
    wins = [reward(p["prompt"] + p["chosen"]) > reward(p["prompt"] + p["rejected"]) for p in pairs]
    return sum(wins) / len(wins)


@pytest.mark.slow
def test_cli_rounds_then_revert_reproduces_a_rounds_answers(tmp_path, tiny_model_dir, monkeypatch):
    """Two unattended rounds (generate, rate, a run-engine update each), then reverts: the next round from round r's
    policy with r's seed gives r's answers, word for word."""
    from labs import models, paths, runs, store
    from labs.feedback import loop
    data = tmp_path / "lab_data"
    p = subprocess.run([sys.executable, "-m", "labs.feedback", "--rounds", "2", "--rater", "shorter", "--prompts", "2",
                        "--k", "2", "--max-new-tokens", "24", "--steps", "2", "--model", str(tiny_model_dir),
                        "--loop", "cli", "--data-dir", str(data)], cwd=ROOT, capture_output=True, text=True,
                       timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("round ")]
    assert [ln.split(":")[0] for ln in lines] == ["round 1", "round 2"]
    for ln in lines:
        assert ln.split(": ", 1)[1].startswith("mean rating ") and "gen_s=" in ln and "update_s=" in ln
        assert "update=kto:finished" in ln
    monkeypatch.setenv("LAB_DATA_DIR", str(data))
    paths.set_data_dir(data)
    st = loop.load("cli")
    r1, r2 = st["rounds"]
    assert r1["policy_run"] is None and r2["policy_run"] == r1["update"]["run_id"]
    assert st["policy"]["run_id"] == r2["update"]["run_id"]  # the newest update's adapter is the policy
    assert (runs.get(r2["update"]["run_id"]).dir / "adapter" / "adapter_model.safetensors").exists()
    load = lambda spec: models.load(spec, device="cpu")  # noqa: E731
    texts = lambda n: [s["completion"] for s in store.samples("cli", n)]  # noqa: E731

    loop.revert("cli", 2)
    assert loop.load("cli")["policy"]["run_id"] == r2["policy_run"]
    r3 = loop.generate_round("cli", seed=r2["seed"], loader=load)
    assert r3["prompts"] == r2["prompts"] and texts(3) == texts(2)
    assert r3["kl"] == pytest.approx(r2["kl"], rel=1e-4) and r3["kl"] > 0

    loop.revert("cli", 1)
    hist = {h["round"]: h for h in loop.history("cli")}
    assert [hist[n]["reverted"] for n in (1, 2, 3)] == [False, True, True]
    r4 = loop.generate_round("cli", seed=r1["seed"], loader=load)
    assert r4["policy_run"] is None and texts(4) == texts(1)
    run = loop.submit_update("cli")  # continues from round 1's policy: a fresh adapter on the starting model
    assert runs.get(run.id).config["init_run"] == ""
    runs.kill(run.id)


# --------------------------------------------------------------------------- the app: ratings survive SIGKILL
@pytest.mark.slow
def test_ratings_through_rlhf_rate_survive_sigkill(tmp_path, tiny_model_dir):
    from gradio_client import Client
    data_dir = tmp_path / "lab_data"
    proc, url = start_app(data_dir, "--model", str(tiny_model_dir), "--no-preload")
    try:
        client = Client(url, verbose=False)
        note, _ = client.predict("kill-test", str(tiny_model_dir), "typed below", "Say hi\nName a colour\nCount to 3",
                                 3, 2, 0.9, 0.95, 8, 0, "stars", 4.0, "kto", api_name="/rlhf_start")
        assert note.startswith("**kill\\-test**"), note  # the name as text: Markdown's characters escaped
        note = client.predict("kill-test", "", api_name="/rlhf_generate")
        assert note.startswith("Round **1**: 6 answers"), note
        rated = {}
        for who, stars in (("ana", 4), ("ben", 2)):
            sid, prompt, _ = client.predict(who, api_name="/rlhf_next")
            while sid is not None:
                assert prompt in ("Say hi", "Name a colour", "Count to 3")
                rated.setdefault(who, []).append(sid)
                sid, prompt, _ = client.predict(sid, stars, who, api_name="/rlhf_rate")
        assert sorted(rated["ana"]) == sorted(rated["ben"]) == list(range(1, 7))
        kill_app(proc)
        st = store_stats(data_dir)
        assert (st["samples"], st["ratings"], st["raters"]) == ("6", "12", "2")
        # the restarted app shows the same history
        proc, url = start_app(data_dir, "--model", str(tiny_model_dir), "--no-preload")
        client = Client(url, verbose=False)
        assert client.predict("ana", api_name="/rlhf_next")[0] is None
        (row,) = client.predict("kill-test", api_name="/rlhf_history")
        assert (row["round"], row["rated"], row["mean ± sd"]) == (1, "6/6", "3.00 ± 0.00")
    finally:
        kill_app(proc)
