"""The Codebooks page in a real browser: a codebook written in the table editor (cells typed as a
person types them), saved as version 1, checked in the ledger, and downloaded as a REFI-QDA file
that reads back to the same codes."""

from __future__ import annotations

import re

import pytest

from research.codebook_io import read_codebook
from tests.e2e.conftest import ARTIFACTS, in_ci

try:
    from playwright.sync_api import Page, expect
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # pragma: no cover - the dev requirements install it
    if in_ci():
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

from tests.e2e.test_browser import SETTLED, Shots, ledger, nav, open_app

pytestmark = pytest.mark.timeout(120)

ROW_PX, ROW_MARKER_PX, COLUMN_PX = 35, 60, 155  # the grid's row height, first column's middle, column step
FRESH = '[data-testid="stElementContainer"]:not([data-stale="true"]) [data-testid="stDataFrame"]'
COLUMNS = ("name", "definition", "inclusion", "exclusion", "examples", "parent")


def codes_grid(page: Page):
    """The codes table as drawn now (a rerun keeps the old one on screen for a moment, marked stale)."""
    return page.locator(FRESH).last


def type_cell(page: Page, row: int, column: int, text: str) -> None:
    """Double-click a cell of the codes table (a click on the empty last row adds a row first),
    type into the cell's editor, commit with Enter, and wait until the table shows the text.
    A rerun that redraws the table mid-edit closes the editor, as it would under a person's
    fingers: the whole edit is tried again, up to three times."""
    shown = codes_grid(page).locator("td").filter(has_text=re.compile(rf"^{re.escape(text)}$"))
    for attempt in (1, 2, 3):
        try:
            _edit_cell(page, row, column, text)
            expect(shown).to_have_count(1, timeout=5_000)
            return
        except (PlaywrightTimeout, AssertionError):
            if attempt == 3:
                raise
            page.keyboard.press("Escape")
            page.wait_for_function(SETTLED)
            if shown.count() == 1:  # the edit landed after all
                return


def _edit_cell(page: Page, row: int, column: int, text: str) -> None:
    page.wait_for_function(SETTLED)
    grid = codes_grid(page)
    expect(grid).to_be_visible()
    box = grid.bounding_box()
    assert box is not None
    x = box["x"] + ROW_MARKER_PX + column * COLUMN_PX
    y = box["y"] + ROW_PX * (row + 1.5)
    cells = grid.locator("td")
    if cells.count() <= row * len(COLUMNS):
        page.mouse.click(x, y)
        expect(cells).to_have_count((row + 1) * len(COLUMNS))
    editor = page.locator("#portal textarea")
    page.wait_for_function(SETTLED)
    page.mouse.dblclick(x, y)
    editor.wait_for(timeout=3_000)
    editor.fill(text, timeout=5_000)
    if column == 0:  # a new name redraws the table (so the parent column offers it): wait for the new one
        codes_grid(page).evaluate("e => { e.dataset.before = '1'; }")
    editor.press("Enter", timeout=5_000)
    if column == 0:
        page.wait_for_function(f"() => !([...document.querySelectorAll('{FRESH}')].pop()?.dataset.before)")
    page.wait_for_function(SETTLED)


def test_write_a_codebook_save_it_and_download_it_as_refi_qda(app_server, new_page):
    shot = Shots("codebooks-")
    page = new_page()
    open_app(page, app_server.url)
    nav(page, "Codebooks")
    expect(page.get_by_text("No codebooks saved yet")).to_be_visible()
    name = page.get_by_label("Name", exact=True)
    name.fill("Browser book")
    name.press("Tab")  # blur commits it and leaves the keyboard to the table
    expect(page.get_by_text("Give the codebook a name.")).to_be_hidden()

    type_cell(page, 0, 0, "price")
    type_cell(page, 0, 1, "Cost or value for money")
    type_cell(page, 1, 0, "quality")
    expect(page.get_by_text("The codebook has no codes")).to_be_hidden()
    shot(page, "written")

    page.get_by_label("Version note", exact=True).fill("typed in the browser")
    page.get_by_label("Version note", exact=True).press("Enter")
    page.get_by_role("button", name="Save as a new codebook (version 1)").click()
    expect(page.get_by_text("Same as version 1 of 'Browser book'")).to_be_visible()
    shot(page, "saved")

    db = ledger(app_server)
    (version,) = db.codebook_versions(db.find_codebook("Browser book").id)
    assert (version.version, version.note, version.source) == (1, "typed in the browser", "written in the editor")
    assert [(c["name"], c["definition"]) for c in version.content["codes"]] == [
        ("price", "Cost or value for money"),
        ("quality", ""),
    ]

    button = page.get_by_test_id("stDownloadButton").filter(has_text="REFI-QDA codebook (.qdc)")
    with page.expect_download() as info:
        button.click()
    download = info.value
    assert download.suggested_filename == "Browser_book_v1.qdc"
    path = ARTIFACTS / "codebook.qdc"
    download.save_as(path)
    book = read_codebook(download.suggested_filename, path.read_bytes())
    assert [(c.name, c.definition) for c in book.codes] == [("price", "Cost or value for money"), ("quality", "")]
    assert page.errors == []
