"""What a person sees of rows: a conversation as plain characters, table column widths that keep every
column on screen, and names or values inside Markdown shown as typed.

    from labs.data.display import chat_html, column_widths, md_code
    chat_html([{"role": "user", "content": "<b>hi</b>"}])      # shows the nine characters <b>hi</b>
    column_widths(["prompt", "label"], [["a long prompt ...", "ok"]])   # ['73.1%', '26.9%']
    md_code("**a`b**")                   # ``**a`b**``: shown as typed, in code, not bold

A row's text is data, never markup: every character is escaped (an <img> in a row fetches nothing, a
**word** stays two asterisks), and white space is kept as the row has it.
"""
from __future__ import annotations

import html

# the chat view's look; the texts are pre-wrap so that spaces and line breaks show as the row has them
CHAT_STYLE = (
    "<style>.chatview{max-height:360px;overflow-y:auto;display:flex;flex-direction:column;gap:8px}"
    ".chatview .turn{max-width:88%;padding:6px 10px;border-radius:8px;border:1px solid #d0d5dd;color:#1d2939}"
    ".chatview .turn.user{align-self:flex-end;background:#eef2ff}"
    ".chatview .turn.assistant{align-self:flex-start;background:#f6f7f9}"
    ".chatview .turn.system{align-self:stretch;max-width:none;background:#fcfcfd;border-style:dashed}"
    ".chatview .role{font-size:11px;color:#667085;margin-bottom:2px}"
    ".chatview .text{white-space:pre-wrap;overflow-wrap:anywhere}</style>")


def chat_html(messages: list[dict]) -> str:
    """Turns as escaped text, one bubble each with its role above it: user on the right, assistant (and any other
    role) on the left, a system prompt across; an empty list gives an empty view."""
    turns = []
    for m in messages:
        role = str(m.get("role", ""))
        side = role if role in ("user", "system") else "assistant"
        turns.append(f'<div class="turn {side}"><div class="role">{html.escape(role)}</div>'
                     f'<div class="text">{html.escape(str(m.get("content", "")))}</div></div>')
    return f'{CHAT_STYLE}<div class="chatview">{"".join(turns)}</div>'


def column_widths(columns: list[str], rows: list[list], total: float = 100, low: int = 4, high: int = 40) -> list[str]:
    """A width per column, in percent of the table, in proportion to its cells' mean length or its name's (the
    longer), counted between `low` and `high` characters plus two for the cell's padding: a long prompt column
    cannot push the short ones off screen, and a short word is not broken.
    `total` below 100 leaves room for a row-number column."""
    if not columns:
        return []
    weights = []
    for j, c in enumerate(columns):
        cells = [len(str(r[j])) for r in rows if j < len(r) and r[j] is not None]
        mean = (sum(cells) / len(cells)) if cells else 0
        weights.append(min(high, max(low, len(str(c)), mean)) + 2)  # + 2: a cell's padding, about two characters
    s = sum(weights)
    return [f"{total * w / s:.1f}%" for w in weights]


def md_code(text) -> str:
    """Text as a Markdown code span (shown as typed, markup included), fenced by more backticks than it holds."""
    s = str(text).replace("\n", " ")
    longest, cur = 0, 0
    for ch in s:
        cur = cur + 1 if ch == "`" else 0
        longest = max(longest, cur)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"
