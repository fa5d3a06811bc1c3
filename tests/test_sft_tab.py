"""The SFT tab through gradio_client: preset, YAML, mask preview, a bad value, start a tiny run, follow it,
base vs fine-tuned answers, merge and export with a model card."""
from __future__ import annotations

import json

import pytest


def greedy_answer(model, tok, prompt: str, max_new_tokens: int) -> str:
    """Reference: the chat template and greedy decoding, by hand with transformers."""
    import torch
    enc = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
    return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).strip()


@pytest.fixture
def client(data_dir, tiny_model_dir, serve_tab):
    from components import sft_tab
    with serve_tab(sft_tab, data_dir, str(tiny_model_dir)) as c:
        yield c


@pytest.mark.slow
def test_sft_tab_end_to_end(client, tiny_model_dir, tmp_path, data_dir):
    from labs import runs
    from labs.sft.config import SFTRunConfig
    from labs.sft.data import load_splits
    from components.sft_tab import FIELDS

    values = list(client.predict("sentiment", api_name="/sft_preset"))
    form = dict(zip(FIELDS, values[:len(FIELDS)]))
    assert form["task"] == "sentiment" and form["dataset"] == "sentiment-real" and form["data_tasks"] == ""
    assert "accuracy" in values[-1]

    # the mask preview shows the answer trained and the prompt masked
    hl, note = client.predict(str(tiny_model_dir), "instruct", "sentiment", 0, 512, True, api_name="/sft_mask_preview")
    trained = "".join(t["token"] for t in hl if t["class_or_confidence"] == "trained")
    assert trained.strip().split("<|im_end|>")[0] in ("positive", "negative", "neutral") and "trained" in note
    assert "⚠️" not in note
    _, cut_note = client.predict(str(tiny_model_dir), "instruct", "sentiment", 0, 20, True, api_name="/sft_mask_preview")
    assert "0 trained" in cut_note and "cuts the whole answer of 1 of 1 rows" in cut_note

    # a small run on a tiny dataset
    rows = load_splits("instruct", ["sentiment"])["train"][:10]
    data = tmp_path / "tiny.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    form.update(dataset=str(data), data_tasks="", max_steps=2, batch_size=2, eval_steps=2, eval_rows=1,
                max_length=96, device="cpu")
    args = [str(tiny_model_dir), *[form[f] for f in FIELDS]]
    yaml_text, cmd = client.predict(*args, api_name="/sft_config_yaml")
    assert SFTRunConfig.from_dict(__import__("yaml").safe_load(yaml_text)).max_steps == 2
    assert cmd.startswith("python -m labs.sft --config run.yaml")

    bad = dict(form, learning_rate=5.0)
    _, msg = client.predict(str(tiny_model_dir), *[bad[f] for f in FIELDS], api_name="/sft_start")
    assert "learning_rate" in msg and not runs.list_runs()

    run_id, msg = client.predict(*args, api_name="/sft_start")
    assert [r.id for r in runs.list_runs()] == [run_id] and "Started" in msg
    st = runs.wait(run_id, timeout_s=400)
    assert st["state"] == "finished", runs.get(run_id).log_tail()

    overlay, extra, gens, metrics_md, preds = client.predict(run_id, [], api_name="/sft_details")
    run_dir = runs.get(run_id).dir
    m = json.loads((run_dir / "eval_metrics.json").read_text())
    for k in ("accuracy", "f1"):  # the run's held-out numbers, base next to fine-tuned
        assert f"| {k} | {m['base/' + k]} | {m[k]} |" in metrics_md, metrics_md
    logged = [g for r in runs.get(run_id).metrics() if "eval_generations" in r for g in r["eval_generations"]]
    assert gens["headers"] == ["step", "prompt", "answer", "reference"] and len(gens["data"]) == len(logged) == 1
    assert gens["data"][0][0] == 2 and gens["data"][0][2:] == [logged[0]["answer"], logged[0]["reference"]]

    base_answer, tuned_answer = client.predict(run_id, str(tiny_model_dir), "Review: fine.", 8,
                                               api_name="/sft_compare")
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), run_dir / "adapter")
    assert base_answer == greedy_answer(base, tok, "Review: fine.", 8)
    assert tuned_answer == greedy_answer(tuned, tok, "Review: fine.", 8)

    note, card = client.predict(run_id, "", "", api_name="/sft_export")
    merged = runs.get(run_id).dir / "merged"
    assert (merged / "model.safetensors").exists() and (merged / "README.md").exists()
    assert "base model license" in card and "dataset license" in card and "## Known limitations" in card
    assert "adapter" not in [p.name for p in merged.iterdir()]
