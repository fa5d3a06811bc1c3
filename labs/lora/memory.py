"""Training memory: full fine-tuning vs LoRA vs LoRA on a 4-bit base (QLoRA), from shapes alone.

The formula (P = base parameters, T = trainable LoRA parameters, b = bytes of the chosen dtype:
fp32 4, bf16/fp16 2; B = batch size, S = sequence length, L = layers, h = hidden size,
i = MLP intermediate size, kv = key/value width, V = vocabulary):

    weights      full: P·w            LoRA: P·b + T·4          QLoRA: Q·0.516 + (P−Q)·b + T·4
                 (w = 4 in every case: full fine-tuning in bf16/fp16 is mixed precision — fp32 master
                  weights and gradients with half-precision autocast, as labs/sft.py and the HF Trainer do;
                  a LoRA base is stored in b, its adapters in fp32.)
                 (Q = parameters of the quantized Linear layers: every Linear/Conv1D except lm_head;
                  NF4 with double quantization stores 4 bits + 8-bit absmax per 64 + fp32 per 256·64
                  = 4.127 bits = 0.516 bytes per parameter. PEFT keeps adapters in fp32: 4 bytes.)
    gradients    full: P·w            LoRA / QLoRA: T·4
    optimizer    AdamW keeps 2 fp32 states per trainable parameter: full 8·P, LoRA / QLoRA 8·T
    activations  B·S·[L·a_layer·b + 3h·b + V·(b + 8)]   (no gradient checkpointing)
                 a_layer = 8h + 2kv + 4i values (gated MLP: gate, up, act, product; counted with
                 saved_tensors_hooks on Llama) or 8h + 2kv + 6i (GPT-2's tanh-GELU keeps its pieces),
                 + 2·heads·S with eager attention or attention dropout (the softmax matrix is kept);
                 V·(b + 8): the logits, the log-softmax output and its gradient (fp32) in the loss.
                 LoRA adds 4r bytes per targeted layer (A·x), and with lora_dropout > 0 a dropped copy
                 of the layer's input + a bool mask (5·in bytes) per targeted layer; a frozen layer needs
                 no saved input for its own weight, but the network still back-propagates through it,
                 so without dropout LoRA's activations ≈ full fine-tuning's.
    total        the sum (an upper bound: gradients and activations are not all alive at once)

Verdict against a GPU of M GiB (after ~0.5 GiB for the CUDA context): total ≤ 80% of it fits,
≤ 100% is tight (fragmentation and spikes may still run out), otherwise won't fit.

Checked against measured peak memory (`measure_peak`: a fresh process, peak resident set size
(ru_maxrss) during two real training steps on CPU minus the resident size before the model existed);
tests/test_lora_memory.py asserts ±30% on a small Llama configuration.

    python -m labs.lora memory --model default --rank 8 --targets all-linear --batch 8 --seq 512 --gpu-gb 24
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from labs.lora.arithmetic import LoraCount, LoraError, ModelShapes, matched_modules

DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
NF4_BYTES = 4.127 / 8
CUDA_CONTEXT_GB = 0.5
GiB = 1024 ** 3


def activation_bytes(shapes: ModelShapes, batch_size: int, seq_len: int, dtype_bytes: int,
                     lora_rank: int = 0, lora_modules: list | None = None, lora_dropout: float = 0.0) -> int:
    """Bytes kept for the backward pass (plus the loss's transient logits), no gradient checkpointing."""
    c = shapes.config
    h, L = c["hidden_size"], c["num_layers"]
    i = c["intermediate_size"] or 4 * h
    kv = (c["num_kv_heads"] or c["num_heads"]) * (c["head_dim"] or h // c["num_heads"])
    # Counted with torch.autograd.graph.saved_tensors_hooks on Llama: 8h + 2kv + 4i values per token
    # per layer (h=256, i=704, kv=128: 5,120 predicted, 5,126 saved).
    per_layer = 8 * h + 2 * kv + (4 * i if c["gated_mlp"] else 6 * i)
    if c.get("attn_implementation") == "eager" or c.get("attn_dropout"):
        per_layer += 2 * c["num_heads"] * seq_len  # the softmax matrix (and its dropout) is materialized
    per_token = L * per_layer * dtype_bytes + 3 * h * dtype_bytes
    if c.get("is_causal_lm"):
        per_token += c["vocab_size"] * (dtype_bytes + 8)
    for m in lora_modules or []:
        per_token += lora_rank * 4  # A·x, the input of B
        if lora_dropout > 0:
            per_token += m.in_features * (4 + 1)  # each adapter keeps its own dropped copy of x + a bool mask
    return int(batch_size * seq_len * per_token)


def estimate(shapes: ModelShapes, count: LoraCount, *, dtype: str = "bf16", batch_size: int = 8,
             seq_len: int = 512, gpu_gb: float = 24.0, lora_dropout: float = 0.0) -> dict:
    """Bytes per part for full fine-tuning, LoRA and QLoRA, plus a verdict for a GPU of `gpu_gb` GiB."""
    if dtype not in DTYPE_BYTES:
        raise LoraError(f"dtype '{dtype}': use fp32, bf16 or fp16")
    if batch_size < 1 or seq_len < 1:
        raise LoraError("batch size and sequence length must be ≥ 1")
    if gpu_gb <= 0:
        raise LoraError("GPU memory must be > 0 GiB")
    b = DTYPE_BYTES[dtype]
    P, T = shapes.total_params, count.trainable
    quantized = sum(m.weight_params for m in shapes.modules
                    if m.kind in ("linear", "conv1d") and m.name != shapes.output_embedding)
    lora_modules = matched_modules(shapes, count.targets)
    act_full = activation_bytes(shapes, batch_size, seq_len, b)
    act_lora = activation_bytes(shapes, batch_size, seq_len, b, count.rank, lora_modules, lora_dropout)
    parts = {
        # mixed precision keeps fp32 master weights and gradients: 4 + 4 + 8 = 16 bytes per parameter
        "full fine-tuning": {"weights": P * 4, "gradients": P * 4, "optimizer": 8 * P, "activations": act_full},
        "LoRA": {"weights": P * b + 4 * T, "gradients": 4 * T, "optimizer": 8 * T, "activations": act_lora},
        "LoRA on 4-bit base": {"weights": int(quantized * NF4_BYTES + (P - quantized) * b + 4 * T),
                               "gradients": 4 * T, "optimizer": 8 * T, "activations": act_lora},
    }
    usable = (gpu_gb - CUDA_CONTEXT_GB) * GiB
    for p in parts.values():
        p["total"] = sum(p.values())
        share = p["total"] / usable if usable > 0 else float("inf")
        p["verdict"] = "fits" if share <= 0.8 else "tight" if share <= 1.0 else "won't fit"
    return {"dtype": dtype, "batch_size": batch_size, "seq_len": seq_len, "gpu_gb": gpu_gb, "methods": parts}


def table_rows(est: dict) -> list[dict]:
    rows = []
    for method, p in est["methods"].items():
        rows.append({"method": method, **{k: f"{p[k] / GiB:.2f} GiB" for k in
                                          ("weights", "gradients", "optimizer", "activations", "total")},
                     "verdict": f"{p['verdict']} on {est['gpu_gb']:g} GiB"})
    return rows


# --------------------------------------------------------------------------- measurement
_MEASURE = r"""
import ctypes, gc, json, resource, sys
ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE: 2 MiB huge pages would round RSS up by chance
import psutil, torch
from transformers import LlamaConfig, AutoModelForCausalLM
from peft import LoraConfig, get_peft_model
args = json.loads(sys.argv[1])
torch.manual_seed(0)
torch.set_num_threads(2)
# warm up kernels, thread pools and the allocator on a toy model, so that they are in the baseline
toy = AutoModelForCausalLM.from_config(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32,
                                                   num_hidden_layers=1, num_attention_heads=2))
toy(input_ids=torch.zeros(1, 4, dtype=torch.long), labels=torch.zeros(1, 4, dtype=torch.long)).loss.backward()
del toy
gc.collect()
rss0 = psutil.Process().memory_info().rss
# Reset the kernel's high-water mark: ru_maxrss would also hold the peak of the imports above.
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")
cfg = LlamaConfig(**args["config"])
model = AutoModelForCausalLM.from_config(cfg)
if args["method"] == "lora":
    model = get_peft_model(model, LoraConfig(r=args["rank"], lora_alpha=2 * args["rank"], target_modules=args["targets"],
                                             lora_dropout=args["dropout"]))
params = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=1e-4)
ids = torch.randint(0, cfg.vocab_size, (args["batch"], args["seq"]))
for _ in range(2):
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM:")]
peak = int(hwm[0].split()[1]) * 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB
print(json.dumps({"peak_bytes": peak - rss0, "loss": float(loss)}))
"""


def measure_peak(config: dict, method: str, batch: int, seq: int, rank: int = 8, targets="all-linear",
                 lora_dropout: float = 0.0, timeout_s: float = 300) -> int:
    """Peak extra resident memory (bytes) of two fp32 AdamW training steps on CPU, in a fresh process.

    `config` is LlamaConfig keyword arguments. RSS is what the OS really gave the process, so it
    sees torch's allocations (tracemalloc does not); the import cost is excluded by measuring from
    just before the model is built."""
    arg = json.dumps({"config": config, "method": method, "batch": batch, "seq": seq, "rank": rank,
                      "targets": targets, "dropout": lora_dropout})
    # A fixed mmap threshold makes glibc give every tensor over 64 KiB its own mapping, returned to the
    # OS when freed; with its default (a threshold that grows after frees) freed tensors stay in the
    # heap and peak RSS measured fragmentation, not tensors (LoRA read 2x its live tensors here).
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", _MEASURE, arg], capture_output=True, text=True, timeout=timeout_s,
                         env=env)
    if out.returncode != 0:
        raise RuntimeError(f"measurement failed: {out.stderr.strip()[-500:]}")
    return int(json.loads(out.stdout.strip().splitlines()[-1])["peak_bytes"])


# --------------------------------------------------------------------------- GPU check
SMOLLM2_135M = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                    num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True,
                    max_position_embeddings=8192, rope_theta=100000.0)
LLAMA_1B = dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                num_attention_heads=32, num_key_value_heads=8, tie_word_embeddings=True,
                max_position_embeddings=8192)


def measure_peak_cuda(config: dict, method: str, batch: int, seq: int, rank: int = 8, targets="all-linear") -> int:
    """Peak torch.cuda.max_memory_allocated (bytes) of two training steps with the recipe's GPU setup:
    full = fp32 weights + bf16 autocast; LoRA = bf16 base + fp32 adapters + bf16 autocast. AdamW."""
    import gc

    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    torch.manual_seed(0)
    cfg = LlamaConfig(**config)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32 if method == "full" else torch.bfloat16).cuda()
    if method == "lora":
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ids = torch.randint(0, cfg.vocab_size, (batch, seq), device="cuda")
    for _ in range(2):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    del model, opt, loss
    gc.collect()
    torch.cuda.empty_cache()
    return peak


def gpu_check() -> int:
    """Estimate vs measured peak GPU memory on SmolLM2-135M's and a Llama-1B-sized architecture.

        python -m labs.lora.memory          # on a machine with a CUDA GPU; prints a table
    """
    import torch
    from transformers import LlamaConfig

    from labs.lora import arithmetic as lora
    print(f"{torch.cuda.get_device_name()} · torch {torch.__version__}")
    print(f"{'model':12} {'method':17} {'batch×seq':>10} {'estimate':>10} {'measured':>10} {'ratio':>6}")
    worst = 0.0
    for name, kw, shapes_list in (("SmolLM2-135M", SMOLLM2_135M, [(8, 512), (4, 2048)]),
                                  ("Llama-1B", LLAMA_1B, [(4, 1024)])):
        shapes = lora.model_shapes(config=LlamaConfig(**kw))
        count = lora.count_trainable(shapes, 8, "all-linear")
        for batch, seq in shapes_list:
            est = estimate(shapes, count, dtype="bf16", batch_size=batch, seq_len=seq, gpu_gb=80)
            for method, key in (("full", "full fine-tuning"), ("lora", "LoRA")):
                meas = measure_peak_cuda(kw, method, batch, seq)
                pred = est["methods"][key]["total"]
                worst = max(worst, abs(pred / meas - 1))
                print(f"{name:12} {key:17} {f'{batch}×{seq}':>10} {pred / GiB:9.2f}G {meas / GiB:9.2f}G "
                      f"{pred / meas:6.2f}", flush=True)
    print(f"worst deviation {worst:.0%}")
    return 0 if worst <= 0.3 else 1


def main(argv: list[str] | None = None) -> int:
    import argparse
    argparse.ArgumentParser(prog="python -m labs.lora.memory",
                            description="Estimate vs measured peak GPU memory (needs a CUDA GPU).").parse_args(argv)
    import torch
    if not torch.cuda.is_available():
        print("error: this check measures GPU memory and needs a CUDA GPU; on CPU, tests/test_lora_memory.py "
              "compares the estimate with the measured peak RSS", file=sys.stderr)
        return 2
    return gpu_check()


if __name__ == "__main__":
    sys.exit(main())
