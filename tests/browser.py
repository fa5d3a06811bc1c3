"""A real browser on the app, as a person meets it: Playwright driving Debian's Chromium (/usr/bin/chromium,
`apt-get install chromium`; .ci/run installs it). A missing browser fails the test, it never skips.

    from tests.browser import open_tab, options, screenshot     # fixtures: browser, lab, page (conftest)

    def test_x(page, lab):
        open_tab(page, "SFT trainer")
        assert "mine" in options(page, "dataset")

`lab` is the whole app (app.py) on a free port with its own data directory and the tiny in-process model
(no preload); `page` is a fresh browser context on it, 1400 x 1000, that fails the test on a page error.
Screenshots go to out/screenshots/ (not tracked; docs/screenshots/take.py makes the committed ones).
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("LAB_CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "out" / "screenshots"
TIMEOUT_MS = 60_000


def launch_browser(playwright):
    if not Path(CHROMIUM).exists():
        raise AssertionError(f"no browser at {CHROMIUM}: install it (apt-get install -y chromium) or set "
                             "LAB_CHROMIUM; the browser tests never skip")
    return playwright.chromium.launch(executable_path=CHROMIUM)


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click(timeout=TIMEOUT_MS)
    page.wait_for_timeout(300)


def options(page, label: str) -> list[str]:
    """The options a dropdown offers now: opened by a click, read from its listbox, closed again."""
    box = page.get_by_label(label, exact=True)
    box.click(timeout=TIMEOUT_MS)
    items = page.locator("ul[role=listbox] li")
    items.first.wait_for(timeout=TIMEOUT_MS)
    found = [t.strip() for t in items.all_inner_texts()]
    page.keyboard.press("Escape")
    return found


def pick(page, label: str, option: str) -> None:
    """Choose `option` (its whole text) in a dropdown."""
    page.get_by_label(label, exact=True).click(timeout=TIMEOUT_MS)
    items = page.locator("ul[role=listbox] li")
    items.first.wait_for(timeout=TIMEOUT_MS)
    texts = [t.strip() for t in items.all_inner_texts()]
    matches = [i for i, t in enumerate(texts) if t.lstrip("✓ ").strip() == option]
    assert matches, f"{label}: no option {option!r} among {texts}"
    items.nth(matches[0]).click()


def screenshot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
