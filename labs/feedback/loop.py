"""The RLHF loop's rounds: draw prompts, generate from the current policy, rate, update, and revert.

    from labs.feedback import loop
    loop.start("my-loop", pool="prompts", prompts=8, k=4, kind="stars")    # or continue it: loop.start("my-loop")
    r = loop.generate_round("my-loop")           # k answers per prompt from the current policy, stored to rate
    ...people rate (labs.store.rate) or loop.rate_round("my-loop", r["round"], "shorter") ...
    run = loop.submit_update("my-loop")          # a run-engine job: python -m labs.feedback --config <run>/config.yaml
    loop.history("my-loop")                      # per round: mean rating and spread, thumbs up, KL, seconds
    loop.revert("my-loop", 1)                    # the next round generates from round 1's policy again

A loop's history is <data-dir>/feedback/<loop>/loop.json (settings, rounds, the current policy, reverts);
its samples and ratings are in labs.store under the loop's name, each round a `round` number there. The
policy is the loop's starting model plus a LoRA adapter that each update continues (the run directory
of the update keeps it, so every round's adapter stays on disk). A round's policy is the one that
generated its answers: reverting to round r makes that policy current again, marks the rounds after r as
set aside (kept and shown, their ratings still data), and the next update continues from r's adapter.

Prompts: the pool (bundled prompts to rate, a saved dataset, a file, or typed ones) is shuffled once
with the loop's seed. draw "same" (the default) asks the same K prompts every round - the first K of
that order - so a round's mean rating differs from the last one's by what the policy does, not by which
prompts came up (with new prompts each round, `python -m labs.feedback --rounds 3 --rater shorter
--draw walk` went 2.78 -> 3.91 -> 3.81: the second update's gain was lost in which 8 prompts came up,
the answers' median length still fell from 22 to 17 words). draw "walk" takes, in the round
sampled with seed s, the K prompts at position (s - loop seed) * K: new prompts every round. Round n's
default seed is the loop's seed + n - 1 (fresh samples every round); giving round r's seed again after a
revert to r gives r's prompts and, from r's policy, r's answers word for word.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import time
from pathlib import Path

from labs import generate, paths, store
from labs.errors import LabError
from labs.feedback.config import ConfigError, LoopSettings

SETTINGS = LoopSettings().to_dict()  # a new loop's settings (labs/feedback/config.py: help, limits, checks)
N_PROBE = 4        # held-out prompts answered greedily by every round's policy: before/after on the same prompts
MAX_BATCH = 64     # rows per generate call: 8 prompts x k=4 = 32 rows go in one call
STATE_FILE = "loop.json"


class LoopError(LabError, ValueError):
    """A loop operation was refused; the message says why and what to do."""


# --------------------------------------------------------------------------- state on disk
def loops_dir() -> Path:
    return paths.subdir("feedback")


def loop_dir(name: str) -> Path:
    return paths.child(loops_dir(), name, "loop name", error=LoopError)


def list_loops() -> list[str]:
    """Loop names, the most recently changed first (folders whose name the lab would not make are skipped)."""
    found = []
    for d in loops_dir().iterdir():
        try:
            if (loop_dir(d.name) / STATE_FILE).exists():
                found.append(((d / STATE_FILE).stat().st_mtime_ns, d.name))
        except (LoopError, OSError):
            continue
    return [n for _, n in sorted(found, reverse=True)]


def exists(name: str) -> bool:
    return (loop_dir(name) / STATE_FILE).exists()


def load(name: str) -> dict:
    p = loop_dir(name) / STATE_FILE
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise LoopError(f"loop '{name}': not started yet; start it first") from None
    except ValueError as e:
        raise LoopError(f"loop '{name}': {p} is unreadable ({e})") from None


def _save(state: dict) -> None:
    p = loop_dir(state["name"]) / STATE_FILE
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=1, ensure_ascii=False))
    os.replace(tmp, p)  # atomic: a reader never sees half a file


@contextlib.contextmanager
def edit(name: str):
    """Read, change and write loop.json under a file lock (the app and an update job both write it)."""
    import fcntl
    d = loop_dir(name)
    with open(d / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        state = load(name)
        yield state
        _save(state)


def check_settings(s: dict) -> dict:
    """A loop's settings, the given ones over the defaults, checked (LoopSettings) and as loop.json keeps them."""
    try:
        return LoopSettings.from_dict({**SETTINGS, **{k: v for k, v in s.items() if v is not None}},
                                      where="loop settings").to_dict()
    except ConfigError as e:
        raise LoopError(str(e)) from None


def start(name: str, typed: str | None = None, **settings) -> dict:
    """Start a loop (settings checked, the model must be a plain model), or continue one: settings given then
    apply to its next rounds (the starting model cannot change once a round exists)."""
    from labs import models
    d = loop_dir(name)
    if exists(name):
        with edit(name) as state:
            if settings.get("model") and settings["model"] != state["settings"]["model"] and state["rounds"]:
                raise LoopError(f"model: loop '{name}' started from {state['settings']['model']}; start a new loop "
                                "for another model")
            state["settings"] = check_settings({**state["settings"], **settings})
            if typed is not None and state["settings"]["pool"] == "typed":
                _write_typed(d, typed)
            pool_prompts(state)  # a pool without prompts is refused (and nothing is saved)
        return state
    cfg = check_settings(settings)
    try:
        src = models.resolve(cfg["model"])
    except models.ModelError as e:
        raise LoopError(str(e)) from None
    if src.kind == "adapter":
        raise LoopError(f"model '{cfg['model']}': a loop starts from a plain model (its reference for KL); "
                        "give a Hub id, a local model directory or 'default'")
    d.mkdir(parents=True, exist_ok=True)
    if cfg["pool"] == "typed":
        _write_typed(d, typed or "")
    state = {"name": name, "created_at": time.time(), "settings": cfg, "rounds": [], "events": [],
             "policy": {"run_id": None, "label": "starting model", "set_at": time.time()}}
    pool_prompts(state)  # refuse a pool without prompts now, not at the first round
    _save(state)
    return state


def _write_typed(d: Path, typed: str) -> None:
    from labs.preference.pairs import PairsError, typed_prompts
    try:
        prompts = typed_prompts(typed)
    except PairsError as e:
        raise LoopError(f"prompts: {e}") from None
    (d / "prompts.jsonl").write_text("".join(json.dumps({"prompt": p[-1]["content"]}, ensure_ascii=False) + "\n"
                                             for p in prompts))


# --------------------------------------------------------------------------- prompts and policy
def pool_source(state: dict) -> str:
    pool = state["settings"]["pool"]
    return str(loop_dir(state["name"]) / "prompts.jsonl") if pool == "typed" else pool


def pool_prompts(state: dict, split: str = "train") -> list:
    from labs.preference.pairs import PairsError, load_prompts
    try:
        return load_prompts(pool_source(state), split)
    except PairsError as e:
        raise LoopError(f"pool: {e}") from None


def draw(state: dict, seed: int) -> list:
    """The K prompts of a round sampled with `seed`: a window of the pool shuffled once with the loop's seed,
    the first one every round (draw "same") or the one the seed points at (draw "walk")."""
    pool = pool_prompts(state)
    s = state["settings"]
    order = list(range(len(pool)))
    random.Random(s["seed"]).shuffle(order)
    start_at = (seed - s["seed"]) * s["prompts"] if s.get("draw") == "walk" else 0
    return [pool[order[(start_at + j) % len(pool)]] for j in range(s["prompts"])]


def probe_prompts(state: dict) -> list:
    """A few prompts kept out of the rounds (the bundled set's held-out part), answered greedily by each policy."""
    pool = state["settings"]["pool"]
    prompts = pool_prompts(state, "held_out") if pool not in ("typed",) else pool_prompts(state)
    return prompts[:N_PROBE]


def spec_of(state: dict, run_id: str | None) -> str:
    """The model spec of a policy: the starting model, or an update's run directory (its adapter)."""
    if not run_id:
        return state["settings"]["model"]
    from labs import runs
    try:
        return str(runs.get(run_id).dir)
    except runs.RunError:
        raise LoopError(f"loop '{state['name']}': the policy's run {run_id} is gone; revert to a round whose "
                        "run is still there") from None


def active_update(state: dict) -> str | None:
    """The run id of an update of this loop that is still queued or running."""
    from labs import runs
    for r in state["rounds"]:
        rid = (r.get("update") or {}).get("run_id")
        if rid:
            try:
                if runs.get(rid).status().get("state") in runs.ACTIVE:
                    return rid
            except runs.RunError:
                continue
    return None


# --------------------------------------------------------------------------- a round
def generate_round(name: str, *, seed: int | None = None, prompts: list | None = None, loader=None,
                   progress=None) -> dict:
    """Generate the next round from the current policy (one batched call), store its samples, measure
    KL to the reference and answer the probe prompts; returns the round's entry in loop.json."""
    from labs import models
    from labs.feedback.measure import policy_kl
    state = load(name)
    if active_update(state):
        raise LoopError(f"loop '{name}': an update is still running; wait for it (this round would otherwise "
                        "come from the old policy)")
    s = state["settings"]
    number = max((r["round"] for r in state["rounds"]), default=0) + 1
    seed = s["seed"] + number - 1 if seed is None else int(seed)
    prompts = prompts or draw(state, seed)
    run_id = state["policy"]["run_id"]
    spec = spec_of(state, run_id)
    if progress:
        progress(f"loading the policy ({state['policy']['label']})")
    try:
        loaded = (loader or models.CACHE.get)(spec)
    except models.ModelError as e:
        raise LoopError(str(e)) from None
    if progress:
        progress(f"generating {len(prompts)} prompts x {s['k']} answers")
    sampling = {"temperature": s["temperature"], "top_p": s["top_p"], "max_new_tokens": s["max_new_tokens"],
                "seed": seed, "k": s["k"]}
    t0 = time.perf_counter()
    cands = generate.sample(loaded.model, loaded.tokenizer, prompts, k=s["k"], temperature=s["temperature"],
                            top_p=s["top_p"], max_new_tokens=s["max_new_tokens"], seed=seed,
                            batch_size=min(MAX_BATCH, len(prompts) * s["k"]))
    gen_s = time.perf_counter() - t0
    rows = [{"prompt": p, "completion": c, "policy": spec, "sampling": {**sampling, "index": j}}
            for p, cs in zip(prompts, cands) for j, c in enumerate(cs)]
    ids = store.add_samples(rows, loop=name, round=number)
    if progress:
        progress("measuring KL to the reference and answering the probe prompts")
    t1 = time.perf_counter()
    kl = policy_kl(loaded.model, loaded.tokenizer, [r["prompt"] for r in rows], [r["completion"] for r in rows])
    probes = probe_prompts(state)
    answers = generate.greedy(loaded.model, loaded.tokenizer, probes, max_new_tokens=s["max_new_tokens"]) \
        if probes else []
    entry = {"round": number, "seed": seed, "policy_run": run_id, "policy": state["policy"]["label"],
             "kind": s["kind"], "threshold": s["threshold"], "k": s["k"], "sampling": sampling,
             "prompts": [store.prompt_text(p) for p in prompts], "sample_ids": ids, "gen_s": round(gen_s, 2),
             "eval_s": round(time.perf_counter() - t1, 2), "kl": kl, "created_at": time.time(),
             "probe": [{"prompt": store.prompt_text(p), "answer": a} for p, a in zip(probes, answers)],
             "update": None, "reverted": False}
    with edit(name) as st:
        st["rounds"].append(entry)
    return entry


def get_round(state: dict, number: int) -> dict:
    for r in state["rounds"]:
        if r["round"] == int(number):
            return r
    raise LoopError(f"loop '{state['name']}': no round {number} (rounds: "
                    f"{', '.join(str(r['round']) for r in state['rounds']) or 'none yet'})")


def rate_round(name: str, number: int, rater: str) -> list[float]:
    """Rate every sample of a round as a scripted rater (stored simulated=1)."""
    from labs.feedback import raters
    state = load(name)
    r = get_round(state, number)
    return raters.rate_samples(store.samples(name, int(number)), rater, r["kind"], r["threshold"])


def round_stats(name: str, number: int, threshold: float | None = None) -> dict:
    from labs.feedback.measure import rating_stats
    state = load(name)
    r = get_round(state, number)
    return rating_stats(store.ratings(name, int(number)), r["threshold"] if threshold is None else threshold,
                        samples=len(r["sample_ids"]))


# --------------------------------------------------------------------------- updates and reverts
def latest_round(state: dict) -> dict | None:
    return max(state["rounds"], key=lambda r: r["round"], default=None)


def submit_update(name: str, mode: str | None = None, **overrides):
    """Start the policy update after the latest round as a run-engine job; returns the Run."""
    from labs import runs
    from labs.feedback import rows as fb_rows
    from labs.feedback.config import ConfigError, UpdateConfig
    state = load(name)
    last = latest_round(state)
    if last is None:
        raise LoopError(f"loop '{name}': generate and rate a round first")
    if active_update(state):
        raise LoopError(f"loop '{name}': an update is already running")
    s = state["settings"]
    mode = mode or s["mode"]
    rated = fb_rows.scored(store.ratings(name))
    if not rated:
        raise LoopError(f"loop '{name}': no ratings yet; rate some answers first")
    if mode in ("dpo", "rm") and not fb_rows.dpo_pairs(rated):
        raise LoopError(f"loop '{name}': no prompt has two answers rated differently yet; {mode} learns from such "
                        "pairs (or use kto, which learns from single ratings)")
    if mode == "kto" and len(rated) < 2:
        raise LoopError(f"loop '{name}': KTO needs at least 2 rated answers")
    try:
        cfg = UpdateConfig(loop=name, round=last["round"], mode=mode, model=s["model"],
                           init_run=state["policy"]["run_id"] or "", prompts=pool_source(state),
                           threshold=s["threshold"], seed=s["seed"] + last["round"], submitted_at=time.time(),
                           max_new_tokens=s["max_new_tokens"], rl_algo=s.get("rl_algo", "rloo"), **overrides)
    except ConfigError as e:
        raise LoopError(str(e)) from None
    run = runs.submit("feedback", cfg.to_dict(), name=f"{name}-r{last['round']}-{mode}")
    with edit(name) as st:
        get_round(st, last["round"])["update"] = {"run_id": run.id, "mode": mode, "submitted_at": cfg.submitted_at,
                                                  "from": st["policy"]["label"]}
    return run


def record_update(name: str, number: int, run_id: str, summary: dict, submitted_at: float) -> bool:
    """Called by the update job when its adapter is saved: the policy moves to it, unless a revert happened
    since the update was submitted. Returns whether the policy moved."""
    with edit(name) as st:
        r = get_round(st, number)
        upd = r.get("update") or {"run_id": run_id, "submitted_at": submitted_at}
        if upd.get("run_id") not in (None, run_id):  # a later update of this round: keep both on record
            st["events"].append({"update": run_id, "round": number, "time": time.time()})
        upd.update(run_id=run_id, finished_at=time.time(), update_s=round(time.time() - submitted_at, 1)
                   if submitted_at else None, summary=summary)
        r["update"] = upd
        moved = st["policy"]["set_at"] <= submitted_at or not submitted_at
        if moved:
            st["policy"] = {"run_id": run_id, "label": f"after round {number}", "set_at": time.time()}
    return moved


def revert(name: str, number: int) -> dict:
    """Make round `number`'s policy current again; the rounds after it are set aside (kept, shown, rated data)."""
    with edit(name) as st:
        if active_update(st):
            raise LoopError(f"loop '{name}': an update is running; stop it in the run panel before reverting")
        r = get_round(st, number)
        spec_of(st, r["policy_run"])  # refuses when that round's run was deleted
        for later in st["rounds"]:
            if later["round"] > r["round"]:
                later["reverted"] = True
        r["reverted"] = False
        st["policy"] = {"run_id": r["policy_run"], "label": f"round {number}'s policy ({r['policy']})",
                        "set_at": time.time()}
        st["events"].append({"revert_to": int(number), "time": time.time()})
        return st


def history(name: str) -> list[dict]:
    """One row per round: rating stats, KL, seconds, the update that followed it and its state."""
    from labs import runs
    from labs.feedback.measure import rating_stats
    state = load(name)
    out = []
    for r in sorted(state["rounds"], key=lambda r: r["round"]):
        st = rating_stats(store.ratings(name, r["round"]), r["threshold"], samples=len(r["sample_ids"]))
        upd = r.get("update") or {}
        summary = upd.get("summary") or {}
        run_state = None
        if upd.get("run_id"):
            try:
                run_state = runs.get(upd["run_id"]).status().get("state")
            except runs.RunError:
                run_state = "deleted"
        out.append({"round": r["round"], "policy": r["policy"], "seed": r["seed"], "kind": r["kind"],
                    "samples": len(r["sample_ids"]), **st, "kl": r["kl"], "gen_s": r["gen_s"],
                    "eval_s": r.get("eval_s"), "update_mode": upd.get("mode"), "update_run": upd.get("run_id"),
                    "update_state": run_state, "update_s": upd.get("update_s"),
                    "train_s": summary.get("train_seconds"), "rm_accuracy": summary.get("rm_held_out_accuracy"),
                    "reverted": r.get("reverted", False), "probe": r.get("probe", [])})
    return out


# --------------------------------------------------------------------------- rating by people
def current(name: str | None = None) -> tuple[str, dict] | None:
    """(loop name, its latest round): of `name`, else of the loop whose latest round is the newest."""
    best = None
    for n in ([name] if name else list_loops()):
        last = latest_round(load(n))
        if last and (best is None or last["created_at"] > best[1]["created_at"]):
            best = (n, last)
    return best


def sample_by_id(sample_id: int) -> dict:
    """A stored sample with its loop and round; LoopError when there is none."""
    s = store.sample(sample_id)
    if s is None:
        raise LoopError(f"no sample {sample_id}")
    return s


def group_of(sample: dict) -> list[dict]:
    """The k answers of one prompt in one round (best-of-k rates them together), in id order."""
    key = json.dumps(sample["prompt"], sort_keys=True)
    return [s for s in store.samples(sample["loop"], sample["round"]) if json.dumps(s["prompt"], sort_keys=True) == key]


def rate(sample_id: int, rater: str, rating) -> dict:
    """A person's rating, in the kind the round asks for: stars 1-5; thumbs up/down (or 5/1); best-of-k: 5 marks
    this answer best and the other answers to its prompt not best (1), a 1 marks only this one."""
    s = sample_by_id(sample_id)
    r = get_round(load(s["loop"]), s["round"])
    kind = r["kind"]
    out = store.rate(s["id"], rater, rating, kind=kind)
    if kind == "best_of_k" and out["rating"] == 5.0:
        for other in group_of(s):
            if other["id"] != s["id"]:
                store.rate(other["id"], rater, 1.0, kind=kind)
    return {**out, "loop": s["loop"], "round": s["round"]}


def progress(name: str, number: int) -> dict:
    """Ratings per rater in one round, and the round's size: {"samples": n, "raters": {name: count}, "simulated": set}."""
    r = get_round(load(name), number)
    counts: dict[str, int] = {}
    simulated = set()
    for x in store.ratings(name, int(number)):
        counts[x["rater"]] = counts.get(x["rater"], 0) + 1
        if x["simulated"]:
            simulated.add(x["rater"])
    return {"samples": len(r["sample_ids"]), "raters": counts, "simulated": simulated}


def next_to_rate(rater: str, name: str | None = None) -> dict | None:
    """The oldest answer of the newest round (of `name`, else of the loop with the newest round) that this rater
    has not rated; None when there is none."""
    rater = store.check_annotator(rater)
    cur = current(name)
    return store.next_sample(rater, cur[0], cur[1]["round"]) if cur else None
