"""Scripted raters: a taste written as code, for running the loop unattended. Always labelled simulated.

    from labs.feedback import raters
    r = raters.get("shorter")                 # or "mentions:python"
    r.name, r.stars("Paris.")                 # ("simulated:shorter", 5)
    raters.rate_samples(samples, "shorter", kind="stars")     # through labs.store, simulated=1

Their ratings go through labs.store.rate with simulated=1 under the name "simulated:<rater>", so the store,
the tab and every table can tell them from people's. The tastes (stars 1-5):

  shorter         by the answer's word count: <= 10 words 5, <= 25 4, <= 40 3, <= 60 2, more than 60 1.
                  (SmolLM2-135M answers the bundled prompts in 30-50 words when cut at 48-64 new tokens,
                  so the base model lands around 2-3 stars and there is room to climb.)
  mentions:WORD   by how often the answer uses WORD (whole word, any case): never 1, once 4, twice or more 5.

As thumbs, a rater gives up when its stars reach the loop's threshold; as best-of-k, it marks the
highest-starred of a prompt's k candidates best (the first of equals) and the others not best.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable

from labs import store
from labs.errors import LabError

SHORTER_BANDS = ((10, 5), (25, 4), (40, 3), (60, 2))  # (most words, stars); more than 60 words: 1 star
NAMES = ("shorter", "mentions:WORD")
PREFIX = "simulated:"


class RaterError(LabError, ValueError):
    """An unknown scripted rater; the message lists the known ones."""


def words(text: str) -> int:
    return len((text or "").split())


def shorter_stars(text: str) -> int:
    w = words(text)
    return next((stars for most, stars in SHORTER_BANDS if w <= most), 1)


def mentions_stars(text: str, word: str) -> int:
    n = len(re.findall(rf"(?<!\w){re.escape(word)}(?!\w)", text or "", flags=re.IGNORECASE))
    return 1 if n == 0 else 4 if n == 1 else 5


@dataclass(frozen=True)
class Rater:
    name: str                      # as stored: "simulated:shorter"
    stars: Callable[[str], int]    # completion -> 1..5
    describe: str                  # one line for the page and the CLI


def get(spec: str) -> Rater:
    """A scripted rater from its spec: "shorter" or "mentions:WORD" (a "simulated:" prefix is accepted)."""
    spec = (spec or "").strip()
    if spec.startswith(PREFIX):
        spec = spec[len(PREFIX):]
    if spec == "shorter":
        return Rater(PREFIX + "shorter", shorter_stars,
                     "simulated rater: shorter answers get more stars (<=10 words 5 ... >60 words 1)")
    if spec.startswith("mentions:"):
        word = spec.split(":", 1)[1].strip()
        if not word or not re.fullmatch(r"[\w'-]{1,40}", word):
            raise RaterError(f"rater '{spec}': mentions: needs one word after the colon, e.g. mentions:python")
        return Rater(f"{PREFIX}mentions:{word}", lambda t, w=word: mentions_stars(t, w),
                     f"simulated rater: answers that use '{word}' get more stars (never 1, once 4, more 5)")
    raise RaterError(f"rater '{spec}': the scripted raters are shorter and mentions:WORD")


def verdicts(samples: list[dict], rater: Rater, kind: str = "stars", threshold: float = 4.0) -> list[float]:
    """The rating the rater gives each sample, in order: stars, thumbs (5 up / 1 down) or best-of-k (5 / 1)."""
    stars = [rater.stars(s["completion"]) for s in samples]
    if kind == "stars":
        return [float(x) for x in stars]
    if kind == "thumbs":
        return [5.0 if x >= threshold else 1.0 for x in stars]
    if kind != "best_of_k":
        raise RaterError(f"kind {kind!r}: stars, thumbs or best_of_k")
    best: dict[str, int] = {}  # prompt -> index of its best sample so far (the first of equals)
    for i, s in enumerate(samples):
        key = json.dumps(s["prompt"], sort_keys=True)
        if key not in best or stars[i] > stars[best[key]]:
            best[key] = i
    winners = set(best.values())
    return [5.0 if i in winners else 1.0 for i in range(len(samples))]


def rate_samples(samples: list[dict], spec: str, kind: str = "stars", threshold: float = 4.0) -> list[float]:
    """Rate stored samples (dicts with id, prompt, completion) as the scripted rater; each rating is committed."""
    rater = get(spec)
    values = verdicts(samples, rater, kind, threshold)
    for s, v in zip(samples, values):
        store.rate(s["id"], rater.name, v, kind=kind, simulated=True)
    return values
