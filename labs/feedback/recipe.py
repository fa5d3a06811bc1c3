"""The policy update of the RLHF loop: every rating so far trains the policy's LoRA adapter.

    python -m labs.feedback --config run.yaml          # a run-engine job (the loop's "Update the policy")

    from labs.feedback.recipe import train
    from labs.sft.recipe import NullSession
    summary = train(UpdateConfig(loop="my-loop", mode="kto"), NullSession("/tmp/update"))   # from code

Three modes (labs/feedback/config.py), all with TRL's trainers and LoRA on the loop's starting model:
  kto  KTOTrainer on every rated answer, desirable at or above the threshold; the two sides' weights
       balanced (rows.kto_weights); rows shuffled once with the seed, since TRL pairs each row with its
       batch neighbour's answer to estimate KTO's KL term (batches in order).
  dpo  DPOTrainer on pairs of one prompt's answers rated differently (rows.dpo_pairs).
  rm   RewardTrainer learns a reward model (the starting model with a 1-output head and LoRA) from the same
       pairs with margins, its pairwise accuracy measured on the pairs of held-out prompts; then RLOO (or
       GRPO) samples rl_k answers to each of a few prompts no one has rated, scores them with the reward
       model, and updates the policy with a KL penalty (rl_beta) to the reference. On CPU this is a few
       steps, a demonstration of the mechanics rather than a strong optimisation.
The reference is the starting model: a plain model goes in with a peft_config, so TRL's reference is the
same weights with the adapter switched off. The adapter does not start fresh each round: the current
policy's adapter weights (init_run) are loaded into it first, so rounds accumulate. Output: adapter/
(the new policy), rows.jsonl (what it trained on), metrics.jsonl, and for rm reward_model/.
"""
from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from labs.feedback.config import ConfigError, UpdateConfig


# --------------------------------------------------------------------------- data
def training_rows(cfg: UpdateConfig) -> list[dict]:
    """The rows of cfg.mode from every rating of the loop up to cfg.round (all rounds when 0), shuffled."""
    from labs import store
    from labs.feedback import rows
    ratings = [r for r in store.ratings(cfg.loop) if not cfg.round or r["round"] <= cfg.round]
    rated = rows.scored(ratings)
    if cfg.mode == "kto":
        out = rows.kto_rows(rated, cfg.threshold)
        if len(out) < 2:
            raise ConfigError(f"loop: '{cfg.loop}' has {len(out)} rated answer(s); KTO needs at least 2")
    else:
        out = (rows.rm_pairs if cfg.mode == "rm" else rows.dpo_pairs)(rated)
        if not out:
            raise ConfigError(f"loop: '{cfg.loop}' has no prompt with two answers rated differently; {cfg.mode} "
                              "learns from such pairs")
    random.Random(cfg.seed).shuffle(out)
    return out


# --------------------------------------------------------------------------- model
def load_base(cfg: UpdateConfig, dtype, seq_cls: bool = False):
    """The loop's starting model (or a 1-output reward model made from it) and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
    from labs import models
    try:
        source = models.resolve(cfg.model)
        if source.kind == "offline-bundle" and not Path(source.path, "model.safetensors").exists():
            source = models.offline_bundle()
    except models.ModelError as e:
        raise ConfigError(f"model: {e}") from None
    if source.kind == "adapter":
        raise ConfigError(f"model: '{cfg.model}' is an adapter; the loop starts from a plain model")
    kw = dict(dtype=dtype, revision=source.revision if source.kind == "hub" else None)
    tok = models.load_tokenizer(source=source)
    if seq_cls:
        model = AutoModelForSequenceClassification.from_pretrained(source.path, num_labels=1, **kw)
        model.config.pad_token_id = tok.pad_token_id
    else:
        model = AutoModelForCausalLM.from_pretrained(source.path, **kw)
    model.config.use_cache = False
    return model, tok, source


def lora_config(cfg: UpdateConfig, task: str = "CAUSAL_LM"):
    from peft import LoraConfig
    # the named linear layers, never lm_head (tied to the embeddings) nor a reward model's score head
    return LoraConfig(**cfg.lora_config_kwargs(), bias="none", task_type=task)


def init_adapter_dir(cfg: UpdateConfig) -> Path | None:
    if not cfg.init_run:
        return None
    from labs import runs
    try:
        d = runs.get(cfg.init_run).dir / "adapter"
    except runs.RunError as e:
        raise ConfigError(f"init_run: {e}") from None
    if not (d / "adapter_model.safetensors").exists():
        raise ConfigError(f"init_run: run {cfg.init_run} has no adapter/ (did its update finish?)")
    return d


def continue_adapter(model, adapter_dir: Path | None, cfg: UpdateConfig) -> int:
    """Load the current policy's adapter weights into the trainer's fresh adapter; returns how many tensors."""
    if adapter_dir is None:
        return 0
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file
    saved = json.loads((adapter_dir / "adapter_config.json").read_text())
    if (saved.get("r"), saved.get("lora_alpha")) != (cfg.lora_r, cfg.lora_alpha):
        raise ConfigError(f"lora_r: the policy's adapter has r={saved.get('r')}, alpha={saved.get('lora_alpha')}; "
                          "an update continues it, so keep those")
    weights = load_file(str(adapter_dir / "adapter_model.safetensors"))
    result = set_peft_model_state_dict(model, weights)
    missing = [k for k in getattr(result, "missing_keys", []) if "lora_" in k]
    if missing or getattr(result, "unexpected_keys", []):
        raise ConfigError(f"init_run: its adapter does not fit this model ({len(missing)} missing tensors)")
    return len(weights)


def common_args(cfg: UpdateConfig, run_dir: Path, prec: dict, device) -> dict:
    return dict(output_dir=str(run_dir / "checkpoints"), use_cpu=device.type == "cpu", learning_rate=cfg.learning_rate,
                lr_scheduler_type="constant", warmup_steps=0, max_steps=cfg.max_steps,
                per_device_train_batch_size=cfg.batch_size, gradient_checkpointing=False, bf16=prec["bf16"],
                fp16=prec["fp16"], seed=cfg.seed, data_seed=cfg.seed, save_strategy="no", logging_steps=1,
                logging_first_step=True, report_to=[], dataloader_num_workers=0)


# --------------------------------------------------------------------------- the three modes
def _kto(cfg, rows, model, tok, args, session):
    import datasets
    from trl import KTOConfig, KTOTrainer
    from labs.feedback.rows import kto_weights
    dw, uw = kto_weights(rows)
    # 8 rows * (~40 prompt + ~60 answer tokens) per step, plus one no-grad pass for the KL estimate
    kargs = KTOConfig(**args, beta=cfg.beta, desirable_weight=dw, undesirable_weight=uw, max_length=cfg.max_length,
                      precompute_ref_log_probs=True)
    trainer = KTOTrainer(model=model, args=kargs, train_dataset=datasets.Dataset.from_list(rows), processing_class=tok,
                         peft_config=lora_config(cfg), callbacks=[session.callback()])
    good = sum(r["label"] for r in rows)
    return trainer, {"desirable": good, "undesirable": len(rows) - good, "desirable_weight": dw,
                     "undesirable_weight": uw}


def _dpo(cfg, rows, model, tok, args, session):
    import datasets
    from trl import DPOConfig, DPOTrainer
    dargs = DPOConfig(**{**args, "per_device_train_batch_size": max(2, cfg.batch_size // 2)}, beta=cfg.beta,
                      max_length=cfg.max_length, precompute_ref_log_probs=True)
    trainer = DPOTrainer(model=model, args=dargs, train_dataset=datasets.Dataset.from_list(rows),
                         processing_class=tok, peft_config=lora_config(cfg), callbacks=[session.callback()])
    return trainer, {"pairs": len(rows)}


def reward_model(cfg, rows, prec, device, run_dir, session) -> tuple[object, dict]:
    """Train the reward model on the pairs of most prompts; accuracy on the pairs of the held-out prompts."""
    import datasets
    from trl import RewardConfig, RewardTrainer
    from labs.feedback.rows import split_pairs
    train, held = split_pairs(rows, cfg.rm_held_out)
    if not train:
        train, held = held, []
    session.phase("loading model", detail="the reward model")
    model, tok, _ = load_base(cfg, prec["dtype"], seq_cls=True)
    args = common_args(cfg, run_dir, prec, device)
    args.update(max_steps=cfg.rm_steps, output_dir=str(run_dir / "reward_checkpoints"))
    rargs = RewardConfig(**args, max_length=cfg.max_length, center_rewards_coefficient=0.01)
    session.phase("tokenizing", detail=f"{len(train)} pairs, in the reward trainer")
    trainer = RewardTrainer(model=model, args=rargs, train_dataset=datasets.Dataset.from_list(train),
                            processing_class=tok, peft_config=lora_config(cfg, "SEQ_CLS"),
                            callbacks=[session.callback(phase="training the reward model")])
    t0 = time.perf_counter()
    trainer.train()
    info = {"rm_pairs_train": len(train), "rm_pairs_held_out": len(held), "rm_seconds": round(time.perf_counter() - t0, 1),
            "rm_held_out_accuracy": None}
    if held:
        session.phase("evaluating the reward model", detail=f"{len(held)} held-out pairs")
        m = trainer.evaluate(eval_dataset=datasets.Dataset.from_list(held))
        info["rm_held_out_accuracy"] = m.get("eval_accuracy")
    trainer.save_model(str(run_dir / "reward_model"))
    session.log({"step": 0, **info})
    rm = trainer.model.merge_and_unload().eval()
    for p in rm.parameters():
        p.requires_grad_(False)
    return (rm, tok), info


def rl_prompts(cfg: UpdateConfig) -> tuple[list, str]:
    """Prompts of the pool that no one has rated in this loop (all of the pool when every one has been)."""
    from labs import store
    from labs.preference.pairs import PairsError, load_prompts
    try:
        pool = load_prompts(cfg.prompts, "train")
    except PairsError as e:
        raise ConfigError(f"prompts: {e}") from None
    rated = {store.prompt_text(s["prompt"]) for s in store.samples(cfg.loop)}
    fresh = [p for p in pool if store.prompt_text(p) not in rated]
    need = cfg.rl_steps * cfg.rl_prompts
    src, note = (fresh, "unrated prompts") if fresh else (pool, "every prompt of the pool was rated: all of it")
    return [src[i % len(src)] for i in range(need)], note


def _rl(cfg, rm_tok, model, tok, args, session):
    import datasets
    rm, rm_tokenizer = rm_tok
    prompts, note = rl_prompts(cfg)
    rl = dict(args, max_steps=cfg.rl_steps, per_device_train_batch_size=cfg.rl_k * cfg.rl_prompts, num_generations=cfg.rl_k,
              max_completion_length=cfg.max_new_tokens, beta=cfg.rl_beta, temperature=cfg.temperature,
              shuffle_dataset=False)
    if cfg.rl_algo == "grpo":
        from trl import GRPOConfig as Config, GRPOTrainer as Trainer
    else:
        from trl import RLOOConfig as Config, RLOOTrainer as Trainer
    trainer = Trainer(model=model, reward_funcs=rm, args=Config(**rl), train_dataset=datasets.Dataset.from_list(
        [{"prompt": p} for p in prompts]), processing_class=tok, reward_processing_classes=rm_tokenizer,
        peft_config=lora_config(cfg), callbacks=[session.callback()])
    return trainer, {"rl_algo": cfg.rl_algo, "rl_prompts": len(prompts), "rl_prompt_source": note,
                     "rl_samples_per_step": cfg.rl_k * cfg.rl_prompts}


# --------------------------------------------------------------------------- the recipe
def train(cfg: UpdateConfig, session) -> dict:
    """One update inside a runs.recipe_session (or a NullSession); returns the summary."""
    import torch
    from labs import models
    from labs.sft.recipe import resolve_precision
    run_dir = Path(session.dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    # ---- Data: every rating so far, as the mode's rows (checked before any model loads)
    session.phase("loading data")
    rows = training_rows(cfg)
    with open(run_dir / "rows.jsonl", "w") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    init_dir = init_adapter_dir(cfg)

    # ---- Device and precision (the SFT recipe's rule: bf16 autocast on CPUs where it measures faster)
    device = torch.device("cpu") if cfg.device == "cpu" else models.pick_device(cfg.device)
    prec = resolve_precision(SimpleNamespace(precision=cfg.precision, method="lora"), device)
    args = common_args(cfg, run_dir, prec, device)

    # the phases ahead, as the monitor shows them (TRL tokenizes inside its trainers: not counted)
    rm = ["loading model", "tokenizing", ("training the reward model", cfg.rm_steps, "steps"),
          "evaluating the reward model"] if cfg.mode == "rm" else []
    session.plan(*rm, "loading model", "tokenizing", ("training", cfg.rl_steps if cfg.mode == "rm" else cfg.max_steps,
                                                      "steps"), "saving")

    # ---- rm: the reward model first (its own model), then the policy's RL trainer
    info: dict = {}
    rm_tok = None
    if cfg.mode == "rm":
        rm_tok, info = reward_model(cfg, rows, prec, device, run_dir, session)

    # ---- Policy: the starting model + LoRA (reference = adapter off), continuing the current adapter
    session.phase("loading model", detail="the policy")
    model, tok, source = load_base(cfg, prec["dtype"])
    session.phase("tokenizing", detail=f"{len(rows)} rows, in the trainer")
    build = {"kto": _kto, "dpo": _dpo}.get(cfg.mode)
    trainer, more = build(cfg, rows, model, tok, args, session) if build else _rl(cfg, rm_tok, model, tok, args,
                                                                                 session)
    info.update(more)
    loaded = continue_adapter(trainer.model, init_dir, cfg)
    session.record(model_source=source.record(), mode=cfg.mode, rows=len(rows), precision=prec["label"],
                   device=str(device), init_run=cfg.init_run or None, init_tensors=loaded, **info)

    # ---- Train
    t0, cpu0 = time.perf_counter(), time.process_time()
    result = trainer.train()
    summary = {"mode": cfg.mode, "rows": len(rows), "step": trainer.state.global_step,
               "train_seconds": round(time.perf_counter() - t0, 1),
               "train_cpu_seconds": round(time.process_time() - cpu0, 1), "train_loss_final": result.training_loss,
               "init_run": cfg.init_run or None, **info}

    # ---- Save the new policy's adapter
    if session.is_main:
        session.phase("saving")
        out = run_dir / "adapter"
        trainer.save_model(str(out))
        tok.save_pretrained(str(out))
        summary["saved_to"] = str(out)
    summary["job_seconds"] = round(time.perf_counter() - t_start, 1)
    session.log({**summary, "final": True})
    return summary


def run_update(cfg: UpdateConfig, session) -> dict:
    """The job: one update, then (rank 0) the loop learns where its policy now is."""
    from labs.feedback import loop
    summary = train(cfg, session)
    if session.is_main and cfg.round and loop.exists(cfg.loop):
        summary["policy_moved"] = loop.record_update(cfg.loop, cfg.round, session.dir.name, summary,
                                                     cfg.submitted_at)
    return summary


def main(argv: list[str] | None = None) -> int:
    from labs.recipe import recipe_main
    return recipe_main(UpdateConfig, run_update, argv, resume=False,
                       description="One policy update of the RLHF loop (the loop's run-engine job).")


if __name__ == "__main__":
    sys.exit(main())
