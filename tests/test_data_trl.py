"""Converted preference and KTO files load unchanged into TRL 1.16's DPOTrainer and KTOTrainer and train."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from labs import data

ROOT = Path(__file__).resolve().parents[1]


def _convert(src, to, out):
    """Through the CLI, as a user would: the written JSONL is what the trainer reads."""
    r = subprocess.run([sys.executable, "-m", "labs.data", "convert", str(src), "--to", to, "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "detected format:" in r.stdout and "wrote" in r.stdout
    return out


@pytest.mark.slow  # a CLI conversion and a TRL trainer: 3-10 s each on 2 loaded cores
@pytest.mark.parametrize("kind", ["dpo", "kto"])
def test_converted_file_trains_two_steps(kind, tiny_model_dir, tmp_path):
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = ROOT / "assets" / "formats" / ("preference_ab.csv" if kind == "dpo" else "preference_implicit.jsonl")
    out = _convert(src, "preference" if kind == "dpo" else "kto", tmp_path / f"{kind}.jsonl")
    ds = load_dataset("json", data_files=str(out), split="train")
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    common = dict(output_dir=str(tmp_path / "run"), use_cpu=True, report_to=[], max_steps=2, learning_rate=1e-2,
                  per_device_train_batch_size=4, logging_steps=1, save_strategy="no", max_length=128)
    if kind == "dpo":
        from trl import DPOConfig, DPOTrainer
        trainer = DPOTrainer(model=model, args=DPOConfig(**common), train_dataset=ds, processing_class=tok)
    else:
        from trl import KTOConfig, KTOTrainer
        trainer = KTOTrainer(model=model, args=KTOConfig(**common), train_dataset=ds.shuffle(seed=0),
                             processing_class=tok)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    changed = [n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())]
    assert changed, "no parameter changed"


def test_converted_rows_have_trl_types():
    from trl.data_utils import is_conversational
    pref = data.to_preference(data.read_file(ROOT / "assets/preference/preference.jsonl"))
    assert len(pref) == 47 and all(set(r) == {"prompt", "chosen", "rejected"} and is_conversational(r) for r in pref)
    kto = data.to_kto(pref, "preference")
    assert len(kto) == 94 and sum(r["label"] for r in kto) == 47
    # each pair becomes a desirable and an undesirable row with the same prompt
    assert kto[:2] == [{"prompt": pref[0]["prompt"], "completion": pref[0]["chosen"], "label": True},
                       {"prompt": pref[0]["prompt"], "completion": pref[0]["rejected"], "label": False}]
    src = data.read_file(ROOT / "assets/formats/preference.jsonl")
    std = data.to_preference(src, conversational=False)
    assert not any(is_conversational(r) for r in std)
    # standard form: the same texts as plain strings (TRL's "standard" preference type)
    assert [(r["prompt"], r["chosen"], r["rejected"]) for r in std] == \
        [(r["prompt"], r["chosen"], r["rejected"]) for r in src]
