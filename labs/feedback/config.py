"""The policy update's config: one dataclass that validates itself, is saved as YAML in the run directory,
and is what `python -m labs.feedback --config run.yaml` runs.

    from labs.feedback.config import UpdateConfig
    cfg = UpdateConfig(loop="my-loop", round=2, mode="kto")    # raises ConfigError naming the field
    print(cfg.to_yaml())

Sizes are for 2 CPU cores and a few minutes per round: 16 steps of 8 rows (KTO) or 4 pairs (DPO) with
LoRA r=16 on SmolLM2-135M (measured in the README's RLHF section: `python -m labs.feedback --rounds 3`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

MODES = ("kto", "dpo", "rm")
RL_ALGOS = ("rloo", "grpo")
PRECISIONS = ("auto", "bf16", "fp32")
LINEAR_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

HELP = {
    "loop": "The loop whose ratings train the policy (every rating so far).",
    "round": "The round this update follows (its ratings are the newest in the data).",
    "mode": "kto: every rated answer is good or bad (threshold); dpo: pairs of one prompt's answers rated "
            "differently; rm: a reward model learns the ratings, then RLOO/GRPO trains on unrated prompts.",
    "model": "The loop's starting model (the reference: KL is measured against it).",
    "init_run": "Run whose adapter the update continues from (the current policy); empty = a fresh adapter.",
    "prompts": "The loop's prompt pool; the rm path draws its unrated prompts from it.",
    "threshold": "KTO: a rating at or above this is desirable, below it undesirable.",
    "beta": "KTO/DPO: how far the policy may move from the reference (higher = stays closer).",
    "learning_rate": "Step size of the adapter weights.",
    "max_steps": "Optimizer steps of the KTO or DPO update.",
    "batch_size": "Rows per step (KTO: at least 2, its KL estimate pairs rows of one batch; DPO: pairs).",
    "lora_r": "Adapter rank (kept for the whole loop: each round continues the same adapter).",
    "lora_alpha": "Scale of the update (alpha/r).",
    "max_length": "Tokens kept per sequence (prompt + answer).",
    "seed": "Random seed for the row order and the adapter init.",
    "rm_steps": "rm: reward-model training steps (pairs of 8).",
    "rm_held_out": "rm: share of prompts whose pairs are held out to measure the reward model's accuracy.",
    "rl_algo": "rm: rloo (leave-one-out baseline over k samples) or grpo (group-normalised advantages).",
    "rl_steps": "rm: RL steps (each samples rl_prompts x rl_k answers, scores them, updates the policy once).",
    "rl_prompts": "rm: unrated prompts per RL step (each sampled rl_k times).",
    "rl_k": "rm: samples per prompt in the RL step (at least 2: the baseline is the others' mean).",
    "rl_beta": "rm: KL penalty to the reference in the RL reward.",
    "max_new_tokens": "rm: longest answer sampled during RL.",
    "temperature": "rm: sampling temperature during RL.",
}


class ConfigError(ValueError):
    """A config value is invalid; the message starts with the field's name."""


@dataclass
class UpdateConfig:
    loop: str = ""
    round: int = 0
    mode: str = "kto"
    model: str = "HuggingFaceTB/SmolLM2-135M-Instruct"
    init_run: str = ""
    prompts: str = "prompts"
    threshold: float = 4.0
    beta: float = 0.1
    learning_rate: float = 1e-3
    max_steps: int = 16
    batch_size: int = 8
    lora_r: int = 16
    lora_alpha: int = 32
    max_length: int = 256
    seed: int = 0
    precision: str = "auto"
    device: str = "auto"
    submitted_at: float = 0.0
    rm_steps: int = 16
    rm_held_out: float = 0.25
    rl_algo: str = "rloo"
    rl_steps: int = 4
    rl_prompts: int = 2
    rl_k: int = 4
    rl_beta: float = 0.05
    max_new_tokens: int = 48
    temperature: float = 0.8

    def __post_init__(self):
        for f in fields(self):  # coerce what YAML / a form may give as strings or floats
            v = getattr(self, f.name)
            try:
                if f.type == "int" and not isinstance(v, bool):
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
        need(self.loop, "loop", "name the loop whose ratings train the policy")
        need(self.round >= 0, "round", "0 or more")
        need(self.mode in MODES, "mode", f"one of {', '.join(MODES)}, got {self.mode!r}")
        need(self.model, "model", "give the loop's starting model")
        need(1 < self.threshold <= 5, "threshold", f"above 1 and at most 5 stars, got {self.threshold:g}")
        need(0 < self.beta <= 10, "beta", f"between 0 (exclusive) and 10, got {self.beta:g}")
        need(0 < self.learning_rate <= 1e-2, "learning_rate", f"between 0 and 0.01, got {self.learning_rate:g}")
        need(1 <= self.max_steps <= 10000, "max_steps", "between 1 and 10000")
        need(2 <= self.batch_size <= 256, "batch_size", "between 2 and 256 (KTO needs at least 2 rows per batch)")
        need(1 <= self.lora_r <= 1024, "lora_r", "between 1 and 1024")
        need(0 < self.lora_alpha <= 4096, "lora_alpha", "greater than 0")
        need(32 <= self.max_length <= 131072, "max_length", "between 32 and 131072 tokens")
        need(self.seed >= 0, "seed", "0 or more")
        need(self.precision in PRECISIONS, "precision", f"one of {', '.join(PRECISIONS)}")
        need(self.device in ("auto", "cpu", "cuda", "mps"), "device", "one of auto, cpu, cuda, mps")
        need(1 <= self.rm_steps <= 10000, "rm_steps", "between 1 and 10000")
        need(0 < self.rm_held_out < 1, "rm_held_out", f"between 0 and 1 (exclusive), got {self.rm_held_out:g}")
        need(self.rl_algo in RL_ALGOS, "rl_algo", f"one of {', '.join(RL_ALGOS)}")
        need(1 <= self.rl_steps <= 10000, "rl_steps", "between 1 and 10000")
        need(1 <= self.rl_prompts <= 64, "rl_prompts", "between 1 and 64")
        need(2 <= self.rl_k <= 32, "rl_k", "between 2 and 32 (the baseline needs other samples of the prompt)")
        need(0 <= self.rl_beta <= 10, "rl_beta", "0 (no KL penalty) to 10")
        need(1 <= self.max_new_tokens <= 4096, "max_new_tokens", "between 1 and 4096")
        need(0 < self.temperature <= 2, "temperature", "above 0 and at most 2 (RL samples)")

    def to_dict(self) -> dict:
        return asdict(self)

    def to_yaml(self) -> str:
        import yaml
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def command(self, config_path: str = "run.yaml") -> str:
        return f"python -m labs.feedback --config {config_path}"

    @classmethod
    def from_dict(cls, d: dict) -> "UpdateConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"{unknown[0]}: unknown setting (known: {', '.join(sorted(known))})")
        return cls(**d)
