"""labs.data.display: a row's text shown as its characters (chat view, Markdown names) and table widths that
keep every column on screen."""
from __future__ import annotations

import re
from html import unescape

import pytest

from labs.data.display import chat_html, column_widths, md_code

MARKUP = ['<div style="position:fixed;inset:0">x</div>', "<img src=http://example.invalid/x.png>",
          "**bold** [link](http://example.invalid)", "a &amp; b\n  two spaces kept", "<script>alert(1)</script>"]


def test_chat_html_shows_every_character_and_no_markup():
    messages = [{"role": "system", "content": MARKUP[0]}, {"role": "user", "content": MARKUP[1]},
                {"role": "assistant", "content": MARKUP[2]}, {"role": "tool", "content": MARKUP[3]},
                {"role": "<b>odd</b>", "content": MARKUP[4]}]
    html = chat_html(messages)
    body = html.split("</style>", 1)[1]
    assert "<img" not in body and "<script" not in body and "<div style" not in body and "<b>" not in body
    texts = [unescape(t) for t in re.findall(r'<div class="text">(.*?)</div>', body, re.S)]
    assert texts == MARKUP                                              # the same characters, white space too
    roles = [unescape(r) for r in re.findall(r'<div class="role">(.*?)</div>', body)]
    assert roles == ["system", "user", "assistant", "tool", "<b>odd</b>"]
    sides = re.findall(r'<div class="turn (\w+)">', body)
    assert sides == ["system", "user", "assistant", "assistant", "assistant"]  # any other role on the left
    assert chat_html([]).endswith('<div class="chatview"></div>')


def test_column_widths_share_the_table_by_text_length():
    cols = ["prompt", "completion", "task"]
    rows = [["x" * 400, "short answer", "qa"], ["y" * 300, "another answer", "qa"]]
    widths = [float(w.rstrip("%")) for w in column_widths(cols, rows)]
    assert sum(widths) == pytest.approx(100, abs=0.2)
    # shares: the prompt's 350 characters count as 40, the answers' mean 13, "task" its name's 4; each + 2
    assert widths == pytest.approx([100 * w / 63 for w in (42, 15, 6)], abs=0.1)
    assert sum(float(w.rstrip("%")) for w in column_widths(cols, rows, total=94)) == pytest.approx(94, abs=0.2)
    assert column_widths([], []) == [] and len(column_widths(["a", "b"], [])) == 2


def test_md_code_fences_any_backticks():
    assert md_code("plain") == "`plain`"
    assert md_code("a`b") == "``a`b``" and md_code("``x") == "``` ``x ```"
    assert md_code("<img src=x>\nline") == "`<img src=x> line`"  # a code span shows markup as typed
