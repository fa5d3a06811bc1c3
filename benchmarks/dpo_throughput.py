"""DPO training throughput (the lab's recipe vs plain TRL) and pair generation (batched vs sequential).

    python benchmarks/dpo_throughput.py                        # CPU: default model, bundled preference pairs
    python benchmarks/dpo_throughput.py --pairs pairs.jsonl    # your labels: python -m labs.preference export --out pairs.jsonl
    python benchmarks/dpo_throughput.py --candidates           # also the lab path with each speed option off
    python benchmarks/dpo_throughput.py --only generation      # only the generation comparison

Training: each setup runs in its own process on the same preference pairs with the same LoRA config
(the dpo preset's: r 16, alpha 32, all linear layers, dropout 0) and the same batch size (the preset's
4 pairs), for `--warmup` + `--steps` optimizer steps; only the steps after warm-up count.

  trl       TRL's DPOTrainer with its defaults (DPOConfig(use_cpu=True) on CPU: bf16 autocast, gradient
            checkpointing, the reference = the adapter switched off, computed at every step)
  trl_fp32  the same with bf16=False
  lab       labs.preference.recipe.build_trainer with the dpo preset (what the Preference tab starts)
  lab+X     (--candidates) the lab path with one speed option off

Pairs/s counts pairs trained per second. The lab computes the reference log-probabilities once,
before training: that pass is timed too, and `lab` is charged for it as if the run were one epoch
over the pairs (the least it can be amortized over; every further epoch reuses it). The pass's first
batch is the process's first forward pass, so, like the warm-up steps every setup leaves out, it is
charged at the rate of the later batches. The steady rate without any charge is printed next to it.

Generation: 4 candidates x 64 new tokens per prompt (temperature 0.8, top-p 0.95), by
labs.generate.sample(k=4) in one batched call vs 4 sequential model.generate calls, over the same
prompts, alternating, after one untimed round of each. Candidates/s; new tokens per candidate shown.

The last lines are `generation batched/sequential=<x>` and `lab/trl=<x>` (vs the faster TRL setup).
"""
from __future__ import annotations

import argparse
import json
import os
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
os.environ.setdefault("TQDM_DISABLE", "1")

BUNDLED = ROOT / "assets" / "preference" / "preference.jsonl"
TRL_SETUPS = ("trl", "trl_fp32")
CANDIDATES = {"lab+no_precompute": dict(precompute_ref=False), "lab+trl_head": dict(completion_head=False),
              "lab+fp32": dict(precision="fp32")}


def _rows(path: str) -> list[dict]:
    from labs import data
    return [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in data.to_preference(data.read_rows(path))]


def _cfg(a, **overrides):
    from labs.preference.config import preset
    return preset("dpo", model=a.model, max_steps=a.warmup + a.steps + 1, eval_prompts=0, save_steps=10_000,
                  device=a.device, **overrides)


class Meter:
    """Step start times and pairs/tokens, recorded by wrapping Trainer.training_step."""

    def __init__(self):
        self.t: list[float] = []
        self.pairs: list[int] = []
        self.tokens: list[int] = []

    def wrap(self, trainer):
        inner = trainer.training_step

        def step(model, inputs, *args, **kw):
            self.t.append(time.perf_counter())
            self.pairs.append(int(inputs["input_ids"].shape[0]) // 2)  # chosen and rejected rows
            self.tokens.append(int(inputs["attention_mask"].sum()))
            return inner(model, inputs, *args, **kw)
        trainer.training_step = step

    def result(self, warmup: int) -> dict:
        if len(self.t) < warmup + 2:
            raise SystemExit(f"too few steps measured ({len(self.t)}); raise --steps")
        secs = self.t[-1] - self.t[warmup]
        pairs, tokens = sum(self.pairs[warmup:-1]), sum(self.tokens[warmup:-1])  # the last mark closes a step
        return {"pairs_per_s": pairs / secs, "tokens_per_s": tokens / secs, "steps": len(self.t) - 1 - warmup,
                "seconds": secs}


def _time_precompute():
    """Time DPOTrainer's reference pass and each of its batches (it runs inside __init__, so the class
    methods are wrapped)."""
    from trl import DPOTrainer
    spent = {"seconds": 0.0, "pairs": 0, "batches": []}
    whole, batch = DPOTrainer._precompute_ref_logps, DPOTrainer.compute_ref_log_probs

    def timed(self, dataset, name, batch_size):
        t0 = time.perf_counter()
        out = whole(self, dataset, name, batch_size)
        spent["seconds"] += time.perf_counter() - t0
        spent["pairs"] += len(dataset)
        return out

    def timed_batch(self, model, inputs):
        t0 = time.perf_counter()
        out = batch(self, model, inputs)
        spent["batches"].append(time.perf_counter() - t0)
        return out
    DPOTrainer._precompute_ref_logps, DPOTrainer.compute_ref_log_probs = timed, timed_batch
    return spent


def run_trl(a, out: str, fp32: bool) -> dict:
    import datasets
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer
    from labs import models
    src = models.resolve(a.model)
    if src.kind == "offline-bundle" and not Path(src.path, "model.safetensors").exists():
        src = models.offline_bundle()
    tok = models.load_tokenizer(source=src)
    model = AutoModelForCausalLM.from_pretrained(src.path)
    cfg = _cfg(a)
    extra = {"bf16": False} if fp32 else {}
    args = DPOConfig(output_dir=out, use_cpu=a.device == "cpu", max_steps=cfg.max_steps, report_to=[],
                     save_strategy="no", per_device_train_batch_size=cfg.batch_size, **extra)
    trainer = DPOTrainer(model=model, args=args, train_dataset=datasets.Dataset.from_list(_rows(a.pairs)),
                         processing_class=tok, peft_config=_lora(cfg))
    meter = Meter()
    meter.wrap(trainer)
    trainer.train()
    prec = "bf16" if args.bf16 else "fp32"
    return {**meter.result(a.warmup), "precision": prec,
            "options": f"TRL defaults{' but bf16=False' if fp32 else ''}: gradient checkpointing "
                       f"{'on' if args.gradient_checkpointing else 'off'}, reference every step, LM head on every "
                       f"position, {prec + ' autocast' if prec == 'bf16' else 'fp32'}"}


def _lora(cfg):
    from peft import LoraConfig
    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, target_modules=cfg.target_modules(),
                      bias="none", task_type="CAUSAL_LM")


def run_lab(a, out: str, overrides: dict) -> dict:
    from labs.preference.recipe import build_trainer
    from labs.sft.recipe import NullSession
    spent = _time_precompute()
    cfg = _cfg(a, **overrides)
    session = NullSession(out)
    trainer, *_ = build_trainer(cfg, session, _rows(a.pairs))
    trainer.args.save_strategy = "no"
    meter = Meter()
    meter.wrap(trainer)
    trainer.train()
    res = meter.result(a.warmup)
    res["steady_pairs_per_s"] = res["pairs_per_s"]
    if spent["pairs"]:  # charge one epoch's share of the reference pass (see the module docstring)
        b = spent["batches"]
        # its first batch is the process's first forward pass (kernel warm-up, as the excluded warm-up steps
        # are for every setup): it is charged at the rate of the later batches
        charged = spent["seconds"] - b[0] + sum(b[1:]) / len(b[1:]) if len(b) > 1 else spent["seconds"]
        res["pairs_per_s"] = 1 / (1 / res["pairs_per_s"] + charged / spent["pairs"])
        res["tokens_per_s"] *= res["pairs_per_s"] / res["steady_pairs_per_s"]
        res["precompute_s"], res["precompute_charged_s"] = spent["seconds"], charged
    speed = session.recorded["speed"]
    res["precision"] = session.recorded["precision"]
    res["options"] = ", ".join([f"batch {cfg.batch_size}", "gradient checkpointing off", res["precision"],
                                "reference precomputed" if speed.get("precompute_ref") else "reference every step",
                                "LM head: answer positions" if speed.get("completion_head") else "LM head: TRL's"])
    return res


# --------------------------------------------------------------------------- generation
def generation(a) -> dict:
    import torch
    from labs import generate, models
    from labs.preference import pairs
    loaded = models.load(a.model, device=a.device)
    model, tok = loaded.model, loaded.tokenizer
    prompts = pairs.load_prompts("prompts", "train")[:a.gen_prompts]
    kw = dict(temperature=0.8, top_p=0.95, max_new_tokens=64)
    pad = tok.pad_token_id

    def tokens(text):  # new tokens of an answer, counted the same way for both (EOS not included)
        return len(tok(text)["input_ids"])

    def batched(p, seed):
        return [tokens(t) for t in generate.sample(model, tok, [p], k=4, seed=seed, **kw)[0]]

    def sequential(p, seed):
        ids = tok.apply_chat_template(p, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        n = []
        for j in range(4):
            torch.manual_seed(seed + j)
            with torch.inference_mode():
                g = model.generate(input_ids=ids["input_ids"].to(model.device),
                                   attention_mask=ids["attention_mask"].to(model.device), do_sample=True,
                                   pad_token_id=pad, **kw)
            n.append(tokens(tok.decode(g[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()))
        return n
    batched(prompts[0], 0), sequential(prompts[0], 0)  # warm-up, untimed
    spent = {"batched": [0.0, 0, 0], "sequential": [0.0, 0, 0]}  # seconds, candidates, new tokens
    for i, p in enumerate(prompts):
        order = (("batched", batched), ("sequential", sequential))
        for name, fn in (order if i % 2 == 0 else order[::-1]):  # alternate: load drift hits both alike
            t0 = time.perf_counter()
            n = fn(p, 100 + i)
            s = spent[name]
            s[0] += time.perf_counter() - t0
            s[1] += len(n)
            s[2] += sum(n)
    return {k: {"candidates_per_s": v[1] / v[0], "seconds": v[0], "candidates": v[1], "new_tokens": v[2] / v[1]}
            for k, v in spent.items()}


def child(a) -> None:
    import torch
    with tempfile.TemporaryDirectory() as out:
        if a.one == "generation":
            res = generation(a)
        elif a.one in TRL_SETUPS:
            res = run_trl(a, out, fp32=a.one == "trl_fp32")
        else:
            res = run_lab(a, out, CANDIDATES.get(a.one, {}))
    res["threads"] = torch.get_num_threads()
    print("RESULT " + json.dumps(res), flush=True)


def _shape(path: str) -> str:
    from labs import models
    from labs.preference.odds import tokenize_pair
    tok = models.load_tokenizer("default")
    toks = [tokenize_pair(tok, r) for r in _rows(path)]
    mean = lambda k: sum(len(t[k]) for t in toks) / len(toks)  # noqa: E731
    return (f"{len(toks)} pairs, mean tokens: prompt {mean('prompt_ids'):.0f}, chosen {mean('chosen_ids'):.0f}, "
            f"rejected {mean('rejected_ids'):.0f}")


def _cpu_name() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "CPU")
    flags = set(next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), []))
    have = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{name}, {os.cpu_count()} cores, {' '.join(have) or 'no AVX2'}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--pairs", default=str(BUNDLED), help="preference rows (.jsonl): bundled set, or exported labels")
    ap.add_argument("--steps", type=int, default=8, help="measured optimizer steps per setup")
    ap.add_argument("--warmup", type=int, default=2, help="steps excluded (kernel warm-up)")
    ap.add_argument("--gen-prompts", type=int, default=6, help="prompts for the generation comparison")
    ap.add_argument("--candidates", action="store_true", help="also the lab path with each speed option off")
    ap.add_argument("--only", default="", help="comma list of setups (generation,trl,trl_fp32,lab,lab+...)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        return child(a)
    setups = ["generation", *TRL_SETUPS, "lab"] + (list(CANDIDATES) if a.candidates else [])
    if a.only:
        setups = [s for s in a.only.split(",") if s]
    unknown = [s for s in setups if s not in ("generation", *TRL_SETUPS, "lab", *CANDIDATES)]
    if unknown:
        ap.exit(2, f"error: --only: unknown setup {', '.join(unknown)}\n")
    results = {}
    for name in setups:
        cmd = [sys.executable, __file__, "--one", name, "--model", a.model, "--device", a.device, "--pairs", a.pairs,
               "--steps", str(a.steps), "--warmup", str(a.warmup), "--gen-prompts", str(a.gen_prompts)]
        t0 = time.time()
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
        if p.returncode or not line:
            print(f"{name}: failed\n{p.stderr[-2000:]}", file=sys.stderr)
            continue
        results[name] = json.loads(line[-1][7:])
        print(f"  {name}: done ({time.time() - t0:.0f}s wall)", flush=True)

    from labs import models
    print(f"\nOn {a.device} ({_cpu_name()}; {models.resolve(a.model).describe()})")
    gen = results.get("generation")
    if gen:
        print("Pair generation, 4 candidates x 64 new tokens per prompt:")
        for k in ("batched", "sequential"):
            g = gen[k]
            print(f"  {k:<11}{g['candidates_per_s']:>7.2f} candidates/s  ({g['candidates']} candidates, "
                  f"{g['new_tokens']:.0f} new tokens each on average, {g['seconds']:.1f} s)")
    train = {k: v for k, v in results.items() if k != "generation"}
    if train:
        print(f"DPO training, {_shape(a.pairs)}; {a.steps} steps after {a.warmup} warm-up steps:")
        print(f"  {'setup':<20}{'pairs/s':>9}{'tok/s':>8}  options")
        for name, r in train.items():
            extra = f" (steady {r['steady_pairs_per_s']:.2f} pairs/s; reference pass {r['precompute_s']:.1f} s, " \
                    f"charged {r['precompute_charged_s']:.1f} s)" if r.get("precompute_s") else ""
            print(f"  {name:<20}{r['pairs_per_s']:>9.2f}{r['tokens_per_s']:>8.0f}  {r['options']}{extra}")
    if gen:
        print(f"generation batched/sequential={gen['batched']['candidates_per_s'] / gen['sequential']['candidates_per_s']:.2f}")
    trl = [n for n in TRL_SETUPS if n in results]
    if "lab" in results and trl:
        best = max(trl, key=lambda n: results[n]["pairs_per_s"])
        print(f"lab/trl={results['lab']['pairs_per_s'] / results[best]['pairs_per_s']:.2f} (vs {best})")


if __name__ == "__main__":
    main()
