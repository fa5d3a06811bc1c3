"""ORPO's log odds ratio, from a model's own likelihoods of two answers to one prompt.

    from labs.preference import odds
    scores = odds.pair_scores(model, tokenizer, rows)   # rows: {prompt, chosen, rejected} (chat lists or text)
    scores[0]["log_odds_ratio"]                         # > 0: the model already favours the chosen answer
    odds.log_odds_ratio(-0.9, -1.4)                     # from two mean token log-probabilities

For an answer y to a prompt x, ORPO (Hong et al., 2024) takes p = exp(mean over y's tokens of
log P(token | x, the tokens before it)), the odds p / (1 - p), and the log odds ratio
log odds(chosen) - log odds(rejected). Its loss is the supervised loss on the chosen answer minus
beta * log sigmoid(that ratio) - TRL's ORPOTrainer.odds_ratio_loss. Prompt and answers are tokenized
as TRL's DPOTrainer does (the chat template with its generation prompt; the answer is what the full
conversation adds to it, end-of-turn token included), so these numbers and the trainer's agree.
"""
from __future__ import annotations

import math

WHY_NOT_A_COLUMN = (
    "ORPO's odds ratio is not a number you can put in a dataset. ORPO computes it at every training step from "
    "the model's own probabilities: p = exp(mean log-probability of the answer's tokens), odds = p/(1-p), and "
    "the loss pushes log odds(chosen) - log odds(rejected) up. As the model learns, those probabilities change, "
    "and so does the ratio - that change is the training signal. A fixed 'odds_ratio' column (as in the "
    "course's example table) was computed once, by some model, before training; it cannot change as this model "
    "learns, so it cannot tell the loss how far this model still has to go. Below: the ratio measured on this "
    "model, per labeled pair, before and after training.")


def log1mexp(x: float) -> float:
    """log(1 - exp(x)) for x < 0, stable on both sides of -log 2 (as TRL's ORPO computes it)."""
    return math.log1p(-math.exp(x)) if x < -math.log(2) else math.log(-math.expm1(x))


def log_odds(mean_logp: float) -> float:
    """log(p / (1 - p)) for p = exp(mean_logp); mean_logp must be below 0."""
    return mean_logp - log1mexp(mean_logp)


def log_odds_ratio(chosen_mean_logp: float, rejected_mean_logp: float) -> float:
    return log_odds(chosen_mean_logp) - log_odds(rejected_mean_logp)


# --------------------------------------------------------------------------- tokenization (as TRL's DPO)
def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _ids(tokenizer, msgs, generation_prompt: bool = False) -> list[int]:
    if isinstance(msgs, str):
        return list(tokenizer(msgs)["input_ids"])
    out = tokenizer.apply_chat_template(msgs, add_generation_prompt=generation_prompt, tokenize=True,
                                        return_dict=True)
    return list(out["input_ids"])


def tokenize_pair(tokenizer, row: dict) -> dict:
    """{"prompt_ids", "chosen_ids", "rejected_ids"} as TRL's DPOTrainer builds them for `row`."""
    prompt, chosen, rejected = row["prompt"], row["chosen"], row["rejected"]
    if isinstance(prompt, str):  # standard (text) rows: the answers continue the prompt, then EOS
        eos = tokenizer.eos_token or ""
        chosen, rejected = (t if t.endswith(eos) else t + eos for t in (chosen, rejected))
        p, pc, pr = _ids(tokenizer, prompt), _ids(tokenizer, prompt + chosen), _ids(tokenizer, prompt + rejected)
    else:
        p = _ids(tokenizer, prompt, generation_prompt=True)
        pc, pr = _ids(tokenizer, prompt + chosen), _ids(tokenizer, prompt + rejected)
    n = min(_common_prefix(p, pc), _common_prefix(p, pr))
    return {"prompt_ids": p[:n], "chosen_ids": pc[n:], "rejected_ids": pr[n:]}


# --------------------------------------------------------------------------- likelihoods
def sequence_logps(model, prompts: list[list[int]], answers: list[list[int]], batch_size: int = 8,
                   max_length: int | None = None) -> list[tuple[float, int]]:
    """(sum of the answer tokens' log-probabilities, number of answer tokens) for each prompt + answer."""
    import torch
    out: list[tuple[float, int]] = []
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.inference_mode():
            for i in range(0, len(prompts), batch_size):
                seqs = [p + a for p, a in zip(prompts[i:i + batch_size], answers[i:i + batch_size])]
                starts = [len(p) for p in prompts[i:i + batch_size]]
                if max_length:
                    seqs = [s[:max_length] for s in seqs]
                width = max(len(s) for s in seqs)
                ids = torch.zeros((len(seqs), width), dtype=torch.long)
                mask = torch.zeros((len(seqs), width), dtype=torch.long)
                for j, s in enumerate(seqs):  # right padding: positions stay 0..n-1 for every row
                    ids[j, :len(s)] = torch.tensor(s)
                    mask[j, :len(s)] = 1
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False).logits
                for j, s in enumerate(seqs):
                    a, b = starts[j], len(s)
                    if b <= a:
                        out.append((0.0, 0))
                        continue
                    lp = logits[j, a - 1:b - 1].float().log_softmax(-1)  # position t predicts token t+1
                    tgt = ids[j, a:b].to(lp.device)
                    out.append((lp.gather(-1, tgt[:, None]).sum().item(), b - a))
    finally:
        model.train(was_training)
    return out


def pair_scores(model, tokenizer, rows: list[dict], batch_size: int = 8, max_length: int | None = None) -> list[dict]:
    """Per pair: summed and mean answer log-probabilities of chosen and rejected, and ORPO's log odds ratio."""
    toks = [tokenize_pair(tokenizer, r) for r in rows]
    prompts = [t["prompt_ids"] for t in toks]
    both = sequence_logps(model, prompts + prompts, [t["chosen_ids"] for t in toks] + [t["rejected_ids"] for t in toks],
                          batch_size=batch_size, max_length=max_length)
    n = len(rows)
    out = []
    for (cs, cn), (rs, rn) in zip(both[:n], both[n:]):
        cm, rm = cs / max(cn, 1), rs / max(rn, 1)
        out.append({"chosen_logp": cs, "rejected_logp": rs, "chosen_tokens": cn, "rejected_tokens": rn,
                    "chosen_mean_logp": cm, "rejected_mean_logp": rm,
                    "log_odds_ratio": log_odds_ratio(min(cm, -1e-7), min(rm, -1e-7))})
    return out
