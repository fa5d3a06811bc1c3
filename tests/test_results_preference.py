"""labs.preference.results on a run directory written here as a finished DPO job leaves it, the Preference
tab's panel drawn from it (the exact numbers a person reads), and the panel's wiring: its results are drawn
after every monitor draw, not on a gr.State change that an unqueued event never sends."""
from __future__ import annotations

import json
import os

import gradio as gr
import psutil
import pytest

from labs import runs
from labs.runs.directory import write_json

# eval_metrics.json as labs.preference.recipe.evaluate writes it (pair_metrics per split), DPO, beta 0.1
EVAL = {"method": "dpo", "beta": 0.1,
        "train": {"pairs": 4,
                  "before": {"reward_accuracy": 0.0, "reward_margin": 0.0, "log_odds_accuracy": 0.25,
                             "log_odds_ratio": -0.4, "logps_chosen": -20.5, "logps_rejected": -18.25},
                  "after": {"reward_accuracy": 0.75, "reward_margin": 0.125, "log_odds_accuracy": 0.5,
                            "log_odds_ratio": 0.1, "logps_chosen": -19.0, "logps_rejected": -19.5}},
        "held_out": {"pairs": 4,
                     "before": {"reward_accuracy": 0.0, "reward_margin": 0.0, "log_odds_accuracy": 0.5,
                                "log_odds_ratio": 0.05, "logps_chosen": -21.0, "logps_rejected": -22.0},
                     "after": {"reward_accuracy": 0.5, "reward_margin": 0.0625, "log_odds_accuracy": 0.75,
                               "log_odds_ratio": 0.2, "logps_chosen": -20.75, "logps_rejected": -22.5}},
        "generations": {"prompts": 2, "max_new_tokens": 8, "before_mean_words": 5.5, "after_mean_words": 3.0}}
LOGS = [{"step": s, "loss": 0.69 - 0.01 * s, "rewards/chosen": 0.01 * s, "rewards/rejected": -0.01 * s,
         "rewards/margins": 0.02 * s, "rewards/accuracies": 0.25 * (s // 2), "logps/chosen": -20 + 0.1 * s,
         "logps/rejected": -18 - 0.2 * s} for s in (2, 4, 6)]
FINAL = {"step": 6, "train_seconds": 12.5, "pairs": 4, "held_out_pairs": 4, "final": True}
BEFORE_AFTER = [{"prompt": "Name a colour.", "before": "Well, there are many colours.", "after": "Blue.",
                 "before_words": 5, "after_words": 1},
                {"prompt": "Name a fruit.", "before": "A fruit could be an apple.", "after": "An apple now.",
                 "before_words": 6, "after_words": 3}]
ODDS = [{"split": "train", "prompt": "P" * 130, "chosen": "c" * 170, "rejected": "r" * 10,
         "log_odds_before": -0.12345, "log_odds_after": 0.98765, "chosen_mean_logp_before": -2.0,
         "chosen_mean_logp_after": -1.5, "rejected_mean_logp_before": -1.9, "rejected_mean_logp_after": -2.4},
        {"split": "held_out", "prompt": "Name a colour.", "chosen": "Blue.", "rejected": "Many colours.",
         "log_odds_before": 0.5, "log_odds_after": 0.25, "chosen_mean_logp_before": -1.0,
         "chosen_mean_logp_after": -1.1, "rejected_mean_logp_before": -1.2, "rejected_mean_logp_after": -1.3}]


def jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def dpo_run(state="finished", finished_files=True) -> runs.Run:
    """A DPO run directory: config and status as runs.submit leaves them, then the job's files."""
    run = runs.create("preference", {"method": "dpo", "data": "store", "beta": 0.1}, name="dpo")
    alive = {"pid": os.getpid(), "pid_started": psutil.Process().create_time()}  # this test is the job
    run.set_status(state=state, **(alive if state == "running" else {}))
    jsonl(run.dir / "metrics.jsonl", LOGS + ([FINAL] if finished_files else []))
    write_json(run.dir / "record.json", {"method": "dpo", "trainable_params": 1000, "total_params": 100000})
    if finished_files:
        (run.dir / "eval_metrics.json").write_text(json.dumps(EVAL, indent=1))
        jsonl(run.dir / "before_after.jsonl", BEFORE_AFTER)
        jsonl(run.dir / "odds.jsonl", ODDS)
    return run


def test_results_of_a_finished_dpo_run(data_dir):
    from labs.preference import results
    run = dpo_run()
    r = results(run.id)
    assert r["state"] == "finished" and r["method"] == "dpo"
    assert r["eval_metrics"] == EVAL and r["before_after"] == BEFORE_AFTER and r["odds"] == ODDS
    assert r["metrics"] == LOGS + [FINAL]
    assert (r["train_seconds"], r["steps"]) == (12.5, 6)
    assert r["eval_metrics"]["held_out"]["after"]["reward_accuracy"] == 0.5


def test_results_of_a_running_run_have_no_outcome_yet(data_dir):
    from labs.preference import results
    run = dpo_run(state="running", finished_files=False)
    r = results(run.id)
    assert r["state"] == "running" and r["method"] == "dpo"  # from the config until eval_metrics.json says it
    assert r["eval_metrics"] is None and r["before_after"] is None and r["odds"] is None
    assert (r["train_seconds"], r["steps"]) == (None, None) and len(r["metrics"]) == 3
    with open(run.dir / "odds.jsonl", "w") as fh:  # the job is killed while writing a line
        fh.write(json.dumps(ODDS[0]) + "\n" + json.dumps(ODDS[1])[:40])
    assert results(run.id)["odds"] == ODDS[:1]
    with pytest.raises(runs.RunError, match="no run 'nope'"):
        results("nope")


def test_the_panel_shows_the_finished_dpo_run(data_dir):
    """What the Preference tab's training panel draws: the reward charts, the accuracy table, the held-out
    answers before and after, and the per-pair log odds."""
    from components import preference_train_panel as ui
    fig, ba, md, odds_df, odds_fig, why = ui.details(dpo_run().id)
    chosen, rejected = fig.axes[0].lines
    assert chosen.get_xdata().tolist() == [2, 4, 6] and rejected.get_ydata().tolist() == [-0.02, -0.04, -0.06]
    assert fig.axes[2].lines[0].get_ydata().tolist() == [0.25, 0.5, 0.75]  # reward accuracy per log
    lines = md.splitlines()
    for row in ("| reward accuracy (training pairs, n=4) | 0% | 75% |",
                "| mean reward margin (training pairs) | 0.000 | 0.125 |",
                "| log-odds accuracy, ORPO (training pairs) | 25% | 50% |",
                "| mean log-prob of chosen / rejected (training pairs) | -20.500 / -18.250 | -19.000 / -19.500 |",
                "| reward accuracy (held-out pairs, n=4) | 0% | 50% |",
                "| mean reward margin (held-out pairs) | 0.000 | 0.062 |",
                "| mean words per answer (2 held-out prompts, greedy) | 5.5 | 3.0 |",
                "Training time: 12.5 s over 6 steps."):
        assert row in lines, row
    assert "the starting model is its own reference" in md  # DPO: every reward is 0 before training
    assert ba.to_dict("records") == BEFORE_AFTER
    assert list(odds_df.columns) == ["split", "prompt", "chosen", "rejected", "log odds before", "log odds after"]
    first = odds_df.iloc[0]
    assert (len(first["prompt"]), len(first["chosen"]), first["rejected"]) == (120, 160, "r" * 10)
    assert (first["log odds before"], first["log odds after"]) == (-0.123, 0.988)
    assert odds_df["split"].tolist() == ["train", "held_out"]
    assert odds_fig.axes[0].get_title() == "2 labeled pairs" and "cannot change" in why


def test_the_panel_on_a_running_run_and_the_api(data_dir):
    from components import preference_train_panel as ui
    run = dpo_run(state="running", finished_files=False)
    fig, ba, md, odds_df, odds_fig, why = ui.details(run.id)
    assert fig.axes[0].lines and (ba, md, odds_df, odds_fig, why) == (None, "", None, None, "")
    assert ui.details("nope")[2].startswith("⚠️ no run 'nope'")
    assert ui.results(run.id)["state"] == "running"  # the pref_train_results endpoint
    with pytest.raises(gr.Error, match="no run 'nope'"):
        ui.results("nope")


def test_the_panel_draws_after_every_monitor_draw(data_dir):
    """The defect: the panel followed `mon.seen.change`, and Gradio's page sends a State's change only after a
    queued event, while every monitor draw (a pick, a timer tick, Stop/Kill/Resume) runs unqueued: a finished
    run's charts and tables never filled in. The panel's redraw must be chained after each of those draws."""
    from components import preference_train_panel as ui
    from components import shared
    from components.shared import default_context
    with gr.Blocks() as demo:
        ui.build_training(default_context())
    fns = list(demo.fns.values())
    draws = {f._id for f in fns if f.fn in (shared.tick, shared.show)}
    follows = [f for f in fns if f.fn is ui.details_follow]
    assert len(draws) == 5  # the tick, a pick / re-plot, and the re-draw after Stop, Kill and Resume
    assert {f.trigger_after for f in follows} == draws and len(follows) == len(draws)
    assert all(f.targets == [(None, "then")] for f in follows)  # chained, not triggered by a State's .change


def test_no_state_change_listener_waits_for_an_unqueued_writer(data_dir):
    """Across the whole app: a listener on a gr.State's .change fires only if some queued event writes that
    State (Gradio 6's page dispatches state changes from queued events only)."""
    import app
    demo = app.build("some/model")
    fns = list(demo.fns.values())
    for f in fns:
        for block_id, event in f.targets:
            block = demo.blocks.get(block_id)
            if event != "change" or not isinstance(block, gr.State):
                continue
            writers = [w for w in fns if any(o._id == block_id for o in w.outputs)]
            assert any(w.queue for w in writers), (f"{f.name} listens to a State that only unqueued events "
                                                   f"write ({[w.name for w in writers]}): it never fires")
