"""The SFT recipe on a tiny model: the loss mask, training changes the weights, early stopping,
resume, the headless CLI and two data-parallel processes under torchrun."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labs.sft.config import SFTRunConfig
from labs.data.mask import row_preview, sft_row
from labs.sft.data import load_splits
from tests.helpers import ROOT, resume_for_more_steps


@pytest.fixture
def tiny_jsonl(tmp_path) -> Path:
    rows = load_splits("instruct", ["extraction"])["train"][:12]
    p = tmp_path / "tiny.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return p


def _cfg(model, data, **kw) -> SFTRunConfig:
    base = dict(model=str(model), dataset=str(data), data_tasks="", max_steps=3, batch_size=4, eval_steps=2,
                logging_steps=1, eval_rows=0, max_length=128, learning_rate=1e-3, device="cpu")
    return SFTRunConfig(**{**base, **kw})


def test_mask_trains_the_answer_and_its_end_of_turn(default_tokenizer):
    row = load_splits("instruct", ["extraction"])["train"][0]
    toks = [(t, m) for t, _, m in row_preview(default_tokenizer, row, 512)[0]]
    trained = "".join(t for t, m in toks if m)
    answer = row["completion"][0]["content"]
    assert trained.startswith(answer) and "<|im_end|>" in trained  # EOS (= pad token) is learned
    assert not any(m for t, m in toks if "user" in t)
    assert all(m for *_, m in row_preview(default_tokenizer, row, 512, completion_only=False)[0])
    # truncation: the preview is cut where the trainer cuts, and says the answer is gone
    cut, report = row_preview(default_tokenizer, row, 20)
    assert len(cut) == 20 and not any(m for *_, m in cut) and report["no_trained_token"] == 1


def test_truncation_report_warns_when_max_length_cuts_the_answer(default_tokenizer, tiny_model_dir, tiny_jsonl):
    from labs.sft.recipe import NullSession, build_trainer
    from labs.sft.config import ConfigError
    from labs.data.mask import tokenize_row, truncation_report
    rows = load_splits("instruct", ["extraction"])["train"][:6]
    whole = truncation_report([tokenize_row(default_tokenizer, r, 512) for r in rows], 512)
    assert whole == {"rows": 6, "truncated": 0, "no_trained_token": 0, "max_length": 512}
    prompt_len = min(len(tokenize_row(default_tokenizer, r, 512)["input_ids"]) for r in rows) - 30
    cut = truncation_report([tokenize_row(default_tokenizer, r, prompt_len) for r in rows], prompt_len)
    assert cut["truncated"] == 6 and cut["no_trained_token"] == 6 and "whole answer of 6 of 6" in cut["warning"]
    with pytest.raises(ConfigError, match="max_length: 24 cuts the answer of every training row"):
        build_trainer(_cfg(tiny_model_dir, tiny_jsonl, max_length=24), NullSession(str(tiny_jsonl.parent / "r")))


def test_messages_rows_learn_every_assistant_turn(default_tokenizer):
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    assert sft_row({"messages": msgs}) == {"messages": msgs}
    trained = "".join(t for _, t_id, m in row_preview(default_tokenizer, {"messages": msgs})[0] if m
                      for t in [default_tokenizer.decode([t_id])])
    assert trained.startswith("hello<|im_end|>") and "4<|im_end|>" in trained
    assert "hi" not in trained.replace("hello", "") and "2+2" not in trained


@pytest.mark.slow
def test_three_steps_change_the_trainable_parameters(tiny_model_dir, tiny_jsonl, tmp_path):
    import torch
    from labs.sft.recipe import NullSession, build_trainer
    for method in ("lora", "freeze"):
        cfg = _cfg(tiny_model_dir, tiny_jsonl, method=method, freeze_top_n=1, eval_steps=0, num_epochs=1)
        trainer, *_ = build_trainer(cfg, NullSession(tmp_path / method))
        named = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
        frozen = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if not p.requires_grad}
        assert named and frozen
        out = trainer.train()
        assert trainer.state.global_step == 3 and math.isfinite(out.training_loss)
        params = dict(trainer.model.named_parameters())
        changed = [n for n, v in named.items() if not torch.equal(v, params[n].detach())]
        assert changed, f"{method}: no trainable parameter changed"
        assert all(torch.equal(v, params[n].detach()) for n, v in frozen.items()), f"{method}: a frozen weight moved"
        if method == "freeze":  # only the top layer (and the final norm) train
            assert all(".layers.1." in n or n.endswith("model.norm.weight") for n in named)


@pytest.mark.slow
def test_early_stopping_stops_when_validation_loss_stalls(tiny_model_dir, tiny_jsonl, tmp_path):
    from labs.sft.recipe import NullSession, build_trainer
    # 1e-12 cannot move fp32 weights of this size: the eval loss repeats exactly -> no improvement
    cfg = _cfg(tiny_model_dir, tiny_jsonl, method="freeze", freeze_top_n=1, learning_rate=1e-12, max_steps=12,
               eval_steps=1, early_stopping_patience=2, lr_scheduler="constant", warmup=0)
    trainer, *_ = build_trainer(cfg, NullSession(tmp_path / "es"))
    trainer.train()
    assert trainer.state.global_step == 3  # step 1 sets the best, steps 2 and 3 do not improve on it
    assert trainer.state.best_model_checkpoint.endswith("checkpoint-1")  # the best one is kept and loaded


def _run_dir(cfg: SFTRunConfig):
    from labs import runs
    return runs.create("sft", cfg.to_dict())


@pytest.mark.slow
def test_headless_cli_then_resume(data_dir, tiny_model_dir, tiny_jsonl):
    from labs.sft.recipe import main
    run = _run_dir(_cfg(tiny_model_dir, tiny_jsonl, max_steps=2, eval_rows=2))
    env = {**os.environ, "LAB_DATA_DIR": str(data_dir), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "labs.sft", "--config", str(run.dir / "config.yaml")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert run.status()["state"] == "finished"
    assert (run.dir / "adapter" / "adapter_config.json").exists()
    assert (run.dir / "checkpoints" / "checkpoint-2").exists()
    metrics = run.metrics()
    assert any("loss" in r and math.isfinite(r["loss"]) for r in metrics)
    assert any("eval_generations" in r for r in metrics)
    final = [r for r in metrics if r.get("final")][-1]
    assert "test/exact_match" in final and "test/base/exact_match" in final
    assert (run.dir / "eval_predictions.jsonl").read_text().count("\n") == 1  # the one validation row
    rec = json.loads((run.dir / "record.json").read_text())
    assert rec["data_hash"] and rec["model_source"]["kind"] == "local" and rec["world_size"] == 1

    # resume the finished run for two more steps, in process
    resume_for_more_steps(run, main, max_steps=4, checkpoint="checkpoint-2", eval_rows=0)


def test_cli_refuses_a_bad_config_in_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rate: -1\n")
    p = subprocess.run([sys.executable, "-m", "labs.sft", "--config", str(bad)], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert p.stderr.strip() == "error: learning_rate: above 0 and at most 0.01, got -1"


@pytest.mark.slow
def test_torchrun_two_processes(data_dir, tiny_model_dir, tiny_jsonl):
    run = _run_dir(_cfg(tiny_model_dir, tiny_jsonl, max_steps=2, batch_size=2))
    env = {**os.environ, "LAB_DATA_DIR": str(data_dir), "OMP_NUM_THREADS": "1"}
    torchrun = Path(sys.executable).with_name("torchrun")
    p = subprocess.run([str(torchrun), "--nproc_per_node", "2", "-m", "labs.sft", "--config",
                        str(run.dir / "config.yaml")], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert run.status()["state"] == "finished"
    assert json.loads((run.dir / "record.json").read_text())["world_size"] == 2
    final = [r for r in run.metrics() if r.get("final")][-1]
    assert final["world_size"] == 2 and final["step"] == 2


def test_dataset_by_saved_name_jsonl_path_and_messages(data_dir, tmp_path):
    import datasets
    from labs import data
    from labs.sft.data import DataError
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
            for i in range(20)]
    data.save_dataset("chats", datasets.DatasetDict({"train": datasets.Dataset.from_list(rows)}))
    sp = load_splits("chats")
    assert len(sp["train"]) + len(sp["validation"]) == 20
    assert sp["train"][0]["messages"][-1]["role"] == "assistant"  # conversations stay whole (every turn trained)
    p = tmp_path / "rows.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert len(load_splits(str(p), max_train_rows=5)["train"]) == 5
    with pytest.raises(DataError, match="nope"):
        load_splits("nope")


@pytest.mark.parametrize("method,padding_free", [("lora", True), ("full", False)])
def test_answer_head_gives_trls_loss_and_gradients(tiny_model_dir, tiny_jsonl, tmp_path, method, padding_free):
    """Scoring only the trained positions (labs.sft.trainer) is an optimisation, not a different loss."""
    import torch
    from labs.sft.recipe import NullSession, build_trainer
    cfg = _cfg(tiny_model_dir, tiny_jsonl, method=method, padding_free=padding_free)
    trainer, *_ = build_trainer(cfg, NullSession(tmp_path / "r"))
    assert trainer.answer_head
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    assert (batch["labels"] == -100).float().mean() > 0.5  # mostly prompt: most positions are skipped
    model = trainer.model.train()
    results = []
    for answer_head in (True, False):
        trainer.answer_head, trainer._total_train_tokens = answer_head, 0
        model.zero_grad()
        loss = trainer.compute_loss(model, dict(batch), num_items_in_batch=None)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}
        results.append((loss.item(), grads, dict(trainer._metrics["train"])))
        trainer._metrics["train"].clear()
    (ours, g_ours, m_ours), (trls, g_trl, m_trl) = results
    assert ours == pytest.approx(trls, rel=1e-5)
    assert g_ours.keys() == g_trl.keys() and g_ours
    for n in g_ours:
        assert torch.allclose(g_ours[n], g_trl[n], rtol=1e-4, atol=1e-6), n
    for k in ("entropy", "mean_token_accuracy", "num_tokens"):
        assert m_ours[k] == pytest.approx(m_trl[k], rel=1e-4), k


def test_row_attention_gives_sdpas_loss_and_gradients(tiny_model_dir, tiny_jsonl, tmp_path):
    """Per-row attention on a padding-free batch (labs.sft.trainer) equals SDPA over the batch under its mask."""
    import torch
    from labs.sft.recipe import NullSession, build_trainer
    from labs.sft.trainer import ROW_ATTENTION
    trainer, tok, *_ = build_trainer(_cfg(tiny_model_dir, tiny_jsonl), NullSession(tmp_path / "r"))
    base = trainer.model.get_base_model()
    assert base.config._attn_implementation == ROW_ATTENTION
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    assert len(batch["cu_seq_lens_q"]) == 5  # 4 rows in one sequence
    model = trainer.model.train()
    results = []
    for impl in (ROW_ATTENTION, "sdpa"):
        base.set_attn_implementation(impl)
        model.zero_grad()
        loss = trainer.compute_loss(model, dict(batch))
        loss.backward()
        results.append((loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (ours, g_ours), (sdpa, g_sdpa) = results
    assert ours == pytest.approx(sdpa, rel=1e-5)
    for n in g_ours:
        assert torch.allclose(g_ours[n], g_sdpa[n], rtol=1e-4, atol=1e-6), n
    # generation (no row boundaries) goes through SDPA with its padding mask: same answers either way
    from labs.generate import greedy
    prompts = [r["prompt"] for r in load_splits(str(tiny_jsonl))["train"][:3]]
    model.eval()
    base.set_attn_implementation(ROW_ATTENTION)
    ours = greedy(model, tok, prompts, max_new_tokens=6)
    base.set_attn_implementation("sdpa")
    assert ours == greedy(model, tok, prompts, max_new_tokens=6)
