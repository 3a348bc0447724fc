"""Runs sent through the Batch API: the real `openai` SDK over real HTTP to the fake server's Files
and Batches endpoints, a real SQLite ledger, and fast batch clocks."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from handai_engine import Engine, RunSettings
from handai_engine.batch import BatchOptions, batch_price
from handai_errors import RunStartError
from providers import Connection, Price, price_for
from tests.helpers import wait_until

KEY = "sk-test-" + "a" * 40


def frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({"id": range(n), "text": [f"row {i} é" for i in range(n)]})


def user_of(text: str) -> str:
    return json.dumps({"text": text}, ensure_ascii=False)


def openai_conn(llm) -> Connection:
    return Connection("openai", api_key=KEY, base_url=llm.url)


@pytest.fixture
def fast(engine: Engine) -> Engine:
    engine.batch_options = BatchOptions(poll_seconds=0.02)
    return engine


def batch_run(engine: Engine, df: pd.DataFrame, conn: Connection, model: str = "gpt-4o-mini", **kw) -> int:
    settings = RunSettings(provider=conn.provider, model=model, system_prompt="Summarise.", columns=["text"], **kw)
    return engine.create_transform_run(df, settings, conn, input_name="t.csv", batch=True)


@pytest.mark.ledger_backends  # also on PostgreSQL: the batches table and its writes
def test_a_batch_run_completes_with_every_row_s_own_answer_at_half_price(fast, db, llm):
    conn = openai_conn(llm)
    run_id = batch_run(fast, frame(30), conn)
    fast.start(run_id, conn)
    progress = fast.wait(run_id, 30)
    assert (progress.status, progress.succeeded, progress.failed) == ("completed", 30, 0)
    assert llm.requests() == [], "a batch run made real-time calls"
    assert len(llm.llm.batches.created()) == 1
    price = price_for("openai", "gpt-4o-mini")
    assert price is not None
    half = batch_price(price)
    assert half is not None and half.prompt == price.prompt / 2 and half.completion == price.completion / 2
    for r in db.results(run_id):
        user = user_of(f"row {r.row_index} é")
        assert (r.status, r.request, r.raw) == ("succeeded", user, f"Reply to: {user}")
        assert r.parsed == {"output": f"Reply to: {user}"}
        assert r.attempts == 1 and r.tokens_in > 0
        assert r.cost_usd == pytest.approx(round(half.cost(r.tokens_in, r.tokens_out), 8))
    [state] = fast.batches(run_id)
    assert (state.state, state.requests, state.done, state.failed, state.open) == ("completed", 30, 30, 0, False)
    assert db.get_run(run_id).params["mode"] == "batch"


def test_rows_are_split_into_files_within_the_limit_and_each_batch_id_is_recorded_before_its_first_poll(fast, db, llm):
    fast.batch_options = BatchOptions(poll_seconds=0.02, max_requests=4)
    recorded_when_polled: dict[str, bool] = {}

    def polled(batch_id: str) -> None:
        recorded = {b.batch_id for b in db.run_batches(run_id)}
        recorded_when_polled.setdefault(batch_id, batch_id in recorded)

    llm.llm.batches.on_retrieve = polled
    conn = openai_conn(llm)
    run_id = batch_run(fast, frame(10), conn)
    fast.start(run_id, conn)
    progress = fast.wait(run_id, 30)
    assert (progress.status, progress.succeeded) == ("completed", 10)
    states = fast.batches(run_id)
    assert [s.requests for s in states] == [4, 4, 2]
    assert [s.batch_id for s in states] == [e.id for e in llm.llm.batches.created()]
    assert recorded_when_polled == {s.batch_id: True for s in states}


def test_failed_lines_end_failed_with_their_kind_and_retry_failed_sends_them_in_real_time(fast, db, llm):
    conn = openai_conn(llm)
    df = frame(6)
    df.loc[2, "text"] = "row 2 [[flaky:1]]"  # a 500 the first time only
    df.loc[4, "text"] = "row 4 [[context]]"
    run_id = batch_run(fast, df, conn)
    fast.start(run_id, conn)
    progress = fast.wait(run_id, 30)
    assert (progress.status, progress.succeeded, progress.failed) == ("completed", 4, 2)
    failed = {r.row_index: r for r in db.results(run_id) if r.status == "failed"}
    assert failed[2].error_kind == "server_error" and failed[4].error_kind == "context_too_long"
    assert failed[2].request == user_of("row 2 [[flaky:1]]")
    fast.retry_failed(run_id, conn, batch=False)
    progress = fast.wait(run_id, 30)
    assert (progress.status, progress.succeeded, progress.failed) == ("completed", 5, 1)
    assert sorted(r.user for r in llm.requests()) == [user_of("row 2 [[flaky:1]]"), user_of("row 4 [[context]]")]
    row2 = next(r for r in db.results(run_id) if r.row_index == 2)
    assert (row2.status, row2.raw, row2.attempts) == ("succeeded", f"Reply to: {user_of('row 2 [[flaky:1]]')}", 2)
    assert len(llm.llm.batches.created()) == 1
    assert db.get_run(run_id).params["mode"] == "realtime"


def test_an_expired_batch_keeps_its_partial_results_and_the_rest_go_again_as_a_new_batch(fast, db, llm):
    llm.llm.batches.configure(expire=True, partial=0.5)
    conn = openai_conn(llm)
    run_id = batch_run(fast, frame(8), conn)
    fast.start(run_id, conn)
    progress = fast.wait(run_id, 30)
    assert (progress.status, progress.succeeded, progress.failed) == ("completed", 4, 4)
    results = db.results(run_id)
    assert {r.error_kind for r in results if r.status == "failed"} == {"timeout"}
    assert all("expired" in (r.error_message or "") for r in results if r.status == "failed")
    assert [s.state for s in fast.batches(run_id)] == ["expired"]
    llm.llm.batches.configure(expire=False)
    fast.retry_failed(run_id, conn)  # the run's mode: a new batch
    progress = fast.wait(run_id, 30)
    assert (progress.status, progress.succeeded, progress.failed) == ("completed", 8, 0)
    batches = llm.llm.batches.created()
    assert len(batches) == 2 and fast.batches(run_id)[1].requests == 4
    assert llm.requests() == []


def test_a_batch_that_fails_validation_fails_its_rows_with_the_provider_s_reason(fast, db, llm):
    llm.llm.batches.configure(fail_validation=True)
    conn = openai_conn(llm)
    run_id = batch_run(fast, frame(3), conn)
    fast.start(run_id, conn)
    progress = fast.wait(run_id, 30)
    assert (progress.status, progress.failed) == ("completed", 3)
    assert all("not valid" in (r.error_message or "") for r in db.results(run_id))
    [state] = fast.batches(run_id)
    assert state.state == "failed" and "not valid" in (state.error or "")


@pytest.mark.ledger_backends  # also on PostgreSQL: the batches table and its writes
def test_stop_cancels_the_open_batch_and_keeps_what_it_finished(fast, db, llm):
    llm.llm.batches.configure(in_progress_s=30, partial=0.5)
    conn = openai_conn(llm)
    run_id = batch_run(fast, frame(10), conn)
    fast.start(run_id, conn)
    assert fast.wait_submitted(run_id, 10)
    assert fast.cancel_batches(run_id, conn) == 1
    progress = fast.wait(run_id, 30)
    assert (progress.status, progress.succeeded, progress.failed) == ("stopped", 5, 0)
    assert [e.action for e in llm.llm.batches.log if e.action == "batch.cancel"] == ["batch.cancel"]
    assert [s.state for s in fast.batches(run_id)] == ["cancelled"]
    assert db.run_counts(run_id).pending == 5
    llm.llm.batches.configure(in_progress_s=0.05)
    fast.resume(run_id, conn)  # the unanswered rows go as a new batch
    progress = fast.wait(run_id, 30)
    assert (progress.status, progress.succeeded) == ("completed", 10)


@pytest.mark.ledger_backends  # also on PostgreSQL: the batches table and its writes
def test_detach_then_a_new_engine_re_attaches_without_sending_twice(db, llm):
    llm.llm.batches.configure(in_progress_s=0.5)
    conn = openai_conn(llm)
    first = Engine(db)
    first.batch_options = BatchOptions(poll_seconds=0.02)
    try:
        run_id = batch_run(first, frame(12), conn)
        first.start(run_id, conn)
        assert first.wait_submitted(run_id, 10)
        first.detach(run_id)
        assert first.wait(run_id, 10).status == "paused"
    finally:
        first.shutdown()
    assert [b.collected for b in db.run_batches(run_id)] == [False]
    second = Engine(db)
    second.batch_options = BatchOptions(poll_seconds=0.02)
    try:
        assert second.reattach_batches({"openai": conn}) == [run_id]
        progress = second.wait(run_id, 30)
    finally:
        second.shutdown()
    assert (progress.status, progress.succeeded) == ("completed", 12)
    assert len(llm.llm.batches.created()) == 1
    lines = [e.detail for e in llm.llm.batches.log if e.action == "line"]
    assert len(lines) == 12 == len(set(lines))


def test_a_run_stopped_while_no_process_polled_it_is_not_re_attached_at_the_next_start(db, llm):
    llm.llm.batches.configure(in_progress_s=30)
    conn = openai_conn(llm)
    first = Engine(db)
    first.batch_options = BatchOptions(poll_seconds=0.02)
    try:
        run_id = batch_run(first, frame(6), conn)
        first.start(run_id, conn)
        assert first.wait_submitted(run_id, 10)
        first.detach(run_id)
        first.wait(run_id, 10)
    finally:
        first.shutdown()
    second = Engine(db)
    second.batch_options = BatchOptions(poll_seconds=0.02)
    try:
        assert second.cancel_batches(run_id, {"openai": conn}) == 1  # `runs stop` from another terminal
        assert db.get_run(run_id).status == "stopped"
        assert second.reattach_batches({"openai": conn}) == []
        assert not second.is_running(run_id)
    finally:
        second.shutdown()
    assert len(llm.llm.batches.created()) == 1 and db.get_run(run_id).status == "stopped"


def test_azure_batches_go_to_the_resource_and_name_the_deployment(fast, db, llm):
    conn = Connection("azure", api_key="a" * 32, base_url=llm.root, api_version="2024-10-21", deployment="dep-mini")
    run_id = batch_run(fast, frame(4), conn)
    fast.start(run_id, conn)
    progress = fast.wait(run_id, 30)
    assert (progress.status, progress.succeeded) == ("completed", 4)
    [batch] = llm.llm.batches.batches.values()
    assert batch.endpoint == "/chat/completions"
    lines = [json.loads(x) for x in llm.llm.batches.contents[batch.input_file_id].splitlines()]
    assert {line["body"]["model"] for line in lines} == {"dep-mini"}
    assert {line["url"] for line in lines} == {"/chat/completions"}


def test_a_provider_without_a_batch_api_is_refused_before_anything_is_written(engine, db, llm):
    conn = Connection("custom", api_key="k", base_url=llm.url)
    settings = RunSettings(provider="custom", model="fake-small", columns=["text"])
    with pytest.raises(RunStartError, match="no Batch API"):
        engine.create_transform_run(frame(2), settings, conn, batch=True)
    assert db.list_runs() == []


def test_a_real_time_start_is_refused_while_batches_are_open(fast, db, llm):
    llm.llm.batches.configure(in_progress_s=30)
    conn = openai_conn(llm)
    run_id = batch_run(fast, frame(3), conn)
    fast.start(run_id, conn)
    assert fast.wait_submitted(run_id, 10)
    fast.detach(run_id)
    wait_until(lambda: not fast.is_running(run_id), 10, "the job to let go")
    with pytest.raises(RunStartError, match="still open"):
        fast.resume(run_id, conn, batch=False)


def test_batch_price_halves_the_listed_price():
    assert batch_price(Price(1.0, 4.0, "table")) == Price(0.5, 2.0, "table, batch")
    assert batch_price(None) is None


def test_a_refused_upload_fails_the_run_with_the_reason_and_leaves_no_batch_open(fast, db, llm):
    conn = openai_conn(llm)
    run_id = batch_run(fast, frame(3), conn)
    llm.configure(valid_keys=["sk-other-" + "b" * 40])
    fast.start(run_id, conn)
    progress = fast.wait(run_id, 30)
    assert progress.status == "failed" and "did not accept this API key" in (progress.stop_reason or "")
    [state] = fast.batches(run_id)
    assert (state.state, state.open, state.batch_id) == ("abandoned", False, None)
    llm.configure(valid_keys=None)
    fast.resume(run_id, conn, batch=False)  # nothing is at the provider: real time may send them
    assert fast.wait(run_id, 30).succeeded == 3
