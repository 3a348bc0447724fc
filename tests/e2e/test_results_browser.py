"""Results first, in a real browser: after a test run on a 14-column file, the model's answers
(the `ai_output` column) are on screen without scrolling, at 1400×900; and on Compare, with the
same file, both models' answers are too."""

from __future__ import annotations

import csv
import io

import pytest

from tests.e2e.conftest import in_ci

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - the dev requirements install it
    if in_ci():
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

from tests.e2e.test_browser import Shots, expect_run, nav, open_app, upload, use_fake_server, write_instruction
from tests.e2e.test_compare_browser import pick_model

pytestmark = pytest.mark.timeout(150)

COLUMNS = 14
ROWS = 30
VIEWPORT = {"width": 1400, "height": 900}
ROW_HEIGHT = 35  # the grid's header and row height


def wide_csv() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([f"column_{i:02d}_with_a_long_name" for i in range(COLUMNS)])
    for r in range(ROWS):
        writer.writerow([f"row {r} value {i} with some words in it" for i in range(COLUMNS)])
    return out.getvalue().encode()


def assert_answers_on_screen(page: Page, answers: list[str], marker: str) -> None:
    """The results table (the one with the `marker` column) is on screen with its header and
    first rows, and the `answers` columns come first (after the row number and, on Compare, the
    verdict)."""
    table = page.get_by_test_id("stDataFrame").filter(has=page.get_by_text(marker, exact=True)).first
    # The grid draws on a canvas; its accessible copy lists the headers in the order drawn.
    headers = table.evaluate("e => [...e.querySelectorAll('th')].map(th => th.textContent.trim())")
    assert all(a in headers for a in answers), headers
    positions = [headers.index(a) for a in answers]
    assert positions == sorted(positions) and positions[-1] <= len(answers) + 1, headers
    box = table.bounding_box()
    assert box is not None
    assert box["y"] >= 0 and box["y"] + 3 * ROW_HEIGHT <= VIEWPORT["height"], box
    assert box["x"] >= 0 and box["x"] + 400 <= VIEWPORT["width"], box
    assert page.evaluate("() => window.scrollX") == 0


def test_answers_are_visible_without_scrolling_after_a_test_run(new_page, app_server, llm):
    shot = Shots("results-")
    page = new_page()
    page.set_viewport_size(VIEWPORT)
    open_app(page, app_server.url)
    use_fake_server(page, llm.url)
    upload(page, "wide.csv", wide_csv(), ROWS)
    write_instruction(page, "Summarise this row in five words.")
    page.get_by_role("button", name="Test run").click()
    expect_run(page, 1)
    expect(page.get_by_text("completed · Custom").first).to_be_visible(timeout=30_000)
    page.wait_for_timeout(1_000)  # the smooth scroll to the run's answers
    shot(page, "answers-on-screen")
    assert_answers_on_screen(page, ["ai_output"], "ai_status")

    nav(page, "Compare models")
    upload(page, "wide.csv", wide_csv(), ROWS)
    write_instruction(page, "Summarise this row in five words.")
    pick_model(page, "Model 2", "fake-alt")
    page.get_by_role("button", name="Test run").click()
    expect(page.get_by_text("completed · Compare models: Custom").first).to_be_visible(timeout=30_000)
    page.wait_for_timeout(1_000)
    shot(page, "compare-answers-on-screen")
    assert_answers_on_screen(page, ["fake-small", "fake-alt"], "all_agree")
