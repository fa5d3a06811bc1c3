"""State shared by every user of the app: a model load never blocks other models, shared tokenizers are
never changed, and batched generation gives what one prompt at a time gives."""
from __future__ import annotations

import threading
import time

import pytest

from labs import generate, models

PROMPTS = [[{"role": "user", "content": "Name a colour."}],
           [{"role": "user", "content": "Give me a longer answer about the weather in Paris in spring, please."}],
           "Once upon a time"]


def _invisible(tok) -> list[int]:
    """Special and whitespace-only tokens: a random tiny model likes them, and they decode to nothing."""
    return sorted(set(tok.all_special_ids) | {i for i in range(len(tok)) if not tok.decode([i]).strip()})


def test_generation_answers_while_another_model_loads(tiny_model_dir, monkeypatch):
    cache = models.ModelCache(size=2)
    loaded = cache.get(str(tiny_model_dir))
    expected = generate.chat(loaded, "hi", max_new_tokens=4)
    started, release = threading.Event(), threading.Event()
    calls = []
    real_load = models.load

    def slow_load(spec, **kw):
        calls.append(spec)
        if spec == "slow/model":
            started.set()
            release.wait(60)
            raise models.ModelError("model 'slow/model': not found")
        return real_load(spec, **kw)

    monkeypatch.setattr(models, "load", slow_load)
    errors = []

    def load_slow():
        try:
            cache.get("slow/model")
        except models.ModelError as e:
            errors.append(str(e))

    first, second = threading.Thread(target=load_slow), threading.Thread(target=load_slow)
    first.start()
    assert started.wait(30)
    second.start()  # a second user asking for the same model waits for the same load
    t0 = time.perf_counter()
    answer = generate.chat(cache.get(str(tiny_model_dir)), "hi", max_new_tokens=4)
    assert time.perf_counter() - t0 < 10 and answer == expected  # answered while the other load still runs
    assert first.is_alive()
    release.set()
    first.join(30)
    second.join(30)
    assert errors == ["model 'slow/model': not found"] * 2
    assert calls.count("slow/model") == 1  # one load for both callers
    assert "slow/model" not in cache.loaded_specs()


def test_batched_sampling_equals_one_prompt_at_a_time_and_leaves_the_tokenizer_alone(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model.generation_config.suppress_tokens = _invisible(tok)  # random weights: keep the answers visible
    before = (tok.padding_side, tok.pad_token_id, tok.truncation_side)
    batched = generate.greedy(model, tok, PROMPTS, max_new_tokens=8)
    alone = [generate.greedy(model, tok, [p], max_new_tokens=8)[0] for p in PROMPTS]
    assert all(batched) and batched == alone  # left padding with its attention mask changes nothing
    assert (tok.padding_side, tok.pad_token_id, tok.truncation_side) == before
    # k candidates with a seed: reproducible, and as many as asked
    a = generate.sample(model, tok, PROMPTS[:2], k=3, temperature=1.0, top_p=0.95, max_new_tokens=6, seed=3)
    b = generate.sample(model, tok, PROMPTS[:2], k=3, temperature=1.0, top_p=0.95, max_new_tokens=6, seed=3)
    assert a == b and [len(c) for c in a] == [3, 3]
    assert len({c for cands in a for c in cands}) > 1  # sampling, not k copies of one answer


def test_sampling_settings_are_checked():
    for kw, msg in ((dict(k=2, temperature=0.0), "greedy"), (dict(k=0), "k:"), (dict(top_p=0.0), "top_p"),
                    (dict(max_new_tokens=0), "max_new_tokens"), (dict(temperature=-1.0), "temperature")):
        with pytest.raises(generate.GenerateError, match=msg):
            generate.sample(None, None, ["x"], **kw)


def test_base_answers_come_from_the_same_weights_with_the_adapter_off(tiny_model_dir):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    base.generation_config.suppress_tokens = _invisible(tok)
    plain = generate.greedy(base, tok, PROMPTS[:2], max_new_tokens=6)
    peft = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    with torch.no_grad():
        for n, p in peft.named_parameters():
            if "lora_B" in n:
                p.add_(torch.randn_like(p) * 5)  # an adapter that changes the answers
    tuned = generate.sample(peft, tok, PROMPTS[:2], max_new_tokens=6)
    off = generate.sample(peft, tok, PROMPTS[:2], max_new_tokens=6, adapter=False)
    assert all(plain) and [c[0] for c in off] == plain and [c[0] for c in tuned] != plain
