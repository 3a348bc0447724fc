"""History's statistics count each model of a run under its own provider and model (a Compare run
across two providers is not charted under its first arm's provider as "a, b"), with the
providers' display names; a history of one day is drawn per hour, titled with the date."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from handai_db import Database, RowOutcome, RowStatus
from research.compare import compare_plan
from tests.helpers import no_exceptions

pytestmark = pytest.mark.ledger_backends  # arm_stats on SQLite and on PostgreSQL

ROWS = [{"text": "good"}, {"text": "bad"}]


def finish_cells(db: Database, run_id: int, statuses: dict[tuple[int, int], RowStatus]) -> None:
    """Record (row, arm) cells as the engine would; the others stay pending."""
    ids = {(r.row_index, r.arm): r.id for r in db.results(run_id)}
    outcomes = [
        RowOutcome(ids[cell], status, parsed={"output": "x"} if status == RowStatus.SUCCEEDED else None)
        for cell, status in statuses.items()
    ]
    db.record_results(run_id, outcomes)


def make_runs(db: Database) -> None:
    transform = db.create_run(ROWS, kind="transform", provider="openai", model="gpt-4o-mini", columns=["text"])
    finish_cells(db, transform, {(0, 0): RowStatus.SUCCEEDED, (1, 0): RowStatus.FAILED})
    plan = compare_plan([("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-x")], instruction="Judge.").with_sent()
    compare = db.create_run(
        ROWS,
        cells=plan.cells(),
        kind="compare",
        provider="openai",  # the first arm's, as a run of several models records it
        model="gpt-4o-mini, claude-haiku-x",
        plan=plan.record(),
        columns=["text"],
    )
    finish_cells(db, compare, {(r, a): RowStatus.SUCCEEDED for r in range(2) for a in range(2)})


def test_arm_stats_has_one_row_per_model_of_each_run(db):
    make_runs(db)
    arms = db.arm_stats()
    got = arms[["run", "arm", "provider", "model", "succeeded", "failed"]].to_dict(orient="records")
    assert got == [
        {"run": 1, "arm": 0, "provider": "openai", "model": "gpt-4o-mini", "succeeded": 1, "failed": 1},
        {"run": 2, "arm": 0, "provider": "openai", "model": "gpt-4o-mini", "succeeded": 2, "failed": 0},
        {"run": 2, "arm": 1, "provider": "anthropic", "model": "claude-haiku-x", "succeeded": 2, "failed": 0},
    ]


def frame_with(at: Any, column: str) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_history_charts_each_model_under_its_provider_and_a_day_by_the_hour(app, ledger):
    make_runs(ledger)
    app.switch_page("pages/history.py").run()
    no_exceptions(app)
    by_model = frame_with(app, "success rate %")
    assert sorted(by_model.index) == ["Anthropic / claude-haiku-x", "OpenAI / gpt-4o-mini"]
    assert by_model.loc["OpenAI / gpt-4o-mini", "succeeded"] == 3
    assert by_model.loc["OpenAI / gpt-4o-mini", "failed"] == 1
    assert by_model.loc["Anthropic / claude-haiku-x", "succeeded"] == 2
    day = ledger.get_run(1).created_at.date()
    titles = [m.value for m in app.markdown if "Runs per" in m.value]
    assert titles == [f"**Runs per hour** ({day:%Y-%m-%d})"]
