"""Encoder recipe: sequence classification or extractive QA on a BERT-style encoder, with the HF Trainer.

    python -m labs.encoder --preset sentiment --out run.yaml     # write a preset config to edit
    python -m labs.encoder --config run.yaml                     # train in a run directory
    python -m labs.evaluation --model lab_data/runs/<run-id> --data drugs-real --task classification

The course's way (slides on AutoModelForSequenceClassification / AutoModelForQuestionAnswering): a
pre-trained encoder gets a fresh head - a linear layer on the [CLS] vector for classification, a start and
an end score per token for QA - and is fine-tuned fully or with LoRA adapters (PEFT task types SEQ_CLS /
QUESTION_ANS, which also train the new head). Classification can weight each class's loss by
n / (classes x n_class) against imbalance. QA trains on windows of the context (labs/encoder/data.py) and
answers with the best start/end pair (labs/encoder/qa.py). At the end the test split (else validation) is
scored with labs.evaluation.metrics: accuracy, precision/recall/F1 macro and weighted and a confusion
matrix; or SQuAD exact match and F1. Output in the run directory: model/ (LoRA merged into the weights, so
it loads like any fine-tuned encoder), eval_metrics.json, eval_predictions.jsonl, metrics.jsonl.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from labs.encoder.config import ConfigError, EncoderRunConfig
from labs.encoder.data import (EncoderError, class_features, encoder_path, load_splits, qa_train_features)
from labs.encoder.qa import class_weights


# --------------------------------------------------------------------------- model
def load_model(cfg: EncoderRunConfig, labels: list[str]):
    """(model with its new head and, for LoRA, adapters; tokenizer; where the encoder came from)."""
    from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification, AutoTokenizer
    path = encoder_path(cfg.encoder)
    tok = AutoTokenizer.from_pretrained(path)
    try:
        if cfg.task == "classification":
            model = AutoModelForSequenceClassification.from_pretrained(
                path, num_labels=len(labels), id2label=dict(enumerate(labels)),
                label2id={lab: i for i, lab in enumerate(labels)})
        else:
            model = AutoModelForQuestionAnswering.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise EncoderError(f"encoder '{cfg.encoder}': could not be loaded with a {cfg.task} head "
                           f"({str(e).splitlines()[0][:200]})") from None
    if cfg.method == "lora":
        from peft import LoraConfig, TaskType, get_peft_model
        lcfg = LoraConfig(**cfg.lora_config_kwargs(), bias="none",
                          task_type=TaskType.SEQ_CLS if cfg.task == "classification" else TaskType.QUESTION_ANS)
        try:
            model = get_peft_model(model, lcfg)  # the task type keeps the new head trainable (modules_to_save)
        except ValueError as e:
            import torch
            names = sorted({n.split(".")[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
            raise ConfigError(f"lora_targets: {e} (this encoder's linear layers: {', '.join(names)})") from None
    return model, tok, path


def count_params(model) -> tuple[int, int]:
    return (sum(p.numel() for p in model.parameters() if p.requires_grad), sum(p.numel() for p in model.parameters()))


def precision_of(cfg: EncoderRunConfig, device) -> str:
    """bf16 autocast on CUDA with bf16 and on CPUs where bf16 matmuls measure faster (auto), else fp32."""
    import torch
    from labs import flops
    if cfg.precision != "auto":
        return cfg.precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and flops.cpu_prefers_bf16() else "fp32"


def weighted_trainer_class():
    import torch
    from transformers import Trainer

    class WeightedTrainer(Trainer):
        """Cross-entropy with per-class weights (mean over rows weighted: sum w_y * loss / sum w_y)."""

        def __init__(self, *a, class_weights=None, **kw):
            super().__init__(*a, **kw)
            self.class_weights = class_weights

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            w = None if self.class_weights is None else torch.tensor(self.class_weights, device=labels.device)
            loss = torch.nn.functional.cross_entropy(outputs.logits.float(), labels, weight=w)
            return (loss, outputs) if return_outputs else loss

    return WeightedTrainer


# --------------------------------------------------------------------------- the recipe
def build_trainer(cfg: EncoderRunConfig, session, splits: dict | None = None, labels: list[str] | None = None):
    """Data, model, features and Trainer for `cfg`, in dependency order: (trainer, tokenizer, splits, labels)."""
    import datasets
    import torch
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments
    from labs import models

    # ---- Data (labels come from the training rows: the head's size depends on them)
    if splits is None:
        session.phase("loading data")
        splits, labels = load_splits(cfg.dataset, cfg.task, cfg.seed)
    if cfg.max_train_rows:
        splits["train"] = splits["train"][:cfg.max_train_rows]
    held = held_out(cfg, splits)[1]
    # the phases ahead, as the monitor shows them; the training's steps are known exactly when it begins
    session.plan("loading model", ("tokenizing", len(splits["train"]) + len(splits["validation"]), "rows"),
                 ("training", cfg.max_steps or None, "steps"), "saving",
                 *([("evaluating", len(held), "rows")] if held else []))

    # ---- Model
    session.phase("loading model")
    device = torch.device("cpu") if cfg.device == "cpu" else models.pick_device(cfg.device)
    model, tok, path = load_model(cfg, labels or [])
    trainable, total = count_params(model)

    # ---- Features: token ids, and a label (classification) or answer token positions (qa windows)
    n_rows = len(splits["train"]) + len(splits["validation"])
    session.phase("tokenizing", 0, n_rows, unit="rows")
    if cfg.task == "classification":
        train_f = class_features(tok, splits["train"], labels, cfg.max_length)
        session.phase("tokenizing", len(splits["train"]), n_rows, unit="rows")
        val_f = class_features(tok, splits["validation"], labels, cfg.max_length)
    else:
        train_f = qa_train_features(tok, splits["train"], cfg.max_length, cfg.doc_stride)
        session.phase("tokenizing", len(splits["train"]), n_rows, unit="rows")
        val_f = qa_train_features(tok, splits["validation"], cfg.max_length, cfg.doc_stride)
    session.phase("tokenizing", n_rows, n_rows, unit="rows")
    weights = None
    if cfg.task == "classification" and cfg.class_weights == "balanced":
        weights = class_weights([f["labels"] for f in train_f], len(labels))
    prec = precision_of(cfg, device)
    session.record(encoder=cfg.encoder, encoder_path=str(path), device=str(device), precision=prec,
                   trainable_params=trainable, total_params=total, labels=labels, class_weights=weights,
                   rows={k: len(v) for k, v in splits.items()}, features={"train": len(train_f), "validation": len(val_f)})

    # ---- Trainer (no checkpoints: at this size a run is minutes; the final model is saved at the end)
    # e.g. drugs-real: 499 rows / batch 16 = 32 steps per epoch
    by_epoch = cfg.eval_steps == 0
    args = TrainingArguments(
        output_dir=str(Path(session.dir) / "checkpoints"), use_cpu=device.type == "cpu",
        learning_rate=cfg.learning_rate, lr_scheduler_type=cfg.lr_scheduler, warmup_steps=cfg.warmup,
        weight_decay=cfg.weight_decay, num_train_epochs=cfg.num_epochs, max_steps=cfg.max_steps or -1,
        per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=max(cfg.batch_size, 32),
        gradient_accumulation_steps=cfg.grad_accum, seed=cfg.seed, data_seed=cfg.seed,
        bf16=prec == "bf16", fp16=False, eval_strategy="epoch" if by_epoch else "steps",
        eval_steps=None if by_epoch else cfg.eval_steps, save_strategy="no", logging_steps=cfg.logging_steps,
        logging_first_step=True, report_to=[], dataloader_num_workers=0,
    )
    cls = weighted_trainer_class() if cfg.task == "classification" else Trainer
    kw = {"class_weights": weights} if cfg.task == "classification" else {}
    trainer = cls(model=model, args=args, train_dataset=datasets.Dataset.from_list(train_f),
                  eval_dataset=datasets.Dataset.from_list(val_f), data_collator=DataCollatorWithPadding(tok),
                  processing_class=tok, callbacks=[session.callback()], **kw)
    return trainer, tok, splits, labels


def held_out(cfg: EncoderRunConfig, splits: dict) -> tuple[str, list[dict]]:
    """(split, rows) scored at the end: the test split, else validation (validation when eval_split says so)."""
    split = "test" if cfg.eval_split == "test" and splits.get("test") else "validation"
    rows = splits.get(split) or []
    return split, rows[:cfg.eval_rows] if cfg.eval_rows else rows


def evaluate_split(cfg: EncoderRunConfig, model_dir: Path, rows: list[dict], labels: list[str],
                   progress=None) -> tuple[dict, list[dict]]:
    """Metrics and per-row predictions of the saved model on rows (labs.evaluation.metrics: the one place).
    The model is read back from disk, as `python -m labs.evaluation` reads it: the trained one in memory
    still runs under the Trainer's autocast wrapper, whose bf16 rounding flipped 1 of 379 drugs-real answers.
    progress(done, total, unit) after each batch (QA counts the windows of the contexts)."""
    from labs.encoder.data import answers_of
    from labs.encoder.infer import Trained, load, predict_labels, predict_spans
    from labs.evaluation.metrics import confusion, per_example, score, shown
    saved = load(str(model_dir))
    m = Trained(saved.model, saved.tokenizer, cfg.task, labels,
                {"max_length": cfg.max_length, "doc_stride": cfg.doc_stride,
                 "max_answer_length": cfg.max_answer_length, "n_best": cfg.n_best})
    if cfg.task == "classification":
        preds = predict_labels(m, [str(r["text"]) for r in rows],
                               progress=progress and (lambda done, total: progress(done, total, "rows")))
        refs = [str(r["label"]).strip() for r in rows]
        metrics = {k: round(v, 4) for k, v in shown(score("classification", preds, refs, labels)).items()}
        metrics["confusion"] = confusion(preds, refs, labels)
        inputs = [str(r["text"]) for r in rows]
    else:
        preds = predict_spans(m, rows, progress=progress and (lambda done, total: progress(done, total, "windows")))
        refs = [answers_of(r)[0] for r in rows]
        metrics = {k: round(v, 4) for k, v in score("qa", preds, refs).items()}
        inputs = [f"{r['question']} | {r['context']}" for r in rows]
    metrics["n"] = len(rows)
    out = [{"input": x, "reference": ref, "prediction": p, **per_example(cfg.task, p, ref, labels)}
           for x, ref, p in zip(inputs, refs, preds)]
    return metrics, out


def train(cfg: EncoderRunConfig, session, splits: dict | None = None, labels: list[str] | None = None) -> dict:
    """Run one encoder job inside a runs.recipe_session (or labs.sft.recipe.NullSession); returns the summary.
    `splits`/`labels` given: those rows instead of cfg.dataset's."""
    trainer, tok, splits, labels = build_trainer(cfg, session, splits, labels)
    run_dir = Path(session.dir)

    # ---- Train
    t0, cpu0 = time.perf_counter(), time.process_time()
    result = trainer.train()
    summary = {"step": trainer.state.global_step, "train_seconds": round(time.perf_counter() - t0, 1),
               "train_cpu_seconds": round(time.process_time() - cpu0, 1), "train_loss_final": result.training_loss}

    # ---- Save: LoRA merged into the weights, so model/ loads like any fine-tuned encoder
    model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    if cfg.method == "lora":
        model = model.merge_and_unload()
    out = run_dir / "model"
    if session.is_main:
        session.phase("saving")
        model.save_pretrained(str(out))
        tok.save_pretrained(str(out))
        (out / "lab_source.json").write_text(json.dumps({"kind": "local", "recipe": "encoder", "task": cfg.task,
                                                         "encoder": cfg.encoder}))
        summary["saved_to"] = str(out)

    # ---- Held-out scores (the test split, else validation; validation when eval_split says so)
    split, rows = held_out(cfg, splits)
    if session.is_main and rows:
        t1 = time.perf_counter()
        session.phase("evaluating", 0, len(rows), unit="rows", detail="reading the saved model back")
        metrics, preds = evaluate_split(cfg, out, rows, labels, progress=lambda done, total, unit: session.phase(
            "evaluating", done, total, unit=unit, detail=f"{split} split"))
        metrics["split"] = split
        metrics["seconds"] = round(time.perf_counter() - t1, 1)
        (run_dir / "eval_metrics.json").write_text(json.dumps(metrics, indent=1))
        with open(run_dir / "eval_predictions.jsonl", "w", encoding="utf-8") as f:
            for p in preds:
                f.write(json.dumps(p, ensure_ascii=False) + "\n")
        summary.update({f"test/{k}": v for k, v in metrics.items() if not isinstance(v, dict)})
    session.log({**summary, "final": True})
    return summary


def main(argv: list[str] | None = None) -> int:
    from labs.recipe import recipe_main
    return recipe_main(EncoderRunConfig, train, argv, description="Fine-tune an encoder: sequence classification "
                       "or extractive QA.", before=lambda cfg: load_splits(cfg.dataset, cfg.task, cfg.seed))
