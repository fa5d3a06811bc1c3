"""Examples to evaluate: any dataset split, with raw rows prompted the way the SFT presets train on them.

    from labs.evaluation.data import load_examples, run_settings
    ex = load_examples("instruct", split="test", tasks=["extraction"])      # the bundled set
    ex = load_examples("assets/qa/qa.jsonl")                                # a file is evaluated whole
    ex.task, ex.labels, ex.rows[0]

A dataset is "instruct" (assets/instruct/<split>.jsonl), a dataset saved by the Dataset builder (its
<split>), a folder of split files (assets/qa_varied/<split>.jsonl), or a data file (.jsonl/.json/.csv/.tsv/.parquet: every row; `split` does not apply). The format
is detected (labs.data.detect) and each row becomes an example:
    prompt      what the model is asked (a chat, or a plain string); None for text rows (loss only)
    references  the accepted answers (SQuAD rows keep all of theirs; others have one)
    sft         the SFT row whose trained tokens give the held-out loss (labs.data.mask.tokenize_row)
    category    the reference label for classification, else the row's 'task' column: the error table's filter
    input       the prompt as one line of text, for tables
    row         the row with the format's column names (what a non-generating predictor reads)
Raw rows are prompted through labs.data.formats.conversation, as the Dataset builder converts them for
the sentiment and qa presets: text/label rows list the dataset's labels ("Label this text with one of: ..."),
context/question/answers rows ask for a span copied from the context.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from labs.data.detect import DataError
from labs.evaluation.metrics import task_of
from labs.evaluation.predict import EvalError

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = {"instruct": ROOT / "assets" / "instruct"}
GENERAL = ROOT / "assets" / "general"
PRESET_TASK = {"sentiment": "classification", "qa": "qa", "instruction": "generation", "custom": "generation",
               "classification": "classification"}  # the last: an encoder run's task


@dataclass
class Examples:
    rows: list[dict]
    task: str
    labels: list[str] = field(default_factory=list)
    source: str = ""
    fmt: str = ""
    skipped: list[tuple[int, str]] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)  # the 'task' column filter applied ([] = none)


def run_settings(spec: str) -> dict:
    """What a run directory says about evaluating it: its task, dataset, rows filter, max_length, base model.
    {} for a spec that is no run directory."""
    import yaml
    p = Path(str(spec)).expanduser()
    if not (p / "config.yaml").is_file() or not (p / "status.json").is_file():
        return {}
    try:
        cfg = yaml.safe_load((p / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    tasks = [t.strip() for t in str(cfg.get("data_tasks") or "").split(",") if t.strip()]
    return {"task": PRESET_TASK.get(cfg.get("task"), "generation"), "dataset": cfg.get("dataset"),
            "tasks": tasks, "max_length": cfg.get("max_length"), "base": cfg.get("model")}


def _raw_rows(data: str, split: str) -> tuple[list[dict], str]:
    from labs.data.io import load_saved, read_rows
    if data in BUNDLED:
        p = BUNDLED[data] / f"{split}.jsonl"
        if not p.is_file():
            have = sorted(x.stem for x in BUNDLED[data].glob("*.jsonl"))
            raise EvalError(f"split: '{data}' has no split '{split}' (splits: {', '.join(have)})")
        return read_rows(p), f"{data}/{split}"
    p = Path(data).expanduser()
    if p.is_dir() and (p / "train.jsonl").is_file():  # a folder of split files (assets/qa_varied)
        if not (p / f"{split}.jsonl").is_file():
            have = sorted(x.stem for x in p.glob("*.jsonl"))
            raise EvalError(f"split: '{data}' has no split '{split}' (splits: {', '.join(have)})")
        return read_rows(p / f"{split}.jsonl"), f"{data}/{split}"
    if p.is_file() or p.suffix in (".jsonl", ".json", ".csv", ".tsv", ".parquet"):
        return read_rows(p), str(p)
    dd = load_saved(data)
    if split not in dd:
        raise EvalError(f"split: dataset '{data}' has no split '{split}' (splits: {', '.join(dd)})")
    return [dict(r) for r in dd[split]], f"{data}/{split}"


def _answers(row: dict) -> list[str]:
    ans = row.get("answers")
    if isinstance(ans, dict):
        ans = ans.get("text")
    if isinstance(ans, str):
        ans = [ans]
    return [str(a) for a in (ans or []) if str(a).strip()]


def load_examples(data: str, split: str = "test", task: str | None = None, tasks: list[str] | None = None,
                  max_rows: int = 0) -> Examples:
    """The examples of `data`/`split`; `tasks` keeps rows whose 'task' column is listed; `task` (classification,
    qa, generation) defaults to the one the format implies."""
    from labs.data.detect import apply_mapping, detect_format
    from labs.data.formats import conversation
    from labs.data.mask import prompt_of, prompt_text, reference, sft_row
    try:
        raw, source = _raw_rows(data, split)
        if tasks and any("task" in r for r in raw):
            raw = [r for r in raw if r.get("task") in tasks]
        else:
            tasks = []  # rows without a 'task' column are all kept: no filter was applied
        if not raw:
            raise EvalError(f"data: no rows in {data} ({split}) for tasks {', '.join(tasks or [])}")
        fmt = detect_format(raw)[0]
        raw = apply_mapping(raw, fmt)
    except DataError as e:
        raise EvalError(f"data: {e}") from None
    labels = sorted({str(r.get("label")) for r in raw if r.get("label") not in (None, "")}) \
        if fmt == "classification" else []
    rows, skipped = [], []
    for i, r in enumerate(raw):
        try:
            if fmt in ("classification", "extractive_qa"):
                msgs = conversation(r, fmt, labels)
                refs = [str(r["label"])] if fmt == "classification" else _answers(r)
                ex = {"prompt": msgs[:-1], "references": refs, "sft": {"prompt": msgs[:-1], "completion": msgs[-1:]},
                      "category": str(r.get("task") or "")}
            else:
                s = sft_row(r)
                if "text" in s:
                    ex = {"prompt": None, "references": [], "sft": s, "category": str(r.get("task") or "")}
                else:
                    ref = reference(s)
                    ex = {"prompt": prompt_of(s), "references": [ref], "sft": s, "category": str(r.get("task") or "")}
        except (ValueError, DataError) as e:
            skipped.append((i + 1, str(e)))
            continue
        ex["id"] = str(r.get("id", i))
        ex["row"] = r  # the row itself, for predictors that read its fields (an encoder: text, context/question)
        ex["input"] = prompt_text(ex["sft"]) if ex["prompt"] is not None else str(ex["sft"]["text"])
        rows.append(ex)
    if not rows:
        raise EvalError(f"data: none of the {len(raw)} rows of {source} could be used "
                        f"({skipped[0][1] if skipped else 'no rows'})")
    if max_rows:
        rows = rows[:max_rows]
    if task is None:
        task = {"classification": "classification", "extractive_qa": "qa"}.get(fmt, "generation")
    try:
        task = task_of(task)
    except ValueError as e:
        raise EvalError(str(e)) from None
    if task == "classification":
        labels = labels or sorted({e["references"][0].strip().lower() for e in rows if e["references"]})
        for e in rows:  # the error table filters a classification by its reference label
            e["category"] = e["references"][0] if e["references"] else e["category"]
    return Examples(rows, task, labels, source, fmt, skipped, list(tasks or []))


def general_text() -> list[dict]:
    """The general-text set for the forgetting probe (assets/general/general_text.jsonl) as loss-only examples."""
    from labs.data.io import read_rows
    return [{"id": str(i), "prompt": None, "references": [], "sft": {"text": r["text"]}, "category": "",
             "input": r["text"]} for i, r in enumerate(read_rows(GENERAL / "general_text.jsonl"))]


def general_questions() -> list[dict]:
    """A few general questions with accepted answers (assets/general/questions.jsonl)."""
    from labs.data.io import read_rows
    return [{"id": r["id"], "prompt": [{"role": "user", "content": r["question"]}], "references": r["answers"],
             "sft": None, "category": "general", "input": r["question"]}
            for r in read_rows(GENERAL / "questions.jsonl")]
