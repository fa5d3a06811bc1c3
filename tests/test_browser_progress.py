"""The live monitor in a real browser: a running job shows its phase with a bar, a count and an ETA, the bar
fills as the job trains, and the run picker names the state the monitor shows (tests/browser.py)."""
from __future__ import annotations

import re
import time

import pytest

from tests.browser import TIMEOUT_MS, open_tab, screenshot

pytestmark = pytest.mark.slow

BAR = re.compile(r"training ([█░]{20}) step (\d+)/(\d+) \((\d+)%\)")


def monitor_text(page, run_id: str) -> str:
    return page.locator(".prose", has_text=run_id).first.inner_text()


def test_the_progress_bar_of_a_running_job_advances(page, lab, tiny_model_dir):
    from labs import paths, runs
    from labs.sft.config import preset
    url, data = lab
    paths.set_data_dir(data)
    # 120 steps of batch 2: the 20-cell bar gains a cell every 6 steps (0.5-0.9 s a step measured here, on 2 busy
    # cores), and training lasts long enough to be watched; the job is killed once the bar has grown
    cfg = preset("instruction", model=str(tiny_model_dir), max_steps=120, batch_size=2, eval_steps=0, eval_rows=4,
                 logging_steps=1, device="cpu", precision="fp32")
    run = runs.submit("sft", cfg.to_dict(), name="bar")
    try:
        page.reload(wait_until="load")
        open_tab(page, "SFT trainer")
        page.get_by_text(run.id).first.wait_for(timeout=TIMEOUT_MS)
        deadline = time.monotonic() + 60  # the job's start (imports, model) takes 10-30 s here

        def bar_now():
            m = BAR.search(monitor_text(page, run.id))
            return (m.group(1).count("█"), int(m.group(2)), int(m.group(3))) if m else None
        first = None
        while first is None and time.monotonic() < deadline:
            first = bar_now()
            page.wait_for_timeout(250)
        assert first is not None, f"no training bar in: {monitor_text(page, run.id)!r}"
        text = monitor_text(page, run.id)
        assert "ETA" in text and "▶ training" in text and "✓ loading model" in text
        assert "then evaluating 8 answers (4 held-out rows x fine-tuned and base model), timed once it starts" in text
        later = first
        deadline = time.monotonic() + 60  # a cell every 6 steps
        while later[0] <= first[0] and time.monotonic() < deadline:  # the bar itself fills, not only the count
            page.wait_for_timeout(500)
            later = bar_now() or later
        assert later[0] > first[0] and later[1] > first[1] and later[2] == first[2] == 120, (first, later)
        # the picker says what the monitor says (labels read at page load, read again when the state drawn changed)
        picker = page.get_by_label("Run", exact=True).locator("visible=true").first
        page.wait_for_function("(el) => el.value.endsWith('· running')", arg=picker.element_handle(),
                               timeout=10_000)
        assert picker.input_value() == f"{run.id} · running"
        screenshot(page, "sft_progress_bar")
    finally:
        runs.kill(run.id)
