"""The encoder run's config: one dataclass (labs/config.py's RunConfig) that validates itself and is saved as
YAML (like labs/sft/config.py).

    from labs.encoder.config import EncoderRunConfig, preset
    cfg = preset("sentiment")                # assets/presets/encoder/sentiment.yaml over the defaults
    cfg = EncoderRunConfig.from_dict(d)      # raises ConfigError naming the field on a bad value
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from labs.config import DEVICES, ConfigError, LoraSettings, RunConfig, lora_setting, setting

__all__ = ["EncoderRunConfig", "ConfigError", "preset", "PRESETS", "HELP", "TASKS", "METHODS", "CLASS_WEIGHTS",
           "SCHEDULERS", "PRECISIONS"]

TASKS = ("classification", "qa")
METHODS = ("full", "lora")
CLASS_WEIGHTS = ("none", "balanced")
SCHEDULERS = ("linear", "cosine", "constant")
PRECISIONS = ("auto", "bf16", "fp32")
DATA, METHOD, OPT, QA, EVAL = "Data", "Method", "Optimization", "Question answering", "Evaluation"


@dataclass
class EncoderRunConfig(LoraSettings, RunConfig):
    recipe: ClassVar[str] = "encoder"
    lora_r: int = lora_setting("lora_r", 8)
    lora_alpha: int = lora_setting("lora_alpha", 16)
    lora_dropout: float = lora_setting("lora_dropout", 0.1)
    lora_targets: str = setting("query,value", "Layers that get adapters, comma separated: query,value for "
                                "BERT/MiniLM/RoBERTa; q_lin,v_lin for DistilBERT.", group="LoRA", advanced=True)
    encoder: str = setting("minilm", "Encoder to fine-tune: 'minilm' (all-MiniLM-L6-v2, bundled offline), a local "
                           "directory, or a Hub encoder such as distilbert-base-uncased, bert-base-uncased, "
                           "roberta-base.", group=DATA)
    dataset: str = setting("drugs-real", "A saved dataset's name (sentiment-real, drugs-real), a folder of "
                           "train/validation/test .jsonl files (assets/qa_varied), or one data file (split 80/10/10 "
                           "with the seed).", group=DATA, widget="dataset")
    task: str = setting("classification", "classification (text -> label, a head on the [CLS] vector) or qa (a "
                        "start and an end per token).", choices=TASKS, group=DATA)
    method: str = setting("full", "full: train every weight; lora: adapters on the attention layers plus a "
                          "trained head (PEFT).", choices=METHODS, group=METHOD)
    class_weights: str = setting("balanced", "balanced: each class's loss weighted n / (classes x n_class), so "
                                 "rare classes count as much as common ones in the loss; none: plain cross-entropy.",
                                 choices=CLASS_WEIGHTS, group=METHOD, advanced=True)
    learning_rate: float = setting(5e-5, "Step size: ~2e-5 to 5e-5 for full fine-tuning of BERT-size encoders, "
                                   "~5e-4 for LoRA.", min=0, max=1e-2, min_open=True, group=OPT)
    lr_scheduler: str = setting("linear", "linear, cosine or constant after warm-up.", choices=SCHEDULERS,
                                group=OPT, advanced=True)
    warmup: float = setting(0.1, "Warm-up: a fraction of the steps (<1) or a number of steps.", min=0,
                            max=1_000_000, group=OPT, advanced=True)
    weight_decay: float = setting(0.01, "AdamW weight decay.", min=0, max=1, group=OPT, advanced=True)
    num_epochs: float = setting(3.0, "Passes over the training rows (ignored when max_steps > 0).", min=0, max=100,
                                group=OPT)
    max_steps: int = setting(0, "Stop after this many optimizer steps; 0 = use epochs.", min=0, max=1_000_000,
                             group=OPT, advanced=True)
    batch_size: int = setting(16, "Rows (QA: windows) per step.", min=1, max=1024, group=OPT, advanced=True)
    grad_accum: int = setting(1, "Forward passes summed before one optimizer step.", min=1, max=1024, group=OPT,
                              advanced=True)
    max_length: int = setting(256, "Tokens per input: longer texts are cut (classification) or split into "
                              "windows (qa).", min=16, max=4096, group=DATA, advanced=True)
    doc_stride: int = setting(64, "qa: tokens two neighbouring windows of a long context share.", min=0,
                              max=4096, group=QA, advanced=True)
    max_answer_length: int = setting(30, "qa: longest answer span considered, in tokens.", min=1, max=4096,
                                     group=QA, advanced=True)
    n_best: int = setting(20, "qa: the best start and end positions combined when searching the answer span.",
                          min=1, max=100, group=QA, advanced=True)
    seed: int = setting(42, "Random seed (data order, head init, dropout).", min=0, max=2**32 - 1, group=OPT,
                        advanced=True)
    precision: str = setting("auto", "auto: bf16 autocast on GPUs and on CPUs where bf16 matmuls measure faster "
                             "than fp32, else fp32.", choices=PRECISIONS, group=OPT, advanced=True)
    eval_steps: int = setting(0, "Evaluate the validation loss every N steps; 0 = once per epoch.", min=0,
                              max=1_000_000, group=EVAL, advanced=True)
    logging_steps: int = setting(10, "Log loss and learning rate every N steps.", min=1, max=100_000, group=EVAL,
                                 advanced=True)
    max_train_rows: int = setting(0, "Use at most this many training rows; 0 = all.", min=0, max=100_000_000,
                                  group=DATA, advanced=True)
    eval_rows: int = setting(0, "Test rows scored at the end (accuracy/F1 or exact match/F1); 0 = all.", min=0,
                             max=100_000_000, group=EVAL, advanced=True)
    eval_split: str = setting("test", "The split scored at the end: test, or validation (what a hyperparameter "
                              "search chooses on).", choices=("test", "validation"), group=EVAL, advanced=True)
    device: str = setting("auto", "auto, cpu, cuda or mps.", choices=DEVICES, group=OPT, advanced=True)

    def check(self):
        need = self.need
        need(self.encoder, "encoder", "give an encoder ('minilm', a local directory or a Hub id)")
        need(self.dataset, "dataset", "give a dataset (a saved dataset's name, a folder or a file)")
        self.check_lora(allow_all_linear=False)
        need(self.warmup < 1 or self.warmup == int(self.warmup), "warmup",
             "a fraction below 1 or a whole number of steps")
        need(self.max_steps > 0 or self.num_epochs > 0, "num_epochs", "above 0 when max_steps is 0")
        need(self.task != "qa" or self.doc_stride < self.max_length // 2, "doc_stride",
             f"below max_length / 2 ({self.max_length // 2}), so windows move forward")
        need(self.max_answer_length <= self.max_length, "max_answer_length", "at most max_length")

    def targets(self) -> list[str]:
        return list(self.target_modules())


HELP = EncoderRunConfig.help()
PRESETS = {name: {k: v for k, v in EncoderRunConfig.preset_raw(name).items() if k != "about"}
           for name in EncoderRunConfig.preset_names()}  # assets/presets/encoder/*.yaml


def preset(name: str, **overrides) -> EncoderRunConfig:
    return EncoderRunConfig.preset(name, **overrides)
