"""Prompts in, pairs of generations out: what the labeler shows people.

    from labs.preference import pairs
    prompts = pairs.load_prompts("prompts", split="train")       # the bundled prompt set's labeling part
    ids = pairs.make_pairs(prompts[:8], loaded, temperature=0.8, seed=0)   # stored in labs.store

One model: its two sampled candidates per prompt, generated together with the next prompts' in one
batched call (labs.generate.sample, k=2). Two models head to head: one candidate from each, the same
sampling settings and seed. With every pair the sampling settings are stored, and whether each answer ended
(the model wrote its end token) or was cut at max_new_tokens: `sampling["ended"] = {"a": bool, "b": bool}`,
which `cut(pair)` reads back for the labeler's marks. The prompt set is the bundled one
(assets/prompts/prompts.jsonl, split by category into prompts to label and held-out prompts for
before/after), a saved dataset with a prompt column, a data file, or prompts typed one per line.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

from labs import generate, store
from labs.errors import LabError

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "assets" / "prompts" / "prompts.jsonl"
HELD_OUT_SHARE = 0.25  # of each category's bundled prompts: kept for before/after, never labeled


class PairsError(LabError, ValueError):
    """Prompts or settings that cannot make pairs; the message says why."""


def _held_out(text: str) -> bool:
    return int(hashlib.sha256(text.encode()).hexdigest(), 16) % 100 < HELD_OUT_SHARE * 100


def _as_chat(p) -> list[dict]:
    if isinstance(p, list):
        return p
    return [{"role": "user", "content": str(p).strip()}]


def load_prompts(source: str = "prompts", split: str = "train") -> list[list[dict]]:
    """Chat prompts from `source`: "prompts" (bundled; split "train" = to label, "held_out" = for before/after),
    a saved dataset's name (its `split`, any format with a prompt), or a data file (.jsonl/.json/.csv/.tsv)."""
    from labs import data, paths
    paths.check_server_path(source or "", "prompts")
    if split not in ("train", "held_out", "validation", "test"):
        raise PairsError(f"split {split!r}: train, held_out, validation or test")
    if source in ("prompts", "bundled", "", None):
        rows = data.read_rows(BUNDLED)
        keep = [r["prompt"] for r in rows if _held_out(r["prompt"]) == (split != "train")]
        return [_as_chat(p) for p in keep]
    p = Path(source).expanduser()
    if p.suffix in data.EXTENSIONS or p.is_file():
        rows = data.read_rows(p)
    else:
        try:
            dd = data.load_saved(source)
        except data.DataError as e:
            raise PairsError(f"prompts '{source}': not 'prompts', not a data file, and {e}") from None
        name = {"held_out": "test"}.get(split, split)
        if name not in dd:
            name = "train"
        rows = [dict(r) for r in dd[name]]
    out = []
    for r in rows:
        if "prompt" in r:
            out.append(_as_chat(r["prompt"]))
        elif "messages" in r or "text" in r or "question" in r:
            prompt = data.prompt_of(data.sft_row(r)) if "messages" in r else r.get("question") or r.get("text")
            out.append(_as_chat(prompt))
    if not out:
        raise PairsError(f"prompts '{source}': no row has a prompt (columns: {', '.join(data.columns_of(rows))})")
    return out


def typed_prompts(text: str) -> list[list[dict]]:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    if not lines:
        raise PairsError("type at least one prompt (one per line)")
    return [_as_chat(ln) for ln in lines]


def make_pairs(prompts: list, model, model_b=None, *, temperature: float = 0.8, top_p: float = 0.95,
               max_new_tokens: int = 96, seed: int = 0, batch: str | None = None, batch_size: int = 16,
               progress=None, actor=None) -> list[int]:
    """Generate and store one pair per prompt; returns the new pair ids. `model`/`model_b` are
    labs.models.Loaded; with model_b each side comes from a different model. `progress(done, total)` is called
    before the first prompts (0, total) and after each batched call."""
    from labs import access
    access.check(actor or access.actor(None), "start_run", what="pair generation")
    if not prompts:
        raise PairsError("no prompts to make pairs from")
    if temperature <= 0 and model_b is None:
        raise PairsError("temperature 0 gives one model the same answer twice: raise it, or pick a second model")
    batch = batch or time.strftime("pairs-%Y%m%d-%H%M%S")
    sampling = {"temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens, "seed": seed}
    kw = dict(temperature=temperature, top_p=top_p if temperature > 0 else 1.0, max_new_tokens=max_new_tokens,
              batch_size=batch_size)
    kw["return_ended"] = True
    ids = []
    step = max(1, batch_size // 2)  # prompts per call: their candidates are generated together
    if progress:
        progress(0, len(prompts))
    for i in range(0, len(prompts), step):
        chunk = [_as_chat(p) for p in prompts[i:i + step]]
        if model_b is None:
            cands = generate.sample(model.model, model.tokenizer, chunk, k=2, seed=seed + i, **kw)
            a, b = [c[0] for c in cands], [c[1] for c in cands]
        else:
            a = [c[0] for c in generate.sample(model.model, model.tokenizer, chunk, k=1, seed=seed + i, **kw)]
            b = [c[0] for c in generate.sample(model_b.model, model_b.tokenizer, chunk, k=1, seed=seed + i, **kw)]
        spec_a = model.source.spec
        spec_b = model_b.source.spec if model_b is not None else spec_a
        rows = [{"prompt": p, "a": x, "b": y, "model_a": spec_a, "model_b": spec_b,
                 "sampling": {**sampling, "ended": {"a": x_ended, "b": y_ended}}}
                for p, (x, x_ended), (y, y_ended) in zip(chunk, a, b) if x.strip() or y.strip()]
        ids += store.add_pairs(rows, batch=batch, source=f"{spec_a} vs {spec_b}" if model_b is not None else spec_a)
        if progress:
            progress(min(i + step, len(prompts)), len(prompts))
    return ids


def cut(pair: dict) -> dict[str, bool]:
    """Which answers of a stored pair were cut at max_new_tokens (they never reached the model's end token):
    {"a": .., "b": ..} in stored terms, plus {"A": .., "B": ..} as shown when the pair was read for an
    annotator (store.get_pair(id, annotator)). Pairs stored before this was recorded count as not cut."""
    ended = (pair.get("sampling") or {}).get("ended") or {}
    out = {side: ended.get(side) is False for side in ("a", "b")}
    if pair.get("shown") in ("ab", "ba"):
        out["A"], out["B"] = out[pair["shown"][0]], out[pair["shown"][1]]
    return out
