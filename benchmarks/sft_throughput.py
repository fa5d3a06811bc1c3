"""SFT training throughput: the course's slide-1 loop vs plain TRL vs this lab's default SFT path.

    python benchmarks/sft_throughput.py                    # CPU: default model, bundled instruct set, max length 512
    python benchmarks/sft_throughput.py --steps 12         # shorter
    python benchmarks/sft_throughput.py --device cuda      # one GPU: bf16, also reports MFU
    python benchmarks/sft_throughput.py --candidates       # also the lab path with each speed option toggled

Each setup runs in its own process (so peak memory is its own) for `--warmup` + `--steps` optimizer
steps on the same rows; only the steps after warm-up count. Tokens/s counts real tokens (padding
excluded): the sum of attention_mask, or every token of a padding-free batch. Peak memory: the
process's max RSS on CPU, torch.cuda.max_memory_allocated on a GPU.

  seed   slide 1: batch of one row, padded to the longest row of the set, full fine-tuning, AdamW
  trl    TRL's SFTTrainer with its defaults (SFTConfig(use_cpu=True) on CPU) and the lab's LoRA config
  lab    labs.sft.build_trainer with the default SFTRunConfig (what the SFT tab starts)
  lab+X  (--candidates) the lab path with one speed option changed: shows what each default is worth

The last line is `lab/trl=<x> lab/seed=<y>`.
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

H100_BF16_PEAK = 989e12  # dense bf16 FLOP/s of an H100 SXM
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


class Enough(Exception):
    """Raised at a step start once the setup's time budget is spent (and 2+ steps were measured)."""


class Meter:
    """Step start times and real tokens, recorded by wrapping Trainer.training_step."""

    def __init__(self, warmup: int = 0, budget_s: float = 0):
        self.t: list[float] = []
        self.tokens: list[int] = []
        self.warmup, self.budget_s = warmup, budget_s

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
            raise Enough
        self.t.append(now)
        am = inputs.get("attention_mask")
        self.tokens.append(int(am.sum()) if am is not None else int(inputs["input_ids"].numel()))
        print(f"MARK {time.time()} {self.tokens[-1]}", flush=True)  # lets the parent bound a setup it stops

    def result(self, warmup: int) -> dict:
        t, tok = self.t, self.tokens
        if len(t) < warmup + 2:
            raise SystemExit(f"too few steps measured ({len(t)}); raise --steps")
        secs = t[-1] - t[warmup]
        n = sum(tok[warmup:-1])  # the last mark only closes the previous step
        return {"tokens_per_s": n / secs, "steps": len(t) - 1 - warmup, "tokens": n, "seconds": secs}


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
    meter, model = Meter(a.warmup, a.budget_s), model.train()
    total = a.warmup + a.steps + 1
    for i in range(total):
        ids, am = enc["input_ids"][i % len(texts)].to(device), enc["attention_mask"][i % len(texts)].to(device)
        try:
            meter.mark({"attention_mask": am})
        except Enough:
            break
        loss = model(ids.unsqueeze(0), attention_mask=am.unsqueeze(0), labels=ids.unsqueeze(0)).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    if device == "cuda":
        torch.cuda.synchronize()
    return {**meter.result(a.warmup), "options": "batch 1, padded to the longest row, full fine-tuning, "
            + "fp32"}


def _lora_config():
    from peft import LoraConfig
    from labs.sft.config import SFTRunConfig
    c = SFTRunConfig()
    return LoraConfig(r=c.lora_r, lora_alpha=c.lora_alpha, lora_dropout=c.lora_dropout,
                      target_modules=c.target_modules(), bias="none", task_type="CAUSAL_LM")


def run_trl(a, device, out) -> dict:
    import datasets
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer
    from labs import models
    src = models.resolve(a.model)
    tok = models.load_tokenizer(source=src)
    model = AutoModelForCausalLM.from_pretrained(src.path)
    args = SFTConfig(output_dir=str(out), use_cpu=device == "cpu", max_length=a.max_length,
                     max_steps=a.warmup + a.steps + 1, report_to=[], save_strategy="no")
    ds = datasets.Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in _rows(a.rows)])
    trainer = SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=tok, peft_config=_lora_config())
    meter = Meter(a.warmup, a.budget_s)
    meter.wrap(trainer)
    try:
        trainer.train()
    except Enough:
        pass
    opts = f"TRL defaults: batch {args.per_device_train_batch_size}, padded, gradient checkpointing " \
           f"{'on' if args.gradient_checkpointing else 'off'}, {'bf16 autocast' if args.bf16 else 'fp32'}"
    return {**meter.result(a.warmup), "options": opts}


def run_lab(a, device, out, overrides: dict) -> dict:
    from labs.sft import NullSession, build_trainer
    from labs.sft.config import SFTRunConfig
    from labs.sft.data import load_splits
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
    meter = Meter(a.warmup, a.budget_s)
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
    return {**meter.result(a.warmup), "options": ", ".join(used)}


def child(a) -> None:
    device = a.device
    with tempfile.TemporaryDirectory() as out:
        if a.one == "seed":
            res = run_seed(a, device)
        elif a.one == "trl":
            res = run_trl(a, device, out)
        else:
            res = run_lab(a, device, out, CANDIDATES.get(a.one, {}) if a.one != "lab" else {})
    res["peak_mem_gb"] = _peak(device) / 2**30
    print("RESULT " + json.dumps(res), flush=True)


def _bound_from_marks(out: str, warmup: int, now: float) -> dict | None:
    """A setup stopped by --setup-timeout-s: its throughput so far, or an upper bound if no step after
    warm-up finished (the step running when stopped is counted as if it had just finished)."""
    marks = [(float(t), int(n)) for _, t, n in (ln.split() for ln in out.splitlines() if ln.startswith("MARK "))]
    if not marks:
        return None
    in_warmup = len(marks) <= warmup  # then bound it from the steps it started (warm-up ones included)
    done = marks if in_warmup else marks[warmup:]
    t0 = done[0][0]
    tokens = sum(n for _, n in done)  # includes the unfinished step: an upper bound
    return {"tokens_per_s": tokens / (now - t0), "steps": len(done) - 1, "tokens": tokens, "seconds": now - t0,
            "peak_mem_gb": float("nan"), "upper_bound": True,
            "options": f"stopped {'in warm-up' if in_warmup else 'early'} after {len(done)} started steps: upper bound"}


def _mfu(tokens_per_s: float, n_params: float, n_layers: int, hidden: int, seq: int, full: bool) -> float:
    # LoRA on a frozen base: forward 2N + backward through activations 2N (no weight grads) = 4N per token;
    # full fine-tuning adds weight gradients: 6N. Attention: 12 * layers * hidden * seq per token (fwd+bwd).
    per_token = (6 if full else 4) * n_params + 12 * n_layers * hidden * seq
    return tokens_per_s * per_token / H100_BF16_PEAK


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
    ap.add_argument("--only", default="", help="comma list of setups to run (seed,trl,lab,lab+bf16,...)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        return child(a)
    setups = ["seed", "trl", "lab"] + (list(CANDIDATES) if a.candidates else [])
    if a.only:
        setups = [s for s in a.only.split(",") if s]
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

    from labs import models
    info = {}
    if a.device == "cuda":
        from transformers import AutoConfig
        c = AutoConfig.from_pretrained(models.resolve(a.model).path)
        info = dict(n_params=134.5e6, n_layers=c.num_hidden_layers, hidden=c.hidden_size)
    print(f"\nSFT throughput on {a.device} ({models.resolve(a.model).describe()}), bundled instruct set, "
          f"max length {a.max_length}, {a.steps} steps after {a.warmup} warm-up steps")
    print(f"{'setup':<20}{'real tok/s':>11}{'peak GB':>9}{'MFU':>8}  options")
    for name, r in results.items():
        mfu = ""
        if info:
            seq = r["tokens"] / max(1, r["steps"]) / (1 if name == "seed" else 8)
            mfu = f"{100 * _mfu(r['tokens_per_s'], info['n_params'], info['n_layers'], info['hidden'], seq, name == 'seed'):.1f}%"
        lt = "<" if r.get("upper_bound") else ""
        print(f"{name:<20}{lt + format(r['tokens_per_s'], '.1f'):>11}{r['peak_mem_gb']:>9.2f}{mfu:>8}  {r['options']}")
    if {"lab", "trl", "seed"} <= set(results):
        lab = results["lab"]["tokens_per_s"]

        def ratio(other):
            r = results[other]
            return (">" if r.get("upper_bound") else "") + f"{lab / r['tokens_per_s']:.2f}"
        print(f"lab/trl={ratio('trl')} lab/seed={ratio('seed')}")


if __name__ == "__main__":
    main()
