"""Reply cache, de-duplication, cost accounting, the budget cap, and schema migrations."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

from handai_db import MIGRATIONS, Database, RowOutcome, RowStatus
from handai_engine import Engine, RunSettings
from providers import Connection

pytestmark = pytest.mark.ledger_backends


def conn_for(llm) -> Connection:
    return Connection("custom", api_key="k", base_url=llm.url)


def run(engine: Engine, llm, df: pd.DataFrame, **kw) -> int:
    conn = conn_for(llm)
    settings = RunSettings("custom", kw.pop("model", "fake-small"), system_prompt=kw.pop("prompt", "Echo."), **kw)
    run_id = engine.create_transform_run(df, settings, conn)
    engine.start(run_id, conn)
    engine.wait(run_id, 60)
    return run_id


def test_identical_rows_in_one_run_cost_one_call(engine, db, llm):
    llm.configure(latency_ms=30)
    df = pd.DataFrame({"text": ["same"] * 20 + ["other"] * 5})
    run_id = run(engine, llm, df, concurrency=8)
    assert sorted(r.user for r in llm.requests()) == ['{"text": "other"}', '{"text": "same"}']
    results = db.results(run_id)
    assert all(r.status == "succeeded" for r in results)
    assert {r.raw for r in results} == {'Reply to: {"text": "same"}', 'Reply to: {"text": "other"}'}
    record = db.get_run(run_id)
    assert (record.calls, record.cache_hits) == (2, 23)


def test_rerunning_an_unchanged_run_costs_nothing_and_a_changed_prompt_recalls(engine, db, llm):
    df = pd.DataFrame({"text": [f"t{i}" for i in range(10)]})
    run(engine, llm, df)
    assert len(llm.requests()) == 10
    second = run(engine, llm, df)
    assert len(llm.requests()) == 10
    assert db.get_run(second).cache_hits == 10
    assert db.results_frame(second)["ai_output"].tolist() == [f'Reply to: {{"text": "t{i}"}}' for i in range(10)]
    run(engine, llm, df, prompt="A different instruction.")
    assert len(llm.requests()) == 20


def test_no_cache_switch_calls_every_row(engine, db, llm):
    df = pd.DataFrame({"text": ["a", "a", "b"]})
    run(engine, llm, df)
    run_id = run(engine, llm, df, use_cache=False)
    assert len(llm.requests()) == 2 + 3
    assert db.get_run(run_id).cache_hits == 0


def test_cost_per_row_and_per_run_from_the_price_table(engine, db, llm):
    db.set_setting("prices", {"fake-small": {"prompt": 1000.0, "completion": 2000.0}})
    run_id = run(engine, llm, pd.DataFrame({"text": ["hello world", "bye"]}))
    results = db.results(run_id)
    for r in results:
        assert r.cost_usd == round((r.tokens_in * 1000 + r.tokens_out * 2000) / 1e6, 8)
    assert abs(db.get_run(run_id).cost_usd - sum(r.cost_usd for r in results)) < 1e-9
    assert engine.progress(run_id).cost_usd == db.get_run(run_id).cost_usd


def test_unknown_price_is_unknown_not_zero(engine, db, llm):
    run_id = run(engine, llm, pd.DataFrame({"text": ["x"]}), model="no-such-price")
    assert db.get_run(run_id).cost_usd is None
    assert db.results(run_id)[0].cost_usd is None


def test_budget_cap_pauses_then_resumes_after_raising_it(engine, db, llm):
    llm.configure(latency_ms=10)
    db.set_setting("prices", {"fake-small": {"prompt": 10_000.0, "completion": 10_000.0}})
    df = pd.DataFrame({"text": [f"row number {i}" for i in range(40)]})
    run_id = run(engine, llm, df, concurrency=2, budget_usd=1.0)
    record = db.get_run(run_id)
    assert record.status == "paused" and "budget" in record.stop_reason.lower()
    assert record.cost_usd <= 1.0
    counts = db.run_counts(run_id)
    assert 0 < counts.succeeded < 40 and counts.failed == 0
    engine.update_settings(run_id, budget_usd=100.0)
    engine.resume(run_id, conn_for(llm))
    engine.wait(run_id, 60)
    assert db.get_run(run_id).status == "completed"
    assert db.run_counts(run_id).succeeded == 40


def test_an_older_database_is_upgraded_by_the_migration_list(tmp_path):
    path = tmp_path / "old.db"
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
    for table in ("ratings", "codebook_versions", "codebooks"):
        con.execute(f"DROP TABLE {table}")
    con.execute("DELETE FROM migrations WHERE name > '0001_initial'")
    con.execute(
        "INSERT INTO runs (kind, name, provider, model, connection, params, system_prompt, columns, input_name,"
        " input_hash, input_columns, concurrency, max_retries, status, total_rows, succeeded, failed, tokens_in,"
        " tokens_out, created_at) VALUES ('transform', '', 'custom', 'm', '{}', '{}', '', '[]', '', '', '[]',"
        " 1, 1, 'cancelled', 0, 0, 0, 0, 0, '2025-01-01 00:00:00')"
    )
    con.commit()
    con.close()
    db = Database(f"sqlite:///{path}")
    run_id = db.create_run([{"a": 1}], provider="custom", model="m")
    assert db.get_run(run_id).calls == 0
    assert db.cached_replies(["nothing"]) == {}
    con = sqlite3.connect(path)
    names = [r[0] for r in con.execute("SELECT name FROM migrations ORDER BY name")]
    assert names == sorted(name for name, _ in MIGRATIONS)  # every one, 0002 to the latest
    assert db.save_codebook("After the upgrade", {"codes": []}).version == 1
    indexes = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "ix_results_cell" in indexes and "ix_results_run_row" not in indexes
    assert db.get_run(1).status == "stopped"  # "cancelled" is now "stopped"
    db.close()


def test_a_database_at_0006_gains_the_reported_model_and_keeps_its_rows(tmp_path):
    path = tmp_path / "at-0006.db"
    old = Database(f"sqlite:///{path}")
    old_run = old.create_run([{"a": 1}], provider="custom", model="m")
    old.record_results(old_run, [RowOutcome(old.results(old_run)[0].id, RowStatus.SUCCEEDED, raw="old answer")])
    old.close()
    con = sqlite3.connect(path)
    for table in ("results", "response_cache"):
        con.execute(f"ALTER TABLE {table} DROP COLUMN model_reported")
    con.execute("DELETE FROM migrations WHERE name = '0007_model_reported'")
    con.execute(
        "INSERT INTO response_cache (key, provider, model, raw, parsed, tokens_in, tokens_out, created_at)"
        " VALUES ('old-key', 'custom', 'm', 'old answer', '{}', 3, 4, '2025-01-01 00:00:00')"
    )
    con.commit()
    con.close()

    db = Database(f"sqlite:///{path}")
    con = sqlite3.connect(path)
    for table in ("results", "response_cache"):
        columns = {r[1]: r[2] for r in con.execute(f"PRAGMA table_info({table})")}
        assert columns["model_reported"] == "VARCHAR(200)", table
    assert "0007_model_reported" in [r[0] for r in con.execute("SELECT name FROM migrations")]
    con.close()
    [answer] = db.results(old_run)
    assert (answer.raw, answer.model_reported) == ("old answer", None) and db.reported_models(old_run) == {}
    assert db.cached_replies(["old-key"])["old-key"].model_reported is None
    new = db.create_run([{"a": 1}], provider="custom", model="m")
    [result] = db.results(new)
    db.record_results(new, [RowOutcome(result.id, RowStatus.SUCCEEDED, raw="x", model_reported="m-2025-01-01")])
    assert db.reported_models(new) == {(0, 0): {"m-2025-01-01": 1}}
    db.close()


def test_estimate_uses_the_test_run_when_there_is_one(engine, db, llm):
    from handai_estimate import estimate_run
    from providers import Price

    llm.configure(latency_ms=20)
    df = pd.DataFrame({"text": [f"row {i}" for i in range(30)]})
    conn = conn_for(llm)
    settings = RunSettings("custom", "fake-small", system_prompt="Echo.")
    test_id = engine.create_transform_run(df, settings, conn, input_hash="h1", name="Test run", limit_rows=5)
    engine.start(test_id, conn)
    engine.wait(test_id, 30)
    stats = db.latest_test_run_stats("h1", "custom", "fake-small")
    assert stats["rows"] == 5 and stats["tokens_in"] > 0 and stats["latency_ms"] >= 20
    price = Price(1.0, 2.0)
    est = estimate_run(30, 999, concurrency=4, price=price, test_stats=stats)
    assert est.tokens_in == int(stats["tokens_in"] * 30) and "test run of 5 rows" in est.basis
    assert est.cost_usd == price.cost(est.tokens_in, est.tokens_out)
    assert abs(est.seconds - 30 * stats["latency_ms"] / 1000 / 4) < 1e-6
    rough = estimate_run(30, 50, concurrency=4, fields=2, price=None)
    assert (rough.tokens_in, rough.tokens_out, rough.cost_usd) == (1500, 1800, None)
    assert "rough" in rough.basis
