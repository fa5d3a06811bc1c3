"""GPU paths in one pass: device and dtype choice, bf16 inference, a real SFT run through the run
engine on the GPU (tokens/s, peak memory), and that Kill really frees the GPU's memory.

    python benchmarks/gpu_check.py                          # the default model
    python benchmarks/gpu_check.py --model ./some-model     # any model spec
    python benchmarks/gpu_check.py --random-init DIR        # DIR holds config.json + tokenizer only:
                                                            # same architecture, random weights (speed only)

Prints a table; exits 1 if a check fails. Run benchmarks/sft_throughput.py --device cuda for the
side-by-side throughput table.
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
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def gpu_used_mib() -> int:
    out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else -1


def random_model(config_dir: Path, out: Path) -> Path:
    """Same architecture and tokenizer as config_dir, random weights (for speed checks only)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(config_dir))
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(config_dir).save_pretrained(out)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--random-init", default=None)
    ap.add_argument("--steps", type=int, default=40)
    a = ap.parse_args()
    import torch
    rows, ok = [], True

    def check(name, passed, detail):
        nonlocal ok
        ok &= bool(passed)
        rows.append((name, "ok" if passed else "FAIL", detail))
        print(f"{name:<34} {'ok' if passed else 'FAIL':<5} {detail}", flush=True)

    if not torch.cuda.is_available():
        print("no CUDA device")
        return 1
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    os.environ["LAB_DATA_DIR"] = str(work / "lab_data")
    spec = a.model
    if a.random_init:
        spec = str(random_model(Path(a.random_init), work / "random-model"))
    from labs import generate, models, runs

    dev = models.pick_device()
    dt = models.pick_dtype(dev)
    check("device/dtype auto", dev.type == "cuda" and dt in (torch.bfloat16, torch.float16),
          f"{torch.cuda.get_device_name()} · {dt} · bf16 supported={torch.cuda.is_bf16_supported()}")

    torch.cuda.reset_peak_memory_stats()
    loaded = models.load(spec)
    p = next(loaded.model.parameters())
    t0 = time.perf_counter()
    text = generate.chat(loaded, "Name three colours.", max_new_tokens=64)
    gen_s = time.perf_counter() - t0
    check("inference load + generate", p.device.type == "cuda" and p.dtype == dt,
          f"{loaded.header()} · load {loaded.load_seconds:.1f}s · 64 new tokens in {gen_s:.2f}s · "
          f"peak {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB · {text[:40]!r}")
    del loaded
    models.CACHE._items.clear()
    torch.cuda.empty_cache()

    base_used = gpu_used_mib()
    cfg = dict(model=spec or "default", dataset="instruct", max_steps=a.steps, eval_steps=0, eval_rows=0,
               logging_steps=5, device="cuda", precision="auto")
    run = runs.submit("sft", cfg, name="gpu-check")
    st = runs.wait(run.id, timeout_s=420)
    m = [r for r in run.metrics() if r.get("tokens_per_s")]
    tps = [r["tokens_per_s"] for r in m[1:]] or [0]
    rec = run.record()
    check("SFT run on GPU (run engine)", st["state"] == "finished",
          f"{st['state']} · {a.steps} steps · precision {rec.get('precision')} · "
          f"median {sorted(tps)[len(tps) // 2]:.0f} tokens/s · {st.get('error') or ''}")

    long = runs.submit("sft", {**cfg, "max_steps": 100000, "logging_steps": 1}, name="gpu-kill")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(long.metrics()) < 3:
        time.sleep(1)
    during = gpu_used_mib()
    runs.kill(long.id)
    time.sleep(3)
    after = gpu_used_mib()
    check("Kill frees GPU memory", during > base_used + 100 and after <= base_used + 50,
          f"before {base_used} MiB · training {during} MiB · after kill {after} MiB")
    print(json.dumps({"rows": rows}), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
