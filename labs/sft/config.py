"""The SFT run's config: one dataclass (labs/config.py's RunConfig) that validates itself, is the UI form, and
is saved as YAML in the run directory.

    from labs.sft.config import SFTRunConfig, preset
    cfg = preset("instruction")            # assets/presets/sft/instruction.yaml over the defaults
    cfg = SFTRunConfig.from_dict(yaml_dict)  # raises ConfigError naming the field on a bad value
    print(cfg.to_yaml()); print(cfg.command("run.yaml"))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from labs.config import DEVICES, LINEAR_NAMES, PRECISIONS, ConfigError, LoraSettings, RunConfig, setting

__all__ = ["SFTRunConfig", "ConfigError", "preset", "PRESETS", "HELP", "LINEAR_NAMES", "TASKS", "METHODS"]

METHODS = ("lora", "full", "freeze")
SCHEDULERS = ("linear", "cosine", "constant")
TASKS = ("instruction", "sentiment", "qa", "custom")
METRICS = ("exact_match", "classification", "qa")
DATA, METHOD, OPT, SPEED, EVAL = "Data", "Method", "Optimization", "Speed", "Evaluation and saving"


@dataclass
class SFTRunConfig(LoraSettings, RunConfig):
    recipe: ClassVar[str] = "sft"
    model: str = setting("HuggingFaceTB/SmolLM2-135M-Instruct", "Base model: a Hub id, a local directory, or "
                         "'default' (SmolLM2-135M-Instruct).", group=DATA)
    dataset: str = setting("instruct", "'instruct' (bundled), a saved dataset's name, or a .jsonl path with "
                           "prompt/completion or messages rows.", group=DATA, widget="dataset")
    task: str = setting("instruction", "Preset the form was filled from; decides which metrics the held-out "
                        "evaluation reports.", choices=TASKS, group=DATA, advanced=True)
    data_tasks: str = setting("extraction", "Rows to keep by their 'task' column, comma separated (empty: all "
                              "rows).", group=DATA, advanced=True)
    method: str = setting("lora", "lora: train small adapters on a frozen base; full: train every weight; "
                          "freeze: train only the top N layers.", choices=METHODS, group=METHOD)
    use_rslora: bool = setting(False, "Rank-stabilized scaling alpha/sqrt(r): keeps learning stable when you "
                               "raise the rank.", group="LoRA", advanced=True)
    use_dora: bool = setting(False, "Weight-decomposed LoRA (magnitude + direction): sometimes better quality, "
                             "slower per step (it recomputes each adapted weight's norm every step).", group="LoRA",
                             advanced=True)
    freeze_top_n: int = setting(2, "With method 'freeze': how many of the top transformer layers are trained "
                                "(plus the final norm).", min=1, max=1000, group=METHOD, advanced=True)
    completion_only: bool = setting(True, "Loss on the answer only (the prompt is masked). Off: learn the whole "
                                    "sequence, prompt included.", group=DATA, advanced=True)
    learning_rate: float = setting(3e-4, "Step size. Lower than pre-training: ~2e-4 for LoRA, ~1e-5 to 5e-5 for "
                                   "full fine-tuning.", min=0, max=1e-2, min_open=True, group=OPT)
    lr_scheduler: str = setting("cosine", "How the learning rate moves after warm-up: linear decay, cosine decay, "
                                "or constant.", choices=SCHEDULERS, group=OPT, advanced=True)
    warmup: float = setting(0.05, "Warm-up: a fraction of the steps (<1) or a number of steps (>=1) with a rising "
                            "learning rate.", min=0, max=1_000_000, group=OPT, advanced=True)
    weight_decay: float = setting(0.0, "L2-style shrinkage of the weights against over-fitting; 0-0.1.", min=0,
                                  max=1, group=OPT, advanced=True)
    num_epochs: float = setting(1.0, "Passes over the training rows (ignored when max_steps > 0).", min=0,
                                max=100, group=OPT, advanced=True)
    max_steps: int = setting(0, "Stop after this many optimizer steps; 0 = use epochs.", min=0, max=1_000_000,
                             group=OPT)
    batch_size: int = setting(8, "Rows per forward pass per device. Larger is faster per token until memory runs "
                              "out.", min=1, max=1024, group=OPT, advanced=True)
    grad_accum: int = setting(1, "Forward passes summed before one optimizer step: effective batch = batch_size x "
                              "grad_accum x devices.", min=1, max=1024, group=OPT, advanced=True)
    max_length: int = setting(512, "Tokens kept per row (longer rows are truncated from the end).", min=16,
                              max=131072, group=DATA, advanced=True)
    packing: bool = setting(False, "Pack several rows into max_length blocks (no padding; sequences kept apart "
                            "by position ids).", group=SPEED, advanced=True)
    padding_free: bool = setting(True, "Concatenate a batch's rows into one sequence without pad tokens "
                                 "(position ids keep rows apart).", group=SPEED, advanced=True)
    answer_head: bool = setting(True, "Off a CUDA GPU: project only trained positions through the LM head (same "
                                "loss; faster per step with completion-only loss: benchmarks/sft_throughput.py "
                                "--candidates, lab+trl_head).", group=SPEED, advanced=True)
    row_attention: bool = setting(True, "Off a CUDA GPU, with padding-free batches: attention within each row "
                                  "only, not over the whole batch under a mask (same results, faster: "
                                  "benchmarks/sft_throughput.py --candidates, lab+full_attention).", group=SPEED,
                                  advanced=True)
    gradient_checkpointing: bool = setting(False, "Recompute activations in the backward pass: less memory, "
                                           "slower (benchmarks/sft_throughput.py --candidates: lab+grad_ckpt). Off "
                                           "for small models.", group=SPEED, advanced=True)
    neftune_alpha: float = setting(0.0, "NEFTune: noise added to the embeddings while training (5 is typical); 0 "
                                   "= off.", min=0, max=100, group=OPT, advanced=True)
    seed: int = setting(42, "Random seed for data order, adapter init and dropout: the same seed repeats the run.",
                        min=0, max=2**32 - 1, group=OPT, advanced=True)
    precision: str = setting("auto", "auto: bf16 on GPUs that have it (else fp16); on CPU fp32 weights, bf16 "
                             "autocast where bf16 matmuls measure faster than fp32 on that CPU.", choices=PRECISIONS,
                             group=SPEED, advanced=True)
    eval_steps: int = setting(10, "Evaluate on the validation split (loss + sample generations) every N steps; 0 = "
                              "once per epoch.", min=0, max=1_000_000, group=EVAL, advanced=True)
    early_stopping_patience: int = setting(0, "Stop when validation loss has not improved for this many "
                                           "evaluations; 0 = off.", min=0, max=1000, group=EVAL, advanced=True)
    save_total_limit: int = setting(2, "Checkpoints kept on disk (the best one is always kept).", min=1, max=100,
                                    group=EVAL, advanced=True)
    logging_steps: int = setting(2, "Log loss, learning rate, grad norm and tokens/s every N steps.", min=1,
                                 max=100_000, group=EVAL, advanced=True)
    time_limit_min: float = setting(0.0, "Stop gracefully after this many minutes of training (saving the "
                                    "model); 0 = no limit.", min=0, max=100_000, group=EVAL, advanced=True)
    max_train_rows: int = setting(0, "Use at most this many training rows; 0 = all.", min=0, max=100_000_000,
                                  group=DATA, advanced=True)
    max_eval_rows: int = setting(0, "Validation rows whose loss is computed at each evaluation; 0 = all (a large "
                                 "validation split makes every evaluation slow).", min=0, max=100_000_000,
                                 group=DATA, advanced=True)
    eval_rows: int = setting(60, "Held-out rows answered by generation at the end to compute the task metrics; "
                             "0 = skip.", min=0, max=100_000_000, group=EVAL, advanced=True)
    eval_base: bool = setting(True, "LoRA: also answer those rows with the adapter switched off, for a "
                              "before/after comparison.", group=EVAL, advanced=True)
    device: str = setting("auto", "auto, cpu, cuda or mps.", choices=DEVICES, group=SPEED, advanced=True)
    push_to_hub: str = setting("", "Hub repo id to push the merged model to at the end (needs HF_TOKEN in the "
                               "environment); empty = no.", group=EVAL, advanced=True)

    def check(self):
        need = self.need
        need(self.model, "model", "give a model (a Hub id, a local directory or 'default')")
        need(self.dataset, "dataset", "give a dataset ('instruct', a saved dataset's name or a .jsonl path)")
        self.check_lora()
        need(self.warmup < 1 or self.warmup == int(self.warmup), "warmup",
             "a fraction below 1 or a whole number of steps")
        need(self.max_steps > 0 or self.num_epochs > 0, "num_epochs", "above 0 when max_steps is 0")
        need(not (self.use_dora and self.method != "lora"), "use_dora", "only with method lora")
        need(not self.push_to_hub or "/" in self.push_to_hub, "push_to_hub", "a repo id such as user/my-model")

    # ------------------------------------------------------------------ derived values
    def effective_batch(self, world_size: int = 1) -> int:
        return self.batch_size * self.grad_accum * world_size

    def metric(self) -> str:
        return {"sentiment": "classification", "qa": "qa"}.get(self.task, "exact_match")

    def task_filter(self) -> list[str]:
        return [t.strip() for t in self.data_tasks.split(",") if t.strip()]


HELP = SFTRunConfig.help()
PRESETS = {name: {k: v for k, v in SFTRunConfig.preset_raw(name).items() if k != "about"}
           for name in SFTRunConfig.preset_names()}  # assets/presets/sft/*.yaml


def preset(name: str, **overrides) -> SFTRunConfig:
    return SFTRunConfig.preset(name, **overrides)
