"""The policy update's config: one dataclass (labs/config.py's RunConfig) that validates itself, is saved as
YAML in the run directory, and is what `python -m labs.feedback --config run.yaml` runs.

    from labs.feedback.config import LoopSettings, UpdateConfig
    cfg = UpdateConfig(loop="my-loop", round=2, mode="kto")    # raises ConfigError naming the field
    print(cfg.to_yaml())
    LoopSettings.from_dict(state["settings"])                  # a loop's settings: what its next round uses

Sizes are for 2 CPU cores and a few minutes per round: 16 steps of 8 rows (KTO) or 4 pairs (DPO) with
LoRA r=16 on SmolLM2-135M (measured in docs/results.md's RLHF section: `python -m labs.feedback --rounds 3`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from labs.config import DEVICES, LINEAR_NAMES, ConfigError, LoraSettings, RunConfig, setting
from labs.store import RATING_KINDS

__all__ = ["UpdateConfig", "LoopSettings", "ConfigError", "HELP", "MODES", "RL_ALGOS", "DRAWS", "LINEAR_NAMES"]

MODES = ("kto", "dpo", "rm")
RL_ALGOS = ("rloo", "grpo")
DRAWS = ("same", "walk")
MAX_BEST_OF_K = 8  # best-of-k shows a prompt's answers side by side, one key each (1-8)
PRECISIONS = ("auto", "bf16", "fp32")
UPDATE, RM = "Update", "Reward model and RL (mode rm)"


@dataclass
class UpdateConfig(LoraSettings, RunConfig):
    recipe: ClassVar[str] = "feedback"
    loop: str = setting("", "The loop whose ratings train the policy (every rating so far).", form=False)
    round: int = setting(0, "The round this update follows (its ratings are the newest in the data).", min=0,
                         max=1_000_000, form=False)
    mode: str = setting("kto", "kto: every rated answer is good or bad (threshold); dpo: pairs of one prompt's "
                        "answers rated differently; rm: a reward model learns the ratings, then RLOO/GRPO trains on "
                        "unrated prompts.", choices=MODES, group=UPDATE)
    model: str = setting("HuggingFaceTB/SmolLM2-135M-Instruct", "The loop's starting model (the reference: KL is "
                         "measured against it).", form=False)
    init_run: str = setting("", "Run whose adapter the update continues from (the current policy); empty = a "
                            "fresh adapter.", form=False)
    prompts: str = setting("prompts", "The loop's prompt pool; the rm path draws its unrated prompts from it.",
                           form=False)
    threshold: float = setting(4.0, "KTO: a rating at or above this is desirable, below it undesirable.", min=1,
                               max=5, min_open=True, group=UPDATE)
    beta: float = setting(0.1, "KTO/DPO: how far the policy may move from the reference (higher = stays closer).",
                          min=0, max=10, min_open=True, group=UPDATE)
    learning_rate: float = setting(1e-3, "Step size of the adapter weights.", min=0, max=1e-2, min_open=True,
                                   group=UPDATE)
    max_steps: int = setting(16, "Optimizer steps of the KTO or DPO update.", min=1, max=10000, group=UPDATE)
    batch_size: int = setting(8, "Rows per step (KTO: at least 2, its KL estimate pairs rows of one batch; DPO: "
                              "pairs).", min=2, max=256, group=UPDATE, advanced=True)
    max_length: int = setting(256, "Tokens kept per sequence (prompt + answer).", min=32, max=131072,
                              group=UPDATE, advanced=True)
    seed: int = setting(0, "Random seed for the row order and the adapter init.", min=0, max=2**32 - 1,
                        group=UPDATE, advanced=True)
    precision: str = setting("auto", "auto: bf16 autocast where bf16 matmuls measure faster than fp32, else "
                             "fp32.", choices=PRECISIONS, group=UPDATE, advanced=True)
    device: str = setting("auto", "auto, cpu, cuda or mps.", choices=DEVICES, group=UPDATE, advanced=True)
    submitted_at: float = setting(0.0, "When the update was asked for (seconds since the epoch): the rounds "
                                  "table counts queue time from it.", min=0, form=False)
    rm_steps: int = setting(16, "rm: reward-model training steps (pairs of 8).", min=1, max=10000, group=RM,
                            advanced=True)
    rm_held_out: float = setting(0.25, "rm: share of prompts whose pairs are held out to measure the reward "
                                 "model's accuracy.", min=0, max=1, min_open=True, max_open=True, group=RM,
                                 advanced=True)
    rl_algo: str = setting("rloo", "rm: rloo (leave-one-out baseline over k samples) or grpo (group-normalised "
                           "advantages).", choices=RL_ALGOS, group=RM, advanced=True)
    rl_steps: int = setting(4, "rm: RL steps (each samples rl_prompts x rl_k answers, scores them, updates the "
                            "policy once).", min=1, max=10000, group=RM, advanced=True)
    rl_prompts: int = setting(2, "rm: unrated prompts per RL step (each sampled rl_k times).", min=1, max=64,
                              group=RM, advanced=True)
    rl_k: int = setting(4, "rm: samples per prompt in the RL step (at least 2: the baseline is the others' mean).",
                        min=2, max=32, group=RM, advanced=True)
    rl_beta: float = setting(0.05, "rm: KL penalty to the reference in the RL reward.", min=0, max=10, group=RM,
                             advanced=True)
    max_new_tokens: int = setting(48, "rm: longest answer sampled during RL.", min=1, max=4096, group=RM,
                                  advanced=True)
    temperature: float = setting(0.8, "rm: sampling temperature during RL.", min=0, max=2, min_open=True,
                                 group=RM, advanced=True)

    def check(self):
        self.need(self.loop, "loop", "name the loop whose ratings train the policy")
        self.need(self.model, "model", "give the loop's starting model")
        self.check_lora()

    def target_modules(self):
        """'all-linear' means the decoder's linear layers by name: on the reward model (a classification head)
        PEFT's all-linear would also adapt the new score head."""
        t = super().target_modules()
        return list(LINEAR_NAMES) if t == "all-linear" else t


HELP = UpdateConfig.help()


@dataclass
class LoopSettings(RunConfig):
    """A loop's settings: what its next round asks and how its next update learns (kept in loop.json)."""
    model: str = setting("HuggingFaceTB/SmolLM2-135M-Instruct", "The loop's starting model (its reference for "
                         "KL); fixed once a round exists.", form=False)
    pool: str = setting("prompts", "Prompt pool: 'prompts' (bundled), a saved dataset, or 'typed' (the loop's own "
                        "list).", form=False)
    prompts: int = setting(8, "Prompts per round.", min=1, max=64, widget="slider", label="Prompts per round")
    k: int = setting(4, "Answers per prompt: people compare a prompt's answers (best-of-k, DPO pairs).", min=1,
                     max=16, widget="slider", label="Answers per prompt (k)")
    temperature: float = setting(0.8, "Sampling temperature of the round's answers (0 = greedy, one answer).",
                                 min=0, max=2, widget="slider", step=0.05, label="Temperature")
    top_p: float = setting(0.95, "Nucleus sampling: the smallest set of tokens whose probability reaches top-p.",
                           min=0, max=1, min_open=True, widget="slider", step=0.05, label="Top-p")
    max_new_tokens: int = setting(48, "Longest answer, in tokens.", min=1, max=4096, label="Max new tokens")
    seed: int = setting(0, "The loop's seed: round N samples with seed + N - 1 (so a round can be redrawn).",
                        min=0, max=2**32 - 1, label="Loop seed")
    kind: str = setting("stars", "How people rate an answer.", choices=RATING_KINDS, widget="radio",
                        label="How people rate", choice_labels={"stars": "1-5 stars", "thumbs": "thumbs up / down",
                                                                "best_of_k": "best of k"})
    threshold: float = setting(4.0, "Stars counted as good: KTO's desirable answers and the chart's good share.",
                               min=1, max=5, min_open=True, widget="slider", step=0.5,
                               label="Good at or above (stars)")
    mode: str = setting("kto", "The policy update after a round.", choices=MODES, widget="radio",
                        label="Policy update", choice_labels={"kto": "KTO: each answer good or bad",
                                                              "dpo": "DPO: pairs of one prompt's answers",
                                                              "rm": "reward model, then RL on unrated prompts"})
    rl_algo: str = setting("rloo", "RL after the reward model (mode rm), with a KL penalty to the starting model.",
                           choices=RL_ALGOS, widget="radio", label="RL after the reward model",
                           choice_labels={"rloo": "RLOO", "grpo": "GRPO"})
    draw: str = setting("same", "Which prompts a round asks: the same every round (rounds compare like with like) "
                        "or new ones (a walk through the pool).", choices=DRAWS, widget="radio",
                        label="Which prompts a round asks",
                        choice_labels={"same": "the same prompts every round (rounds compare like with like)",
                                       "walk": "new prompts every round (walk through the pool)"})

    def check(self):
        need = self.need
        need(self.model, "model", "give the loop's starting model")
        need(self.pool, "pool", "give a prompt pool ('prompts', a saved dataset or 'typed')")
        need(self.temperature > 0 or self.k == 1, "temperature", "0 is greedy: k answers would all be equal; "
             "raise the temperature")
        need(self.k >= 2 or (self.kind != "best_of_k" and self.mode == "kto"), "k",
             "best-of-k rating and the dpo and rm updates compare a prompt's answers; use k >= 2")
        need(self.kind != "best_of_k" or self.k <= MAX_BEST_OF_K, "k",
             f"best-of-k shows at most {MAX_BEST_OF_K} answers side by side")
