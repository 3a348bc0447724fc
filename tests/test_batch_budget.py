"""A budget cap cannot pause a batch (the provider answers every row at once), so batch mode with a
cap is refused before anything is written or sent: at creation, on a switch to batch mode, and on
a cap set on a run already in batch mode. Real `openai` SDK, fake server, real SQLite ledger."""

from __future__ import annotations

import pandas as pd
import pytest

from handai_engine import Engine, RunSettings
from handai_engine.batch import NO_BUDGET_IN_BATCH, BatchOptions
from handai_errors import RunStartError
from providers import Connection

KEY = "sk-test-" + "a" * 40
CAP = "A budget cap cannot pause a batch"


def conn_to(llm) -> Connection:
    return Connection("openai", api_key=KEY, base_url=llm.url)


def settings(**kw) -> RunSettings:
    return RunSettings("openai", "gpt-4o-mini", system_prompt="Summarise.", columns=["text"], **kw)


def frame() -> pd.DataFrame:
    return pd.DataFrame({"text": ["a", "b", "c"]})


@pytest.fixture
def fast(engine: Engine) -> Engine:
    engine.batch_options = BatchOptions(poll_seconds=0.02)
    return engine


def nothing_sent(llm) -> bool:
    return not llm.llm.batches.files and not llm.llm.batches.batches and not llm.requests()


def test_the_message_says_what_to_do():
    assert NO_BUDGET_IN_BATCH == (
        "A budget cap cannot pause a batch: the provider answers every row at once. "
        "Remove the cap or send in real time."
    )


def test_a_new_batch_run_with_a_cap_is_refused_before_anything_is_written(fast, db, llm):
    with pytest.raises(RunStartError, match=CAP):
        fast.create_transform_run(frame(), settings(budget_usd=0.01), conn_to(llm), batch=True)
    with pytest.raises(RunStartError, match=CAP):
        fast.create_generate_run("people", 3, settings(budget_usd=0.01), conn_to(llm), batch=True)
    assert db.list_runs() == [] and nothing_sent(llm)


def test_switching_a_capped_run_to_batches_is_refused_and_changes_nothing(fast, db, llm):
    conn = conn_to(llm)
    run_id = fast.create_transform_run(frame(), settings(budget_usd=0.01), conn)
    fast.pause(run_id)  # a run paused before it sent anything, cap set
    logged = [entry.message for entry in db.logs(run_id)]
    with pytest.raises(RunStartError, match=CAP):
        fast.resume(run_id, conn, batch=True)
    with pytest.raises(RunStartError, match=CAP):
        fast.retry_failed(run_id, conn, batch=True)
    with pytest.raises(RunStartError, match=CAP):
        fast.set_mode(run_id, batch=True)
    run = db.get_run(run_id)
    assert run.status == "paused" and "mode" not in run.params and run.params["budget_usd"] == 0.01
    assert [entry.message for entry in db.logs(run_id)] == logged and nothing_sent(llm)
    # Removing the cap in the same step is allowed: the batch goes without one.
    fast.retry_failed(run_id, conn, batch=True, budget_usd=None)
    assert fast.wait(run_id, 30).status == "completed"
    assert db.get_run(run_id).params["mode"] == "batch" and db.get_run(run_id).params["budget_usd"] is None


def test_a_cap_on_a_run_already_in_batch_mode_is_refused(fast, db, llm):
    run_id = fast.create_transform_run(frame(), settings(), conn_to(llm), batch=True)
    with pytest.raises(RunStartError, match=CAP):
        fast.update_settings(run_id, budget_usd=1.0)
    assert db.get_run(run_id).params["budget_usd"] is None
