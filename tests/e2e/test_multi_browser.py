"""Consensus and Pipeline end to end in a real browser, against the fake LLM server (issue 11).

Consensus: two coders that disagree on the fake server's "odd third" of the rows and a judge
that reads only those rows; the page's decision counts, its disagreement filter, the requests
the server saw and the CSV download are checked against `odd_third` of the exact message each
row sends. Pipeline: two steps built in the editor, the second reading the first's answer
through its template and running only where `run_if` holds; the flow chart, the skipped rows
and their reason, the requests per step, and the spec exported and loaded back.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections import Counter
from typing import Any

import pytest

from tests.e2e.conftest import ARTIFACTS, in_ci
from tests.fake_llm_server import disagrees, odd_third

try:
    from playwright.sync_api import Locator, Page, expect
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

pytestmark = pytest.mark.timeout(120)

REVIEWS = [
    "Love it, works great",
    "Broke after a week",
    "Okay for the price",
    "Great screen, terrible support",
    "Exactly as described",
    "Arrived late, box damaged",
    "Five stars, would buy again",
    "Not worth the money",
    "Does the job",
    "Battery life is great",
    "Screen cracked on arrival",
    "Great value overall",
]
ROWS = [{"id": f"{i:03d}", "text": t} for i, t in enumerate(REVIEWS, 1)]
CODERS = ("fake-small", "fake-alt")
JUDGE = "fake-contrarian"
JUDGE_SAYS = "\n\nThe answers to judge:\n"  # the engine's line between the row and the coders' answers
RUN_IF = "contains(text, 'great')"
TEMPLATE = "Review: {text}\nSummary: {step1}"


def sent(row: dict[str, str]) -> str:
    """The user message for a row sent as "Columns as JSON" (every column, the default)."""
    return json.dumps(row, ensure_ascii=False)


def reply(model: str, user: str) -> str:
    """The fake server's free-text reply."""
    if "contrarian" in model:
        return f"Contrary reply to: {user}"
    return f"{'Alt reply' if disagrees(model, user) else 'Reply'} to: {user}"


# -- browser helpers --------------------------------------------------------------------------------
def pick(page: Page, label: str, option: str, scope: Page | Locator | None = None) -> None:
    """A selectbox (in `scope`, the page by default) set to `option`; its first click after a
    text area's blur sometimes only focuses it, so a shut list is clicked open again."""
    box = (scope or page).get_by_test_id("stSelectbox").filter(has=page.get_by_text(label, exact=True))
    expect(box).to_have_count(1)
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


def table_with(page: Page, column: str) -> Locator:
    """The (fresh) grid with a `column` header on screen."""
    fresh = page.locator('[data-testid="stElementContainer"]:not([data-stale="true"]) [data-testid="stDataFrame"]')
    header = page.locator("th").filter(has_text=re.compile(rf"^{re.escape(column)}$"))
    table = fresh.filter(has=header).first
    expect(table).to_be_visible()
    return table


GRID_PART = """e => {
    const heads = Object.fromEntries([...e.querySelectorAll('th')].map(
        th => [th.getAttribute('aria-colindex'), th.textContent.trim()]));
    const rows = [...e.querySelectorAll('tbody tr')].map(tr => [tr.getAttribute('aria-rowindex'),
        Object.fromEntries([...tr.querySelectorAll('td')].map(
            td => [heads[td.getAttribute('aria-colindex')], td.textContent.trim()]))]);
    const s = e.querySelector('.dvn-scroller');
    return {rows, heads: Object.values(heads).join('|'), end: !s || s.scrollLeft + s.clientWidth >= s.scrollWidth - 1};
}"""


def grid_rows(page: Page, table: Locator) -> list[dict[str, str]]:
    """The rows the grid draws, as {header: text}. The grid's accessible copy holds only the
    columns on screen, so the grid is scrolled to the right, half a width at a time, and the
    parts are put together (the rows must fit in its height); then it is scrolled back."""
    grid = table.element_handle()  # the element itself: the locator's header text scrolls away
    grid.evaluate("e => { const s = e.querySelector('.dvn-scroller'); if (s) s.scrollLeft = 0; }")
    rows: dict[str, dict[str, str]] = {}
    for _ in range(30):
        part = grid.evaluate(GRID_PART)
        for index, cells in part["rows"]:
            rows.setdefault(index, {}).update(cells)
        if part["end"]:
            grid.evaluate("e => { e.querySelector('.dvn-scroller').scrollLeft = 0; }")  # as a person left it
            return [rows[i] for i in sorted(rows, key=int)]
        grid.evaluate("e => { const s = e.querySelector('.dvn-scroller'); s.scrollLeft += s.clientWidth / 2; }")
        with contextlib.suppress(PlaywrightTimeout):  # a wide column may keep the same headers on screen
            page.wait_for_function(
                "([e, before]) => [...e.querySelectorAll('th')].map(th => th.textContent.trim()).join('|') !== before",
                arg=[grid, part["heads"]],
                timeout=2_000,
            )
    raise AssertionError("the grid never scrolled to its last column")


def step_box(page: Page, number: int, of: int) -> Locator:
    """The bordered container of the editor's step `number` of `of` (the innermost block holding
    both its heading and an Instruction box), once the editor draws `of` steps."""
    expect(page.get_by_label("Instruction", exact=True)).to_have_count(of)
    blocks = page.get_by_test_id("stVerticalBlock").filter(has=page.get_by_text(f"Step {number}", exact=True))
    box = blocks.filter(has=page.get_by_label("Instruction", exact=True)).last
    expect(box.get_by_label("Instruction", exact=True)).to_have_count(1)
    return box


def fill_box(box: Locator, text: str) -> None:
    box.fill(text)
    box.press("Tab")  # blur commits a text area
    expect(box).to_have_value(text)


def spec_download(page: Page) -> dict[str, Any]:
    button = page.get_by_test_id("stDownloadButton").filter(has_text="Download the spec (JSON)")
    with page.expect_download() as info:
        button.click()
    download = info.value
    assert download.suggested_filename == "pipeline.json"
    path = ARTIFACTS / "pipeline-spec.json"
    download.save_as(path)
    return json.loads(path.read_text(encoding="utf-8"))


def inspect_row(page: Page, number: int) -> Locator:
    """The run's row inspector set to row `number`."""
    inspector = page.get_by_test_id("stExpander").filter(has_text="Inspect a row: input → every answer").last
    if not inspector.get_by_label("Row", exact=True).is_visible():
        inspector.get_by_text("Inspect a row: input → every answer").click()
    box = inspector.get_by_label("Row", exact=True)
    box.fill(str(number))
    box.press("Enter")
    expect(inspector.get_by_test_id("stDataFrame").filter(has_text=ROWS[number - 1]["text"])).to_be_visible()
    return inspector


# -- tests ----------------------------------------------------------------------------------------------
def test_consensus_judge_settles_only_the_disagreements(app_server, new_page, llm):
    shot = Shots("consensus-")
    page = new_page()
    open_app(page, app_server.url)
    use_fake_server(page, llm.url)
    nav(page, "Consensus")
    upload(page, "reviews.csv", to_csv(ROWS), len(ROWS))
    write_instruction(page, "Code the main topic of this review: price, quality or delivery.")

    pick(page, "Coder 1", CODERS[0])
    pick(page, "Coder 2", CODERS[1])
    page.get_by_text("Let a judge model settle disagreements").click()
    pick(page, "Judge", JUDGE)
    expect(page.get_by_role("radio", name="Only rows where the coders disagree (cheaper)")).to_be_checked()
    expect(page.get_by_text(re.compile(r"Estimate for 12 rows × 3 calls per row"))).to_be_visible()
    shot(page, "form", at=page.get_by_role("heading", name="3 · Coders"))

    run_id = start_full_run(page, len(ROWS))
    done = page.get_by_text(re.compile(r"completed · Consensus: Custom \(OpenAI-compatible\) / fake-small, fake-alt"))
    expect(done).to_be_visible(timeout=RUN_TIMEOUT)
    differ = [r for r in ROWS if odd_third(sent(r))]
    agree = [r for r in ROWS if not odd_third(sent(r))]
    assert 0 < len(differ) < len(ROWS)
    expect(metric(page, "Decided: judge")).to_contain_text(str(len(differ)))
    expect(metric(page, "Decided: unanimous")).to_contain_text(str(len(agree)))
    expect(metric(page, "Decided: majority")).to_contain_text("0")
    expect(metric(page, "Decided: undecided")).to_contain_text("0")
    expect(metric(page, "Skipped")).to_contain_text(str(len(agree)))  # the judge's cells where coders agreed
    expect(metric(page, "Failed")).to_contain_text("0")
    table = table_with(page, "consensus")
    columns = list(grid_rows(page, table)[0])
    assert columns[:5] == ["row", "consensus", "agreed", "judge_reason", "decided_by"], columns
    page.wait_for_timeout(1_000)  # the smooth scroll to the run
    shot(page, "done", at=run_heading(page, run_id))
    shot(page, "decisions", at=page.get_by_text("Decided: unanimous", exact=True))

    # the filter: exactly the rows the coders disagree on, each decided by the judge
    page.get_by_text(f"Only rows where the coders disagree ({len(differ)})").click()
    showing = page.get_by_text(f"Showing {len(differ)} of {len(ROWS)} rows")
    expect(showing).to_be_visible()
    table = table_with(page, "consensus")
    expect(table.locator("tbody tr")).to_have_count(len(differ))
    shown = grid_rows(page, table)
    assert [int(r["row"]) for r in shown] == [ROWS.index(r) + 1 for r in differ], shown
    assert {r["decided_by"] for r in shown} == {"judge"}, shown
    assert {r["agreed"] for r in shown} == {"false"}, shown
    for got, row in zip(shown, differ, strict=True):
        assert got["consensus"].startswith(f"answer (contrary) of {sent(row)[:30]}"), got
        assert got["judge_reason"].startswith("reason (contrary) of "), got
    shot(page, "disagreements", at=showing)

    # the server: each coder once per row; the judge once per disagreement, shown both answers
    log = llm.requests()
    assert all(r.status == 200 for r in log)
    for coder in CODERS:
        assert Counter(r.user for r in log if r.model == coder) == Counter(sent(r) for r in ROWS), coder
    judged = [r.user for r in log if r.model == JUDGE]
    expected = [
        sent(r) + JUDGE_SAYS + "\n".join(f"Answer {n}: {reply(m, sent(r))}" for n, m in enumerate(CODERS, 1))
        for r in differ
    ]
    assert sorted(judged) == sorted(expected), judged
    assert {r.model for r in log} == {*CODERS, JUDGE}

    # the download: every row (not the filtered view), with the consensus and how it was reached
    downloaded = download_csv(page)
    assert [r["id"] for r in downloaded] == [r["id"] for r in ROWS]
    assert [r["text"] for r in downloaded] == REVIEWS
    assert {"consensus", "agreed", "decided_by", *CODERS} <= set(downloaded[0]), list(downloaded[0])
    for got, row in zip(downloaded, ROWS, strict=True):
        odd = odd_third(sent(row))
        assert got["decided_by"] == ("judge" if odd else "unanimous"), got
        assert got["agreed"] == str(not odd), got
        assert got[CODERS[1]] == reply(CODERS[1], sent(row)), got
        if odd:
            assert got["consensus"] == f"answer (contrary) of {(sent(row) + JUDGE_SAYS)[:60]}", got
        else:
            assert got["consensus"] == f"Reply to: {sent(row)}", got
    assert not page.errors, page.errors


def test_pipeline_second_step_reads_the_first_and_runs_only_where_run_if_holds(app_server, new_page, llm):
    shot = Shots("pipeline-")
    page = new_page()
    open_app(page, app_server.url)
    use_fake_server(page, llm.url)
    nav(page, "Pipeline")
    upload(page, "reviews.csv", to_csv(ROWS), len(ROWS))

    # step 1 in the editor: its defaults (name step1, every column as JSON), a model, an instruction
    first = step_box(page, 1, of=1)
    expect(first.get_by_label("Step name", exact=True)).to_have_value("step1")
    pick(page, "Model", "fake-small", first)
    fill_box(first.get_by_label("Instruction", exact=True), "Summarise this review in five words.")
    expect(page.get_by_test_id("stGraphVizChart")).to_be_visible()  # one complete step: a flow of one

    # step 2: another model, a template with step 1's answer, a condition true for some rows
    page.get_by_role("button", name="Add a step").click()
    second = step_box(page, 2, of=2)
    expect(second.get_by_label("Step name", exact=True)).to_have_value("step2")
    pick(page, "Model", "fake-large", second)
    fill_box(second.get_by_label("Instruction", exact=True), "Is the summary fair to the review? Answer yes or no.")
    second.get_by_test_id("stButtonGroup").get_by_text("Template", exact=True).click()
    fill_box(second.get_by_label("Row template", exact=True), TEMPLATE)
    second.get_by_text("Output fields and condition").click()
    condition = second.get_by_label("Run only if (optional)", exact=True)
    condition.fill(RUN_IF)
    condition.press("Enter")
    expect(condition).to_have_value(RUN_IF)

    # the flow: both steps, the condition, an arrow from step1 to step2
    flow = page.get_by_test_id("stGraphVizChart")
    expect(flow.locator("svg")).to_be_visible()
    expect(flow.locator("g.node")).to_have_count(2)
    expect(flow.locator("g.node").filter(has_text=f"if {RUN_IF}")).to_contain_text("step2")
    expect(flow.locator("g.edge")).to_have_count(1)
    expect(flow.locator("g.edge title")).to_have_text("step1->step2")
    shot(page, "steps", at=page.get_by_role("heading", name="2 · Steps"))
    shot(page, "flow", at=page.get_by_role("heading", name="3 · Flow"))

    # the spec exported: the steps as built
    spec = spec_download(page)
    steps = spec["steps"]
    assert [s["name"] for s in steps] == ["step1", "step2"], spec
    assert steps[0]["model"].endswith(":fake-small") and steps[1]["model"].endswith(":fake-large"), spec
    assert steps[0]["columns"] == ["id", "text"] and "template" not in steps[0], spec
    assert steps[1]["template"] == TEMPLATE and steps[1]["run_if"] == RUN_IF and "run_if" not in steps[0], spec

    # loaded back: remove step 2, paste the spec, and the editor holds both steps again
    second.get_by_role("button", name="delete icon", exact=True).click()  # an icon button's name is its icon's
    expect(page.get_by_text("Step 2", exact=True)).to_have_count(0)
    expect(page.get_by_test_id("stGraphVizChart").locator("g.node")).to_have_count(1)
    loader = page.get_by_test_id("stExpander").filter(has_text="Load a pipeline spec (JSON)")
    loader.get_by_text("Load a pipeline spec (JSON)").click()
    fill_box(loader.get_by_label("…or paste a spec"), json.dumps(spec, indent=2))
    loader.get_by_role("button", name="Load the pasted spec").click()
    second = step_box(page, 2, of=2)
    expect(second.get_by_label("Row template", exact=True)).to_have_value(TEMPLATE)
    expect(page.get_by_test_id("stGraphVizChart").locator("g.node")).to_have_count(2)
    assert spec_download(page) == spec
    shot(page, "spec-loaded", at=page.get_by_role("heading", name="2 · Steps"))

    # the run
    run_id = start_full_run(page, len(ROWS))
    done = page.get_by_text(re.compile(r"completed · Pipeline: Custom \(OpenAI-compatible\) / fake-small, fake-large"))
    expect(done).to_be_visible(timeout=RUN_TIMEOUT)
    matching = [r for r in ROWS if "great" in r["text"].lower()]
    others = [r for r in ROWS if r not in matching]
    assert 0 < len(matching) < len(ROWS)
    expect(metric(page, "Skipped")).to_contain_text(str(len(others)))
    expect(metric(page, "Failed")).to_contain_text("0")
    page.wait_for_timeout(1_000)  # the smooth scroll to the run
    shot(page, "done", at=run_heading(page, run_id))

    # the server: step 1 for every row; step 2 only where run_if holds, with step 1's answer inside
    log = llm.requests()
    assert all(r.status == 200 for r in log)
    assert Counter(r.user for r in log if r.model == "fake-small") == Counter(sent(r) for r in ROWS)
    second_sent = [r.user for r in log if r.model == "fake-large"]
    expected = [TEMPLATE.format(text=r["text"], step1=reply("fake-small", sent(r))) for r in matching]
    assert sorted(second_sent) == sorted(expected), second_sent
    assert {r.model for r in log} == {"fake-small", "fake-large"}

    # the page: skipped rows filtered, and one row inspected says why step 2 was skipped
    page.get_by_text(f"Only rows where a step was skipped ({len(others)})").click()
    showing = page.get_by_text(f"Showing {len(others)} of {len(ROWS)} rows")
    expect(showing).to_be_visible()
    table = table_with(page, "step1")
    expect(table.locator("tbody tr")).to_have_count(len(others))
    shown = grid_rows(page, table)
    assert [int(r["row"]) for r in shown] == [ROWS.index(r) + 1 for r in others], shown
    reason = f"Skipped: run_if is not true ({RUN_IF})."
    for got, row in zip(shown, others, strict=True):
        assert got["step1"] == reply("fake-small", sent(row)) and got["step1_status"] == "succeeded", got
        assert (got["step2"], got["step2_status"], got["step2_error"]) == ("", "skipped", reason), got
    shot(page, "skipped-rows", at=showing)

    skipped_row = ROWS.index(others[0]) + 1
    inspector = inspect_row(page, skipped_row)
    expect(
        inspector.get_by_test_id("stMarkdown").filter(has_text=re.compile(r"step2 · .*fake-large · skipped"))
    ).to_be_visible()
    expect(inspector.get_by_test_id("stAlert").filter(has_text=reason)).to_be_visible()
    shot(page, "skipped-row-inspected", at=inspector)
    ran_row = ROWS.index(matching[0]) + 1
    inspector = inspect_row(page, ran_row)
    expect(
        inspector.get_by_test_id("stMarkdown").filter(has_text=re.compile(r"step2 · .*fake-large · succeeded"))
    ).to_be_visible()
    expect(inspector.get_by_test_id("stAlert")).to_have_count(0)

    # the download: every row, step 2 skipped with the reason where the condition is false
    downloaded = download_csv(page)
    assert [r["id"] for r in downloaded] == [r["id"] for r in ROWS]
    for got, row in zip(downloaded, ROWS, strict=True):
        assert got["step1"] == reply("fake-small", sent(row)), got
        assert got["step1_status"] == "succeeded", got
        if row in matching:
            user = TEMPLATE.format(text=row["text"], step1=reply("fake-small", sent(row)))
            assert (got["step2_status"], got["step2"], got["step2_error"]) == ("succeeded", f"Reply to: {user}", "")
        else:
            assert (got["step2_status"], got["step2"], got["step2_error"]) == ("skipped", "", reason), got
    assert not page.errors, page.errors
