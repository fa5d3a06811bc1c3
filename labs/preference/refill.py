"""Keep pairs ahead of an annotator: when few pairs are left for them to label, make more.

    python -m labs.preference refill --annotator ana                 # once, now: pairs=8 (or pairs=0: enough left)
    python -m labs.preference refill --annotator ana --keep 5 --n 16 --model lab_data/runs/<run-id>

    from labs.preference.refill import BACKGROUND, refill
    refill("ana", model_spec)                        # from code: the new pair ids ([] when more than KEEP are left)
    BACKGROUND.start("ana", model_spec)              # the labeler's way: in a thread, one refill at a time

A refill makes MAKE pairs (two samples of the model per prompt) from the bundled training prompts into the
batch "auto-refill", continuing through the prompts where the store's pair count left off, with that count
as the seed, so every refill asks new prompts or draws new samples. Labeling a picked batch never triggers
one: the new pairs would land outside it.
"""
from __future__ import annotations

import threading

from labs import store

KEEP, MAKE = 3, 8  # refill when 3 or fewer pairs are left to an annotator; make 8 at a time
BATCH = "auto-refill"


def due(annotator: str, keep: int = KEEP, batch: str | None = None) -> dict | None:
    """The annotator's progress ({"done", "total"} over the whole store) when `keep` or fewer pairs are left
    to them, else None; never due for a picked batch. Raises store.StoreError for a missing or unusable name."""
    prog = store.progress(store.check_annotator(annotator))
    return prog if not batch and prog["total"] - prog["done"] <= keep else None


def refill(annotator: str, model_spec: str | None = None, *, keep: int = KEEP, n: int = MAKE,
           temperature: float = 0.8, max_new_tokens: int = 96, actor=None) -> list[int]:
    """Make `n` pairs with `model_spec` (the default model when None) when a refill is due; returns the new
    pair ids ([] when more than `keep` pairs are left). The model is loaded only when pairs are made."""
    from labs import models
    from labs.preference import pairs
    if n < 1:
        raise pairs.PairsError(f"n: at least 1, got {n}")
    prog = due(annotator, keep)
    if prog is None:
        return []
    prompts = pairs.load_prompts("prompts", "train")
    chosen = [prompts[(prog["total"] + i) % len(prompts)] for i in range(n)]
    return pairs.make_pairs(chosen, models.CACHE.get(model_spec or None), temperature=temperature,
                            max_new_tokens=max_new_tokens, seed=prog["total"], batch=BATCH, actor=actor)


class Background:
    """Refills in a daemon thread, at most one at a time in this process (they share one model and one GPU).
    `running` says whether one is under way; `error` holds the last one's failure ("" after a success)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.running = False
        self.error = ""

    def start(self, annotator: str, model_spec: str | None = None, *, batch: str | None = None,
              keep: int = KEEP, n: int = MAKE, actor=None) -> bool:
        """Start a refill when one is due and none runs; True when one was started."""
        try:
            if due(annotator, keep, batch) is None:
                return False
        except store.StoreError:
            return False  # no name typed yet: nothing to keep ahead of
        with self._lock:
            if self.running:
                return False
            self.running = True

        def work():
            try:
                refill(annotator, model_spec, keep=keep, n=n, actor=actor)
                self.error = ""
            except Exception as e:  # noqa: BLE001 - kept for the page to show; the app keeps serving
                self.error = str(e)
            finally:
                self.running = False
        threading.Thread(target=work, daemon=True, name="pref-refill").start()
        return True


BACKGROUND = Background()  # the app's one refiller
