"""Win rate with a Wilson 95% interval: the blind A/B pass of a trained model against its starting model.

    from labs.preference import winrate
    winrate.win_rate(wins=14, losses=5, ties=1)          # {"rate": 0.725, "low": ..., "high": ..., "n": 20}
    batch, ids = winrate.make_ab_pairs("lab_data/runs/<id>")   # held-out prompts: trained vs starting model
    winrate.winrate_from_labels(batch, trained_spec="lab_data/runs/<id>")

The A/B pairs are stored like any pair (labs.store), in one batch whose model_a / model_b are the two
models, and labeled blind: the annotator does not know which side is which. A tie counts as half a
win for each side, and so does "both bad" (neither answer was better); a pair whose annotators split
evenly (1 vs 1) counts as a tie too. With several annotators on a pair, the majority decides it.
make_ab_pairs samples one answer from the trained model (adapter on) and one from its starting model
(the same weights, adapter off) for each held-out prompt, with the same sampling settings and seed; the
labeler shows each annotator the two in an order of its own, and never says which model wrote which.
A/B batches are named "ab-..." and left out when a run trains on "every batch of the store": they are
held-out prompts, and training on them would mark the test.
The interval is Wilson's score interval, which stays inside [0, 1] and is honest for small n.
"""
from __future__ import annotations

import math

from labs import store
from labs.preference.labels import AB_PREFIX  # the blind A/B batches' prefix, named once (labels leaves them out)

STARTING = "starting model"  # model_b of an A/B pair: the trained spec with its adapter off
Z95 = 1.959963984540054  # the normal quantile for a two-sided 95% interval
TIE_NOTE = "ties (and 'both bad', and evenly split votes) count as half a win for each side"


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for `successes` out of `n` (successes may be fractional: ties count half)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, center - half), min(1.0, center + half)


def win_rate(wins: int, losses: int, ties: int = 0) -> dict:
    n = wins + losses + ties
    score = wins + 0.5 * ties
    low, high = wilson(score, n)
    return {"rate": score / n if n else None, "low": low, "high": high, "n": n, "wins": wins, "losses": losses,
            "ties": ties, "note": TIE_NOTE}


def make_ab_pairs(trained_spec: str, *, n: int = 0, prompts: str = "prompts", temperature: float = 0.8,
                  top_p: float = 0.95, max_new_tokens: int = 96, seed: int = 0, batch: str | None = None,
                  loaded=None, progress=None) -> tuple[str, list[int]]:
    """Store a blind A/B batch: per held-out prompt of `prompts`, one answer of the trained model (side a) and one
    of its starting model (side b, the adapter switched off). `n` > 0 keeps the first n prompts. Returns
    (batch name, pair ids)."""
    import time

    from labs import generate, models
    from labs.preference.pairs import PairsError, load_prompts
    trained_spec = str(trained_spec)
    chosen = load_prompts(prompts, "held_out")
    if n:
        chosen = chosen[:n]
    if not chosen:
        raise PairsError(f"prompts '{prompts}': no held-out prompts for an A/B pass")
    loaded = loaded or models.load(trained_spec)
    if not hasattr(loaded.model, "disable_adapter"):
        raise PairsError(f"{trained_spec}: not a LoRA run or adapter; a blind A/B pass compares a trained adapter "
                         f"with its starting model")
    generate.check_settings(1, temperature, top_p, max_new_tokens)
    batch = batch or time.strftime(f"{AB_PREFIX}%Y%m%d-%H%M%S")
    if not batch.startswith(AB_PREFIX):
        batch = AB_PREFIX + batch
    sampling = {"temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens, "seed": seed}
    kw = dict(k=1, temperature=temperature, top_p=top_p if temperature > 0 else 1.0, max_new_tokens=max_new_tokens,
              return_ended=True)
    ids, step = [], 8
    for i in range(0, len(chosen), step):
        chunk = chosen[i:i + step]
        a = [c[0] for c in generate.sample(loaded.model, loaded.tokenizer, chunk, adapter=True, seed=seed + i, **kw)]
        b = [c[0] for c in generate.sample(loaded.model, loaded.tokenizer, chunk, adapter=False, seed=seed + i, **kw)]
        rows = [{"prompt": p, "a": x, "b": y, "model_a": trained_spec, "model_b": STARTING,
                 "sampling": {**sampling, "ended": {"a": x_ended, "b": y_ended}}}  # read by pairs.cut
                for p, (x, x_ended), (y, y_ended) in zip(chunk, a, b) if x.strip() or y.strip()]
        ids += store.add_pairs(rows, batch=batch, source=f"blind A/B: {trained_spec} vs its starting model")
        if progress:
            progress(min(i + step, len(chosen)), len(chosen))
    return batch, ids


def describe(r: dict) -> str:
    """One line for a win rate: rate, interval, counts."""
    if not r.get("n"):
        return "no labeled A/B pairs yet"
    return (f"win rate {r['rate']:.0%} (95% CI {r['low']:.0%}-{r['high']:.0%}) over {r['n']} labeled pairs: "
            f"{r['wins']} won, {r['losses']} lost, {r['ties']} tied; {r['note']}")


def winrate_from_labels(batch: str, trained_spec: str) -> dict:
    """The trained model's win rate over the labeled pairs of `batch` (a blind A/B batch in the store)."""
    from labs.preference.labels import majority
    trained_spec = str(trained_spec)
    pairs = {p["id"]: p for p in store.pairs(batch)}
    if not pairs:
        raise store.StoreError(f"batch {batch!r}: no pairs in the store")
    by_pair: dict[int, list[dict]] = {}
    for lab in store.labels(batch):
        if lab["choice"] != "skip":
            by_pair.setdefault(lab["pair_id"], []).append(lab)
    wins = losses = ties = 0
    sides = 0
    for pid, p in pairs.items():
        side = "a" if p["model_a"] == trained_spec else "b" if p["model_b"] == trained_spec else None
        if side is None or p["model_a"] == p["model_b"]:
            continue
        sides += 1
        if pid not in by_pair:
            continue
        choice = majority(by_pair[pid])
        if choice == side:
            wins += 1
        elif choice in ("a", "b"):
            losses += 1
        else:  # tie, both_bad, or a 1 vs 1 split
            ties += 1
    if not sides:
        models = sorted({p["model_a"] for p in pairs.values()} | {p["model_b"] for p in pairs.values()})
        raise store.StoreError(f"batch {batch!r}: no pair has {trained_spec!r} on one side against another model "
                               f"(models in the batch: {', '.join(models)})")
    return {**win_rate(wins, losses, ties), "batch": batch, "trained": trained_spec, "pairs": sides}
