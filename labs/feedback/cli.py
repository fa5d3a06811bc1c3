"""The RLHF loop unattended, with a scripted rater in place of people.

    python -m labs.feedback --rounds 3 --rater shorter                    # KTO, 8 prompts x 4 answers a round
    python -m labs.feedback --rounds 3 --rater mentions:water --mode dpo --prompts 8 --k 4
    python -m labs.feedback --rounds 2 --rater shorter --mode rm --data-dir /tmp/rlhf --model ./my-model
    python -m labs.feedback --config run.yaml                             # one update (the run-engine job)

Each round: the current policy answers K prompts k times (one batched call), the scripted rater rates
every answer through the store (simulated=1, rater "simulated:<name>"), and the policy update runs as a
run-engine job (`python -m labs.feedback --config <run-dir>/config.yaml`, the same job the tab starts)
whose adapter the next round generates from. One line per round:

    round 1: mean rating 2.41 sd=0.93 thumbs_up=0.16 kl=0.0000 gen_s=9.8 eval_s=3.2 update_s=88.0 ...

mean rating: over that round's fresh answers, before its update; thumbs_up: share at or above the
threshold; kl: mean per-token KL of that round's policy to the starting model on its own answers; cut: answers
that reached max_new_tokens before the model ended them.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from labs.feedback.config import MODES


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one `error:` line and exit 2, not usage + traceback-like noise
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def parser() -> argparse.ArgumentParser:
    ap = Parser(prog="python -m labs.feedback", description="The RLHF loop unattended: generate, a scripted rater "
                "rates, the policy is updated; one line per round. (--config run.yaml runs one update job.)")
    ap.add_argument("--rounds", type=int, help="rounds to run (each: generate, rate, update)")
    ap.add_argument("--rater", help="scripted rater: shorter, or mentions:WORD (ratings stored as simulated)")
    ap.add_argument("--mode", choices=MODES, default="kto", help="policy update: kto, dpo or rm (default kto)")
    ap.add_argument("--rl-algo", choices=["rloo", "grpo"], default="rloo",
                    help="--mode rm: the RL step after the reward model (default rloo)")
    ap.add_argument("--draw", choices=["same", "walk"], default="same",
                    help="same: the same prompts every round (default; rounds compare like with like); walk: new ones")
    ap.add_argument("--prompts", type=int, default=8, help="prompts per round (default 8)")
    ap.add_argument("--k", type=int, default=4, help="answers per prompt (default 4)")
    ap.add_argument("--kind", choices=["stars", "thumbs", "best_of_k"], default="stars",
                    help="how the rater rates: 1-5 stars, thumbs up/down, or the best of k (default stars)")
    ap.add_argument("--threshold", type=float, default=4.0, help="stars counted as good (thumbs up, KTO desirable)")
    ap.add_argument("--max-new-tokens", type=int, default=48, help="longest answer (default 48 tokens)")
    ap.add_argument("--steps", type=int, default=None, help="optimizer steps per KTO/DPO update (default 16)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--loop", default=None, help="loop name (default: a new one, sim-<rater>-<time>); an existing "
                    "loop continues")
    ap.add_argument("--model", default=None, help="starting model (default SmolLM2-135M-Instruct)")
    ap.add_argument("--data-dir", default=os.environ.get("LAB_DATA_DIR", "lab_data"),
                    help="data directory for the store, the loop and the runs (default: LAB_DATA_DIR or ./lab_data)")
    ap.add_argument("--config", help="run one update job from this run.yaml instead (labs/feedback/config.py)")
    return ap


def _fmt(x, spec):
    return "-" if x is None else format(x, spec)


def run(a, out=print) -> list[dict]:
    """The unattended rounds; returns one dict per round (also printed as one line each)."""
    from labs import models, paths, runs
    from labs.feedback import loop
    paths.set_data_dir(a.data_dir)
    from labs.feedback import raters
    rater = raters.get(a.rater)
    name = a.loop or f"sim-{rater.name.split(':', 1)[1].replace(':', '-')}-{time.strftime('%Y%m%d-%H%M%S')}"
    settings = dict(prompts=a.prompts, k=a.k, kind=a.kind, threshold=a.threshold, mode=a.mode, rl_algo=a.rl_algo,
                    draw=a.draw, max_new_tokens=a.max_new_tokens, seed=a.seed)
    if a.model or not loop.exists(name):  # a loop that continues keeps its starting model
        settings["model"] = a.model or loop.SETTINGS["model"]
    loop.start(name, **settings)
    out(f"loop {name} in {loop.loop_dir(name)} · {rater.describe} · {a.mode} updates")
    overrides = {"max_steps": a.steps} if a.steps else {}
    results = []
    for _ in range(a.rounds):
        entry = loop.generate_round(name, loader=lambda spec: models.CACHE.get(spec))
        loop.rate_round(name, entry["round"], a.rater)
        st = loop.round_stats(name, entry["round"])
        t0 = time.perf_counter()
        run_ = loop.submit_update(name, **overrides)
        final = runs.wait(run_.id, timeout_s=3600, poll_s=1.0)
        update_s = time.perf_counter() - t0
        row = {"round": entry["round"], **st, "kl": entry["kl"], "gen_s": entry["gen_s"], "eval_s": entry["eval_s"],
               "update_s": update_s, "cut": entry["cut"], "run": run_.id, "state": final.get("state")}
        results.append(row)
        out(f"round {row['round']}: mean rating {_fmt(st['mean'], '.2f')} sd={_fmt(st['sd'], '.2f')} "
            f"thumbs_up={_fmt(st['thumbs_up'], '.2f')} kl={row['kl']:.4f} gen_s={row['gen_s']:.1f} "
            f"eval_s={row['eval_s']:.1f} update_s={update_s:.1f} n={st['rated']} cut={row['cut']} rater={rater.name} "
            f"update={a.mode}:{final.get('state')}")
        if final.get("state") != "finished":
            raise RuntimeError(f"the update of round {row['round']} {final.get('state')}: "
                               f"{final.get('error') or ''} (log: {runs.get(run_.id).dir / 'train.log'})")
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(x == "--config" or x.startswith("--config=") for x in argv):  # one update job: the recipe's entry point
        from labs.feedback.recipe import main as job_main
        return job_main(argv)
    a = parser().parse_args(argv)
    from labs import models, paths, store
    from labs.feedback import loop, raters
    try:
        if a.rounds is None or a.rater is None:
            raise loop.LoopError("--rounds and --rater are needed (or --config run.yaml for one update job)")
        if a.rounds < 1:
            raise loop.LoopError(f"--rounds: at least 1, got {a.rounds}")
        if a.steps is not None and a.steps < 1:
            raise loop.LoopError(f"--steps: at least 1, got {a.steps}")
        raters.get(a.rater)
        run(a)
    except (loop.LoopError, raters.RaterError, models.ModelError, paths.DataDirError, store.StoreError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
