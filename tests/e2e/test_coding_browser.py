"""Qualitative coding end to end in a real browser (issue 12's "done when"): a codebook imported on
the Codebooks page, every row coded by two models and a judge on Consensus (OpenAI pointed at the
fake server, so the codebook's labels are enforced by the json_schema it sends), two human
coders' columns imported on Reliability, every figure shown with its n and definition, a
disagreement settled on Adjudicate and used as the gold column, and the coded table downloaded
with the reliability report in one ZIP."""

from __future__ import annotations

import csv
import io
import json
import re
import warnings
import zipfile

import pytest

from handai_db import ADJUDICATED_RATER, RunStatus
from tests.e2e.conftest import ARTIFACTS, in_ci
from tests.fake_llm_server import odd_third

try:
    from playwright.sync_api import Locator, Page, expect
except ImportError:  # pragma: no cover - the dev requirements install it
    if in_ci():
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

from tests.e2e.test_browser import RUN_TIMEOUT, Shots, ledger, metric, nav, open_app, sidebar, start_full_run, upload

pytestmark = pytest.mark.timeout(180)

KEY = "sk-proj-" + "e2e" * 14
CODEBOOK_CSV = (
    b"name,definition,inclusion,exclusion,examples,parent\n"
    b'price,"The cost, or value for money",Mentions money or price,,too expensive,\n'
    b"quality,How well the product is made or works,Breaks; works well,,fell apart,\n"
    b"service,How people were treated,Staff; delivery; support,,rude staff,\n"
)
ANSWERS = [
    "Far too expensive for what it is",
    "Broke on the second day",
    "The staff were rude to me",
    "Costs a lot but worth it",
    "Fell apart quickly",
    "Support never answered",
    "Cheap and cheerful",
    "Arrived late and damaged",
]
ROWS = [{"id": f"{i:02d}", "text": t} for i, t in enumerate(ANSWERS, 1)]
LABELS = ["price", "quality", "service", "none"]  # the codebook's codes, then its "none" option


def sent(row: dict[str, str]) -> str:
    return json.dumps(row, ensure_ascii=False)


def baseline(user: str) -> str:
    """The fake server's enum answer for most models (its module docstring)."""
    return LABELS[len(user) % len(LABELS)]


def table_csv(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def type_model(page: Page, label: str, model: str) -> None:
    """A model the provider's list does not hold, typed into its box as a person does."""
    box = page.get_by_test_id("stSelectbox").filter(has=page.get_by_text(label, exact=True))
    expect(box).to_have_count(1)
    combo = box.get_by_role("combobox")
    combo.click()
    combo.fill(model)
    page.keyboard.press("Enter")
    expect(combo).to_have_value(model)


def multiselect(page: Page, label: str, options: list[str], scope: Page | Locator | None = None) -> None:
    box = (scope or page).get_by_test_id("stMultiSelect").filter(has=page.get_by_text(label, exact=True))
    for option in options:
        box.get_by_role("combobox").click()
        page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")


def choose_in(page: Page, label: str, option: str) -> None:
    box = page.get_by_test_id("stSelectbox").filter(has=page.get_by_text(label, exact=True))
    box.get_by_role("combobox").click()
    page.get_by_role("option", name=option, exact=True).click()
    expect(box.get_by_role("combobox")).to_have_value(option)


def choose_file(page: Page, uploader_label: str, name: str, data: bytes, arrived: Locator) -> None:
    """Choose a file in one uploader, again if it never arrives (Streamlit 1.67 can drop an upload
    picked as a rerun starts; see tests/e2e/test_browser.py `upload`)."""
    chooser = page.get_by_test_id("stFileUploader").filter(has_text=uploader_label).locator("input[type=file]")
    for attempt in (1, 2, 3):
        chooser.set_input_files(files=[{"name": name, "mimeType": "text/csv", "buffer": data}])
        try:
            expect(arrived).to_be_visible(timeout=10_000)
            return
        except AssertionError:
            if attempt == 3:
                raise
            warnings.warn(f"upload of {name} did not arrive (try {attempt}); choosing it again", stacklevel=2)


def open_openai_with_typed_key(page: Page, url: str, key: str) -> None:
    """The app opened with OpenAI chosen and `key` typed in the sidebar (this browser session only)."""
    open_app(page, url)
    choose_in(page, "Provider", "OpenAI")
    box = sidebar(page).get_by_label("OpenAI API key")
    box.fill(key)
    box.press("Enter")
    expect(sidebar(page).get_by_text(re.compile(r"sk-proj-…|sk-pro…|\(typed"))).to_have_count(1)


def import_reasons_codebook(page: Page) -> None:
    """CODEBOOK_CSV imported on the Codebooks page and saved as 'Reasons', version 1."""
    nav(page, "Codebooks")
    page.get_by_role("radio", name="Import a file").click()
    choose_file(page, "Codebook file", "reasons.csv", CODEBOOK_CSV, page.get_by_text("Read 3 codes from"))
    name = page.get_by_label("Name", exact=True)
    name.fill("Reasons")
    name.press("Tab")
    page.get_by_role("button", name="Save as a new codebook (version 1)").click()
    expect(page.get_by_text("Same as version 1 of 'Reasons'")).to_be_visible()


def test_codebook_to_coded_rows_humans_reliability_adjudication_and_export(app_server, new_page, llm):
    shot = Shots("coding-")
    db = ledger(app_server)
    db.set_setting("ui.base_url.openai", llm.url)  # OpenAI's endpoint, as a proxy or gateway would be set
    page = new_page()
    open_openai_with_typed_key(page, app_server.url, KEY)

    # 1. the codebook, imported from a CSV and saved as version 1
    import_reasons_codebook(page)
    shot(page, "codebook")

    # 2. every row coded by two models and a judge, with the codebook
    nav(page, "Consensus")
    upload(page, "answers.csv", table_csv(ROWS), len(ROWS))
    page.get_by_text("Apply a codebook", exact=True).click()
    expect(page.get_by_text("3 codes · one code per row")).to_be_visible()
    type_model(page, "Coder 1", "fake-small")
    type_model(page, "Coder 2", "fake-alt")
    page.get_by_text("Let a judge model settle disagreements").click()
    type_model(page, "Judge", "fake-large")
    run_id = start_full_run(page, len(ROWS))
    expect(metric(page, "Decided: unanimous")).to_be_visible(timeout=RUN_TIMEOUT)
    assert db.get_run(run_id).status == RunStatus.COMPLETED
    shot(page, "coded", at=page.get_by_text("Decided: unanimous", exact=True))
    users = [sent(r) for r in ROWS]
    coded = [r for r in llm.requests() if r.model == "fake-small"]
    assert sorted(r.user for r in coded) == sorted(users)
    assert all("The cost, or value for money" in r.system for r in coded)  # the codebook was sent
    differ = [u for u in users if odd_third(u)]
    assert len([r for r in llm.requests() if r.model == "fake-large"]) == len(differ)

    # 3. two human coders beside the models, and every figure with its n and definition
    humans = [
        {"id": r["id"], "Ann": baseline(sent(r)), "Bo": baseline(sent(r)) if i % 3 else "none"}
        for i, r in enumerate(ROWS)
    ]
    nav(page, "Reliability")
    page.get_by_role("tab", name="Import codes").click()
    match_on = page.get_by_test_id("stSelectbox").filter(has=page.get_by_text("Match rows on", exact=True))
    choose_file(page, "Human codes", "humans.csv", table_csv(humans), match_on)
    choose_in(page, "Match rows on", "id")
    multiselect(page, "Coder columns", ["Ann", "Bo"])
    expect(page.get_by_text(f"Matched on 'id': {len(ROWS)} of {len(ROWS)} uploaded rows")).to_be_visible()
    page.get_by_role("button", name="Save these coders").click()
    expect(page.get_by_text(re.compile(r"2 model coder\(s\) · 2 human coder\(s\)"))).to_be_visible()
    # the figures are a grid (drawn on a canvas): its accessible copy holds the cells
    expect(page.get_by_text("Krippendorff's alpha (nominal)", exact=True).first).to_be_attached()
    expect(page.get_by_text("Model–human vs human–human")).to_be_visible()
    saved = {(r.rater, r.row_index): r.value for r in db.ratings(run_id)}
    assert [saved[("Bo", i)] for i in range(len(ROWS))] == [h["Bo"] for h in humans]
    shot(page, "figures", at=page.get_by_role("heading", name="3 · Figures"))

    # 4. a disagreement settled, with who
    nav(page, "Adjudicate")
    expect(page.get_by_text(re.compile(r"Disagreement 1 of \d+"))).to_be_visible()
    author = page.get_by_label("Your name")
    author.fill("Dana")
    author.press("Enter")
    page.get_by_role("button", name="Settle").click()
    expect(metric(page, "Settled")).to_contain_text("1")
    shot(page, "settled")
    (decision,) = [r for r in db.ratings(run_id) if r.rater == ADJUDICATED_RATER]
    assert decision.author == "Dana" and decision.value in LABELS

    # 5. the settled rows as gold, and the coded table with the report in one ZIP
    nav(page, "Reliability")
    choose_in(page, "Gold column", "adjudicated")
    expect(page.get_by_text(re.compile(r"against gold")).first).to_be_visible()
    shot(page, "gold")
    button = page.get_by_test_id("stDownloadButton").filter(has_text="Coded table with the reliability report (ZIP)")
    with page.expect_download() as info:
        button.click()
    path = ARTIFACTS / "coded.zip"
    info.value.save_as(path)
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        assert {f"handai_run_{run_id}_coded.csv", f"handai_run_{run_id}_coded.xlsx"} <= names, names
        assert {"reliability_report.csv", "reliability_report.md"} <= names, names
        table = list(csv.DictReader(io.StringIO(archive.read(f"handai_run_{run_id}_coded.csv").decode("utf-8-sig"))))
        report = archive.read("reliability_report.md").decode()
    assert [r["id"] for r in table] == [r["id"] for r in ROWS]
    assert {"fake-small", "fake-alt", "consensus", "Ann", "Bo", "adjudicated"} <= set(table[0]), list(table[0])
    assert all(r["fake-small"] in LABELS for r in table)
    assert "Krippendorff" in report and "Gwet" in report and "gold" in report.lower()
    assert KEY not in path.read_bytes().decode("latin-1")
    assert page.errors == []
