"""The first hour in a real browser, tab by tab: what the Dataset builder, LoRA explorer, SFT trainer and
Evaluation tabs show (tests/browser.py: Chromium through Playwright, the whole app on the tiny model).

A row's text is shown as its characters and fetches nothing; tables keep every column on screen and name their
columns before anything fills them; sliders show their largest value; rows count from 1 everywhere; the chat
preview's first words are not covered; a bad upload is reported once; a tab says when an analysis was not run.
Each tab's screenshot goes to out/screenshots/tab-<name>.png.
"""
from __future__ import annotations

import json
import re
from urllib.parse import urlparse

import pytest

from tests.browser import ROOT, TIMEOUT_MS, open_tab, screenshot

pytestmark = pytest.mark.slow

TABS = ["Dataset builder", "LoRA explorer", "SFT trainer", "Preference labeler", "RLHF loop", "Evaluation"]

# every table on screen: its label, its column names, and the columns that end past the table's right edge
TABLES_JS = """() => [...document.querySelectorAll('.table-container')].filter(t => t.offsetParent).map(t => {
  const right = t.closest('.block').getBoundingClientRect().right;
  const heads = [...t.querySelectorAll('th[data-testid^=header-]')];
  return {label: ((t.querySelector('.header-row .label') || {}).innerText || '').trim(),
          headers: heads.map(h => h.innerText.trim()),
          hidden: heads.filter(h => h.getBoundingClientRect().right > right + 1).map(h => h.innerText.trim())};
})"""

# every slider on screen whose number box or min/max line is wider than its block (its maximum cut short)
CUT_SLIDERS_JS = """() => [...document.querySelectorAll('input[type=range]')].filter(r => r.offsetParent).flatMap(r => {
  const block = r.closest('.block');
  const label = block.querySelector('[data-testid=block-info]').innerText;
  return [...block.querySelectorAll('.head, .slider_input_container')]
    .filter(x => x.scrollWidth > x.clientWidth + 1).map(x => `${label}: ${r.max} needs ${x.scrollWidth} px of ${x.clientWidth}`);
})"""

# is the text's first word on screen, where a person sees it (not covered, not scrolled away)? Looks at the text
# outside tables (a table cell may hold the same text).
FIRST_WORDS_SEEN_JS = """(needle) => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node; (node = walker.nextNode());) {
    const el = node.parentElement;
    if (!node.data.includes(needle) || !el.offsetParent || el.closest('table, [role=gridcell], textarea')) continue;
    const range = document.createRange();
    const at = node.data.indexOf(needle);
    range.setStart(node, at); range.setEnd(node, at + 4);
    const box = range.getBoundingClientRect();
    const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
    return {found: true, seen: !!hit && (hit === el || el.contains(hit)), hit: hit ? hit.outerHTML.slice(0, 120) : null};
  }
  return {found: false};
}"""


def tables(page) -> list[dict]:
    return page.evaluate(TABLES_JS)


def table(page, label: str) -> dict:
    found = [t for t in tables(page) if t["label"].startswith(label)]
    assert found, f"no table {label!r} on screen: {[t['label'] for t in tables(page)]}"
    return found[0]


def upload(page, path) -> None:
    """A file dropped on the Dataset builder's upload box (it loads at once); the box is emptied first."""
    open_tab(page, "Dataset builder")
    page.get_by_role("tab", name="Upload", exact=True).click()
    box = page.locator(".block").filter(has_text="JSONL, JSON, CSV, TSV or Parquet").last
    if box.get_by_label("Clear").count():
        box.get_by_label("Clear").first.click()
    box.locator("input[type=file]").set_input_files(str(path))


def pick_first(page, label: str, starts: str) -> None:
    """Choose the option that starts with `starts` in the first dropdown labelled `label`."""
    page.get_by_label(label, exact=True).first.click(timeout=TIMEOUT_MS)
    page.locator("ul[role=listbox] li", has_text=starts).first.click(timeout=TIMEOUT_MS)


# --------------------------------------------------------------------------- a row's text is shown, never run
MARKUP_ROW = {"prompt": '<div style="position:fixed;inset:0;background:red">x</div>\n'
                        "**markdown** [link](http://example.invalid)",
              "completion": "<img src=http://example.invalid/x.png>"}


def test_the_dataset_builder_shows_rows_as_text_uncovered_and_says_a_problem_once(page, lab, tmp_path):
    """A row holding markup shows its characters and fetches nothing; a long conversation's first words are on
    screen, not under the chat's title; a file that cannot be read is reported once."""
    host, outside = urlparse(lab[0]).netloc, []

    def only_the_lab(route):
        if urlparse(route.request.url).netloc == host:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()
    page.route("**/*", only_the_lab)
    rows = tmp_path / "markup-rows.jsonl"
    rows.write_text(json.dumps(MARKUP_ROW) + "\n")
    upload(page, rows)
    page.get_by_text("Showing row 1.").wait_for(timeout=TIMEOUT_MS)
    page.wait_for_timeout(500)  # an <img> would have asked for its picture by now
    assert page.locator("[style*='position:fixed'], [style*='position: fixed']").count() == 0
    assert page.locator("img[src*='example.invalid'], a[href*='example.invalid']").count() == 0
    assert outside == []
    # the chat shows the row's own characters (its line break too), and the token view the same characters
    assert page.locator(".chatview .text").all_inner_texts() == [MARKUP_ROW["prompt"], MARKUP_ROW["completion"]]
    tokens = page.locator(".tokseq").first.inner_text().replace("↵\n", "\n")
    assert MARKUP_ROW["prompt"] in tokens and MARKUP_ROW["completion"] in tokens
    # and so does the rows table
    cells = [" ".join(t.split()) for t in page.get_by_role("gridcell").all_inner_texts()]
    assert " ".join(MARKUP_ROW["prompt"].split()) in cells and MARKUP_ROW["completion"] in cells

    # a conversation longer than the chat view: it opens at its first words, and nothing covers them
    long_turn = "Please read this carefully. " * 12
    row = {"messages": [{"role": "system", "content": "Opening words of the system prompt, then the rest."},
                        {"role": "user", "content": long_turn}, {"role": "assistant", "content": long_turn},
                        {"role": "user", "content": long_turn}, {"role": "assistant", "content": long_turn}]}
    rows = tmp_path / "long-chat-rows.jsonl"
    rows.write_text(json.dumps(row) + "\n")
    upload(page, rows)
    page.locator(".tokseq", has_text="Opening words").wait_for(timeout=TIMEOUT_MS)
    page.get_by_text("As chat", exact=True).first.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    seen = page.evaluate(FIRST_WORDS_SEEN_JS, "Opening words")
    assert seen["found"] and seen["seen"], seen

    # a broken file: said once (in the summary, which also says what is still loaded), not twice
    bad = tmp_path / "broken-rows.jsonl"
    bad.write_text('{"text": "a"}\n{"text": \n')
    upload(page, bad)
    said = page.get_by_text("line 2 is not valid JSON")
    said.first.wait_for(timeout=TIMEOUT_MS)
    page.wait_for_timeout(1000)  # a second notice (a toast) would be up by now
    assert said.count() == 1, said.all_inner_texts()


# --------------------------------------------------------------------------- tables, sliders, row numbers
def finished_sft_run():
    """A finished SFT run as its job leaves it, with the long prompts of the instruct task."""
    from labs import runs
    prompt = ("Read the note and answer. Note: " + "Lena Novak moved from Porto to Lisbon last spring; " * 6
              + "Give her name, city and age as YAML with the keys name, city, age.")
    run = runs.create("sft", {"model": "tiny", "method": "lora", "max_steps": 2}, name="wide-tables")
    run.set_status(state="finished")
    rows = [{"step": 1, "loss": 2.0, "learning_rate": 1e-4},
            {"step": 2, "eval_generations": [{"prompt": prompt, "reference": "name: Lena\ncity: Lisbon\nage: 41",
                                              "answer": "name: Lena\ncity: Porto"}]},
            {"step": 2, "final": True, "train_seconds": 3.0}]
    (run.dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run.dir / "eval_metrics.json").write_text(json.dumps({"exact_match": 0.5, "n": 2}))
    preds = [{"prompt": prompt, "reference": "name: Lena\ncity: Lisbon\nage: 41", "prediction": p, "correct": ok,
              "task": "extraction"} for p, ok in (("name: Lena\ncity: Lisbon\nage: 41", True), ("Lena", False))]
    (run.dir / "eval_predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds))
    return run


def finished_evaluation_run():
    """A finished evaluation of two models (no forgetting probe, no bias audit) as its job leaves it."""
    from labs import runs
    question = "Context: " + "The Brisa Stadium was finished in 1952 after a long wait. " * 8 + "Q: When was it finished?"
    models = [{"label": "base", "spec": "tiny", "buckets": {"other": 1}},
              {"label": "tuned", "spec": "runs/tuned", "buckets": {"other": 0}}]
    result = {"data": {"rows": 1, "source": "wide/test", "task": "generation", "tasks": [], "labels": [],
                       "n_skipped": 0, "skipped": []},
              "models": models, "seconds": 1.0,
              "table": [{"metric": "exact_match", "base": 0.0, "tuned": 1.0, "Δ tuned": 1.0}],
              "changed": [{"id": 0, "input": question, "reference": "1952", "base": "It was finished long ago.",
                           "tuned": "1952", "change": "fixed"}]}
    run = runs.create("evaluation", {"models": ["runs/tuned"]}, name="wide-tables")
    run.set_status(state="finished")
    (run.dir / "evaluation.json").write_text(json.dumps(result))
    preds = [{"model": "base", "input": question, "reference": "1952", "prediction": "It was finished long ago.",
              "correct": False, "bucket": "other", "loss": 2.0},
             {"model": "tuned", "input": question, "reference": "1952", "prediction": "1952", "correct": False,
              "bucket": "other", "loss": 0.5}]
    (run.dir / "predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds))
    return run


def test_wide_tables_keep_the_answers_on_screen_and_rows_count_from_one(page, lab, tmp_path):
    """Long prompts next to short answers: every column of the Dataset builder's, SFT trainer's and Evaluation's
    tables stays on screen; the Evaluation says which analyses were not run; rows are numbered from 1 in the
    Dataset builder's table and in the SFT trainer's mask preview."""
    from labs import paths
    paths.set_data_dir(lab[1])
    sft, evaluation = finished_sft_run(), finished_evaluation_run()
    # Dataset builder: rows of the instruct sample (five columns, a long prompt among them); numbered from 1
    sample = tmp_path / "instruct-rows.jsonl"
    sample.write_text("".join((ROOT / "assets/instruct/train.jsonl").read_text().splitlines(True)[:8]))
    upload(page, sample)
    page.get_by_text("Showing row 1.").wait_for(timeout=TIMEOUT_MS)
    rows = table(page, "Rows")
    assert rows["headers"] == ["prompt", "completion", "task", "template", "entities"] and rows["hidden"] == []
    assert page.locator("div.row-number-cell").first.inner_text() == "1"
    # SFT trainer: the answers at each evaluation and the held-out predictions next to their long prompts
    open_tab(page, "SFT trainer")
    pick_first(page, "Run", sft.id)
    page.get_by_text("Training time: 3.0 s").wait_for(timeout=TIMEOUT_MS)  # the details drawn
    for label in ("Answers to fixed validation prompts", "Held-out predictions"):
        shown = table(page, label)
        assert shown["hidden"] == [] and {"reference"} <= set(shown["headers"]), shown
    # its mask preview counts training rows as the Dataset builder counts rows: the first is row 1
    page.get_by_text("What the loss trains on (mask preview)").click()
    assert page.get_by_label("Training row", exact=False).first.input_value() == "1"
    page.get_by_role("button", name="Show the trained tokens").click()
    page.get_by_text("training row 1 of").wait_for(timeout=TIMEOUT_MS)
    # Evaluation: the changed answers and the wrong ones next to a long input; the analyses not run say so
    open_tab(page, "Evaluation")
    pick_first(page, "Evaluation run", evaluation.id)
    page.get_by_text("1 rows of").wait_for(timeout=TIMEOUT_MS)
    changed = table(page, "Examples whose answer changed")
    assert changed["hidden"] == [] and changed["headers"][-3:] == ["base", "tuned", "change"], changed
    page.get_by_role("tab", name="Errors", exact=True).click()
    page.locator("p").filter(has_text=re.compile(r"^1 rows$")).wait_for(timeout=TIMEOUT_MS)  # the error count
    errors = table(page, "Examples (")
    assert errors["hidden"] == [] and {"reference", "prediction"} <= set(errors["headers"]), errors
    page.get_by_role("tab", name="Bias", exact=True).click()
    page.get_by_text("The bias audit was not run").wait_for(timeout=TIMEOUT_MS)
    page.get_by_role("tab", name="Forgetting", exact=True).click()
    page.get_by_text("The forgetting probe was not run").wait_for(timeout=TIMEOUT_MS)


def cut_sliders_in_a_narrow_window(page, tab: str) -> list[str]:
    page.set_viewport_size({"width": 1000, "height": 1000})
    page.wait_for_timeout(200)
    cut = page.evaluate(CUT_SLIDERS_JS)
    page.set_viewport_size({"width": 1400, "height": 1000})
    return [f"{tab}: {c}" for c in cut]


def test_every_tab_names_its_columns_and_shows_its_sliders_maxima(page):
    """Each tab as it opens (a screenshot of each); then in the Dataset builder, LoRA explorer, SFT trainer and
    Evaluation, with their sub-tabs and accordions opened: no table headed 1 2 3, and in a 1000 px window every
    slider shows its largest value whole."""
    views = {"Dataset builder": [("tab", "Type or paste"),
                                 ("text", "Clean personal data (emails, phones, IPs, card numbers)")],
             "LoRA explorer": [("tab", "Scaling"), ("tab", "Inside an adapter"), ("tab", "Rank sweep")],
             "SFT trainer": [("text", "The encoder way: BERT-style classifier or extractive QA")],
             "Evaluation": [("tab", "Errors")]}
    unnamed, cut = [], []
    for name in TABS:
        open_tab(page, name)
        screenshot(page, "tab-" + name.lower().replace(" ", "-"))
        if name not in views:
            continue
        seen = tables(page)
        if name == "LoRA explorer":  # the calculator's sliders; the sweep's are seen last
            cut += cut_sliders_in_a_narrow_window(page, name)
        for kind, what in views[name]:
            (page.get_by_role("tab", name=what, exact=True) if kind == "tab" else page.get_by_text(what)).first.click()
            page.wait_for_timeout(200)
            seen += tables(page)
        cut += cut_sliders_in_a_narrow_window(page, name)
        unnamed += [f"{name}: {t['label']}" for t in seen if t["headers"] and all(h.isdigit() for h in t["headers"])]
    assert unnamed == [] and sorted(set(cut)) == []
