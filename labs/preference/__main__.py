"""python -m labs.preference make-pairs | refill | export | simulate ... | --config run.yaml
(see labs/preference/__init__.py)."""
from __future__ import annotations

import argparse
import json
import os
import sys

from labs import paths, store

COMMANDS = ("make-pairs", "refill", "export", "simulate")


def _data_dir(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--data-dir", default=os.environ.get("LAB_DATA_DIR", "lab_data"),
                    help="the app's data directory (default: LAB_DATA_DIR or ./lab_data)")


def make_pairs(argv: list[str]) -> int:
    from labs import models
    from labs.preference import pairs
    ap = argparse.ArgumentParser(prog="python -m labs.preference make-pairs",
                                 description="Generate N pairs (two responses per prompt) into the store.")
    ap.add_argument("--n", type=int, required=True, help="how many pairs")
    ap.add_argument("--model", default=None, help="model spec (default: SmolLM2-135M-Instruct)")
    ap.add_argument("--model-b", default=None, help="a second model: one response from each, head to head")
    ap.add_argument("--prompts", default="prompts", help="'prompts' (bundled), a saved dataset or a data file")
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", default=None, help="a name for this batch of pairs")
    _data_dir(ap)
    a = ap.parse_args(argv)
    try:
        if a.n < 1:
            raise pairs.PairsError(f"--n: at least 1, got {a.n}")
        paths.set_data_dir(a.data_dir)
        prompts = pairs.load_prompts(a.prompts, "train")
        prompts = [prompts[i % len(prompts)] for i in range(a.n)]  # cycle when N exceeds the set: new samples
        model = models.load(a.model)
        model_b = models.load(a.model_b) if a.model_b else None
        ids = pairs.make_pairs(prompts, model, model_b, temperature=a.temperature, top_p=a.top_p,
                               max_new_tokens=a.max_new_tokens, seed=a.seed, batch=a.batch)
    except (pairs.PairsError, models.ModelError, store.StoreError, paths.DataDirError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"pairs={len(ids)}")
    return 0


def refill(argv: list[str]) -> int:
    from labs import models
    from labs.preference import pairs
    from labs.preference import refill as refill_mod
    ap = argparse.ArgumentParser(prog="python -m labs.preference refill",
                                 description="Keep pairs ahead of an annotator: when KEEP or fewer are left for them "
                                             "to label, make N more (batch auto-refill). The labeler does this in "
                                             "the background.")
    ap.add_argument("--annotator", required=True, help="whose unlabeled pairs are counted")
    ap.add_argument("--keep", type=int, default=refill_mod.KEEP, help="refill when this many or fewer are left")
    ap.add_argument("--n", type=int, default=refill_mod.MAKE, help="how many pairs a refill makes")
    ap.add_argument("--model", default=None, help="model spec (default: SmolLM2-135M-Instruct)")
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--temperature", type=float, default=0.8)
    _data_dir(ap)
    a = ap.parse_args(argv)
    try:
        paths.set_data_dir(a.data_dir)
        ids = refill_mod.refill(a.annotator, a.model, keep=a.keep, n=a.n, temperature=a.temperature,
                                max_new_tokens=a.max_new_tokens)
    except (pairs.PairsError, models.ModelError, store.StoreError, paths.DataDirError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"pairs={len(ids)}")
    return 0


def export(argv: list[str]) -> int:
    from labs import data
    from labs.preference import labels
    ap = argparse.ArgumentParser(prog="python -m labs.preference export",
                                 description="Write the labels as TRL rows (JSONL). Prints one JSON line (rows, "
                                             "labels, pairs, left_out: pairs that gave no row, by reason) and, on "
                                             "stderr, the same in words, with a warning when the pairs are too few "
                                             "to teach DPO much.")
    ap.add_argument("--out", required=True, help="FILE.jsonl")
    ap.add_argument("--format", choices=["dpo", "kto"], default="dpo",
                    help="dpo: prompt/chosen/rejected (ties and both-bad left out); kto: prompt/completion/label")
    ap.add_argument("--batch", default=None, help="only this batch of pairs (default: every batch but the blind "
                                                  "A/B passes)")
    ap.add_argument("--standard", action="store_true", help="plain strings instead of chat messages")
    _data_dir(ap)
    a = ap.parse_args(argv)
    try:
        paths.set_data_dir(a.data_dir)
        ex = labels.export(a.format, a.batch, conversational=not a.standard)
        if not ex.rows:
            raise store.StoreError(f"nothing to export: {ex.summary()} (label pairs with A or B first)")
        n = data.write_jsonl(ex.rows, a.out)
    except (store.StoreError, paths.DataDirError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"rows": n, "format": a.format, "out": a.out, "labels": ex.labels, "pairs": ex.pairs,
                      "left_out": ex.left_out}))
    print(f"wrote {ex.summary()}", file=sys.stderr)
    from labs.preference.config import preset
    from labs.preference.recipe import optimizer_steps
    warning = ex.warning(optimizer_steps(preset("dpo"), len(ex.rows)))
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "make-pairs":
        return make_pairs(argv[1:])
    if argv and argv[0] == "refill":
        return refill(argv[1:])
    if argv and argv[0] == "export":
        return export(argv[1:])
    if argv and argv[0] == "simulate":
        from labs.preference.simulate import main as simulate
        return simulate(argv[1:])
    if argv and argv[0] not in ("-h", "--help") and not argv[0].startswith("--"):
        print(f"error: unknown command {argv[0]!r}; use one of {', '.join(COMMANDS)} or --config run.yaml",
              file=sys.stderr)
        return 2
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m labs.preference {make-pairs,refill,export,simulate} ... | --config run.yaml\n")
        import labs.preference
        print(labs.preference.__doc__.strip())
        print("\nEach command has --help.")
        return 0
    from labs.preference.recipe import main as recipe
    return recipe(argv)


if __name__ == "__main__":
    sys.exit(main())
