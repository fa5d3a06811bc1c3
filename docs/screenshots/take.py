"""Screenshots of the running app for the README and docs/, 1400 px wide.

    LAB_DATA_DIR=$(mktemp -d) .venv/bin/python app.py --port 7991 &      # a throwaway data directory
    .venv/bin/pip install playwright                                      # once
    .venv/bin/python docs/screenshots/take.py --url http://127.0.0.1:7991

Writes docs/screenshots/dataset_builder.png (the first tab with the bundled instruction sample loaded and
its row 2 previewed: the page from the top down to the end of the preview) and
docs/screenshots/sft_trainer.png (the SFT trainer tab as it opens, the instruction preset in the form).
The browser is the system's Chromium (Debian: apt-get install -y chromium); pass --chromium for another.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:7860")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--out", default=str(HERE))
    ap.add_argument("--sample", default="instruct/train.jsonl", help="bundled sample shown in the Dataset builder")
    ap.add_argument("--row", type=int, default=2, help="the row previewed (2: an extraction row of the sample)")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=a.chromium)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(a.url, wait_until="load")
        # Dataset builder: load a bundled sample; its first row is previewed with the trained tokens
        page.get_by_role("tab", name="Sample", exact=True).click(timeout=60_000)
        page.get_by_label("Bundled sample").click()
        page.locator("ul[role=listbox] li", has_text=a.sample).first.click()
        page.get_by_role("button", name="Load sample").click()
        page.get_by_text("Showing row 1.").wait_for(timeout=120_000)
        page.get_by_label("Row", exact=True).fill(str(a.row))
        page.get_by_role("button", name="Show row").click()
        page.get_by_text(f"Showing row {a.row}.").wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        # from the top of the page down to the end of the preview (the header, the tabs, the rows, the mask)
        page.evaluate("window.scrollTo(0, 0)")  # bounding boxes are measured from the viewport's top
        bottom = page.get_by_text("Validate and fix", exact=True).bounding_box()
        page.screenshot(path=str(out / "dataset_builder.png"), full_page=True,
                        clip={"x": 0, "y": 0, "width": 1400, "height": bottom["y"] - 12})

        # SFT trainer as it opens: the instruction preset's form
        page.get_by_role("tab", name="SFT trainer").click()
        page.get_by_role("button", name="Start training").wait_for(timeout=30_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(out / "sft_trainer.png"))
        browser.close()
    print(f"wrote {out / 'dataset_builder.png'} and {out / 'sft_trainer.png'}")


if __name__ == "__main__":
    main()
