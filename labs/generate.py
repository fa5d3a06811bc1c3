"""One batched sampler: k candidates per prompt, for the chat, the labeler, the RLHF loop and evaluation.

    from labs import generate, models
    loaded = models.CACHE.get("default")
    generate.sample(loaded.model, loaded.tokenizer, [[{"role": "user", "content": "Hi"}]], k=4,
                    temperature=0.8, top_p=0.95, max_new_tokens=64, seed=0)      # -> [[4 answers]]
    generate.chat(loaded, "What is the capital of France?")                   # one greedy answer

A prompt is a chat (a list of {role, content} turns: the chat template and its generation prompt are
applied) or a plain string (continued as it is: TRL's standard form). Prompts are left-padded by hand
into batches of `batch_size` prompts × k candidates, so the tokenizer — often shared by every user
of the app — is never changed. temperature 0 is greedy (then k > 1 gives k equal answers, so it is
refused). `seed` makes a call reproducible: batch b is sampled after torch.manual_seed(seed + b).
`adapter=False` answers with a PEFT model's adapter switched off (the base model), in the same
weights in memory.
"""
from __future__ import annotations

import contextlib


class GenerateError(ValueError):
    """Sampling settings that cannot work; the message says which and why."""


def check_settings(k: int, temperature: float, top_p: float, max_new_tokens: int) -> None:
    if k < 1:
        raise GenerateError(f"k: at least 1 candidate per prompt, got {k}")
    if temperature < 0:
        raise GenerateError(f"temperature: 0 (greedy) or more, got {temperature}")
    if temperature == 0 and k > 1:
        raise GenerateError("temperature 0 is greedy: k candidates would all be equal; raise the temperature")
    if not 0 < top_p <= 1:
        raise GenerateError(f"top_p: between 0 (exclusive) and 1, got {top_p}")
    if max_new_tokens < 1:
        raise GenerateError(f"max_new_tokens: at least 1, got {max_new_tokens}")


def prompt_ids(tokenizer, prompt) -> list[int]:
    """Token ids a model continues from: the chat template with its generation prompt, or the plain text."""
    if isinstance(prompt, str):
        return list(tokenizer(prompt)["input_ids"])
    out = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=True)
    return list(out["input_ids"])


def _left_padded(rows: list[list[int]], pad_id: int):
    import torch
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r):] = 1
    return ids, mask


def sample(model, tokenizer, prompts: list, *, k: int = 1, temperature: float = 0.0, top_p: float = 1.0,
           max_new_tokens: int = 128, seed: int | None = None, batch_size: int = 16,
           adapter: bool = True) -> list[list[str]]:
    """k answers for each prompt (a list of k strings per prompt, in the prompts' order)."""
    import torch
    check_settings(k, temperature, top_p, max_new_tokens)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    per_batch = max(1, batch_size // k) if k <= batch_size else 1  # prompts per call; each brings k rows
    kw = dict(do_sample=True, temperature=temperature, top_p=top_p) if temperature > 0 else dict(do_sample=False)
    no_adapter = model.disable_adapter() if (not adapter and hasattr(model, "disable_adapter")) \
        else contextlib.nullcontext()
    was_training = model.training
    model.eval()
    out: list[list[str]] = []
    try:
        with no_adapter, torch.inference_mode():
            for b, i in enumerate(range(0, len(prompts), per_batch)):
                chunk = [prompt_ids(tokenizer, p) for p in prompts[i:i + per_batch]]
                ids, mask = _left_padded([r for r in chunk for _ in range(k)], pad)
                if seed is not None:
                    torch.manual_seed(seed + b)
                gen = model.generate(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                                     max_new_tokens=max_new_tokens, pad_token_id=pad, **kw)
                texts = tokenizer.batch_decode(gen[:, ids.shape[1]:], skip_special_tokens=True)
                out += [[t.strip() for t in texts[j * k:(j + 1) * k]] for j in range(len(chunk))]
    finally:
        model.train(was_training)
    return out


def greedy(model, tokenizer, prompts: list, max_new_tokens: int = 48, batch_size: int = 16) -> list[str]:
    """One greedy answer per prompt (held-out metrics, the answers logged at each evaluation)."""
    return [c[0] for c in sample(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)]


def chat(loaded, message: list[dict] | str, max_new_tokens: int = 128, temperature: float = 0.0,
         seed: int | None = None, adapter: bool = True) -> str:
    """One answer from a loaded model (labs.models.Loaded); a string is one user turn."""
    if isinstance(message, str):
        message = [{"role": "user", "content": message}]
    return sample(loaded.model, loaded.tokenizer, [message], temperature=temperature,
                  top_p=0.95 if temperature > 0 else 1.0, max_new_tokens=max_new_tokens, seed=seed,
                  adapter=adapter)[0][0]
