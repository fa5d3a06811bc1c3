"""A shared lab in a real browser: people sign in (--auth), one cannot stop another's run, both see the same
labels each under its author, and a visitor who has not signed in sees the login page only."""
from __future__ import annotations

import pytest

from tests import helpers
from tests.browser import TIMEOUT_MS, open_tab, screenshot

pytestmark = pytest.mark.slow
PEOPLE = {"ana": "pw-ana-123", "ben": "pw-ben-456"}


@pytest.fixture(scope="module")
def team_lab(tmp_path_factory, tiny_model_dir):
    data = tmp_path_factory.mktemp("team") / "lab_data"
    auth = [x for name, pw in PEOPLE.items() for x in ("--auth", f"{name}:{pw}")]
    proc, url = helpers.start_app(data, "--model", str(tiny_model_dir), "--no-preload", *auth)
    try:
        yield url, data
    finally:
        helpers.stop_app(proc)


def sign_in(browser, url: str, name: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(url, wait_until="load")
    page.get_by_label("username").fill(name)
    page.get_by_label("password").fill(PEOPLE[name])
    page.get_by_role("button", name="Login").click()
    page.get_by_role("tab", name="SFT trainer", exact=True).wait_for(timeout=TIMEOUT_MS)
    return context, page


def test_a_visitor_who_has_not_signed_in_sees_the_login_page_only(browser, team_lab):
    context = browser.new_context()
    page = context.new_page()
    page.goto(team_lab[0], wait_until="load")
    page.get_by_label("password").wait_for(timeout=TIMEOUT_MS)
    assert page.get_by_role("tab", name="SFT trainer", exact=True).count() == 0
    context.close()


def test_two_people_one_lab(browser, team_lab, tiny_model_dir):
    from gradio_client import Client

    from labs import paths, runs, store
    from labs.access import Actor
    from labs.sft.config import preset
    url, data = team_lab
    paths.set_data_dir(data)
    pid = store.add_pairs([{"prompt": "Which is better?", "a": "this one", "b": "that one"}], batch="team")[0]
    cfg = preset("instruction", model=str(tiny_model_dir), max_steps=2000, eval_rows=0, device="cpu",
                 precision="fp32")
    run = runs.submit("sft", cfg.to_dict(), name="anas", actor=Actor("ana", "member", "auth"))
    try:
        # each labels through the endpoint a page or a notebook uses, signed in as themselves
        for name, choice in (("ana", "A"), ("ben", "B")):
            Client(url, auth=(name, PEOPLE[name]), verbose=False).predict(pid, choice, name, api_name="/pref_label")
        with pytest.raises(Exception, match="you are signed in as ben"):  # ben cannot label as ana
            Client(url, auth=("ben", PEOPLE["ben"]), verbose=False).predict(pid, "A", "ana", api_name="/pref_label")
        assert sorted((lab["annotator"], lab["pair_id"]) for lab in store.labels("team")) == [("ana", pid),
                                                                                             ("ben", pid)]

        ctx_b, page_b = sign_in(browser, url, "ben")
        open_tab(page_b, "SFT trainer")
        page_b.get_by_text(run.id).first.wait_for(timeout=TIMEOUT_MS)  # ben sees ana's run ...
        page_b.get_by_role("button", name="Kill").first.click()       # ... and cannot kill it
        page_b.get_by_text("ben may stop, kill, resume or delete runs only their own").first.wait_for(
            timeout=TIMEOUT_MS)
        assert run.status()["state"] in runs.ACTIVE
        ctx_a, page_a = sign_in(browser, url, "ana")
        for page in (page_a, page_b):  # both see the same labels, each under its author
            open_tab(page, "Admin")
            page.get_by_role("button", name="↻ Refresh").click()
            helpers.wait_until(lambda: "ana · ben" in page.locator("body").inner_text(), 60,
                               "the agreement of ana and ben in the admin tab")
            shown = " ".join(page.locator("body").inner_text().split())  # visible text only
            assert all(f"{name} 1 0" in shown for name in ("ana", "ben")), shown  # one label each, by name
            screenshot(page, "admin")
        assert "Signed in as" in page_a.content()
        ctx_a.close()
        ctx_b.close()
    finally:
        runs.kill(run.id)
