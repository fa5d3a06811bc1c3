"""The evaluation report shows answers as text: a cell holding HTML is escaped in report.md and report.html."""
from __future__ import annotations

from labs.evaluation.report import to_html, to_markdown

ANSWER = '<img src=http://example.invalid/x.png> & <div style="position:fixed">x</div>'


def test_report_cells_are_text_in_markdown_and_html():
    blocks = [("table", [{"input": "Say it.", "prediction": ANSWER}])]
    md, page = to_markdown(blocks, {}), to_html(blocks, {})
    for out in (md, page):
        assert "<img" not in out and "<div style" not in out
    assert "| Say it. | &lt;img src=http://example.invalid/x.png&gt; &amp; &lt;div" in md
    assert "<td>&lt;img src=http://example.invalid/x.png&gt; &amp; &lt;div style=&quot;" in page
