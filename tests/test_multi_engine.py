"""Runs as small graphs of calls (issue 11): Compare, Consensus and Pipeline on one ledger, through
the real `openai` client over real HTTP to the fake server (which answers differently per model),
with a real SQLite ledger. Expected answers are computed here from the fake server's documented
rules (`disagrees`, `odd_third`), never read back from the code under test."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import handai_engine.scheduler as scheduler_module
import handai_engine.writer as writer_module
from handai_db import Database, RowOutcome, RowStatus, RunStatus
from handai_engine import Arm, Engine, Plan, PlanError, RunSettings, Step
from providers import Connection
from research.compare import compare_agreement, compare_plan
from research.consensus import consensus_plan
from research.pipeline import pipeline_plan
from research.tools import table_for
from tests.fake_llm_server import FakeLLMServer, disagrees, masked, odd_third
from tests.helpers import PYTHON, ROOT, cli_env, wait_until

THREE = ("fake-small", "fake-large", "fake-alt")  # fake-alt departs from the others on the odd third
INSTRUCTION = "Say what the review means."


# -- helpers ------------------------------------------------------------------------------------
def texts(n: int, prefix: str = "review") -> list[str]:
    return [f"{prefix} {i}: {'great' if i % 2 else 'meh'}{'!' * (i % 3)}" for i in range(n)]


def frame(rows: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"r{i:03d}" for i in range(len(rows))], "text": rows})


def user_of(text: str) -> str:
    """The user message of a step that sends the `text` column (no template)."""
    return json.dumps({"text": text}, ensure_ascii=False)


def reply(model: str, user: str) -> str:
    """The fake server's free-text answer (its module docstring)."""
    if "contrarian" in model:
        return f"Contrary reply to: {user}"
    return f"Alt reply to: {user}" if disagrees(model, user) else f"Reply to: {user}"


def tokens(text: str) -> int:
    """The fake server's token count."""
    return max(1, len(text) // 4)


def custom(server: FakeLLMServer, key: str = "test-key") -> Connection:
    return Connection("custom", api_key=key, base_url=server.url)


def limits(**kw) -> RunSettings:
    """A plan run's limits (the plan says the rest)."""
    return RunSettings("custom", "unused", **kw)


def run_plan(engine: Engine, rows: pd.DataFrame, plan: Plan, conn, **kw) -> int:
    run_id = engine.create_plan_run(rows, plan, conn, limits(**kw))
    engine.start(run_id, conn)
    final = engine.wait(run_id, 120)
    assert not engine.is_running(run_id), "the run did not finish in time"
    assert final.status == RunStatus.COMPLETED, final.stop_reason
    return run_id


def cells_of(db: Database, run_id: int) -> dict[tuple[int, int, int, int], object]:
    """Every ledger result of a run by (row, step, arm, sample); fails if a cell is there twice."""
    results = db.results(run_id)
    keyed = {(r.row_index, r.step, r.arm, r.sample): r for r in results}
    assert len(keyed) == len(results), "a cell is in the ledger twice"
    return keyed


def live_figures(engine: Engine, run_id: int):
    """The job's own live figures, as its last update left them (engine.progress reads the
    ledger once the job is over)."""
    return engine._jobs[run_id].progress


@pytest.fixture(scope="module")
def llm2_server() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer().start()
    yield server
    server.stop()


@pytest.fixture
def llm2(llm2_server: FakeLLMServer) -> FakeLLMServer:
    """A second provider endpoint (its own server, rate bucket and log)."""
    llm2_server.reset()
    return llm2_server


# -- 1. Compare ---------------------------------------------------------------------------------
def test_compare_three_models_cells_figures_table_and_agreement(engine, db, llm):
    llm.configure(latency_ms=40)
    rows = texts(30)
    users = [user_of(t) for t in rows]
    odd = [odd_third(u) for u in users]
    assert 0 < sum(odd) < len(rows), "the rows must give both agreement and disagreement"
    conn = custom(llm)
    plan = compare_plan([("custom", m) for m in THREE], instruction=INSTRUCTION, columns=["text"])
    run_id = engine.create_plan_run(frame(rows), plan, conn, limits(concurrency=2))

    # one pending cell per (row, arm), written before any call
    written = cells_of(db, run_id)
    assert sorted(written) == [(i, 0, a, 0) for i in range(30) for a in range(3)]
    assert {r.status for r in written.values()} == {"pending"} and llm.requests() == []

    engine.start(run_id, conn)

    def six_done_or_over():
        p = engine.progress(run_id)
        return p if not p.live or sum(f.succeeded for f in p.arms.values()) >= 6 else None

    mid = wait_until(six_done_or_over, 30, "six cells to succeed")
    assert mid.live, "the live figures were read after the run ended: the test proves nothing"
    assert set(mid.arms) == set(THREE) and set(mid.steps) == {"output"}
    for figures in mid.arms.values():  # live, per arm
        assert figures.total == 30 and figures.succeeded <= figures.calls <= 30
        assert figures.tokens_in >= figures.succeeded
    assert mid.done < 90, "the live figures were read after the run ended: the test proves nothing"
    final = engine.wait(run_id, 60)
    assert (final.status, final.succeeded, final.failed, final.total) == ("completed", 90, 0, 90)

    # each arm's requests reached the server with its own model name, each row once
    requests = llm.requests()
    assert Counter((r.model, r.user) for r in requests) == {(m, u): 1 for m in THREE for u in users}
    assert {r.status for r in requests} == {200}

    # per-arm figures from the ledger, against what the server billed for each model
    ledger = engine.progress(run_id)
    live = live_figures(engine, run_id)
    for model in THREE:
        sent = [r for r in requests if r.model == model]
        billed_in = sum(tokens(r.system + r.user) for r in sent)
        billed_out = sum(tokens(reply(model, r.user)) for r in sent)
        for figures in (ledger.arms[model], live.arms[model]):
            assert (figures.total, figures.succeeded, figures.failed, figures.calls) == (30, 30, 0, 30)
            assert (figures.tokens_in, figures.tokens_out) == (billed_in, billed_out)
    assert ledger.steps["output"].succeeded == 90 and ledger.steps["output"].calls == 90

    # the cells hold each model's own answer
    for (row, _step, arm, _sample), result in cells_of(db, run_id).items():
        assert result.request == users[row]
        assert result.raw == reply(THREE[arm], users[row])

    # the wide table: inputs, one column per model (named after it), the statuses, all_agree
    run = db.get_run(run_id)
    table = table_for(run)
    statuses = [f"{m}_{what}" for m in THREE for what in ("status", "error")]
    assert table.columns() == ["id", "text", *THREE, *statuses, "all_agree"]
    out = table.frame(db, run)
    assert list(out.columns) == table.columns() and len(out) == 30
    for model in THREE:
        assert out[model].tolist() == [reply(model, u) for u in users]
        assert set(out[f"{model}_status"]) == {"succeeded"}
    assert out["all_agree"].tolist() == [not o for o in odd]

    # percent agreement, by hand from the server's rule
    agreement = compare_agreement(db, run, Plan.of(run))
    expected = sum(not o for o in odd) / 30
    assert (agreement.n_units, agreement.n_rows) == (30, 30)
    assert agreement.percent == pytest.approx(expected)
    pairs = {p.raters: p.percent for p in agreement.pairwise}
    assert pairs == {
        ("fake-small", "fake-large"): 1.0,
        ("fake-small", "fake-alt"): pytest.approx(expected),
        ("fake-large", "fake-alt"): pytest.approx(expected),
    }


def test_a_contrarian_model_means_no_row_agrees(engine, db, llm):
    rows = texts(9)
    plan = compare_plan([("custom", "fake-small"), ("custom", "fake-contrarian")], instruction=INSTRUCTION)
    run_id = run_plan(engine, frame(rows), plan, custom(llm), concurrency=3)
    run = db.get_run(run_id)
    agreement = compare_agreement(db, run, Plan.of(run))
    assert (agreement.percent, agreement.n_units) == (0.0, 9)
    out = table_for(run).frame(db, run)
    assert out["all_agree"].tolist() == [False] * 9
    assert out["fake-contrarian"].str.startswith("Contrary reply to: ").all()


# -- 2. Samples and the cache -------------------------------------------------------------------
def test_samples_are_separate_calls_with_the_cache_on_and_a_rerun_is_all_cache(engine, db, llm):
    rows = ["alpha", "beta", "alpha", "gamma"]  # row 2 repeats row 0: one call per sample for both
    conn = custom(llm)
    plan = consensus_plan(
        [("custom", "fake-small")], instruction=INSTRUCTION, samples=3, temperature=0.7, columns=["text"]
    )
    assert plan.arms[0].samples == 3
    run_id = run_plan(engine, frame(rows), plan, conn, concurrency=4, use_cache=True)
    sent = Counter(r.user for r in llm.requests())
    assert sent == {user_of("alpha"): 3, user_of("beta"): 3, user_of("gamma"): 3}
    cells = cells_of(db, run_id)
    assert sorted(cells) == [(i, 0, 0, k) for i in range(4) for k in range(3)]
    assert {r.status for r in cells.values()} == {"succeeded"}
    run = db.get_run(run_id)
    assert (run.calls, run.cache_hits) == (9, 3)  # the repeated row, not the samples, came from the cache
    assert {r.cached for (row, *_), r in cells.items() if row != 2} == {False}

    out = table_for(run).frame(db, run)
    assert [c for c in out.columns if c.startswith("fake-small#")][:3] == [f"fake-small#{k}" for k in (1, 2, 3)]
    assert set(out["decided_by"]) == {"unanimous"}

    before = len(llm.requests())
    clone = engine.clone_run(run_id, conn)
    assert engine.wait(clone, 60).status == RunStatus.COMPLETED
    assert llm.requests()[before:] == [], "a re-run of the same plan called the server"
    again = cells_of(db, clone)
    assert sorted(again) == sorted(cells)
    assert all(r.status == "succeeded" and r.cached for r in again.values())
    assert {k: r.raw for k, r in again.items()} == {k: r.raw for k, r in cells.items()}
    record = db.get_run(clone)
    assert (record.calls, record.cache_hits, record.plan) == (0, 12, run.plan)


def test_the_same_model_twice_is_two_arms_and_two_calls(engine, db, llm):
    plan = compare_plan([("custom", "fake-small"), ("custom", "fake-small")], instruction=INSTRUCTION)
    assert [a.name for a in plan.arms] == ["fake-small", "fake-small#2"]
    run_id = run_plan(engine, frame(texts(5)), plan, custom(llm))
    assert Counter(r.model for r in llm.requests()) == {"fake-small": 10}
    assert db.get_run(run_id).cache_hits == 0


# -- 3. One lane per arm ------------------------------------------------------------------------
def test_a_429_storm_on_one_arm_fails_no_row_and_does_not_slow_the_other(engine, db, llm, llm2):
    llm.configure(rpm=600)  # 10 requests a second, and the bucket starts empty
    llm2.configure(latency_ms=10)
    rows = texts(40)
    plan = Plan(
        "compare",
        (
            Arm("limited", "custom", "fake-small", endpoint={"base_url": llm.url}),
            Arm("free", "custom", "fake-alt", endpoint={"base_url": llm2.url}),
        ),
        (Step("output", INSTRUCTION, ("limited", "free"), columns=("text",)),),
    )
    run_id = run_plan(engine, frame(rows), plan, custom(llm), concurrency=8, max_retries=0)
    limited, free = llm.requests(), llm2.requests()
    assert Counter(r.status for r in limited)[429] > 0, "the server never rate-limited: the test proves nothing"
    assert Counter(r.user for r in limited if r.status == 200) == {user_of(t): 1 for t in rows}
    assert {r.status for r in free} == {200} and Counter(r.user for r in free) == {user_of(t): 1 for t in rows}
    assert {r.model for r in limited} == {"fake-small"} and {r.model for r in free} == {"fake-alt"}
    counts = db.run_counts(run_id)
    assert (counts.succeeded, counts.failed, counts.pending) == (80, 0, 0)
    live = live_figures(engine, run_id)
    assert live.arms["limited"].rate_limited > 0 and live.arms["free"].rate_limited == 0
    kept = engine.progress(run_id)  # from the ledger once the job is over: the 429s are kept per model
    assert kept.arms["limited"].rate_limited == live.arms["limited"].rate_limited
    assert kept.arms["free"].rate_limited == 0 and kept.rate_limited == live.arms["limited"].rate_limited
    # the free arm was never paused or slowed by the other arm's 429s (with one limiter for both,
    # it takes about half as long as the limited arm; on its own lane, a few hundredths of that,
    # or a tenth or two on a machine busy with other tests)
    start = min(r.ts for r in [*limited, *free])
    free_span, limited_span = max(r.ts for r in free) - start, max(r.ts for r in limited) - start
    assert limited_span > 3.0 and free_span < 0.3 * limited_span, (free_span, limited_span)


def test_two_providers_each_get_their_own_calls_and_key(engine, db, llm, llm2):
    rows = texts(12)
    custom_key, openai_key = "custom-key-0001", "sk-proj-openai-key-0002"
    plan = compare_plan(
        [("custom", "fake-small"), ("openai", "gpt-4o-mini")],
        instruction=INSTRUCTION,
        columns=["text"],
        endpoints={"openai": {"base_url": llm2.url}},
    )
    conns = {"custom": custom(llm, custom_key), "openai": Connection("openai", api_key=openai_key)}
    run_id = run_plan(engine, frame(rows), plan, conns, concurrency=3)
    first, second = llm.requests(), llm2.requests()
    assert Counter((r.model, r.user, r.key) for r in first) == {
        ("fake-small", user_of(t), masked(custom_key)): 1 for t in rows
    }
    assert Counter((r.model, r.user, r.key) for r in second) == {
        ("gpt-4o-mini", user_of(t), masked(openai_key)): 1 for t in rows
    }
    run = db.get_run(run_id)
    assert run.plan["arms"][1]["endpoint"] == {"base_url": llm2.url}
    out = table_for(run).frame(db, run)
    assert out["gpt-4o-mini"].tolist() == [reply("gpt-4o-mini", user_of(t)) for t in rows]


# -- 4. Pipeline --------------------------------------------------------------------------------
RELEVANT = {
    "name": "relevant",
    "model": "custom:fake-small",
    "instruction": "Is the review about the product?",
    "columns": ["text"],
    "fields": [{"name": "relevant", "type": "boolean"}, {"name": "topic", "type": "string"}],
}


def relevant_answer(text: str) -> dict[str, object]:
    """Step 1's answer by the fake server's JSON rule: booleans by length, strings "<key> of"."""
    user = user_of(text)
    return {"relevant": len(user) % 2 == 0, "topic": f"topic of {user[:60]}"}


def test_pipeline_templates_conditions_and_upstream_failures(engine, db, llm):
    rows = texts(10)
    rows.insert(4, "[[error:400]] a broken review")
    code = {
        "name": "code",
        "model": "custom:fake-alt",
        "instruction": "Code the review.",
        "template": "Topic: {relevant.topic} | Review: {text}",
        "run_if": "relevant.relevant == True",
    }
    plan = pipeline_plan({"steps": [RELEVANT, code]})
    run_id = run_plan(engine, frame(rows), plan, custom(llm), concurrency=2, max_retries=0)
    good = [t for t in rows if "[[error" not in t]
    relevant = [t for t in good if relevant_answer(t)["relevant"]]
    assert 0 < len(relevant) < len(good), "the rows must give both outcomes of run_if"

    requests = llm.requests()
    assert Counter(r.user for r in requests if r.model == "fake-small") == {user_of(t): 1 for t in rows}
    # {step.field} rendered the earlier answer, in exactly the message the server got
    assert Counter(r.user for r in requests if r.model == "fake-alt") == {
        f"Topic: {relevant_answer(t)['topic']} | Review: {t}": 1 for t in relevant
    }

    cells = cells_of(db, run_id)
    for row, text in enumerate(rows):
        first, second = cells[(row, 0, 0, 0)], cells[(row, 1, 1, 0)]
        if "[[error" in text:
            assert (first.status, first.error_kind) == ("failed", "bad_request")
            assert (second.status, second.error_kind) == ("failed", "upstream_failed")
            assert second.error_message == "Not sent: step 'relevant' failed for this row."
            assert second.attempts == 0 and second.tokens_in == 0
        elif text in relevant:
            assert first.parsed == relevant_answer(text) and second.status == "succeeded"
        else:
            assert first.parsed == relevant_answer(text)
            assert (second.status, second.attempts, second.raw) == ("skipped", 0, None)
            assert second.error_message == "Skipped: run_if is not true (relevant.relevant == True)."

    steps = engine.progress(run_id).steps
    assert (steps["relevant"].succeeded, steps["relevant"].failed) == (len(good), 1)
    assert (steps["code"].succeeded, steps["code"].skipped, steps["code"].failed) == (
        len(relevant),
        len(good) - len(relevant),
        1,
    )
    run = db.get_run(run_id)
    table = table_for(run)
    assert table.columns() == [
        "id",
        "text",
        "relevant.relevant",
        "relevant.topic",
        "code",
        "relevant_status",
        "relevant_error",
        "code_status",
        "code_error",
    ]
    out = table.frame(db, run)
    assert out["code_status"].tolist() == [
        "failed" if "[[error" in t else "succeeded" if t in relevant else "skipped" for t in rows
    ]


def test_retry_failed_resends_exactly_the_failed_cells_step_by_step(db, llm):
    engine = Engine(db, backoff_cap=0.1)
    try:
        rows = texts(8)
        flaky = {2: f"[[flaky:2]] {rows[2]}", 5: f"[[flaky:2]] {rows[5]}"}  # 500 twice, then answered
        rows = [flaky.get(i, t) for i, t in enumerate(rows)]
        code = {
            "name": "code",
            "model": "custom:fake-alt",
            "instruction": "Code the row.",
            "template": "Code row {id}: relevant={relevant.relevant}",
        }
        plan = pipeline_plan({"steps": [RELEVANT, code]})
        conn = custom(llm)
        run_id = run_plan(engine, frame(rows), plan, conn, concurrency=2, max_retries=0)
        cells = cells_of(db, run_id)
        for row in range(8):
            want = ("failed", "failed") if row in flaky else ("succeeded", "succeeded")
            assert (cells[(row, 0, 0, 0)].status, cells[(row, 1, 1, 0)].status) == want
        assert cells[(2, 1, 1, 0)].error_kind == "upstream_failed"
        done_before = {(r.step, r.request) for r in cells.values() if r.status == "succeeded"}
        before = len(llm.requests())

        engine.retry_failed(run_id, conn, max_retries=2)
        assert engine.wait(run_id, 60).status == RunStatus.COMPLETED
        again = llm.requests()[before:]
        ids = {row: f"r{row:03d}" for row in flaky}
        second = {row: f"Code row {ids[row]}: relevant={relevant_answer(rows[row])['relevant']}" for row in flaky}
        assert Counter((r.model, r.user, r.status) for r in again) == {
            **{("fake-small", user_of(rows[row]), 500): 1 for row in flaky},
            **{("fake-small", user_of(rows[row]), 200): 1 for row in flaky},
            **{("fake-alt", second[row], 200): 1 for row in flaky},
        }
        for row in flaky:  # step 1 first, then the step that needs it
            answered = next(r.ts for r in again if r.user == user_of(rows[row]) and r.status == 200)
            assert answered < next(r.ts for r in again if r.user == second[row])
        resent = {(0 if r.model == "fake-small" else 1, r.user) for r in again} & done_before
        assert resent == set(), "a succeeded cell was sent again"

        cells = cells_of(db, run_id)
        assert {r.status for r in cells.values()} == {"succeeded"}
        assert [cells[(row, 0, 0, 0)].attempts for row in flaky] == [3, 3]  # 1 before the retry, 2 in it
        run = db.get_run(run_id)
        assert run.max_retries == 2 and any("max_retries=2" in line.message for line in db.logs(run_id))
        arms = engine.progress(run_id).arms  # the ledger's per-arm calls are every call the server saw
        every = llm.requests()
        assert arms["fake-small"].calls == sum(r.model == "fake-small" for r in every) == 8 + 4
        assert arms["fake-alt"].calls == sum(r.model == "fake-alt" for r in every) == 8
    finally:
        engine.shutdown()


def two_endpoints(first: FakeLLMServer, second: FakeLLMServer, models=("fake-small", "fake-alt")) -> Plan:
    """A comparison of two models, each on its own endpoint."""
    arms = tuple(
        Arm(m, "custom", m, endpoint={"base_url": server.url})
        for m, server in zip(models, (first, second), strict=True)
    )
    return Plan("compare", arms, (Step("output", INSTRUCTION, models, columns=("text",)),))


@pytest.mark.parametrize("good_latency_ms", [0, 60])
def test_a_model_that_does_not_exist_stops_the_run_whichever_model_answers_first(
    engine, db, llm, llm2, good_latency_ms
):
    llm.configure(latency_ms=good_latency_ms)
    llm2.configure(strict_models=True, models=["fake-large"])  # fake-alt is not served there
    conn = custom(llm)
    run_id = engine.create_plan_run(frame(texts(20)), two_endpoints(llm, llm2), conn, limits(concurrency=2))
    engine.start(run_id, conn)
    final = engine.wait(run_id, 30)
    assert final.status == RunStatus.FAILED
    assert final.stop_reason.startswith("Stopped after the first 3 rows all failed for model 'fake-alt': ")
    assert len(llm2.requests()) <= 3 + 2  # the three, and what its lane had in flight
    assert db.run_counts(run_id).pending > 0


def test_retry_failed_with_a_changed_arm_model_sends_it_and_records_it(engine, db, llm, llm2):
    llm.configure(latency_ms=20)
    llm2.configure(strict_models=True, models=["fake-large"])  # fake-alt is "retired" on its endpoint
    rows = texts(6)
    conn = custom(llm)
    run_id = engine.create_plan_run(frame(rows), two_endpoints(llm, llm2), conn, limits(concurrency=2))
    engine.start(run_id, conn)
    assert engine.wait(run_id, 30).status == RunStatus.FAILED
    with pytest.raises(ValueError, match="model"):  # which model? a run of several says per arm
        engine.update_settings(run_id, model="fake-large")
    done = {r.request for r in db.results(run_id, statuses=["succeeded"])}
    before, before2 = len(llm.requests()), len(llm2.requests())
    engine.retry_failed(run_id, conn, arms={"fake-alt": {"model": "fake-large"}})
    assert engine.wait(run_id, 30).status == RunStatus.COMPLETED
    assert Counter((r.model, r.user) for r in llm2.requests()[before2:]) == {
        ("fake-large", user_of(t)): 1 for t in rows
    }
    resumed = Counter(r.user for r in llm.requests()[before:])  # the cells still pending, once each
    assert resumed == {user_of(t): 1 for t in rows if user_of(t) not in done}
    run = db.get_run(run_id)
    assert [a["model"] for a in run.plan["arms"]] == ["fake-small", "fake-large"]
    assert run.plan["sent"]["output/fake-alt"]["model"] == "fake-large"
    assert any("fake-large" in line.message for line in db.logs(run_id))
    out = table_for(run).frame(db, run)
    assert out["fake-alt"].tolist() == [reply("fake-large", user_of(t)) for t in rows]
    assert out["fake-small"].tolist() == [reply("fake-small", user_of(t)) for t in rows]


def test_resume_counts_each_arms_failed_cells_once(engine, db, llm):
    rows = [*texts(5), "[[flaky:1]] once"]  # the first call with this message gets a 500
    plan = compare_plan([("custom", "fake-small"), ("custom", "fake-alt")], instruction=INSTRUCTION)
    conn = custom(llm)
    run_id = run_plan(engine, frame(rows), plan, conn, concurrency=1, max_retries=0)
    first = engine.progress(run_id)
    assert (first.succeeded, first.failed) == (11, 1)
    failed_arm = next(name for name, f in first.arms.items() if f.failed)
    engine.resume(run_id, conn)
    assert engine.wait(run_id, 30).status == RunStatus.COMPLETED
    for figures in (engine.progress(run_id).arms[failed_arm], live_figures(engine, run_id).arms[failed_arm]):
        assert (figures.total, figures.succeeded, figures.failed, figures.done) == (6, 6, 0, 6)
        assert figures.calls == 7  # the failed call and the one that answered


# -- 5. Consensus with a judge ------------------------------------------------------------------
def judged(user: str) -> str:
    """The judge's user message for a row: the row, then every coder's answer."""
    answers = "\n".join(f"Answer {n}: {reply(m, user)}" for n, m in enumerate(THREE, 1))
    return f"{user}\n\nThe answers to judge:\n{answers}"


def test_the_judge_sees_every_answer_and_runs_only_where_coders_disagree(engine, db, llm):
    rows = texts(15)
    users = [user_of(t) for t in rows]
    odd = [odd_third(u) for u in users]
    assert 0 < sum(odd) < len(rows)
    plan = consensus_plan(
        [("custom", m) for m in THREE], instruction=INSTRUCTION, judge=("custom", "gpt-4o-mini"), columns=["text"]
    )
    run_id = run_plan(engine, frame(rows), plan, custom(llm), concurrency=3)
    requests = llm.requests()
    judge = [r for r in requests if r.model == "gpt-4o-mini"]
    assert Counter(r.user for r in judge) == {judged(u): 1 for u, o in zip(users, odd, strict=True) if o}
    for r in judge:
        assert all(reply(m, r.user.split("\n\n", 1)[0]) in r.user for m in THREE)
    assert Counter(r.model for r in requests) == {**dict.fromkeys(THREE, 15), "gpt-4o-mini": sum(odd)}

    cells = cells_of(db, run_id)
    for row, o in enumerate(odd):
        verdict = cells[(row, 1, 3, 0)]
        if o:
            assert verdict.status == "succeeded" and verdict.request == judged(users[row])
        else:
            assert (verdict.status, verdict.attempts) == ("skipped", 0)
            assert verdict.error_message == "Skipped: the answers agreed, so no judge was needed."

    run = db.get_run(run_id)
    table = table_for(run)
    statuses = [f"{n}_{w}" for n in (*THREE, "judge") for w in ("status", "error")]
    assert table.columns() == ["id", "text", *THREE, "consensus", "agreed", "judge_reason", "decided_by", *statuses]
    out = table.frame(db, run)
    for row, o in enumerate(odd):
        got = out.iloc[row]
        if o:
            message = judged(users[row])
            assert (got["agreed"], got["decided_by"]) == (False, "judge")
            assert got["consensus"] == f"answer of {message[:60]}"
            assert got["judge_reason"] == f"reason of {message[:60]}"
        else:
            assert (got["agreed"], got["decided_by"]) == (True, "unanimous") and pd.isna(got["judge_reason"])
            assert got["consensus"] == reply("fake-small", users[row])
    disagreeing = out[~out["agreed"]]
    assert len(disagreeing) == sum(odd)  # rows where the coders disagree are easy to filter


def test_judge_always_runs_the_judge_on_every_row(engine, db, llm):
    rows = texts(9)
    users = [user_of(t) for t in rows]
    plan = consensus_plan(
        [("custom", m) for m in THREE],
        instruction=INSTRUCTION,
        judge=("custom", "gpt-4o-mini"),
        judge_always=True,
        columns=["text"],
    )
    run_id = run_plan(engine, frame(rows), plan, custom(llm), concurrency=3)
    judge = [r for r in llm.requests() if r.model == "gpt-4o-mini"]
    assert Counter(r.user for r in judge) == {judged(u): 1 for u in users}
    assert {r.status for (_, step, *_), r in cells_of(db, run_id).items() if step == 1} == {"succeeded"}
    out = table_for(db.get_run(run_id)).frame(db, db.get_run(run_id))
    assert out["decided_by"].tolist() == ["judge" if odd_third(u) else "unanimous" for u in users]


def test_a_paused_consensus_run_records_calls_in_flight_and_resumes_without_resending(engine, db, llm):
    llm.configure(latency_ms=60)
    rows = texts(30, "paused")
    users = [user_of(t) for t in rows]
    plan = consensus_plan(
        [("custom", m) for m in THREE], instruction=INSTRUCTION, judge=("custom", "gpt-4o-mini"), columns=["text"]
    )
    conn = custom(llm)
    run_id = engine.create_plan_run(frame(rows), plan, conn, limits(concurrency=2))
    engine.start(run_id, conn)
    wait_until(lambda: db.run_counts(run_id).succeeded >= 10, 30, "10 cells done")
    assert engine.pause(run_id)
    assert engine.wait(run_id, 30).status == RunStatus.PAUSED
    counts, run = db.run_counts(run_id), db.get_run(run_id)
    assert counts.pending > 0, "paused too late: the test proves nothing"
    assert run.calls == len(llm.requests())  # calls in flight at the pause were recorded
    assert counts.succeeded == len(llm.requests())  # each reply received is a succeeded cell
    engine.resume(run_id, conn)
    assert engine.wait(run_id, 60).status == RunStatus.COMPLETED
    expected = {(m, u) for m in THREE for u in users} | {("gpt-4o-mini", judged(u)) for u in users if odd_third(u)}
    assert Counter((r.model, r.user) for r in llm.requests()) == dict.fromkeys(expected, 1)
    assert db.get_run(run_id).calls == len(expected)


# -- 6. A killed three-arm run with a judge, resumed ---------------------------------------------
CHILD = """
import json, sys
import pandas as pd
from handai_db import Database
from handai_engine import Engine, RunSettings
from providers import Connection
from research.consensus import consensus_plan

db_url, base_url, rows_file, concurrency = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
db = Database(db_url)
engine = Engine(db)
conn = Connection("custom", api_key="k", base_url=base_url)
plan = consensus_plan(
    [("custom", m) for m in ("fake-small", "fake-large", "fake-alt")],
    instruction="Say what the review means.",
    judge=("custom", "gpt-4o-mini"),
    columns=["text"],
)
rows = pd.DataFrame(json.load(open(rows_file)))
run_id = engine.create_plan_run(rows, plan, conn, RunSettings("custom", "unused", concurrency=concurrency))
engine.start(run_id, conn)
engine.wait(run_id, 600)
"""


def test_a_killed_three_arm_run_with_a_judge_resumes_every_cell_once(engine, db, llm, tmp_path):
    llm.configure(latency_ms=150)
    n, concurrency, lanes = 30, 2, 4  # three coders and the judge, each with its own slots
    rows = texts(n, "killed")
    users = [user_of(t) for t in rows]
    (tmp_path / "rows.json").write_text(json.dumps(frame(rows).to_dict(orient="list")))
    (tmp_path / "child.py").write_text(CHILD)
    proc = subprocess.Popen(
        [PYTHON, str(tmp_path / "child.py"), db.url, llm.url, str(tmp_path / "rows.json"), str(concurrency)],
        env=cli_env(tmp_path / "child-data"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run_id = wait_until(lambda: db.list_runs() and db.list_runs()[0].id, 60, "the child's run")
        wait_until(lambda: db.run_counts(run_id).succeeded >= 36, 60, "36 cells done by the child")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL, stderr
    wait_until(lambda: llm.in_flight() == 0, 10, "the calls the child had in flight to reach the server's log")
    models = [a["model"] for a in db.get_run(run_id).plan["arms"]]
    at_kill = cells_of(db, run_id)
    done_at_kill = {(models[r.arm], r.request) for r in at_kill.values() if r.status == "succeeded"}
    counts = db.run_counts(run_id)
    assert db.get_run(run_id).status == "running" and counts.pending > 0, "killed too late: the test proves nothing"
    sent_by_child = {(r.model, r.user) for r in llm.requests()}
    unrecorded = sent_by_child - done_at_kill  # sent, but not in the ledger when the child died

    assert db.mark_interrupted_runs() == [run_id]
    assert db.get_run(run_id).status == "interrupted"
    engine.resume(run_id, custom(llm))
    assert engine.wait(run_id, 60).status == RunStatus.COMPLETED

    cells = cells_of(db, run_id)
    assert sorted(cells) == sorted(
        (row, step, arm, 0) for row in range(n) for step, arm in ((0, 0), (0, 1), (0, 2), (1, 3))
    )
    for (row, step, _arm, _), result in cells.items():
        if step == 0 or odd_third(users[row]):
            assert result.status == "succeeded", (row, step, result.error_message)
        else:
            assert result.status == "skipped"

    seen = Counter((r.model, r.user) for r in llm.requests())
    expected = {(m, u) for m in THREE for u in users} | {("gpt-4o-mini", judged(u)) for u in users if odd_third(u)}
    assert set(seen) == expected
    twice = {key for key, count in seen.items() if count > 1}
    assert not twice & done_at_kill, "a cell recorded before the kill was sent again"
    assert twice <= unrecorded and max(seen.values()) == 1 + (len(twice) > 0)
    # what was unrecorded at the kill: the calls in flight, and replies not yet written (one batch)
    assert len(unrecorded) <= 2 * concurrency * lanes


# -- 7. Paging ----------------------------------------------------------------------------------
class PagingDatabase(Database):
    """The real ledger, noting each page the engine pulls."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.pages: list[tuple[int, int, list[int]]] = []

    def rows_to_run(self, run_id, statuses, after, limit):
        page = super().rows_to_run(run_id, statuses, after, limit)
        self.pages.append((after, limit, [r.row_index for r in page]))
        return page


def test_a_long_two_arm_run_is_pulled_page_by_page_and_every_cell_runs_once(llm, tmp_path):
    n, page = 3000, 64
    db = PagingDatabase(f"sqlite:///{tmp_path / 'paged.db'}")
    engine = Engine(db, page_rows=page)
    try:
        rows = [f"p{i}" for i in range(n)]
        plan = compare_plan([("custom", "fake-small"), ("custom", "fake-alt")], instruction="Echo.")
        run_id = run_plan(engine, pd.DataFrame({"text": rows}), plan, custom(llm), concurrency=32)
        assert db.run_counts(run_id).succeeded == 2 * n
        assert Counter((r.model, r.user) for r in llm.requests()) == {
            (m, user_of(t)): 1 for m in ("fake-small", "fake-alt") for t in rows
        }
        assert {limit for _, limit, _ in db.pages} == {page}
        pulled = [i for _, _, indexes in db.pages for i in indexes]
        assert pulled == list(range(n))  # no row twice, none skipped, in order
        assert all(len(indexes) == page for _, _, indexes in db.pages[:-2])
        assert db.pages[-1][2] == [] and len(db.pages) == -(-n // page) + 1
        assert [after for after, _, _ in db.pages] == [-1, *(ix[-1] for _, _, ix in db.pages[:-1])]
    finally:
        engine.shutdown()
        db.close()


class SlowLedger(PagingDatabase):
    """A ledger whose writes are slow (a big file, a busy disk): it notes how many outcomes were
    waiting for the writer each time the engine pulled a page."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.runner: Engine | None = None
        self.waiting_at_pull: list[int] = []

    def record_results(self, run_id, outcomes):
        time.sleep(0.05)
        return super().record_results(run_id, outcomes)

    def rows_to_run(self, run_id, statuses, after, limit):
        job = self.runner._jobs[run_id] if self.runner else None
        self.waiting_at_pull.append(job.pool.writer.queue.qsize() if job and job.pool else 0)
        return super().rows_to_run(run_id, statuses, after, limit)


def test_a_slow_ledger_slows_the_run_instead_of_piling_outcomes_up(llm, tmp_path, monkeypatch):
    monkeypatch.setattr(scheduler_module, "MAX_BACKLOG", 20)
    monkeypatch.setattr(writer_module, "WRITE_BATCH", 5)
    db = SlowLedger(f"sqlite:///{tmp_path / 'slow.db'}")
    engine = db.runner = Engine(db, page_rows=8)
    try:
        rows = [f"s{i}" for i in range(200)]
        plan = compare_plan([("custom", "fake-small"), ("custom", "fake-alt")], instruction="Echo.")
        run_id = run_plan(engine, pd.DataFrame({"text": rows}), plan, custom(llm), concurrency=16)
        assert db.run_counts(run_id).succeeded == 2 * len(rows)
        assert len(llm.requests()) == 2 * len(rows)
        # without the check a page is pulled whatever the writer's queue holds, and it grows page by page
        assert max(db.waiting_at_pull) <= 20 + 2 * 8, db.waiting_at_pull
    finally:
        engine.shutdown()
        db.close()


def test_rows_to_run_pages_over_unfinished_rows_only(db):
    n = 23
    run_id = db.create_run([{"text": f"t{i}"} for i in range(n)], cells=[(0, 0, 0), (0, 1, 0)], provider="c", model="m")
    ids = {(r.row_index, r.arm): r.id for r in db.results(run_id)}
    done = [RowOutcome(ids[(i, a)], RowStatus.SUCCEEDED, parsed={"output": f"a{i}"}) for i in range(5) for a in (0, 1)]
    done += [RowOutcome(ids[(5, 0)], RowStatus.SUCCEEDED, parsed={"output": "half"})]  # row 5 half done
    done += [RowOutcome(ids[(7, 1)], RowStatus.FAILED, error_kind="server_error")]
    done += [RowOutcome(ids[(i, a)], RowStatus.SKIPPED) for i in range(10, 15) for a in (0, 1)]
    db.record_results(run_id, done)

    def page_through(statuses, limit):
        after, pulled = -1, []
        while page := db.rows_to_run(run_id, statuses, after, limit):
            assert len(page) <= limit
            pulled.extend(page)
            after = page[-1].row_index
        return pulled

    for statuses, expected in (
        ((RowStatus.PENDING,), [5, 6, 7, 8, 9, *range(15, n)]),
        ((RowStatus.PENDING, RowStatus.FAILED), [5, 6, 7, 8, 9, *range(15, n)]),
        ((RowStatus.FAILED,), [7]),
        ((RowStatus.SUCCEEDED,), [0, 1, 2, 3, 4, 5]),
    ):
        for limit in (1, 4, 7, 100):
            pulled = page_through(statuses, limit)
            assert [r.row_index for r in pulled] == expected, (statuses, limit)
    row5 = next(r for r in page_through((RowStatus.PENDING,), 3) if r.row_index == 5)
    assert row5.input == {"text": "t5"}  # every cell of the row comes, with the row's input
    assert [(c.arm, c.status, c.parsed) for c in row5.cells] == [
        (0, "succeeded", {"output": "half"}),
        (1, "pending", None),
    ]
    row7 = db.rows_to_run(run_id, (RowStatus.FAILED,), 6, 1)[0]
    assert [(c.arm, c.status) for c in row7.cells] == [(0, "pending"), (1, "failed")]


# -- 8. An older database -----------------------------------------------------------------------
def old_layout_database(path: Path, base_url: str) -> None:
    """A ledger as version 0001 left it, holding a one-model run stopped half way."""
    Database(f"sqlite:///{path}").close()
    con = sqlite3.connect(path)
    con.execute("DROP INDEX ix_results_cell")
    con.execute("CREATE UNIQUE INDEX ix_results_run_row ON results (run_id, row_index)")
    for table, column in [
        ("results", "step"),
        ("results", "arm"),
        ("results", "sample"),
        ("runs", "plan"),
        ("runs", "calls"),
        ("runs", "cache_hits"),
        ("runs", "cost_usd"),
        ("results", "cost_usd"),
        ("results", "cached"),
        ("runs", "active_seconds"),
        ("runs", "resumed_at"),
        ("results", "flags"),
    ]:
        con.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    con.execute("DROP TABLE response_cache")
    con.execute("DELETE FROM migrations WHERE name > '0001_initial'")
    connection = json.dumps({"provider": "custom", "base_url": base_url})
    params = json.dumps({"temperature": None, "max_tokens": None, "json_mode": False})
    con.execute(
        "INSERT INTO runs (kind, name, provider, model, connection, params, system_prompt, columns, input_name,"
        " input_hash, input_columns, concurrency, max_retries, status, total_rows, succeeded, failed, tokens_in,"
        " tokens_out, created_at, started_at) VALUES ('transform', 'old', 'custom', 'fake-small', ?, ?,"
        " 'Summarise.', '[\"text\"]', 'old.csv', '', '[\"text\"]', 2, 1, 'interrupted', 6, 3, 0, 15, 21,"
        " '2025-01-01 00:00:00', '2025-01-01 00:00:01')",
        (connection, params),
    )
    for i in range(6):
        done = i < 3
        con.execute(
            "INSERT INTO results (run_id, row_index, input, request, raw, parsed, status, attempts, tokens_in,"
            " tokens_out, latency_ms) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                i,
                json.dumps({"text": f"old {i}"}),
                user_of(f"old {i}") if done else None,
                f"old answer {i}" if done else None,
                json.dumps({"output": f"old answer {i}"}) if done else None,
                "succeeded" if done else "pending",
                1 if done else 0,
                5 if done else 0,
                7 if done else 0,
                12.5 if done else None,
            ),
        )
    con.commit()
    con.close()


def test_an_old_one_model_run_opens_unchanged_and_resumes(llm, tmp_path):
    path = tmp_path / "old.db"
    old_layout_database(path, llm.url)
    db = Database(f"sqlite:///{path}")
    engine = Engine(db)
    try:
        run = db.get_run(1)
        assert (run.plan, run.calls, run.status) == (None, 0, "interrupted")
        plan = Plan.of(run)
        assert plan.single and plan.arms[0].model == "fake-small" and plan.cells() == [(0, 0, 0)]
        out = db.results_frame(1)
        assert list(out.columns) == ["text", "ai_output", "ai_status", "ai_error"]
        assert out["ai_output"].tolist()[:3] == ["old answer 0", "old answer 1", "old answer 2"]
        assert out["ai_status"].tolist() == ["succeeded"] * 3 + ["pending"] * 3
        assert [(r.step, r.arm, r.sample, r.tokens_in) for r in db.results(1)][:3] == [(0, 0, 0, 5)] * 3
        assert [(i, len(c)) for i, _, c in db.iter_rows(1)] == [(i, 1) for i in range(6)]
        progress = engine.progress(1)
        assert (progress.succeeded, progress.total, progress.tokens_in) == (3, 6, 15)

        engine.resume(1, custom(llm))
        assert engine.wait(1, 30).status == RunStatus.COMPLETED
        assert Counter((r.model, r.user, r.system) for r in llm.requests()) == {
            ("fake-small", user_of(f"old {i}"), "Summarise."): 1 for i in range(3, 6)
        }
        out = db.results_frame(1)
        assert out["ai_output"].tolist() == [f"old answer {i}" for i in range(3)] + [
            reply("fake-small", user_of(f"old {i}")) for i in range(3, 6)
        ]
        run = db.get_run(1)
        assert (run.succeeded, run.calls, run.tokens_in) == (6, 3, 15 + sum(r.tokens_in for r in db.results(1)[3:]))
        con = sqlite3.connect(path)
        indexes = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        con.close()
        assert "ix_results_cell" in indexes and "ix_results_run_row" not in indexes
    finally:
        engine.shutdown()
        db.close()


# -- 9. Plans that cannot run -------------------------------------------------------------------
def two_steps(second: dict, first_name: str = "relevant") -> dict:
    return {"steps": [{**RELEVANT, "name": first_name}, {"model": "custom:fake-alt", "instruction": "Go.", **second}]}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: pipeline_plan(two_steps({"name": "code", "template": "{nope.topic} {text}"})),
            r"Step 'code' uses \{nope\.topic\}, which is neither a column nor an earlier step's output\. "
            r"Available: .*relevant\.topic",
        ),
        (
            lambda: pipeline_plan(two_steps({"name": "code", "template": "{code.x}"})),
            r"Step 'code' uses \{code\.x\}",  # a step cannot use its own (or a later) answer
        ),
        (
            lambda: pipeline_plan(two_steps({"name": "code", "columns": ["text"], "run_if": "relevnt.relevant"})),
            r"Step 'code': Unknown name 'relevnt' in condition 'relevnt\.relevant' \(did you mean relevant\?\)",
        ),
        (
            lambda: pipeline_plan(two_steps({"name": "relevant", "columns": ["text"]})),
            r"Two steps are named 'relevant'; names must differ\.",
        ),
        (
            lambda: pipeline_plan(two_steps({"name": "code", "columns": ["text"]}, first_name="text")),
            r"Step name 'text' is also a column name; rename the step\.",
        ),
    ],
)
def test_a_pipeline_that_cannot_run_says_why_and_writes_nothing(engine, db, llm, make, message):
    plan = make()
    with pytest.raises(PlanError, match=message):
        plan.validate(["id", "text"])
    with pytest.raises(PlanError, match=message):
        engine.create_plan_run(frame(texts(3)), plan, custom(llm), limits())
    assert db.list_runs() == [] and llm.requests() == []


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: compare_plan([("custom", "fake-small")], instruction="x"), "Compare takes 2 to 8 models; 1 chosen."),
        (
            lambda: compare_plan([("custom", f"m{i}") for i in range(9)], instruction="x"),
            "Compare takes 2 to 8 models; 9 chosen.",
        ),
        (
            lambda: consensus_plan([("custom", f"m{i}") for i in range(6)], instruction="x"),
            r"Consensus takes 2 to 5 coders \(models x samples\); 6 chosen\.",
        ),
        (
            lambda: consensus_plan([("custom", "a"), ("custom", "b")], instruction="x", samples=3),
            r"Consensus takes 2 to 5 coders \(models x samples\); 6 chosen\.",
        ),
        (
            lambda: consensus_plan([("custom", "a")], instruction="x"),
            r"Consensus takes 2 to 5 coders \(models x samples\); 1 chosen\.",
        ),
    ],
)
def test_compare_and_consensus_take_a_bounded_number_of_models(make, message):
    with pytest.raises(PlanError, match=message):
        make()


def test_the_bounds_themselves_are_allowed():
    assert len(compare_plan([("custom", f"m{i}") for i in range(8)], instruction="x").arms) == 8
    assert len(consensus_plan([("custom", f"m{i}") for i in range(5)], instruction="x").arms) == 5
