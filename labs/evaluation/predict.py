"""From (model spec, examples, task) to predictions and held-out losses, whatever kind of model answers.

    from labs.evaluation import predict
    preds = predict.predict("default", examples, "qa", max_new_tokens=48)   # [Prediction(text, finished)]
    losses = predict.losses("default", examples)                           # [(nll sum, trained tokens)] or None

Examples come from labs.evaluation.data (each has 'prompt', 'references', 'sft'). A model spec is what
labs.models.resolve takes (Hub id, local directory, a run directory, 'default'); `model_kind` tells which
predictor answers it:
  * "causal_lm" (built in): greedy generation through labs.generate (batched, left-padded), and the loss
    on the tokens labs.data.mask.tokenize_row trains (the answer and its end-of-turn token).
  * anything else is registered by its recipe: a run whose status.json says recipe "encoder" is answered
    by the predictor registered under "encoder"; labs.encoder is imported on first use, so its
    labs/encoder/__init__.py registers it:

        from labs.evaluation import predict
        predict.register("encoder", Predictor(predict=classify_or_extract, losses=None))

    `predict(spec, examples, task, *, max_new_tokens, batch_size, progress)` returns one Prediction per
    example (a label for classification, a span for qa); `losses` may be None (no held-out loss then).
`progress(done, total)` is called after each batch.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

from labs.errors import LabError


class EvalError(LabError, ValueError):
    """An evaluation that cannot run; the message says what to change."""


class Prediction(NamedTuple):
    text: str
    finished: bool | None  # False: generation stopped at max_new_tokens; None: the predictor cannot tell


@dataclass
class Predictor:
    predict: Callable
    losses: Callable | None = None


PREDICTORS: dict[str, Predictor] = {}
UNFINISHED_MARGIN = 4


def register(kind: str, predictor: Predictor) -> None:
    PREDICTORS[kind] = predictor


NOT_CAUSAL = {"encoder"}  # recipes whose runs are no causal LM (their package registers a predictor)


def model_kind(spec: str) -> str:
    """'causal_lm', or the recipe of a run directory whose model is not a causal LM (e.g. 'encoder')."""
    p = Path(str(spec)).expanduser()
    try:
        recipe = json.loads((p / "status.json").read_text()).get("recipe")
    except (OSError, ValueError):
        recipe = None
    return recipe if recipe in NOT_CAUSAL or (recipe in PREDICTORS and recipe != "causal_lm") else "causal_lm"


def predictor(spec: str) -> Predictor:
    """The registered predictor for `spec`'s kind; a recipe package (labs.<kind>) is imported first, so that
    its import can register it."""
    import importlib
    import importlib.util
    kind = model_kind(spec)
    if kind not in PREDICTORS and importlib.util.find_spec(f"labs.{kind}") is not None:
        importlib.import_module(f"labs.{kind}")
    if kind not in PREDICTORS:
        raise EvalError(f"model '{spec}': a '{kind}' run has no predictor registered "
                        f"(labs.evaluation.predict.register('{kind}', ...)); known: {', '.join(PREDICTORS)}")
    return PREDICTORS[kind]


def predict(spec: str, examples: list[dict], task: str, *, max_new_tokens: int = 48, batch_size: int = 16,
            progress=None) -> list[Prediction]:
    return predictor(spec).predict(spec, examples, task, max_new_tokens=max_new_tokens, batch_size=batch_size,
                                   progress=progress)


def losses(spec: str, examples: list[dict], *, batch_size: int = 8, max_length: int = 1024,
           progress=None) -> list[tuple[float, int]] | None:
    fn = predictor(spec).losses
    return fn(spec, examples, batch_size=batch_size, max_length=max_length, progress=progress) if fn else None


def loss_summary(pairs: list[tuple[float, int]]) -> dict:
    """Mean loss per trained token over all rows (each token counts once) and its perplexity exp(loss)."""
    nll, n = sum(p[0] for p in pairs), sum(p[1] for p in pairs)
    if not n:
        return {}
    loss = nll / n
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "loss_tokens": n}


# --------------------------------------------------------------------------- the causal LM predictor
def _loaded(spec: str):
    from labs import models
    try:
        return models.CACHE.get(spec)
    except models.ModelError as e:
        raise EvalError(str(e)) from None


def _generate(spec, examples, task, *, max_new_tokens=48, batch_size=16, progress=None) -> list[Prediction]:
    from labs.generate import greedy
    loaded = _loaded(spec)
    tok, out = loaded.tokenizer, []
    todo = [(i, e["prompt"]) for i, e in enumerate(examples) if e.get("prompt") is not None]
    answers: dict[int, Prediction] = {}
    for b in range(0, len(todo), batch_size):
        chunk = todo[b:b + batch_size]
        texts = greedy(loaded.model, tok, [p for _, p in chunk], max_new_tokens, batch_size)
        for (i, _), t in zip(chunk, texts):
            # The sampler returns text (decoded without special tokens, stripped), so the tokens it generated
            # are counted again: an answer within UNFINISHED_MARGIN tokens of the limit counts as cut off (a
            # 64-token repetition of SmolLM2 re-encodes to 62 tokens once its trailing newlines are stripped).
            n = len(tok(t, add_special_tokens=False)["input_ids"])
            answers[i] = Prediction(t, n < max_new_tokens - UNFINISHED_MARGIN)
        if progress:
            progress(min(b + batch_size, len(todo)), len(todo))
    for i in range(len(examples)):
        out.append(answers.get(i, Prediction("", None)))
    return out


def _losses(spec, examples, *, batch_size=8, max_length=1024, progress=None) -> list[tuple[float, int]]:
    """(summed negative log-likelihood, trained tokens) per example, on labs.data.mask.tokenize_row's labels."""
    import torch
    from labs.data.mask import tokenize_row
    loaded = _loaded(spec)
    model, tok = loaded.model, loaded.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    rows = [tokenize_row(tok, e["sft"], max_length) if e.get("sft") else None for e in examples]
    out: list[tuple[float, int]] = [(0.0, 0)] * len(rows)
    todo = [i for i, r in enumerate(rows) if r and any(lab != -100 for lab in r["labels"][1:])]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for b in range(0, len(todo), batch_size):
                idx = todo[b:b + batch_size]
                width = max(len(rows[i]["input_ids"]) for i in idx)
                ids = torch.full((len(idx), width), pad, dtype=torch.long)
                labels = torch.full((len(idx), width), -100, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for j, i in enumerate(idx):  # right padding: positions stay those of training
                    n = len(rows[i]["input_ids"])
                    ids[j, :n] = torch.tensor(rows[i]["input_ids"])
                    labels[j, :n] = torch.tensor(rows[i]["labels"])
                    mask[j, :n] = 1
                dev = model.device
                logits = model(input_ids=ids.to(dev), attention_mask=mask.to(dev)).logits.float()
                target = labels[:, 1:].to(dev)  # token t is predicted at position t-1
                nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), target, ignore_index=-100,
                                                        reduction="none")
                for j, i in enumerate(idx):
                    out[i] = (float(nll[j].sum()), int((target[j] != -100).sum()))
                if progress:
                    progress(min(b + batch_size, len(todo)), len(todo))
    finally:
        model.train(was_training)
    return out


register("causal_lm", Predictor(predict=_generate, losses=_losses))
