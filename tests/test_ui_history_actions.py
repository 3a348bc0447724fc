"""History's "New run with the same settings" and "Resume" without a key for the run's provider:
one message saying what is missing, no new run left behind, and the run's status untouched."""

from __future__ import annotations

import pytest

from handai_db import Database, RunStatus
from tests.helpers import no_exceptions, widget


def paused_run(db: Database) -> int:
    rows = [{"id": "1", "text": "a"}, {"id": "2", "text": "b"}]
    run_id = db.create_run(
        rows,
        kind="transform",
        provider="openai",
        model="gpt-4o-mini",
        columns=["id", "text"],
        input_columns=["id", "text"],
    )
    assert db.claim_run(run_id)
    assert db.set_run_status(run_id, RunStatus.PAUSED)
    return run_id


@pytest.mark.parametrize("button", ["hist_clone", "history_resume_{run_id}"])
def test_without_a_key_history_says_so_once_and_starts_nothing(app, ledger, button):
    run_id = paused_run(ledger)
    app.switch_page("pages/history.py").run()
    no_exceptions(app)
    assert not app.error
    widget(app, "button", button.format(run_id=run_id)).click().run()
    no_exceptions(app)
    errors = [e.value for e in app.error]
    assert len(errors) == 1 and "No API key for OpenAI" in errors[0], errors
    assert [(r.id, r.status) for r in ledger.list_runs()] == [(run_id, RunStatus.PAUSED)]
