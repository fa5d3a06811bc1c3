"""RLHF loop tab: the current policy answers, people rate, the policy is updated from the ratings, and the next
round shows whether ratings went up - with a revert for when they went down.

    python -m components.rlhf_tab          # this tab alone on http://127.0.0.1:7860

Callable by gradio_client:
    rlhf_next(rater)                        -> (sample id, prompt, answer) of the newest round; id None when done
    rlhf_rate(sample_id, rating, rater)     -> commits one rating, returns the next sample (same triple)
and rlhf_start, rlhf_generate, rlhf_simulate, rlhf_update, rlhf_history, rlhf_revert (+ the run monitor's
rlhf_run_status/stop/kill/resume). Rounds, samples and ratings live in labs.feedback and labs.store; this file
only shows them. Keys (not while typing): stars 1-5, thumbs u (up) / d (down), best of k 1-8.
"""
from __future__ import annotations

import gradio as gr
import pandas as pd

from components import shared
from components.form import Form
from components.shared import GPU_QUEUE, dataset_choices, run_choices
from labs import runs, store
from labs.feedback import loop, raters
from labs.feedback.config import MAX_BEST_OF_K, ConfigError, LoopSettings
from labs.feedback.plots import history_figure

MAX_K = MAX_BEST_OF_K  # answer boxes for best-of-k (keys 1-8)
FORM = Form(LoopSettings, exclude=("model", "pool"))  # the model: the header's; the pool: with its typed prompts
KEYS_HELP = {"stars": "**Keys:** **1**-**5** stars", "thumbs": "**Keys:** **u** thumbs up · **d** thumbs down",
             "best_of_k": "**Keys:** **1**-**k** picks the best answer"}

# --------------------------------------------------------------------------- the rating contract
def rlhf_next(rater: str, loop_name: str | None = None) -> tuple[int | None, str, str]:
    """The next answer of the newest round (of `loop_name`, else of the loop rated last) this rater has not rated."""
    s = loop.next_to_rate(rater, (loop_name or "").strip() or None)
    return (None, "", "") if s is None else (s["id"], store.prompt_text(s["prompt"]), s["completion"])


def rlhf_rate(sample_id: int, rating: float | str, rater: str) -> tuple[int | None, str, str]:
    """Commit one rating (stars 1-5; thumbs up/down or 5/1; best-of-k 5 = best), then the next answer to rate."""
    out = loop.rate(int(sample_id), rater, rating)
    return rlhf_next(rater, out["loop"])


# --------------------------------------------------------------------------- page handlers
def _warn(e: Exception) -> str:
    gr.Warning(str(e))
    return f"⚠️ {e}"


def _plural(n, word):
    return f"{n} {word}{'s' * (n != 1)}"


def loop_status(name) -> str:
    if not (name or "").strip():
        return "Name a loop and press **Start / continue**."
    try:
        st = loop.load(name.strip())
    except (loop.LoopError, ValueError) as e:
        return f"Loop **{name}** is not started yet." if "not started" in str(e) else f"⚠️ {e}"
    s, last = st["settings"], loop.latest_round(st)
    busy = loop.active_update(st)
    parts = [f"**{st['name']}** · starting model `{s['model']}` · policy now: **{st['policy']['label']}**",
             f"{_plural(len(st['rounds']), 'round')}" + (f", newest: round {last['round']}" if last else ""),
             f"next round: {s['prompts']} prompts × k={s['k']}, {s['kind'].replace('_', ' ')}, update {s['mode']}"]
    if busy:
        parts.append(f"⏳ update `{busy}` running")
    return " · ".join(parts)


def _progress(name) -> str:
    cur = loop.current((name or "").strip() or None) if (name or "").strip() else None
    if cur is None:
        return "No round to rate yet."
    p = loop.progress(cur[0], cur[1]["round"])
    who = " · ".join(f"{r}{' (simulated)' * (r in p['simulated'])}: {n}/{p['samples']}"
                     for r, n in sorted(p["raters"].items())) or "no ratings yet"
    return f"Round {cur[1]['round']} ({p['samples']} answers, {cur[1]['kind'].replace('_', ' ')}): {who}"


def _kind_of(name) -> str:
    cur = loop.current((name or "").strip() or None) if (name or "").strip() else None
    return cur[1]["kind"] if cur else "stars"


def rating_view(name, rater):
    """Everything the rating panel shows: sample id, prompt, answer, best-of-k boxes, panels by kind, progress."""
    kind = _kind_of(name)
    panels = [gr.update(visible=kind == k) for k in ("stars", "thumbs", "best_of_k")]
    rows, boxes = [gr.update(visible=False)] * MAX_K, [""] * MAX_K
    head = [None, "", gr.update(value="", visible=kind != "best_of_k")]
    note = ""
    if not (rater or "").strip():
        note = "Type your name to rate (ratings are recorded per person)."
    else:
        try:
            sid, prompt, answer = rlhf_next(rater, name)
        except (store.StoreError, loop.LoopError) as e:
            sid, prompt, answer, note = None, "", "", f"⚠️ {e}"
        if sid is None and not note:
            note = "Nothing left for you in the newest round: generate the next round, or update the policy."
        elif sid is not None:
            head = [sid, prompt, gr.update(value=answer, visible=kind != "best_of_k")]
            if kind == "best_of_k":  # the k answers to this prompt side by side, one key each
                group = loop.group_of(loop.sample_by_id(sid))[:MAX_K]
                rows = [gr.update(visible=i < len(group)) for i in range(MAX_K)]
                boxes = [g["completion"] or "(empty answer)" for g in group] + [""] * (MAX_K - len(group))
    keys = KEYS_HELP[kind] if kind != "best_of_k" or not head[0] else \
        f"**Keys:** **1**-**{sum(1 for b in boxes if b)}** picks the best answer"
    return [*head, *panels, *rows, *boxes, keys, f"{_progress(name)}\n\n{note}".strip()]


def act(rating, sample_id, name, rater):
    if sample_id in (None, "", 0):
        gr.Warning("No answer on screen: generate a round, type your name, or press Next.")
        return rating_view(name, rater)
    try:
        loop.rate(int(sample_id), rater, rating)
    except (store.StoreError, loop.LoopError) as e:
        gr.Warning(str(e))
    return rating_view(name, rater)


def pick_best(i, sample_id, name, rater):
    if sample_id in (None, "", 0):
        gr.Warning("No answers on screen.")
        return rating_view(name, rater)
    group = loop.group_of(loop.sample_by_id(int(sample_id)))
    if i >= len(group):
        return rating_view(name, rater)
    try:
        loop.rate(group[i]["id"], rater, 5)
    except (store.StoreError, loop.LoopError) as e:
        gr.Warning(str(e))
    return rating_view(name, rater)


def history_view(name):
    """The chart, the per-round table, before/after answers, and the rounds a revert can go back to."""
    try:
        rows = loop.history(name.strip()) if (name or "").strip() and loop.exists(name.strip()) else []
    except loop.LoopError:
        rows = []
    f2 = lambda x, spec=".2f": "" if x is None else format(x, spec)  # noqa: E731
    table = pd.DataFrame([{
        "round": r["round"], "policy": r["policy"], "seed": r["seed"], "rated": f"{r['rated']}/{r['samples']}",
        "mean ± sd": "" if r["mean"] is None else f"{r['mean']:.2f} ± {r['sd']:.2f}", "good share": f2(r["thumbs_up"]),
        "KL": f2(r["kl"], ".4f"), "gen + eval s": f"{r['gen_s']:.0f} + {r['eval_s'] or 0:.0f}",
        "update": " · ".join(str(x) for x in (r["update_mode"], r["update_state"], r["update_s"] and
                                              f"{r['update_s']:.0f} s") if x) if r["update_run"] else "",
        "RM acc": f2(r["rm_accuracy"]),
        "raters": ", ".join(f"{k}{' (simulated)' * k.startswith(raters.PREFIX)}" for k in r["raters"]),
        "note": "set aside (reverted)" if r["reverted"] else ""} for r in rows])
    table = table[[c for c in table.columns if c in ("round", "mean ± sd") or (table[c] != "").any()]]  # no empty columns
    shown = [r for r in rows if r["probe"]]
    shown = shown[:1] + shown[1:][-3:]  # the first round and the newest three
    probe = pd.DataFrame()
    if shown:
        probe = pd.DataFrame({"held-out prompt": [p["prompt"] for p in shown[0]["probe"]],
                              **{f"round {r['round']} ({r['policy']})": [p["answer"] or "(empty answer)"
                                                                          for p in r["probe"]]
                                 for r in shown}})
    choices = [(f"round {r['round']} ({r['policy']})", r["round"]) for r in rows]
    return (history_figure(rows, title=name or ""), table, probe,
            gr.update(choices=choices, value=choices[-1][1] if choices else None))


def start(name, model, pool, typed, *values):
    """Start a loop, or change an existing loop's settings for its next rounds; `values` are the settings form's
    (FORM.names order; any not given keep the loop's current value, or the default for a new loop)."""
    name = (name or "").strip()
    settings = dict(zip(FORM.names, values), pool="typed" if pool == "typed below" else pool)
    try:
        if not loop.exists(name):
            settings["model"] = (model or "").strip() or loop.SETTINGS["model"]
        loop.start(name, typed=typed if pool == "typed below" else None, **settings)
    except (loop.LoopError, ValueError) as e:
        return _warn(e), gr.skip()
    return loop_status(name), gr.update(choices=loop.list_loops(), value=name)


def fill_settings(name):
    """Picking an existing loop shows its settings (what the next round uses)."""
    try:
        s = loop.load(name.strip())["settings"]
        shown = LoopSettings.from_dict({"draw": "walk", **s})  # loops saved before 'draw' existed walked
    except (loop.LoopError, ConfigError, AttributeError):
        return [gr.skip()] * (1 + len(FORM.names))
    return ["typed below" if shown.pool == "typed" else shown.pool, *FORM.values(shown)]


def generate(name, seed, progress=gr.Progress()):
    """Generate the next round from the current policy (one batched call) and store its answers to rate."""
    try:
        entry = loop.generate_round((name or "").strip(), seed=int(seed) if str(seed or "").strip() else None,
                                    progress=lambda m: progress(0.5, desc=m))
    except (loop.LoopError, ValueError) as e:
        return _warn(e)
    n = len(entry["sample_ids"])
    return (f"Round **{entry['round']}**: {n} answers ({len(entry['prompts'])} prompts × k={entry['k']}, seed "
            f"{entry['seed']}) from **{entry['policy']}** in **{entry['gen_s']:.1f} s** ({n / max(entry['gen_s'], 1e-9):.1f} "
            f"answers/s, one batched call); KL to the starting model {entry['kl']:.4f} nats/token, measured with the "
            f"held-out answers in {entry['eval_s']:.1f} s. Rate them below.")


def simulate(name, spec):
    """Let a scripted rater rate the newest round (stored as simulated)."""
    cur = loop.current((name or "").strip() or None) if (name or "").strip() else None
    if cur is None:
        return _warn(loop.LoopError("generate a round first"))
    try:
        rater = raters.get(spec)
        loop.rate_round(cur[0], cur[1]["round"], spec)
    except (raters.RaterError, store.StoreError, loop.LoopError) as e:
        return _warn(e)
    st = loop.round_stats(cur[0], cur[1]["round"])
    return (f"**{rater.name}** (simulated) rated round {cur[1]['round']}: mean {st['mean']:.2f} over "
            f"{st['rated']} answers. {rater.describe}.")


def update(name, mode):
    try:
        run = loop.submit_update((name or "").strip(), mode=mode)
    except (loop.LoopError, runs.RunError, store.StoreError) as e:
        return _warn(e), gr.skip()
    return (f"Update started: run `{run.id}` ({mode}; the job is `python -m labs.feedback --config "
            f"<run>/config.yaml`). The next round generates from its adapter once it finishes.", gr.update(choices=run_choices("feedback"), value=run.id))


def revert(name, number):
    if number in (None, ""):
        return _warn(loop.LoopError("pick a round to revert to"))
    try:
        st = loop.revert((name or "").strip(), int(number))
    except (loop.LoopError, ValueError) as e:
        return _warn(e)
    return (f"Reverted: the next round generates from **{st['policy']['label']}**; rounds after {int(number)} are set "
            f"aside (still shown; their ratings stay training data). Seed {loop.get_round(st, number)['seed']} "
            "gives that round's prompts and answers again.")


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

    with gr.Row():
        round_seed = gr.Textbox("", label="Round seed (empty: loop seed + round - 1)", placeholder="default", scale=1)
        gen_btn = gr.Button("Generate the next round", variant="primary", scale=2)
    gen_md = gr.Markdown()

    gr.Markdown("#### Rate")
    with gr.Row():
        rater = gr.Textbox(label="Your name (ratings are recorded per person)", scale=2)
        next_btn = gr.Button("Start / next answer", scale=1)
    progress_md = gr.Markdown()
    sample_id = gr.Number(value=None, visible=False, precision=0)
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
    hist_df = gr.Dataframe(label="Rounds", interactive=False, wrap=True)
    probe_df = gr.Dataframe(label="Before / after: the same held-out prompts, answered greedily by each round's policy",
                            interactive=False, wrap=True)
    with gr.Row():
        revert_to = gr.Dropdown([], label="Revert to round", scale=2)
        revert_btn = gr.Button("Revert (the next round generates from that round's policy)", scale=2, variant="stop")
    revert_md = gr.Markdown()

    # ---- events
    view = [sample_id, prompt_box, answer_box, stars_row, thumbs_row, best_col, *best_rows, *best_boxes, keys_md,
            progress_md]
    hist = [hist_plot, hist_df, probe_df, revert_to]
    form = [pool, typed, *settings]
    everything = dict(fn=lambda n, r: (loop_status(n), *rating_view(n, r), *history_view(n)), inputs=[name, rater],
                      outputs=[status, *view, *hist], api_visibility="private")
    # on page load: loops started since the page was built (by anyone), the newest one shown with its settings
    loaded = gr.on(None, _newest_loop, None, [name, monitor.run_id], api_visibility="private")
    loaded.then(fill_settings, name, [f for f in form if f is not typed], api_visibility="private").then(**everything)
    loaded.then(shared.show, monitor.run_id, [monitor.status, monitor.loss_plot, monitor.error, monitor.seen,
                                              monitor.timer], api_visibility="private")  # a load sets no .change off
    start_btn.click(start, [name, ctx.model_spec, *form], [status, name], api_name="rlhf_start").then(**everything)
    name.change(fill_settings, name, [f for f in form if f is not typed], api_visibility="private").then(**everything)
    pool.change(lambda p: gr.update(visible=p == "typed below"), pool, typed, api_visibility="private")
    gen_btn.click(generate, [name, round_seed], gen_md, api_name="rlhf_generate", **GPU_QUEUE).then(**everything)
    gr.on([next_btn.click, rater.submit], rating_view, [name, rater], view, api_visibility="private")
    for i, btn in enumerate(star_btns):
        btn.click(lambda sid, n, r, v=i + 1: act(v, sid, n, r), [sample_id, name, rater], view, api_visibility="private")
    up_btn.click(lambda sid, n, r: act("up", sid, n, r), [sample_id, name, rater], view, api_visibility="private")
    down_btn.click(lambda sid, n, r: act("down", sid, n, r), [sample_id, name, rater], view, api_visibility="private")
    for i, btn in enumerate(best_btns):
        btn.click(lambda sid, n, r, i=i: pick_best(i, sid, n, r), [sample_id, name, rater], view,
                  api_visibility="private")
    sim_btn.click(simulate, [name, sim_spec], sim_md, api_name="rlhf_simulate").then(**everything)
    update_btn.click(update, [name, FORM.widgets["mode"]], [update_md, monitor.run_id], api_name="rlhf_update").then(**everything)
    monitor.after_draw(_after_run, [name, monitor.seen], [status, *hist])
    hist_btn.click(lambda n: (loop_status(n), *history_view(n)), name, [status, *hist], api_visibility="private")
    revert_btn.click(revert, [name, revert_to], revert_md, api_name="rlhf_revert").then(**everything)
    gr.api(rlhf_history, api_name="rlhf_history")
    gr.api(rlhf_next, api_name="rlhf_next")
    gr.api(rlhf_rate, api_name="rlhf_rate")


def _newest_loop():
    """The loops (started since the page was built, too), the newest shown, with its newest update in the monitor."""
    loops = loop.list_loops()
    last = [r for r in (loop.history(loops[0]) if loops else []) if r["update_run"]]
    return (gr.update(choices=loops, value=loops[0] if loops else None),
            gr.update(choices=run_choices("feedback"), value=last[-1]["update_run"]) if last else gr.skip())


def rlhf_history(loop_name: str) -> list[dict]:
    """The loop's rounds as table rows (what the History table shows)."""
    return history_view(loop_name)[1].to_dict("records")


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
