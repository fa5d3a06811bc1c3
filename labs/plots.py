"""Figures for the UI: functions that return matplotlib Figure objects (never pyplot in the server)."""
from __future__ import annotations

from matplotlib.figure import Figure


def smooth(values: list[float], weight: float) -> list[float]:
    """Exponential moving average with bias correction, as TensorBoard's smoothing slider (0 = raw)."""
    if not 0 <= weight < 1:
        raise ValueError("smoothing must be in [0, 1)")
    out, last, n = [], 0.0, 0
    for v in values:
        n += 1
        last = last * weight + (1 - weight) * v
        out.append(last / (1 - weight ** n))
    return out


def series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None and r.get("step") is not None]
    return [p[0] for p in pts], [float(p[1]) for p in pts]


def loss_figure(runs: dict[str, list[dict]], smoothing: float = 0.0, log_scale: bool = False,
                title: str = "Loss") -> Figure:
    """Train loss (line) and eval loss (markers) for one or more runs on one chart.

    `runs` maps a label to that run's metrics rows; the first is drawn strongest, the others as overlays.
    """
    fig = Figure(figsize=(7, 3.2), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    drawn = False
    for i, (label, rows) in enumerate(runs.items()):
        alpha = 1.0 if i == 0 else 0.45
        x, y = series(rows, "loss")
        if x:
            line, = ax.plot(x, smooth(y, smoothing) if smoothing else y, label=f"{label} train", alpha=alpha)
            if smoothing:
                ax.plot(x, y, color=line.get_color(), alpha=0.15 * alpha)
            drawn = True
        ex, ey = series(rows, "eval_loss")
        if ex:
            ax.plot(ex, ey, "o--", label=f"{label} eval", alpha=alpha, markersize=4)
            drawn = True
    if log_scale and drawn:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title if drawn else f"{title}: no points yet")
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def metric_figure(rows: list[dict], keys: list[str], title: str = "") -> Figure:
    """Small multiples of other logged values (learning rate, grad norm, tokens/s) against step."""
    keys = [k for k in keys if series(rows, k)[0]] or keys[:1]
    fig = Figure(figsize=(7, 2.2), dpi=100)
    for i, k in enumerate(keys):
        ax = fig.add_subplot(1, len(keys), i + 1)
        x, y = series(rows, k)
        ax.plot(x, y)
        ax.set_title(k, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
