"""Runs sent through Anthropic's Message Batches: the real `anthropic` SDK over real HTTP to the
fake server's /v1/messages/batches, a real SQLite ledger and fast batch clocks; and the pure
conversions between a chat body and a Messages batch request."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from handai_engine import Engine
from handai_engine.batch import BatchOptions, batch_price
from handai_engine.batch.anthropic_lines import batch_state, messages_params, output_line, request_line
from handai_engine.batch.limits import DEFAULT_MAX_TOKENS, FILE_LIMITS
from providers import Connection, price_for
from providers.capabilities import supports_batch
from tests.helpers import cli_env, run_cli
from tests.test_batch import batch_run as openai_batch_run
from tests.test_batch import frame, user_of

KEY = "sk-ant-api03-" + "a" * 90
MODEL = "claude-haiku-4-5"


def anthropic_conn(llm) -> Connection:
    return Connection("anthropic", api_key=KEY, base_url=llm.url)


@pytest.fixture
def fast(engine: Engine) -> Engine:
    engine.batch_options = BatchOptions(poll_seconds=0.02)
    return engine


def batch_run(engine: Engine, df: pd.DataFrame, conn: Connection, **kw) -> int:
    return openai_batch_run(engine, df, conn, model=MODEL, **kw)


def test_an_anthropic_batch_run_completes_with_every_row_s_own_answer_at_half_price(fast, db, llm):
    conn = anthropic_conn(llm)
    run_id = batch_run(fast, frame(20), conn)
    fast.start(run_id, conn)
    progress = fast.wait(run_id, 30)
    assert (progress.status, progress.succeeded, progress.failed) == ("completed", 20, 0)
    assert llm.requests() == [], "a batch run made real-time calls"
    messages = llm.llm.batches.messages
    [batch_id] = messages.created()
    requests = messages.batches[batch_id].requests
    assert [r["custom_id"] for r in requests] == [str(r.id) for r in db.results(run_id)]
    first = requests[0]["params"]
    assert (first["model"], first["system"], first["max_tokens"]) == (MODEL, "Summarise.", DEFAULT_MAX_TOKENS)
    assert [m["role"] for m in first["messages"]] == ["user"]
    half = batch_price(price_for("anthropic", MODEL))
    assert half is not None
    for r in db.results(run_id):
        user = user_of(f"row {r.row_index} é")
        assert (r.status, r.request, r.raw, r.model_reported) == ("succeeded", user, f"Reply to: {user}", MODEL)
        assert r.tokens_in > 0 and r.cost_usd == pytest.approx(round(half.cost(r.tokens_in, r.tokens_out), 8))
    [state] = fast.batches(run_id)
    assert (state.batch_id, state.state, state.requests, state.done, state.open) == (
        batch_id,
        "completed",
        20,
        20,
        False,
    )


def test_errored_and_expired_lines_end_failed_and_retry_failed_fills_them(fast, db, llm):
    llm.llm.batches.configure(expire=True, partial=0.5)
    conn = anthropic_conn(llm)
    df = frame(6)
    df.loc[1, "text"] = "row 1 [[flaky:1]]"  # an api_error the first time only
    run_id = batch_run(fast, df, conn)
    fast.start(run_id, conn)
    progress = fast.wait(run_id, 30)
    assert (progress.status, progress.succeeded, progress.failed) == ("completed", 2, 4)
    failed = {r.row_index: r for r in db.results(run_id) if r.status == "failed"}
    assert failed[1].error_kind == "server_error" and failed[1].request == user_of("row 1 [[flaky:1]]")
    assert {failed[i].error_kind for i in (3, 4, 5)} == {"timeout"}
    assert all("expired" in (failed[i].error_message or "") for i in (3, 4, 5))
    assert [s.state for s in fast.batches(run_id)] == ["expired"]
    llm.llm.batches.configure(expire=False)
    fast.retry_failed(run_id, conn)  # the run's mode: a new batch of the four
    progress = fast.wait(run_id, 30)
    assert (progress.status, progress.succeeded, progress.failed) == ("completed", 6, 0)
    assert [s.requests for s in fast.batches(run_id)] == [6, 4]
    row1 = next(r for r in db.results(run_id) if r.row_index == 1)
    assert (row1.raw, row1.attempts) == (f"Reply to: {user_of('row 1 [[flaky:1]]')}", 2)
    assert llm.requests() == []


def test_cancel_keeps_what_the_batch_finished_and_leaves_the_rest_pending(fast, db, llm):
    llm.llm.batches.configure(in_progress_s=30, partial=0.5)
    conn = anthropic_conn(llm)
    run_id = batch_run(fast, frame(10), conn)
    fast.start(run_id, conn)
    assert fast.wait_submitted(run_id, 10)
    assert fast.cancel_batches(run_id, conn) == 1
    progress = fast.wait(run_id, 30)
    assert (progress.status, progress.succeeded, progress.failed) == ("stopped", 5, 0)
    assert [e.action for e in llm.llm.batches.log if e.action == "batch.cancel"] == ["batch.cancel"]
    assert [s.state for s in fast.batches(run_id)] == ["cancelled"]
    assert db.run_counts(run_id).pending == 5


def test_detach_then_a_new_engine_re_attaches_without_a_second_create(db, llm):
    llm.llm.batches.configure(in_progress_s=0.5)
    conn = anthropic_conn(llm)
    first = Engine(db)
    first.batch_options = BatchOptions(poll_seconds=0.02)
    try:
        run_id = batch_run(first, frame(8), conn)
        first.start(run_id, conn)
        assert first.wait_submitted(run_id, 10)
        first.detach(run_id)
        assert first.wait(run_id, 10).status == "paused"
    finally:
        first.shutdown()
    [row] = db.run_batches(run_id)
    assert not row.collected and row.batch_id in llm.llm.batches.messages.created()
    second = Engine(db)
    second.batch_options = BatchOptions(poll_seconds=0.02)
    try:
        assert second.reattach_batches({"anthropic": conn}) == [run_id]
        progress = second.wait(run_id, 30)
    finally:
        second.shutdown()
    assert (progress.status, progress.succeeded) == ("completed", 8)
    assert len(llm.llm.batches.messages.created()) == 1
    # the new process never saw the requests go out, yet records what was sent
    assert [r.request for r in db.results(run_id)] == [user_of(f"row {i} é") for i in range(8)]


def test_the_cli_sends_a_transform_as_an_anthropic_batch(tmp_path, llm):
    env = cli_env(tmp_path / "data", ANTHROPIC_API_KEY=KEY, HANDAI_BATCH_POLL_SECONDS="0.02")
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    pd.DataFrame({"text": [f"note {i}" for i in range(4)]}).to_csv(source, index=False)
    common = ["--provider", "anthropic", "--model", MODEL, "--base-url", llm.url, "--batch"]
    result = run_cli(["transform", str(source), "--prompt", "Tag.", *common, "-o", str(out)], env)
    assert result.returncode == 0, result.stderr
    [batch_id] = llm.llm.batches.messages.created()
    assert f"batch {batch_id} (4 requests)" in result.stdout
    assert list(pd.read_csv(out)["ai_output"]) == [f'Reply to: {{"text": "note {i}"}}' for i in range(4)]
    assert llm.requests() == []


def test_a_chat_body_becomes_messages_params():
    body = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Label it. Answer in JSON."},
            {"role": "user", "content": "example"},
            {"role": "assistant", "content": '{"label": "a"}'},
            {"role": "user", "content": "the row"},
        ],
        "temperature": 0.2,
        "stop": "END",
        "response_format": {"type": "json_object"},
        "seed": 7,
    }
    assert messages_params(body) == {
        "model": MODEL,
        "max_tokens": DEFAULT_MAX_TOKENS,
        "system": "Label it. Answer in JSON.",
        "messages": body["messages"][1:],
        "temperature": 0.2,
        "stop_sequences": ["END"],
    }
    assert messages_params({**body, "max_tokens": 50})["max_tokens"] == 50
    assert json.loads(request_line(42, body))["custom_id"] == "42"
    with pytest.raises(ValueError, match="custom_id"):
        request_line(10**64, body)  # 65 digits: longer than Anthropic allows


def test_result_lines_and_states_read_as_openai_s():
    message = {
        "id": "msg_1",
        "model": "claude-haiku-4-5-20251001",
        "content": [{"type": "text", "text": "Hello "}, {"type": "tool_use"}, {"type": "text", "text": "there"}],
        "stop_reason": "max_tokens",
        "usage": {"input_tokens": 11, "output_tokens": 3},
    }
    line = output_line({"custom_id": "7", "result": {"type": "succeeded", "message": message}})
    assert line is not None and line["response"]["status_code"] == 200
    body = line["response"]["body"]
    assert body["choices"][0]["message"]["content"] == "Hello there"
    assert body["choices"][0]["finish_reason"] == "length"
    assert (body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"], body["model"]) == (
        11,
        3,
        "claude-haiku-4-5-20251001",
    )
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    errored = output_line({"custom_id": "8", "result": {"type": "errored", "error": error}})
    assert errored is not None and errored["response"]["status_code"] == 529
    expired = output_line({"custom_id": "9", "result": {"type": "expired"}})
    assert expired is not None and expired["error"]["code"] == "batch_expired"
    assert output_line({"custom_id": "10", "result": {"type": "canceled"}}) is None
    assert batch_state("in_progress", {}, False) == "in_progress"
    assert batch_state("canceling", {}, True) == "cancelling"
    assert batch_state("ended", {"canceled": 2}, True) == "cancelled"
    assert batch_state("ended", {"expired": 1, "succeeded": 3}, False) == "expired"
    assert batch_state("ended", {"errored": 1, "succeeded": 3}, False) == "completed"
    assert supports_batch("anthropic") and FILE_LIMITS["anthropic"] == (100_000, 256 * 1024 * 1024)
