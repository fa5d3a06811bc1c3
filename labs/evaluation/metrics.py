"""Task metrics, in one place: exact match, classification (accuracy, P/R/F1), QA (EM, token F1), and the
held-out evaluation by generation that the SFT trainer runs at the end of a job.

    from labs.evaluation.metrics import exact_match, classification_scores, qa_scores, evaluate_rows
    evaluate_rows(model, tokenizer, rows, metric="exact_match")  # -> (metrics dict, predictions list)

Exact match normalizes only case and surrounding whitespace: '{"age": 3}' and '{"age":3}' differ.
"""
from __future__ import annotations

from collections import Counter


def normalize(s: str) -> str:
    return str(s).strip().lower()


def exact_match(pred: str, ref: str) -> bool:
    return normalize(pred) == normalize(ref)


def exact_match_rate(preds: list[str], refs: list[str]) -> float:
    return sum(exact_match(p, r) for p, r in zip(preds, refs)) / max(1, len(refs))


def classification_scores(preds: list[str], refs: list[str]) -> dict:
    """Accuracy and macro precision/recall/F1 over the reference labels (an answer outside them is wrong)."""
    preds, refs = [normalize(p) for p in preds], [normalize(r) for r in refs]
    labels = sorted(set(refs))
    out = {"accuracy": sum(p == r for p, r in zip(preds, refs)) / max(1, len(refs))}
    ps, rs, fs = [], [], []
    for lab in labels:
        tp = sum(p == lab and r == lab for p, r in zip(preds, refs))
        fp = sum(p == lab and r != lab for p, r in zip(preds, refs))
        fn = sum(p != lab and r == lab for p, r in zip(preds, refs))
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        ps.append(prec)
        rs.append(rec)
        fs.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    n = max(1, len(labels))
    out.update(precision=sum(ps) / n, recall=sum(rs) / n, f1=sum(fs) / n)
    return out


def token_f1(pred: str, ref: str) -> float:
    """SQuAD-style overlap of lower-cased whitespace tokens."""
    p, r = normalize(pred).split(), normalize(ref).split()
    common = sum((Counter(p) & Counter(r)).values())
    if not p or not r:
        return float(p == r)
    if common == 0:
        return 0.0
    prec, rec = common / len(p), common / len(r)
    return 2 * prec * rec / (prec + rec)


def qa_scores(preds: list[str], refs: list[str]) -> dict:
    n = max(1, len(refs))
    return {"exact_match": exact_match_rate(preds, refs),
            "f1": sum(token_f1(p, r) for p, r in zip(preds, refs)) / n}


def score(metric: str, preds: list[str], refs: list[str]) -> dict:
    if metric == "classification":
        return classification_scores(preds, refs)
    if metric == "qa":
        return qa_scores(preds, refs)
    return {"exact_match": exact_match_rate(preds, refs)}


def evaluate_rows(model, tokenizer, rows: list[dict], metric: str = "exact_match", max_new_tokens: int = 48,
                  batch_size: int = 16) -> tuple[dict, list[dict]]:
    """Answer each prompt/completion row by generation; return (metrics, predictions).

    Rows carrying a 'task' column also get per-task exact match (e.g. exact_match/extraction)."""
    from labs.data.mask import prompt_of, prompt_text, reference
    from labs.generate import greedy
    preds = greedy(model, tokenizer, [prompt_of(r) for r in rows], max_new_tokens, batch_size)
    refs = [reference(r) for r in rows]
    metrics = {k: round(v, 4) for k, v in score(metric, preds, refs).items()}
    by_task: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_task.setdefault(r.get("task", ""), []).append(i)
    if len(by_task) > 1 or "" not in by_task:
        for t, idx in by_task.items():
            if t:
                metrics[f"exact_match/{t}"] = round(exact_match_rate([preds[i] for i in idx],
                                                                     [refs[i] for i in idx]), 4)
    predictions = [{"prompt": prompt_text(r), "reference": ref, "prediction": p,
                    "correct": exact_match(p, ref), "task": r.get("task", "")}
                   for r, p, ref in zip(rows, preds, refs)]
    metrics["n"] = len(rows)
    return metrics, predictions
