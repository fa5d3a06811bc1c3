"""The Trainer callback that connects any TRL/transformers trainer to its run directory.

Kept apart from labs.runs so the app can read runs without importing transformers.
"""
from __future__ import annotations

import math
import time

from transformers import TrainerCallback

# Keys the monitor understands; anything else a trainer logs is kept as is.
RENAME = {"train_loss": "train_loss_mean", "train_runtime": "train_runtime_s"}


class ProgressCallback(TrainerCallback):
    """Writes each Trainer log to metrics.jsonl with timing, reports the phase `phase` (its steps and time
    left) into status.json about once a second, honours Stop."""

    def __init__(self, session, status_every_s: float = 1.0, phase: str = "training"):
        self.session = session
        self.phase = phase
        self.status_every_s = status_every_s
        self._t0 = None
        self._step0 = 0
        self._last_status = 0.0
        self._last_tokens = None  # (time, cumulative tokens) at the previous log

    def on_train_begin(self, args, state, control, **kw):
        self._t0 = time.perf_counter()
        self._step0 = state.global_step  # > 0 when resuming
        self.session.progress(state.global_step, state.max_steps, None, phase=self.phase)

    def _eta(self, state) -> float | None:
        done = state.global_step - self._step0
        if done <= 0 or self._t0 is None:
            return None
        return (time.perf_counter() - self._t0) / done * max(0, state.max_steps - state.global_step)

    def on_step_end(self, args, state, control, **kw):
        now = time.perf_counter()
        if now - self._last_status >= self.status_every_s or state.global_step == state.max_steps:
            self._last_status = now
            self.session.progress(state.global_step, state.max_steps, self._eta(state), phase=self.phase)
        if self.session.should_stop():
            control.should_save = True  # a checkpoint at this step, so Resume continues from here
            control.should_training_stop = True
        return control

    def on_log(self, args, state, control, logs=None, **kw):
        if not logs:
            return
        now = time.perf_counter()
        row = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4)}
        for k, v in logs.items():
            if isinstance(v, float) and not math.isfinite(v):
                v = None
            row[RENAME.get(k, k)] = v
        row["elapsed_s"] = round(now - (self._t0 or now), 2)
        row["eta_s"] = self._eta(state)
        tokens = logs.get("num_tokens", getattr(state, "num_input_tokens_seen", None))
        if tokens and "loss" in logs:
            if self._last_tokens and now > self._last_tokens[0] and tokens > self._last_tokens[1]:
                row["tokens_per_s"] = round((tokens - self._last_tokens[1]) / (now - self._last_tokens[0]), 1)
            self._last_tokens = (now, tokens)
        self.session.log(row)

    def on_train_end(self, args, state, control, **kw):
        self.session.progress(state.global_step, state.max_steps, 0.0, phase=self.phase)
