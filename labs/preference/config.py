"""The preference run's config (DPO or ORPO with LoRA): one dataclass that validates itself, is the UI
form, and is saved as YAML in the run directory.

    from labs.preference.config import PreferenceRunConfig, preset
    cfg = preset("dpo")                         # the form filled for DPO on the labels in the store
    cfg = PreferenceRunConfig(**yaml_dict)      # raises ConfigError naming the field on a bad value
    print(cfg.to_yaml()); print(cfg.command("run.yaml"))
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

METHODS = ("dpo", "orpo")
# TRL 1.16 DPOConfig.loss_type values, less "sft" (that one is `sft_weight`) and "exo_pair" (it needs a
# label smoothing this form does not offer; TRL refuses it at 0).
LOSS_TYPES = ("sigmoid", "hinge", "ipo", "robust", "nca_pair", "bco_pair", "sppo_hard", "aot", "aot_unpaired",
              "apo_zero", "apo_down", "discopop", "sigmoid_norm")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
LINEAR_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

# One line per field, shown next to it in the form.
HELP = {
    "method": "dpo: push the chosen answer's likelihood up relative to a frozen reference (the starting model); "
              "orpo: one loss, supervised on the chosen answer plus an odds-ratio penalty, no reference model.",
    "model": "Starting model: a Hub id, a local directory, a run directory, or 'default' (SmolLM2-135M-Instruct).",
    "data": "'store' (every decided label), 'store:BATCH1,BATCH2' (those batches of pairs), a saved dataset's "
            "name, or a .jsonl file of prompt/chosen/rejected rows.",
    "beta": "DPO: how far the model may move from the reference (higher = stays closer). ORPO: the weight of the "
            "odds-ratio term next to the supervised loss (lambda in the paper).",
    "loss_type": "DPO only: sigmoid is the original DPO loss; ipo, hinge, robust and the others are TRL's variants.",
    "sft_weight": "DPO only: weight of an added supervised loss on the chosen answers (0 = off). It counters the "
                  "fall of the chosen answers' log-probabilities that DPO shows on small preference sets.",
    "lora_r": "Adapter rank: capacity of the update. 8-32 is typical.",
    "lora_alpha": "Scale of the update (alpha/r). Commonly 2x the rank.",
    "lora_targets": "Linear layers that get adapters: 'all-linear' or a comma list such as q_proj,v_proj.",
    "learning_rate": "Step size of the adapter weights.",
    "num_epochs": "Passes over the preference pairs (ignored when max_steps > 0).",
    "max_steps": "Stop after this many optimizer steps; 0 = use epochs.",
    "batch_size": "Pairs per forward pass (each pair is two sequences: chosen and rejected).",
    "grad_accum": "Forward passes summed before one optimizer step: effective batch = batch_size x grad_accum.",
    "max_length": "Tokens kept per sequence (prompt + answer); longer ones are cut at the end.",
    "eval_fraction": "Share of the pairs held out of training, to measure reward accuracy on pairs the model "
                     "never trained on (used when it gives at least 4 pairs).",
    "seed": "Random seed for the pair order, the held-out split and the adapter init.",
    "precision": "auto: bf16 on GPUs that have it (else fp16); on CPU fp32 weights, bf16 autocast where bf16 "
                 "matmuls measure faster than fp32 on that CPU.",
    "device": "auto, cpu, cuda or mps.",
    "precompute_ref": "DPO: compute the reference model's log-probabilities once before training instead of at "
                      "every step (same loss; benchmarks/dpo_throughput.py measures the speed).",
    "completion_head": "DPO off a CUDA GPU: project only the answer positions through the LM head (same loss; "
                       "benchmarks/dpo_throughput.py measures the speed).",
    "logging_steps": "Log loss, rewards, margins and log-probabilities every N steps.",
    "save_steps": "Save a checkpoint every N steps (Stop also saves one, and Resume continues from it).",
    "eval_prompts": "Held-out bundled prompts answered greedily before and after training; 0 = skip.",
    "max_new_tokens": "Longest answer generated for the before/after comparison.",
}


class ConfigError(ValueError):
    """A config value is invalid; the message starts with the field's name."""


@dataclass
class PreferenceRunConfig:
    method: str = "dpo"
    model: str = "HuggingFaceTB/SmolLM2-135M-Instruct"
    data: str = "store"
    beta: float = 0.1
    loss_type: str = "sigmoid"
    sft_weight: float = 0.0
    lora_r: int = 16
    lora_alpha: int = 32
    lora_targets: str = "all-linear"
    learning_rate: float = 5e-4
    num_epochs: float = 3.0
    max_steps: int = 0
    batch_size: int = 4
    grad_accum: int = 1
    max_length: int = 512
    eval_fraction: float = 0.0
    seed: int = 42
    precision: str = "auto"
    device: str = "auto"
    precompute_ref: bool = True
    completion_head: bool = True
    logging_steps: int = 1
    save_steps: int = 20
    eval_prompts: int = 12
    max_new_tokens: int = 128

    def __post_init__(self):
        for f in fields(self):  # coerce what YAML / a form may give as strings or floats
            v = getattr(self, f.name)
            try:
                if f.type == "bool" and isinstance(v, str):
                    v = v.strip().lower() in ("1", "true", "yes", "on")
                elif f.type == "bool":
                    v = bool(v)
                elif f.type == "int" and not isinstance(v, bool):
                    if float(v) != int(float(v)):
                        raise ValueError
                    v = int(float(v))
                elif f.type == "float":
                    v = float(v)
                elif f.type == "str":
                    v = "" if v is None else str(v).strip()
            except (TypeError, ValueError):
                raise ConfigError(f"{f.name}: expected {'a whole number' if f.type == 'int' else f.type}, "
                                  f"got {v!r}") from None
            setattr(self, f.name, v)
        self._check()

    def _check(self):
        def need(ok, field, msg):
            if not ok:
                raise ConfigError(f"{field}: {msg}")
        need(self.method in METHODS, "method", f"dpo or orpo, got {self.method!r}")
        need(self.model, "model", "give a model (a Hub id, a local directory or 'default')")
        need(self.data, "data", "give 'store', 'store:BATCH', a saved dataset's name or a .jsonl path")
        need(self.data != "store:", "data", "name the batches after 'store:' (comma separated), or use 'store'")
        need(0 < self.beta <= 10, "beta", f"between 0 (exclusive) and 10, got {self.beta:g}")
        need(self.loss_type in LOSS_TYPES, "loss_type", f"one of {', '.join(LOSS_TYPES)}"
             + (" (for the supervised term use sft_weight)" if self.loss_type == "sft" else ""))
        need(0 <= self.sft_weight <= 10, "sft_weight", f"0 (off) to 10, got {self.sft_weight:g}")
        if self.method == "orpo":
            need(self.loss_type == "sigmoid", "loss_type", "only for DPO; ORPO has one loss of its own - "
                 "set it back to sigmoid or pick method dpo")
            need(self.sft_weight == 0, "sft_weight", "only for DPO; ORPO's loss already includes the supervised "
                 "term - set it to 0 or pick method dpo")
        need(1 <= self.lora_r <= 1024, "lora_r", "between 1 and 1024")
        need(0 < self.lora_alpha <= 4096, "lora_alpha", "greater than 0")
        targets = self.target_modules()
        need(targets == "all-linear" or (targets and all(t.replace("_", "").isalnum() for t in targets)),
             "lora_targets", "'all-linear' or a comma list of layer names such as q_proj,v_proj")
        need(targets == "all-linear" or "lm_head" not in targets, "lora_targets",
             "do not target lm_head (TRL's DPO computes log-probabilities from its weight directly)")
        need(0 < self.learning_rate <= 1e-2, "learning_rate", f"between 0 and 0.01, got {self.learning_rate:g}")
        need(self.max_steps >= 0, "max_steps", "0 (use epochs) or more")
        need(self.max_steps > 0 or 0 < self.num_epochs <= 100, "num_epochs", "between 0 and 100 when max_steps is 0")
        need(1 <= self.batch_size <= 256, "batch_size", "between 1 and 256 pairs")
        need(1 <= self.grad_accum <= 1024, "grad_accum", "between 1 and 1024")
        need(32 <= self.max_length <= 131072, "max_length", "between 32 and 131072 tokens")
        need(0 <= self.eval_fraction < 1, "eval_fraction", f"from 0 (none held out) to below 1, got "
             f"{self.eval_fraction:g}")
        need(self.seed >= 0, "seed", "0 or more")
        need(self.precision in PRECISIONS, "precision", f"one of {', '.join(PRECISIONS)}")
        need(self.device in ("auto", "cpu", "cuda", "mps"), "device", "one of auto, cpu, cuda, mps")
        need(self.logging_steps >= 1, "logging_steps", "at least 1")
        need(self.save_steps >= 1, "save_steps", "at least 1")
        need(0 <= self.eval_prompts <= 1000, "eval_prompts", "0 (skip) to 1000")
        need(1 <= self.max_new_tokens <= 4096, "max_new_tokens", "between 1 and 4096")

    # ------------------------------------------------------------------ derived values
    def target_modules(self):
        t = self.lora_targets.strip()
        if t in ("", "all-linear", "all"):
            return "all-linear"
        return [x.strip() for x in t.split(",") if x.strip()]

    def store_batches(self) -> list[str] | None:
        """None: not the store; []: every batch; else the named batches."""
        if self.data == "store":
            return []
        if self.data.startswith("store:"):
            return [b.strip() for b in self.data[len("store:"):].split(",") if b.strip()]
        return None

    def effective_batch(self, world_size: int = 1) -> int:
        return self.batch_size * self.grad_accum * world_size

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        return asdict(self)

    def to_yaml(self) -> str:
        import yaml
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def command(self, config_path: str = "run.yaml") -> str:
        return f"python -m labs.preference --config {config_path}"

    @classmethod
    def from_dict(cls, d: dict) -> "PreferenceRunConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"{unknown[0]}: unknown setting (known: {', '.join(sorted(known))})")
        return cls(**d)


# Presets: sized for the labels people make in the labeler (tens of pairs) on 2 CPU cores. Measured with
# `python -m labs.preference simulate --rater shorter --pairs 32` (32 pairs, 20/12 A/B labels, 24 steps of
# 4 pairs; mean words of greedy answers to the 12 held-out prompts, one seed):
#   dpo  lr 5e-4: 62.2 -> 33.2, chosen log-prob -95.7 -> -110.7 (falls); + sft_weight 0.2: 62.2 -> 29.1,
#        chosen -95.7 -> -90.6; lr 1e-3 without it: 62.2 -> 28.7 but chosen falls to -125.4.
#   orpo beta 0.1 (TRL's default): 62.2 -> 63.7, log-odds accuracy 53% -> 91%; beta 1.0: 62.2 -> 51.1, 53% -> 100%.
PRESETS = {
    "dpo": dict(method="dpo", beta=0.1, loss_type="sigmoid", sft_weight=0.2, learning_rate=5e-4, num_epochs=3.0,
                batch_size=4),
    "orpo": dict(method="orpo", beta=1.0, loss_type="sigmoid", sft_weight=0.0, learning_rate=5e-4,
                 num_epochs=3.0, batch_size=4),
}


def preset(name: str, **overrides) -> PreferenceRunConfig:
    if name not in PRESETS:
        raise ConfigError(f"preset: no preset '{name}' (presets: {', '.join(PRESETS)})")
    return PreferenceRunConfig(**{**PRESETS[name], **overrides})
