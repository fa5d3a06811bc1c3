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
Decoding is the lab's own loop over the model's key/value cache (greedy answers are those of
transformers' `generate`; sampling applies temperature, top-k — the model's generation config, else
transformers' 50 — and top-p in generate's order): each prompt is read once and its cache copied for its
k candidates, and a candidate leaves the batch when it ends, so long answers do not drag finished ones
along. The model's generation config's eos tokens, `suppress_tokens` and `repetition_penalty` are
applied too; its other settings (no-repeat n-grams, length penalties, ...) are not.
`adapter=False` answers with a PEFT model's adapter switched off (the base model), in the same
weights in memory.
"""
from __future__ import annotations

import contextlib

from labs.errors import LabError
from labs.gpu import gpu


class GenerateError(LabError, ValueError):
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


def eos_ids(model, tokenizer) -> set[int]:
    """Tokens that end an answer: the model's generation config's eos (an id or a list) and the tokenizer's."""
    ids: set[int] = set()
    for v in (getattr(getattr(model, "generation_config", None), "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(v, int):
            ids.add(v)
        elif isinstance(v, (list, tuple)):
            ids.update(int(x) for x in v)
    return ids


def candidates(logits, temperature: float, top_k: int, top_p: float):
    """(scores, token ids) per row, best first, that sampling draws from (softmax of the scores; a dropped
    token scores -inf): temperature -> top-k -> top-p, the order and cut-offs of transformers' sampling
    warpers. With a top-k the top-p cut is made among those k tokens only (the same tokens survive), so
    the whole vocabulary is never sorted."""
    import torch
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        keep = int((logits >= kth).sum(-1).max())  # ties with the k-th stay, as in transformers
        vals, idx = torch.topk(logits, keep, dim=-1)  # descending
        vals = vals.masked_fill(vals < kth, float("-inf"))  # a row with fewer ties than another keeps k
    else:
        vals, idx = torch.sort(logits, dim=-1, descending=True)
    if top_p < 1:
        probs = vals.softmax(-1)
        # transformers drops the tokens whose probability summed with every less likely token's is <= 1 - top_p
        drop = probs.flip(-1).cumsum(-1).flip(-1) <= 1 - top_p
        drop[:, 0] = False  # the most likely token always stays
        vals = vals.masked_fill(drop, float("-inf"))
    return vals, idx


def _pick(logits, temperature: float, top_k: int, top_p: float):
    """One token per row: the argmax at temperature 0, else a draw from `candidates`."""
    import torch
    if temperature == 0:
        return logits.argmax(-1)
    vals, idx = candidates(logits, temperature, top_k, top_p)
    return idx.gather(1, torch.multinomial(vals.softmax(-1), 1)).squeeze(1)


def _decode(model, ids, mask, *, k: int, max_new_tokens: int, temperature: float, top_k: int, top_p: float,
            stop: set[int], suppress: list[int] | None = None, penalty: float = 1.0) -> list[list[int]]:
    """New tokens (without the stop token) for each prompt row × k candidates, in that order.

    The prompts are read once and their cache copied k times; a candidate that has stopped leaves the
    batch (its rows of the cache are dropped), so the step costs what the candidates still writing need.
    `suppress` tokens are never chosen; `penalty` is transformers' repetition penalty over the prompt
    (padding excluded) and the answer so far."""
    import torch
    dev = model.device
    ids, mask = ids.to(dev), mask.to(dev)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
    cache, logits = out.past_key_values, out.logits[:, -1, :].float()
    seen = None
    if penalty != 1.0:
        seen = torch.zeros_like(logits, dtype=torch.bool)
        rows = torch.arange(ids.shape[0], device=dev)[:, None].expand_as(ids)
        seen[rows[mask == 1], ids[mask == 1]] = True
    if k > 1:
        cache.batch_repeat_interleave(k)
        logits, mask, pos = (t.repeat_interleave(k, dim=0) for t in (logits, mask, pos))
        seen = None if seen is None else seen.repeat_interleave(k, dim=0)
    n = logits.shape[0]
    alive = torch.arange(n, device=dev)
    nxt_pos = pos[:, -1:] + 1
    stop_t = torch.tensor(sorted(stop) or [-1], device=dev)
    suppress_t = torch.tensor(sorted(set(suppress)), device=dev, dtype=torch.long) if suppress else None
    new: list[list[int]] = [[] for _ in range(n)]
    for step in range(max_new_tokens):
        if seen is not None:
            logits = torch.where(seen, torch.where(logits < 0, logits * penalty, logits / penalty), logits)
        if suppress_t is not None:
            logits[:, suppress_t] = float("-inf")
        tok = _pick(logits, temperature, top_k, top_p)
        done = torch.isin(tok, stop_t)
        for row, t, d in zip(alive.tolist(), tok.tolist(), done.tolist()):
            if not d:
                new[row].append(t)
        if step == max_new_tokens - 1 or bool(done.all()):
            break
        if seen is not None:
            seen[torch.arange(len(tok), device=dev), tok] = True
        if bool(done.any()):
            keep = (~done).nonzero().squeeze(1)
            cache.batch_select_indices(keep)
            alive, tok, mask, nxt_pos = alive[keep], tok[keep], mask[keep], nxt_pos[keep]
            seen = None if seen is None else seen[keep]
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
        out = model(input_ids=tok[:, None], attention_mask=mask, position_ids=nxt_pos, past_key_values=cache,
                    use_cache=True)
        cache, logits = out.past_key_values, out.logits[:, -1, :].float()
        nxt_pos = nxt_pos + 1
    return new


@gpu(60)  # on a ZeroGPU Space a GPU is attached for the call; elsewhere a plain call (labs/gpu.py)
def sample(model, tokenizer, prompts: list, *, k: int = 1, temperature: float = 0.0, top_p: float = 1.0,
           max_new_tokens: int = 128, seed: int | None = None, batch_size: int = 16,
           adapter: bool = True, return_ended: bool = False) -> list[list]:
    """k answers for each prompt (a list of k strings per prompt, in the prompts' order). With
    `return_ended`, each answer is (text, ended): ended is False when the answer was cut at max_new_tokens
    before the model wrote an end token."""
    import torch
    check_settings(k, temperature, top_p, max_new_tokens)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    per_batch = max(1, batch_size // k) if k <= batch_size else 1  # prompts per call; each brings k rows
    gc = getattr(model, "generation_config", None)
    top_k = getattr(gc, "top_k", None)
    top_k = 50 if top_k is None else int(top_k)  # transformers' sampling default where a model sets none
    stop = eos_ids(model, tokenizer)
    suppress = list(getattr(gc, "suppress_tokens", None) or [])
    penalty = float(getattr(gc, "repetition_penalty", None) or 1.0)
    no_adapter = model.disable_adapter() if (not adapter and hasattr(model, "disable_adapter")) \
        else contextlib.nullcontext()
    was_training = model.training
    model.eval()
    out: list[list[str]] = []
    try:
        with no_adapter, torch.inference_mode():
            for b, i in enumerate(range(0, len(prompts), per_batch)):
                chunk = [prompt_ids(tokenizer, p) for p in prompts[i:i + per_batch]]
                ids, mask = _left_padded(chunk, pad)
                if seed is not None:
                    torch.manual_seed(seed + b)
                new = _decode(model, ids, mask, k=k, max_new_tokens=max_new_tokens, temperature=temperature,
                              top_k=top_k, top_p=top_p, stop=stop, suppress=suppress, penalty=penalty)
                texts = [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
                if return_ended:  # _decode keeps every token but a stop token: all max_new_tokens = never stopped
                    texts = [(t, len(n) < max_new_tokens) for t, n in zip(texts, new)]
                out += [texts[j * k:(j + 1) * k] for j in range(len(chunk))]
    finally:
        model.train(was_training)
    return out


def greedy(model, tokenizer, prompts: list, max_new_tokens: int = 48, batch_size: int = 16) -> list[str]:
    """One greedy answer per prompt (held-out metrics, the answers logged at each evaluation)."""
    return [c[0] for c in sample(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)]


@gpu(30)
def chat(loaded, message: list[dict] | str, max_new_tokens: int = 128, temperature: float = 0.0,
         seed: int | None = None, adapter: bool = True) -> str:
    """One answer from a loaded model (labs.models.Loaded); a string is one user turn."""
    if isinstance(message, str):
        message = [{"role": "user", "content": message}]
    return sample(loaded.model, loaded.tokenizer, [message], temperature=temperature,
                  top_p=0.95 if temperature > 0 else 1.0, max_new_tokens=max_new_tokens, seed=seed,
                  adapter=adapter)[0][0]
