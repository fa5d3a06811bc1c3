"""Task metrics, in one place: every score the SFT trainer logs and the Evaluation tab shows is computed here.

    from labs.evaluation.metrics import score, per_example, evaluate_rows
    score("qa", ["Paris"], [["Paris", "the city of Paris"]])   # {'exact_match': 1.0, 'f1': 1.0}
    score("classification", preds, refs, labels=["negative", "neutral", "positive"])
    evaluate_rows(model, tokenizer, rows, metric="exact_match")  # the SFT recipe's held-out metrics

Three tasks (the SFT presets' metric names are accepted too: exact_match = generation):
  * classification: accuracy; precision, recall and F1 per label, averaged macro (each label counts the
    same) and weighted (by how many references carry the label); a confusion matrix. A prediction is
    compared after `normalize` (case, surrounding space); one outside the label set is wrong for its row
    and a false positive for no label (scikit-learn's `labels=` rule); the matrix counts it in "(other)".
    `precision`, `recall` and `f1` repeat the macro averages under the names the SFT tab has always shown.
  * qa: exact match and token F1 with SQuAD v1.1's normalization (lower-case, drop punctuation and the
    articles a/an/the, collapse whitespace), the best over a row's reference answers; fractions, not %.
  * generation: exact match after `normalize` only ('{"age": 3}' and '{"age":3}' differ), ROUGE-L
    (F-measure of the longest common subsequence of tokens, tokenized as the rouge-score package does:
    lower-case, runs of [a-z0-9]), and, over rows whose reference is a JSON object or a YAML mapping,
    `json_valid`/`yaml_valid` (the answer parses as a mapping the same way) and `field_accuracy` (share
    of the reference's fields the answer gives the same value; an answer that does not parse gets 0).
A row may carry several references (a list); every score takes the best of them.
"""
from __future__ import annotations

import json
import re
import string
from collections import Counter

TASKS = ("classification", "qa", "generation")
ALIASES = {"precision": "precision_macro", "recall": "recall_macro", "f1": "f1_macro"}  # classification only


def task_of(name: str) -> str:
    """A task name, or an SFT preset's metric name (exact_match -> generation)."""
    name = {"exact_match": "generation", "sentiment": "classification", "instruction": "generation",
            "custom": "generation"}.get(name, name)
    if name not in TASKS:
        raise ValueError(f"task: one of {', '.join(TASKS)}, got {name!r}")
    return name


def _refs(ref) -> list[str]:
    return [str(r) for r in ref] if isinstance(ref, (list, tuple)) else [str(ref)]


# --------------------------------------------------------------------------- exact match (strict)
def normalize(s: str) -> str:
    return str(s).strip().lower()


def exact_match(pred: str, ref) -> bool:
    return any(normalize(pred) == normalize(r) for r in _refs(ref))


def exact_match_rate(preds: list[str], refs: list) -> float:
    return sum(exact_match(p, r) for p, r in zip(preds, refs)) / max(1, len(refs))


# --------------------------------------------------------------------------- QA (SQuAD v1.1)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(s: str) -> str:
    """SQuAD v1.1: lower-case, remove punctuation, remove articles, collapse whitespace."""
    s = "".join(ch for ch in str(s).lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", s).split())


def squad_exact_match(pred: str, ref) -> float:
    return max(float(normalize_answer(pred) == normalize_answer(r)) for r in _refs(ref))


def token_f1(pred: str, ref) -> float:
    """SQuAD v1.1 token F1 of the normalized answers (0 when they share no token), best over references."""
    best = 0.0
    p = normalize_answer(pred).split()
    for r in _refs(ref):
        g = normalize_answer(r).split()
        common = sum((Counter(p) & Counter(g)).values())
        if common:
            prec, rec = common / len(p), common / len(g)
            best = max(best, 2 * prec * rec / (prec + rec))
    return best


def qa_scores(preds: list[str], refs: list) -> dict:
    n = max(1, len(refs))
    return {"exact_match": sum(squad_exact_match(p, r) for p, r in zip(preds, refs)) / n,
            "f1": sum(token_f1(p, r) for p, r in zip(preds, refs)) / n}


# --------------------------------------------------------------------------- ROUGE-L
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def rouge_tokens(text: str) -> list[str]:
    """rouge-score's tokenizer without stemming: lower-case, non-alphanumerics to spaces, split."""
    return _NON_ALNUM.sub(" ", str(text).lower()).split()


def lcs_length(a: list, b: list) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(pred: str, ref) -> float:
    """ROUGE-L F-measure (precision = LCS / answer tokens, recall = LCS / reference tokens), best over references."""
    p, best = rouge_tokens(pred), 0.0
    for r in _refs(ref):
        g = rouge_tokens(r)
        lcs = lcs_length(g, p) if p and g else 0
        if lcs:
            prec, rec = lcs / len(p), lcs / len(g)
            best = max(best, 2 * prec * rec / (prec + rec))
    return best


# --------------------------------------------------------------------------- structured answers
_FENCE = re.compile(r"^```[a-zA-Z]*\n(.*?)\n?```$", re.S)


def parse_mapping(text: str, kind: str | None = None) -> tuple[str | None, dict | None]:
    """(kind, mapping) of an answer that is a JSON object ('json') or a YAML mapping ('yaml'), else (None, None).
    A surrounding ``` fence is removed first. kind='json' accepts JSON only; 'yaml' accepts any YAML mapping."""
    import yaml
    text = str(text).strip()
    m = _FENCE.match(text)
    if m:
        text = m.group(1).strip()
    if kind in (None, "json") and text.startswith("{"):
        try:
            v = json.loads(text)
            if isinstance(v, dict):
                return "json", v
        except ValueError:
            pass
    if kind == "json":
        return None, None
    try:
        v = yaml.safe_load(text)
    except yaml.YAMLError:
        return None, None
    return ("yaml", v) if isinstance(v, dict) and v else (None, None)


def field_accuracy(pred: str, ref: str) -> tuple[bool, float] | None:
    """(parses as the reference's kind, share of the reference's fields matched); None for a plain reference."""
    kind, want = parse_mapping(ref)
    if want is None:
        return None
    _, got = parse_mapping(pred, kind)
    if got is None:
        return False, 0.0
    got = {normalize(k): v for k, v in got.items()}
    same = sum(normalize(got.get(normalize(k), "\0missing")) == normalize(v) for k, v in want.items())
    return True, same / len(want)


def structured_scores(preds: list[str], refs: list) -> dict:
    kinds, valid, fields = Counter(), [], []
    for p, r in zip(preds, refs):
        r0 = _refs(r)[0]
        fa = field_accuracy(p, r0)
        if fa is None:
            continue
        kinds[parse_mapping(r0)[0]] += 1
        valid.append(fa[0])
        fields.append(fa[1])
    if not valid:
        return {}
    kind = kinds.most_common(1)[0][0]
    return {f"{kind}_valid": sum(valid) / len(valid), "field_accuracy": sum(fields) / len(fields)}


def generation_scores(preds: list[str], refs: list) -> dict:
    n = max(1, len(refs))
    out = {"exact_match": exact_match_rate(preds, refs),
           "rouge_l": sum(rouge_l(p, r) for p, r in zip(preds, refs)) / n}
    out.update(structured_scores(preds, refs))
    return out


# --------------------------------------------------------------------------- classification
def label_set(refs: list, labels: list[str] | None = None) -> list[str]:
    return sorted({normalize(x) for x in (labels or [])} | {normalize(_refs(r)[0]) for r in refs})


def classification_scores(preds: list[str], refs: list, labels: list[str] | None = None) -> dict:
    """Accuracy, per-label P/R/F1 averaged macro and weighted; predictions outside the label set are wrong."""
    preds, refs = [normalize(p) for p in preds], [normalize(_refs(r)[0]) for r in refs]
    labels = label_set(refs, labels)
    out = {"accuracy": sum(p == r for p, r in zip(preds, refs)) / max(1, len(refs))}
    per, support = {}, Counter(refs)
    for lab in labels:
        tp = sum(p == lab and r == lab for p, r in zip(preds, refs))
        fp = sum(p == lab and r != lab for p, r in zip(preds, refs))
        fn = sum(p != lab and r == lab for p, r in zip(preds, refs))
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        per[lab] = (prec, rec, 2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    n, total = max(1, len(labels)), max(1, sum(support[lab] for lab in labels))
    for avg in ("macro", "weighted"):  # macro: each label counts 1/n; weighted: its share of the references
        w = {lab: 1 / n if avg == "macro" else support[lab] / total for lab in per}
        for i, name in ((2, "f1"), (0, "precision"), (1, "recall")):
            out[f"{name}_{avg}"] = sum(v[i] * w[lab] for lab, v in per.items())
    out.update({alias: out[name] for alias, name in ALIASES.items()})
    return out


def confusion(preds: list[str], refs: list, labels: list[str] | None = None) -> dict:
    """{'labels', 'matrix' (rows: reference, columns: prediction), 'other' (per reference label: answers
    outside the label set)}."""
    preds, refs = [normalize(p) for p in preds], [normalize(_refs(r)[0]) for r in refs]
    labels = label_set(refs, labels)
    idx = {lab: i for i, lab in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    other = [0] * len(labels)
    for p, r in zip(preds, refs):
        if p in idx:
            matrix[idx[r]][idx[p]] += 1
        else:
            other[idx[r]] += 1
    return {"labels": labels, "matrix": matrix, "other": other}


# --------------------------------------------------------------------------- one entry point
def score(task: str, preds: list[str], refs: list, labels: list[str] | None = None) -> dict:
    task = task_of(task)
    if task == "classification":
        return classification_scores(preds, refs, labels)
    if task == "qa":
        return qa_scores(preds, refs)
    return generation_scores(preds, refs)


def per_example(task: str, pred: str, ref, labels: list[str] | None = None) -> dict:
    """One row's scores and whether it counts as correct (the error analysis's notion of wrong)."""
    task = task_of(task)
    if task == "classification":
        return {"correct": normalize(pred) == normalize(_refs(ref)[0])}
    if task == "qa":
        em = squad_exact_match(pred, ref)
        return {"correct": bool(em), "exact_match": em, "f1": round(token_f1(pred, ref), 4)}
    out = {"correct": exact_match(pred, ref), "rouge_l": round(rouge_l(pred, ref), 4)}
    fa = field_accuracy(pred, _refs(ref)[0])
    if fa is not None:
        out.update(parses=fa[0], field_accuracy=round(fa[1], 4))
    return out


def shown(metrics: dict) -> dict:
    """Metrics without the classification aliases (for tables and the CLI: each number once)."""
    dup = "f1_macro" in metrics
    return {k: v for k, v in metrics.items() if not (dup and k in ALIASES)}


def evaluate_rows(model, tokenizer, rows: list[dict], metric: str = "exact_match", max_new_tokens: int = 48,
                  batch_size: int = 16, progress=None) -> tuple[dict, list[dict]]:
    """Answer each prompt/completion row by generation; return (metrics, predictions).

    Rows carrying a 'task' column also get per-task exact match (e.g. exact_match/extraction).
    progress(done, total) after each batch (the same batches as one call: the answers do not change)."""
    from labs.data.mask import prompt_of, prompt_text, reference
    from labs.generate import greedy
    prompts, preds = [prompt_of(r) for r in rows], []
    for i in range(0, len(prompts), batch_size):
        preds += greedy(model, tokenizer, prompts[i:i + batch_size], max_new_tokens, batch_size)
        if progress:
            progress(len(preds), len(prompts))
    refs = [reference(r) for r in rows]
    # the SFT tab's names: precision/recall/f1 (macro) once, without their *_macro copies
    metrics = {k: round(v, 4) for k, v in score(metric, preds, refs).items() if k not in ALIASES.values()}
    by_task: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_task.setdefault(r.get("task", ""), []).append(i)
    if len(by_task) > 1 or "" not in by_task:
        for t, idx in by_task.items():
            if t:
                metrics[f"exact_match/{t}"] = round(exact_match_rate([preds[i] for i in idx],
                                                                     [refs[i] for i in idx]), 4)
    predictions = [{"prompt": prompt_text(r), "reference": ref, "prediction": p,
                    "correct": per_example(metric, p, ref)["correct"], "task": r.get("task", "")}
                   for r, p, ref in zip(rows, preds, refs)]
    metrics["n"] = len(rows)
    return metrics, predictions
