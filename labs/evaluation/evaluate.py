"""One evaluation, top to bottom: config -> examples -> each model's answers and losses -> comparison,
error buckets, metrics per slice, forgetting probe, bias audit -> files. The CLI and the evaluation job both
call `evaluate`.

    from labs.evaluation.evaluate import EvalConfig, evaluate
    cfg = EvalConfig(models=["lab_data/runs/<run-id>"], split="test", forgetting=True)
    result = evaluate(cfg, out_dir)        # writes evaluation.json, predictions.jsonl, report.md/.html
    EvalConfig(models=[...], data="sentiment-real", slice_by="confidence")   # + metrics per confidence bin

`slice_by` names a column of the data rows: each model's answered rows are scored per value or bin of it
(labs.evaluation.slices) into result["models"][i]["slices"] = {"by": column, "rows": [...]}.

Defaults that come from a run (the first run directory among the models, when there is one): the dataset
it trained on (`data` empty), the rows of its 'task' column it trained on (`tasks` "auto"; "" = all rows),
its preset's task (`task` "auto"), its max_length for the loss, and - when it is the only model and
`compare_base` is on - its base model as the first model, so every table shows base -> fine-tuned.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from labs.config import RunConfig, setting
from labs.evaluation import bias as bias_mod
from labs.evaluation import compare, errors, forgetting, slices
from labs.evaluation import predict as predict_mod
from labs.evaluation.data import load_examples, run_settings
from labs.evaluation.metrics import TASKS, confusion, per_example, score
from labs.evaluation.predict import EvalError


@dataclass
class EvalConfig(RunConfig):
    """An evaluation: which models on which rows, and which of the extra analyses."""
    recipe: ClassVar[str] = "evaluation"
    models: list[str] = setting(None, "Model specs to compare (a Hub id, a local directory, a run directory, "
                                "'default'); the first is the reference.", default_factory=lambda: ["default"])
    data: str = setting("", "'' = the run's dataset (else 'instruct'), a saved dataset or a data file.")
    split: str = setting("test", "The split answered (test, validation, train).")
    task: str = setting("auto", "How answers are scored; auto = the run's task.", choices=("auto", *TASKS))
    tasks: str = setting("auto", "Rows whose 'task' column is listed, comma separated; auto = the run's "
                         "data_tasks; '' = all rows.")
    max_rows: int = setting(0, "Rows answered; 0 = every row.", min=0, max=100_000_000)
    max_new_tokens: int = setting(64, "Longest generated answer.", min=1, max=2048)
    batch_size: int = setting(16, "Rows per generation batch.", min=1, max=1024)
    loss: bool = setting(True, "Also compute the held-out loss and perplexity.")
    compare_base: bool = setting(True, "A run given alone is compared with its base model.")
    forgetting: bool = setting(False, "General-text perplexity and general questions, before and after.")
    bias: bool = setting(False, "The bias audit's templates and groups.")
    bias_templates: list[str] = setting(None, "Bias audit: one template per line, with {group}.", widget="textarea",
                                        default_factory=lambda: list(bias_mod.TEMPLATES))
    bias_groups: list[str] = setting(None, "Bias audit: the groups, comma separated.",
                                     default_factory=lambda: list(bias_mod.GROUPS))
    bias_label: str = setting("", "Bias audit: the label whose rate is compared across groups ('' = the first).")
    slice_by: str = setting("", "A column of the data: metrics per value or bin of it ('' = off).")

    def check(self):
        self.need(self.models, "models", "give at least one model spec (a Hub id, a local directory, a run "
                  "directory)")


def model_label(spec: str, taken: set[str], label: str | None = None) -> str:
    """A short name for tables: 'base' for a run's base model, the run id for a run, else the spec's last part."""
    label = first = label or Path(spec).name or spec
    k = 1
    while label in taken:
        k += 1
        label = f"{first}-{k}"
    taken.add(label)
    return label


def plan(cfg: EvalConfig) -> dict:
    """Models (with labels), data, split, rows filter and task after the run defaults are applied."""
    specs, names = list(cfg.models), [None] * len(cfg.models)
    run = next((run_settings(s) for s in specs if run_settings(s)), {})
    # a causal LM run alone is compared with its base (an encoder's base has no head to answer with)
    if run and len(specs) == 1 and cfg.compare_base and run.get("base") and \
            predict_mod.model_kind(specs[0]) == "causal_lm":
        specs, names = [run["base"], *specs], ["base", None]
    data = cfg.data or run.get("dataset") or "instruct"
    if cfg.tasks == "auto":
        tasks = run.get("tasks", []) if run and data == run.get("dataset") else []
    else:
        tasks = [t.strip() for t in cfg.tasks.split(",") if t.strip()]
    task = None if cfg.task == "auto" else cfg.task
    if task is None and run and data == run.get("dataset"):
        task = run.get("task")
    taken: set[str] = set()
    return {"models": [(model_label(s, taken, n), s) for s, n in zip(specs, names)], "data": data, "tasks": tasks, "task": task,
            "max_length": int(run.get("max_length") or 1024)}


def evaluate(cfg: EvalConfig, out_dir: str | Path | None = None, progress=None, should_stop=None) -> dict:
    """Run the whole evaluation; write its files into `out_dir` (when given) and return the result.
    progress(done, total, message) after each batch; should_stop() is asked between batches."""
    t0 = time.perf_counter()
    p = plan(cfg)
    ex = load_examples(p["data"], cfg.split, p["task"], p["tasks"], cfg.max_rows)
    rows = ex.rows
    n_prompt = sum(e["prompt"] is not None for e in rows)
    if cfg.slice_by:
        check_slice_column(cfg.slice_by, [e for e in rows if e["prompt"] is not None])
    per_model = n_prompt + (len(rows) if cfg.loss else 0)
    total = len(p["models"]) * (per_model + (64 if cfg.forgetting else 0) +
                                (len(cfg.bias_templates) * len(cfg.bias_groups) if cfg.bias else 0))
    done = [0]

    def step(message):  # a progress callback for the next stage, counting on from what is done
        base = done[0]

        def cb(k, n):
            if should_stop and should_stop():
                raise Stopped()
            if progress:
                progress(min(total, base + k), total, message)
        return cb

    results, predictions = [], {}
    for label, spec in p["models"]:
        res = {"label": label, "spec": spec, "kind": predict_mod.model_kind(spec)}
        if n_prompt:  # load the model first (one row), so the time per row is answering alone
            first = [e for e in rows if e["prompt"] is not None][:1]
            predict_mod.predict(spec, first, ex.task, max_new_tokens=cfg.max_new_tokens, batch_size=1)
        t_pred = time.perf_counter()
        preds = predict_mod.predict(spec, rows, ex.task, max_new_tokens=cfg.max_new_tokens,
                                    batch_size=cfg.batch_size, progress=step(f"{label}: answering"))
        t_pred = time.perf_counter() - t_pred
        done[0] += n_prompt
        pairs = predict_mod.losses(spec, rows, batch_size=max(1, cfg.batch_size // 2), max_length=p["max_length"],
                                   progress=step(f"{label}: held-out loss")) if cfg.loss else None
        done[0] += len(rows) if cfg.loss else 0
        out = []
        for i, (e, pr) in enumerate(zip(rows, preds)):
            r = {"id": e["id"], "input": e["input"], "category": e["category"], "reference":
                 e["references"][0] if e["references"] else "", "references": e["references"]}
            if e["prompt"] is not None:
                r.update(prediction=pr.text, finished=pr.finished,
                         **per_example(ex.task, pr.text, e["references"], ex.labels))
            if pairs and pairs[i][1]:
                r.update(loss=round(pairs[i][0] / pairs[i][1], 4), loss_tokens=pairs[i][1])
            out.append(r)
        answered = [r for r in out if "prediction" in r]
        m = score(ex.task, [r["prediction"] for r in answered], [r["references"] for r in answered], ex.labels) \
            if answered else {}
        if pairs:
            m.update(predict_mod.loss_summary(pairs))
        res["metrics"] = {k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()}
        res["metrics"]["n"] = len(answered)
        if answered:  # wall time per answered row, batched as configured, model already loaded
            res["metrics"]["ms_per_row"] = round(1000 * t_pred / len(answered), 1)
        errors.annotate(answered, ex.task, ex.labels)
        res["buckets"] = errors.bucket_counts(answered)
        if cfg.slice_by and answered:
            data_rows = [{**r, "row": e.get("row") or {}} for r, e in zip(out, rows) if "prediction" in r]
            res["slices"] = {"by": cfg.slice_by, "rows": slices.slice_metrics(data_rows, cfg.slice_by, ex.task,
                                                                              ex.labels)}
        if ex.task == "classification" and answered:
            res["confusion"] = confusion([r["prediction"] for r in answered], [r["references"] for r in answered],
                                         ex.labels)
        results.append(res)
        predictions[label] = out

    result = {"config": cfg.to_dict(), "models": results,
              "data": {"source": ex.source, "format": ex.fmt, "split": cfg.split, "task": ex.task,
                       "rows": len(rows), "tasks": ex.tasks, "labels": ex.labels,
                       "skipped": ex.skipped[:20], "n_skipped": len(ex.skipped)},
              "table": compare.metric_table(results),
              "changed": compare.changed_examples(results, predictions) if n_prompt else []}
    runs_in = {label: spec for label, spec in p["models"] if run_settings(spec)}
    if runs_in:
        result["runs"] = run_curves(runs_in)

    if cfg.forgetting:
        probes = {}
        for label, spec in p["models"]:
            probes[label] = forgetting.probe(spec, max_new_tokens=min(48, cfg.max_new_tokens),
                                             progress=step(f"{label}: forgetting probe"))
            done[0] += 64
        first = next(iter(probes))
        result["forgetting"] = {"probes": probes,
                                "changes": {lab: forgetting.changes(probes[first], pr) for lab, pr in probes.items()
                                            if lab != first}}
    if cfg.bias:
        audits = {}
        for label, spec in p["models"]:
            audits[label] = bias_mod.audit(spec, cfg.bias_templates, cfg.bias_groups, label=cfg.bias_label or None,
                                           max_new_tokens=min(40, cfg.max_new_tokens),
                                           progress=step(f"{label}: bias audit"))
            done[0] += len(cfg.bias_templates) * len(cfg.bias_groups)
        result["bias"] = audits
    result["seconds"] = round(time.perf_counter() - t0, 1)
    if out_dir is not None:
        from labs.evaluation.report import write_all
        result["files"] = write_all(result, predictions, Path(out_dir))
    result["predictions"] = predictions
    return result


def check_slice_column(column: str, answered: list[dict]) -> None:
    """EvalError unless at least one answered example's data row has `column`."""
    if not answered:
        raise EvalError(f"slice_by: no row is answered (loss-only text rows), so there is nothing to slice by "
                        f"{column!r}")
    if any(column in (e.get("row") or {}) for e in answered):
        return
    have = list(dict.fromkeys(k for e in answered for k in (e.get("row") or {})))
    raise EvalError(f"slice_by: no evaluated row has a column {column!r} (columns: {', '.join(have) or 'none'})")


class Stopped(Exception):
    """A stop was asked for (the run's STOP file); nothing more is computed."""


def run_curves(runs_in: dict[str, str]) -> dict:
    """Training curves, config differences and the overfitting verdict of the run directories compared."""
    import yaml
    curves, configs, verdicts = {}, {}, {}
    for label, spec in runs_in.items():
        d = Path(spec)
        rows = []
        if (d / "metrics.jsonl").exists():
            for line in (d / "metrics.jsonl").read_text().splitlines():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    continue
        curves[label] = [{k: r[k] for k in ("step", "loss", "eval_loss") if k in r} for r in rows
                         if "step" in r and ("loss" in r or "eval_loss" in r)]
        try:
            configs[label] = yaml.safe_load((d / "config.yaml").read_text()) or {}
        except (OSError, yaml.YAMLError):
            configs[label] = {}
        verdicts[label] = compare.overfitting(rows)
    return {"curves": curves, "config_differences": compare.config_differences(configs) if len(configs) > 1 else [],
            "overfitting": verdicts}
