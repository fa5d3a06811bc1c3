"""The first hour in a real browser: what one tab makes is offered in the others, and a reload shows the job
that is running (tests/browser.py: Chromium through Playwright, the whole app on the tiny model)."""
from __future__ import annotations

import pytest

from tests.browser import TIMEOUT_MS, open_tab, options, pick, screenshot

pytestmark = pytest.mark.slow


def save_sample_as(page, name: str, sample: str = "instruct/train.jsonl") -> None:
    open_tab(page, "Dataset builder")
    page.get_by_role("tab", name="Sample", exact=True).click()
    pick(page, "Bundled sample", sample)
    page.get_by_role("button", name="Load sample").click()
    page.get_by_text("Showing row 1.").wait_for(timeout=TIMEOUT_MS)
    page.get_by_label("Dataset name", exact=True).fill(name)
    page.get_by_role("button", name="Save dataset").click()
    page.get_by_text(f"Saved {name}").wait_for(timeout=TIMEOUT_MS)


def test_a_saved_dataset_is_offered_in_sft_and_evaluation_without_a_restart(page):
    save_sample_as(page, "my-extraction")
    open_tab(page, "SFT trainer")
    assert "my-extraction" in options(page, "dataset")
    open_tab(page, "Evaluation")
    assert "my-extraction" in options(page, "Dataset ('' = the run's; or a .jsonl path)")
    screenshot(page, "evaluation")


def test_a_reload_finds_the_running_job_selected(page, lab, tiny_model_dir):
    """A person comes back to a long job: after a reload the SFT monitor shows it, not 'No run selected'."""
    from labs import paths, runs
    from labs.sft.config import preset
    url, data = lab
    paths.set_data_dir(data)
    cfg = preset("instruction", model=str(tiny_model_dir), max_steps=400, eval_steps=0, eval_rows=0,
                 logging_steps=1, device="cpu", precision="fp32")
    run = runs.submit("sft", cfg.to_dict(), name="long")
    try:
        page.reload(wait_until="load")
        open_tab(page, "SFT trainer")
        page.get_by_text(f"`{run.id}`").or_(page.get_by_text(run.id)).first.wait_for(timeout=TIMEOUT_MS)
        status = page.locator(".prose", has_text=run.id).first.inner_text()
        assert "No run selected" not in status and any(s in status for s in ("queued", "running"))
        screenshot(page, "sft_trainer_running")
    finally:
        runs.kill(run.id)
