"""What a round shows: its ratings in numbers, and how far its policy has moved from the reference.

    from labs.feedback import measure
    measure.rating_stats(store.ratings("my-loop", 2), threshold=4)   # {"n", "rated", "mean", "sd", "thumbs_up", ...}
    measure.policy_kl(loaded.model, loaded.tokenizer, prompts, completions)   # mean per-token KL, nats

KL to the reference: the policy is the reference (the loop's starting model) plus a LoRA adapter, so the
reference is the same weights with the adapter switched off. On the policy's own samples (prompt +
completion, re-tokenized), at every completion position t the full next-token distributions are compared,
KL(policy_t || reference_t) = sum_v p(v) (log p(v) - log q(v)), and the mean over all completion tokens is
reported (nats per token). That is the quantity RLHF's KL penalty holds down; 0 for the starting model.
"""
from __future__ import annotations

import math

KL_BATCH = 8  # answers per forward pass of the KL measurement (one pass with the adapter, one without)


def rating_stats(ratings: list[dict], threshold: float = 4.0, samples: int | None = None) -> dict:
    """Mean and spread of a round's ratings: per sample the mean over its raters, then over samples.
    thumbs_up: share of rated samples whose mean reaches `threshold` (thumbs up are stored as 5)."""
    per: dict[int, list[float]] = {}
    raters: dict[str, int] = {}
    simulated = False
    for r in ratings:
        per.setdefault(r["sample_id"], []).append(float(r["rating"]))
        raters[r["rater"]] = raters.get(r["rater"], 0) + 1
        simulated = simulated or bool(r.get("simulated"))
    scores = [sum(v) / len(v) for v in per.values()]
    out = {"rated": len(scores), "ratings": len(ratings), "raters": raters, "simulated": simulated,
           "mean": None, "sd": None, "thumbs_up": None}
    if samples is not None:
        out["n"] = samples
    if scores:
        mean = sum(scores) / len(scores)
        out.update(mean=mean, sd=math.sqrt(sum((x - mean) ** 2 for x in scores) / len(scores)),
                   thumbs_up=sum(x >= threshold for x in scores) / len(scores))
    return out


def policy_kl(model, tokenizer, prompts: list, completions: list[str], batch_size: int = KL_BATCH,
              progress=None) -> float:
    """Mean per-token KL(policy || reference) in nats over the completions' tokens (0.0 without an adapter).
    `progress(done, total)` hears the answers measured after each batch (empty answers are skipped)."""
    import torch
    from labs.generate import prompt_ids
    if not hasattr(model, "disable_adapter"):
        return 0.0
    rows = []
    for p, c in zip(prompts, completions):
        comp = tokenizer(c, add_special_tokens=False)["input_ids"] if c else []
        if comp:
            rows.append((prompt_ids(tokenizer, p), list(comp)))
    if not rows:
        return 0.0
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    total, tokens = 0.0, 0
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for i in range(0, len(rows), batch_size):
                chunk = rows[i:i + batch_size]
                width = max(len(p) + len(c) for p, c in chunk)
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                pos = torch.zeros((len(chunk), width), dtype=torch.bool)  # positions that predict a completion token
                for j, (p, c) in enumerate(chunk):
                    ids[j, :len(p) + len(c)] = torch.tensor(p + c)
                    mask[j, :len(p) + len(c)] = 1
                    pos[j, len(p) - 1:len(p) + len(c) - 1] = True
                ids, mask = ids.to(model.device), mask.to(model.device)
                logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits[pos.to(model.device)].float(), -1)
                with model.disable_adapter():
                    logq = torch.log_softmax(
                        model(input_ids=ids, attention_mask=mask).logits[pos.to(model.device)].float(), -1)
                total += float((logp.exp() * (logp - logq)).sum())
                tokens += int(pos.sum())
                if progress:
                    progress(min(i + batch_size, len(rows)), len(rows))
    finally:
        model.train(was_training)
    return total / tokens if tokens else 0.0
