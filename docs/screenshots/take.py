"""Screenshots of the running app for the README and docs/, one PNG per tab, 1400 px wide.

    LAB_DATA_DIR=$(mktemp -d) .venv/bin/python app.py --port 7991 --no-preload &     # a throwaway data directory
    .venv/bin/pip install playwright                                                 # once
    .venv/bin/python docs/screenshots/take.py --url http://127.0.0.1:7991

Writes into docs/screenshots/:
  dataset_builder.png     the bundled instruction sample loaded and its row 2 previewed (as chat and as the
                          tokens the trainer sees): the page from the top down to the end of the preview
  lora_explorer.png       the calculator after Calculate (rank 8 on q_proj and v_proj of the header's model): the
                          page from the top down to the memory table
  sft_trainer.png         the SFT trainer as it opens, the instruction preset in the form
  preference_labeler.png  the Preference labeler as it opens
  rlhf_loop.png           the RLHF loop as it opens
  evaluation.png          the Evaluation tab as it opens
The others are the first 1000 px of the page. Each is saved with a 256-colour palette to keep it small. The browser is the system's Chromium (Debian: apt-get install -y chromium); pass
--chromium for another.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
WIDTH, HEIGHT = 1400, 1000


def save_small(path: Path) -> None:
    """Re-save a screenshot with a 256-colour palette (a third of the size or less, the text as sharp)."""
    Image.open(path).convert("RGB").quantize(256).save(path, optimize=True)


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
    written = []

    def shot(page, name: str, clip_to=None) -> None:
        """The top of the page, down to 12 px above `clip_to` when given (else the first HEIGHT px)."""
        path = out / f"{name}.png"
        page.evaluate("window.scrollTo(0, 0)")  # bounding boxes are measured from the viewport's top
        if clip_to is not None:
            bottom = clip_to.bounding_box()["y"] - 12
            page.screenshot(path=str(path), full_page=True, clip={"x": 0, "y": 0, "width": WIDTH, "height": bottom})
        else:
            page.screenshot(path=str(path))
        save_small(path)
        written.append(path)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=a.chromium)
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        page.goto(a.url, wait_until="load")

        # Dataset builder: load a bundled sample, preview one of its rows
        page.get_by_role("tab", name="Sample", exact=True).click(timeout=60_000)
        page.get_by_label("Bundled sample").click()
        page.locator("ul[role=listbox] li", has_text=a.sample).first.click()
        page.get_by_role("button", name="Load sample").click()
        page.get_by_text("Showing row 1.").wait_for(timeout=120_000)
        page.get_by_label("Row", exact=True).fill(str(a.row))
        page.get_by_role("button", name="Show row").click()
        page.get_by_text(f"Showing row {a.row}.").wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        shot(page, "dataset_builder", clip_to=page.get_by_text("Validate and fix", exact=True))

        # LoRA explorer: the calculator's count and memory for the defaults
        page.get_by_role("tab", name="LoRA explorer", exact=True).click()
        page.get_by_role("button", name="Calculate").click()
        page.get_by_text("adapter file ≈", exact=False).first.wait_for(timeout=60_000)
        page.wait_for_timeout(1500)
        shot(page, "lora_explorer", clip_to=page.get_by_text("memory", exact=True))  # down to the memory table

        # the other tabs as they open
        for tab, ready in (("SFT trainer", "Start training"), ("Preference labeler", None), ("RLHF loop", None),
                           ("Evaluation", "Start evaluation")):
            page.get_by_role("tab", name=tab, exact=True).click()
            if ready:
                page.get_by_role("button", name=ready).wait_for(timeout=30_000)
            page.wait_for_timeout(1500)
            shot(page, tab.lower().replace(" ", "_"))
        browser.close()
    print("wrote " + ", ".join(str(p) for p in written))


if __name__ == "__main__":
    main()
