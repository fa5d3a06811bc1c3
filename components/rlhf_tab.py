"""RLHF loop tab: the current policy answers, people rate, the policy is updated from the ratings, and the next
round shows whether ratings went up - with a revert for when they went down.

    python -m components.rlhf_tab          # this tab alone on http://127.0.0.1:7860

Callable by gradio_client:
    rlhf_next(rater)                        -> (sample id, prompt, answer) of the newest round; id None when done
    rlhf_rate(sample_id, rating, rater)     -> commits one rating, returns the next sample (same triple)
    rlhf_undo(rater)                        -> takes back this rater's last rating of the newest round, returns
                                               that answer (to rate again; id None when there was nothing)
and rlhf_start, rlhf_generate, rlhf_simulate, rlhf_update, rlhf_history, rlhf_revert (+ the run monitor's
rlhf_run_status/stop/kill/resume). Rounds, samples and ratings live in labs.feedback and labs.store; this file
only shows them. What the page shows is read from the loop's loop.json and the store, so a reload or a second tab
shows the same; the settings form is saved to loop.json by Start / continue, and by Generate and Update before
they run (so the round or update uses what the form shows). Keys (not while typing): stars 1-5, thumbs u (up) /
d (down), best of k 1-8, z undoes your last rating.
"""
from __future__ import annotations

import gradio as gr
import pandas as pd

from components import shared
from components.form import Form
from components.shared import (GPU_QUEUE, actor_of, dataset_choices, escape_md, guidelines_markdown, run_choices,
                               with_request)
from labs import runs, store
from labs.errors import LabError
from labs.feedback import loop, raters
from labs.feedback.config import MAX_BEST_OF_K, ConfigError, LoopSettings
from labs.feedback.plots import history_figure

MAX_K = MAX_BEST_OF_K  # answer boxes for best-of-k (keys 1-8)
FORM = Form(LoopSettings, exclude=("model", "pool"))  # the model: the header's; the pool: with its typed prompts
UNDO_KEY = " · **z** undo your last rating"
KEYS_HELP = {"stars": "**Keys:** **1**-**5** stars" + UNDO_KEY,
             "thumbs": "**Keys:** **u** thumbs up · **d** thumbs down" + UNDO_KEY,
             "best_of_k": "**Keys:** **1**-**k** picks the best answer" + UNDO_KEY}
# The rounds table: these columns always, the others only once a round fills them. Widths keep what a person
# compares (rated, mean, good share, KL) on screen: the table is as wide as the page, long cells wrap.
ROUND_COLUMNS = ("round", "policy", "rated", "mean ± sd", "good share", "KL", "gen + eval s", "update",
                 "update queue + run s", "RM acc", "raters", "seed", "note")
ALWAYS = ("round", "policy", "rated", "mean ± sd", "good share", "KL", "gen + eval s")
WIDTH = {"round": 6, "policy": 16, "rated": 7, "mean ± sd": 10, "good share": 8, "KL": 8, "gen + eval s": 9,
         "update": 14, "update queue + run s": 11, "RM acc": 7, "raters": 16, "seed": 6, "note": 12}  # shares
PROBE_EMPTY = ("held-out prompt", "answer of each round's policy")


def _widths(columns) -> list[str]:
    total = sum(WIDTH.get(c, 10) for c in columns)
    return [f"{100 * WIDTH.get(c, 10) / total:.1f}%" for c in columns]


# --------------------------------------------------------------------------- the rating contract
def _rater(typed: str | None, request: gr.Request | None) -> str:
    """Whom a rating is recorded under: the typed name (one person, or --public), else the signed-in person."""
    who = actor_of(request, typed)
    return (typed or "") if who.via in ("local", "public") else who.name


def rlhf_next(rater: str, loop_name: str | None = None, request: gr.Request = None) -> tuple[int | None, str, str]:
    """The next answer of the newest round (of `loop_name`, else of the loop rated last) this rater has not rated.
    In a shared lab the rater is the signed-in person."""
    s = loop.next_to_rate(_rater(rater, request), (loop_name or "").strip() or None)
    return (None, "", "") if s is None else (s["id"], store.prompt_text(s["prompt"]), s["completion"])


def rlhf_rate(sample_id: int, rating: float | str, rater: str, request: gr.Request = None) -> tuple[int | None, str, str]:
    """Commit one rating (stars 1-5; thumbs up/down or 5/1; best-of-k 5 = best), then the next answer to rate.
    In a shared lab it is the signed-in person's (a different typed name is refused)."""
    out = loop.rate(int(sample_id), rater, rating, actor=actor_of(request, rater))
    return rlhf_next(rater, out["loop"], request)


def rlhf_undo(rater: str, loop_name: str | None = None, request: gr.Request = None) -> tuple[int | None, str, str]:
    """Take back this rater's last rating in the newest round (a best-of-k pick whole): that answer, to rate again."""
    out = loop.undo_rating(rater, (loop_name or "").strip() or None, actor=actor_of(request, rater))
    if not out or not out["undone"]:
        return None, "", ""
    s = loop.sample_by_id(out["undone"][0]["sample_id"])
    return s["id"], store.prompt_text(s["prompt"]), s["completion"]


# --------------------------------------------------------------------------- page handlers
def _warn(e: Exception) -> str:
    gr.Warning(str(e))
    return f"⚠️ {escape_md(e)}"


def _plural(n, word):
    return f"{n} {word}{'s' * (n != 1)}"


def _current(name) -> tuple[str, dict] | None:
    """(loop, its newest round) that the rating panel shows: of the loop named (None while it has no round, or is
    new, or is a name the lab refuses: the status line says which), else of the loop with the newest round."""
    try:
        return loop.current((name or "").strip() or None)
    except loop.LoopError:
        return None


def loop_status(name) -> str:
    name = (name or "").strip()
    if not name:
        return "Name a loop and press **Start / continue**."
    try:
        if not loop.exists(name):
            return (f"🆕 New loop **{escape_md(name)}**, not created yet: press **Start / continue** to create it with "
                    "the settings below.")
        st = loop.load(name)
    except loop.LoopError as e:
        return f"⚠️ {escape_md(e)}"
    s, last = st["settings"], loop.latest_round(st)
    busy = loop.active_update(st)
    parts = [f"**{escape_md(st['name'])}** · starting model {escape_md(s['model'])} · policy now: "
             f"**{escape_md(st['policy']['label'])}**",
             f"{_plural(len(st['rounds']), 'round')}" + (f", newest: round {last['round']}" if last else ""),
             f"next round: {_plural(s['prompts'], 'prompt')} × k={s['k']}, {s['kind'].replace('_', ' ')}, "
             f"update {s['mode']}"]
    if busy:
        parts.append(f"⏳ update {escape_md(busy)} running")
    return " · ".join(parts)


def _progress(cur) -> str:
    if cur is None:
        return "No round to rate yet."
    p = loop.progress(cur[0], cur[1]["round"])
    who = " · ".join(f"{escape_md(r)}{' (simulated)' * (r in p['simulated'])}: {n}/{p['samples']}"
                     for r, n in sorted(p["raters"].items())) or "no ratings yet"
    return (f"Loop **{escape_md(cur[0])}**, round {cur[1]['round']} ({p['samples']} answers, "
            f"{cur[1]['kind'].replace('_', ' ')}): {who}")


def answer_text(sample: dict) -> str:
    """An answer as the rater sees it: marked when it was cut at max_new_tokens (the model had not ended it)."""
    text = sample["completion"] or "(empty answer)"
    cut = loop.cut_at(sample)
    return f"{text} … (cut at {cut} tokens)" if cut else text


def rating_view(name, rater, show: int | None = None):
    """Everything the rating panel shows: sample id, prompt, answer, best-of-k boxes, panels by kind, progress.
    The next answer this rater has not rated, or sample `show` (an answer whose rating was just undone)."""
    cur = _current(name)
    kind = cur[1]["kind"] if cur else "stars"
    panels = [gr.update(visible=kind == k) for k in ("stars", "thumbs", "best_of_k")]
    rows, boxes = [gr.update(visible=False)] * MAX_K, [""] * MAX_K
    head = [None, "", gr.update(value="", visible=kind != "best_of_k")]
    note = ""
    if not (rater or "").strip():
        note = "Type your name to rate (ratings are recorded per person)."
    elif cur is not None:
        s = None
        try:
            s = loop.sample_by_id(show) if show else loop.next_to_rate(rater, cur[0])
        except (store.StoreError, loop.LoopError) as e:
            note = f"⚠️ {escape_md(e)}"
        if s is None and not note:
            note = "Nothing left for you in the newest round: generate the next round, or update the policy."
        elif s is not None:
            head = [s["id"], store.prompt_text(s["prompt"]), gr.update(value=answer_text(s),
                                                                       visible=kind != "best_of_k")]
            if kind == "best_of_k":  # the k answers to this prompt side by side, one key each
                group = loop.group_of(s)[:MAX_K]
                rows = [gr.update(visible=i < len(group)) for i in range(MAX_K)]
                boxes = [answer_text(g) for g in group] + [""] * (MAX_K - len(group))
    keys = KEYS_HELP[kind] if kind != "best_of_k" or not head[0] else \
        f"**Keys:** **1**-**{sum(1 for b in boxes if b)}** picks the best answer" + UNDO_KEY
    return [*head, *panels, *rows, *boxes, keys, f"{_progress(cur)}\n\n{note}".strip()]


def act(rating, sample_id, name, rater, request: gr.Request = None):
    if sample_id in (None, "", 0):
        gr.Warning("No answer on screen: generate a round, type your name, or press Next.")
        return rating_view(name, rater)
    try:
        loop.rate(int(sample_id), rater, rating, actor=actor_of(request, rater))
    except LabError as e:
        gr.Warning(str(e))
    return rating_view(name, rater)


def _rating(value):
    """The handler of one rating button (Gradio hands the request only to a named parameter, never a lambda's)."""
    def handler(sample_id, name, rater, request: gr.Request = None):
        return act(value, sample_id, name, rater, request)
    return handler


def _best(i):
    def handler(sample_id, name, rater, request: gr.Request = None):
        return pick_best(i, sample_id, name, rater, request)
    return handler


def pick_best(i, sample_id, name, rater, request: gr.Request = None):
    if sample_id in (None, "", 0):
        gr.Warning("No answers on screen.")
        return rating_view(name, rater)
    group = loop.group_of(loop.sample_by_id(int(sample_id)))
    if i >= len(group):
        return rating_view(name, rater)
    try:
        loop.rate(group[i]["id"], rater, 5, actor=actor_of(request, rater))
    except LabError as e:
        gr.Warning(str(e))
    return rating_view(name, rater)


def undo(name, rater, request: gr.Request = None):
    """Take back your last rating of the newest round (deleted from the store) and show that answer again."""
    cur = _current(name)
    try:
        out = loop.undo_rating(rater, cur[0], actor=actor_of(request, rater)) if cur else None
    except LabError as e:
        gr.Warning(str(e))
        return rating_view(name, rater)
    if not out or not out["undone"]:
        gr.Info("Nothing of yours to undo in the newest round." if cur else "No round to rate yet.")
        return rating_view(name, rater)
    first = out["undone"][0]
    what = "best-of-k pick" if len(out["undone"]) > 1 else f"rating ({first['rating']:g})"
    gr.Info(f"Undone: your {what} of round {out['round']}; rate it again.")
    return rating_view(name, rater, show=first["sample_id"])


def history_view(name):
    """The chart, the per-round table, before/after answers, and the rounds a revert can go back to."""
    name = (name or "").strip()
    try:
        rows = loop.history(name) if name and loop.exists(name) else []
    except loop.LoopError:
        rows = []
    f2 = lambda x, spec=".2f": "" if x is None else format(x, spec)  # noqa: E731
    s0 = lambda x: "–" if x is None else f"{x:.0f}"  # noqa: E731
    table = pd.DataFrame([{
        "round": r["round"], "policy": r["policy"], "rated": f"{r['rated']}/{r['samples']}",
        "mean ± sd": "" if r["mean"] is None else f"{r['mean']:.2f} ± {r['sd']:.2f}", "good share": f2(r["thumbs_up"]),
        "KL": f2(r["kl"], ".4f"), "gen + eval s": f"{r['gen_s']:.0f} + {r['eval_s'] or 0:.0f}",
        "update": " · ".join(x for x in (r["update_mode"], r["update_state"]) if x) if r["update_run"] else "",
        "update queue + run s": f"{s0(r['queue_s'])} + {s0(r['run_s'])}" if r["update_run"] else "",
        "RM acc": f2(r["rm_accuracy"]),
        "raters": ", ".join(f"{k}{' (simulated)' * k.startswith(raters.PREFIX)}" for k in r["raters"]),
        "seed": r["seed"], "note": "set aside (reverted)" if r["reverted"] else ""} for r in rows],
        columns=list(ROUND_COLUMNS))
    keep = [c for c in ROUND_COLUMNS if c in ALWAYS or (table[c] != "").any()]  # no empty columns
    table = table[keep]
    shown = [r for r in rows if r["probe"]]
    shown = shown[:1] + shown[1:][-3:]  # the first round and the newest three
    probe = pd.DataFrame(columns=list(PROBE_EMPTY))
    if shown:
        probe = pd.DataFrame({"held-out prompt": [p["prompt"] for p in shown[0]["probe"]],
                              **{f"round {r['round']} ({r['policy']})": [p["answer"] or "(empty answer)"
                                                                          for p in r["probe"]]
                                 for r in shown}})
    rounds = len(probe.columns) - 1  # the prompt a fifth of the width at most, each round's answers the same share
    first = 20 if rounds > 1 else 35
    probe_widths = [f"{first}%"] + [f"{(100 - first) / rounds:.1f}%"] * rounds
    choices = [(f"round {r['round']} ({r['policy']})", r["round"]) for r in rows]
    return (history_figure(rows, title=name), gr.update(value=table, column_widths=_widths(keep)),
            gr.update(value=probe, column_widths=probe_widths),
            gr.update(choices=choices, value=choices[-1][1] if choices else None))


def _form_settings(pool, typed, values) -> tuple[dict, str | None]:
    """The settings form as loop settings (FORM.names order), and the typed prompts when the pool is typed."""
    settings = dict(zip(FORM.names, values), pool="typed" if pool == "typed below" else pool)
    return settings, (typed if pool == "typed below" else None)


def start(name, model, pool, typed, *values, request: gr.Request = None):
    """Start a loop, or change an existing loop's settings for its next rounds; `values` are the settings form's
    (FORM.names order; any not given keep the loop's current value, or the default for a new loop)."""
    name = (name or "").strip()
    settings, typed = _form_settings(pool, typed, values)
    try:
        if not loop.exists(name):
            settings["model"] = (model or "").strip() or loop.SETTINGS["model"]
        loop.start(name, typed=typed, actor=actor_of(request), **settings)
    except (LabError, ValueError) as e:
        return _warn(e), gr.skip()
    return loop_status(name), gr.update(choices=loop.list_loops(), value=name)


def fill_settings(name):
    """Picking an existing loop shows its settings (what the next round uses), typed prompts included."""
    try:
        name = name.strip()
        s = loop.load(name)["settings"]
        shown = LoopSettings.from_dict({"draw": "walk", **s})  # loops saved before 'draw' existed walked
    except (loop.LoopError, ConfigError, AttributeError):
        return [gr.skip()] * (2 + len(FORM.names))  # a new name keeps the form: Start creates the loop from it
    return ["typed below" if shown.pool == "typed" else shown.pool, loop.typed_text(name), *FORM.values(shown)]


def _started(name: str) -> bool:
    try:
        return bool(name) and loop.exists(name)
    except loop.LoopError:
        return False  # a name the lab refuses: the status line says why


def settings_note(name, pool, typed, *values) -> str:
    """What the form changes against the loop's saved settings (loop.json), not saved yet; '' when nothing."""
    name = (name or "").strip()
    if not _started(name):
        return ""
    try:
        settings, typed = _form_settings(pool, typed, values)
        changes = loop.settings_changes(name, typed, **settings)
    except (loop.LoopError, ValueError) as e:
        return f"⚠️ {escape_md(e)}. Generate and Update refuse to run until the settings are fixed."
    if not changes:
        return ""
    return ("✎ Not saved yet: " + " · ".join(escape_md(c) for c in changes) + ". **Generate the next round** and "
            "**Update the policy** save them first (so does **Start / continue**).")


def save_settings(name, pool, typed, *values, request: gr.Request = None) -> str:
    """Before Generate and Update: the settings form, as it is shown, saved to the loop, so the round or update
    uses it. Raises (and nothing runs) when the settings are not valid."""
    name = (name or "").strip()
    settings, typed = _form_settings(pool, typed, values)
    if not _started(name):
        return ""  # Generate / Update say what is missing
    try:
        changes = loop.settings_changes(name, typed, **settings)
        if changes:
            loop.start(name, typed=typed, actor=actor_of(request), **settings)
    except (LabError, ValueError) as e:
        raise gr.Error(f"Settings not saved, nothing started: {e}") from None
    return ("Saved for the next round and update: " + " · ".join(escape_md(c) for c in changes) + ".") \
        if changes else ""


def generate(name, seed, progress=gr.Progress(), request: gr.Request = None):
    """Generate the next round from the current policy (one batched call) and store its answers to rate."""
    try:
        entry = loop.generate_round((name or "").strip(), seed=int(seed) if str(seed or "").strip() else None,
                                    actor=actor_of(request),
                                    progress=lambda fraction, message: progress(fraction, desc=message))
    except (loop.LoopError, ValueError) as e:
        return _warn(e)
    n = len(entry["sample_ids"])
    cut = f" {entry['cut']} of them cut at {entry['sampling']['max_new_tokens']} tokens (marked)." \
        if entry.get("cut") else ""
    return (f"Round **{entry['round']}**: {n} answers ({len(entry['prompts'])} prompts × k={entry['k']}, seed "
            f"{entry['seed']}) from **{escape_md(entry['policy'])}** in **{entry['gen_s']:.1f} s** "
            f"({n / max(entry['gen_s'], 1e-9):.1f} answers/s, one batched call); KL to the starting model "
            f"{entry['kl']:.4f} nats/token, measured with the held-out answers in {entry['eval_s']:.1f} s.{cut} "
            "Rate them below.")


def simulate(name, spec, request: gr.Request = None):
    """Let a scripted rater rate the newest round (stored as simulated)."""
    cur = _current(name) if (name or "").strip() else None
    if cur is None:
        return _warn(loop.LoopError("generate a round first"))
    try:
        rater = raters.get(spec)
        loop.rate_round(cur[0], cur[1]["round"], spec, actor=actor_of(request))
    except LabError as e:
        return _warn(e)
    st = loop.round_stats(cur[0], cur[1]["round"])
    return (f"**{escape_md(rater.name)}** (simulated) rated round {cur[1]['round']}: mean {st['mean']:.2f} over "
            f"{st['rated']} answers. {escape_md(rater.describe)}.")


def update(name, mode, request: gr.Request = None):
    try:
        run = loop.submit_update((name or "").strip(), mode=mode, actor=actor_of(request))
    except LabError as e:
        return _warn(e), gr.skip()
    return (f"Update started: run {escape_md(run.id)} ({mode}; the job is `python -m labs.feedback --config "
            f"<run>/config.yaml`). The next round generates from its adapter once it finishes.",
            gr.update(choices=run_choices("feedback"), value=run.id))


def revert(name, number, request: gr.Request = None):
    if number in (None, ""):
        return _warn(loop.LoopError("pick a round to revert to"))
    try:
        st = loop.revert((name or "").strip(), int(number), actor=actor_of(request))
    except (LabError, ValueError) as e:
        return _warn(e)
    return (f"Reverted: the next round generates from **{escape_md(st['policy']['label'])}**; rounds after "
            f"{int(number)} are set aside (still shown; their ratings stay training data). Seed "
            f"{loop.get_round(st, number)['seed']} gives that round's prompts and answers again.")


# --------------------------------------------------------------------------- layout
def build(ctx):
    gr.Markdown("### RLHF loop\nThe current policy answers a few prompts k times; people rate the answers; **Update the "
                "policy** trains its LoRA adapter on every rating so far (KTO, DPO, or a reward model + RLOO/GRPO); the next "
                "round shows whether ratings went up. If they went down, revert to an earlier round. Every rating is "
                "stored at once; scripted raters are marked *simulated* everywhere.")
    loops = loop.list_loops()
    with gr.Row():
        name = gr.Dropdown(loops, value=loops[0] if loops else None, allow_custom_value=True, scale=3,
                           label="Loop (pick one to continue, or type a new name)")
        start_btn = gr.Button("Start / continue", variant="primary", scale=1)
    status = gr.Markdown(loop_status(loops[0] if loops else ""))
    with gr.Accordion("Settings (used by the next round and update)", open=not loops):
        with gr.Row():
            pool = gr.Dropdown(["prompts", "typed below", *dataset_choices()], value="prompts", scale=2,
                               label="Prompt pool (bundled prompts, a saved dataset, or typed)")
        typed = gr.Textbox(label="Prompts, one per line", lines=3, visible=False)
        settings = FORM.render(LoopSettings(), per_row=4)
    settings_md = gr.Markdown()

    with gr.Row():
        round_seed = gr.Textbox("", label="Round seed (empty: loop seed + round - 1)", placeholder="default", scale=1)
        gen_btn = gr.Button("Generate the next round", variant="primary", scale=2)
    gen_md = gr.Markdown()

    gr.Markdown("#### Rate")
    with gr.Row():
        rater = gr.Textbox(label="Your name (ratings are recorded per person)", scale=2)
        next_btn = gr.Button("Start / next answer", scale=1)
        undo_btn = gr.Button("↶ Undo my last rating [z]", elem_classes="lab-key-z", scale=1)
    progress_md = gr.Markdown()
    sample_id = gr.Number(value=None, visible=False, precision=0)
    guide_md = gr.Markdown()  # the admin's rating guidelines (Admin tab), read when the page loads
    ctx.on_load(lambda: guidelines_markdown("rating"), [guide_md])
    prompt_box = gr.Textbox(label="Prompt", interactive=False, lines=2, max_lines=10)
    answer_box = gr.Textbox(label="Answer", interactive=False, lines=4, max_lines=20)
    with gr.Row(visible=True) as stars_row:
        star_btns = [gr.Button(f"{'★' * i} [{i}]", elem_classes=f"lab-key-{i}") for i in range(1, 6)]
    with gr.Row(visible=False) as thumbs_row:
        up_btn = gr.Button("👍 Up [u]", variant="primary", elem_classes="lab-key-u")
        down_btn = gr.Button("👎 Down [d]", elem_classes="lab-key-d")
    with gr.Column(visible=False) as best_col:
        best_rows, best_boxes, best_btns = [], [], []
        for i in range(MAX_K):
            with gr.Row(equal_height=True, visible=False) as row:
                best_rows.append(row)
                best_boxes.append(gr.Textbox(label=f"Answer {i + 1}", interactive=False, lines=2, max_lines=12,
                                             scale=5))
                best_btns.append(gr.Button(f"Best [{i + 1}]", elem_classes=f"lab-key-{i + 1}", scale=1, min_width=80))
    keys_md = gr.Markdown(KEYS_HELP["stars"])
    with gr.Accordion("Simulated rater (for trying the loop alone)", open=False):
        with gr.Row():
            sim_spec = gr.Textbox(value="shorter", label="Scripted rater: shorter, or mentions:WORD", scale=2)
            sim_btn = gr.Button("Let it rate the newest round", scale=1)
        sim_md = gr.Markdown()

    gr.Markdown("#### Update the policy")
    with gr.Row():
        update_btn = gr.Button("Update the policy", variant="primary")
    update_md = gr.Markdown()
    monitor = ctx.run_monitor("rlhf", recipe="feedback")

    with gr.Row():
        gr.Markdown("#### History")
        hist_btn = gr.Button("↻ Refresh the history", scale=0, min_width=200, size="sm")
    hist_plot = gr.Plot(label="Per round")
    hist_df = gr.Dataframe(pd.DataFrame(columns=list(ALWAYS)), label="Rounds", interactive=False, wrap=True,
                           column_widths=_widths(ALWAYS))
    probe_df = gr.Dataframe(pd.DataFrame(columns=list(PROBE_EMPTY)), interactive=False, wrap=True,
                            label="Before / after: the same held-out prompts, answered greedily by each round's policy",
                            column_widths=["35%", "65%"])
    with gr.Row():
        revert_to = gr.Dropdown([], label="Revert to round", scale=2)
        revert_btn = gr.Button("Revert (the next round generates from that round's policy)", scale=2, variant="stop")
    revert_md = gr.Markdown()

    # ---- events
    view = [sample_id, prompt_box, answer_box, stars_row, thumbs_row, best_col, *best_rows, *best_boxes, keys_md,
            progress_md]
    hist = [hist_plot, hist_df, probe_df, revert_to]
    form = [pool, typed, *settings]
    quiet = dict(api_visibility="private", queue=False, show_progress="hidden")
    everything = dict(fn=lambda n, r: (loop_status(n), *rating_view(n, r), *history_view(n)), inputs=[name, rater],
                      outputs=[status, *view, *hist], api_visibility="private")
    note = dict(fn=settings_note, inputs=[name, *form], outputs=settings_md, **quiet)
    # on page load: loops started since the page was built (by anyone), the newest one shown with its settings
    loaded = gr.on(None, _newest_loop, None, [name, monitor.run_id], api_visibility="private")
    loaded.then(fill_settings, name, form, api_visibility="private").then(**note).then(**everything)
    loaded.then(shared.show, monitor.run_id, [monitor.status, monitor.loss_plot, monitor.error, monitor.seen,
                                              monitor.timer], api_visibility="private")  # a load sets no .change off
    start_btn.click(with_request(start), [name, ctx.model_spec, *form], [status, name], api_name="rlhf_start").then(**note) \
        .then(**everything)
    name.change(fill_settings, name, form, api_visibility="private").then(**note).then(**everything)
    pool.change(lambda p: gr.update(visible=p == "typed below"), pool, typed, api_visibility="private")
    gr.on([w.change for w in form], **note)  # a change not saved yet is said under the form
    # Generate and Update save the form first (a private step), so they use what it shows; the API's
    # rlhf_generate / rlhf_update use the loop's saved settings
    gen_btn.click(with_request(save_settings), [name, *form], settings_md, api_visibility="private") \
        .success(generate, [name, round_seed], gen_md, api_name="rlhf_generate", **GPU_QUEUE).then(**everything)
    gr.on([next_btn.click, rater.submit], rating_view, [name, rater], view, api_visibility="private")
    undo_btn.click(undo, [name, rater], view, api_visibility="private")
    for i, btn in enumerate(star_btns):
        btn.click(_rating(i + 1), [sample_id, name, rater], view, api_visibility="private")
    up_btn.click(_rating("up"), [sample_id, name, rater], view, api_visibility="private")
    down_btn.click(_rating("down"), [sample_id, name, rater], view, api_visibility="private")
    for i, btn in enumerate(best_btns):
        btn.click(_best(i), [sample_id, name, rater], view,
                  api_visibility="private")
    sim_btn.click(simulate, [name, sim_spec], sim_md, api_name="rlhf_simulate").then(**everything)
    update_btn.click(with_request(save_settings), [name, *form], settings_md, api_visibility="private") \
        .success(update, [name, FORM.widgets["mode"]], [update_md, monitor.run_id], api_name="rlhf_update") \
        .then(**everything)
    monitor.after_draw(_after_run, [name, monitor.seen], [status, *hist])
    hist_btn.click(lambda n: (loop_status(n), *history_view(n)), name, [status, *hist], api_visibility="private")
    revert_btn.click(revert, [name, revert_to], revert_md, api_name="rlhf_revert").then(**everything)
    gr.api(rlhf_history, api_name="rlhf_history")
    gr.api(rlhf_next, api_name="rlhf_next")
    gr.api(rlhf_rate, api_name="rlhf_rate")
    gr.api(rlhf_undo, api_name="rlhf_undo")


def _newest_loop():
    """The loops (started since the page was built, too), the newest shown, with its newest update in the monitor."""
    loops = loop.list_loops()
    last = [r for r in (loop.history(loops[0]) if loops else []) if r["update_run"]]
    return (gr.update(choices=loops, value=loops[0] if loops else None),
            gr.update(choices=run_choices("feedback"), value=last[-1]["update_run"]) if last else gr.skip())


def rlhf_history(loop_name: str) -> list[dict]:
    """The loop's rounds as table rows (what the History table shows)."""
    return history_view(loop_name)[1]["value"].to_dict("records")


def _after_run(name, seen):
    """Once the update on screen has ended, the loop's status and history show its result."""
    if seen is None or seen.state in runs.ACTIVE or not seen.run_id:
        return [gr.skip()] * 5
    return (loop_status(name), *history_view(name))


if __name__ == "__main__":
    from components.keys import KEYS_JS
    from components.shared import default_context
    with gr.Blocks(title="RLHF loop") as demo:
        build(default_context())
    demo.queue().launch(head=KEYS_JS)
