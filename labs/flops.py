"""Model FLOPs of a training step, and the dense peak FLOP/s of common GPUs: the two halves of MFU;
measured matmul times, and from them whether training on this CPU should use bf16 autocast.

    from labs import flops
    shapes = flops.Shapes.from_config(model.config)
    step = flops.train_flops(shapes, row_lengths=[97, 120], head_positions=60, full=False, lora_params=4_884_480)
    flops.mfu(step / seconds, flops.gpu_peak_flops("NVIDIA H100 80GB HBM3"))
    flops.linear_seconds(512, 576, 1536, "bf16"); flops.cpu_prefers_bf16()

MFU = model FLOPs per second / the hardware's peak. Model FLOPs count the work the model needs for the
real tokens of a step, whatever the implementation does: padding, gradient-checkpointing recomputation
and attention scores across rows of a packed batch are not counted (they lower MFU, as they should).

Per token, for a decoder with N = the weights of its linear layers (q, k, v, o, gate, up, down of every
layer; not the embeddings, not the norms), a matmul with a d_in x d_out weight costs 2*d_in*d_out FLOPs
(one multiply and one add per weight) forward, and in the backward pass 2*d_in*d_out for the gradient
of its input plus 2*d_in*d_out for the gradient of its weight:

    full fine-tuning   6N   (forward 2N, input grads 2N, weight grads 2N)
    LoRA               4N + 6*L   (the frozen base has no weight grads; L = adapter weights, which are
                                   trained: each adapter is two small matmuls, 6 FLOPs per weight)

Attention has no weights but two matmuls per layer. The token at position i (1-based) of a row attends
to the i tokens up to itself (causal): scores Q.K^T cost 2*i*head_dim per query head and the weighted
sum P.V as much again, so 4*i*A per layer forward, A = n_heads*head_dim (grouped-query attention
shares K/V heads but every query head still does its own scores). Backward is two matmuls per forward
one (grad of Q and K from the scores, grad of P and V from the output): 3x forward in all, for LoRA as
for full fine-tuning (the activations need their gradients either way). Over a row of T tokens,
sum_{i=1..T} 4*i*A = 2*A*T*(T+1), so

    attention, one row   3 * layers * 2*A*T*(T+1)   (causal=True)
                         3 * layers * 4*A*T*T       (causal=False: every query against every key, the
                                                     convention of PaLM's 6N + 12*layers*A*T per token;
                                                     2x the causal count for long rows)

The LM head (d_model x vocab, tied to the embeddings in SmolLM2) costs 2*d*V forward per position
where logits are computed, 2*d*V backward into the last hidden state, and 2*d*V more for its weight
grad only when it is trained (full fine-tuning): 4*d*V (LoRA) or 6*d*V (full) per head position.
TRL's head computes every real position; this lab's answer-only head only the trained ones
(labs/sft/trainer.py), so the caller passes the count of positions its head really computes.

Ignored: norms, RoPE, SiLU, softmax, the loss (elementwise, O(d) per token against O(N)); and the
input gradients of the first layer's q/k/v, which autograd skips when nothing below them is trained
(a LoRA run without gradient checkpointing): < 1% of 4N for 30 layers.
"""
from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass
from pathlib import Path

LINEAR_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class Shapes:
    """The sizes that decide a decoder's FLOPs (Llama-style: gated MLP, grouped-query attention)."""
    layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    d_ff: int
    vocab: int

    @classmethod
    def from_config(cls, config) -> Shapes:
        """From a transformers config (Llama, Qwen2, Mistral, SmolLM2 ... field names)."""
        heads = config.num_attention_heads
        return cls(layers=config.num_hidden_layers, d_model=config.hidden_size, n_heads=heads,
                   n_kv_heads=getattr(config, "num_key_value_heads", None) or heads,
                   head_dim=getattr(config, "head_dim", None) or config.hidden_size // heads,
                   d_ff=config.intermediate_size, vocab=config.vocab_size)

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(d_in, d_out) of each linear layer of one decoder layer."""
        d, a, kv = self.d_model, self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
        return {"q_proj": (d, a), "k_proj": (d, kv), "v_proj": (d, kv), "o_proj": (a, d),
                "gate_proj": (d, self.d_ff), "up_proj": (d, self.d_ff), "down_proj": (self.d_ff, d)}

    @property
    def linear_params(self) -> int:
        """N: weights of the linear layers of all decoder layers (no embeddings, LM head or norms)."""
        return self.layers * sum(i * o for i, o in self.linear_shapes().values())


def lora_params(shapes: Shapes, r: int, targets="all-linear") -> int:
    """Adapter weights of rank-r LoRA on `targets` ("all-linear" or names such as ["q_proj", "v_proj"]):
    A is r x d_in and B is d_out x r, so r*(d_in + d_out) per adapted layer."""
    names = LINEAR_NAMES if targets in ("all-linear", "all") else tuple(targets)
    lin = shapes.linear_shapes()
    unknown = [n for n in names if n not in lin]
    if unknown:
        raise ValueError(f"lora targets: unknown layer names {unknown}; use any of {', '.join(LINEAR_NAMES)}")
    return shapes.layers * sum(r * (lin[n][0] + lin[n][1]) for n in names)


def attention_flops(shapes: Shapes, row_lengths, causal: bool = True) -> int:
    """Forward + backward FLOPs of the attention scores and weighted sums over rows of these lengths."""
    a = shapes.n_heads * shapes.head_dim
    per_layer_fwd = sum(2 * a * t * (t + 1) if causal else 4 * a * t * t for t in row_lengths)
    return 3 * shapes.layers * per_layer_fwd


def head_flops(shapes: Shapes, positions: int, full: bool) -> int:
    """Forward + backward FLOPs of the LM head over `positions` computed positions."""
    return (6 if full else 4) * shapes.d_model * shapes.vocab * positions


def train_flops(shapes: Shapes, row_lengths, head_positions: int, full: bool, lora_params: int = 0,
                causal: bool = True) -> int:
    """Model FLOPs of one forward + backward over rows of `row_lengths` real tokens (see the module
    docstring): linear layers (6N or 4N + 6*lora_params per token) + attention + LM head."""
    tokens = sum(row_lengths)
    per_token = 6 * shapes.linear_params if full else 4 * shapes.linear_params + 6 * lora_params
    return tokens * per_token + attention_flops(shapes, row_lengths, causal) + head_flops(shapes, head_positions, full)


def mfu(flops_per_s: float, peak_flops: float | None) -> float | None:
    """Model FLOPs utilisation: achieved / peak (None when the peak is unknown)."""
    return flops_per_s / peak_flops if peak_flops else None


# --------------------------------------------------------------------------- GPU peaks
# Dense (no 2:4 sparsity) tensor-core TFLOP/s, (bf16, fp16), from NVIDIA's datasheets, which print the
# sparse figure: the number here is half of it. Consumer cards: fp16/bf16 with fp32 accumulate (what
# PyTorch uses), from the architecture whitepapers' appendix tables. None: the GPU has no bf16.
GPU_PEAK_TFLOPS: dict[str, tuple[float | None, float]] = {
    "B200": (2250, 2250),           # HGX B200 datasheet: 36 PFLOPS sparse for 8 GPUs
    "H200 SXM": (989.5, 989.5),     # H200 datasheet: 1,979 sparse
    "H200 NVL": (835.5, 835.5),     # H200 datasheet: 1,671 sparse
    "H100 SXM": (989.5, 989.5),     # H100 datasheet: 1,979 sparse
    "H100 NVL": (835.5, 835.5),     # H100 datasheet: 1,671 sparse
    "H100 PCIe": (756.5, 756.5),    # H100 datasheet: 1,513 sparse
    "A100": (312, 312),             # A100 datasheet (SXM and PCIe, 40/80 GB): 624 sparse
    "A40": (149.7, 149.7),          # A40 datasheet: 299.4 sparse
    "A10": (125, 125),              # A10 datasheet: 250 sparse
    "L40S": (362.05, 362.05),       # L40S datasheet: 733 sparse
    "L40": (181.05, 181.05),        # L40 datasheet: 362.1 sparse
    "L4": (121, 121),               # L4 datasheet: 242 sparse
    "RTX 4090": (165.2, 165.2),     # Ada Lovelace whitepaper, fp32 accumulate (dense)
    "RTX 3090": (71, 71),           # Ampere GA102 whitepaper, fp32 accumulate (dense)
    "V100 SXM2": (None, 125),       # V100 datasheet (tensor cores, fp16 only)
    "V100 PCIe": (None, 112),       # V100 datasheet
    "T4": (None, 65),               # T4 datasheet, mixed precision fp16/fp32
}
# (a word of the device name, a second word it must also have or "", table key or None = not known):
# first match wins, so a variant comes before its model's default (an "H100 80GB HBM3" is the SXM card)
_NAME_RULES = [
    ("B200", "", "B200"), ("H200", "NVL", "H200 NVL"), ("H200", "", "H200 SXM"),
    ("H100", "NVL", "H100 NVL"), ("H100", "PCIE", "H100 PCIe"), ("H100", "", "H100 SXM"),
    ("A100", "", "A100"), ("A40", "", "A40"), ("A10", "", "A10"),
    ("L40S", "", "L40S"), ("L40", "", "L40"), ("L4", "", "L4"),
    ("4090", "D", None), ("4090", "", "RTX 4090"), ("3090", "TI", None), ("3090", "", "RTX 3090"),
    ("V100", "PCIE", "V100 PCIe"), ("V100", "", "V100 SXM2"), ("T4", "", "T4"),
]


def gpu_peak_key(device_name: str) -> str | None:
    """The GPU_PEAK_TFLOPS key for a device name such as torch.cuda.get_device_name() gives
    ("NVIDIA H200", "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB", "Tesla T4"); None if unknown."""
    words = set(re.split(r"[\s\-_/,()]+", device_name.upper()))
    for word, also, key in _NAME_RULES:
        if word in words and (not also or also in words):
            return key
    return None


def gpu_peak_flops(device_name: str, dtype: str = "bf16") -> float | None:
    """Dense peak FLOP/s of this GPU in "bf16" or "fp16"; None if the GPU is not in the table or lacks
    that dtype."""
    if dtype not in ("bf16", "fp16"):
        raise ValueError(f"dtype: 'bf16' or 'fp16', got {dtype!r}")
    key = gpu_peak_key(device_name)
    if key is None:
        return None
    tflops = GPU_PEAK_TFLOPS[key][0 if dtype == "bf16" else 1]
    return tflops * 1e12 if tflops else None


# --------------------------------------------------------------------------- measured matmuls, CPU precision
def linear_seconds(tokens: int, d_in: int, d_out: int, dtype: str = "fp32", device: str = "cpu",
                   repeats: int = 5, calls: int = 3) -> float:
    """Seconds of one F.linear of (tokens x d_in) by a (d_out x d_in) weight in fp32, bf16 or fp16: the
    best of `repeats` timings of `calls` calls each, after a warm-up call (oneDNN picks its kernel then)."""
    import torch
    import torch.nn.functional as F
    dt = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(tokens, d_in, generator=gen).to(device=device, dtype=dt)
    w = torch.randn(d_out, d_in, generator=gen).to(device=device, dtype=dt)
    with torch.no_grad():
        F.linear(x, w)
        best = float("inf")
        for _ in range(repeats):
            sync()
            t0 = time.perf_counter()
            for _ in range(calls):
                F.linear(x, w)
            sync()
            best = min(best, (time.perf_counter() - t0) / calls)
    return best


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX-BF16 in the CPU's flags: bf16 instructions exist (not that they are fast)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


# bf16 autocast is chosen on a CPU only where its matmuls run at least this much faster than fp32's: whole
# training steps gain far less than the matmuls (an AMD EPYC with avx512_bf16: matmuls 3.5x, steps 1.6x,
# docs/results.md "SFT throughput"), and an Intel Xeon whose AMX is not exposed runs avx512_bf16 matmuls at 0.6x fp32.
BF16_MIN_SPEEDUP = 1.5


@functools.lru_cache(maxsize=1)
def cpu_bf16_speedup() -> float:
    """bf16 matmul rate over fp32's on this CPU, measured once per process (well under a second) on a small
    model's MLP shape at training's tokens per step; 0.0 where the CPU has no bf16 instructions (bf16 is
    then emulated, many times slower, and not worth timing)."""
    if not cpu_has_native_bf16():
        return 0.0
    return linear_seconds(512, 576, 1536, "fp32") / max(linear_seconds(512, 576, 1536, "bf16"), 1e-9)


def cpu_prefers_bf16() -> bool:
    """Train in bf16 autocast on this CPU? Only where bf16 matmuls measure BF16_MIN_SPEEDUP x fp32's or more."""
    return cpu_bf16_speedup() >= BF16_MIN_SPEEDUP
