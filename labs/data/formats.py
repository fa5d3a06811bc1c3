"""Dataset formats, part 2: rows of any detected format (labs.data.detect) converted to each trainer's input.

What each trainer gets (TRL 1.16 dataset types, conversational by default):

    to_sft         {"prompt": [msgs up to the last assistant turn], "completion": [last assistant msg]}
                   or {"messages": [...]} (form="messages"), or {"text": ...} for plain text
    to_preference  {"prompt": [msgs], "chosen": [assistant msg], "rejected": [assistant msg]}   DPO / ORPO
    to_kto         {"prompt": [msgs], "completion": [assistant msg], "label": bool}              KTO

Rows that cannot be converted are skipped and listed in `result.skipped` as (row number, reason);
row numbers count from 1, in the order the rows were read.
"""
from __future__ import annotations

import json
import re
from collections import defaultdict

from labs.data.detect import (FALSE_LABELS, TRUE_LABELS, DataError, is_messages, apply_mapping, detect_format,
                              required_columns)

SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "bot": "assistant", "model": "assistant", "system": "system", "tool": "tool"}


class Rows(list):
    """A list of converted rows that also remembers which input rows were skipped and why."""

    def __init__(self, rows=(), skipped=None):
        super().__init__(rows)
        self.skipped: list[tuple[int, str]] = skipped or []


# --------------------------------------------------------------------------- row -> messages
def _text(v, what: str) -> str:
    if isinstance(v, str):
        return v
    if v is None:
        raise ValueError(f"{what} is missing")
    raise ValueError(f"{what} should be text, got {type(v).__name__}")


def _msgs(v, what: str, default_role: str) -> list[dict]:
    """A string or a message list -> a validated message list."""
    if isinstance(v, str):
        if not v.strip():
            raise ValueError(f"{what} is empty")
        return [{"role": default_role, "content": v}]
    if is_messages(v):
        out = []
        for m in v:
            if not isinstance(m["content"], str):
                raise ValueError(f"{what}: message content should be text, got {type(m['content']).__name__}")
            out.append({"role": str(m["role"]), "content": m["content"]})
        return out
    if v is None or v == []:
        raise ValueError(f"{what} is missing")
    raise ValueError(f"{what} should be text or a list of {{role, content}} messages, got {type(v).__name__}")


def sharegpt_to_messages(turns) -> list[dict]:
    if not is_messages(turns, "from", "value"):
        raise ValueError("conversations should be a list of {from, value} turns")
    out = []
    for t in turns:
        role = SHAREGPT_ROLES.get(str(t["from"]).lower())
        if role is None:
            raise ValueError(f"unknown ShareGPT speaker {t['from']!r}")
        out.append({"role": role, "content": _text(t["value"], "turn value")})
    return out


_TRANSCRIPT = re.compile(r"\n*(Human|Assistant|User|System):[ \t]?", re.I)


def transcript_to_messages(text: str) -> list[dict]:
    """'\\n\\nHuman: hi\\n\\nAssistant: hello' -> user/assistant messages (Anthropic HH style)."""
    parts = _TRANSCRIPT.split(text)
    if len(parts) < 3:
        raise ValueError("transcript has no 'Human:' / 'Assistant:' turns")
    out = []
    for speaker, content in zip(parts[1::2], parts[2::2]):
        role = {"human": "user", "user": "user", "assistant": "assistant", "system": "system"}[speaker.lower()]
        out.append({"role": role, "content": content.strip()})
    return out


def _split_last_assistant(msgs: list[dict]) -> tuple[list[dict], list[dict]]:
    idx = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=None)
    if idx is None:
        raise ValueError("conversation has no assistant turn")
    if idx == 0:
        raise ValueError("conversation starts with the assistant: nothing to answer")
    if not msgs[idx]["content"].strip():
        raise ValueError("the last assistant turn is empty")
    return msgs[:idx], [msgs[idx]]


def _classification_prompt(text: str, labels: list[str]) -> str:
    return f"Label this text with one of: {', '.join(labels)}.\n\nText: {text}"


def qa_prompt(context: str, question: str) -> str:
    return ("Answer the question with a short span copied from the context.\n\n"
            f"Context: {context}\n\nQuestion: {question}")


def label_bool(v) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in TRUE_LABELS:
        return True
    if s in FALSE_LABELS:
        return False
    raise ValueError(f"label {v!r} is not true/false (or good/bad, 1/0)")


def conversation(row: dict, fmt: str, labels: list[str] | None = None) -> list[dict]:
    """One row as the conversation an SFT trainer would see (ending on an assistant turn)."""
    if fmt == "instruction":
        instr = _text(row.get("instruction"), "instruction")
        inp = row.get("input") or ""
        user = instr if not str(inp).strip() else f"{instr}\n\n{_text(inp, 'input')}"
        return [{"role": "user", "content": user}, {"role": "assistant", "content": _text(row.get("output"), "output")}]
    if fmt in ("prompt_completion", "unpaired_preference"):
        return _msgs(row.get("prompt"), "prompt", "user") + _msgs(row.get("completion"), "completion", "assistant")
    if fmt == "messages":
        return _msgs(row.get("messages"), "messages", "user")
    if fmt == "sharegpt":
        return sharegpt_to_messages(row.get("conversations"))
    if fmt in ("preference", "preference_implicit", "preference_ab"):
        p = pair(row, fmt)
        return p["prompt"] + p["chosen"]
    if fmt == "classification":
        return [{"role": "user", "content": _classification_prompt(_text(row.get("text"), "text"), labels or [])},
                {"role": "assistant", "content": str(row.get("label"))}]
    if fmt == "extractive_qa":
        ans = row.get("answers")
        if isinstance(ans, dict):
            ans = ans.get("text")
        if isinstance(ans, str):
            ans = [ans]
        if not ans or not isinstance(ans, list) or not isinstance(ans[0], str) or not ans[0].strip():
            raise ValueError("answers has no answer text")
        return [{"role": "user", "content": qa_prompt(_text(row.get("context"), "context"),
                                                       _text(row.get("question"), "question"))},
                {"role": "assistant", "content": ans[0]}]
    if fmt == "text":
        raise ValueError("plain text has no conversation")
    if fmt == "prompt_only":
        raise ValueError("a prompt without an answer has nothing to train on; generate or write answers first")
    raise ValueError(f"unknown format {fmt}")


def pair(row: dict, fmt: str) -> dict:
    """A preference row -> {"prompt": msgs, "chosen": [assistant...], "rejected": [assistant...]}."""
    if fmt == "preference_ab":
        pref = str(row.get("preference", "")).strip().upper()
        if pref not in ("A", "B"):
            raise ValueError(f"preference is {row.get('preference')!r}, expected \"A\" or \"B\"")
        a, b = row.get("response_A"), row.get("response_B")
        chosen, rejected = (a, b) if pref == "A" else (b, a)
        return {"prompt": _msgs(row.get("prompt"), "prompt", "user"),
                "chosen": _msgs(chosen, "chosen", "assistant"), "rejected": _msgs(rejected, "rejected", "assistant")}
    if fmt == "preference":
        prompt = _msgs(row.get("prompt"), "prompt", "user")
        return {"prompt": prompt, "chosen": _msgs(row.get("chosen"), "chosen", "assistant"),
                "rejected": _msgs(row.get("rejected"), "rejected", "assistant")}
    if fmt == "preference_implicit":
        c, r = row.get("chosen"), row.get("rejected")
        c = transcript_to_messages(c) if isinstance(c, str) else _msgs(c, "chosen", "assistant")
        r = transcript_to_messages(r) if isinstance(r, str) else _msgs(r, "rejected", "assistant")
        n = 0  # the shared start of both transcripts is the prompt
        while n < min(len(c), len(r)) - 1 and c[n] == r[n]:
            n += 1
        prompt, chosen, rejected = c[:n], c[n:], r[n:]
        if not prompt:
            raise ValueError("chosen and rejected share no opening turns, so there is no prompt")
        if chosen[0]["role"] != "assistant" or rejected[0]["role"] != "assistant":
            raise ValueError("chosen and rejected differ before the assistant's answer")
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    raise ValueError(f"format {fmt} has no chosen/rejected pair")


# --------------------------------------------------------------------------- standard (string) form
def _flatten(msgs: list[dict], generation_prompt: bool = False) -> str:
    if len(msgs) == 1 and msgs[0]["role"] in ("user", "assistant"):
        return msgs[0]["content"]
    names = {"user": "Human", "assistant": "Assistant", "system": "System"}
    s = "".join(f"\n\n{names.get(m['role'], m['role'])}: {m['content']}" for m in msgs)
    return s + ("\n\nAssistant:" if generation_prompt else "")


def _standard(row: dict) -> dict:
    out = dict(row)
    for k in ("chosen", "rejected", "completion"):
        if k in out:
            out[k] = _flatten(out[k])
    if "prompt" in out:
        out["prompt"] = _flatten(out["prompt"], generation_prompt=len(out["prompt"]) > 1)
    return out


def _labels_of(rows):
    return sorted({str(r.get("label")) for r in rows if r.get("label") not in (None, "")})


# --------------------------------------------------------------------------- converters
SFT_FORMS = ("auto", "prompt_completion", "messages")
CONVERSATIONS = ("messages", "sharegpt")  # sources that are whole conversations


def to_sft(rows: list[dict], fmt: str | None = None, mapping=None, *, form: str = "prompt_completion",
           conversational: bool = True, system: str | None = None, all_turns: bool = False) -> Rows:
    """Rows -> SFTTrainer input. form: "prompt_completion" (default; trains on the answer only), "messages"
    (the conversation; the lab trains every assistant turn, see labs.data.mask) or "auto" (messages for
    conversations — messages and ShareGPT sources —, prompt_completion for the rest).

    A prompt/completion row trains only the last assistant turn; all_turns=True makes one row per
    assistant turn of a multi-turn conversation, so every assistant turn is trained once.
    Preference rows give their chosen answer; KTO rows only their good (label true) answers."""
    if form not in SFT_FORMS:
        raise DataError(f"SFT form {form!r} is not one of {', '.join(SFT_FORMS)}")
    fmt = fmt or detect_format(rows)[0]
    if form == "auto":
        form = "messages" if fmt in CONVERSATIONS else "prompt_completion"
    rows = apply_mapping(rows, fmt, mapping)
    labels = _labels_of(rows) if fmt == "classification" else None
    out, skipped = [], []
    for i, row in enumerate(rows, 1):
        try:
            if fmt == "text":
                text = _text(row.get("text"), "text")
                if not text.strip():
                    raise ValueError("text is empty")
                out.append({"text": text})
                continue
            if fmt == "unpaired_preference" and not label_bool(row.get("label")):
                skipped.append((i, "label is false (a bad answer is not trained on in SFT)"))
                continue
            msgs = conversation(row, fmt, labels)
            if system and msgs[0]["role"] != "system":
                msgs = [{"role": "system", "content": system}] + msgs
            prompt, completion = _split_last_assistant(msgs)
            if form == "messages":
                out.append({"messages": prompt + completion})
                continue
            cuts = [k for k, m in enumerate(msgs) if m["role"] == "assistant" and k > 0] if all_turns else []
            pairs = [(msgs[:k], [msgs[k]]) for k in cuts if msgs[k]["content"].strip()] or [(prompt, completion)]
            for p, c in pairs:
                r = {"prompt": p, "completion": c}
                out.append(r if conversational else _standard(r))
        except ValueError as e:
            skipped.append((i, str(e)))
    return Rows(out, skipped)


def to_preference(rows: list[dict], fmt: str | None = None, mapping=None, *, conversational: bool = True) -> Rows:
    """Rows -> DPOTrainer / ORPOTrainer input {prompt, chosen, rejected} with an explicit prompt.

    Unpaired (KTO) rows are paired: each good answer with a bad one for the same prompt."""
    fmt = fmt or detect_format(rows)[0]
    rows = apply_mapping(rows, fmt, mapping)
    out, skipped = [], []
    if fmt == "unpaired_preference":
        by_prompt: dict[str, dict[bool, list]] = defaultdict(lambda: {True: [], False: []})
        for i, row in enumerate(rows, 1):
            try:
                msgs = conversation(row, fmt)
                by_prompt[json.dumps(msgs[:-1])][label_bool(row.get("label"))].append((i, msgs))
            except ValueError as e:
                skipped.append((i, str(e)))
        for groups in by_prompt.values():
            for (i, good), (_, bad) in zip(groups[True], groups[False]):
                out.append({"prompt": good[:-1], "chosen": good[-1:], "rejected": bad[-1:]})
            for i, _ in groups[True][len(groups[False]):] + groups[False][len(groups[True]):]:
                skipped.append((i, "no answer of the opposite label for the same prompt to pair with"))
    elif fmt in ("preference", "preference_implicit", "preference_ab"):
        for i, row in enumerate(rows, 1):
            try:
                p = pair(row, fmt)
                if p["chosen"] == p["rejected"]:
                    raise ValueError("chosen is identical to rejected")
                out.append(p)
            except ValueError as e:
                skipped.append((i, str(e)))
    else:
        raise DataError(f"format {fmt} has no preferences (chosen/rejected or a good/bad label) to convert")
    skipped.sort()
    return Rows(out if conversational else [_standard(r) for r in out], skipped)


def to_kto(rows: list[dict], fmt: str | None = None, mapping=None, *, conversational: bool = True) -> Rows:
    """Rows -> KTOTrainer input {prompt, completion, label}. Paired rows give one good and one bad row each."""
    fmt = fmt or detect_format(rows)[0]
    rows = apply_mapping(rows, fmt, mapping)
    out, skipped = [], []
    if fmt == "unpaired_preference":
        for i, row in enumerate(rows, 1):
            try:
                msgs = conversation(row, fmt)
                out.append({"prompt": msgs[:-1], "completion": msgs[-1:], "label": label_bool(row.get("label"))})
            except ValueError as e:
                skipped.append((i, str(e)))
    else:
        paired = to_preference(rows, fmt)
        skipped = paired.skipped
        for p in paired:
            out.append({"prompt": p["prompt"], "completion": p["chosen"], "label": True})
            out.append({"prompt": p["prompt"], "completion": p["rejected"], "label": False})
    return Rows(out if conversational else [_standard(r) for r in out], skipped)


CONVERTERS = {"sft": to_sft, "preference": to_preference, "kto": to_kto}


def convert(rows, to: str, fmt=None, mapping=None, **kw) -> Rows:
    if to not in CONVERTERS:
        raise DataError(f"--to {to!r} is not one of {', '.join(CONVERTERS)}")
    return CONVERTERS[to](rows, fmt, mapping, **kw)
