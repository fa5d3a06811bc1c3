"""The evaluation's files: evaluation.json (every metric), predictions.jsonl (every answer), report.md and
report.html (the same tables; the HTML embeds its plots as PNG data, the Markdown links the PNG files
written next to it).

    from labs.evaluation.report import write_all, blocks
    write_all(result, predictions, out_dir)   # -> {'json': ..., 'predictions': ..., 'markdown': ..., 'html': ...}
"""
from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from labs.evaluation import plots
from labs.evaluation.errors import BUCKETS, select
from labs.evaluation.slices import table as slice_table

BUCKET_HELP = {"wrong_label": "a label of the set, not the reference's", "format_error":
               "no label of the set, or not the reference's JSON/YAML shape", "truncated":
               "stopped at max_new_tokens, or a cut-short reference", "empty": "a blank answer",
               "other": "the right shape, wrong content"}


def figures(result: dict) -> dict:
    """name -> Figure for every plot the result has."""
    labels = [m["label"] for m in result["models"]]
    out = {"metrics": plots.metrics_figure(result["table"], labels)}
    if any(sum(m["buckets"].values()) for m in result["models"]):
        out["buckets"] = plots.buckets_figure({m["label"]: m["buckets"] for m in result["models"]})
    for i, m in enumerate(result["models"]):
        if m.get("confusion"):
            out[f"confusion_{i}"] = plots.confusion_figure(m["confusion"], f"Confusion matrix: {m['label']}")
    if result.get("runs", {}).get("curves"):
        from labs.plots import loss_figure
        out["curves"] = loss_figure(result["runs"]["curves"], title="Training curves of the runs compared")
    if result.get("forgetting"):
        out["forgetting"] = plots.forgetting_figure(result["forgetting"]["probes"])
    if result.get("bias"):
        out["bias"] = plots.bias_figure(result["bias"])
    return out


def blocks(result: dict, predictions: dict[str, list[dict]]) -> list[tuple]:
    """The report as ('h', text) / ('p', text) / ('table', rows) / ('img', name) blocks."""
    d = result["data"]
    b: list[tuple] = [("h", "Evaluation"),
                      ("p", f"{d['rows']} rows of {d['source']}" + (f" (tasks: {', '.join(d['tasks'])})" if d["tasks"]
                            else "") + f"; task **{d['task']}**; models: " +
                       ", ".join(f"{m['label']} = `{m['spec']}`" for m in result["models"]) +
                       f". {result.get('seconds', '?')} s."),
                      ("h", "Metrics"), ("table", result["table"]), ("img", "metrics")]
    if d["task"] == "classification":
        b.append(("p", "Answers outside the label set count as wrong (the confusion matrix's '(other)' column)."))
    b += [("img", f"confusion_{i}") for i, m in enumerate(result["models"]) if m.get("confusion")]
    for m in result["models"]:
        if m.get("slices"):
            b += [("h", f"Metrics per {m['slices']['by']}: {m['label']}"),
                  ("table", slice_table(m["slices"]["rows"], d["task"]))]
    if result.get("changed"):
        b += [("h", "Examples whose answer changed"), ("table", result["changed"][:40])]
    b += [("h", "Error buckets"), ("table", [{"bucket": k, "meaning": BUCKET_HELP[k],
                                              **{m["label"]: m["buckets"].get(k, 0) for m in result["models"]}}
                                             for k in BUCKETS]), ("img", "buckets")]
    for m in result["models"]:
        wrong = select([r for r in predictions.get(m["label"], []) if "prediction" in r], "incorrect", n=15)
        if wrong:
            b += [("h", f"Wrong answers: {m['label']} (first {len(wrong)})"),
                  ("table", [{k: r.get(k) for k in ("input", "reference", "prediction", "bucket", "loss")}
                             for r in wrong])]
        worst = select(predictions.get(m["label"], []), "worst", n=5)
        if worst:
            b += [("h", f"Highest loss: {m['label']}"),
                  ("table", [{k: r.get(k) for k in ("input", "reference", "prediction", "loss")} for r in worst])]
    if result.get("runs"):
        r = result["runs"]
        b += [("h", "Training runs"), ("img", "curves"),
              ("table", [{"run": k, "overfitting": "⚠ yes" if v["flag"] else "no", "detail": v["detail"]}
                         for k, v in r["overfitting"].items()])]
        if r["config_differences"]:
            b += [("p", "Settings that differ between the runs:"), ("table", r["config_differences"])]
    if result.get("forgetting"):
        f = result["forgetting"]
        b += [("h", "Forgetting probe"), ("table", [{"model": k, "perplexity": v.get("perplexity"),
                                                      "questions right": v.get("accuracy")}
                                                     for k, v in f["probes"].items()]), ("img", "forgetting")]
        for lab, c in f["changes"].items():
            flag = " ⚠ more than 10% higher" if c.get("perplexity_flag") else ""
            b.append(("p", f"**{lab}**: general-text perplexity {c.get('perplexity_before')} → "
                           f"{c.get('perplexity_after')} ({c.get('perplexity_change_pct', 0):+.1f}%){flag}; "
                           f"questions lost {c['lost']}, gained {c['gained']}."))
            b.append(("table", [{k: q[k] for k in ("question", "before", "after", "change")} for q in c["questions"]]))
    if result.get("bias"):
        a0 = next(iter(result["bias"].values()))
        b += [("h", "Bias audit"), ("p", f"Score: {a0['score']}. Templates: " + " / ".join(a0["templates"])),
              ("table", [{"group": g["group"], **{lab: a["groups"][i]["score"] for lab, a in result["bias"].items()}}
                         for i, g in enumerate(a0["groups"])]),
              ("p", "Spread (largest − smallest group score): " +
               ", ".join(f"{lab} {a['spread']}" for lab, a in result["bias"].items())), ("img", "bias"),
              ("p", "Caveats: " + " ".join(a0["caveats"]))]
    return b


def _cell(v) -> str:
    s = "" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
    s = s.replace("\n", " ⏎ ").replace("|", "\\|")
    return s if len(s) <= 160 else f"{s[:90]} … {s[-66:]}"  # long prompts: their start and their question


def to_markdown(bl: list[tuple], images: dict[str, str]) -> str:
    out = []
    for kind, *rest in bl:
        if kind == "h":
            out.append(f"{'#' if rest[0] == 'Evaluation' else '##'} {rest[0]}\n")
        elif kind == "p":
            out.append(rest[0] + "\n")
        elif kind == "img" and rest[0] in images:
            out.append(f"![{rest[0]}]({images[rest[0]]})\n")
        elif kind == "table" and rest[0]:
            cols = list(dict.fromkeys(k for r in rest[0] for k in r))
            out.append("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
            # a cell is data: its <, > and & as entities, so an answer holding HTML shows it (and fetches nothing)
            out += ["| " + " | ".join(html.escape(_cell(r.get(c)), quote=False) for c in cols) + " |" for r in rest[0]]
            out.append("")
    return "\n".join(out)


def to_html(bl: list[tuple], pngs: dict[str, bytes]) -> str:
    import re
    parts = ["<!doctype html><meta charset='utf-8'><title>Evaluation</title><style>body{font-family:sans-serif;"
             "max-width:1000px;margin:2em auto}table{border-collapse:collapse;font-size:13px;margin:.5em 0}"
             "td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top}th{background:#f3f3f3}</style>"]
    for kind, *rest in bl:
        if kind == "h":
            level = 1 if rest[0] == "Evaluation" else 2
            parts.append(f"<h{level}>{html.escape(rest[0])}</h{level}>")
        elif kind == "p":
            text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(rest[0]))
            text = re.sub(r"`(.+?)`", r"<code>\1</code>", text)
            parts.append(f"<p>{text}</p>")
        elif kind == "img" and rest[0] in pngs:
            parts.append(f"<img alt='{rest[0]}' src='data:image/png;base64,{base64.b64encode(pngs[rest[0]]).decode()}'>")
        elif kind == "table" and rest[0]:
            cols = list(dict.fromkeys(k for r in rest[0] for k in r))
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr>" + "".join(
                "<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rest[0])
                + "</table>")
    return "\n".join(parts)


def png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def write_all(result: dict, predictions: dict[str, list[dict]], out_dir: Path) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figs = figures(result)
    pngs = {name: png(f) for name, f in figs.items()}
    images = {}
    for name, data in pngs.items():
        (out_dir / f"plot_{name}.png").write_bytes(data)
        images[name] = f"plot_{name}.png"
    bl = blocks(result, predictions)
    files = {"json": out_dir / "evaluation.json", "predictions": out_dir / "predictions.jsonl",
             "markdown": out_dir / "report.md", "html": out_dir / "report.html"}
    files["json"].write_text(json.dumps({k: v for k, v in result.items() if k != "predictions"}, indent=1,
                                        default=str))
    with open(files["predictions"], "w") as fh:
        for label, rows in predictions.items():
            for r in rows:
                fh.write(json.dumps({"model": label, **r}, ensure_ascii=False, default=str) + "\n")
    files["markdown"].write_text(to_markdown(bl, images))
    files["html"].write_text(to_html(bl, pngs))
    return {k: str(v) for k, v in files.items()}
