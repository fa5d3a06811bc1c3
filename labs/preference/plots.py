"""Figures of a preference run (matplotlib Figure objects; never pyplot in the server).

    from labs.preference.plots import rewards_figure, before_after_figure
    fig = rewards_figure(run.metrics())       # chosen/rejected rewards, margin, reward accuracy, log-probs
"""
from __future__ import annotations

from matplotlib.figure import Figure

from labs.plots import series


def rewards_figure(rows: list[dict], title: str = "") -> Figure:
    """Four panels against step, from TRL's logged keys: rewards (chosen vs rejected), their margin, the
    share of pairs whose chosen reward is higher, and the answers' log-probabilities (chosen vs rejected)."""
    fig = Figure(figsize=(9, 4.4), dpi=100)
    panels = [("Rewards", [("rewards/chosen", "chosen"), ("rewards/rejected", "rejected")]),
              ("Reward margin (chosen - rejected)", [("rewards/margins", "margin")]),
              ("Reward accuracy", [("rewards/accuracies", "chosen > rejected")]),
              ("Log-probabilities of the answers", [("logps/chosen", "chosen"), ("logps/rejected", "rejected")])]
    for i, (name, keys) in enumerate(panels):
        ax = fig.add_subplot(2, 2, i + 1)
        drawn = False
        for key, label in keys:
            x, y = series(rows, key)
            if x:
                ax.plot(x, y, label=label, marker="." if len(x) < 30 else None)
                drawn = True
        if key == "rewards/accuracies":
            ax.set_ylim(-0.05, 1.05)
        ax.set_title(name if drawn else f"{name}: no points yet", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if drawn and len(keys) > 1:
            ax.legend(fontsize=7)
        if i >= 2:
            ax.set_xlabel("step", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def odds_figure(odds_rows: list[dict]) -> Figure:
    """Each labeled pair's log odds ratio before (x) and after (y) training; above the diagonal = moved
    towards the chosen answer, right of 0 = already preferred."""
    fig = Figure(figsize=(4.4, 4), dpi=100)
    ax = fig.add_subplot()
    xs = [r["log_odds_before"] for r in odds_rows]
    ys = [r["log_odds_after"] for r in odds_rows]
    if xs:
        ax.scatter(xs, ys, s=14, alpha=0.7)
        lo, hi = min(xs + ys), max(xs + ys)
        ax.plot([lo, hi], [lo, hi], color="grey", linewidth=0.8, linestyle="--")
    ax.axhline(0, color="#c0392b", linewidth=0.6)
    ax.axvline(0, color="#c0392b", linewidth=0.6)
    ax.set_xlabel("log odds ratio before", fontsize=8)
    ax.set_ylabel("log odds ratio after", fontsize=8)
    ax.set_title(f"{len(xs)} labeled pairs" if xs else "no pairs scored yet", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
