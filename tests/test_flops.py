"""labs.flops: model FLOPs held to a hand count and to PyTorch's own FLOP counter; the GPU peak table; the CPU precision choice from measured matmuls."""
from __future__ import annotations

import pytest

from labs import flops

# layers 2, d_model 8, 2 query heads and 1 K/V head of 4, MLP 16, vocab 32
TINY = flops.Shapes(layers=2, d_model=8, n_heads=2, n_kv_heads=1, head_dim=4, d_ff=16, vocab=32)


def _tiny_llama(attn="eager"):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=32, hidden_size=8, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
                      num_key_value_heads=1, head_dim=4, max_position_embeddings=64, tie_word_embeddings=True)
    cfg._attn_implementation = attn
    return LlamaForCausalLM(cfg)


def test_linear_and_lora_params_by_hand():
    # per layer: q 8x8=64, k 8x4=32, v 32, o 64, gate 8x16=128, up 128, down 128 -> 576; two layers
    assert TINY.linear_params == 1152
    # r=2: r*(d_in+d_out) = q 32, k 24, v 24, o 32, gate 48, up 48, down 48 -> 256 per layer
    assert flops.lora_params(TINY, 2) == 512
    assert flops.lora_params(TINY, 2, ["q_proj", "v_proj"]) == 2 * (32 + 24)
    with pytest.raises(ValueError, match="unknown layer names"):
        flops.lora_params(TINY, 2, ["lm_head"])


def test_train_flops_by_hand():
    rows = [3, 5]  # A = 2 heads * 4 = 8; causal attention forward per layer 2*A*T*(T+1): 192 + 480
    assert flops.attention_flops(TINY, rows) == 3 * 2 * 672
    assert flops.attention_flops(TINY, rows, causal=False) == 3 * 2 * (4 * 8 * 9 + 4 * 8 * 25)
    # full: 8 tokens * 6N + attention + 6*d*V on all 8 positions
    assert flops.train_flops(TINY, rows, head_positions=8, full=True) == 8 * 6 * 1152 + 4032 + 6 * 8 * 32 * 8
    assert flops.train_flops(TINY, rows, head_positions=8, full=True) == 71616
    # LoRA r=2: 8 tokens * (4N + 6*512) + attention + 4*d*V on the 4 trained positions only
    assert flops.train_flops(TINY, rows, head_positions=4, full=False, lora_params=512) == 61440 + 4032 + 4096


def test_shapes_from_config_match_the_model():
    model = _tiny_llama()
    shapes = flops.Shapes.from_config(model.config)
    assert shapes == TINY
    layer_linears = sum(m.weight.numel() for m in model.model.layers.modules()
                        if m.__class__.__name__ == "Linear")
    assert shapes.linear_params == layer_linears


def test_lora_params_match_peft():
    from peft import LoraConfig, get_peft_model
    model = get_peft_model(_tiny_llama(), LoraConfig(r=2, lora_alpha=4, target_modules="all-linear", lora_dropout=0.0))
    assert flops.lora_params(TINY, 2) == sum(p.numel() for p in model.parameters() if p.requires_grad)


def _counted(model, ids):
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with counter:
        model(input_ids=ids, labels=ids).loss.backward()
    return counter.get_total_flops()


@pytest.mark.parametrize("method", ["full", "lora"])
def test_matches_pytorch_flop_counter(method):
    """Eager attention computes every score (causal=False); one row, no padding, logits at every position."""
    import torch
    model = _tiny_llama()
    lora = 0
    if method == "lora":
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules="all-linear", lora_dropout=0.0))
        model.enable_input_require_grads()  # as under gradient checkpointing: layer 0's input grads computed too
        lora = 512
    ids = torch.randint(0, 32, (1, 5))
    expected = flops.train_flops(TINY, [5], head_positions=5, full=method == "full", lora_params=lora, causal=False)
    assert _counted(model, ids) == expected


def test_lora_over_full():
    def linear(full):  # linear layers alone, no LoRA adapters: 4N / 6N
        return flops.train_flops(TINY, [1], 0, full=full) - flops.attention_flops(TINY, [1])
    assert linear(False) == 4 * 1152 and linear(True) == 6 * 1152
    smol = flops.Shapes(layers=30, d_model=576, n_heads=9, n_kv_heads=3, head_dim=64, d_ff=1536, vocab=49152)
    assert smol.linear_params == 106_168_320  # 30 * (2*576*576 + 2*576*192 + 3*576*1536)
    lora = flops.lora_params(smol, 16)
    assert lora == 4_884_480  # 30 * 16 * (1152 + 768 + 768 + 1152 + 3 * 2112)
    per_token = [flops.train_flops(smol, [1], 0, full=f, lora_params=0 if f else lora, causal=False)
                 - flops.attention_flops(smol, [1], causal=False) for f in (False, True)]
    assert per_token[0] / per_token[1] == pytest.approx((4 * 106_168_320 + 6 * 4_884_480) / (6 * 106_168_320))
    assert per_token[0] / per_token[1] == pytest.approx(0.7127, abs=1e-4)


@pytest.mark.parametrize("name,dtype,tflops", [
    ("NVIDIA H200", "bf16", 989.5), ("NVIDIA H200 NVL", "bf16", 835.5),
    ("NVIDIA H100 80GB HBM3", "bf16", 989.5), ("NVIDIA H100 PCIe", "fp16", 756.5), ("NVIDIA H100 NVL", "bf16", 835.5),
    ("NVIDIA A100-SXM4-80GB", "bf16", 312), ("NVIDIA A100-PCIE-40GB", "fp16", 312), ("NVIDIA A10", "bf16", 125),
    ("NVIDIA L4", "bf16", 121), ("NVIDIA L40S", "bf16", 362.05), ("NVIDIA L40", "bf16", 181.05),
    ("NVIDIA GeForce RTX 4090", "bf16", 165.2), ("NVIDIA GeForce RTX 3090", "fp16", 71),
    ("Tesla T4", "fp16", 65), ("Tesla V100-SXM2-16GB", "fp16", 125), ("Tesla V100-PCIE-32GB", "fp16", 112),
])
def test_gpu_peak_lookup(name, dtype, tflops):
    assert flops.gpu_peak_flops(name, dtype) == pytest.approx(tflops * 1e12)


def test_gpu_peak_unknown_or_missing_dtype():
    assert flops.gpu_peak_flops("Tesla T4", "bf16") is None  # no bf16 on Turing
    for name in ("NVIDIA A10G", "NVIDIA GeForce RTX 3090 Ti", "AMD Instinct MI300X", "cpu"):
        assert flops.gpu_peak_flops(name) is None, name
    with pytest.raises(ValueError, match="bf16"):
        flops.gpu_peak_flops("NVIDIA H200", "fp32")
    assert flops.mfu(5e14, flops.gpu_peak_flops("NVIDIA H100 80GB HBM3")) == pytest.approx(5e14 / 989.5e12)
    assert flops.mfu(1e12, None) is None


def test_cpu_training_precision_follows_the_measured_bf16_speed(monkeypatch):
    """bf16 autocast is picked on a CPU by what its bf16 matmuls measure, not by its flags: an Intel Xeon
    whose AMX is hidden lists avx512_bf16 and runs bf16 matmuls at 0.6x fp32."""
    from types import SimpleNamespace

    from labs.encoder.recipe import precision_of
    from labs.sft.recipe import resolve_precision
    import torch
    cpu = torch.device("cpu")
    sft = SimpleNamespace(precision="auto", method="lora")
    enc = SimpleNamespace(precision="auto")
    for speedup, want in ((0.0, "fp32"), (0.62, "fp32"), (1.2, "fp32"), (1.6, "bf16"), (3.5, "bf16")):
        monkeypatch.setattr(flops, "cpu_bf16_speedup", lambda s=speedup: s)
        p = resolve_precision(sft, cpu)
        assert (p["bf16"], p["dtype"]) == (want == "bf16", torch.float32), speedup  # weights stay fp32
        assert precision_of(enc, cpu) == want, speedup
    assert resolve_precision(SimpleNamespace(precision="bf16", method="lora"), cpu)["bf16"]  # asked for: kept
    monkeypatch.undo()

    # the measurement itself: 0 without bf16 instructions (not timed), else fp32's time over bf16's on the same
    # matmul, timed once per process
    timed = []

    def linear_seconds(tokens, d_in, d_out, dtype="fp32", **kw):
        timed.append((tokens, d_in, d_out, dtype))
        return {"fp32": 3.0, "bf16": 2.0}[dtype]
    monkeypatch.setattr(flops, "linear_seconds", linear_seconds)
    flops.cpu_bf16_speedup.cache_clear()
    monkeypatch.setattr(flops, "cpu_has_native_bf16", lambda: False)
    assert flops.cpu_bf16_speedup() == 0.0 and not flops.cpu_prefers_bf16() and timed == []
    flops.cpu_bf16_speedup.cache_clear()
    monkeypatch.setattr(flops, "cpu_has_native_bf16", lambda: True)
    assert flops.cpu_bf16_speedup() == pytest.approx(1.5) and flops.cpu_prefers_bf16()  # 3 s / 2 s: at the threshold
    assert sorted(t[3] for t in timed) == ["bf16", "fp32"] and timed[0][:3] == timed[1][:3]  # one shape, both
    assert flops.cpu_bf16_speedup() == pytest.approx(1.5) and len(timed) == 2  # measured once per process
    flops.cpu_bf16_speedup.cache_clear()

