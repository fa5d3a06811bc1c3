"""The whole preference loop, unattended: pairs -> a scripted annotator's labels -> DPO/ORPO -> before/after.

    python -m labs.preference simulate --rater shorter --pairs 32
    python -m labs.preference simulate --rater shorter --pairs 32 --method orpo --data-dir /tmp/sim
    python -m labs.preference simulate --rater shorter --pairs 32 --seed 1     # other sampled answers

1. N pairs from the bundled prompts to label (cycled when N exceeds them: each cycle samples with other
   seeds), two sampled answers per prompt from the starting model, stored in one new batch;
2. the rater "shorter" labels every pair through labs.store.label as annotator "simulated:shorter":
   it prefers the answer with fewer words, and calls equal counts a tie (a tie trains nothing);
3. the preference recipe (the method's preset) trains on that batch's labels, in this process;
4. greedy answers to the held-out bundled prompts, from the starting model and from the trained one
   (the recipe's before_after.jsonl), measure the trait: the mean number of words per answer;
5. a blind A/B pass (labs.preference.winrate): per held-out prompt one sampled answer of each model, labeled
   by the same rater without being told which is which; the trained model's win rate with its 95% interval.

`--seed` (default 0) seeds the sampling of the pairs and of the A/B answers: which answers there are to
choose from. The run's own settings (held-out prompts, adapter init) are the preset's, the same for every seed.

The last line is `trait before=<mean words> after=<mean words>`; the lines above it give the seconds and the
win rate.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from labs import paths, store

ANNOTATOR = "simulated:shorter"
RATERS = ("shorter",)
PAIR_TOKENS = 128  # new tokens per sampled answer: long enough that many answers end on their own


def words(text: str) -> int:
    return len(text.split())


def rate_shorter(shown_a: str, shown_b: str) -> str:
    """The scripted annotator: A or B as shown, whichever has fewer words; tie when equal."""
    a, b = words(shown_a), words(shown_b)
    return "A" if a < b else "B" if b < a else "tie"


def label_batch(pair_ids: list[int], annotator: str = ANNOTATOR) -> dict:
    """Label every pair as the rater would, through the store (shown order and all); returns the counts."""
    counts = {"A": 0, "B": 0, "tie": 0}
    for pid in pair_ids:
        p = store.get_pair(pid, annotator)
        choice = rate_shorter(p["A"], p["B"])
        store.label(pid, annotator, choice)
        counts[choice] += 1
    return counts


def run(n_pairs: int, model_spec: str | None = None, method: str = "dpo", out=print, seed: int = 0) -> dict:
    """The loop in this process; returns {"before", "after", "seconds", "run_dir", ...}."""
    from labs import models
    from labs.preference import pairs
    from labs.preference.config import preset
    from labs.preference.recipe import train
    from labs.sft.recipe import NullSession
    t0 = time.perf_counter()
    cfg = preset(method, **({"model": model_spec} if model_spec else {}))  # refuses a bad method early

    loaded = models.load(cfg.model, device="cpu" if cfg.device == "cpu" else "auto")
    prompts = pairs.load_prompts("prompts", "train")
    prompts = [prompts[i % len(prompts)] for i in range(n_pairs)]
    batch = time.strftime("simulate-%Y%m%d-%H%M%S")
    ids = pairs.make_pairs(prompts, loaded, temperature=0.8, max_new_tokens=PAIR_TOKENS, seed=seed, batch=batch)
    t_pairs = time.perf_counter() - t0
    del loaded  # the recipe loads its own copy to train
    counts = label_batch(ids)
    out(f"pairs={len(ids)} batch={batch} labels: A={counts['A']} B={counts['B']} tie={counts['tie']} "
        f"({t_pairs:.0f} s to generate)")

    run_dir = paths.subdir("simulate") / batch
    cfg = preset(method, model=cfg.model, data=f"store:{batch}")
    summary = train(cfg, NullSession(run_dir))
    gen = {"before": summary["generations/before_mean_words"], "after": summary["generations/after_mean_words"]}
    from labs.preference import winrate
    trained = str(run_dir / "adapter")
    ab_batch, ab_ids = winrate.make_ab_pairs(trained, temperature=0.8, max_new_tokens=PAIR_TOKENS,
                                                seed=seed + 1)
    label_batch(ab_ids)
    wr = winrate.winrate_from_labels(ab_batch, trained)
    out(f"blind A/B (batch {ab_batch}), trained vs starting model: {winrate.describe(wr)}")
    return {**gen, "winrate": wr, "seconds": time.perf_counter() - t0, "pair_seconds": t_pairs, "run_dir": str(run_dir),
            "train_seconds": summary["train_seconds"], "labels": counts, "summary": summary}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m labs.preference simulate", description=__doc__.split("\n")[0])
    ap.add_argument("--rater", choices=RATERS, required=True, help="the scripted annotator's taste")
    ap.add_argument("--pairs", type=int, required=True, help="how many pairs to make and label")
    ap.add_argument("--model", default=None, help="model spec (default: SmolLM2-135M-Instruct)")
    ap.add_argument("--method", choices=["dpo", "orpo"], default="dpo")
    ap.add_argument("--seed", type=int, default=0, help="seed of the sampled answers (pairs and A/B pass)")
    ap.add_argument("--data-dir", default=os.environ.get("LAB_DATA_DIR", "lab_data"),
                    help="the data directory the store and the run go to (default: LAB_DATA_DIR or ./lab_data)")
    a = ap.parse_args(argv)
    from labs import models
    from labs.preference.config import ConfigError
    from labs.preference.pairs import PairsError
    try:
        if a.pairs < 2:
            raise ConfigError(f"--pairs: at least 2, got {a.pairs}")
        paths.set_data_dir(a.data_dir)
        if a.seed < 0:
            raise ConfigError(f"--seed: 0 or more, got {a.seed}")
        r = run(a.pairs, a.model, a.method, seed=a.seed)
    except (ConfigError, PairsError, models.ModelError, store.StoreError, paths.DataDirError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"run={r['run_dir']} train_seconds={r['train_seconds']} pair_seconds={r['pair_seconds']:.1f}")
    wr = r["winrate"]
    print(f"winrate={wr['rate']:.3f} low={wr['low']:.3f} high={wr['high']:.3f} n={wr['n']}")
    print(f"seconds={r['seconds']:.1f}")
    print(f"trait before={r['before']:.1f} after={r['after']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
