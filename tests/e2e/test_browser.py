"""Handai in a real browser, started as a user starts it, against the fake LLM server.

The flows: pick the provider, upload a tricky CSV, test run, full run while moving between pages,
reloading and reopening the tab, and a server crash (SIGKILL) with Resume from History. Each
step leaves a screenshot in test-artifacts/e2e/ to look at.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from handai_db import RunStatus
from tests.e2e.conftest import ARTIFACTS, StreamlitServer, in_ci

try:
    from playwright.sync_api import Page, expect
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # pragma: no cover - the dev requirements install it
    if in_ci():
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = pytest.mark.timeout(120)

ROWS = 120
LATENCY_MS = 400  # with concurrency 4: 30 waves of 0.4 s, so a full run takes about 12 s, seen running when busy
CONCURRENCY = 4
INSTRUCTION = "Summarise this row in five words."
RUN_TIMEOUT = 60_000  # ms


# -- data -----------------------------------------------------------------------------------------
def tricky_rows(n: int = ROWS) -> list[dict[str, str]]:
    """ids with leading zeros; text with commas, quotes, non-ASCII, and some embedded newlines."""
    rows = []
    for i in range(n):
        text = f'Row {i}: "quoted", with commas, café naïve — 日本語 ✓ Ünïcödé №{i}'
        if i % 10 == 3:
            text += "\nsecond line of the same cell"
        rows.append({"id": f"{i:03d}", "text": text})
    return rows


def to_csv(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["id", "text"])  # \r\n rows, like Excel writes them
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def sent(row: dict[str, str]) -> str:
    """The user message the app sends for a row ("Columns as JSON", every column)."""
    return json.dumps({"id": row["id"], "text": row["text"]}, ensure_ascii=False)


# -- browser helpers --------------------------------------------------------------------------------
SETTLED = """() => !document.querySelector('[data-testid="stSkeleton"]')
    && document.querySelector('[data-testid="stApp"]')?.dataset.testScriptState !== 'running'"""


class Shots:
    """Numbered screenshots: test-artifacts/e2e/<prefix>NN-<step>.png. `at` scrolls that element
    to the top first. Before each shot the page gets up to 2 s to finish drawing (for a readable
    picture only; the tests never use this to synchronise)."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.n = 0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for old in ARTIFACTS.glob(f"{prefix}[0-9][0-9]-*.png"):
            old.unlink()

    def __call__(self, page: Page, step: str, at: Any = None, settle: bool = True) -> Path:
        self.n += 1
        if settle:
            with contextlib.suppress(PlaywrightTimeout):
                page.wait_for_function(SETTLED, timeout=2_000)
        if at is not None:
            at.first.evaluate("e => e.scrollIntoView({block: 'start'})")
        path = ARTIFACTS / f"{self.prefix}{self.n:02d}-{step}.png"
        page.screenshot(path=str(path))
        return path


def sidebar(page: Page):
    return page.get_by_test_id("stSidebar")


def open_app(page: Page, url: str, heading: str = "Transform") -> None:
    page.goto(url)
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(timeout=30_000)


def choose(page: Page, label: str, option: str, scope: Any = None) -> None:
    """A Streamlit selectbox is a combobox: click it, then click the option."""
    box = (scope or page).get_by_test_id("stSelectbox").filter(has=page.get_by_text(label, exact=True))
    box.get_by_role("combobox").click()
    page.get_by_role("option", name=option, exact=True).click()
    expect(box.get_by_role("combobox")).to_have_value(option)


def nav(page: Page, title: str) -> None:
    sidebar(page).get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()


def metric(page: Page, label: str):
    """A metric as currently drawn: during a rerun Streamlit keeps the previous script's elements on screen,
    marked stale, so an old run's metric of the same name can sit beside the new one for a moment."""
    fresh = page.locator('[data-testid="stElementContainer"]:not([data-stale="true"]) [data-testid="stMetric"]')
    return fresh.filter(has=page.get_by_test_id("stMetricLabel").filter(has_text=label))


def use_fake_server(page: Page, llm_url: str) -> None:
    sb = sidebar(page)
    choose(page, "Provider", "Custom (OpenAI-compatible)", sb)
    base_url = sb.get_by_label("Base URL")
    base_url.fill(llm_url)
    base_url.press("Enter")
    # The model list comes from the fake server's /v1/models once the URL is committed.
    choose(page, "Model", "fake-small", sb)
    expect(base_url).to_have_value(llm_url)


def set_concurrency(page: Page, value: int) -> None:
    sb = sidebar(page)
    expander = sb.get_by_test_id("stExpander").filter(has_text="Parameters")
    if not expander.get_by_role("slider").is_visible():
        expander.get_by_text("Parameters").click()
    slider = expander.get_by_role("slider")
    slider.focus()
    slider.press("Home")
    for _ in range(value - 1):
        slider.press("ArrowRight")
    expect(slider).to_have_value(str(value))


def upload(page: Page, name: str, data: bytes, rows: int) -> int:
    """Choose a file in the uploader's file chooser; returns how many extra tries it took.

    Streamlit 1.67 can lose an upload picked just as a rerun starts: the server's reply with the
    upload URL (file_urls_response) is dropped when ForwardMsgQueue.clear() runs on
    SCRIPT_STARTED, so the file never leaves the browser. A user sees the file not load and picks
    it again; so does this helper (with a warning in the test summary).
    """
    chooser = page.get_by_test_id("stFileUploader").locator("input[type=file]")
    loaded = page.get_by_text(f"{name} · {rows:,} rows × ")
    for attempt in range(3):
        chooser.set_input_files(files=[{"name": name, "mimeType": "text/csv", "buffer": data}])
        try:
            expect(loaded).to_be_visible(timeout=5_000)
        except AssertionError:
            warnings.warn(f"upload of {name} did not arrive (try {attempt + 1}); choosing it again", stacklevel=2)
            continue
        return attempt
    raise AssertionError(f"{name} never loaded after 3 tries")


def write_instruction(page: Page, text: str) -> None:
    box = page.get_by_label("Instruction")
    box.fill(text)
    box.press("Tab")  # blur commits a text area
    expect(page.get_by_text("Write an instruction first.")).to_have_count(0)
    expect(page.get_by_role("button", name="Test run")).to_be_enabled()


def prepare(page: Page, server: StreamlitServer, llm_url: str, rows: list[dict[str, str]]) -> None:
    open_app(page, server.url)
    use_fake_server(page, llm_url)
    upload(page, "reviews.csv", to_csv(rows), len(rows))
    write_instruction(page, INSTRUCTION)


def run_heading(page: Page, run_id: int):
    return page.get_by_role("heading", name=re.compile(rf"^Run #{run_id}\b"))


def expect_run(page: Page, run_id: int, status: RunStatus | None = None, timeout: float = 20_000) -> None:
    expect(run_heading(page, run_id)).to_be_visible(timeout=timeout)
    if status:
        expect(page.get_by_text(re.compile(rf"\b{status} · Custom"))).to_be_visible(timeout=timeout)


def expect_completed(page: Page, run_id: int, rows: int) -> None:
    """Completion as the user reads it: the run's caption, the bar's label and the counters."""
    expect_run(page, run_id, RunStatus.COMPLETED, timeout=RUN_TIMEOUT)
    expect(page.get_by_test_id("stProgress").get_by_text(f"{rows:,} of {rows:,} rows")).to_be_visible()
    expect(metric(page, "Succeeded")).to_contain_text(f"{rows:,}")
    expect(metric(page, "Failed")).to_contain_text("0")
    expect(page.get_by_text(f"{rows:,} of {rows:,} rows", exact=True).last).to_be_visible()


def rows_done(page: Page) -> int:
    label = page.get_by_test_id("stProgress").inner_text()
    match = re.search(r"([\d,]+) of ([\d,]+) rows", label)
    assert match, label
    return int(match.group(1).replace(",", ""))


def download_csv(page: Page) -> list[dict[str, str]]:
    button = page.get_by_test_id("stDownloadButton").filter(has_text=re.compile(r"CSV$"))
    for attempt in (1, 2):  # a click that lands while the page reruns is lost: click again, once
        try:
            with page.expect_download(timeout=20_000) as info:
                button.click()
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            warnings.warn("the CSV download did not start (try 1); clicking again", stacklevel=2)
    download = info.value
    path = ARTIFACTS / download.suggested_filename
    download.save_as(path)
    text = path.read_bytes().decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def full_run_requests(llm: Any, since: int) -> Counter[str]:
    return Counter(r.user for r in llm.requests()[since:])


def assert_every_row_once(
    counts: Counter[str], rows: list[dict[str, str]], cached: set[str] | frozenset[str] = frozenset()
) -> None:
    """Each row's message was sent exactly once, except rows answered from the reply cache."""
    expected = {sent(r) for r in rows} - cached
    missing = [u for u in expected if counts[u] == 0]
    repeated = {u: n for u, n in counts.items() if n > 1}
    unexpected = [u for u in counts if u not in expected]
    assert not missing and not repeated and not unexpected, (
        f"missing {len(missing)}, repeated {len(repeated)}, unexpected {len(unexpected)}: "
        f"{missing[:2]} {list(repeated.items())[:2]} {unexpected[:2]}"
    )


def ledger(server: StreamlitServer):
    from handai_db import Database

    return Database(f"sqlite:///{server.data_dir}/handai.db")


def cached_rows(server: StreamlitServer, run_id: int) -> set[str]:
    """Rows of a run answered from Handai's reply cache (no request sent), per the ledger."""
    db = ledger(server)
    try:
        return {r.request for r in db.results(run_id) if getattr(r, "cached", False)}
    finally:
        db.close()


def url_run(url: str) -> int | None:
    match = re.search(r"[?&]run=(\d+)", url)
    return int(match.group(1)) if match else None


def start_full_run(page: Page, rows: int, timeout: float = 20_000) -> int:
    """Click "Run all N rows"; return the new run's id (from the URL, where the page puts it).
    A click that lands while a timed fragment reruns can be lost (Streamlit coalesces the two
    reruns): it is clicked again, once. A second click never starts a second run: while the
    page's run is active, the page asks first."""
    shown = url_run(page.url)
    button = page.get_by_role("button", name=f"Run all {rows:,} rows")
    for wait in (8_000, timeout):
        button.click()
        try:
            page.wait_for_url(lambda url: url_run(url) not in (None, shown), timeout=wait)
            return url_run(page.url)
        except PlaywrightTimeout:
            continue
    pytest.fail(f"no new run in the URL {timeout / 1000:.0f} s after clicking Run all twice (URL: {page.url})")


def start_slow_run(page: Page, server: StreamlitServer, llm: Any, rows: list[dict[str, str]]) -> int:
    """The tricky rows sent slowly enough (CONCURRENCY, LATENCY_MS) to be seen running; the run's id."""
    prepare(page, server, llm.url, rows)
    set_concurrency(page, CONCURRENCY)
    llm.configure(latency_ms=LATENCY_MS)
    run_id = start_full_run(page, ROWS)
    expect_run(page, run_id, RunStatus.RUNNING)
    return run_id


def wait_for_rows(server: StreamlitServer, run_id: int, rows: int, timeout: float = 30) -> int:
    """Poll the ledger until `rows` rows of the run succeeded; fails, saying how far it got."""
    db = ledger(server)
    try:
        deadline = time.monotonic() + timeout
        while (done := db.run_counts(run_id).succeeded) < rows:
            if time.monotonic() > deadline:
                pytest.fail(f"run {run_id} had {done} of the {rows} rows waited for after {timeout:.0f} s")
            time.sleep(0.1)  # short polling of the ledger
        return done
    finally:
        db.close()


# -- tests ----------------------------------------------------------------------------------------------
def test_upload_test_run_full_run_across_pages_and_download(app_server, new_page, llm):
    shot = Shots()
    rows = tricky_rows()
    page = new_page()

    # 1. provider, URL and model in the sidebar
    open_app(page, app_server.url)
    shot(page, "opened")
    use_fake_server(page, llm.url)
    expect(sidebar(page).get_by_text("No API key")).to_have_count(0)
    expect(sidebar(page).get_by_text("Parameters", exact=True)).to_have_count(1)
    shot(page, "custom-provider")

    # 2. upload through the file chooser
    upload(page, "reviews.csv", to_csv(rows), ROWS)
    expect(page.get_by_text("reviews.csv · 120 rows × 2 columns")).to_be_visible()
    expect(page.get_by_text("Preview of the first 200 rows")).to_have_count(0)
    shot(page, "uploaded")

    # 3. instruction and a test run on the first 5 rows
    write_instruction(page, INSTRUCTION)
    page.get_by_test_id("stExpander").filter(has_text="Preview: what row 1 sends").click()
    expect(page.get_by_test_id("stCode").filter(has_text='"000"')).to_be_visible()
    shot(page, "instruction")
    page.get_by_role("button", name="Test run").click()
    expect_run(page, 1)
    expect_completed(page, 1, 5)
    assert sorted(r.user for r in llm.requests()) == sorted(sent(r) for r in rows[:5])
    shot(page, "test-run-done", at=run_heading(page, 1))

    # 4. a slow server and low concurrency, so the full run takes several seconds
    set_concurrency(page, CONCURRENCY)
    llm.configure(latency_ms=LATENCY_MS)
    before = len(llm.requests())
    run_id = start_full_run(page, ROWS)
    assert run_id == 2
    expect_run(page, run_id, RunStatus.RUNNING)
    expect(metric(page, "Concurrency").filter(has_text=f"/{CONCURRENCY}")).to_be_visible()
    shot(page, "full-run-started", at=run_heading(page, run_id))

    # 5. away to History and back while it runs: the page finds the run and keeps going
    nav(page, "History")
    expect_run(page, run_id)
    shot(page, "history-while-running")
    nav(page, "Transform")
    expect_run(page, run_id)
    expect(page.get_by_test_id("stProgress")).to_be_visible()
    first_seen = rows_done(page)
    shot(page, "back-on-transform", at=run_heading(page, run_id))
    assert first_seen < ROWS, "the run finished before the page switch; raise LATENCY_MS"
    deadline = time.monotonic() + 15
    while rows_done(page) == first_seen:
        assert time.monotonic() < deadline, "progress did not move in 15 s after coming back to Transform"
        page.wait_for_timeout(200)  # short polling: the progress fragment reruns every second
    expect_completed(page, run_id, ROWS)
    shot(page, "full-run-done", at=run_heading(page, run_id))

    # 6. the CSV download holds every row, intact
    downloaded = download_csv(page)
    assert len(downloaded) == ROWS
    assert list(downloaded[0]) == ["id", "text", "ai_output", "ai_status", "ai_error"]
    assert [r["id"] for r in downloaded] == [r["id"] for r in rows]
    assert [r["text"] for r in downloaded] == [r["text"] for r in rows]
    assert "\nsecond line of the same cell" in downloaded[3]["text"]
    assert {r["ai_status"] for r in downloaded} == {"succeeded"}
    for got, row in zip(downloaded, rows, strict=True):
        assert got["ai_output"] == "Reply to: " + sent(row)
        assert got["ai_error"] == ""
    shot(page, "downloaded", at=run_heading(page, run_id))

    # 7. the fake server saw each row exactly once in the full run; rows the test run already
    # paid for may come from the reply cache instead (then they were sent once in all)
    cached = cached_rows(app_server, run_id)
    assert cached <= {sent(r) for r in rows[:5]}, "only the test run's rows can be cached"
    assert_every_row_once(full_run_requests(llm, before), rows, cached)
    assert not page.errors, page.errors


def test_reload_and_reopen_mid_run_find_the_run(app_server, new_page, llm):
    shot = Shots("reload-")
    rows = tricky_rows()
    page = new_page()
    run_id = start_slow_run(page, app_server, llm, rows)
    shot(page, "running", at=run_heading(page, run_id))

    page.reload()
    expect_run(page, run_id)
    assert rows_done(page) < ROWS, "the run finished before the reload; raise LATENCY_MS"
    expect_run(page, run_id, RunStatus.RUNNING)
    shot(page, "after-reload", at=run_heading(page, run_id))

    llm.configure(hold=True)  # a fresh tab finds active runs: the replies wait until it has opened
    page.context.close()
    page = new_page()  # a new tab in a fresh browser profile, at the plain app URL
    open_app(page, app_server.url)
    expect_run(page, run_id)
    shot(page, "reopened", at=run_heading(page, run_id))
    llm.configure(hold=False)
    expect_completed(page, run_id, ROWS)
    shot(page, "done", at=run_heading(page, run_id))

    downloaded = download_csv(page)
    assert [r["id"] for r in downloaded] == [r["id"] for r in rows]
    assert {r["ai_status"] for r in downloaded} == {"succeeded"}
    assert not cached_rows(app_server, run_id)
    assert_every_row_once(full_run_requests(llm, 0), rows)


def test_server_killed_mid_run_resumes_from_history(app_server, new_page, llm):
    shot = Shots("crash-")
    rows = tricky_rows()
    page = new_page()
    run_id = start_slow_run(page, app_server, llm, rows)
    shot(page, "running", at=run_heading(page, run_id))

    wait_for_rows(app_server, run_id, 30)
    db = ledger(app_server)
    try:
        assert db.run_counts(run_id).succeeded < ROWS, "the run finished before the kill; raise LATENCY_MS"
        app_server.kill()
        shot(page, "server-killed", settle=False)  # disconnected: it will not settle
        recorded = {r.request for r in db.results(run_id, statuses=["succeeded"])}
        assert 0 < len(recorded) < ROWS
        assert db.get_run(run_id).status == RunStatus.RUNNING  # nobody could say otherwise yet

        app_server.start()
        page.goto(f"{app_server.url}/history")
        expect(page.get_by_role("heading", name="History", exact=True)).to_be_visible(timeout=30_000)
        expect_run(page, run_id, RunStatus.INTERRUPTED)
        expect(page.get_by_text("The process running this run stopped before it finished.")).to_be_visible()
        shot(page, "history-list")
        listed, actual = db.get_run(run_id).succeeded, db.run_counts(run_id).succeeded
        shot(page, "interrupted", at=run_heading(page, run_id))
        resumed_at = len(llm.requests())
        page.get_by_role("button", name="Resume").click()
        expect_completed(page, run_id, ROWS)
        shot(page, "resumed-done", at=run_heading(page, run_id))

        done = db.results(run_id)
        assert len(done) == ROWS and {r.status for r in done} == {"succeeded"}
        assert sorted(r.request for r in done) == sorted(sent(r) for r in rows)
        after = Counter(r.user for r in llm.requests()[resumed_at:])
        again = [u for u in after if u in recorded]
        assert not again, f"{len(again)} rows sent again after they had succeeded: {again[:2]}"
        assert set(after) == {sent(r) for r in rows} - recorded
        assert all(n == 1 for n in after.values()), [u for u, n in after.items() if n > 1][:2]
    finally:
        db.close()
    assert listed == actual, f"History's runs table said 'succeeded {listed}' for a run with {actual}"


def test_deep_link_on_a_fresh_server_keeps_the_app_navigation(app_server, new_page):
    """A bookmark, or a tab that reconnects after a restart, opens a page before the entry script
    ever ran in this server process."""
    shot = Shots("deeplink-")
    page = new_page()
    open_app(page, f"{app_server.url}/history", heading="History")
    links = sidebar(page).get_by_test_id("stSidebarNav").get_by_role("link")
    expect(links.first).to_be_visible()
    shot(page, "history-first")
    titles = [t.strip() for t in links.all_inner_texts()]
    titles = [t.splitlines()[-1].strip() for t in titles]  # drop the material icon's ligature text
    assert titles == [
        "Transform",
        "Generate",
        "Compare models",
        "Consensus",
        "Pipeline",
        "Codebooks",
        "Qualitative coder",
        "Reliability",
        "Adjudicate",
        "History",
        "Settings",
    ], titles


def test_two_sessions_run_at_once_on_one_database_and_keys_stay_out_of_the_page(app_server, new_page, llm):
    """Two browser sessions start runs at the same time; both finish, History agrees, nothing says
    "database is locked", and a key typed into the sidebar is nowhere in the page's HTML."""
    shot = Shots("two-")
    key = "sk-proj-E2EPAGEKEY0123456789abcdefXYZ"
    first_rows = tricky_rows(60)
    second_rows = [{**r, "text": "second session " + r["text"]} for r in tricky_rows(60)]
    pages = []
    for rows in (first_rows, second_rows):
        page = new_page()
        prepare(page, app_server, llm.url, rows)
        pages.append(page)
    key_box = sidebar(pages[0]).get_by_label("Custom (OpenAI-compatible) API key")
    key_box.fill(key)
    key_box.press("Enter")
    expect(sidebar(pages[0]).get_by_text("typed in this browser session")).to_be_visible()
    llm.configure(latency_ms=100)
    run_ids = [start_full_run(page, 60) for page in pages]
    assert len(set(run_ids)) == 2
    for page, run_id in zip(pages, run_ids, strict=True):
        expect_completed(page, run_id, 60)
        shot(page, f"run-{run_id}-done", at=run_heading(page, run_id))
        html = page.content()
        assert key not in html and key[8:] not in html
        assert "locked" not in html.lower()
    nav(pages[1], "History")
    table = pages[1].get_by_test_id("stDataFrame").first
    expect(table).to_be_visible()
    shot(pages[1], "history")
    db = ledger(app_server)
    try:
        runs = {r.id: r for r in db.list_runs()}
        assert all(runs[i].status == RunStatus.COMPLETED and runs[i].succeeded == 60 for i in run_ids)
        assert key not in json.dumps([db.export_run(i) for i in run_ids])
    finally:
        db.close()
    assert "database is locked" not in app_server.log_tail(400)


MARKDOWN = "**bold** [link](http://x) <b>"


def test_markdown_in_a_file_name_a_column_name_and_an_error_shows_literally(app_server, new_page):
    """Untrusted text as the browser draws it: no bold, link or HTML made of a file's name, its
    column names, or a message quoting them."""
    shot = Shots("markdown-")
    page = new_page()
    open_app(page, app_server.url)
    name = f"{MARKDOWN}.csv"
    upload(page, name, f'id,"{MARKDOWN}"\n1,hello\n2,"{MARKDOWN}"\n'.encode(), 2)
    main = page.get_by_test_id("stMain")
    expect(main.get_by_text(f"{name} · 2 rows × 2 columns")).to_be_visible()
    write_instruction(page, INSTRUCTION)
    main.get_by_test_id("stButtonGroup").get_by_text("Template", exact=True).click()
    template = page.get_by_role("textbox", name="Row template")
    template.fill("{nope}")
    template.press("Tab")
    problem = page.get_by_test_id("stCaptionContainer").filter(has_text="The template uses {nope}")
    expect(problem).to_contain_text(f"Columns: id, {MARKDOWN}")
    shot(page, "column-in-a-message")
    chooser = page.get_by_test_id("stFileUploader").locator("input[type=file]")
    chooser.set_input_files(files=[{"name": name, "mimeType": "text/csv", "buffer": b""}])
    expect(page.get_by_test_id("stAlert").filter(has_text=name)).to_have_count(1)
    shot(page, "name-in-an-error")
    for made in ("a[href*='//x']", "b", "strong:text-is('bold')"):
        expect(main.locator(made)).to_have_count(0)
    assert not page.errors, page.errors
