"""DPO and ORPO on people's labels: the config's messages, the recipe on a tiny model (trains, logs TRL's
reward keys, writes its before/after files), the answer-only LM head and the precomputed reference against
TRL's own path, ORPO's log odds ratio against a hand computation, Wilson intervals against published
values, the CLI's one-line refusal, and (slow) the real default model learning a labeled preference."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from labs import store
from labs.preference.config import PRESETS, ConfigError, PreferenceRunConfig, preset
from tests.helpers import ROOT, resume_for_more_steps
REWARD_KEYS = ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen",
               "logps/rejected")


def fill_store(n: int = 6, batch: str = "b1", annotator: str = "ana") -> list[int]:
    """n labeled pairs: the short answer is chosen (shown order respected, as a person would click)."""
    ids = store.add_pairs([{"prompt": [{"role": "user", "content": f"Name a colour, please ({i})."}],
                            "a": "Blue.", "b": "Well, there are many colours, and one of them is blue." + " Yes." * i,
                            "model_a": "m", "model_b": "m"} for i in range(n)], batch=batch)
    for pid in ids:
        p = store.get_pair(pid, annotator)
        store.label(pid, annotator, "A" if p["A"] == "Blue." else "B")
    return ids


def tiny_cfg(model_dir, method: str = "dpo", **kw) -> PreferenceRunConfig:
    base = dict(model=str(model_dir), max_steps=3, batch_size=2, max_length=128, eval_prompts=2, max_new_tokens=4,
                device="cpu", precision="fp32", save_steps=2)
    return preset(method, **{**base, **kw})


# --------------------------------------------------------------------------- config
@pytest.mark.parametrize("change,message", [
    ({"method": "ppo"}, "method: one of dpo, orpo, got 'ppo'"),
    ({"beta": 0}, "beta: above 0 and at most 10, got 0"),
    ({"loss_type": "sft"}, "loss_type: one of sigmoid, hinge, ipo, robust, nca_pair, bco_pair, sppo_hard, aot, "
                           "aot_unpaired, apo_zero, apo_down, discopop, sigmoid_norm, got 'sft' (for the supervised term "
                           "use sft_weight)"),
    ({"method": "orpo", "sft_weight": 0.1}, "sft_weight: only for DPO; ORPO's loss already includes the supervised "
                                            "term - set it to 0 or pick method dpo"),
    ({"method": "orpo", "loss_type": "ipo"}, "loss_type: only for DPO; ORPO has one loss of its own - set it back "
                                             "to sigmoid or pick method dpo"),
    ({"lora_targets": "q_proj,lm_head"}, "lora_targets: do not target lm_head"),
    ({"eval_fraction": 1}, "eval_fraction: at least 0 and below 1, got 1"),
    ({"batch_size": "four"}, "batch_size: expected a whole number, got 'four'"),
    ({"learning_rate": 0.5}, "learning_rate: above 0 and at most 0.01, got 0.5"),
    ({"data": ""}, "data: give 'store', 'store:BATCH', a saved dataset's name or a .jsonl path"),
    ({"data": "store:"}, "data: name the batches after 'store:'"),
])
def test_config_refuses_in_user_terms(change, message):
    with pytest.raises(ConfigError) as e:
        PreferenceRunConfig(**change)
    assert str(e.value).startswith(message)


def test_config_round_trips_and_presets_are_valid():
    from labs.preference.config import HELP
    from dataclasses import fields
    assert set(HELP) == {f.name for f in fields(PreferenceRunConfig)}  # one help line per field, no stale ones
    for name in PRESETS:
        cfg = preset(name)
        assert cfg.method == name
        assert PreferenceRunConfig.from_dict(yaml.safe_load(cfg.to_yaml())) == cfg
    assert preset("dpo").command("run.yaml") == "python -m labs.preference --config run.yaml"
    assert PreferenceRunConfig(data="store:b1, b2").store_batches() == ["b1", "b2"]
    assert PreferenceRunConfig(data="pairs.jsonl").store_batches() is None
    with pytest.raises(ConfigError, match="^betta: unknown setting"):
        PreferenceRunConfig.from_dict({"betta": 0.1})


def test_rows_from_the_store_its_batches_and_a_file(data_dir):
    from labs.preference.recipe import load_rows
    with pytest.raises(ConfigError, match="the store gives 0 preference pair"):
        load_rows(PreferenceRunConfig())
    fill_store(3, "b1")
    fill_store(2, "b2")
    assert len(load_rows(PreferenceRunConfig())) == 5
    rows = load_rows(PreferenceRunConfig(data="store:b2"))
    assert len(rows) == 2 and set(rows[0]) == {"prompt", "chosen", "rejected"}
    assert rows[0]["chosen"] == [{"role": "assistant", "content": "Blue."}]
    with pytest.raises(ConfigError, match=r"data: no batch 'nope' in the store \(batches: b1, b2\)"):
        load_rows(PreferenceRunConfig(data="store:nope"))
    bundled = ROOT / "assets" / "preference" / "preference.jsonl"
    assert len(load_rows(PreferenceRunConfig(data=str(bundled)))) == 47
    with pytest.raises(ConfigError, match="data: file missing.jsonl not found"):
        load_rows(PreferenceRunConfig(data="missing.jsonl"))
    from labs import data  # a dataset saved by the Dataset builder, by name (any preference format converts)
    ab = [{"prompt": f"q{i}", "response_A": "yes", "response_B": "no", "preference": "AB"[i % 2]} for i in range(4)]
    data.save_dataset("ab-prefs", {"train": ab})
    rows = load_rows(PreferenceRunConfig(data="ab-prefs"))
    assert [r["chosen"][0]["content"] for r in rows] == ["yes", "no", "yes", "no"]
    with pytest.raises(ConfigError, match="^data: 'nope' is not 'store', 'store:BATCH' or a data file, and no saved dataset named 'nope'"):
        load_rows(PreferenceRunConfig(data="nope"))


# --------------------------------------------------------------------------- the recipe
@pytest.mark.slow  # trains 3 steps (trainer.train) and generates before and after
@pytest.mark.parametrize("method", ["dpo", "orpo"])
def test_recipe_trains_from_store_rows_and_logs_rewards(method, data_dir, tiny_model_dir, tmp_path):
    from safetensors.torch import load_file
    from labs.preference.recipe import train
    from labs.runs.session import recipe_session
    fill_store(6)
    cfg = tiny_cfg(tiny_model_dir, method)
    path = tmp_path / f"{method}.yaml"
    path.write_text(cfg.to_yaml())
    with recipe_session(path, recipe="preference") as session:
        summary = train(cfg, session)
    run = session.run
    assert run.status()["state"] == "finished" and run.recipe == "preference"
    logged = [r for r in run.metrics() if "loss" in r]
    assert [r["step"] for r in logged] == [1, 2, 3] and all(math.isfinite(r["loss"]) for r in logged)
    for key in REWARD_KEYS:
        assert all(isinstance(r.get(key), float) and math.isfinite(r[key]) for r in logged), key
    for r in logged:  # TRL's reward keys, as its trainers define them, on batches of 2 pairs
        assert r["rewards/margins"] == pytest.approx(r["rewards/chosen"] - r["rewards/rejected"], abs=1e-6), r
        assert r["rewards/accuracies"] in (0.0, 0.5, 1.0), r  # the share of the 2 pairs whose chosen reward is higher
        if method == "orpo":  # ORPO's reward is beta x the answer's mean log-probability
            assert r["rewards/chosen"] == pytest.approx(cfg.beta * r["logps/chosen"], rel=1e-5), r
            assert r["rewards/rejected"] == pytest.approx(cfg.beta * r["logps/rejected"], rel=1e-5), r
    if method == "dpo":  # DPO's reward is beta x the log-ratio to the reference: 0 at step 1, before any update
        assert logged[0]["rewards/chosen"] == pytest.approx(0, abs=1e-6), logged[0]
        assert logged[0]["rewards/rejected"] == pytest.approx(0, abs=1e-6), logged[0]
    # LoRA's B matrices start at zero: any non-zero one means training moved the adapter
    weights = load_file(str(run.dir / "adapter" / "adapter_model.safetensors"))
    moved = [k for k, v in weights.items() if "lora_B" in k and v.abs().sum() > 0]
    assert moved and len(moved) == sum("lora_B" in k for k in weights)
    assert summary["step"] == 3 and summary["pairs"] == 6
    m = json.loads((run.dir / "eval_metrics.json").read_text())
    assert m["method"] == method and m["train"]["pairs"] == 6 and "held_out" not in m
    for when in ("before", "after"):
        assert set(m["train"][when]) == {"reward_accuracy", "reward_margin", "log_odds_accuracy", "log_odds_ratio",
                                         "logps_chosen", "logps_rejected"}
    if method == "dpo":  # the starting model is its own reference: every reward is 0 before training
        assert m["train"]["before"]["reward_accuracy"] == 0 and m["train"]["before"]["reward_margin"] == 0
    odds_rows = [json.loads(x) for x in (run.dir / "odds.jsonl").read_text().splitlines()]
    assert len(odds_rows) == 6 and odds_rows[0]["chosen"] == "Blue."
    ba = [json.loads(x) for x in (run.dir / "before_after.jsonl").read_text().splitlines()]
    assert len(ba) == 2 and set(ba[0]) == {"prompt", "before", "after", "before_words", "after_words"}
    assert json.loads((run.dir / "record.json").read_text())["rows"] == {"train": 6, "held_out": 0}


def test_held_out_pairs_only_when_there_are_enough():
    from labs.preference.recipe import split_rows
    rows = [{"prompt": str(i)} for i in range(20)]
    train, held = split_rows(rows, 0.25, seed=1)
    assert len(held) == 5 and len(train) == 15 and not {r["prompt"] for r in train} & {r["prompt"] for r in held}
    assert split_rows(rows, 0.25, seed=1) == (train, held)  # seeded
    assert split_rows(rows, 0.1, seed=1) == (rows, [])  # 2 pairs: too few to report, all stay in training


def _trainer(tiny_model_dir, tmp_path, **kw):
    from labs.preference.recipe import build_trainer
    from labs.sft.recipe import NullSession
    rows = [{"prompt": [{"role": "user", "content": f"Tell me about item {i} in a few words."}],
             "chosen": [{"role": "assistant", "content": "It is small." + " Quite." * i}],
             "rejected": [{"role": "assistant", "content": "Item is large and heavy, really." * (1 + i % 2)}]}
            for i in range(4)]
    return build_trainer(tiny_cfg(tiny_model_dir, batch_size=4, **kw), NullSession(tmp_path / "r"), rows)


def test_completion_head_gives_trls_loss_and_gradients(tiny_model_dir, tmp_path, monkeypatch):
    """Projecting only answer positions through the LM head (recipe.completion_head) is a speed-up, not another loss."""
    import torch
    import trl.trainer.utils as tu
    trainer, *_ = _trainer(tiny_model_dir, tmp_path, precompute_ref=False)
    assert trainer.completion_head  # on by default off CUDA
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    scored = batch["completion_mask"][:, 1:].sum().item()
    assert scored < 0.5 * batch["completion_mask"][:, 1:].numel()  # prompt and padding are most positions
    seen = []  # rows the chunked head projects, per forward
    apply = tu._ChunkedLogProbFunction.apply
    monkeypatch.setattr(tu._ChunkedLogProbFunction, "apply", lambda h, *a: seen.append(h.shape[0]) or apply(h, *a))
    model = trainer.model.train()
    results = []
    for head in (True, False):
        trainer.completion_head, seen[:] = head, []
        model.zero_grad()
        loss = trainer.compute_loss(model, dict(batch))
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        metrics = {k: v[-1] for k, v in trainer._metrics["train"].items()}
        ref = trainer.compute_ref_log_probs(model, dict(batch))
        results.append((loss.item(), grads, metrics, ref, list(seen)))
    (ours, g_ours, m_ours, r_ours, n_ours), (trls, g_trl, m_trl, r_trl, n_trl) = results
    assert n_ours == [scored, scored, scored] and n_trl == [batch["input_ids"][:, 1:].numel()] * 3
    assert ours == pytest.approx(trls, rel=1e-5)
    assert g_ours.keys() == g_trl.keys() and g_ours
    for n in g_ours:
        assert torch.allclose(g_ours[n], g_trl[n], rtol=1e-4, atol=1e-7), n
    for k in REWARD_KEYS + ("entropy", "mean_token_accuracy", "logits/chosen"):
        assert m_ours[k] == pytest.approx(m_trl[k], rel=1e-4, abs=1e-7), k
    for a, b in zip(r_ours, r_trl):
        assert torch.allclose(a, b, rtol=1e-5)


def test_precomputed_reference_is_the_starting_model(tiny_model_dir, tmp_path):
    """The reference pass before training gives what the adapter-off forward gives at a step."""
    import torch
    trainer, *_ = _trainer(tiny_model_dir, tmp_path, precompute_ref=True)
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    assert "ref_chosen_logps" in batch
    # move the adapter away from its zero start, so that 'adapter off' and 'policy' differ
    for n, p in trainer.model.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p.data, std=0.5)
    chosen, rejected = trainer.compute_ref_log_probs(trainer.model, dict(batch))
    assert torch.allclose(batch["ref_chosen_logps"], chosen.float(), rtol=1e-4)
    assert torch.allclose(batch["ref_rejected_logps"], rejected.float(), rtol=1e-4)


# --------------------------------------------------------------------------- odds
def test_log_odds_ratio_by_hand_on_a_tiny_model(tiny_model_dir, default_tokenizer):
    import torch
    from transformers import AutoModelForCausalLM
    from labs.preference import odds
    tok = default_tokenizer
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    rows = [{"prompt": [{"role": "user", "content": "Is the sky blue?"}],
             "chosen": [{"role": "assistant", "content": "Yes, on a clear day."}],
             "rejected": [{"role": "assistant", "content": "No."}]},
            {"prompt": [{"role": "user", "content": "Two plus two?"}],
             "chosen": [{"role": "assistant", "content": "Four."}],
             "rejected": [{"role": "assistant", "content": "It is five, I think, or maybe six."}]}]

    def mean_logp(prompt, answer):  # one sequence, no batching, every step written out
        p = tok.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
        full = tok.apply_chat_template(prompt + answer, tokenize=True, return_dict=True)["input_ids"]
        assert full[:len(p)] == p
        with torch.no_grad():
            logits = model(torch.tensor([full])).logits[0].double()
        logp = [torch.log_softmax(logits[t - 1], -1)[full[t]].item() for t in range(len(p), len(full))]
        assert tok.decode(full[len(p):]).startswith(answer[0]["content"])  # the answer and its end of turn
        return sum(logp) / len(logp)

    scores = odds.pair_scores(model, tok, rows, batch_size=4)
    for one, batched in zip(odds.pair_scores(model, tok, rows, batch_size=1), scores):  # padding changes nothing
        assert one == pytest.approx(batched, rel=1e-5)
    for r, s in zip(rows, scores):
        mc, mr = mean_logp(r["prompt"], r["chosen"]), mean_logp(r["prompt"], r["rejected"])
        pc, pr = math.exp(mc), math.exp(mr)
        by_hand = math.log(pc / (1 - pc)) - math.log(pr / (1 - pr))
        assert s["chosen_mean_logp"] == pytest.approx(mc, rel=1e-5)
        assert s["rejected_mean_logp"] == pytest.approx(mr, rel=1e-5)
        assert s["log_odds_ratio"] == pytest.approx(by_hand, abs=2e-5)  # float32 logits vs float64 by hand


def test_log_odds_matches_trls_orpo_formula_and_tokenization(tiny_model_dir, tmp_path):
    import torch
    from trl.experimental.orpo.orpo_trainer import log1mexp
    from labs.preference import odds
    for c, r in ((-0.9, -1.4), (-0.05, -3.0), (-2.5, -0.3)):
        c_t, r_t = torch.tensor(c, dtype=torch.float64), torch.tensor(r, dtype=torch.float64)
        trl_value = ((c_t - r_t) - (log1mexp(c_t) - log1mexp(r_t))).item()  # ORPOTrainer.odds_ratio_loss
        assert odds.log_odds_ratio(c, r) == pytest.approx(trl_value, rel=1e-9)
    # the pairs are tokenized as TRL's DPOTrainer tokenizes its training rows
    trainer, tok, splits, _ = _trainer(tiny_model_dir, tmp_path, precompute_ref=False)
    for row, prepared in zip(splits["train"], trainer.train_dataset):
        mine = odds.tokenize_pair(tok, row)
        assert mine == {k: prepared[k] for k in ("prompt_ids", "chosen_ids", "rejected_ids")}
    assert odds.WHY_NOT_A_COLUMN.count("model's own probabilities") == 1


# --------------------------------------------------------------------------- win rate
def test_wilson_interval_known_values():
    from labs.preference.winrate import win_rate, wilson
    # Newcombe (1998), Statistics in Medicine 17:857, table I (95% Wilson score intervals)
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert wilson(15, 148) == pytest.approx((0.0624, 0.1605), abs=1e-4)
    assert wilson(0, 20) == pytest.approx((0.0, 0.1611), abs=1e-4)
    assert wilson(1, 29) == pytest.approx((0.0061, 0.1718), abs=1e-4)
    r = win_rate(wins=7, losses=2, ties=2)  # a tie is half a win: 8 of 11
    assert r["rate"] == pytest.approx(8 / 11) and (r["low"], r["high"]) == pytest.approx(wilson(8, 11))
    assert "half" in r["note"]


def test_winrate_from_blind_ab_labels(data_dir):
    from labs.preference.labels import to_dpo  # noqa: F401 - the A/B batch is stored like any pair
    from labs.preference.winrate import win_rate, winrate_from_labels
    trained, base = "runs/r1", "default"
    sides = [(trained, base), (base, trained)] * 3  # the trained model on either side
    ids = store.add_pairs([{"prompt": f"q{i}", "a": f"a{i}", "b": f"b{i}", "model_a": ma, "model_b": mb}
                           for i, (ma, mb) in enumerate(sides)], batch="ab")
    # stored choices: trained wins pairs 0, 1, 2; base wins 3; tie on 4; pair 5 unlabeled
    wanted = {0: "a", 1: "b", 2: "a", 3: "a", 4: "tie"}
    for i, stored in wanted.items():
        order = store.shown_order(ids[i], "eva")
        shown = stored if stored == "tie" else ("A" if order[0] == stored else "B")
        store.label(ids[i], "eva", shown)
    r = winrate_from_labels("ab", trained)
    assert (r["wins"], r["losses"], r["ties"], r["n"], r["pairs"]) == (3, 1, 1, 5, 6)
    assert r["rate"] == pytest.approx(3.5 / 5) and r["low"] == pytest.approx(win_rate(3, 1, 1)["low"])
    with pytest.raises(store.StoreError, match="no pair has 'other' on one side"):
        winrate_from_labels("ab", "other")


# --------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("text,message", [
    ("beta: -1\n", "error: beta: above 0 and at most 10, got -1"),
    ("- 1\n- 2\n", "error: --config: {path}: should hold 'setting: value' lines, not a list"),
    ("method: dpo\nbeta: [\n", None),
])
def test_cli_refuses_a_bad_config_in_one_line(tmp_path, text, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    p = subprocess.run([sys.executable, "-m", "labs.preference", "--config", str(bad)], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    if message:
        assert lines[0] == message.format(path=bad)


@pytest.mark.slow
def test_run_engine_job_then_resume(data_dir, tiny_model_dir):
    from labs import runs
    from labs.preference.recipe import main
    fill_store(4)
    run = runs.submit("preference", tiny_cfg(tiny_model_dir, max_steps=2, eval_prompts=0).to_dict(), name="pref")
    st = runs.wait(run.id, timeout_s=300)
    assert st["state"] == "finished", run.log_tail(30)
    assert (run.dir / "checkpoints" / "checkpoint-2").exists() and (run.dir / "adapter").is_dir()
    resume_for_more_steps(run, main, max_steps=4, checkpoint="checkpoint-2")


# --------------------------------------------------------------------------- the real default model
@pytest.mark.slow
@pytest.mark.integration
def test_real_model_learns_a_labeled_preference(data_dir, tmp_path):
    """8 labeled pairs whose chosen answers are in capitals (the base model favours the lower-case ones):
    DPO and ORPO both raise the reward accuracy on them."""
    from labs.preference.recipe import train
    from labs.sft.recipe import NullSession
    prompts = ["Name a fruit.", "Name a colour.", "Name a planet.", "Name an ocean.", "Name a metal.",
               "Name a bird.", "Name a river.", "Name a tree."]
    answers = ["An apple.", "Blue.", "Mars.", "The Pacific.", "Iron.", "A robin.", "The Nile.", "An oak."]
    ids = store.add_pairs([{"prompt": [{"role": "user", "content": p}], "a": a.upper(), "b": a, "model_a": "m",
                            "model_b": "m"} for p, a in zip(prompts, answers)], batch="caps")
    for pid in ids:
        shown = store.get_pair(pid, "ana")
        store.label(pid, "ana", "A" if shown["A"].isupper() else "B")
    for method in ("dpo", "orpo"):
        cfg = preset(method, data="store:caps", max_steps=8, batch_size=4, eval_prompts=0, device="cpu")
        train(cfg, NullSession(tmp_path / method))
        m = json.loads((tmp_path / method / "eval_metrics.json").read_text())["train"]
        assert m["before"]["log_odds_accuracy"] <= 0.25, m  # the base model prefers lower case
        assert m["after"]["reward_accuracy"] > m["before"]["reward_accuracy"], (method, m)
        assert m["after"]["reward_margin"] > m["before"]["reward_margin"], (method, m)
        if method == "dpo":  # 8 steps of DPO turn most pairs; ORPO's odds term moves more slowly at this size
            assert m["after"]["reward_accuracy"] >= 0.75, m


# --------------------------------------------------------------------------- the training form (in the labeler tab)
@pytest.mark.slow
def test_training_form_starts_a_run_and_shows_before_after(data_dir, tiny_model_dir, serve_tab):
    from types import SimpleNamespace
    from labs import runs
    from components import preference_train_panel as ui
    form = dict(zip(ui.FIELDS, ui._form_values(tiny_cfg(tiny_model_dir, max_steps=2))))
    tab = SimpleNamespace(__name__="preference_train_panel", build=ui.build_training)
    with serve_tab(tab, data_dir, str(tiny_model_dir)) as client:
        values = client.predict("orpo", api_name="/pref_train_preset")
        assert dict(zip(ui.FIELDS, values))["method"] == "orpo" and "ORPO" in values[-1]
        yaml_text, cmd = client.predict(str(tiny_model_dir), *form.values(), api_name="/pref_train_config_yaml")
        assert PreferenceRunConfig.from_dict(yaml.safe_load(yaml_text)) == tiny_cfg(tiny_model_dir, max_steps=2)
        assert cmd.startswith("python -m labs.preference --config run.yaml")
        # refusals name the field, and no run is made: a bad value, then a store with nothing to train on
        _, msg = client.predict(str(tiny_model_dir), *dict(form, beta=-1).values(), api_name="/pref_train_start")
        assert "beta: above 0 and at most 10, got -1" in msg
        _, msg = client.predict(str(tiny_model_dir), *form.values(), api_name="/pref_train_start")
        assert "label at least 2 pairs" in msg and not runs.list_runs()
        fill_store(4)
        run_id, msg = client.predict(str(tiny_model_dir), *form.values(), api_name="/pref_train_start")
        assert run_id in msg and "4 labeled pairs" in msg
        assert runs.wait(run_id, timeout_s=300)["state"] == "finished", runs.get(run_id).log_tail(30)
        res = client.predict(run_id, api_name="/pref_train_results")
        # the blind A/B pass: pairs of the trained run vs its starting model, labeled, then the win rate
        assert "no blind A/B batch" in client.predict(run_id, api_name="/pref_winrate")
        msg = client.predict(run_id, 2, 0.8, 8, 0, api_name="/pref_ab_make")
        assert "Stored **2 blind pairs** in batch **ab-" in msg
        ab = [b for b in store.batches() if b["batch"].startswith("ab-")]
        assert len(ab) == 1 and ab[0]["model_a"] == str(runs.get(run_id).dir)
        for pid in [p["id"] for p in store.pairs(ab[0]["batch"])]:
            store.label(pid, "eva", "tie")
        wr = client.predict(run_id, api_name="/pref_winrate")
        assert "win rate 50% (95% CI" in wr and "over 2 labeled pairs: 0 won, 0 lost, 2 tied" in wr
    assert res["state"] == "finished" and res["eval_metrics"]["train"]["pairs"] == 4
    assert len(res["before_after"]) == 2 and len(res["odds"]) == 4
    fig, ba, md, odds_df, odds_fig, why = ui.details(run_id)
    assert [ln.get_xdata().tolist() for ln in fig.axes[0].lines] == [[1, 2], [1, 2]]  # chosen and rejected rewards
    assert len(ba) == 2 and len(odds_df) == 4 and "reward accuracy (training pairs, n=4)" in md
    assert DPO_NOTE in md and "cannot change as this model learns" in why


DPO_NOTE = "the starting model is its own reference"


# --------------------------------------------------------------------------- blind A/B pass and the unattended loop
def _tiny_adapter(tiny_model_dir, out):
    """A LoRA adapter on the tiny model whose B matrices are not zero (so adapter on and off differ)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 1.0)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(out)
    return out


def test_blind_ab_pairs_are_held_out_and_never_trained_on(data_dir, tiny_model_dir, tmp_path):
    from labs.preference.pairs import PairsError, load_prompts
    from labs.preference.recipe import load_rows
    from labs.preference.winrate import AB_PREFIX, STARTING, make_ab_pairs, winrate_from_labels
    adapter = str(_tiny_adapter(tiny_model_dir, tmp_path / "adapter"))
    batch, ids = make_ab_pairs(adapter, n=3, max_new_tokens=6, seed=0)
    assert batch.startswith(AB_PREFIX) and len(ids) == 3
    held_out = [p[0]["content"] for p in load_prompts("prompts", "held_out")[:3]]
    got = store.pairs(batch)
    assert [p["prompt"][0]["content"] for p in got] == held_out
    assert {(p["model_a"], p["model_b"]) for p in got} == {(adapter, STARTING)}
    assert any(p["a"] != p["b"] for p in got)  # adapter on vs off: different models answered
    # the annotator is shown both sides, in an order of its own, without the model names
    shown = store.get_pair(ids[0], "eva")
    assert {shown["A"], shown["B"]} == {got[0]["a"], got[0]["b"]}
    for pid in ids:
        store.label(pid, "eva", "A")
    r = winrate_from_labels(batch, adapter)
    assert r["n"] == 3 and r["wins"] + r["losses"] == 3
    # "every batch of the store" leaves the A/B pass out: its prompts are the test
    fill_store(2, batch="labels")
    rows = load_rows(PreferenceRunConfig(data="store"))
    assert len(rows) == 2 and all(r["prompt"][0]["content"].startswith("Name a colour") for r in rows)
    with pytest.raises(PairsError, match="not a LoRA run or adapter"):
        make_ab_pairs(str(tiny_model_dir), n=1, max_new_tokens=4)


@pytest.mark.slow  # makes pairs, trains the preset's DPO steps on the tiny model, then an A/B pass
def test_simulate_runs_the_whole_loop_on_a_tiny_model(data_dir, tiny_model_dir, monkeypatch):
    from labs.preference import simulate
    from labs.preference.pairs import load_prompts
    from labs.preference.winrate import STARTING, wilson
    monkeypatch.setattr(simulate, "PAIR_TOKENS", 12)
    lines = []
    r = simulate.run(4, str(tiny_model_dir), "dpo", out=lines.append)
    labels_line, ab_line = lines
    assert labels_line.startswith("pairs=4 ") and "labels: A=" in labels_line
    assert sum(r["labels"].values()) == 4
    # every label went through the store as the simulated annotator, in its shown order
    assert store.stats()["annotators"] == 1 and store.progress(simulate.ANNOTATOR)["done"] >= 4
    wr = r["winrate"]
    assert ab_line.startswith("blind A/B") and (Path(r["run_dir"]) / "adapter" / "adapter_config.json").exists()
    # the win rate, counted again from the A/B batch's stored answers: the rater prefers fewer words
    ab = store.pairs(wr["batch"])
    count = {"won": 0, "lost": 0, "tied": 0}
    for p in ab:
        mine, other = (p["a"], p["b"]) if p["model_a"] == wr["trained"] else (p["b"], p["a"])
        n_mine, n_other = len(mine.split()), len(other.split())
        count["won" if n_mine < n_other else "lost" if n_mine > n_other else "tied"] += 1
    assert (wr["wins"], wr["losses"], wr["ties"], wr["n"]) == (count["won"], count["lost"], count["tied"], len(ab))
    assert len(ab) == len(load_prompts("prompts", "held_out")) and {p["model_b"] for p in ab} == {STARTING}
    assert wr["rate"] == pytest.approx((count["won"] + count["tied"] / 2) / len(ab))
    assert (wr["low"], wr["high"]) == pytest.approx(wilson(count["won"] + count["tied"] / 2, len(ab)))
    # the trait: mean words of the greedy answers to the held-out prompts, before and after training
    ba = [json.loads(x) for x in (Path(r["run_dir"]) / "before_after.jsonl").read_text().splitlines()]
    assert len(ba) == json.loads((Path(r["run_dir"]) / "eval_metrics.json").read_text())["generations"]["prompts"] > 0
    assert r["before"] == pytest.approx(sum(len(x["before"].split()) for x in ba) / len(ba))
    assert r["after"] == pytest.approx(sum(len(x["after"].split()) for x in ba) / len(ba))
