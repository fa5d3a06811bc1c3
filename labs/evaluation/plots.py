"""Figures of an evaluation (matplotlib Figure objects, never pyplot): metrics side by side, confusion
matrix, error buckets, forgetting, bias. Training curves of several runs: labs.plots.loss_figure."""
from __future__ import annotations

from matplotlib.figure import Figure


def _bars(ax, names: list[str], series: dict[str, list[float]]):
    width = 0.8 / max(1, len(series))
    for i, (label, vals) in enumerate(series.items()):
        xs = [x + (i - (len(series) - 1) / 2) * width for x in range(len(names))]
        bars = ax.bar(xs, [v or 0 for v in vals], width, label=label)
        for b, v in zip(bars, vals):
            if v is not None:
                ax.annotate(f"{v:.2f}" if isinstance(v, float) else str(v), (b.get_x() + b.get_width() / 2, b.get_height()), ha="center",
                            va="bottom", fontsize=7)
    ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)


def metrics_figure(table: list[dict], labels: list[str]) -> Figure:
    """Metrics in [0, 1] (loss and perplexity left out: another scale), one bar per model."""
    rows = [r for r in table if r["metric"] not in ("loss", "perplexity", "loss_tokens", "n")
            and all(isinstance(r.get(lab), (int, float)) and 0 <= r[lab] <= 1 for lab in labels)
            and "/" not in r["metric"]]
    fig = Figure(figsize=(7, 3), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    _bars(ax, [r["metric"] for r in rows], {lab: [r.get(lab) for r in rows] for lab in labels})
    ax.set_ylim(0, 1.12)
    ax.set_title("Held-out metrics" if rows else "Held-out metrics: none in [0, 1]")
    fig.tight_layout()
    return fig


def confusion_figure(conf: dict, title: str = "Confusion matrix") -> Figure:
    labels = conf["labels"]
    cols = labels + ["(other)"]
    data = [row + [o] for row, o in zip(conf["matrix"], conf["other"])]
    fig = Figure(figsize=(1.2 + 0.9 * len(cols), 1.0 + 0.7 * len(labels)), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(data, cmap="Blues")
    top = max((v for row in data for v in row), default=0)
    for i, row in enumerate(data):
        for j, v in enumerate(row):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > top / 2 else "black", fontsize=9)
    ax.set_xticks(range(len(cols)), cols, rotation=20, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def buckets_figure(counts: dict[str, dict[str, int]]) -> Figure:
    """Error buckets per model."""
    names = list(next(iter(counts.values()), {}).keys())
    fig = Figure(figsize=(7, 2.8), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    _bars(ax, names, {lab: [c.get(n, 0) for n in names] for lab, c in counts.items()})
    ax.set_ylabel("wrong answers")
    ax.set_title("Errors by bucket")
    fig.tight_layout()
    return fig


def forgetting_figure(probes: dict[str, dict]) -> Figure:
    fig = Figure(figsize=(7, 2.6), dpi=100)
    labels = list(probes)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ax1.bar(labels, [probes[lab].get("perplexity") or 0 for lab in labels], color="#5470c6")
    ax1.set_title("general-text perplexity (lower is better)", fontsize=9)
    ax2.bar(labels, [probes[lab].get("accuracy") or 0 for lab in labels], color="#91cc75")
    ax2.set_ylim(0, 1.05)
    ax2.set_title("general questions right", fontsize=9)
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", labelsize=7, rotation=15)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def bias_figure(audits: dict[str, dict]) -> Figure:
    first = next(iter(audits.values()))
    groups = [g["group"] for g in first["groups"]]
    fig = Figure(figsize=(7, 2.8), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    _bars(ax, groups, {lab: [g["score"] for g in a["groups"]] for lab, a in audits.items()})
    ax.axhline(0, color="#888", lw=0.8)
    ax.set_title(f"Bias audit: {first['score']} per group", fontsize=9)
    fig.tight_layout()
    return fig
