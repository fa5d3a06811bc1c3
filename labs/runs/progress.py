"""A job's progress in phases, and what it says about time: pure functions of status.json (no I/O).

A recipe declares its phases once (`session.plan(...)`) and reports the one it is in
(`session.phase("evaluating", done, total, unit="rows")`); status.json then holds

    phase, phase_done, phase_total, phase_unit, phase_detail   the current phase and its count
    phase_started_at, phase_at                                 when it began, when it was last reported
    phase_eta_s                                                seconds left in it (at phase_at); None: not timed yet
    phases     the plan: [{name, total, unit, detail, state: pending|running|done|skipped|stopped|failed,
               seconds (once ended), done (while running)}], in the order they run

A phase's time left is measured, never invented: (elapsed in the phase / units done) x units left, known
only once a unit is done. A later phase that counts work (training steps, rows to answer) has no time
until it starts, so a job's time left is *complete* only when no such phase is ahead; phases that count
nothing (loading a model, saving) carry no estimate and are not waited for in one.

    remaining(st, now)       {"known_s", "complete", "why"}: a job's time left and what is not timed yet
    start_estimate(ahead)    when a queued job starts: the sum of the jobs ahead, or None with the reasons
    durations(st, now)       (queue seconds, run seconds): queued_at -> started_at -> finished_at
"""
from __future__ import annotations

PHASES = ("loading data", "loading model", "tokenizing", "training", "saving", "evaluating")
ENDED = ("done", "skipped", "stopped", "failed")
BAR_WIDTH = 20


# --------------------------------------------------------------------------- numbers
def rate_eta(done, total, elapsed_s) -> float | None:
    """Seconds left at the measured rate: elapsed / done x (total - done). None before the first unit is done."""
    if done is None or total is None or elapsed_s is None or done <= 0:
        return None
    return max(0.0, elapsed_s / done * max(0, total - done))


def fmt_duration(seconds) -> str:
    """0:05, 12:34, 1:02:03; '–' for None."""
    if seconds is None:
        return "–"
    s = int(max(0, seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def bar(fraction, width: int = BAR_WIDTH) -> str:
    """A bar of `width` characters, filled in proportion to `fraction` (0..1): '█████░░░░░'."""
    f = min(1.0, max(0.0, float(fraction or 0.0)))
    full = int(f * width + 1e-9)
    return "█" * full + "░" * (width - full)


def count_text(done, total, unit) -> str:
    """'12/40 rows', '3/64 steps', '5/12'."""
    return f"{done or 0}/{total}" + (f" {unit}" if unit else "")


def phase_entry_text(p: dict) -> str:
    """A phase of the plan in words: 'evaluating 40 rows', 'saving'."""
    return p["name"] + (f" {p['total']} {p.get('unit') or ''}".rstrip() if p.get("total") else "")


# --------------------------------------------------------------------------- the job's side (pure)
def plan_entries(items, phases: list[dict] | None = None) -> list[dict]:
    """The phases a job will go through, in order: each item a name or (name, total[, unit[, detail]]).
    Given the `phases` already in status.json, those begun are kept as they are (a running one takes the
    item's total) and the items still ahead replace the pending ones: a recipe plans again as it learns
    its totals (the training steps once the data is read)."""
    kept = [dict(p) for p in phases or [] if p["state"] != "pending"]
    out = list(kept)
    for it in items:
        name, total, unit, detail = (it, None, None, None) if isinstance(it, str) else (*it, None, None, None)[:4]
        begun = next((p for p in kept if p["name"] == name), None)
        if begun is None:
            out.append({"name": name, "total": total, "unit": unit, "detail": detail, "state": "pending"})
        elif begun["state"] == "running":
            begun.update({k: v for k, v in (("total", total), ("unit", unit), ("detail", detail)) if v is not None})
    return out


def advance(st: dict, name: str, done=None, total=None, unit=None, detail=None, eta_s=None, now: float = 0.0,
            done0: int = 0) -> dict:
    """The status fields after the job reports phase `name` at `done`/`total` at time `now`.

    A new phase ends the one before (its seconds recorded). eta_s None: measured from the phase's own
    rate, counting from `done0` (the count when the phase began: a resumed training starts past 0)."""
    phases = [dict(p) for p in st.get("phases") or []]
    current = st.get("phase")
    started = st.get("phase_started_at")
    if name != current or started is None:
        for p in phases:
            if p["state"] == "running":  # ended; its count stays (a training stopped early: 12 of 64 steps)
                p["state"], p["seconds"] = "done", round(now - (started or now), 1)
        started = now
    entry = next((p for p in phases if p["name"] == name and p["state"] in ("pending", "running")), None)
    if entry is None:  # a phase the plan did not name: it runs now, before whatever is still pending
        entry = {"name": name, "total": total, "unit": unit, "detail": detail, "state": "pending"}
        at = next((i for i, p in enumerate(phases) if p["state"] == "pending"), len(phases))
        phases.insert(at, entry)
    for p in phases[:phases.index(entry)]:
        if p["state"] == "pending":  # planned but passed over (no held-out pairs to score, say)
            p["state"] = "skipped"
    entry.update(state="running", done=done)
    for k, v in (("total", total), ("unit", unit), ("detail", detail)):
        if v is not None:
            entry[k] = v
    total, unit = entry.get("total"), entry.get("unit")
    if eta_s is None and total:
        eta_s = rate_eta((done or 0) - done0, total - done0, now - started)
    return {"phase": name, "phase_done": done, "phase_total": total, "phase_unit": unit,
            "phase_detail": entry.get("detail"), "phase_started_at": started, "phase_at": now,
            "phase_eta_s": None if eta_s is None else round(eta_s, 1), "phases": phases}


def close(st: dict, ending: str, now: float, returned: bool = True) -> dict:
    """The phase fields when the job ends (ending: finished | stopped | failed): the running phase gets its
    seconds and 'done' when the job returned from it whole (its count complete, or nothing counted), else the
    ending's state (an evaluation stopped at 5 of 12, a failure); phases that never ran are 'skipped'."""
    phases = [dict(p) for p in st.get("phases") or []]
    for p in phases:
        if p["state"] == "running":
            whole = returned and (not p.get("total") or (p.get("done") or 0) >= p["total"])
            p["state"] = "done" if ending == "finished" or whole else ending
            p["seconds"] = round(now - (st.get("phase_started_at") or now), 1)
        elif p["state"] == "pending":
            p["state"] = "skipped"
    return {"phases": phases, "phase_eta_s": None}


# --------------------------------------------------------------------------- the reader's side (pure)
def remaining(st: dict, now: float) -> dict:
    """A job's time left: {"known_s": the timed part, "complete": nothing left untimed, "why": what is not}."""
    if st.get("state") == "queued":
        return {"known_s": 0.0, "complete": False, "why": ["not started yet"]}
    if st.get("state") not in ("running", "stopping"):
        return {"known_s": 0.0, "complete": True, "why": []}
    if not st.get("phases") and not st.get("phase"):  # a job that reports steps only (no phases)
        eta = st.get("eta_s")
        if eta is None:
            return {"known_s": 0.0, "complete": False, "why": ["no estimate yet"]}
        return {"known_s": max(0.0, eta - max(0.0, now - (st.get("updated_at") or now))), "complete": True,
                "why": []}
    known, why = 0.0, []
    eta = st.get("phase_eta_s")
    if eta is not None:
        known += max(0.0, eta - max(0.0, now - (st.get("phase_at") or now)))
    elif st.get("phase_total"):
        why.append(f"{st['phase']} {count_text(st.get('phase_done'), st['phase_total'], st.get('phase_unit'))}, "
                   "not timed yet")
    for p in st.get("phases") or []:
        if p["state"] == "pending" and (p.get("total") or p.get("unit")):  # counted work, not timed yet
            about = f" ({p['detail']})" if p.get("detail") else ""
            why.append(f"then {phase_entry_text(p)}{about}, timed once it starts")
    return {"known_s": known, "complete": not why, "why": why}


def overall_fraction(st: dict, now: float) -> float | None:
    """Share of the job's time already spent, when its time left is complete; else None."""
    left = remaining(st, now)
    if not left["complete"] or st.get("started_at") is None:
        return None
    spent = max(0.0, now - st["started_at"])
    return spent / (spent + left["known_s"]) if spent + left["known_s"] > 0 else None


def start_estimate(ahead: list[tuple[str, dict]], now: float) -> dict:
    """When a queued job starts: `ahead` is (run id, status) of every job before it, in order (the one
    training first). {"eta_s": seconds, or None when a job ahead has untimed work, "at_least_s": the timed
    part, "unknown": [(run id, why)]}."""
    total, unknown = 0.0, []
    for rid, st in ahead:
        left = remaining(st, now)
        total += left["known_s"]
        if not left["complete"]:
            unknown.append((rid, "; ".join(left["why"])))
    return {"eta_s": None if unknown else total, "at_least_s": total, "unknown": unknown}


def durations(st: dict, now: float) -> tuple[float | None, float | None]:
    """(seconds queued, seconds run) of the latest attempt: queued_at -> started_at -> finished_at.
    A run queued again (resumed) counts from its new queued_at; a live one counts up to `now`."""
    q, s, f = st.get("queued_at"), st.get("started_at"), st.get("finished_at")
    state = st.get("state")
    live = state in ("queued", "running", "stopping")
    last = now if live else (f or st.get("updated_at") or now)
    if q is None:
        return None, (None if s is None else max(0.0, last - s))
    if s is None or s < q:  # not started since it was (re)queued
        return max(0.0, last - q), None
    end = f if (f is not None and f >= s and not live) else last
    return max(0.0, s - q), max(0.0, end - s)


# --------------------------------------------------------------------------- in words (the monitor, `runs list`)
def singular(unit: str | None) -> str:
    return (unit or "item")[:-1] if (unit or "").endswith("s") else (unit or "item")


def current(st: dict, now: float) -> dict | None:
    """The phase the job is in: {name, done, total, unit, fraction, detail, eta_s, per_unit_s, since}; a job
    that reports trainer steps only (no phases) is in 'training'. None when there is nothing to show."""
    if st.get("phase"):
        done, total = st.get("phase_done"), st.get("phase_total")
        eta = st.get("phase_eta_s")
        at, unit = st.get("phase_at") or now, st.get("phase_unit")
        since = st.get("phase_started_at")
    elif st.get("max_steps"):
        done, total, eta, at, unit, since = st.get("step"), st["max_steps"], st.get("eta_s"), \
            st.get("updated_at") or now, "steps", None
    else:
        return None
    left = None if eta is None else max(0.0, eta - max(0.0, now - at))
    per = eta / (total - done) if eta is not None and total and done is not None and total > done else None
    return {"name": st.get("phase") or "training", "done": done, "total": total, "unit": unit,
            "fraction": min(1.0, (done or 0) / total) if total else None, "detail": st.get("phase_detail"),
            "eta_s": left, "per_unit_s": per, "since": since}


def count_words(cur: dict) -> str:
    """'step 32/64 (50%)', '16/40 answers (40%)'."""
    pct = f" ({100 * cur['fraction']:.0f}%)" if cur["fraction"] is not None else ""
    if cur["unit"] == "steps":
        return f"step {cur['done'] or 0}/{cur['total']}{pct}"
    return count_text(cur["done"], cur["total"], cur["unit"]) + pct


def current_words(cur: dict) -> str:
    """The current phase in one line: 'evaluating 16/40 answers (40%) · base model · 2.1 s/answer · ETA 0:50'."""
    parts = [cur["name"] + (f" {count_words(cur)}" if cur["total"] else "")]
    if cur["detail"]:
        parts.append(cur["detail"])
    if cur["per_unit_s"] is not None:
        parts.append(f"{cur['per_unit_s']:.2g} s/{singular(cur['unit'])}" if cur["per_unit_s"] < 10 else
                     f"{fmt_duration(cur['per_unit_s'])} per {singular(cur['unit'])}")
    if cur["total"]:
        parts.append(f"ETA {fmt_duration(cur['eta_s'])}" if cur["eta_s"] is not None else
                     "ETA: timed once the first " + singular(cur["unit"]) + " is done")
    return " · ".join(parts)


def left_words(st: dict, now: float) -> str:
    """The whole job's time left: 'about 2:05 left', or why it is not known yet (and the timed part)."""
    left = remaining(st, now)
    if left["complete"]:
        return f"about {fmt_duration(left['known_s'])} left"
    floor = f" (at least {fmt_duration(left['known_s'])})" if left["known_s"] else ""
    return "time left unknown: " + "; ".join(left["why"]) + floor


def start_words(est: dict, name=str) -> str:
    """A queued job's estimated start: 'in about 3:20', or 'unknown (...)'; name(run id) writes an id."""
    if est["eta_s"] is not None:
        return f"in about {fmt_duration(est['eta_s'])}"
    why = "; ".join(f"{name(rid)}: {w}" for rid, w in est["unknown"])
    floor = f"; at least {fmt_duration(est['at_least_s'])}" if est["at_least_s"] else ""
    return f"unknown ({why}{floor})"


def times_words(st: dict, now: float) -> str:
    """'queued 0:05 · ran 3:12' (a live run: 'queued 0:05 · running 1:10'; a queued one: 'waiting 0:12')."""
    q, r = durations(st, now)
    state = st.get("state")
    if state == "queued":
        return f"waiting {fmt_duration(q)}" if q is not None else ""
    parts = [f"queued {fmt_duration(q)}"] if q is not None else []
    if r is not None:
        parts.append(f"{'running' if state in ('running', 'stopping') else 'ran'} {fmt_duration(r)}")
    return " · ".join(parts)


def entry_count(p: dict) -> str:
    """'step 12/64', '5/12 items' for a phase of the plan."""
    return f"step {p.get('done') or 0}/{p['total']}" if p.get("unit") == "steps" else \
        count_text(p.get("done"), p["total"], p.get("unit"))


def short(p: dict) -> bool:
    """A phase that ended before its count was complete (a training stopped at step 12 of 64)."""
    return bool(p.get("total")) and p.get("done") is not None and p["done"] < p["total"]


def ended_words(st: dict) -> str | None:
    """Where a stopped, failed or interrupted job ended: 'failed during evaluating at 16/40 answers',
    'training ended at step 12/64'; None when every phase it began ran whole."""
    state = st.get("state")
    for p in st.get("phases") or []:
        if p["state"] in ("stopped", "failed") or p["state"] == "running":
            return f"{state} during {p['name']}" + (f" at {entry_count(p)}" if p.get("total") else "")
    cut = next((p for p in st.get("phases") or [] if p["state"] == "done" and short(p)), None)
    if cut:
        return f"{cut['name']} ended at {entry_count(cut)}"
    if not st.get("phases") and st.get("max_steps") and (st.get("step") or 0) < st["max_steps"]:
        return f"{state} at step {st.get('step') or 0}/{st['max_steps']}"
    return None


def phases_words(st: dict) -> str:
    """The plan in one line: '✓ loading model 0:12 · ▶ training · saving · evaluating 40 answers'."""
    out = []
    live = st.get("state") in ("running", "stopping")
    for p in st.get("phases") or []:
        secs = f" {fmt_duration(p['seconds'])}" if p.get("seconds") is not None else ""
        out.append({"done": f"✓ {p['name']}{secs}" + (f" (ended at {entry_count(p)})" if short(p) else ""),
                    "running": f"▶ {p['name']}" if live else f"✗ {p['name']} ({st.get('state')})",
                    "pending": phase_entry_text(p), "skipped": f"{p['name']} (skipped)",
                    "stopped": f"■ {p['name']}{secs} (stopped)",
                    "failed": f"✗ {p['name']}{secs} (failed)"}.get(p["state"], p["name"]))
    return " · ".join(out)
