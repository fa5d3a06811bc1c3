"""A fine-tuned encoder answering: labels for classification, spans for extractive QA.

    from labs.encoder.infer import load, predict_labels, predict_spans
    m = load("lab_data/runs/<run-id>")            # its model/ folder, task and QA settings
    predict_labels(m, ["great drug", "no effect"])  # ['positive', 'negative']

`predict` is what labs.evaluation calls for a run whose recipe is "encoder" (registered in
labs/encoder/__init__.py): `python -m labs.evaluation --model <run dir> --data drugs-real --task classification`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from labs.encoder.data import EncoderError, qa_eval_features
from labs.encoder.qa import best_answers

QA_DEFAULTS = {"max_length": 256, "doc_stride": 64, "max_answer_length": 30, "n_best": 20}


@dataclass
class Trained:
    model: object
    tokenizer: object
    task: str                       # classification | qa
    labels: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)


def model_dir(spec: str) -> Path:
    p = Path(str(spec)).expanduser()
    if (p / "model" / "config.json").is_file():  # a run directory
        return p / "model"
    if (p / "config.json").is_file():
        return p
    raise EncoderError(f"model '{spec}': no fine-tuned encoder here (a run directory with model/, or a folder "
                       "with config.json)")


@functools.lru_cache(maxsize=2)
def _load(path: str, mtime: float) -> Trained:
    """The model, tokenizer, task and labels of a folder (cached by path and config.json's time)."""
    from transformers import AutoConfig, AutoModelForQuestionAnswering, AutoModelForSequenceClassification, AutoTokenizer
    cfg = AutoConfig.from_pretrained(path)
    arch = " ".join(cfg.architectures or [])
    if "QuestionAnswering" in arch:
        task, cls = "qa", AutoModelForQuestionAnswering
    elif "SequenceClassification" in arch:
        task, cls = "classification", AutoModelForSequenceClassification
    else:
        raise EncoderError(f"model '{path}': {arch or 'no architecture'} has no classification or QA head; "
                           "fine-tune it first (python -m labs.encoder)")
    model = cls.from_pretrained(path).eval()
    labels = [cfg.id2label[i] for i in range(cfg.num_labels)] if task == "classification" else []
    return Trained(model, AutoTokenizer.from_pretrained(path), task, labels)


def load(spec: str) -> Trained:
    """A trained encoder with the QA settings of its run's config.yaml (read on every call), else the defaults."""
    import yaml
    d = model_dir(spec)
    m = _load(str(d.resolve()), (d / "config.json").stat().st_mtime)
    settings = dict(QA_DEFAULTS)
    run_cfg = d.parent / "config.yaml"
    if run_cfg.is_file():
        settings.update({k: v for k, v in (yaml.safe_load(run_cfg.read_text()) or {}).items() if k in QA_DEFAULTS})
    return Trained(m.model, m.tokenizer, m.task, m.labels, settings)


def _batches(n: int, size: int):
    for b in range(0, n, size):
        yield b, min(n, b + size)


def predict_labels(m: Trained, texts: list[str], batch_size: int = 32, progress=None) -> list[str]:
    import torch
    out = []
    with torch.inference_mode():
        for a, b in _batches(len(texts), batch_size):
            enc = m.tokenizer(texts[a:b], truncation=True, max_length=m.settings.get("max_length", 256),
                              padding=True, return_tensors="pt").to(m.model.device)
            out += [m.labels[i] for i in m.model(**enc).logits.argmax(-1).tolist()]
            if progress:
                progress(b, len(texts))
    return out


def predict_spans(m: Trained, rows: list[dict], batch_size: int = 32, progress=None) -> list[str]:
    """One answer per {context, question} row: n-best span search over the windows of its context."""
    import torch
    s = m.settings
    feats = qa_eval_features(m.tokenizer, rows, int(s["max_length"]), int(s["doc_stride"]))
    starts, ends = [], []
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in feats[0]] if feats else []
    with torch.inference_mode():
        for a, b in _batches(len(feats), batch_size):
            batch = m.tokenizer.pad([{k: f[k] for k in keys} for f in feats[a:b]], return_tensors="pt")
            res = m.model(**batch.to(m.model.device))
            starts += res.start_logits.float().cpu().numpy().tolist()
            ends += res.end_logits.float().cpu().numpy().tolist()
            if progress:
                progress(b, len(feats))
    return best_answers(feats, starts, ends, [str(r["context"]) for r in rows], int(s["n_best"]),
                        int(s["max_answer_length"]))


def predict(spec, examples, task, *, max_new_tokens=48, batch_size=16, progress=None):
    """labs.evaluation's predictor for encoder runs: one Prediction per example (finished: None, no generation)."""
    from labs.evaluation.predict import EvalError, Prediction
    try:
        m = load(spec)
    except (EncoderError, OSError) as e:
        raise EvalError(str(e)) from None
    if task != m.task:
        raise EvalError(f"model '{spec}': a {m.task} encoder cannot answer a {task} evaluation "
                        f"(use --task {m.task} and data of that kind)")
    rows = [e.get("row") for e in examples]
    if any(r is None for r in rows):
        raise EvalError("examples carry no 'row' (labs.evaluation.data keeps each example's row)")
    if task == "classification":
        texts = [str(r.get("text", "")) for r in rows]
        return [Prediction(t, None) for t in predict_labels(m, texts, batch_size, progress)]
    return [Prediction(t, None) for t in predict_spans(m, rows, batch_size, progress)]
