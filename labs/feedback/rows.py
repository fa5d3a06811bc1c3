"""From stored ratings to the rows TRL's trainers read.

    from labs.feedback import rows
    rated = rows.scored(store.ratings("my-loop"))      # one entry per rated sample: its mean rating over raters
    rows.kto_rows(rated, threshold=4)    # [{"prompt", "completion", "label"}]   KTOTrainer (unpaired)
    rows.kto_weights(kto)                # (desirable_weight, undesirable_weight), balanced as the KTO paper advises
    rows.dpo_pairs(rated)                # [{"prompt", "chosen", "rejected"}]    DPOTrainer
    rows.rm_pairs(rated)                 # the same pairs with a "margin"         RewardTrainer

How ratings become rows:
  * A sample's score is the mean of its ratings (several raters may rate one sample). Stars are 1-5;
    thumbs are stored as 5 (up) and 1 (down); best-of-k as 5 (best) and 1 (the others).
  * KTO: every rated sample is one row, desirable when its score reaches the threshold (thumbs up and
    best-of-k winners always do for a threshold in (1, 5]).
  * DPO and the reward model: pairs within one prompt's candidates of one round (the k answers the same
    policy gave to the same prompt): every two candidates whose scores differ give a pair, the higher one
    chosen. Equal scores give nothing; so do equal texts.
  * The reward model's pairs carry margin = (score difference) / 4, Llama 2's margin loss: a 5-vs-1 pair
    must be separated by a full unit of reward, a 4-vs-3 pair by a quarter.
Rows are chats (the prompt's turns; the answer as one assistant turn), in sample-id order.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict


def _answer(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def _chat(prompt) -> list[dict]:
    return prompt if isinstance(prompt, list) else [{"role": "user", "content": str(prompt)}]


def scored(ratings: list[dict]) -> list[dict]:
    """One entry per rated sample (sample-id order): {sample_id, round, prompt, completion, score, n}."""
    by_sample: dict[int, dict] = {}
    for r in ratings:
        s = by_sample.setdefault(r["sample_id"], {"sample_id": r["sample_id"], "round": r["round"],
                                                  "prompt": r["prompt"], "completion": r["completion"],
                                                  "total": 0.0, "n": 0})
        s["total"] += float(r["rating"])
        s["n"] += 1
    out = []
    for sid in sorted(by_sample):
        s = by_sample[sid]
        out.append({k: v for k, v in s.items() if k != "total"} | {"score": s["total"] / s["n"]})
    return out


def kto_rows(rated: list[dict], threshold: float = 4.0) -> list[dict]:
    return [{"prompt": _chat(s["prompt"]), "completion": _answer(s["completion"]), "label": s["score"] >= threshold}
            for s in rated]


def kto_weights(kto: list[dict]) -> tuple[float, float]:
    """(desirable_weight, undesirable_weight): the smaller side's weight raised so that
    desirable_weight * n_desirable / (undesirable_weight * n_undesirable) lands in [1, 4/3] (KTO paper, Eq. 8,
    as TRL's KTO docs advise): 3 desirable, 9 undesirable -> (3.0, 1.0); 9 and 3 -> (1.0, 3.0). Two decimals,
    rounded so the quotient stays at or just above 1 (TRL's range check rounds to 2 decimals too)."""
    good = sum(1 for r in kto if r["label"])
    bad = len(kto) - good
    if good == 0 or bad == 0 or good == bad:
        return 1.0, 1.0
    if good < bad:  # up to the ratio, from above
        return math.ceil(100 * bad / good) / 100, 1.0
    return 1.0, math.floor(100 * good / bad) / 100  # down to the ratio, from below: the quotient stays >= 1


def _groups(rated: list[dict]) -> list[list[dict]]:
    """Candidates of one prompt in one round, groups in order of their first sample."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for s in rated:
        groups[(s["round"], json.dumps(s["prompt"], sort_keys=True))].append(s)
    return sorted(groups.values(), key=lambda g: g[0]["sample_id"])


def _pairs(rated: list[dict]):
    for group in _groups(rated):
        for i, a in enumerate(group):
            for b in group[i + 1:]:
                if a["score"] == b["score"] or a["completion"].strip() == b["completion"].strip():
                    continue
                hi, lo = (a, b) if a["score"] > b["score"] else (b, a)
                yield hi, lo


def dpo_pairs(rated: list[dict]) -> list[dict]:
    return [{"prompt": _chat(hi["prompt"]), "chosen": _answer(hi["completion"]), "rejected": _answer(lo["completion"])}
            for hi, lo in _pairs(rated)]


def rm_pairs(rated: list[dict]) -> list[dict]:
    return [{"prompt": _chat(hi["prompt"]), "chosen": _answer(hi["completion"]), "rejected": _answer(lo["completion"]),
             "margin": (hi["score"] - lo["score"]) / 4} for hi, lo in _pairs(rated)]


def held_out(prompt, share: float) -> bool:
    """Whether a prompt's pairs are held out of the reward model's training (a hash: the same on every run)."""
    text = json.dumps(prompt, sort_keys=True)
    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % 1000 < share * 1000


def split_pairs(pairs: list[dict], share: float) -> tuple[list[dict], list[dict]]:
    """(train, held out) by prompt, so a held-out pair's prompt was never seen in training."""
    train = [p for p in pairs if not held_out(p["prompt"], share)]
    return train, [p for p in pairs if held_out(p["prompt"], share)]
