"""Forgetting probe: does the fine-tuned model still know general things the base model knew?

    from labs.evaluation.forgetting import probe, changes
    before, after = probe("default"), probe("lab_data/runs/<run-id>")
    changes(before, after)     # perplexity change in %, questions lost and gained, flags

Two measurements, the same for every model:
  * perplexity on assets/general/general_text.jsonl (56 encyclopedic paragraphs, every token scored as
    labs.data.mask.tokenize_row trains plain text): the mean loss per token over the whole set, exp'd;
  * answers to assets/general/questions.jsonl (8 questions, greedy): an answer is right when one of the
    accepted answers appears in it as whole words after SQuAD normalization ("It is Paris." holds "Paris").
Flags (highlighted in the tab and the report): perplexity up by more than PPL_FLAG_PCT percent, and any
question the base model got right that the fine-tuned model gets wrong.
"""
from __future__ import annotations

from labs.evaluation import predict as predict_mod
from labs.evaluation.data import general_questions, general_text
from labs.evaluation.metrics import normalize_answer

PPL_FLAG_PCT = 10.0


def contains_answer(prediction: str, answers: list[str]) -> bool:
    p = f" {normalize_answer(prediction)} "
    return any(f" {normalize_answer(a)} " in p for a in answers if normalize_answer(a))


def probe(spec: str, *, max_new_tokens: int = 48, batch_size: int = 8, progress=None) -> dict:
    """{'perplexity', 'loss', 'tokens', 'accuracy', 'questions': [{question, answers, answer, correct}]}."""
    text = general_text()
    out: dict = {}
    pairs = predict_mod.losses(spec, text, batch_size=batch_size, progress=progress)
    if pairs is not None:
        s = predict_mod.loss_summary(pairs)
        out.update(perplexity=round(s["perplexity"], 3), loss=round(s["loss"], 4), tokens=s["loss_tokens"])
    qs = general_questions()
    preds = predict_mod.predict(spec, qs, "qa", max_new_tokens=max_new_tokens, batch_size=batch_size)
    out["questions"] = [{"question": q["input"], "answers": q["references"], "answer": p.text,
                         "correct": contains_answer(p.text, q["references"])} for q, p in zip(qs, preds)]
    out["accuracy"] = round(sum(q["correct"] for q in out["questions"]) / max(1, len(qs)), 4)
    return out


def changes(before: dict, after: dict) -> dict:
    """The change from `before` (base) to `after` (fine-tuned), with the flags of the module docstring."""
    out: dict = {"accuracy_before": before.get("accuracy"), "accuracy_after": after.get("accuracy")}
    if before.get("perplexity") and after.get("perplexity"):
        pct = 100.0 * (after["perplexity"] - before["perplexity"]) / before["perplexity"]
        out.update(perplexity_before=before["perplexity"], perplexity_after=after["perplexity"],
                   perplexity_change_pct=round(pct, 2), perplexity_flag=pct > PPL_FLAG_PCT)
    rows = []
    for b, a in zip(before.get("questions", []), after.get("questions", [])):
        status = "lost" if b["correct"] and not a["correct"] else "gained" if a["correct"] and not b["correct"] \
            else "same"
        rows.append({"question": b["question"], "before": b["answer"], "after": a["answer"],
                     "right_before": b["correct"], "right_after": a["correct"], "change": status})
    out["questions"] = rows
    out["lost"] = sum(r["change"] == "lost" for r in rows)
    out["gained"] = sum(r["change"] == "gained" for r in rows)
    return out
