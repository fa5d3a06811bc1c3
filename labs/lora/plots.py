"""Figures for the LoRA explorer (matplotlib Figure objects; no pyplot in the server)."""
from __future__ import annotations

from matplotlib.figure import Figure

from labs.lora.arithmetic import SEED_SETTINGS, LoraCount, scaling, update_magnitude


def count_figure(count: LoraCount, title: str = "") -> Figure:
    """Trainable parameters per target module (horizontal bars, with the share of the total)."""
    fig = Figure(figsize=(7, 0.45 * max(3, len(count.rows)) + 0.8), dpi=100)
    ax = fig.add_subplot(111)
    names = [r["module"] for r in count.rows][::-1]
    vals = [r["trainable params"] for r in count.rows][::-1]
    bars = ax.barh(names, vals, color="#4c78a8")
    for b, v in zip(bars, vals):
        ax.text(b.get_width(), b.get_y() + b.get_height() / 2, f" {v:,} ({v / count.trainable:.0%})",
                va="center", fontsize=8)
    ax.set_xlabel("trainable parameters")
    ax.set_xlim(0, max(vals) * 1.35 if vals else 1)
    ax.set_title(title or f"rank {count.rank}: {count.trainable:,} trainable "
                          f"({100 * count.trainable_share:.3f}% of {count.total_params:,})", fontsize=10)
    fig.tight_layout()
    return fig


def memory_figure(est: dict) -> Figure:
    """Stacked bars: weights, gradients, optimizer, activations per method, with the GPU's size as a line."""
    GiB = 1024 ** 3
    parts = ("weights", "gradients", "optimizer", "activations")
    colors = ("#4c78a8", "#f58518", "#e45756", "#72b7b2")
    fig = Figure(figsize=(7, 3.2), dpi=100)
    ax = fig.add_subplot(111)
    methods = list(est["methods"])
    left = [0.0] * len(methods)
    for part, c in zip(parts, colors):
        vals = [est["methods"][m][part] / GiB for m in methods]
        ax.barh(methods, vals, left=left, color=c, label=part)
        left = [a + b for a, b in zip(left, vals)]
    for i, m in enumerate(methods):
        ax.text(left[i], i, f" {left[i]:.2f} GiB — {est['methods'][m]['verdict']}", va="center", fontsize=8)
    ax.axvline(est["gpu_gb"], color="k", ls="--", lw=1)
    ax.text(est["gpu_gb"], len(methods) - 0.5, f" GPU {est['gpu_gb']:g} GiB", fontsize=8, va="bottom")
    ax.set_xlim(0, max(max(left), est["gpu_gb"]) * 1.45)
    ax.invert_yaxis()
    ax.set_xlabel("GiB")
    ax.set_title(f"training memory, batch {est['batch_size']} × {est['seq_len']} tokens, {est['dtype']}", fontsize=10)
    ax.legend(fontsize=7, loc="lower right", ncol=4)
    fig.tight_layout()
    return fig


def scaling_figure(alpha: float = 16.0, ranks=(1, 2, 4, 8, 16, 32, 64, 128, 256)) -> Figure:
    """Left: scaling against rank for alpha/r and alpha/√r, the course's two settings as points.
    Right: measured ‖ΔW x‖/‖x‖ with random A, B at each rank: 1/√r decay vs flat."""
    fig = Figure(figsize=(9, 3.4), dpi=100)
    ax, ax2 = fig.add_subplot(121), fig.add_subplot(122)
    rs = list(ranks)
    ax.plot(rs, [scaling(alpha, r) for r in rs], "o-", label=f"alpha/r (PEFT default), alpha={alpha:g}")
    ax.plot(rs, [scaling(alpha, r, True) for r in rs], "s-", label=f"alpha/√r (rsLoRA), alpha={alpha:g}")
    for s, mk in zip(SEED_SETTINGS, ("*", "D")):
        ax.plot([s["r"]], [s["scaling"]], mk, ms=11, color="#d62728" if mk == "*" else "#9467bd", label=s["label"])
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("rank r")
    ax.set_ylabel("scaling")
    ax.set_title("scaling = what PEFT multiplies B·A by", fontsize=10)
    ax.set_ylim(top=max(scaling(alpha, rs[0]), 4.0) * 40)  # room for the legend above the lines
    ax.legend(fontsize=6, loc="upper right")
    mags = [(r, update_magnitude(r, alpha, False), update_magnitude(r, alpha, True)) for r in rs]
    ax2.plot(rs, [m[1] for m in mags], "o-", label="alpha/r")
    ax2.plot(rs, [m[2] for m in mags], "s-", label="alpha/√r (rsLoRA)")
    ax2.set_xscale("log", base=2)
    ax2.set_yscale("log")
    ax2.set_xlabel("rank r")
    ax2.set_ylabel("‖ΔW x‖ / ‖x‖")
    ax2.set_title("size of the update (random A, B; d=256)", fontsize=10)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    return fig


def sweep_figure(results: list[dict], title: str = "") -> Figure:
    """Final eval loss and task metric against rank; wall time and trainable parameters below."""
    fig = Figure(figsize=(9, 5.4), dpi=100)
    ax1, ax2 = fig.add_subplot(221), fig.add_subplot(222)
    ax3, ax4 = fig.add_subplot(223), fig.add_subplot(224)
    ranks, alphas = sorted({r["rank"] for r in results}), sorted({r["alpha"] for r in results})
    one_alpha_per_rank = len(results) == len(ranks)   # e.g. alpha = 2·rank: one line over rank
    if len(ranks) == 1 and len(alphas) > 1:
        x_key, group_key, groups = "alpha", "rank", ranks            # an alpha sweep at one rank
    elif one_alpha_per_rank:
        x_key, group_key, groups = "rank", None, [None]
    else:
        x_key, group_key, groups = "rank", "alpha", alphas          # one line per alpha
    for g in groups:
        pts = sorted((r for r in results if group_key is None or r[group_key] == g), key=lambda r: r[x_key])
        lab = None if group_key is None else f"{'r' if group_key == 'rank' else 'alpha'} {g:g}"

        def xy(key, pts=pts):
            p = [(r[x_key], r[key]) for r in pts if r.get(key) is not None]
            return [x for x, _ in p], [y for _, y in p]
        ax1.plot(*xy("eval_loss"), "o-", label=lab)
        ax2.plot(*xy("metric_value"), "o-", label=lab)
        ax3.plot(*xy("train_seconds"), "o-", label=lab)
        ax4.plot(*xy("trainable_params"), "o-", label=lab)
    base = [r["base_metric_value"] for r in results if r.get("base_metric_value") is not None]
    if base:
        ax2.axhline(base[0], color="gray", ls="--", lw=1, label="base model")
    metric = next((r["metric"] for r in results if r.get("metric")), "task metric")
    for ax, yl in ((ax1, "final eval loss"), (ax2, metric), (ax3, "train seconds"), (ax4, "trainable params")):
        has_data = any(len(line.get_xdata()) for line in ax.lines)
        if has_data:  # log scales need data (a sweep whose runs are still queued has none yet)
            ax.set_xscale("log", base=2)
            if ax is ax4:
                ax.set_yscale("log")
        else:
            ax.text(0.5, 0.5, "waiting for results", ha="center", va="center", transform=ax.transAxes, color="gray")
        ax.set_xlabel("rank r" if x_key == "rank" else "lora_alpha")
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    done = sum(r.get("state") == "finished" for r in results)
    fig.suptitle(title or f"rank sweep: {done}/{len(results)} runs finished", fontsize=10)
    fig.tight_layout()
    return fig


def spectra_figure(res) -> Figure:
    """Left: σ_k of ΔW per module type (median over layers, band = min..max); right: effective rank and
    ‖ΔW‖/‖W‖ per layer in model order."""
    import statistics
    fig = Figure(figsize=(9, 3.6), dpi=100)
    ax, ax2 = fig.add_subplot(121), fig.add_subplot(122)
    layers = res.layers
    kinds: dict[str, list] = {}
    for lay in layers:
        kinds.setdefault(lay.module.rsplit(".", 1)[-1], []).append(lay.singular_values)
    for kind, svs in kinds.items():
        k = min(len(v) for v in svs)
        xs = list(range(1, k + 1))
        cols = [[v[i] for v in svs] for i in range(k)]
        line, = ax.plot(xs, [statistics.median(c) for c in cols], "o-", ms=3, lw=1.2, label=f"{kind} ({len(svs)})")
        if len(svs) > 1:
            ax.fill_between(xs, [min(c) for c in cols], [max(c) for c in cols], color=line.get_color(), alpha=0.15)
    if any(v > 0 for svs in kinds.values() for s in svs for v in s):
        ax.set_yscale("log")
    ax.set_xlabel("singular value index k")
    ax.set_ylabel("σ_k of ΔW")
    ax.set_title("σ of ΔW = scaling·B·A per module\n(median over layers, band min–max)", fontsize=9)
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=6)
    x = list(range(len(layers)))
    ax2.bar(x, [lay.effective_rank for lay in layers], color="#4c78a8", width=1.0)
    ax2.set_ylabel("effective rank (90% energy)", color="#4c78a8")
    ax2.set_xlabel("adapted layer (model order)")
    ax2.set_ylim(0, max(lay.rank for lay in layers) + 0.5)
    rel = [lay.relative_norm for lay in layers]
    if any(v is not None and v > 0 for v in rel):
        ax3 = ax2.twinx()
        ax3.plot(x, [v if v is not None else float("nan") for v in rel], ".", ms=3, color="#e45756")
        ax3.set_ylabel("‖ΔW‖/‖W‖", color="#e45756")
        ax3.set_yscale("log")
    ax2.set_title("effective rank and ‖ΔW‖/‖W‖ per layer", fontsize=9)
    fig.tight_layout()
    return fig


def similarity_figure(sim, label_a: str = "A", label_b: str = "B") -> Figure:
    """Heatmap of φ(i, j), as in the LoRA paper's Figure 3."""
    fig = Figure(figsize=(5.2, 4.2), dpi=100)
    ax = fig.add_subplot(111)
    phi = sim.phi.numpy() if hasattr(sim.phi, "numpy") else sim.phi
    im = ax.imshow(phi, vmin=0, vmax=1, cmap="viridis", origin="upper", aspect="auto",
                   extent=(0.5, phi.shape[1] + 0.5, phi.shape[0] + 0.5, 0.5))
    fig.colorbar(im, ax=ax, label="φ(i, j)")
    ax.set_ylabel(f"i (top-i directions of {label_a}, r={sim.rank_a})")
    ax.set_xlabel(f"j (top-j directions of {label_b}, r={sim.rank_b})")
    ax.set_title(f"subspace similarity, {sim.module.removeprefix('model.')}", fontsize=9)
    fig.tight_layout()
    return fig
