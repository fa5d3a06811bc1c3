"""The Preference labeler as a person lives it, in a real browser (tests/browser.py: Chromium through Playwright, the
whole app on the tiny model): the header counts what the store holds and the page remembers the name; pairs are made
with true progress and cut answers are marked; the disagreement table speaks in the terms each person saw; the export
and the training Start say what was left out; a finished DPO run fills its panels. Each test names its own batches and
annotators: the app is shared by every browser test of the session."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from labs import runs, store
from tests.browser import TIMEOUT_MS, open_tab, options, pick, screenshot

pytestmark = pytest.mark.slow
NAME = "Your name (labels are recorded per person)"


@pytest.fixture
def lab_store(lab, monkeypatch):
    """labs.store on the browser app's data directory (the test writes what a person would have labeled)."""
    monkeypatch.setenv("LAB_DATA_DIR", str(lab[1]))
    return store


def pairs_in(batch: str, n: int) -> list[int]:
    return store.add_pairs([{"prompt": [{"role": "user", "content": f"Name a colour, please ({batch} {i})."}],
                             "a": "Blue.", "b": "Well, there are many colours, and one of them is blue." + " Yes." * i,
                             "model_a": "m"} for i in range(n)], batch=batch)


def say(pid: int, who: str, stored: str) -> None:
    """Label in stored terms (a / b) by clicking what this person was shown (A / B)."""
    shown = store.shown_order(pid, who)
    store.label(pid, who, {"a": "A" if shown == "ab" else "B", "b": "B" if shown == "ab" else "A"}.get(stored, stored))


def labeler(page) -> None:
    """Open the tab: it reads the store as it is now (as at each page load), written after the page loaded."""
    open_tab(page, "Preference labeler")


def test_header_counts_the_store_at_load_and_the_name_is_remembered(page, lab_store):
    ids = pairs_in("browser-header", 2)
    store.label(ids[0], "**bo** <i>x</i>", "A")  # a name that Markdown would read as markup
    st = store.stats()
    labeler(page)
    header = page.get_by_text(re.compile(r"\d+ pairs? · \d+ labels? by \d+ annotators?"))
    expect(header).to_contain_text(f"{st['pairs']} pairs · {st['labels']} label", timeout=TIMEOUT_MS)
    assert re.search(rf"by {st['annotators']} annotators? \(", header.inner_text())
    assert "**bo** <i>x</i> 1" in header.inner_text()  # the name as typed, not bold or italic
    name = page.get_by_label(NAME, exact=True)
    name.fill("ana-browser")
    name.press("Tab")  # leaving the field remembers it in this browser
    page.wait_for_timeout(500)
    page.reload(wait_until="load")
    labeler(page)
    expect(page.get_by_label(NAME, exact=True)).to_have_value("ana-browser", timeout=TIMEOUT_MS)
    expect(header).to_contain_text("ana-browser: 0 of")


def test_make_pairs_shows_true_progress_and_marks_cut_answers(page, lab_store):
    labeler(page)
    page.get_by_label("Keep pairs ahead of me (make 8 more in the background when 3 are left)").uncheck()
    page.get_by_label("number input for Max new tokens", exact=True).fill("8")
    page.get_by_label("number input for Pairs", exact=True).fill("2")
    page.get_by_label("number input for Pairs", exact=True).press("Tab")
    # every text the page's progress indicators show (over the Batch picker or elsewhere), and each new text of the
    # note under the button (the Markdown that says "Made ...")
    page.evaluate("""() => { window.labSeen = []; let last = null; new MutationObserver(() => {
        document.querySelectorAll('.progress-text, .progress-level').forEach(e => {
            const block = e.closest('.block');
            const where = block && block.querySelector("input[aria-label='Batch']") ? 'batch' : 'progress';
            window.labSeen.push(where + ': ' + e.innerText); });
        const note = Array.from(document.querySelectorAll('.prose'))
            .find(e => /^(Made|⏳|⚠)/.test(e.innerText.trim()));
        if (note && note.innerText !== last) { last = note.innerText; window.labSeen.push('note: ' + last); } })
        .observe(document.body, {subtree: true, childList: true, characterData: true}); }""")
    made = "() => window.labSeen.some(t => t.startsWith('note: Made'))"  # a new "Made" note: this run ended
    for run in (1, 2):  # the first run may load the model; the second finds it loaded
        page.evaluate("() => { window.labSeen = []; }")
        page.get_by_role("button", name="Generate pairs").click()
        page.wait_for_function(made, timeout=TIMEOUT_MS)
    seen = page.evaluate("window.labSeen")
    assert not [s for s in seen if "loading the model" in s.lower()], seen  # the model was loaded already
    assert any("generating" in s.lower() for s in seen) and any("/2 pairs" in s for s in seen), seen
    assert not [s for s in seen if s.startswith("batch")], seen  # not over the Batch picker
    batch = options(page, "Batch")[-1]  # the newest batch: the second run's
    page.get_by_label(NAME, exact=True).fill("cy-browser")
    pick(page, "Batch", batch)
    expect(page.get_by_text("A · ✂ cut at 8 new tokens (the model had not finished)")).to_be_visible(
        timeout=TIMEOUT_MS)
    screenshot(page, "preference_cut_answers")


def test_disagreements_and_the_export_say_what_people_saw_and_what_was_left_out(page, lab_store):
    (pid,) = pairs_in("browser-agree", 1)  # two people disagree on one pair, each seeing it in an order of their own
    say(pid, "dee-browser", "a")
    say(pid, "eli-browser", "b")
    seen = {who: ("A" if store.shown_order(pid, who)[0] == c else "B") for who, c in
            (("dee-browser", "a"), ("eli-browser", "b"))}
    ids = pairs_in("browser-export", 7)  # 9 labels on 7 pairs that give 3 DPO rows
    for pid, choices in zip(ids, [("a",), ("b",), ("a", "a"), ("tie",), ("tie",), ("both_bad",), ("a", "b")]):
        for who, c in zip(("fay-browser", "gus-browser"), choices):
            say(pid, who, c)
    labeler(page)
    page.get_by_text("Annotators and agreement").click()
    table = page.locator(".block").filter(has_text="Pairs with differing choices").last
    expect(table.locator("th").first).to_have_attribute("title", "pair", timeout=TIMEOUT_MS)  # before any data
    titles = table.locator("th").evaluate_all("cells => cells.map(c => c.title)")
    assert titles[:5] == ["pair", "prompt", "answer 1", "answer 2", "majority"], titles
    pick(page, "Batch", "browser-agree")
    page.get_by_role("button", name="Compute agreement").click()
    expect(table).to_contain_text(f"{seen['dee-browser']} (answer 1)", timeout=TIMEOUT_MS)  # one pair: one row
    expect(table).to_contain_text(f"{seen['eli-browser']} (answer 2)")
    expect(table).to_contain_text("no majority")

    pick(page, "Batch", "browser-export")
    page.get_by_text("Export the labels").click()
    page.get_by_role("button", name="Export", exact=True).click()
    note = page.locator("div.prose", has_text="Wrote")
    expect(note).to_contain_text("Wrote 3 DPO rows from 9 labels on 7 labeled pairs; left out: 2 pairs tied, 1 pair "
                                 "both bad, 1 pair without a majority", timeout=TIMEOUT_MS)
    expect(note).to_contain_text("3 preference pairs teach DPO little (the DPO preset makes 3 optimizer steps")


def test_a_finished_dpo_run_fills_its_panels(page, lab_store):
    for pid in pairs_in("browser-dpo", 4):
        p = store.get_pair(pid, "hal-browser")
        store.label(pid, "hal-browser", "A" if p["A"] == "Blue." else "B")
    labeler(page)
    data = page.get_by_label("data", exact=True)
    data.fill("store:browser-dpo")
    data.press("Enter")
    page.get_by_label("max steps", exact=True).fill("2")
    page.get_by_text("Advanced settings").click()
    page.get_by_label("eval prompts", exact=True).fill("2")
    page.get_by_label("max new tokens", exact=True).fill("8")
    page.get_by_label("max new tokens", exact=True).press("Tab")
    page.get_by_role("button", name="Start training").click()
    started = page.locator("div.prose", has_text="Started run")
    expect(started).to_contain_text("4 labeled pairs: 4 to train on in 2 optimizer steps", timeout=TIMEOUT_MS)
    expect(started).to_contain_text("4 preference pairs teach DPO little (this run makes 2 optimizer steps on them)")
    expect(page.locator("#pref-accuracy")).to_contain_text("reward accuracy (training pairs, n=4)", timeout=240_000)
    expect(page.locator("#pref-rewards img, #pref-rewards svg.main-svg, #pref-rewards canvas").first).to_be_visible()
    rows = "[data-testid^='cell-'][data-testid$='-0']"  # a table's first cells, one per row
    run_id = re.search(r"Started run `?([\w.-]+)", started.inner_text()).group(1)
    shown = runs.get(run_id).config["eval_prompts"]  # 2 as typed (under load the form's default, 12, was seen)
    expect(page.locator(f"#pref-before-after {rows}")).to_have_count(shown)  # one row per held-out prompt
    expect(page.locator(f"#pref-odds {rows}")).to_have_count(4)  # the 4 labeled pairs
    expect(page.locator("#pref-odds [data-testid=cell-0-0]")).to_have_text("train")
    expect(page.locator("#pref-odds-plot img").first).to_be_visible()
    screenshot(page, "preference_dpo_finished")
