"""The preference run's config (DPO or ORPO with LoRA): one dataclass (labs/config.py's RunConfig) that
validates itself, is the UI form, and is saved as YAML in the run directory.

    from labs.preference.config import PreferenceRunConfig, preset
    cfg = preset("dpo")                                # assets/presets/preference/dpo.yaml over the defaults
    cfg = PreferenceRunConfig.from_dict(yaml_dict)     # raises ConfigError naming the field on a bad value
    print(cfg.to_yaml()); print(cfg.command("run.yaml"))
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from labs.config import DEVICES, LINEAR_NAMES, PRECISIONS, ConfigError, LoraSettings, RunConfig, setting

__all__ = ["PreferenceRunConfig", "ConfigError", "preset", "PRESETS", "HELP", "LINEAR_NAMES", "LOSS_TYPES",
           "METHODS"]

METHODS = ("dpo", "orpo")
# TRL 1.16 DPOConfig.loss_type values, less "sft" (that one is `sft_weight`) and "exo_pair" (it needs a
# label smoothing this form does not offer; TRL refuses it at 0).
LOSS_TYPES = ("sigmoid", "hinge", "ipo", "robust", "nca_pair", "bco_pair", "sppo_hard", "aot", "aot_unpaired",
              "apo_zero", "apo_down", "discopop", "sigmoid_norm")
DATA, OPT, SPEED, EVAL = "Data", "Optimization", "Speed", "Evaluation and saving"


@dataclass
class PreferenceRunConfig(LoraSettings, RunConfig):
    recipe: ClassVar[str] = "preference"
    method: str = setting("dpo", "dpo: push the chosen answer's likelihood up relative to a frozen reference (the "
                          "starting model); orpo: one loss, supervised on the chosen answer plus an odds-ratio "
                          "penalty, no reference model.", choices=METHODS, group="Method")
    model: str = setting("HuggingFaceTB/SmolLM2-135M-Instruct", "Starting model: a Hub id, a local directory, a "
                         "run directory, or 'default' (SmolLM2-135M-Instruct).", group=DATA)
    data: str = setting("store", "'store' (every decided label), 'store:BATCH1,BATCH2' (those batches of pairs), "
                        "a saved dataset's name, or a .jsonl file of prompt/chosen/rejected rows.", group=DATA)
    beta: float = setting(0.1, "DPO: how far the model may move from the reference (higher = stays closer). ORPO: "
                          "the weight of the odds-ratio term next to the supervised loss (lambda in the paper).",
                          min=0, max=10, min_open=True, group="Method")
    loss_type: str = setting("sigmoid", "DPO only: sigmoid is the original DPO loss; ipo, hinge, robust and the "
                             "others are TRL's variants.", choices=LOSS_TYPES, group="Method", advanced=True,
                             notes={"sft": "for the supervised term use sft_weight"})
    sft_weight: float = setting(0.0, "DPO only: weight of an added supervised loss on the chosen answers (0 = "
                                "off). It counters the fall of the chosen answers' log-probabilities that DPO shows "
                                "on small preference sets.", min=0, max=10, group="Method", advanced=True)
    learning_rate: float = setting(5e-4, "Step size of the adapter weights.", min=0, max=1e-2, min_open=True,
                                   group=OPT)
    num_epochs: float = setting(3.0, "Passes over the preference pairs (ignored when max_steps > 0).", min=0,
                                max=100, group=OPT, advanced=True)
    max_steps: int = setting(0, "Stop after this many optimizer steps; 0 = use epochs.", min=0, max=1_000_000,
                             group=OPT)
    batch_size: int = setting(4, "Pairs per forward pass (each pair is two sequences: chosen and rejected).",
                              min=1, max=256, group=OPT, advanced=True)
    grad_accum: int = setting(1, "Forward passes summed before one optimizer step: effective batch = batch_size x "
                              "grad_accum.", min=1, max=1024, group=OPT, advanced=True)
    max_length: int = setting(512, "Tokens kept per sequence (prompt + answer); longer ones are cut at the end.",
                              min=32, max=131072, group=DATA, advanced=True)
    eval_fraction: float = setting(0.0, "Share of the pairs held out of training, to measure reward accuracy on "
                                   "pairs the model never trained on (used when it gives at least 4 pairs).", min=0,
                                   max=1, max_open=True, group=EVAL, advanced=True)
    seed: int = setting(42, "Random seed for the pair order, the held-out split and the adapter init.", min=0,
                        max=2**32 - 1, group=OPT, advanced=True)
    precision: str = setting("auto", "auto: bf16 on GPUs that have it (else fp16); on CPU fp32 weights, bf16 "
                             "autocast where bf16 matmuls measure faster than fp32 on that CPU.", choices=PRECISIONS,
                             group=SPEED, advanced=True)
    device: str = setting("auto", "auto, cpu, cuda or mps.", choices=DEVICES, group=SPEED, advanced=True)
    precompute_ref: bool = setting(True, "DPO: compute the reference model's log-probabilities once before "
                                   "training instead of at every step (same loss; benchmarks/dpo_throughput.py "
                                   "measures the speed).", group=SPEED, advanced=True)
    completion_head: bool = setting(True, "DPO off a CUDA GPU: project only the answer positions through the LM "
                                    "head (same loss; benchmarks/dpo_throughput.py measures the speed).", group=SPEED,
                                    advanced=True)
    logging_steps: int = setting(1, "Log loss, rewards, margins and log-probabilities every N steps.", min=1,
                                 max=100_000, group=EVAL, advanced=True)
    save_steps: int = setting(20, "Save a checkpoint every N steps (Stop also saves one, and Resume continues "
                              "from it).", min=1, max=1_000_000, group=EVAL, advanced=True)
    eval_prompts: int = setting(12, "Held-out bundled prompts answered greedily before and after training; 0 = "
                                "skip.", min=0, max=1000, group=EVAL, advanced=True)
    max_new_tokens: int = setting(128, "Longest answer generated for the before/after comparison.", min=1,
                                  max=4096, group=EVAL, advanced=True)

    def check(self):
        need = self.need
        need(self.model, "model", "give a model (a Hub id, a local directory or 'default')")
        need(self.data, "data", "give 'store', 'store:BATCH', a saved dataset's name or a .jsonl path")
        need(self.data != "store:", "data", "name the batches after 'store:' (comma separated), or use 'store'")
        if self.method == "orpo":
            need(self.loss_type == "sigmoid", "loss_type", "only for DPO; ORPO has one loss of its own - "
                 "set it back to sigmoid or pick method dpo")
            need(self.sft_weight == 0, "sft_weight", "only for DPO; ORPO's loss already includes the supervised "
                 "term - set it to 0 or pick method dpo")
        self.check_lora()
        need(self.max_steps > 0 or self.num_epochs > 0, "num_epochs", "above 0 when max_steps is 0")

    # ------------------------------------------------------------------ derived values
    def store_batches(self) -> list[str] | None:
        """None: not the store; []: every batch; else the named batches."""
        if self.data == "store":
            return []
        if self.data.startswith("store:"):
            return [b.strip() for b in self.data[len("store:"):].split(",") if b.strip()]
        return None

    def effective_batch(self, world_size: int = 1) -> int:
        return self.batch_size * self.grad_accum * world_size


HELP = PreferenceRunConfig.help()
PRESETS = {name: {k: v for k, v in PreferenceRunConfig.preset_raw(name).items() if k != "about"}
           for name in PreferenceRunConfig.preset_names()}  # assets/presets/preference/*.yaml


def preset(name: str, **overrides) -> PreferenceRunConfig:
    return PreferenceRunConfig.preset(name, **overrides)
