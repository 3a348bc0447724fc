"""Compare models in a real browser, against the fake server: upload a CSV, pick two models that
disagree on about a third of the rows, run, read both answer columns and the agreement figure,
filter to the disagreements, and download every row as CSV. Then the Consensus and Pipeline
pages with the same file, for the screenshots."""

from __future__ import annotations

import json
import re

import pytest

from tests.e2e.conftest import in_ci
from tests.fake_llm_server import odd_third

try:
    from playwright.sync_api import Page, expect
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # pragma: no cover - the dev requirements install it
    if in_ci():
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

from tests.e2e.test_browser import (
    RUN_TIMEOUT,
    Shots,
    download_csv,
    metric,
    nav,
    open_app,
    run_heading,
    start_full_run,
    to_csv,
    upload,
    use_fake_server,
    write_instruction,
)

pytestmark = pytest.mark.timeout(180)

REVIEWS = [
    "Love it, works great",
    "Broke after a week",
    "Okay for the price",
    "Terrible support, never again",
    "Exactly as described",
    "Arrived late, box damaged",
    "Five stars, would buy again",
    "Not worth the money",
    "Does the job",
    "Battery lasts all day",
    "Screen cracked on arrival",
    "Good value overall",
]
ROWS = [{"id": f"{i:03d}", "text": t} for i, t in enumerate(REVIEWS, 1)]


def sent(row: dict[str, str]) -> str:
    return json.dumps(row, ensure_ascii=False)


def pick_model(page: Page, label: str, option: str) -> None:
    """`choose` for a model box in the page: its first click after the instruction's blur
    sometimes only focuses it (the list stays shut), so a second click opens it."""
    box = page.get_by_test_id("stSelectbox").filter(has=page.get_by_text(label, exact=True))
    wanted = page.get_by_role("option", name=option, exact=True)
    for attempt in (1, 2, 3):
        box.get_by_role("combobox").click()
        try:
            wanted.wait_for(timeout=3_000)
            break
        except PlaywrightTimeout:
            if attempt == 3:
                raise
            page.keyboard.press("Escape")
    wanted.click()
    expect(box.get_by_role("combobox")).to_have_value(option)


def headers(page: Page, column: str) -> list[str]:
    """The headers of the table that has `column` (the grid's accessible copy lists them)."""
    table = page.get_by_test_id("stDataFrame").filter(has=page.get_by_text(column, exact=True)).first
    expect(table).to_be_visible()
    return table.evaluate("e => [...e.querySelectorAll('th')].map(th => th.textContent.trim())")


def test_compare_two_models_see_agreement_and_download_every_row(app_server, new_page, llm):
    shot = Shots("compare-")
    page = new_page()
    open_app(page, app_server.url)
    use_fake_server(page, llm.url)
    nav(page, "Compare models")
    upload(page, "reviews.csv", to_csv(ROWS), len(ROWS))
    shot(page, "uploaded")

    write_instruction(page, "Summarise this review in five words.")
    model_box = page.get_by_test_id("stSelectbox").filter(has=page.get_by_text("Model 1", exact=True))
    expect(model_box.get_by_role("combobox")).to_have_value("fake-small")  # the list's first, by default
    pick_model(page, "Model 2", "fake-alt")
    expect(page.get_by_text(re.compile(r"Estimate for 12 rows × 2 calls per row"))).to_be_visible()
    shot(page, "models-picked", at=page.get_by_role("heading", name="3 · Models"))

    run_id = start_full_run(page, len(ROWS))
    expect(page.get_by_text(re.compile(r"completed · Compare models: Custom"))).to_be_visible(timeout=RUN_TIMEOUT)
    differ = [r for r in ROWS if odd_third(sent(r))]
    assert 0 < len(differ) < len(ROWS)
    expected = f"{(len(ROWS) - len(differ)) / len(ROWS):.1%}"
    expect(metric(page, "Percent agreement")).to_contain_text(expected)
    expect(metric(page, "Rows where the models disagree")).to_contain_text(str(len(differ)))
    columns = headers(page, "all_agree")
    assert {"fake-small", "fake-alt", "all_agree"} <= set(columns), columns
    answers = [columns.index(c) for c in ("all_agree", "fake-small", "fake-alt")]
    assert answers == sorted(answers) and "text" not in columns[: answers[-1]], columns  # answers before input
    page.wait_for_timeout(1_000)  # the smooth scroll to the run
    shot(page, "compared", at=run_heading(page, run_id))
    shot(page, "compared-table", at=page.get_by_text("Percent agreement", exact=True))

    page.get_by_text(f"Only rows where the models disagree ({len(differ)})").click()
    expect(page.get_by_text(f"Showing {len(differ)} of {len(ROWS)} rows")).to_be_visible()
    shot(page, "disagreements", at=page.get_by_text(f"Showing {len(differ)} of {len(ROWS)} rows"))

    downloaded = download_csv(page)
    assert [r["id"] for r in downloaded] == [r["id"] for r in ROWS]  # every row, not the filtered view
    assert [r["fake-small"] for r in downloaded] == [f"Reply to: {sent(r)}" for r in ROWS]
    assert [r["fake-alt"] for r in downloaded] == [
        f"{'Alt reply' if odd_third(sent(r)) else 'Reply'} to: {sent(r)}" for r in ROWS
    ]
    assert [r["all_agree"] for r in downloaded] == [str(not odd_third(sent(r))) for r in ROWS]
    assert not page.errors, page.errors

    nav(page, "History")
    expect(page.get_by_text("Compare models: Custom (OpenAI-compatible) / fake-small, fake-alt").first).to_be_visible()
    shot(page, "history")

    nav(page, "Consensus")
    upload(page, "reviews.csv", to_csv(ROWS), len(ROWS))
    page.get_by_label("Instruction").fill("Code the main topic: price, quality or delivery.")
    page.get_by_text("Let a judge model settle disagreements").click()
    expect(page.get_by_text("The judge reads")).to_be_visible()
    shot(page, "consensus", at=page.get_by_role("heading", name="3 · Coders"))

    nav(page, "Pipeline")
    upload(page, "reviews.csv", to_csv(ROWS), len(ROWS))
    page.get_by_text("Add a step").click()
    expect(page.get_by_text("Step 2", exact=True)).to_be_visible()
    shot(page, "pipeline", at=page.get_by_role("heading", name="2 · Steps"))
    assert not page.errors, page.errors
