"""The LoRA calculator's counts equal PEFT's own, for Llama, GPT-2 (fused Conv1D c_attn) and BERT.

PEFT is the oracle: the same config applied with get_peft_model, get_nb_trainable_parameters()."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoModelForCausalLM, BertConfig, GPT2Config, LlamaConfig

from labs import lora
from labs.lora import LoraError
from labs.lora.__main__ import main as lora_cli

ROOT = Path(__file__).resolve().parents[1]

CONFIGS = {
    "llama": (lambda: LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2), AutoModelForCausalLM,
              ["q_proj,v_proj", "all-linear", "gate_proj,down_proj,o_proj", "k_proj", "embed_tokens,q_proj"]),
    "gpt2": (lambda: GPT2Config(vocab_size=1000, n_embd=64, n_layer=2, n_head=4, n_positions=128,
                                bos_token_id=0, eos_token_id=0), AutoModelForCausalLM,
             ["c_attn", "all-linear", "c_attn,c_proj", "c_fc", "wte,c_attn"]),
    "bert": (lambda: BertConfig(vocab_size=1000, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                                num_attention_heads=4), AutoModel,
             ["query,value", "all-linear", "dense", "query,key,value,dense"]),
}
SETTINGS = [(1, False, False), (8, False, True), (4, True, False)]  # (rank, DoRA, rsLoRA)


def peft_count(model_cls, cfg, targets: str, r: int, dora: bool, rslora: bool) -> tuple[int, int]:
    from peft import LoraConfig, get_peft_model
    torch.manual_seed(0)
    model = model_cls.from_config(cfg)
    tm = "all-linear" if targets == "all-linear" else targets.split(",")
    pm = get_peft_model(model, LoraConfig(r=r, lora_alpha=16, target_modules=tm, use_dora=dora, use_rslora=rslora))
    return pm.get_nb_trainable_parameters()


@pytest.mark.parametrize("arch", list(CONFIGS))
def test_count_equals_peft(arch):
    make_cfg, model_cls, target_sets = CONFIGS[arch]
    shapes = lora.model_shapes(config=make_cfg())  # meta device: no weights
    checked = 0
    for targets in target_sets:
        for r, dora, rslora in SETTINGS:
            c = lora.count_trainable(shapes, r, targets, use_dora=dora)
            assert (c.trainable, c.total_params) == peft_count(model_cls, make_cfg(), targets, r, dora, rslora), \
                (arch, targets, r, dora)
            assert sum(row["trainable params"] for row in c.rows) == c.trainable
            checked += 1
    assert checked == len(target_sets) * len(SETTINGS)


def test_gpt2_fused_c_attn_and_all_linear_excludes_lm_head():
    shapes = lora.model_shapes(config=CONFIGS["gpt2"][0]())
    c = lora.count_trainable(shapes, 8, "c_attn")
    (row,) = c.rows
    assert row["shape in→out"] == "64→192 (Conv1D)"           # q, k, v fused: out = 3 x 64
    assert row["trainable params"] == 2 * 8 * (64 + 192)         # 2 layers x r(in + out)
    names = {m.name for m in lora.matched_modules(shapes, "all-linear")}
    assert shapes.output_embedding == "lm_head" and "lm_head" not in names
    assert shapes.linear_names() == ["c_attn", "c_proj", "c_fc"]


def test_bert_targets_match_peft_suffix_rule():
    shapes = lora.model_shapes(config=CONFIGS["bert"][0]())
    dense = [m.name for m in lora.matched_modules(shapes, ["dense"])]
    # attention.output.dense, intermediate.dense, output.dense per layer + the pooler
    assert len(dense) == 2 * 3 + 1 and "pooler.dense" in dense


def test_adapter_file_size_is_exact(tmp_path):
    from peft import LoraConfig, get_peft_model
    cfg = CONFIGS["llama"][0]()
    shapes = lora.model_shapes(config=cfg)
    for targets, dora in (("q_proj,v_proj", False), ("all-linear", True)):
        pm = get_peft_model(AutoModelForCausalLM.from_config(cfg),
                            LoraConfig(r=4, lora_alpha=8, target_modules=targets if targets == "all-linear"
                                       else targets.split(","), use_dora=dora))
        out = tmp_path / targets.replace(",", "_")
        pm.save_pretrained(out)
        c = lora.count_trainable(shapes, 4, targets, use_dora=dora)
        assert lora.adapter_file_bytes(shapes, c) == (out / "adapter_model.safetensors").stat().st_size


def test_bad_input_says_what_is_wrong():
    shapes = lora.model_shapes(config=CONFIGS["llama"][0]())
    with pytest.raises(LoraError, match="'foo' is not a layer.*q_proj"):
        lora.count_trainable(shapes, 8, "q_proj,foo")
    with pytest.raises(LoraError, match="rank 0"):
        lora.count_trainable(shapes, 0, "q_proj")
    with pytest.raises(LoraError, match="targets"):
        lora.count_trainable(shapes, 8, "")


def test_scaling_matches_peft():
    from peft import LoraConfig, get_peft_model
    cfg = CONFIGS["llama"][0]()
    for rs in (False, True):
        pm = get_peft_model(AutoModelForCausalLM.from_config(cfg),
                            LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj"], use_rslora=rs))
        peft_s = pm.base_model.model.model.layers[0].self_attn.q_proj.scaling["default"]
        assert lora.scaling(32, 16, rs) == pytest.approx(peft_s)
    # the measured ‖ΔW x‖ / ‖x‖ against its expectation: A ~ U(±1/√d) has variance 1/(3d), B ~ N(0, 1/d), so
    # E‖B A x‖² = r ‖x‖² / (3d) and the size is about scaling · √(r / 3d), d = 256 (4 draws: within 8%)
    for r in (1, 4, 16, 64):
        for rs in (False, True):
            want = lora.scaling(16, r, rs) * math.sqrt(r / (3 * 256))
            assert lora.update_magnitude(r, 16, rs) == pytest.approx(want, rel=0.08), (r, rs)
    # rsLoRA keeps the update's size flat in rank; alpha/r lets it shrink about like 1/sqrt(r)
    small, big = lora.update_magnitude(4, 16, False), lora.update_magnitude(64, 16, False)
    assert big / small == pytest.approx((4 / 64) ** 0.5, rel=0.25)
    small, big = lora.update_magnitude(4, 16, True), lora.update_magnitude(64, 16, True)
    assert big / small == pytest.approx(1.0, rel=0.25)


def test_cli_on_config_only_dir(tmp_path, capsys):
    cfg_dir = tmp_path / "cfg-only"
    CONFIGS["gpt2"][0]().save_pretrained(cfg_dir)
    assert sorted(p.name for p in cfg_dir.iterdir()) == ["config.json"]
    assert lora_cli(["count", "--model", str(cfg_dir), "--rank", "8", "--targets", "c_attn"]) == 0
    out = capsys.readouterr().out
    assert "c_attn" in out and f"trainable params: {2 * 8 * (64 + 192):,}" in out
    assert lora_cli(["count", "--model", str(cfg_dir), "--rank", "8", "--targets", "q_proj"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'q_proj' is not a layer" in err and "c_attn" in err


@pytest.mark.slow
def test_cli_default_model_and_exit_codes(tmp_path):
    """The real command: prints each target's count and the total; bad input exits 2 with one line."""
    env_cmd = [sys.executable, "-m", "labs.lora", "count", "--rank"]
    ok = subprocess.run(env_cmd + ["8", "--targets", "q_proj,v_proj"], cwd=ROOT, capture_output=True, text=True,
                        timeout=180)
    assert ok.returncode == 0, ok.stderr
    # SmolLM2-135M: 30 layers; q_proj 576->576, v_proj 576->192 (3 KV heads x 64)
    assert "276,480" in ok.stdout and "184,320" in ok.stdout and "trainable params: 460,800" in ok.stdout
    bad = subprocess.run(env_cmd + ["8", "--targets", "nope"], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert bad.returncode == 2 and "'nope' is not a layer" in bad.stderr and "Traceback" not in bad.stderr


def test_cli_bad_rank_and_unknown_model(tmp_path, capsys):
    for args, needle in ((["--rank", "x", "--targets", "q_proj"], "rank 'x'"),
                         (["--rank", "0", "--targets", "q_proj"], "rank 0"),
                         (["--model", str(tmp_path / "missing"), "--targets", "q_proj"], "not found")):
        assert lora_cli(["count", *args]) == 2
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1, err
