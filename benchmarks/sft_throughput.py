"""SFT training throughput and MFU: the course's slide-1 loop vs plain TRL (its defaults, and fp32) vs this lab.

    python benchmarks/sft_throughput.py                    # CPU: default model, bundled instruct set, max length 512
    python benchmarks/sft_throughput.py --steps 12         # shorter
    python benchmarks/sft_throughput.py --device cuda      # one GPU; MFU also against the datasheet peak
    python benchmarks/sft_throughput.py --candidates       # also the lab path with each speed option toggled
    python benchmarks/sft_throughput.py --json out.json    # every number of the table, machine-readable

Each setup runs in its own process (so peak memory is its own) for `--warmup` + `--steps` optimizer
steps on the same rows; only the steps after warm-up count. Tokens/s counts real tokens (padding
excluded): the sum of attention_mask, or every token of a padding-free batch. Peak memory: the
process's max RSS on CPU, torch.cuda.max_memory_allocated on a GPU.

  seed      slide 1: batch of one row, padded to the longest row of the set, full fine-tuning, AdamW, fp32
  trl       TRL's SFTTrainer with its defaults (SFTConfig(use_cpu=True) on CPU: bf16 autocast, gradient
            checkpointing) and the lab's LoRA config
  trl_fp32  the same with bf16=False, everything else TRL's defaults: on a CPU without native bf16 this
            is what a user would pick
  lab       labs.sft.recipe.build_trainer with the default SFTRunConfig (what the SFT tab starts); it
            picks its own precision (labs.sft.recipe.resolve_precision)
  lab+X     (--candidates) the lab path with one speed option changed: shows what each default is worth

Model FLOP/s and MFU: each step's model FLOPs come from labs/flops.py (linear layers, causal attention
per row, the LM head where that setup computes it: trained positions for the lab's answer-only head,
every real position for TRL's), over the measured steps' time. The peak they are divided by is
measured in the same run: F.linear on the model's own q/k/v/o/gate/up/down shapes at the lab's tokens
per step, best of 5, one decoder layer's FLOPs over its summed time, in the precision the setup
computed in (fp32, or bf16 under bf16 autocast), with the training processes' thread count. On a GPU
the table also gives MFU against the datasheet peak (labs.flops.gpu_peak_flops).

The last line is `lab/trl=<x> (vs <the faster TRL setup>) lab/seed=<y>`.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TRL_SETUPS = ("trl", "trl_fp32")
# the lab path with one speed option changed, to show why each default was kept
CANDIDATES = {
    "lab+padded": dict(padding_free=False),
    "lab+trl_head": dict(answer_head=False),
    "lab+full_attention": dict(row_attention=False),
    "lab+dropout": dict(lora_dropout=0.05),
    "lab+packing": dict(packing=True, padding_free=False),
    "lab+grad_ckpt": dict(gradient_checkpointing=True),
    "lab+bf16": dict(precision="bf16"),
    "lab+fp32": dict(precision="fp32"),
    "lab+compile": dict(torch_compile=True),
}


def _rows(n: int):
    from labs.sft.data import load_splits
    return load_splits("instruct")["train"][:n]  # all tasks of the bundled set


def _peak(device: str) -> int:
    if device == "cuda":
        import torch
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _step_rows(inputs) -> list[int]:
    """Real tokens of each row of a training batch: padding-free/packed batches carry their row
    boundaries (cu_seq_lens_q, or position ids restarting at 0); padded ones an attention mask."""
    if "cu_seq_lens_q" in inputs:
        cu = inputs["cu_seq_lens_q"].tolist()
        return [b - a for a, b in zip(cu[:-1], cu[1:]) if b > a]
    am = inputs.get("attention_mask")
    if am is not None:
        return [int(n) for n in am.reshape(-1, am.shape[-1]).sum(-1).tolist()]
    ids, pos = inputs["input_ids"], inputs.get("position_ids")
    if pos is None:
        return [ids.shape[-1]] * ids.reshape(-1, ids.shape[-1]).shape[0]
    starts = (pos.reshape(-1) == 0).nonzero().flatten().tolist() + [pos.numel()]
    return [b - a for a, b in zip(starts[:-1], starts[1:])]


def step_flops(shapes, full: bool, lora_params: int, answer_head: bool):
    """inputs -> model FLOPs of that training step (labs.flops), for Meter."""
    from labs import flops

    def count(inputs) -> int:
        rows = _step_rows(inputs)
        labels = inputs.get("labels")
        head = int((labels[..., 1:] != -100).sum()) if answer_head and labels is not None else sum(rows)
        return flops.train_flops(shapes, rows, head, full=full, lora_params=lora_params)
    return count


class Enough(Exception):
    """Raised at a step start once the setup's time budget is spent (and 2+ steps were measured)."""


class Meter:
    """Step start times, real tokens and model FLOPs, recorded by wrapping Trainer.training_step."""

    def __init__(self, warmup: int = 0, budget_s: float = 0, flops_of=None):
        self.t: list[float] = []
        self.tokens: list[int] = []
        self.flops: list[int] = []
        self.warmup, self.budget_s, self.flops_of = warmup, budget_s, flops_of

    def wrap(self, trainer):
        inner = trainer.training_step

        def step(model, inputs, *a, **kw):
            self.mark(inputs)
            return inner(model, inputs, *a, **kw)
        trainer.training_step = step

    def mark(self, inputs):
        import torch
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # the previous step's kernels are done: its time is counted
        now = time.perf_counter()
        if self.budget_s and len(self.t) >= self.warmup + 3 and now - self.t[self.warmup] > self.budget_s:
            self.t.append(now)
            self.tokens.append(0)
            self.flops.append(0)
            raise Enough
        self.t.append(now)
        am = inputs.get("attention_mask")
        self.tokens.append(int(am.sum()) if am is not None else int(inputs["input_ids"].numel()))
        self.flops.append(self.flops_of(inputs) if self.flops_of else 0)
        # lets the parent bound a setup it stops
        print(f"MARK {time.time()} {self.tokens[-1]} {self.flops[-1]}", flush=True)

    def result(self, warmup: int) -> dict:
        t, tok = self.t, self.tokens
        if len(t) < warmup + 2:
            raise SystemExit(f"too few steps measured ({len(t)}); raise --steps")
        secs = t[-1] - t[warmup]
        n = sum(tok[warmup:-1])  # the last mark only closes the previous step
        f = sum(self.flops[warmup:-1])
        return {"tokens_per_s": n / secs, "steps": len(t) - 1 - warmup, "tokens": n, "seconds": secs,
                "model_flops": f, "flops_per_s": f / secs}


def _shapes(path):
    from transformers import AutoConfig
    from labs import flops
    return flops.Shapes.from_config(AutoConfig.from_pretrained(path))


def _trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def run_seed(a, device) -> dict:
    """The slide-1 loop, corrected only where it must be to run: the tokenizer's chat template renders rows."""
    import torch
    from transformers import AutoModelForCausalLM
    from labs import models
    src = models.resolve(a.model)
    tok = models.load_tokenizer(source=src)
    model = AutoModelForCausalLM.from_pretrained(src.path, dtype=torch.float32).to(device)  # as on the slide
    texts = [tok.apply_chat_template(r["prompt"] + r["completion"], tokenize=False) for r in _rows(a.rows)]
    enc = tok(texts, padding=True, truncation=True, max_length=a.max_length, return_tensors="pt")
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5)
    # full fine-tuning; labels = input ids, so the head computes every real position
    meter = Meter(a.warmup, a.budget_s, step_flops(_shapes(src.path), True, 0, answer_head=False))
    model = model.train()
    total = a.warmup + a.steps + 1
    for i in range(total):
        ids, am = enc["input_ids"][i % len(texts)].to(device), enc["attention_mask"][i % len(texts)].to(device)
        try:
            meter.mark({"attention_mask": am, "input_ids": ids})
        except Enough:
            break
        loss = model(ids.unsqueeze(0), attention_mask=am.unsqueeze(0), labels=ids.unsqueeze(0)).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    if device == "cuda":
        torch.cuda.synchronize()
    return {**meter.result(a.warmup), "precision": "fp32",
            "options": "batch 1, padded to the longest row, full fine-tuning, fp32"}


def _lora_config():
    from peft import LoraConfig
    from labs.sft.config import SFTRunConfig
    c = SFTRunConfig()
    return LoraConfig(r=c.lora_r, lora_alpha=c.lora_alpha, lora_dropout=c.lora_dropout,
                      target_modules=c.target_modules(), bias="none", task_type="CAUSAL_LM")


def _precision(args) -> str:
    return "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"


def run_trl(a, device, out, fp32: bool) -> dict:
    import datasets
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer
    from labs import models
    src = models.resolve(a.model)
    tok = models.load_tokenizer(source=src)
    model = AutoModelForCausalLM.from_pretrained(src.path)
    extra = {"bf16": False} if fp32 else {}  # trl_fp32: only autocast off, the rest TRL's defaults
    args = SFTConfig(output_dir=str(out), use_cpu=device == "cpu", max_length=a.max_length,
                     max_steps=a.warmup + a.steps + 1, report_to=[], save_strategy="no", **extra)
    ds = datasets.Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in _rows(a.rows)])
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok, peft_config=_lora_config())
    # TRL's head projects every position (on CUDA its fused kernel skips untrained ones: the lab's count)
    meter = Meter(a.warmup, a.budget_s, step_flops(_shapes(src.path), False, _trainable(trainer.model),
                                                   answer_head=device == "cuda"))
    meter.wrap(trainer)
    try:
        trainer.train()
    except Enough:
        pass
    prec = _precision(args)
    opts = f"TRL defaults{' but bf16=False' if fp32 else ''}: batch {args.per_device_train_batch_size}, padded, " \
           f"gradient checkpointing {'on' if args.gradient_checkpointing else 'off'}, " \
           f"{prec + ' autocast' if prec != 'fp32' else 'fp32'}"
    return {**meter.result(a.warmup), "precision": prec, "options": opts}


def run_lab(a, device, out, overrides: dict) -> dict:
    from labs.sft.config import SFTRunConfig
    from labs.sft.data import load_splits
    from labs.sft.recipe import NullSession, build_trainer
    from labs import models
    overrides = dict(overrides)
    compile_ = overrides.pop("torch_compile", False)
    cfg = SFTRunConfig(model=a.model, data_tasks="", max_length=a.max_length, max_steps=a.warmup + a.steps + 1,
                       eval_steps=10_000, eval_rows=0, device=device, **overrides)
    splits = load_splits("instruct")
    splits = {"train": splits["train"][:a.rows], "validation": splits["validation"][:2]}
    session = NullSession(out)
    trainer, *_ = build_trainer(cfg, session, splits)
    trainer.args.save_strategy = "no"
    trainer.args.eval_strategy = "no"
    trainer.args.load_best_model_at_end = False
    if compile_:
        trainer.model = trainer.model_wrapped = __import__("torch").compile(trainer.model, dynamic=True)
    full = cfg.method != "lora"
    meter = Meter(a.warmup, a.budget_s, step_flops(_shapes(models.resolve(a.model).path), full,
                                                   0 if full else _trainable(trainer.model),
                                                   answer_head=trainer.answer_head or device == "cuda"))
    meter.wrap(trainer)
    try:
        trainer.train()
    except Enough:
        pass
    used = [f"batch {cfg.batch_size}", "padding-free" if cfg.padding_free else
            ("packing" if cfg.packing else "padded"),
            f"gradient checkpointing {'on' if cfg.gradient_checkpointing else 'off'}",
            session.recorded.get("precision", ""), f"attention {session.recorded['speed']['attention']}",
            f"LoRA dropout {cfg.lora_dropout:g}",
            "LM head: answer_head" if trainer.answer_head else "LM head: TRL's"] + \
        (["torch.compile"] if compile_ else [])
    return {**meter.result(a.warmup), "precision": _precision(trainer.args), "options": ", ".join(used)}


def child(a) -> None:
    device = a.device
    with tempfile.TemporaryDirectory() as out:
        if a.one == "seed":
            res = run_seed(a, device)
        elif a.one in TRL_SETUPS:
            res = run_trl(a, device, out, fp32=a.one == "trl_fp32")
        else:
            res = run_lab(a, device, out, CANDIDATES.get(a.one, {}) if a.one != "lab" else {})
    res["peak_mem_gb"] = _peak(device) / 2**30
    res["threads"] = __import__("torch").get_num_threads()
    print("RESULT " + json.dumps(res), flush=True)


def _bound_from_marks(out: str, warmup: int, now: float) -> dict | None:
    """A setup stopped by --setup-timeout-s: its throughput so far, or an upper bound if no step after
    warm-up finished (the step running when stopped is counted as if it had just finished)."""
    marks = [(float(t), int(n), int(f)) for _, t, n, f in (ln.split() for ln in out.splitlines()
                                                          if ln.startswith("MARK "))]
    if not marks:
        return None
    in_warmup = len(marks) <= warmup  # then bound it from the steps it started (warm-up ones included)
    done = marks if in_warmup else marks[warmup:]
    t0 = done[0][0]
    tokens = sum(n for _, n, _ in done)  # includes the unfinished step: an upper bound
    model_flops = sum(f for *_, f in done)
    return {"tokens_per_s": tokens / (now - t0), "steps": len(done) - 1, "tokens": tokens, "seconds": now - t0,
            "model_flops": model_flops, "flops_per_s": model_flops / (now - t0),
            "peak_mem_gb": float("nan"), "upper_bound": True,
            "options": f"stopped {'in warm-up' if in_warmup else 'early'} after {len(done)} started steps: upper bound"}


def matmul_peak(shapes, tokens: int, precisions, device: str, repeats: int = 5) -> dict:
    """Measured matmul FLOP/s on the model's own linear shapes: F.linear of (tokens x d_in) by a
    (d_out x d_in) weight for q/k/v/o/gate/up/down, best of `repeats` timings of 3 calls each; the peak
    of a precision is one decoder layer's FLOPs over the sum of its seven best times."""
    import torch
    from labs import flops
    out = {"tokens": tokens, "threads": torch.get_num_threads()}
    for prec in precisions:
        total_flops = total_s = 0.0
        per_shape = {}
        for name, (d_in, d_out) in shapes.linear_shapes().items():
            best = flops.linear_seconds(tokens, d_in, d_out, prec, device, repeats=repeats)
            fl = 2 * tokens * d_in * d_out
            per_shape[name] = fl / best
            total_flops, total_s = total_flops + fl, total_s + best
        out[prec] = {"peak_flops_per_s": total_flops / total_s, "per_shape": per_shape}
    return out


def _fmt_ratio(lab: dict, other: dict) -> str:
    return (">" if other.get("upper_bound") else "") + f"{lab['tokens_per_s'] / other['tokens_per_s']:.2f}"


def summary_line(results: dict) -> str | None:
    """`lab/trl=<x> (vs <faster TRL setup>) lab/seed=<y>`, or None without the lab and a TRL setup."""
    trl = [n for n in TRL_SETUPS if n in results]
    if "lab" not in results or not trl:
        return None
    best = max(trl, key=lambda n: results[n]["tokens_per_s"])
    line = f"lab/trl={_fmt_ratio(results['lab'], results[best])} (vs {best})"
    if "seed" in results:
        line += f" lab/seed={_fmt_ratio(results['lab'], results['seed'])}"
    return line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--steps", type=int, default=16, help="measured optimizer steps per setup")
    ap.add_argument("--warmup", type=int, default=4, help="steps excluded (kernel warm-up)")
    ap.add_argument("--budget-s", type=float, default=300,
                    help="stop measuring a setup after this many seconds past warm-up (at least 2 steps)")
    ap.add_argument("--setup-timeout-s", type=float, default=1800,
                    help="stop a setup after this long; its throughput is then reported as an upper bound")
    ap.add_argument("--rows", type=int, default=440, help="training rows of the bundled set to use")
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--candidates", action="store_true", help="also the lab path with each speed option toggled")
    ap.add_argument("--only", default="", help="comma list of setups to run (seed,trl,trl_fp32,lab,lab+bf16,...)")
    ap.add_argument("--json", default="", help="also write the results, peaks and machine to this file")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        return child(a)
    setups = ["seed", *TRL_SETUPS, "lab"] + (list(CANDIDATES) if a.candidates else [])
    if a.only:
        setups = [s for s in a.only.split(",") if s]
    unknown = [s for s in setups if s not in ("seed", *TRL_SETUPS, "lab", *CANDIDATES)]
    if unknown:
        ap.exit(2, f"error: --only: unknown setup {', '.join(unknown)}; choose from seed, trl, trl_fp32, lab, "
                   f"{', '.join(CANDIDATES)}\n")
    results = {}
    for name in setups:
        cmd = [sys.executable, __file__, "--one", name, "--model", a.model, "--device", a.device,
               "--steps", str(a.steps), "--warmup", str(a.warmup), "--budget-s", str(a.budget_s), "--rows", str(a.rows),
               "--max-length", str(a.max_length)]
        t0 = time.time()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        try:
            out, err = p.communicate(timeout=a.setup_timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            bound = _bound_from_marks(out, a.warmup, time.time())
            if bound:
                results[name] = bound
                print(f"  {name}: stopped after {a.setup_timeout_s:.0f}s, < {bound['tokens_per_s']:.1f} tok/s", flush=True)
            else:
                print(f"  {name}: no training step started in {a.setup_timeout_s:.0f}s", flush=True)
            continue
        line = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
        if p.returncode or not line:
            print(f"{name}: failed\n{err[-2000:]}", file=sys.stderr)
            continue
        results[name] = json.loads(line[-1][7:])
        print(f"  {name}: {results[name]['tokens_per_s']:.1f} tok/s ({time.time() - t0:.0f}s wall)", flush=True)

    import torch
    from labs import flops, models
    src = models.resolve(a.model)
    shapes = _shapes(src.path)
    # the peak at the lab's tokens per step (a batch of 8 rows), or the largest step measured
    per_step = [r["tokens"] / r["steps"] for n, r in results.items() if r["steps"] and n != "seed"]
    lab = results.get("lab", {})
    tokens = round(lab["tokens"] / lab["steps"]) if lab.get("steps") else round(max(per_step, default=512))
    precisions = ["fp32"] + sorted({r.get("precision", "fp32") for r in results.values()} - {"fp32"})
    if a.device == "cpu" and flops.cpu_has_native_bf16() and "bf16" not in precisions:
        precisions.append("bf16")
    peaks = matmul_peak(shapes, tokens, precisions, a.device)
    gpu = torch.cuda.get_device_name() if a.device == "cuda" else ""
    for r in results.values():
        prec = r.get("precision", "fp32")
        r["matmul_peak_flops_per_s"] = peaks[prec]["peak_flops_per_s"]
        r["mfu"] = flops.mfu(r["flops_per_s"], r["matmul_peak_flops_per_s"])
        if gpu:
            r["mfu_datasheet"] = flops.mfu(r["flops_per_s"], flops.gpu_peak_flops(gpu, prec)) \
                if prec in ("bf16", "fp16") else None

    print(f"\nSFT throughput on {a.device} ({gpu or _cpu_name()}; {src.describe()}), bundled instruct set, "
          f"max length {a.max_length}, {a.steps} steps after {a.warmup} warm-up steps, "
          f"{peaks['threads']} threads")
    print("matmul peak (F.linear on the model's shapes, " + f"{tokens} tokens): " +
          ", ".join(f"{p} {peaks[p]['peak_flops_per_s'] / 1e12:.3f} TFLOP/s" for p in precisions))
    sheet = f"{'MFU sheet':>10}" if gpu else ""
    print(f"{'setup':<20}{'precision':>10}{'real tok/s':>11}{'peak GB':>9}{'TFLOP/s':>9}{'MFU':>7}{sheet}  options")
    for name, r in results.items():
        lt = "<" if r.get("upper_bound") else ""
        ds = f"{100 * r['mfu_datasheet']:>9.1f}%" if r.get("mfu_datasheet") is not None else f"{'-':>10}"
        print(f"{name:<20}{r.get('precision', '?'):>10}{lt + format(r['tokens_per_s'], '.1f'):>11}"
              f"{r['peak_mem_gb']:>9.2f}{lt + format(r['flops_per_s'] / 1e12, '.3f'):>9}"
              f"{lt + format(100 * r['mfu'], '.1f'):>6}%{ds if gpu else ''}  {r['options']}")
    line = summary_line(results)
    if a.json:
        Path(a.json).write_text(json.dumps({"device": a.device, "cpu": _cpu_name(), "gpu": gpu,
                                            "date": time.strftime("%Y-%m-%d"), "args": vars(a), "results": results,
                                            "matmul_peak": peaks, "summary": line}, indent=1))
    if line:
        print(line)


def _cpu_name() -> str:
    """lscpu's model name and the flags that decide bf16 speed."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "CPU")
    flags = set(next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), []))
    have = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{name}, {os.cpu_count()} cores, {' '.join(have) or 'no AVX2'}"


if __name__ == "__main__":
    main()
