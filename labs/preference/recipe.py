"""Preference recipe: DPO (TRL's DPOTrainer) or ORPO (trl.experimental.orpo) with LoRA, on the labels people
made in the labeler or on a preference dataset.

    python -m labs.preference --config run.yaml                 # through the run engine (a run directory)
    python -m labs.preference --preset dpo --out run.yaml       # write a preset config to edit

    from labs.preference.recipe import train
    from labs.sft.recipe import NullSession
    summary = train(preset("dpo", data="store"), NullSession("/tmp/pref-run"))     # from code, no run engine

The config (labs/preference/config.py) is checked before anything loads. Rows are {prompt, chosen,
rejected} chat lists (labels.to_dpo for the store, labs.data.to_preference for files and saved
datasets). LoRA goes in as a peft_config, so DPO's reference is the same weights with the adapter
switched off. Output in the run directory: checkpoints/, adapter/, metrics.jsonl (TRL's rewards/chosen,
rewards/rejected, rewards/margins, rewards/accuracies, logps/chosen, logps/rejected at every log),
eval_metrics.json (reward and log-odds accuracy on the pairs, starting model vs trained),
before_after.jsonl (greedy answers to held-out bundled prompts) and odds.jsonl (ORPO's log odds ratio
per pair, before and after).

Speed (benchmarks/dpo_throughput.py measures each against plain TRL): no gradient checkpointing at
this size; the SFT recipe's precision rule (bf16 autocast on CPUs where it measures faster); DPO's reference
log-probabilities computed once before training (`precompute_ref`), not at every step of every
epoch; and off CUDA, only answer positions through the LM head (`completion_head`: TRL scores every
position of the padded batch there, prompt and padding included, and throws those away).
"""
from __future__ import annotations

import contextlib
import json
import math
import random
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from labs.preference.config import ConfigError, PreferenceRunConfig

MIN_HELD_OUT = 4   # held-out pairs needed before their accuracy is reported (fewer stay in training)
MAX_SCORED = 128   # pairs per split scored before/after at the end (2 x 2 forward passes each)
KEYS = ("prompt", "chosen", "rejected")


# --------------------------------------------------------------------------- data
def load_rows(cfg: PreferenceRunConfig) -> list[dict]:
    """Preference rows {prompt, chosen, rejected} from the store, a saved dataset or a data file."""
    batches = cfg.store_batches()
    if batches is not None:
        rows = store_export(cfg).rows
        if len(rows) < 2:
            raise ConfigError(f"data: the store gives {len(rows)} preference pair(s); label at least 2 pairs with A "
                              f"or B (ties and 'both bad' give no pair)")
        return [{k: r[k] for k in KEYS} for r in rows]
    from labs import data
    p = Path(cfg.data).expanduser()
    try:
        if p.suffix in data.EXTENSIONS or p.is_file():
            if not p.is_file():
                raise ConfigError(f"data: file {cfg.data} not found")
            raw = data.read_rows(p)
        else:
            try:
                saved = data.load_saved(cfg.data)
            except data.DataError as e:
                raise ConfigError(f"data: {cfg.data!r} is not 'store', 'store:BATCH' or a data file, and {e}") \
                    from None
            raw = [dict(r) for r in saved["train" if "train" in saved else next(iter(saved))]]
        rows = data.to_preference(raw)
    except data.DataError as e:
        raise ConfigError(f"data: {e}") from None
    if len(rows) < 2:
        raise ConfigError(f"data: '{cfg.data}' gives {len(rows)} usable preference pair(s); at least 2 are needed")
    return [{k: r[k] for k in KEYS} for r in rows]


def store_export(cfg: PreferenceRunConfig):
    """The store's labels as DPO rows for `cfg.data` ('store': every batch but the blind A/B passes, whose
    held-out prompts are the test; 'store:B1,B2': those batches), with what was left out (labels.Export)."""
    from labs import store
    from labs.preference import labels
    batches = cfg.store_batches()
    for b in batches or []:
        if not store.pairs(b):
            names = ", ".join(x["batch"] for x in store.batches()) or "none yet"
            raise ConfigError(f"data: no batch {b!r} in the store (batches: {names})")
    return labels.export("dpo", batches or None)


def optimizer_steps(cfg: PreferenceRunConfig, pairs: int) -> int:
    """The optimizer steps a run makes on `pairs` training pairs, as transformers' Trainer counts them: max_steps
    when set, else ceil(epochs x ceil(batches per epoch / grad_accum)), batches = ceil(pairs / batch_size)."""
    if cfg.max_steps > 0:
        return cfg.max_steps
    batches = -(-pairs // cfg.batch_size)
    return math.ceil(cfg.num_epochs * max(-(-batches // cfg.grad_accum), 1))


def split_rows(rows: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(train, held-out): a seeded shuffle; held-out only when it gives at least MIN_HELD_OUT pairs."""
    n_held = round(len(rows) * fraction)
    if n_held < MIN_HELD_OUT or len(rows) - n_held < 2:
        return list(rows), []
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    held = set(order[:n_held])
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


# --------------------------------------------------------------------------- model and speed
def precision(cfg: PreferenceRunConfig, device) -> dict:
    """The SFT recipe's rule (LoRA: a half-precision frozen base on CUDA; CPU: bf16 autocast where native)."""
    from labs.sft.recipe import resolve_precision
    return resolve_precision(SimpleNamespace(precision=cfg.precision, method="lora"), device)


def load_model(cfg: PreferenceRunConfig, prec: dict):
    """The starting model (an adapter run is merged into its base first) and its tokenizer."""
    from transformers import AutoModelForCausalLM
    from labs import models
    source = models.resolve(cfg.model)
    if source.kind == "offline-bundle" and not Path(source.path, "model.safetensors").exists():
        source = models.offline_bundle()
    base = source.base if source.kind == "adapter" else source
    model = AutoModelForCausalLM.from_pretrained(base.path, dtype=prec["dtype"],
                                                 revision=base.revision if base.kind == "hub" else None)
    if source.kind == "adapter":  # continue from a fine-tuned adapter: merge it, then train a new one
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, source.path).merge_and_unload()
    model.config.use_cache = False
    return model, models.load_tokenizer(source=source), source


@contextlib.contextmanager
def completion_head(on: bool = True):
    """While on: TRL's fused LM head projects only the positions whose next token is scored (the answer),
    as it already does on CUDA (trl.trainer.utils decides with _use_triton; the CPU tiles take any count)."""
    import trl.trainer.utils as tu
    if not on or not hasattr(tu, "_use_triton"):
        yield
        return
    original = tu._use_triton
    tu._use_triton = lambda device: True
    try:
        yield
    finally:
        tu._use_triton = original


def _lab_dpo_trainer():
    from trl import DPOTrainer

    class LabDPOTrainer(DPOTrainer):
        """TRL's DPOTrainer; `completion_head=True` scores only answer positions (same loss, see completion_head)."""

        def __init__(self, *args, completion_head: bool = False, **kwargs):
            self.completion_head = completion_head  # read by the reference pass inside DPOTrainer.__init__
            super().__init__(*args, **kwargs)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            with completion_head(self.completion_head):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

        def compute_ref_log_probs(self, model, inputs):
            with completion_head(self.completion_head):
                return super().compute_ref_log_probs(model, inputs)

    return LabDPOTrainer


def build_trainer(cfg: PreferenceRunConfig, session, rows: list[dict] | None = None):
    """Data, model and trainer for `cfg`, in dependency order; returns (trainer, tokenizer, splits, source)."""
    import datasets
    import torch
    from peft import LoraConfig
    from labs import models
    from labs.sft.data import data_hash
    from labs.sft.trainer import wanted

    run_dir = Path(session.dir)
    # ---- Data
    if rows is None:
        session.phase("loading data")
        rows = load_rows(cfg)
    train_rows, held = split_rows(rows, cfg.eval_fraction, cfg.seed)
    splits = {"train": train_rows, "held_out": held}
    # the phases ahead, as the monitor shows them (TRL tokenizes the pairs inside the trainer: not counted)
    session.plan("loading model", "tokenizing", ("training", optimizer_steps(cfg, len(train_rows)), "steps"), "saving",
                 *evaluation_plan(cfg, splits))

    # ---- Model (device before precision: autocast depends on the device)
    session.phase("loading model")
    device = torch.device("cpu") if cfg.device == "cpu" else models.pick_device(cfg.device)
    prec = precision(cfg, device)
    model, tok, source = load_model(cfg, prec)
    lora = LoraConfig(**cfg.lora_config_kwargs(), bias="none", task_type="CAUSAL_LM")

    # ---- Trainer: 4 pairs * 2 sequences * ~150 tokens = ~1,200 tokens per step on labeler pairs
    common = dict(
        output_dir=str(run_dir / "checkpoints"), use_cpu=device.type == "cpu", learning_rate=cfg.learning_rate,
        lr_scheduler_type="cosine", warmup_steps=0.1, num_train_epochs=cfg.num_epochs, max_steps=cfg.max_steps or -1,
        per_device_train_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
        max_length=cfg.max_length, gradient_checkpointing=False, bf16=prec["bf16"], fp16=prec["fp16"],
        seed=cfg.seed, data_seed=cfg.seed, save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=2,
        logging_steps=cfg.logging_steps, logging_first_step=True, report_to=[], dataloader_num_workers=0)
    callbacks = [session.callback()]
    session.phase("tokenizing", detail=f"{len(train_rows)} pairs, in the trainer")
    train_ds = datasets.Dataset.from_list(train_rows)
    speed = {"gradient_checkpointing": False}
    try:
        if cfg.method == "dpo":
            from trl import DPOConfig
            losses, weights = [cfg.loss_type], [1.0]
            if cfg.sft_weight > 0:  # TRL's "sft" term: mean NLL of the chosen answers' tokens
                losses, weights = losses + ["sft"], weights + [cfg.sft_weight]
            args = DPOConfig(**common, beta=cfg.beta, loss_type=losses, loss_weights=weights,
                             precompute_ref_log_probs=cfg.precompute_ref,
                             precompute_ref_batch_size=2 * cfg.batch_size)  # no gradients: twice the batch fits
            head = cfg.completion_head and wanted(device)
            speed.update(precompute_ref=cfg.precompute_ref, completion_head=head)
            trainer = _lab_dpo_trainer()(model=model, args=args, train_dataset=train_ds, processing_class=tok,
                                         peft_config=lora, callbacks=callbacks, completion_head=head)
        else:
            from trl.experimental.orpo import ORPOConfig, ORPOTrainer
            args = ORPOConfig(**common, beta=cfg.beta, remove_unused_columns=False)
            trainer = ORPOTrainer(model=model, args=args, train_dataset=train_ds, processing_class=tok,
                                  peft_config=lora, callbacks=callbacks)
    except ValueError as e:
        if "target" in str(e).lower():
            raise ConfigError(f"lora_targets: {e}") from None
        raise
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in trainer.model.parameters())
    session.record(model_source=source.record(), data_hash=data_hash(splits), precision=prec["label"],
                   device=str(device), trainable_params=trainable, total_params=total, method=cfg.method,
                   rows={k: len(v) for k, v in splits.items()}, effective_batch=cfg.effective_batch(), speed=speed)
    return trainer, tok, splits, source


# --------------------------------------------------------------------------- before / after
def pair_metrics(before: list[dict], after: list[dict], method: str, beta: float) -> dict:
    """Reward accuracy and margin as TRL logs them (DPO: beta * log-ratio to the starting model, so 0 for
    every pair before training; ORPO: beta * mean token log-prob), and ORPO's log-odds accuracy."""
    def mean(xs):
        xs = list(xs)
        return sum(xs) / len(xs) if xs else None

    out = {"pairs": len(before)}
    for when, scores in (("before", before), ("after", after)):
        if method == "dpo":
            rc = [beta * (s["chosen_logp"] - b["chosen_logp"]) for s, b in zip(scores, before)]
            rr = [beta * (s["rejected_logp"] - b["rejected_logp"]) for s, b in zip(scores, before)]
        else:
            rc = [beta * s["chosen_mean_logp"] for s in scores]
            rr = [beta * s["rejected_mean_logp"] for s in scores]
        out[when] = {"reward_accuracy": mean(c > r for c, r in zip(rc, rr)),
                     "reward_margin": mean(c - r for c, r in zip(rc, rr)),
                     "log_odds_accuracy": mean(s["log_odds_ratio"] > 0 for s in scores),
                     "log_odds_ratio": mean(s["log_odds_ratio"] for s in scores),
                     "logps_chosen": mean(s["chosen_logp"] for s in scores),
                     "logps_rejected": mean(s["rejected_logp"] for s in scores)}
    return out


def words(text: str) -> int:
    return len(text.split())


def eval_prompts(cfg: PreferenceRunConfig) -> list:
    """The held-out bundled prompts answered before and after (none when eval_prompts is 0)."""
    from labs.preference import pairs
    return pairs.load_prompts("prompts", "held_out")[:cfg.eval_prompts] if cfg.eval_prompts else []


def evaluation_plan(cfg: PreferenceRunConfig, splits: dict) -> list[tuple]:
    """The evaluation as a phase of the plan: each scored pair and each prompt, once per model (starting,
    trained)."""
    pairs_n = sum(min(len(rows), MAX_SCORED) for rows in splits.values())
    prompts_n = len(eval_prompts(cfg))
    if not pairs_n + prompts_n:
        return []
    return [("evaluating", 2 * (pairs_n + prompts_n), "items",
             f"{pairs_n} pairs scored and {prompts_n} prompts answered, by the starting and the trained model")]


def evaluate(model, tok, cfg: PreferenceRunConfig, splits: dict, run_dir: Path, progress=None) -> dict:
    """Scores of the labeled pairs and greedy answers to held-out prompts, with the adapter off (the
    starting model) and on; writes eval_metrics.json, odds.jsonl and before_after.jsonl.
    progress(done, total, detail) after each pass over a split's pairs and each batch of prompts."""
    from labs import generate, store
    from labs.preference import odds
    metrics: dict = {"method": cfg.method, "beta": cfg.beta}
    plan = evaluation_plan(cfg, splits)
    total, done = (plan[0][1] if plan else 0), [0]

    def advanced(n, detail):
        done[0] += n
        if progress:
            progress(done[0], total, detail)
    if progress and total:
        progress(0, total, "starting model")
    with open(run_dir / "odds.jsonl", "w") as fh:
        for split, rows in splits.items():
            rows = rows[:MAX_SCORED]
            if not rows:
                continue
            with model.disable_adapter():
                before = odds.pair_scores(model, tok, rows, max_length=cfg.max_length)
            advanced(len(rows), f"{split} pairs, starting model")
            after = odds.pair_scores(model, tok, rows, max_length=cfg.max_length)
            advanced(len(rows), f"{split} pairs, trained model")
            metrics[split] = pair_metrics(before, after, cfg.method, cfg.beta)
            for r, b, a in zip(rows, before, after):
                text = (lambda m: m[-1]["content"] if isinstance(m, list) else str(m))
                fh.write(json.dumps({"split": split, "prompt": store.prompt_text(r["prompt"])[:300],
                                     "chosen": text(r["chosen"])[:500], "rejected": text(r["rejected"])[:500],
                                     "log_odds_before": b["log_odds_ratio"], "log_odds_after": a["log_odds_ratio"],
                                     "chosen_mean_logp_before": b["chosen_mean_logp"],
                                     "chosen_mean_logp_after": a["chosen_mean_logp"],
                                     "rejected_mean_logp_before": b["rejected_mean_logp"],
                                     "rejected_mean_logp_after": a["rejected_mean_logp"]}, ensure_ascii=False) + "\n")
    prompts = eval_prompts(cfg)
    if prompts:
        kw = dict(max_new_tokens=cfg.max_new_tokens, batch_size=16)
        answers = {}
        for adapter, who in ((False, "starting model"), (True, "trained model")):
            answers[adapter] = []
            for i in range(0, len(prompts), 16):  # sample's own batches of 16: the answers are the same
                answers[adapter] += [c[0] for c in generate.sample(model, tok, prompts[i:i + 16], adapter=adapter,
                                                                   **kw)]
                advanced(len(prompts[i:i + 16]), f"prompts, {who}")
        before, after = answers[False], answers[True]
        with open(run_dir / "before_after.jsonl", "w") as fh:
            for p, b, a in zip(prompts, before, after):
                fh.write(json.dumps({"prompt": store.prompt_text(p), "before": b, "after": a,
                                     "before_words": words(b), "after_words": words(a)}, ensure_ascii=False) + "\n")
        metrics["generations"] = {"prompts": len(prompts), "max_new_tokens": cfg.max_new_tokens,
                                  "before_mean_words": sum(map(words, before)) / len(before),
                                  "after_mean_words": sum(map(words, after)) / len(after)}
    (run_dir / "eval_metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics


# --------------------------------------------------------------------------- the recipe
def train(cfg: PreferenceRunConfig, session, rows: list[dict] | None = None) -> dict:
    """Run one DPO/ORPO job inside a runs.recipe_session (or a NullSession); returns the final metrics."""
    trainer, tok, splits, source = build_trainer(cfg, session, rows)
    run_dir = Path(session.dir)

    # ---- Train
    cpu0, t0 = time.process_time(), time.perf_counter()  # CPU seconds too: wall time overstates on a shared machine
    result = trainer.train(resume_from_checkpoint=session.resume_checkpoint)
    summary = {"step": trainer.state.global_step, "train_seconds": round(time.perf_counter() - t0, 1),
               "train_cpu_seconds": round(time.process_time() - cpu0, 1), "train_loss_final": result.training_loss,
               "pairs": len(splits["train"]), "held_out_pairs": len(splits["held_out"])}

    # ---- Save, then measure the starting model (adapter off) against the trained one
    if session.is_main:
        session.phase("saving")
        out = run_dir / "adapter"
        trainer.save_model(str(out))
        tok.save_pretrained(str(out))
        summary["saved_to"] = str(out)
        t1 = time.perf_counter()
        m = evaluate(trainer.model, tok, cfg, splits, run_dir, progress=lambda done, total, detail: session.phase(
            "evaluating", done, total, unit="items", detail=detail))
        summary["eval_seconds"] = round(time.perf_counter() - t1, 1)
        for split in ("train", "held_out"):
            for when in ("before", "after"):
                for k in ("reward_accuracy", "log_odds_accuracy"):
                    if split in m:
                        summary[f"{split}/{when}/{k}"] = m[split][when][k]
        if "generations" in m:
            summary.update({f"generations/{k}": v for k, v in m["generations"].items() if k.endswith("words")})
    session.log({**summary, "final": True})
    return summary


def main(argv: list[str] | None = None) -> int:
    from labs.recipe import recipe_main
    return recipe_main(PreferenceRunConfig, train, argv, description="DPO or ORPO with LoRA on preference pairs "
                       "(the labeler's labels, a saved dataset or a .jsonl file).")


if __name__ == "__main__":
    sys.exit(main())
