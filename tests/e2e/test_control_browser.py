"""Control across processes, as a user meets it: a run the command line started is stopped from
History in the browser, and a run started in the browser is paused by `handai_cli.py runs pause`.
Both processes share one ledger (the app's data folder); the ledger and the fake server's log say
that the run halted, that every reply received was recorded and that no row was sent twice."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from handai_db import RunStatus
from tests.e2e.test_browser import (
    ROWS,
    Shots,
    expect_run,
    ledger,
    nav,
    open_app,
    run_heading,
    start_slow_run,
    tricky_rows,
    wait_for_rows,
)
from tests.helpers import cli_env, run_cli, start_cli, wait_until

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - test_browser skips (or fails in CI) first
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = pytest.mark.timeout(120)


def test_a_cli_run_is_stopped_from_history(app_server, new_page, llm, tmp_path):
    shot = Shots("control-cli-")
    llm.configure(latency_ms=200)
    src = tmp_path / "in.csv"
    pd.DataFrame({"text": [f"row {i}" for i in range(2000)]}).to_csv(src, index=False)
    env = cli_env(app_server.data_dir, HANDAI_CUSTOM_API_KEY="cli-key")
    args = ["transform", str(src), "--prompt", "Echo", "--provider", "custom", "--model", "fake-small"]
    proc = start_cli([*args, "--base-url", llm.url, "--concurrency", "4", "--output", str(tmp_path / "o.csv")], env)
    db = ledger(app_server)
    try:
        run_id = wait_until(lambda: db.list_runs() and db.list_runs()[0].id, 60, "the CLI's run")
        wait_for_rows(app_server, run_id, 20)

        page = new_page()
        open_app(page, app_server.url)
        nav(page, "History")
        expect_run(page, run_id)  # the newest run opens first
        expect(page.get_by_text(f"running in process {proc.pid} on")).to_be_visible()
        shot(page, "running-in-cli", at=run_heading(page, run_id))
        page.get_by_role("button", name="Stop", exact=True).click()
        expect_run(page, run_id, RunStatus.STOPPED)
        shot(page, "stopped-from-app", at=run_heading(page, run_id))

        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 1, stderr
        assert "stopped" in stderr.lower(), stderr
        run = db.get_run(run_id)
        assert run.status == RunStatus.STOPPED and "Stopped by the user" in run.stop_reason
        answered = Counter(r.user for r in llm.requests() if r.status == 200)
        assert set(answered.values()) == {1}, "a row was sent twice"
        assert db.run_counts(run_id).succeeded == len(answered) < 2000  # every reply received is recorded
    finally:
        if proc.poll() is None:
            proc.kill()
        db.close()


def test_a_run_started_in_the_browser_is_paused_by_the_cli(app_server, new_page, llm):
    shot = Shots("control-app-")
    page = new_page()
    run_id = start_slow_run(page, app_server, llm, tricky_rows())
    wait_for_rows(app_server, run_id, 8)

    result = run_cli(["runs", "pause", str(run_id)], cli_env(app_server.data_dir))
    assert result.returncode == 0, result.stderr
    expect_run(page, run_id, RunStatus.PAUSED)
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    expect(page.get_by_text("Paused by the user from the command line.")).to_be_visible()
    shot(page, "paused-by-cli", at=run_heading(page, run_id))

    db = ledger(app_server)
    try:

        def answered() -> list:
            return [r for r in llm.requests() if r.status == 200]

        wait_until(lambda: db.run_counts(run_id).succeeded == len(answered()), 30, "the calls in flight recorded")
        assert 0 < len(answered()) < ROWS, "the run halted"
        assert len({r.user for r in answered()}) == len(answered()), "a row was sent twice"
    finally:
        db.close()
