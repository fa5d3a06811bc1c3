"""Win rate with a Wilson 95% interval: the blind A/B pass of a trained model against its starting model.

    from labs.preference import winrate
    winrate.win_rate(wins=14, losses=5, ties=1)          # {"rate": 0.725, "low": ..., "high": ..., "n": 20}
    winrate.winrate_from_labels("ab-20261104", trained_spec="lab_data/runs/<id>")

The A/B pairs are stored like any pair (labs.store), in one batch whose model_a / model_b are the two
models, and labeled blind: the annotator does not know which side is which. A tie counts as half a
win for each side, and so does "both bad" (neither answer was better); a pair whose annotators split
evenly (1 vs 1) counts as a tie too. With several annotators on a pair, the majority decides it.
The interval is Wilson's score interval, which stays inside [0, 1] and is honest for small n.
"""
from __future__ import annotations

import math

from labs import store

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
