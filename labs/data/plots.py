"""Figures of a dataset (matplotlib Figure objects; never pyplot in the server).

    from labs import data
    fig = data.length_figure(lengths, max_length=512)     # tokens per training sequence, the cut marked
    fig = data.balance_figure({"positive": 40, "negative": 12})
"""
from __future__ import annotations

from matplotlib.figure import Figure

from labs.data.mask import length_stats


def length_figure(lengths: list[int], max_length: int) -> Figure:
    """A histogram of tokens per training sequence, with max_length marked (or named, when far off the axis)."""
    fig = Figure(figsize=(6, 2.6), layout="constrained")
    ax = fig.add_subplot()
    if lengths:
        ax.hist(lengths, bins=min(40, max(5, len(set(lengths)))), color="#5470c6")
    longest = max(lengths, default=0)
    if longest * 1.5 >= max_length or not lengths:
        ax.axvline(max_length, color="#c0392b", linestyle="--", label=f"max length {max_length}")
    else:  # short rows: keep the x-axis on the data and say where the limit is instead of squeezing them
        ax.plot([], [], color="#c0392b", linestyle="--", label=f"max length {max_length} (off the axis →)")
    st = length_stats(lengths, max_length)
    ax.set_title(f"{st['rows']} rows · {st['truncated']} longer than {max_length} tokens · longest {st['longest']}",
                 fontsize=9)
    ax.set_xlabel("tokens per training sequence")
    ax.set_ylabel("rows")
    ax.legend(fontsize=8)
    return fig


def balance_figure(counts: dict, title: str = "label distribution") -> Figure:
    """Rows per label, largest first, each bar with its count."""
    fig = Figure(figsize=(5, 2.4), layout="constrained")
    ax = fig.add_subplot()
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    ax.bar([str(k) for k, _ in items], [v for _, v in items], color="#91cc75")
    for k, (_, v) in enumerate(items):
        ax.text(k, v, str(v), ha="center", va="bottom", fontsize=8)
    ax.set_title(title if items else "no label column", fontsize=9)
    return fig
