"""The lab's decoding loop against transformers' generate: same greedy answers, same sampling distribution."""
from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from labs import generate


@pytest.mark.parametrize("temperature,top_k,top_p", [(0.8, 50, 0.95), (1.3, 0, 0.9), (0.5, 7, 1.0), (1.0, 50, 0.3)])
def test_sampling_distribution_is_transformers_warpers(temperature, top_k, top_p):
    torch.manual_seed(0)
    logits = torch.randn(5, 300) * 3
    want = TemperatureLogitsWarper(temperature)(None, logits.clone())
    if top_k:
        want = TopKLogitsWarper(top_k)(None, want)
    if top_p < 1:
        want = TopPLogitsWarper(top_p)(None, want)
    vals, idx = generate.candidates(logits, temperature, top_k, top_p)
    got = torch.full_like(logits, float("-inf")).scatter(1, idx, vals)
    assert torch.equal(torch.isinf(got), torch.isinf(want))  # the same tokens survive
    torch.testing.assert_close(got.softmax(-1), want.softmax(-1))


def _model(tok):
    """A tiny random Llama whose greedy answers vary from token to token (a wider init than the shared
    fixture's, whose answers repeat one token) — so a wrong position or cache row would show."""
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, initializer_range=0.2,
                                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                        pad_token_id=tok.pad_token_id))


def _hf_greedy(model, tok, prompt, n, **kw):
    enc = tok.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=n, do_sample=False, pad_token_id=tok.pad_token_id, **kw)
    return out[0, enc["input_ids"].shape[1]:].tolist()


def test_greedy_batch_of_ragged_prompts_equals_generate_one_by_one(default_tokenizer):
    """Left padding, position ids and the cache are right: each answer of a batched call is the one
    transformers' generate gives that prompt alone — also when some rows stop early and leave the batch."""
    tok = default_tokenizer
    model = _model(tok).eval()
    prompts = [[{"role": "user", "content": t}] for t in ("hi", "a much longer question about many things here",
                                                          "two words")]
    want = [_hf_greedy(model, tok, p, 12) for p in prompts]
    assert generate.greedy(model, tok, prompts, max_new_tokens=12) == \
        [tok.decode(w, skip_special_tokens=True).strip() for w in want]
    # a stop token met at different steps by different rows: rows that end are dropped from the batch
    first = next(i for i, t in enumerate(want[0]) if i and t not in want[0][:i])  # a token new at step i
    stop = want[0][first]
    ids, mask = generate._left_padded([generate.prompt_ids(tok, p) for p in prompts], tok.pad_token_id)
    with torch.inference_mode():
        got = generate._decode(model, ids, mask, k=1, max_new_tokens=12, temperature=0, top_k=50, top_p=1.0,
                               stop={stop})
    for p, g in zip(prompts, got):
        ref = _hf_greedy(model, tok, p, 12, eos_token_id=stop)
        assert g == [t for t in ref if t != stop][:len(g)] and (len(g) == 12 or ref[len(g)] == stop)
    assert len(got[0]) == first and any(len(g) == 12 for g in got)  # one row stopped, another did not


def test_generation_config_penalty_and_suppressed_tokens_are_applied_as_generate_does(default_tokenizer):
    tok = default_tokenizer
    model = _model(tok).eval()
    prompts = [[{"role": "user", "content": t}] for t in ("hi", "a longer question than the first one")]
    plain = generate.greedy(model, tok, prompts, max_new_tokens=10)
    model.generation_config.repetition_penalty = 3.0
    model.generation_config.suppress_tokens = _hf_greedy(model, tok, prompts[1], 2)[:1]
    want = [tok.decode(_hf_greedy(model, tok, p, 10), skip_special_tokens=True).strip() for p in prompts]
    got = generate.greedy(model, tok, prompts, max_new_tokens=10)
    assert got == want and got != plain


def test_sampling_is_reproducible_per_seed_and_candidates_differ(default_tokenizer):
    model = _model(default_tokenizer).train()
    prompts = [[{"role": "user", "content": "hello"}], "plain text goes on"]
    kw = dict(k=3, temperature=1.0, top_p=0.95, max_new_tokens=8)
    a = generate.sample(model, default_tokenizer, prompts, seed=7, **kw)
    assert a == generate.sample(model, default_tokenizer, prompts, seed=7, **kw)
    assert [len(c) for c in a] == [3, 3]
    assert len(set(a[0])) > 1  # k candidates of one prompt are drawn apart, not copies
    assert a != generate.sample(model, default_tokenizer, prompts, seed=8, **kw)
    assert model.training  # put back as it was
