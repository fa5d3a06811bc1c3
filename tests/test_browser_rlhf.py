"""The RLHF loop tab as a person lives it, in a real browser (tests/browser.py: Chromium through Playwright, the
whole app on the tiny model): a new loop's name, settings changed between rounds, a rating taken back, answers cut
at max_new_tokens, and history tables that show their columns. Each test names its own loop and rater (the app is
shared by every browser test of the session)."""
from __future__ import annotations

import re

import pytest

from tests.browser import TIMEOUT_MS, open_tab, screenshot

pytestmark = pytest.mark.slow
LOOP = "Loop (pick one to continue, or type a new name)"
ROUNDS, PROBE = "Rounds", "Before / after: the same held-out prompts"


def _settle(page, ms: int = 300) -> None:
    """Let the chained events of the last action (saved settings, status, rating panel, history) finish."""
    page.wait_for_timeout(300)
    page.wait_for_function("() => !document.querySelector('.pending, .generating')", timeout=TIMEOUT_MS)
    page.wait_for_timeout(ms)


def _errors(page) -> list[str]:
    """Red toasts and 'Error' badges on the page."""
    return [t for t in page.locator(".toast-body").all_inner_texts() if "Error" in t] + \
        ["badge" for b in page.get_by_text("Error", exact=True).all() if b.is_visible()]


def _shown(page, text: str, timeout: float = TIMEOUT_MS) -> None:
    page.get_by_text(text).first.wait_for(timeout=timeout)


def _slider(page, label: str, value) -> None:
    box = page.get_by_label(f"number input for {label}", exact=True)
    box.fill(str(value))
    box.press("Tab")


def _type_loop(page, name: str) -> None:
    box = page.get_by_label(LOOP, exact=True)
    box.fill(name)
    box.press("Enter")


def _generate(page, number: int) -> str:
    page.get_by_role("button", name="Generate the next round").click()
    note = page.get_by_text(re.compile(rf"^Round {number}: \d+ answers")).first
    note.wait_for(timeout=TIMEOUT_MS)
    _settle(page)
    return note.inner_text()


def _headers(page, label: str) -> list[str]:
    table = page.locator(".table-container", has=page.get_by_text(label))
    return [t.strip(" ⋮\n") for t in table.locator("th").all_inner_texts()]


def test_a_new_loop_then_settings_changed_between_rounds(page, lab):
    """A new name is a new loop (no errors, empty tables with their columns); 4 prompts x k=2, then the form changed
    to 3 x 3 and Generate pressed: the round has 9 answers, and a reload shows the form as the loop saved it."""
    from labs import paths, store
    paths.set_data_dir(lab[1])
    open_tab(page, "RLHF loop")
    _settle(page)
    _type_loop(page, "b-form")
    _shown(page, "New loop b-form, not created yet: press Start / continue", timeout=15_000)
    _settle(page, 1000)
    assert _errors(page) == []
    assert page.get_by_text("No round to rate yet.").first.is_visible()
    assert _headers(page, ROUNDS) == ["round", "policy", "rated", "mean ± sd", "good share", "KL", "gen + eval s"]
    assert _headers(page, PROBE) == ["held-out prompt", "answer of each round's policy"]

    if not page.get_by_label("number input for Prompts per round", exact=True).is_visible():
        page.get_by_text("Settings (used by the next round and update)").click()
    _slider(page, "Prompts per round", 4)
    _slider(page, "Answers per prompt (k)", 2)
    page.get_by_label("Max new tokens", exact=True).fill("4")
    page.get_by_label("Max new tokens", exact=True).press("Tab")
    page.get_by_role("button", name="Start / continue").click()
    _shown(page, "next round: 4 prompts × k=2")
    _settle(page)
    assert _generate(page, 1).startswith("Round 1: 8 answers (4 prompts × k=2")
    _slider(page, "Prompts per round", 3)
    _slider(page, "Answers per prompt (k)", 3)
    _shown(page, "Not saved yet: Prompts per round: 4 → 3 · Answers per prompt (k): 2 → 3.")
    assert page.get_by_text("next round: 4 prompts × k=2").first.is_visible()  # the status line: loop.json's
    assert _generate(page, 2).startswith("Round 2: 9 answers (3 prompts × k=3")
    assert len(store.samples("b-form", 2)) == 9
    assert page.get_by_text("next round: 3 prompts × k=3").first.is_visible()
    assert _errors(page) == []

    page.reload(wait_until="load")
    open_tab(page, "RLHF loop")
    _shown(page, "next round: 3 prompts × k=3")  # b-form, the newest loop, shown with its settings
    _settle(page)
    if not page.get_by_label("number input for Prompts per round", exact=True).is_visible():
        page.get_by_text("Settings (used by the next round and update)").click()
    assert page.get_by_label("number input for Prompts per round", exact=True).input_value() == "3"
    assert page.get_by_label("number input for Answers per prompt (k)", exact=True).input_value() == "3"


def test_undo_with_z_cut_answers_marked_and_every_round_on_screen(page, lab, tiny_model_dir):
    """Three rounds made through labs (cut at 6 tokens: the tiny random model never ends an answer that soon), long
    held-out answers in each: a rating is taken back with z, the cut is said, each round's column is on screen."""
    from labs import models, paths, store
    from labs.feedback import loop
    paths.set_data_dir(lab[1])
    loop.start("b-rate", model=str(tiny_model_dir), prompts=1, k=2, max_new_tokens=6)
    tiny = models.load(str(tiny_model_dir), device="cpu", dtype="fp32")
    for _ in range(3):
        loop.generate_round("b-rate", loader=lambda spec: tiny)
    answer = "Start small, rehearse out loud, record yourself and focus on one message; breathe slowly. " * 2
    with loop.edit("b-rate") as st:
        for r in st["rounds"]:
            r["probe"] = [{**p, "answer": f"round {r['round']}: {answer}"} for p in r["probe"]]
    open_tab(page, "RLHF loop")
    _settle(page)
    _type_loop(page, "b-rate")
    _shown(page, "next round: 1 prompt × k=2")
    _settle(page)

    who = "ana_*b-rate*"  # shown as typed, not as emphasis
    page.get_by_label("Your name (ratings are recorded per person)", exact=True).fill(who)
    page.get_by_role("button", name="Start / next answer").click()
    _settle(page)
    box = page.get_by_label("Answer", exact=True)
    first = box.input_value()
    assert first.endswith(" … (cut at 6 tokens)"), first
    page.get_by_role("button", name="★★★ [3]").click()
    _shown(page, f"{who}: 1/2")
    _settle(page)
    assert box.input_value() != first
    assert [r["rating"] for r in store.ratings("b-rate") if r["rater"] == who] == [3.0]
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("z")
    _shown(page, "Loop b-rate, round 3 (2 answers, stars): no ratings yet")
    _settle(page)
    assert box.input_value() == first  # the answer is back, to rate again
    assert [r for r in store.ratings("b-rate") if r["rater"] == who] == []
    assert _errors(page) == []

    table = page.locator(".table-container", has=page.get_by_text(PROBE))
    table.scroll_into_view_if_needed()
    assert _headers(page, PROBE) == ["held-out prompt", "round 1 (starting model)", "round 2 (starting model)",
                                     "round 3 (starting model)"]
    assert table.get_by_role("gridcell").filter(has_text=f"round 3: {answer[:30]}").first.is_visible()
    edge = table.bounding_box()["x"] + table.bounding_box()["width"]
    heads = table.locator("th")
    for i in range(heads.count()):
        box = heads.nth(i).bounding_box()
        assert box["x"] + box["width"] <= edge + 1, f"column {i} ends at {box['x'] + box['width']:.0f}, past {edge:.0f}"
    screenshot(page, "rlhf_loop")
