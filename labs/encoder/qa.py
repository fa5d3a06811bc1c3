"""Extractive QA's answer search and the classifier's class weights: small pure functions with tests.

    best_span(start_logits, end_logits, offsets, context, n_best=20, max_answer_length=30)  # -> (text, score)
    class_weights(label_ids, n_labels)                                                       # balanced weights

The span search (the Hugging Face course's post-processing): in each window take the n_best highest start
and end logits, keep pairs whose tokens both lie in the context, end >= start and at most max_answer_length
tokens long, score a pair by start logit + end logit, and answer with the best pair over all windows of
the example, cut from the context by the tokens' character offsets.
"""
from __future__ import annotations

import numpy as np


def best_span(start_logits, end_logits, offsets, context: str, n_best: int = 20,
              max_answer_length: int = 30) -> tuple[str, float]:
    """The best answer of one window: (text, start+end score); ("", -inf) when no pair is valid.
    offsets[i] is (char_start, char_end) for a context token, None for question, special and pad tokens."""
    start_logits, end_logits = np.asarray(start_logits, dtype=float), np.asarray(end_logits, dtype=float)
    n = min(len(offsets), len(start_logits))
    best, best_score = "", float("-inf")
    starts = np.argsort(start_logits[:n])[::-1][:n_best]
    ends = np.argsort(end_logits[:n])[::-1][:n_best]
    for s in starts:
        for e in ends:
            if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                continue
            score = float(start_logits[s] + end_logits[e])
            if score > best_score:
                best, best_score = context[offsets[s][0]:offsets[e][1]], score
    return best, best_score


def best_answers(features: list[dict], start_logits, end_logits, contexts: list[str], n_best: int = 20,
                 max_answer_length: int = 30) -> list[str]:
    """One answer per example, the best span over all of its windows (features carry `example`, `offsets`)."""
    out: list[tuple[str, float]] = [("", float("-inf"))] * len(contexts)
    for f, s, e in zip(features, start_logits, end_logits):
        i = f["example"]
        text, score = best_span(s, e, f["offsets"], contexts[i], n_best, max_answer_length)
        if score > out[i][1]:
            out[i] = (text, score)
    return [t.strip() for t, _ in out]


def class_weights(label_ids: list[int], n_labels: int) -> list[float]:
    """Balanced weights n / (k * n_c) (scikit-learn's 'balanced'): the mean weight per row is 1, so the loss
    keeps its scale; a class absent from training gets weight 1."""
    counts = np.bincount(np.asarray(label_ids, dtype=int), minlength=n_labels)
    n = counts.sum()
    return [float(n / (n_labels * c)) if c else 1.0 for c in counts]
