"""Comparing models and runs: a metric table with deltas, the examples whose answers changed, training
curves of several runs with the settings that differ, and the overfitting rule.

    from labs.evaluation.compare import metric_table, changed_examples, overfitting, config_differences
    metric_table([{"label": "base", "metrics": {...}}, {"label": "run", "metrics": {...}}])
    overfitting(runs.get(run_id).metrics())     # {'flag': bool, 'since_step': ..., 'detail': ...}

Overfitting rule: take the evaluations in order (steps s_0 < s_1 < ...) with eval losses E_i, and the
mean logged train loss T_i over the steps since the evaluation before (s_{i-1} < step <= s_i; T_0 over
step <= s_0). An evaluation i >= 1 diverges when E_i > E_{i-1} while T_i < T_{i-1}. Two or more
diverging evaluations in a row (PATIENCE) flag the run: from then on the model fits the training rows
better and the held-out rows worse.
"""
from __future__ import annotations

from labs.evaluation.metrics import shown

PATIENCE = 2
COUNTS = ("n", "loss_tokens")  # how many rows / tokens were scored: no delta


def metric_table(results: list[dict]) -> list[dict]:
    """One row per metric: each model's value, and its change against the first model ('Δ <label>')."""
    if not results:
        return []
    keys: list[str] = []
    for r in results:
        keys += [k for k in shown(r["metrics"]) if k not in keys and isinstance(r["metrics"][k], (int, float))]
    first = results[0]
    rows = []
    for k in keys:
        row = {"metric": k}
        for r in results:
            row[r["label"]] = _round(r["metrics"].get(k))
        for r in results[1:]:
            if k in COUNTS:
                continue
            a, b = first["metrics"].get(k), r["metrics"].get(k)
            row[f"Δ {r['label']}"] = _round(b - a) if isinstance(a, (int, float)) and isinstance(b, (int, float)) \
                else None
        rows.append(row)
    return rows


def _round(v):
    return round(v, 4) if isinstance(v, float) else v


def changed_examples(results: list[dict], predictions: dict[str, list[dict]]) -> list[dict]:
    """Examples whose correctness differs between the first model and another: 'fixed' (wrong -> right) or
    'broken' (right -> wrong), with every model's answer."""
    if len(results) < 2:
        return []
    labels = [r["label"] for r in results]
    first = predictions[labels[0]]
    out = []
    for i, ex in enumerate(first):
        others = [predictions[lab][i] for lab in labels[1:]]
        if all(o["correct"] == ex["correct"] for o in others):
            continue
        row = {"id": ex["id"], "input": ex["input"], "reference": ex["reference"]}
        for lab in labels:
            p = predictions[lab][i]
            row[lab] = p["prediction"]
        last = others[-1]
        row["change"] = "fixed" if last["correct"] and not ex["correct"] else \
            "broken" if ex["correct"] and not last["correct"] else "mixed"
        out.append(row)
    return out


# --------------------------------------------------------------------------- runs: curves and settings
def overfitting(rows: list[dict], patience: int = PATIENCE) -> dict:
    """Apply the module's rule to a run's metrics rows."""
    evals = [(r["step"], r["eval_loss"]) for r in rows if r.get("eval_loss") is not None and "step" in r]
    train = [(r["step"], r["loss"]) for r in rows if r.get("loss") is not None and "step" in r]
    if len(evals) < patience + 1:
        return {"flag": False, "since_step": None,
                "detail": f"{len(evals)} evaluation(s): the rule needs at least {patience + 1}"}
    means, prev = [], -1
    for s, _ in evals:
        window = [v for st, v in train if prev < st <= s]
        means.append(sum(window) / len(window) if window else None)
        prev = s
    run, since = 0, None
    for i in range(1, len(evals)):
        rising = evals[i][1] > evals[i - 1][1]
        falling = means[i] is not None and means[i - 1] is not None and means[i] < means[i - 1]
        run = run + 1 if rising and falling else 0
        if run == 1:
            since = evals[i][0]
        if run >= patience:
            return {"flag": True, "since_step": since,
                    "detail": f"eval loss rose for {run} evaluations in a row from step {since} while the train "
                              f"loss fell ({evals[i - run][1]:.4f} -> {evals[i][1]:.4f} eval)"}
    return {"flag": False, "since_step": None,
            "detail": f"no {patience} evaluations in a row with eval loss rising while train loss falls"}


def config_differences(configs: dict[str, dict]) -> list[dict]:
    """Settings whose values differ between runs: [{'setting', <label>: value, ...}]."""
    keys = sorted({k for c in configs.values() for k in c})
    out = []
    for k in keys:
        vals = [c.get(k) for c in configs.values()]
        if any(v != vals[0] for v in vals[1:]):
            out.append({"setting": k, **{lab: c.get(k) for lab, c in configs.items()}})
    return out
