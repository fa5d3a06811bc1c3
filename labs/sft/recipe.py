"""SFT recipe: LoRA, full fine-tuning, or the top N layers, with TRL's SFTTrainer.

    python -m labs.sft --config run.yaml                        # one process (CPU or one GPU)
    python -m labs.sft --preset instruction --out run.yaml      # write a preset config to edit
    torchrun --nproc_per_node 2 -m labs.sft --config run.yaml   # data parallel (gloo on CPU, NCCL on GPUs)
    accelerate launch --num_processes 8 -m labs.sft --config run.yaml   # several GPUs (FSDP/DeepSpeed via accelerate config)

The config (labs/sft/config.py) is checked before anything loads. Rows are tokenized here, once, by
the same function both mask previews show (labs.data.mask.tokenize_row): the prompt is masked unless
completion_only is off, and the answer's end-of-turn token is always trained (SmolLM2's pad token
equals its EOS, so a collator that masked pads would hide it). Output in the run directory:
checkpoints/ (best kept), adapter/ (LoRA) or model/ (full, freeze), eval_metrics.json and
eval_predictions.jsonl (held-out answers by generation), metrics.jsonl rows with eval generations.
Speed defaults (benchmarks/sft_throughput.py measures them): no gradient checkpointing at this
size, padding-free batches, bf16 autocast on CPUs where bf16 matmuls measure faster than fp32
(labs.flops.cpu_prefers_bf16), else fp32.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from labs.sft.config import ConfigError, SFTRunConfig
from labs.data.mask import prompt_of, prompt_text, reference, tokenize_row, truncation_report
from labs.sft.data import data_hash, load_splits

N_WATCH = 3  # validation prompts answered at every evaluation, so the user sees the model change


# --------------------------------------------------------------------------- precision & model
def resolve_precision(cfg: SFTRunConfig, device) -> dict:
    """Weights dtype and autocast for the Trainer: {'dtype', 'bf16', 'fp16', 'label'}."""
    import torch
    from labs import flops
    kind = getattr(device, "type", str(device))
    p = cfg.precision
    if kind == "cuda":
        if p == "auto":
            p = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        # LoRA: the frozen base in half precision (adapters stay fp32); full: fp32 master weights + autocast
        half = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(p)
        dtype = half if (half is not None and cfg.method == "lora") else torch.float32
        return {"dtype": dtype, "bf16": p == "bf16", "fp16": p == "fp16", "label": p}
    if p == "auto":  # CPU/MPS: fp32 weights; bf16 autocast only where bf16 matmuls measure faster on this CPU
        p = "bf16" if kind == "cpu" and flops.cpu_prefers_bf16() else "fp32"
    if p == "fp16":
        raise ConfigError("precision: fp16 needs a CUDA GPU; use bf16 or fp32 on this device")
    return {"dtype": torch.float32, "bf16": p == "bf16", "fp16": False, "label": f"{p} (fp32 weights)"
            if p == "bf16" else "fp32"}


def load_model(cfg: SFTRunConfig, device, prec: dict):
    """Base model + tokenizer, with the method applied (LoRA adapters, or frozen layers)."""
    from transformers import AutoModelForCausalLM
    from labs import models
    source = models.resolve(cfg.model)
    if source.kind == "offline-bundle" and not Path(source.path, "model.safetensors").exists():
        source = models.offline_bundle()
    base = source.base if source.kind == "adapter" else source
    model = AutoModelForCausalLM.from_pretrained(base.path, dtype=prec["dtype"],
                                                 revision=base.revision if base.kind == "hub" else None)
    if source.kind == "adapter":  # continue from a fine-tuned adapter: merge it, then train anew
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, source.path).merge_and_unload()
    tok = models.load_tokenizer(source=source)
    model.config.use_cache = False
    from labs.sft import trainer as sft_trainer
    if cfg.row_attention and (cfg.padding_free or cfg.packing) and sft_trainer.wanted(device):
        sft_trainer.use_row_attention(model)  # attention within each row of a padding-free batch (sft_trainer.py)
    if cfg.method == "lora":
        from peft import LoraConfig, get_peft_model
        lcfg = LoraConfig(**cfg.lora_config_kwargs(), use_rslora=cfg.use_rslora, use_dora=cfg.use_dora,
                          bias="none", task_type="CAUSAL_LM")
        try:
            model = get_peft_model(model, lcfg)
        except ValueError as e:
            raise ConfigError(f"lora_targets: {e} (this model's linear layers: {', '.join(linear_layers(model))})") \
                from None
    elif cfg.method == "freeze":
        layers = _decoder_layers(model)
        if cfg.freeze_top_n > len(layers):
            raise ConfigError(f"freeze_top_n: the model has {len(layers)} layers, got {cfg.freeze_top_n}")
        for p in model.parameters():
            p.requires_grad_(False)
        for layer in layers[-cfg.freeze_top_n:]:
            for p in layer.parameters():
                p.requires_grad_(True)
        norm = getattr(getattr(model, "model", model), "norm", None)
        if norm is not None:
            for p in norm.parameters():
                p.requires_grad_(True)
    if cfg.gradient_checkpointing and cfg.method != "full":
        model.enable_input_require_grads()  # checkpointed blocks need an input that requires grad
    return model, tok, source


def _decoder_layers(model):
    inner = getattr(model, "model", model)
    layers = getattr(inner, "layers", None)
    if layers is None:
        raise ConfigError("method: 'freeze' needs a decoder with model.layers (Llama-style)")
    return list(layers)


def linear_layers(model) -> list[str]:
    """Names of the linear layers LoRA can target (lm_head excluded)."""
    import torch
    names = {n.split(".")[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    return sorted(names - {"lm_head"})


def torch_threads() -> int:
    import torch
    return torch.get_num_threads()


def count_params(model) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total


# --------------------------------------------------------------------------- callbacks
def _callbacks(cfg, session, tok, watch_rows, t_start):
    from transformers import TrainerCallback

    class EvalGenerations(TrainerCallback):
        """At every evaluation: answers to a few fixed validation prompts, logged next to the loss."""

        def on_evaluate(self, args, state, control, model=None, **kw):
            if not session.is_main or model is None or not watch_rows:
                return
            from labs.generate import greedy
            answers = greedy(model, tok, [prompt_of(r) for r in watch_rows], max_new_tokens=48)
            session.log({"step": state.global_step, "eval_generations": [
                {"prompt": prompt_text(r), "reference": reference(r), "answer": a}
                for r, a in zip(watch_rows, answers)]})

    class TimeLimit(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if cfg.time_limit_min and time.perf_counter() - t_start[0] > cfg.time_limit_min * 60:
                control.should_training_stop = True
            return control

    return [EvalGenerations(), TimeLimit()]


# --------------------------------------------------------------------------- the recipe
class NullSession:
    """A session without a run directory's bookkeeping, for using the recipe from code or a benchmark:
    `build_trainer(cfg, NullSession(out_dir))`. The phases reported are kept in order in `phases`."""

    def __init__(self, out_dir):
        self.dir, self.resume_checkpoint, self.is_main = Path(out_dir), None, int(os.environ.get("RANK", "0")) == 0
        self.rows: list[dict] = []
        self.recorded: dict = {}
        self.planned: list = []
        self.phases: list[tuple] = []  # (name, done, total) of every report

    def log(self, row):
        self.rows.append(row)

    def record(self, **fields):
        self.recorded.update(fields)

    def plan(self, *items):
        self.planned = list(items)

    def phase(self, name, done=None, total=None, **kw):
        self.phases.append((name, done, total))

    def progress(self, step, max_steps, eta_s=None, phase="training", **kw):
        self.phase(phase, step, max_steps)

    def should_stop(self):
        return False

    def callback(self, phase: str = "training"):
        from transformers import TrainerCallback
        return TrainerCallback()


def held_out_rows(cfg: SFTRunConfig, splits: dict) -> list[dict]:
    """The rows answered by generation at the end: the test split (else validation), text rows left out."""
    return [r for r in (splits.get("test") or splits["validation"]) if "text" not in r][:cfg.eval_rows]


def evaluation_plan(cfg: SFTRunConfig, splits: dict) -> list[tuple]:
    """The held-out evaluation as a phase of the plan: answers to generate (rows x models), or nothing."""
    n = len(held_out_rows(cfg, splits)) if cfg.eval_rows else 0
    if not n:
        return []
    both = cfg.method == "lora" and cfg.eval_base
    return [("evaluating", n * (2 if both else 1), "answers",
             f"{n} held-out rows x {'fine-tuned and base model' if both else 'fine-tuned model'}")]


def build_trainer(cfg: SFTRunConfig, session, splits: dict | None = None):
    """Data, model and SFTTrainer for `cfg`, in dependency order; returns (trainer, tokenizer, splits, source)."""
    import datasets
    import torch
    from transformers import EarlyStoppingCallback
    from trl import SFTConfig
    from labs import models
    from labs.sft.trainer import AnswerHeadSFTTrainer, wanted

    world = int(os.environ.get("WORLD_SIZE", "1"))
    run_dir = Path(session.dir)

    # ---- Data: rows -> prompt/completion -> token ids + labels (prompt masked unless completion_only is off)
    if not splits:
        session.phase("loading data")
        splits = load_splits(cfg.dataset, cfg.task_filter(), cfg.max_train_rows)
    to_tokenize = splits["train"] + splits["validation"][:cfg.max_eval_rows or None]
    # the phases ahead, as the monitor shows them; the training's steps are known exactly when it begins
    session.plan("loading model", ("tokenizing", len(to_tokenize), "rows"), ("training", cfg.max_steps or None,
                 "steps"), "saving", *evaluation_plan(cfg, splits), *(["pushing"] if cfg.push_to_hub else []))

    # ---- Model (device before precision: autocast depends on the device)
    session.phase("loading model")
    device = torch.device("cpu") if cfg.device == "cpu" else models.pick_device(cfg.device)
    prec = resolve_precision(cfg, device)
    model, tok, source = load_model(cfg, device, prec)
    trainable, total = count_params(model)

    session.phase("tokenizing", 0, len(to_tokenize), unit="rows")
    tokenized_rows = []
    for r in to_tokenize:
        tokenized_rows.append(tokenize_row(tok, r, cfg.max_length, cfg.completion_only))
        session.phase("tokenizing", len(tokenized_rows), len(to_tokenize), unit="rows")
    train_rows, val_rows = tokenized_rows[:len(splits["train"])], tokenized_rows[len(splits["train"]):]
    cut = truncation_report(train_rows, cfg.max_length)
    if cut.get("warning"):
        print(f"warning: {cut['warning']}", flush=True)
    if cut["rows"] and cut["no_trained_token"] == cut["rows"]:
        raise ConfigError(f"max_length: {cut['max_length']} cuts the answer of every training row; nothing would "
                          f"be trained - raise it")

    def tokenized(rows):
        return datasets.Dataset.from_list([{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows])
    train_ds, eval_ds = tokenized(train_rows), tokenized(val_rows)
    session.record(model_source=source.record(), data_hash=data_hash(splits), precision=prec["label"],
                   device=str(device), trainable_params=trainable, total_params=total,
                   rows={k: len(v) for k, v in splits.items()}, truncation=cut,
                   effective_batch=cfg.effective_batch(world), speed={"padding_free": cfg.padding_free,
                   "attention": model.config._attn_implementation,
                   "packing": cfg.packing, "gradient_checkpointing": cfg.gradient_checkpointing})

    # ---- Trainer
    # 8 rows * 1 accum * ~110 tokens = ~900 tokens per step on the bundled set
    by_epoch = cfg.eval_steps == 0
    args = SFTConfig(
        output_dir=str(run_dir / "checkpoints"), use_cpu=device.type == "cpu",
        learning_rate=cfg.learning_rate, lr_scheduler_type=cfg.lr_scheduler, warmup_steps=cfg.warmup,
        weight_decay=cfg.weight_decay, num_train_epochs=cfg.num_epochs, max_steps=cfg.max_steps or -1,
        per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        # rows are tokenized and truncated above; padding-free batches refuse a max_length in TRL 1.16
        max_length=None if (cfg.padding_free and not cfg.packing) else cfg.max_length,
        packing=cfg.packing, padding_free=cfg.padding_free, completion_only_loss=False,
        gradient_checkpointing=cfg.gradient_checkpointing, neftune_noise_alpha=cfg.neftune_alpha or None,
        seed=cfg.seed, data_seed=cfg.seed, bf16=prec["bf16"], fp16=prec["fp16"],
        eval_strategy="epoch" if by_epoch else "steps", eval_steps=None if by_epoch else cfg.eval_steps,
        save_strategy="epoch" if by_epoch else "steps", save_steps=None if by_epoch else cfg.eval_steps,
        save_total_limit=cfg.save_total_limit, load_best_model_at_end=True,
        metric_for_best_model="eval_loss", greater_is_better=False,
        logging_steps=cfg.logging_steps, logging_first_step=True, report_to=[],
        include_num_input_tokens_seen="non_padding", dataloader_num_workers=0,
        ddp_backend="gloo" if device.type == "cpu" and world > 1 else None,
        ddp_find_unused_parameters=False if world > 1 else None,
    )
    t_start = session.t_start = [time.perf_counter()]
    watch = [r for r in splits["validation"] if "text" not in r][:N_WATCH]  # text rows have no prompt to answer
    callbacks = [session.callback(), *_callbacks(cfg, session, tok, watch, t_start)]
    if cfg.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    # CUDA: TRL's fused Triton head already scores only trained positions; elsewhere ours does (sft_trainer.py)
    trainer = AnswerHeadSFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                                   processing_class=tok, callbacks=callbacks,
                                   answer_head=cfg.answer_head and wanted(device))

    return trainer, tok, splits, source


def train(cfg: SFTRunConfig, session) -> dict:
    """Run one SFT job inside a runs.recipe_session (or a NullSession); returns the final metrics."""
    trainer, tok, splits, source = build_trainer(cfg, session)
    run_dir, world, t_start = Path(session.dir), int(os.environ.get("WORLD_SIZE", "1")), session.t_start

    # ---- Train
    cpu0 = time.process_time()  # CPU seconds too: on a shared machine wall time overstates the cost
    t_start[0] = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=session.resume_checkpoint)
    train_s = time.perf_counter() - t_start[0]
    summary = {"step": trainer.state.global_step, "train_seconds": round(train_s, 1),
               "train_cpu_seconds": round(time.process_time() - cpu0, 1), "threads": torch_threads(),
               "train_loss_final": result.training_loss, "world_size": world,
               "best_checkpoint": trainer.state.best_model_checkpoint,
               "best_eval_loss": trainer.state.best_metric}

    # ---- Save (the best checkpoint is loaded back first: load_best_model_at_end)
    if session.is_main:
        session.phase("saving")
        out = run_dir / ("adapter" if cfg.method == "lora" else "model")
        trainer.save_model(str(out))
        tok.save_pretrained(str(out))
        if cfg.method != "lora":  # a full model records where it came from, for the model card
            (out / "lab_source.json").write_text(json.dumps({"kind": "local", "base": source.record()}))
        summary["saved_to"] = str(out)

    # ---- Held-out evaluation by generation (test split, else validation), before vs after for LoRA
    rows = held_out_rows(cfg, splits) if cfg.eval_rows else []
    if session.is_main and rows:
        from labs.evaluation.metrics import evaluate_rows
        m = trainer.model
        answers = evaluation_plan(cfg, splits)[0][1]  # rows x models

        def report(offset, detail):  # the phase's count goes on from the answers already made
            session.phase("evaluating", offset, answers, unit="answers", detail=detail)
            return lambda done, n: session.phase("evaluating", offset + done, answers, unit="answers", detail=detail)
        metrics, preds = evaluate_rows(m, tok, rows, cfg.metric(), progress=report(0, "fine-tuned model"))
        if cfg.method == "lora" and cfg.eval_base:
            with m.disable_adapter():
                base_metrics, _ = evaluate_rows(m, tok, rows, cfg.metric(),
                                                progress=report(len(rows), "base model (adapter off)"))
            metrics.update({f"base/{k}": v for k, v in base_metrics.items() if k != "n"})
        (run_dir / "eval_metrics.json").write_text(json.dumps(metrics, indent=1))
        with open(run_dir / "eval_predictions.jsonl", "w") as f:
            for p in preds:
                f.write(json.dumps(p, ensure_ascii=False) + "\n")
        summary.update({f"test/{k}": v for k, v in metrics.items()})
    session.log({**summary, "final": True})

    if session.is_main and cfg.push_to_hub:
        session.phase("pushing")
        from labs.sft.export import export
        export(run_dir, push_to_hub=cfg.push_to_hub)
    return summary


def main(argv: list[str] | None = None) -> int:
    from labs.recipe import recipe_main
    return recipe_main(SFTRunConfig, train, argv, description="Supervised fine-tuning (LoRA, full, freeze).")


if __name__ == "__main__":
    sys.exit(main())
