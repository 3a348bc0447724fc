"""Issue 13's "done when" in a real browser: a DOCX and a PDF interview transcript uploaded together
on the Qualitative coder page, split into speaker turns and previewed, coded with a codebook
imported on the Codebooks page (OpenAI pointed at the fake server, a key typed in the sidebar),
the run's methods bundle downloaded and checked (results with each turn's place in its source,
complete provenance, a methods paragraph, no key anywhere), then uploaded on History's "Re-run
from a methods bundle", repeated, and found to give the same answers to the same messages."""

from __future__ import annotations

import csv
import io
import json
import re
import warnings
import zipfile
from collections import Counter

import pytest

from handai_db import RunStatus
from tests.e2e.conftest import ARTIFACTS, in_ci
from tests.test_documents import docx_bytes, pdf_bytes

try:
    from playwright.sync_api import Locator, Page, expect
except ImportError:  # pragma: no cover - the dev requirements install it
    if in_ci():
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

from tests.e2e.test_browser import RUN_TIMEOUT, Shots, ledger, metric, nav, start_full_run
from tests.e2e.test_coding_browser import (
    LABELS,
    baseline,
    choose_file,
    import_reasons_codebook,
    open_openai_with_typed_key,
)
from tests.fake_llm_server import masked

pytestmark = pytest.mark.timeout(120)

KEY = "sk-proj-" + "docs" * 11
MODEL = "fake-small"
REPORTED = "fake-small-2026-05-01"  # the dated id the provider names in its replies, as OpenAI does
DOCX_TURNS = [
    ("Interviewer", "How did you come to this job?"),
    ("Ann", "By chance, a friend told me it paid well."),
    ("Interviewer", "And the work itself?"),
    ("Ann", "The machines break every week and nobody fixes them."),
]
PDF_PAGES = [
    [("Interviewer", "What do you think of the service?"), ("Bo", "The staff were rude to me at the desk.")],
    [("Interviewer", "Anything else?"), ("Bo", "It costs too much for what you get.")],
]
PDF_TURNS = [turn for page in PDF_PAGES for turn in page]
TURNS = len(DOCX_TURNS) + len(PDF_TURNS)
COLUMNS = ["document", "segment", "position", "speaker", "text"]


def transcripts() -> list[dict[str, object]]:
    """The two files as the file chooser takes them: a DOCX (one turn per paragraph) and a
    two-page PDF (one turn per line)."""
    docx = docx_bytes([f"{who}: {said}" for who, said in DOCX_TURNS])
    pdf = pdf_bytes([[f"{who}: {said}" for who, said in page] for page in PDF_PAGES])
    return [
        {
            "name": "interview_ann.docx",
            "mimeType": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "buffer": docx,
        },
        {"name": "interview_bo.pdf", "mimeType": "application/pdf", "buffer": pdf},
    ]


def upload_documents(page: Page, files: list[dict[str, object]], arrived: Locator) -> None:
    """Choose several files at once in the page's data uploader, again if they never arrive
    (Streamlit 1.67 can drop an upload picked as a rerun starts; see test_browser.upload)."""
    chooser = page.get_by_test_id("stMain").get_by_test_id("stFileUploader").locator("input[type=file]")
    for attempt in (1, 2, 3):
        chooser.set_input_files(files=files)
        try:
            expect(arrived).to_be_visible(timeout=10_000)
            return
        except AssertionError:
            if attempt == 3:
                raise
            warnings.warn(f"the documents did not arrive (try {attempt}); choosing them again", stacklevel=2)


def type_main_model(page: Page, model: str) -> None:
    """The page's own "Model" box (the sidebar has one of the same name), typed as a person does."""
    box = page.get_by_test_id("stMain").get_by_test_id("stSelectbox").filter(has=page.get_by_text("Model", exact=True))
    expect(box).to_have_count(1)
    combo = box.get_by_role("combobox")
    combo.click()
    combo.fill(model)
    page.keyboard.press("Enter")
    expect(combo).to_have_value(model)


def preview_cells(page: Page, waited_for: str) -> list[str]:
    """The preview grid's headings and cells, from the accessible copy of the canvas it is drawn on,
    once it shows `waited_for` (the grid of the previous split may still be on screen)."""
    grid = page.locator('[data-testid="stElementContainer"]:not([data-stale="true"]) [data-testid="stDataFrame"]')
    expect(grid.first.locator("td").filter(has_text=re.compile(rf"^{re.escape(waited_for)}$"))).to_have_count(1)
    return [t.strip() for t in grid.first.locator("th, td").all_inner_texts()]


def expected_rows() -> list[tuple[str, ...]]:
    """Each turn as the preview numbers it: row, document, segment, position, speaker, text."""
    docx = [("interview_ann.docx", str(i), f"paragraph {i}", w, s) for i, (w, s) in enumerate(DOCX_TURNS, 1)]
    pdf = [
        ("interview_bo.pdf", str(2 * (p - 1) + line), f"page {p}, line {line}", w, s)
        for p, turns in enumerate(PDF_PAGES, 1)
        for line, (w, s) in enumerate(turns, 1)
    ]
    return [(str(row), *turn) for row, turn in enumerate(docx + pdf, 1)]


def read_bundle(data: bytes) -> tuple[list[dict[str, str]], dict, str, set[str]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
        results = list(csv.DictReader(io.StringIO(archive.read("results.csv").decode("utf-8-sig"), newline="")))
        provenance = json.loads(archive.read("provenance.json"))
        methods = archive.read("METHODS.md").decode()
        unpacked = b"".join(archive.read(n) for n in names)
    assert KEY.encode() not in unpacked and KEY[8:].encode() not in unpacked  # not in any member, unpacked
    assert KEY.encode() not in data  # nor in the ZIP's own bytes (names, comments)
    return results, provenance, methods, names


def test_transcripts_split_into_turns_coded_bundled_and_rerun_from_history(app_server, new_page, llm):
    shot = Shots("documents-")
    db = ledger(app_server)
    db.set_setting("ui.base_url.openai", llm.url)  # OpenAI's endpoint, as a proxy or gateway would be set
    llm.configure(reported_models={MODEL: REPORTED})
    page = new_page()
    open_openai_with_typed_key(page, app_server.url, KEY)

    # 1. a codebook, imported from a CSV and saved as version 1
    import_reasons_codebook(page)

    # 2. both transcripts at once, split into speaker turns, previewed before any call
    nav(page, "Qualitative coder")
    upload_documents(page, transcripts(), page.get_by_role("radiogroup").filter(has_text="Speaker turn"))
    shot(page, "uploaded")
    page.get_by_role("radiogroup").get_by_text("Speaker turn", exact=True).click()
    expect(
        page.get_by_text(f"interview_ann.docx, interview_bo.pdf · {TURNS} rows × {len(COLUMNS)} columns")
    ).to_be_visible()
    cells = preview_cells(page, "page 2, line 1")
    assert cells[:6] == ["row", *COLUMNS], cells
    shown = [tuple(cells[i : i + 6]) for i in range(6, len(cells) - 5, 6)]
    assert len(shown) >= 7 and shown == expected_rows()[: len(shown)], shown  # the grid draws the rows in view
    assert llm.requests() == []
    shot(page, "turns-previewed")

    # 3. the codebook (the only one, latest version) and a model; every turn coded
    expect(page.get_by_text("3 codes · one code per row")).to_be_visible()
    type_main_model(page, MODEL)
    shot(page, "ready", at=page.get_by_role("heading", name="2 · Codebook and task"))
    run_id = start_full_run(page, TURNS)
    expect(metric(page, "Coded")).to_contain_text(str(TURNS), timeout=RUN_TIMEOUT)
    assert db.get_run(run_id).status == RunStatus.COMPLETED
    shot(page, "coded", at=metric(page, "Coded"))
    first = llm.requests()
    assert len(first) == TURNS and {r.key for r in first} == {masked(KEY)}  # the typed key was used
    sent_for = {
        said: [r.user for r in first if json.loads(r.user)["text"] == said] for _, said in DOCX_TURNS + PDF_TURNS
    }
    assert all(len(users) == 1 for users in sent_for.values()), sent_for  # each turn sent once, as its own row
    assert all("The cost, or value for money" in r.system for r in first)  # the codebook was sent

    # 4. the methods bundle: every turn with its place, the whole record, no key
    button = page.get_by_test_id("stDownloadButton").filter(has_text="Methods bundle (ZIP)")
    with page.expect_download() as info:
        button.click()
    download = info.value
    assert download.suggested_filename == f"handai_run_{run_id}_methods.zip"
    bundle = ARTIFACTS / "documents-bundle.zip"
    download.save_as(bundle)
    results, prov, methods, names = read_bundle(bundle.read_bytes())
    assert {"results.csv", "provenance.json", "METHODS.md"} <= names, names

    assert len(results) == TURNS
    assert set(COLUMNS) <= set(results[0]), list(results[0])
    assert [tuple(r[c] for c in COLUMNS) for r in results] == [row[1:] for row in expected_rows()]
    assert [r["code"] for r in results] == [baseline(sent_for[r["text"]][0]) for r in results]  # each its own
    assert {r[f"{MODEL}_status"] for r in results} == {"succeeded"}

    (step,) = prov["steps"]
    (sent,) = step["sent"].values()
    assert step["instruction"].startswith("Code the row below with the codebook.")
    assert 'codebook "Reasons"' in step["instruction"] and "The cost, or value for money" in sent["system_message"]
    assert step["output_schema"]["fields"]["code"]["labels"] == LABELS
    assert sent["model"] == MODEL
    assert sent["parameters"]["response_format"]["json_schema"]["schema"]["properties"]["code"]["enum"] == LABELS
    assert prov["codebook"]["ref"] == {"id": 1, "name": "Reasons", "version": 1}
    (arm,) = prov["arms"]
    assert (arm["provider"], arm["model"], arm["model_reported"]) == ("openai", MODEL, {REPORTED: TURNS})
    assert arm["endpoint"] == {"base_url": llm.url}
    assert prov["input"]["name"] == "interview_ann.docx, interview_bo.pdf"
    assert re.fullmatch(r"[0-9a-f]{64}", prov["input"]["sha256"]), prov["input"]
    assert prov["input"]["columns"] == COLUMNS
    assert step["columns_sent_as_json"] == COLUMNS  # `speaker` came with the split into turns
    outcome = prov["outcome"]
    assert outcome["rows"] == TURNS and outcome["cells_by_status"]["succeeded"] == TURNS
    assert outcome["cells_by_status"]["failed"] == 0 and outcome["calls_sent"] == TURNS
    assert f"We processed {TURNS} rows of interview_ann.docx, interview_bo.pdf" in methods
    assert f"using {MODEL} (openai, via {llm.url}, reported as {REPORTED})" in methods
    assert "codebook 'Reasons', version 1" in methods and "No answer failed." in methods

    # 5. the bundle uploaded on History and repeated: the same messages, the same answers
    nav(page, "History")
    page.get_by_test_id("stExpander").get_by_text("Re-run from a methods bundle").click()
    data = bundle.read_bytes()
    rerun_button = page.get_by_role("button", name=re.compile(rf"^Re-run {TURNS} rows from "))
    choose_file(page, "Methods bundle (ZIP)", bundle.name, data, rerun_button)
    expect(page.get_by_text("Same recorded settings and input rows.")).to_be_visible()
    shot(page, "bundle-read", at=page.get_by_test_id("stExpander").first)
    before = len(llm.requests())
    rerun_button.click()
    done = page.get_by_text(re.compile(rf"0 of {TURNS} rows have answers that differ from the bundle's"))
    expect(done).to_be_visible(timeout=RUN_TIMEOUT)
    shot(page, "repeated", at=page.get_by_test_id("stExpander").filter(has=done))
    again = llm.requests()[before:]
    assert Counter(r.user for r in again) == Counter(r.user for r in first)
    assert {r.system for r in again} == {r.system for r in first} and {r.key for r in again} == {masked(KEY)}
    (repeat,) = [r for r in db.list_runs() if r.id != run_id]
    assert repeat.status == RunStatus.COMPLETED and repeat.succeeded == TURNS
    db.close()
    assert KEY not in page.content()
    assert page.errors == []
