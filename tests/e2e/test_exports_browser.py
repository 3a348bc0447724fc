"""The CSV download in a real browser: it keeps cells that start with @ exactly, or the page says
how many cells its formula guard changes and why, before the user downloads it."""

from __future__ import annotations

import re

import pytest

from handai_db import RowStatus
from tests.e2e.conftest import in_ci

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the dev requirements install it
    if in_ci():
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

from tests.e2e.test_browser import (
    download_csv,
    expect_completed,
    expect_run,
    open_app,
    run_heading,
    to_csv,
    upload,
    use_fake_server,
    write_instruction,
)

pytestmark = pytest.mark.timeout(120)

TWEETS = [
    {"id": "001", "text": "@alice thanks, see you at 5"},
    {"id": "002", "text": "@bob -- meeting moved"},
    {"id": "003", "text": "- a bullet a model might write"},
    {"id": "004", "text": "plain text, nothing to guard"},
    {"id": "005", "text": "=1+1"},
]
RISKY = 4  # cells starting with = + - or @ (the ids and the model's replies start otherwise)
GUARD = "Protect against spreadsheet formulas (CSV)"


def test_the_csv_download_keeps_at_cells_or_the_page_says_why_it_changed_them(app_server, new_page, llm):
    page = new_page()
    open_app(page, app_server.url)
    use_fake_server(page, llm.url)
    upload(page, "tweets.csv", to_csv(TWEETS), len(TWEETS))
    write_instruction(page, "Say who the tweet is addressed to.")
    page.get_by_role("button", name="Test run").click()
    expect_run(page, 1)
    expect_completed(page, 1, len(TWEETS))
    expect(run_heading(page, 1)).to_be_visible()

    # Guard on (the default): the page says how many cells get a quote, and the file has them.
    box = page.get_by_test_id("stCheckbox").filter(has_text=GUARD)
    expect(box.get_by_role("checkbox")).to_be_checked()
    said = page.get_by_text(re.compile(rf"{RISKY} cells start with = \+ - or @ and get a leading ' in the CSV"))
    expect(said).to_be_visible()
    expect(page.get_by_text(re.compile("XLSX, JSON, JSONL and Parquet keep every cell exactly")).first).to_be_visible()
    guarded = download_csv(page)
    assert [row["id"] for row in guarded] == [row["id"] for row in TWEETS]
    expected = [("'" if row["text"][0] in "=+-@" else "") + row["text"] for row in TWEETS]
    assert [row["text"] for row in guarded] == expected
    assert sum(got["text"] != row["text"] for got, row in zip(guarded, TWEETS, strict=True)) == RISKY
    assert {row["ai_status"] for row in guarded} == {RowStatus.SUCCEEDED}

    # Guard off: the page says the cells stay as they are, and the file keeps every cell exactly.
    box.get_by_text(GUARD).click()
    expect(box.get_by_role("checkbox")).not_to_be_checked()
    expect(page.get_by_text(re.compile(rf"{RISKY} cells start with = \+ - or @ and stay as they are"))).to_be_visible()
    expect(said).to_have_count(0)
    exact = download_csv(page)
    assert [row["text"] for row in exact] == [row["text"] for row in TWEETS]
    assert [row["ai_output"] for row in exact] == [row["ai_output"] for row in guarded]
    assert not page.errors
