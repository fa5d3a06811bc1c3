"""The RLHF loop's rounds: draw prompts, generate from the current policy, rate, update, and revert.

    from labs.feedback import loop
    loop.start("my-loop", pool="prompts", prompts=8, k=4, kind="stars")    # or continue it: loop.start("my-loop")
    r = loop.generate_round("my-loop")           # k answers per prompt from the current policy, stored to rate
    ...people rate (loop.rate, loop.undo_rating) or loop.rate_round("my-loop", r["round"], "shorter") ...
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
import math
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


def start(name: str, typed: str | None = None, actor=None, **settings) -> dict:
    """Start a loop (settings checked, the model must be a plain model), or continue one: settings given then
    apply to its next rounds (the starting model cannot change once a round exists). In shared mode the loop
    records who started it; only they (or an admin) change its settings afterwards."""
    from labs import access, models, paths
    actor = actor or access.actor(None)
    d = loop_dir(name)
    for key in ("model", "pool"):
        if isinstance(settings.get(key), str):
            paths.check_server_path(settings[key], key)
    if exists(name):
        with edit(name) as state:
            access.check(actor, "loop_settings", owner=state.get("owner", "local"), what=f"loop '{name}'")
            if settings.get("model") and settings["model"] != state["settings"]["model"] and state["rounds"]:
                raise LoopError(f"model: loop '{name}' started from {state['settings']['model']}; start a new loop "
                                "for another model")
            state["settings"] = check_settings({**state["settings"], **settings})
            if typed is not None and state["settings"]["pool"] == "typed":
                _write_typed(d, typed)
            pool_prompts(state)  # a pool without prompts is refused (and nothing is saved)
        return state
    access.check(actor, "start_run", what=f"loop '{name}'")
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
    state = {"name": name, "owner": actor.name, "created_at": time.time(), "settings": cfg, "rounds": [], "events": [],
             "policy": {"run_id": None, "label": "starting model", "set_at": time.time()}}
    pool_prompts(state)  # refuse a pool without prompts now, not at the first round
    _save(state)
    return state


def _write_typed(d: Path, typed: str) -> None:
    (d / "prompts.jsonl").write_text("".join(json.dumps({"prompt": p}, ensure_ascii=False) + "\n"
                                             for p in _typed_list(typed)))


def _typed_list(typed: str) -> list[str]:
    from labs.preference.pairs import PairsError, typed_prompts
    try:
        return [p[-1]["content"] for p in typed_prompts(typed)]
    except PairsError as e:
        raise LoopError(f"prompts: {e}") from None


def typed_text(name: str) -> str:
    """The loop's own typed prompts, one per line, as the settings form shows them ('' when it has none)."""
    try:
        lines = (loop_dir(name) / "prompts.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return ""
    return "\n".join(json.loads(x)["prompt"] for x in lines if x.strip())


def settings_changes(name: str, typed: str | None = None, **settings) -> list[str]:
    """What saving `settings` (and typed prompts) would change in the loop's next rounds and update, one
    'label: saved -> new' each, [] for nothing; LoopError when they are not valid settings (nothing is saved)."""
    from labs.feedback.config import LoopSettings
    state = load(name)
    saved = {"draw": "walk", **state["settings"]}  # loops saved before 'draw' existed walked
    new = check_settings({**saved, **settings})
    labels = {s.name: s.label or s.name for s in LoopSettings.specs()}
    out = [f"{labels.get(k, k)}: {saved.get(k)} → {v}" for k, v in new.items() if saved.get(k) != v]
    if typed is not None and new["pool"] == "typed" and _typed_list(typed) != typed_text(name).splitlines():
        out.append("typed prompts")
    return out


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
class _Passes:
    """The model as one generate call sees it (every attribute is the model's), counting its forward passes for
    the progress line: a batch's prompts are read in one pass (no cache yet), then one pass per new token. A
    stand-in for one call, so the model that other users share is never changed."""

    def __init__(self, model, on_pass):
        self._model, self._on_pass = model, on_pass

    def __getattr__(self, name):
        return getattr(self._model, name)

    def __call__(self, *args, **kwargs):
        out = self._model(*args, **kwargs)
        self._on_pass(kwargs.get("past_key_values") is None)
        return out


class _Bar:
    """A round's progress as one fraction: the model's forward passes done / at most (decoding stops early once
    every answer has ended, so it may jump ahead), never going back; `report(fraction, message)` hears it."""

    def __init__(self, report):
        self.report, self.total, self.done = report, 1, 0

    def __call__(self, done: int, message: str) -> None:
        self.done = max(self.done, done)
        if self.report:
            self.report(min(1.0, self.done / max(1, self.total)), message)


def generate_round(name: str, *, seed: int | None = None, prompts: list | None = None, loader=None,
                   progress=None, actor=None) -> dict:
    """Generate the next round from the current policy (one batched call), store its samples, measure
    KL to the reference and answer the probe prompts; returns the round's entry in loop.json.

    `progress(fraction, message)` hears where it is: loading the policy; generating (prompts done of all, token t
    of at most max_new_tokens); measuring KL (answers done); the probe answers (token t). fraction: the model's
    forward passes done / at most, over the three model phases (a model load counts none)."""
    from labs import access, models
    from labs.feedback.measure import KL_BATCH, policy_kl
    access.check(actor or access.actor(None), "start_run", what=f"a round of loop '{name}'")
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
    bar = _Bar(progress)
    bar(0, f"loading the policy ({state['policy']['label']})")
    try:
        loaded = (loader or models.CACHE.get)(spec)
    except models.ModelError as e:
        raise LoopError(str(e)) from None
    probes = probe_prompts(state)
    n, k, most = len(prompts), s["k"], s["max_new_tokens"]
    batch = min(MAX_BATCH, n * k)
    gen_passes = math.ceil(n / max(1, batch // k)) * most  # labs.generate: batch // k prompts a call, <= most passes
    kl_passes = 2 * math.ceil(n * k / KL_BATCH) if hasattr(loaded.model, "disable_adapter") else 0  # policy, ref
    bar.total = gen_passes + kl_passes + (most if probes else 0)
    at = {"calls": 0, "pass": 0, "prompts": 0}  # generate calls ended, passes in this call, prompts answered

    def gen_pass(first: bool) -> None:
        if first and at["pass"]:  # a new batch of prompts: the last one has ended
            at["calls"], at["prompts"] = at["calls"] + 1, at["prompts"] + max(1, batch // k)
        at["pass"] = 1 if first else at["pass"] + 1
        bar(at["calls"] * most + at["pass"], f"generating {n} prompts × {k} answers: {min(at['prompts'], n)}/{n} "
            f"prompts done · token {at['pass']} of at most {most}")
    bar(0, f"generating {n} prompts × {k} answers: 0/{n} prompts done")
    sampling = {"temperature": s["temperature"], "top_p": s["top_p"], "max_new_tokens": most, "seed": seed, "k": k}
    t0 = time.perf_counter()
    cands = generate.sample(_Passes(loaded.model, gen_pass), loaded.tokenizer, prompts, k=k,
                            temperature=s["temperature"], top_p=s["top_p"], max_new_tokens=most, seed=seed,
                            batch_size=batch, return_ended=True)
    gen_s = time.perf_counter() - t0
    # ended: False when the answer was cut at max_new_tokens before the model wrote its end token
    rows = [{"prompt": p, "completion": c, "policy": spec, "sampling": {**sampling, "index": j, "ended": ended}}
            for p, cs in zip(prompts, cands) for j, (c, ended) in enumerate(cs)]
    ids = store.add_samples(rows, loop=name, round=number)
    t1 = time.perf_counter()
    bar(gen_passes, f"measuring KL to the starting model: 0/{len(rows)} answers")
    kl = policy_kl(loaded.model, loaded.tokenizer, [r["prompt"] for r in rows], [r["completion"] for r in rows],
                   progress=lambda done, total: bar(gen_passes + (kl_passes * done) // max(1, total),
                                                    f"measuring KL to the starting model: {done}/{total} answers"))
    answers = []
    if probes:
        step = {"pass": 0}

        def probe_pass(first: bool) -> None:
            step["pass"] = 1 if first else step["pass"] + 1
            bar(gen_passes + kl_passes + step["pass"], f"answering the {len(probes)} held-out prompts (greedy, for "
                f"the before/after table): token {step['pass']} of at most {most}")
        answers = generate.greedy(_Passes(loaded.model, probe_pass), loaded.tokenizer, probes, max_new_tokens=most)
    entry = {"round": number, "seed": seed, "policy_run": run_id, "policy": state["policy"]["label"],
             "kind": s["kind"], "threshold": s["threshold"], "k": k, "sampling": sampling,
             "prompts": [store.prompt_text(p) for p in prompts], "sample_ids": ids, "gen_s": round(gen_s, 2),
             "eval_s": round(time.perf_counter() - t1, 2), "kl": kl, "created_at": time.time(),
             "cut": sum(not r["sampling"]["ended"] for r in rows),
             "probe": [{"prompt": store.prompt_text(p), "answer": a} for p, a in zip(probes, answers)],
             "update": None, "reverted": False}
    with edit(name) as st:
        st["rounds"].append(entry)
    bar(bar.total, f"round {number}: {len(rows)} answers stored")
    return entry


def cut_at(sample: dict) -> int | None:
    """max_new_tokens when this sample's answer was cut there (the model had not ended it), else None (also for
    samples stored before this was recorded)."""
    sampling = sample.get("sampling") or {}
    return sampling.get("max_new_tokens") if sampling.get("ended") is False else None


def get_round(state: dict, number: int) -> dict:
    for r in state["rounds"]:
        if r["round"] == int(number):
            return r
    raise LoopError(f"loop '{state['name']}': no round {number} (rounds: "
                    f"{', '.join(str(r['round']) for r in state['rounds']) or 'none yet'})")


def rate_round(name: str, number: int, rater: str, actor=None) -> list[float]:
    """Rate every sample of a round as a scripted rater (stored simulated=1); in shared mode by the loop's owner
    or an admin (scripted ratings train the policy as people's do)."""
    from labs import access
    from labs.feedback import raters
    state = load(name)
    access.check(actor or access.actor(None), "loop_settings", owner=state.get("owner", "local"),
                 what=f"loop '{name}' (scripted ratings)")
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


def submit_update(name: str, mode: str | None = None, actor=None, **overrides):
    """Start the policy update after the latest round as a run-engine job; returns the Run. In shared mode by the
    loop's owner or an admin: the update moves the loop's policy."""
    from labs import access, runs
    actor = actor or access.actor(None)
    access.check(actor, "loop_settings", owner=load(name).get("owner", "local"), what=f"loop '{name}'")
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
    run = runs.submit("feedback", cfg.to_dict(), name=f"{name}-r{last['round']}-{mode}", actor=actor)
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


def revert(name: str, number: int, actor=None) -> dict:
    """Make round `number`'s policy current again; the rounds after it are set aside (kept, shown, rated data).
    In shared mode by the loop's owner or an admin."""
    from labs import access
    with edit(name) as st:
        access.check(actor or access.actor(None), "loop_settings", owner=st.get("owner", "local"),
                     what=f"loop '{name}'")
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
    """One row per round: rating stats, KL, seconds, the update that followed it and its state. An update's
    time is split as the run engine recorded it: queue_s waiting for the training slot (queued_at -> started_at),
    run_s its job (started_at -> finished_at, or until now while it runs); update_s is from the request to the
    saved adapter (both, and the job's start-up)."""
    from labs import runs
    from labs.feedback.measure import rating_stats
    from labs.runs.progress import durations
    state = load(name)
    out = []
    for r in sorted(state["rounds"], key=lambda r: r["round"]):
        st = rating_stats(store.ratings(name, r["round"]), r["threshold"], samples=len(r["sample_ids"]))
        upd = r.get("update") or {}
        summary = upd.get("summary") or {}
        run_state, queue_s, run_s = None, None, None
        if upd.get("run_id"):
            try:
                status = runs.get(upd["run_id"]).status()
                run_state = status.get("state")
                queue_s, run_s = durations(status, time.time())
            except runs.RunError:
                run_state = "deleted"
        out.append({"round": r["round"], "policy": r["policy"], "seed": r["seed"], "kind": r["kind"],
                    "samples": len(r["sample_ids"]), **st, "kl": r["kl"], "gen_s": r["gen_s"],
                    "eval_s": r.get("eval_s"), "update_mode": upd.get("mode"), "update_run": upd.get("run_id"),
                    "update_state": run_state, "update_s": upd.get("update_s"), "queue_s": queue_s,
                    "run_s": run_s,
                    "train_s": summary.get("train_seconds"), "rm_accuracy": summary.get("rm_held_out_accuracy"),
                    "reverted": r.get("reverted", False), "probe": r.get("probe", [])})
    return out


# --------------------------------------------------------------------------- rating by people
def current(name: str | None = None) -> tuple[str, dict] | None:
    """(loop name, its latest round): of `name`, else of the loop whose latest round is the newest; None when
    there is no round (or no loop of that name yet). LoopError for a name the lab refuses."""
    best = None
    for n in ([name] if name else list_loops()):
        if name and not exists(n):  # a new name, not started yet: nothing to rate
            return None
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


def rate(sample_id: int, rater: str, rating, actor=None) -> dict:
    """A person's rating, in the kind the round asks for: stars 1-5; thumbs up/down (or 5/1); best-of-k: 5 marks
    this answer best and the other answers to its prompt not best (1), a 1 marks only this one."""
    s = sample_by_id(sample_id)
    r = get_round(load(s["loop"]), s["round"])
    kind = r["kind"]
    try:
        best = kind == "best_of_k" and (5.0 if str(rating).strip().lower() == "up" else float(rating)) == 5.0
    except (TypeError, ValueError):
        best = False  # the store says what is wrong with the rating
    if best:  # the whole pick is one action: stored at once, undone at once
        out = store.rate_many([(s["id"], 5.0)] + [(o["id"], 1.0) for o in group_of(s) if o["id"] != s["id"]],
                              rater, kind=kind, actor=actor)[0]
    else:
        out = store.rate(s["id"], rater, rating, kind=kind, actor=actor)
    return {**out, "loop": s["loop"], "round": s["round"]}


def undo_rating(rater: str, name: str | None = None, actor=None) -> dict | None:
    """Take back this rater's last rating in the newest round (of `name`, else of the loop with the newest round):
    one answer, or a best-of-k pick whole; the answers are to rate again. Earlier rounds' ratings are not undone
    here (an update may have learned from them). Returns {"loop", "round", "undone": [{sample_id, rating, kind}]}
    (undone [] when there was nothing), None when there is no round."""
    rater = store.as_person(rater, actor, "rate")
    cur = current(name)
    if cur is None:
        return None
    return {"loop": cur[0], "round": cur[1]["round"],
            "undone": store.undo_rating(rater, cur[0], cur[1]["round"], actor=actor)}


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
