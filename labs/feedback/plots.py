"""The loop's history as one matplotlib Figure (never pyplot): rating, thumbs-up share and KL per round."""
from __future__ import annotations

from matplotlib.figure import Figure


def history_figure(rows: list[dict], title: str = "") -> Figure:
    """Three panels over rounds, from labs.feedback.loop.history rows: mean rating with its spread (+-1 sd),
    the share of answers at or above the threshold, and the policy's KL to the starting model. Rounds set
    aside by a revert are drawn hollow and grey."""
    fig = Figure(figsize=(9, 2.8), dpi=100)
    axes = [fig.add_subplot(1, 3, i + 1) for i in range(3)]
    rated = [r for r in rows if r.get("mean") is not None]
    for ax, key, label in ((axes[0], "mean", "mean rating (1-5) ± sd"), (axes[1], "thumbs_up", "share rated good"),
                           (axes[2], "kl", "KL to start (nats/token)")):
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("round", fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        pts = rated if key != "kl" else rows
        for reverted in (False, True):
            sel = [r for r in pts if bool(r.get("reverted")) == reverted and r.get(key) is not None]
            if not sel:
                continue
            x = [r["round"] for r in sel]
            y = [r[key] for r in sel]
            style = dict(color="0.6", markerfacecolor="white") if reverted else dict(color="C0")
            if key == "mean":
                ax.errorbar(x, y, yerr=[r.get("sd") or 0 for r in sel], fmt="o-" if not reverted else "o",
                            capsize=3, label="set aside" if reverted else None, **style)
            else:
                ax.plot(x, y, "o-" if not reverted else "o", **style)
        if rows:
            ax.set_xticks([r["round"] for r in rows])
    axes[0].set_ylim(0.8, 5.2)
    axes[1].set_ylim(-0.05, 1.05)
    if not rated:
        axes[0].set_title("mean rating: no ratings yet", fontsize=9)
    if any(r.get("reverted") for r in rated):
        axes[0].legend(fontsize=7, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
