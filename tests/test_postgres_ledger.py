"""The ledger on PostgreSQL as on SQLite: every test here runs on both backends (a real server, a
fresh database each). PostgreSQL enforces what SQLite lets pass (string lengths, integer ranges,
parameter types), locks rows, and is shared by a team: the tests aim at those differences."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import inspect, text

from handai_db import (
    ADJUDICATED_RATER,
    MIGRATIONS,
    Base,
    Database,
    RowOutcome,
    RowStatus,
    RunStatus,
    owner_id,
)
from handai_errors import RunStartError

pytestmark = pytest.mark.ledger_backends


def at_once(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` on n threads released together; each result, or the exception it raised."""
    gate = threading.Barrier(n)
    out: list[Any] = [None] * n

    def go(i: int) -> None:
        gate.wait()
        try:
            out[i] = work(i)
        except Exception as exc:  # noqa: BLE001 — the test inspects what each thread met
            out[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def test_what_sqlite_never_checked_fits_names_models_owners_and_big_totals(db):
    long = "x" * 2000
    run_id = db.create_run(
        [{"text": "ünïcödé ✓", "n": 1.5, "none": None}, {"text": "b"}, {"text": "c"}],
        provider="custom",
        model="org/" + "m" * 400,
        name=long,
        input_name=", ".join(f"document-{i}.pdf" for i in range(300)),
        kind="codebook_consolidate",
    )
    db.update_run(run_id, owner=f"{'h' * 250}:{1}:{'b' * 8}")
    first, *more = db.results(run_id)
    billion = 1_000_000_000  # three of them: a run's token total past a 32-bit INTEGER
    control = db.record_results(
        run_id,
        [
            *(RowOutcome(cell.id, RowStatus.SUCCEEDED, raw="a", tokens_in=billion, calls=1) for cell in more),
            RowOutcome(
                first.id,
                RowStatus.SUCCEEDED,
                raw="answer",
                parsed={"label": "ja", "list": [1, None, "zwei"]},
                tokens_in=billion,
                tokens_out=7,
                calls=1,
                cost_usd=0.25,
                cached=True,
                flags={"off_list": ["label"]},
                model_reported="provider/" + "r" * 300,
                cache_key="k" * 64,
            ),
        ],
    )
    assert control.status == RunStatus.QUEUED
    run = db.get_run(run_id)
    assert (run.name, run.tokens_in, run.cost_usd, run.cache_hits) == (long, 3 * billion, 0.25, 1)
    assert isinstance(run.created_at, datetime) and run.created_at.tzinfo is None
    cell = db.results(run_id)[0]
    assert cell.input == {"text": "ünïcödé ✓", "n": 1.5, "none": None}
    assert cell.parsed == {"label": "ja", "list": [1, None, "zwei"]} and cell.cached is True
    assert cell.model_reported.endswith("r" * 300) and cell.updated_at is not None
    book = db.save_codebook("c" * 600, {"codes": [{"name": "ä"}]}, source="s" * 900)
    assert db.find_codebook("c" * 600).id == book.codebook_id
    db.save_ratings(run_id, "coder " + "r" * 400, {0: None}, author="a" * 300)
    db.settle(run_id, 0, ["x", "y"], author="Bo")
    by_rater = {r.rater: r.value for r in db.ratings(run_id)}
    assert by_rater == {"coder " + "r" * 400: None, ADJUDICATED_RATER: ["x", "y"]}


def test_figures_group_by_and_exports_give_the_same_numbers(db):
    run_id = db.create_run(
        [{"t": i} for i in range(6)],
        cells=[(0, 0, 0), (0, 1, 0)],
        provider="custom",
        model="m",
        name="Test run",
        input_hash="h",
    )
    db.claim_run(run_id)
    cells = db.results(run_id)
    assert [(c.row_index, c.arm) for c in cells] == [(r, a) for r in range(6) for a in (0, 1)]
    outcomes = []
    for n, cell in enumerate(cells):
        if n % 3 == 2:
            outcomes.append(RowOutcome(cell.id, RowStatus.FAILED, error_kind="timeout", calls=2, error_message="slow"))
        else:
            reported = "m-2025" if cell.arm == 0 else None
            outcomes.append(
                RowOutcome(
                    cell.id, RowStatus.SUCCEEDED, raw="ok", tokens_in=10, tokens_out=n, calls=1, cost_usd=0.5,
                    latency_ms=100.0 + n, model_reported=reported,
                )
            )  # fmt: skip
    db.record_results(run_id, outcomes)
    counts = db.refresh_run_counts(run_id)
    assert (counts.total, counts.succeeded, counts.failed, counts.errors_by_kind) == (12, 8, 4, {"timeout": 4})
    figures = {(f.step, f.arm, f.status): f for f in db.cell_figures(run_id)}
    ok = figures[(0, 0, "succeeded")]
    assert (ok.cells, ok.tokens_in, ok.attempts) == (4, 40, 4) and ok.cost_usd == pytest.approx(2.0)
    assert isinstance(ok.latency_ms, float) and figures[(0, 1, "failed")].cost_usd is None
    assert db.reported_models(run_id) == {(0, 0): {"m-2025": 4}}
    assert db.error_kind_totals() == {"timeout": 4}
    stats = db.run_stats()
    assert stats.loc[0, "succeeded"] == 8 and stats.loc[0, "avg_latency_ms"] == pytest.approx(105.0)
    exported = json.loads(json.dumps(db.export_run(run_id)))
    assert len(exported["results"]) == 12 and exported["tokens_in"] == 80
    assert db.finish_run(run_id, RunStatus.COMPLETED, None, 2.0)
    averages = db.latest_test_run_stats("h", "custom", "m")
    assert averages == {"tokens_in": 10.0, "tokens_out": 5.0, "latency_ms": 105.0, "rows": 8}
    assert all(type(v) is float for k, v in averages.items() if k != "rows")


def test_of_many_processes_claiming_or_moving_one_run_exactly_one_wins(db):
    run_id = db.create_run([{"a": 1}], provider="custom", model="m")
    others = [Database(db.url) for _ in range(6)]  # own connections, as other processes have
    try:
        claims = at_once(6, lambda i: others[i].claim_run(run_id))
        assert sum(not isinstance(c, Exception) for c in claims) == 1
        assert all(isinstance(c, RunStartError) for c in claims if isinstance(c, Exception))
        assert db.get_run(run_id).owner == owner_id()
        # a pause, a stop and the owner's "completed", written at once: one move, never undone
        moves = at_once(
            3,
            lambda i: [
                lambda: others[0].set_run_status(run_id, RunStatus.PAUSED, only_from=(RunStatus.RUNNING,)),
                lambda: others[1].set_run_status(run_id, RunStatus.STOPPED, only_from=(RunStatus.RUNNING,)),
                lambda: others[2].finish_run(run_id, RunStatus.COMPLETED, None, 1.0),
            ][i](),
        )
        assert moves.count(True) == 1, moves
        status = db.get_run(run_id).status
        assert status == [RunStatus.PAUSED, RunStatus.STOPPED, RunStatus.COMPLETED][moves.index(True)]
        assert db.get_run(run_id).active_seconds == 1.0
    finally:
        for other in others:
            other.close()


def test_parameters_and_codebooks_changed_at_once_lose_nothing(db):
    run_id = db.create_run([{"a": 1}], provider="custom", model="m", params={"kept": True})
    others = [Database(db.url) for _ in range(4)]
    try:
        at_once(4, lambda i: others[i].update_params(run_id, {f"change_{i}": i}))
        assert db.get_run(run_id).params == {"kept": True, **{f"change_{i}": i for i in range(4)}}
        saved = at_once(4, lambda i: others[i].save_codebook("Shared", {"codes": [{"name": f"c{i}"}]}))
        assert not [s for s in saved if isinstance(s, Exception)], saved
        book = db.find_codebook("Shared")
        assert [v.version for v in db.codebook_versions(book.id)] == [4, 3, 2, 1]
        rated = at_once(4, lambda i: others[i].save_ratings(run_id, "Ann", {0: f"v{i}"}))
        assert rated == [1, 1, 1, 1] and len(db.ratings(run_id)) == 1
    finally:
        for other in others:
            other.close()


def test_each_person_has_their_own_sidebar_settings_and_the_project_shares_the_rest(db):
    ann, bo = Database(db.url, user="ann"), Database(db.url, user="bo")
    try:
        ann.set_setting("ui.base_url.openai", "https://ann.example/v1")
        bo.set_setting("ui.base_url.openai", "https://bo.example/v1")
        assert ann.get_setting("ui.base_url.openai") == "https://ann.example/v1"
        assert bo.get_setting("ui.base_url.openai") == "https://bo.example/v1"
        assert Database(db.url, user="cy").get_setting("ui.base_url.openai", "default") == "default"
        ann.set_setting("prices", {"custom/m": {"prompt": 1.0, "completion": 2.0}})
        assert bo.get_setting("prices") == {"custom/m": {"prompt": 1.0, "completion": 2.0}}
        at_once(2, lambda i: (ann, bo)[i].save_instruction(("Sentiment", "Topic")[i], "Say it."))
        assert set(db.instructions()) == {"Sentiment", "Topic"}  # both kept: the row was locked
        bo.delete_instruction("Topic")
        assert set(ann.instructions()) == {"Sentiment"}
    finally:
        ann.close()
        bo.close()


def test_a_ledger_from_before_gives_its_settings_to_whoever_opens_it(db):
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE user_settings"))
        conn.execute(text("DELETE FROM migrations WHERE name = '0008_settings_per_user'"))
        conn.execute(
            text("INSERT INTO settings (key, value) VALUES (:k, :v)"),
            [
                {"k": "ui.model.openai", "v": json.dumps({"v": "gpt-4o-mini"})},
                {"k": "ui.provider", "v": json.dumps({"v": "openai"})},
                {"k": "prices", "v": json.dumps({"v": {"custom/m": {"prompt": 3.0, "completion": 4.0}}})},
            ],
        )
    db.close()
    carol = Database(db.url, user="carol")
    dave = Database(db.url, user="dave")
    try:
        assert carol.get_setting("ui.model.openai") == "gpt-4o-mini" and carol.get_setting("ui.provider") == "openai"
        assert dave.get_setting("ui.model.openai") is None
        assert dave.get_setting("prices") == {"custom/m": {"prompt": 3.0, "completion": 4.0}}
    finally:
        carol.close()
        dave.close()


FIRST_TABLES = {"sessions", "runs", "results", "logs", "settings", "migrations"}
LATER_COLUMNS = {
    "results": ("step", "arm", "sample", "cost_usd", "cached", "flags", "model_reported"),
    "runs": ("plan", "calls", "cache_hits", "cost_usd", "active_seconds", "resumed_at"),
}


def test_every_migration_upgrades_a_first_version_database(db):
    """A ledger as 0001 made it (its tables and columns), upgraded by every migration in turn."""
    with db.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name not in FIRST_TABLES:
                conn.execute(text(f"DROP TABLE {table.name}"))
        conn.execute(text("DROP INDEX ix_results_cell"))
        conn.execute(text("CREATE UNIQUE INDEX ix_results_run_row ON results (run_id, row_index)"))
        for table, columns in LATER_COLUMNS.items():
            for column in columns:
                conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        conn.execute(text("DELETE FROM migrations WHERE name > '0001_initial'"))
        conn.execute(
            text(
                "INSERT INTO runs (kind, name, provider, model, connection, params, system_prompt, columns,"
                " input_name, input_hash, input_columns, concurrency, max_retries, status, total_rows, succeeded,"
                " failed, tokens_in, tokens_out, created_at) VALUES ('transform', '', 'custom', 'm', '{}', '{}',"
                " '', '[]', '', '', '[]', 1, 1, 'cancelled', 1, 0, 0, 0, 0, '2025-01-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO results (run_id, row_index, input, status, attempts, tokens_in, tokens_out)"
                " VALUES (1, 0, '{\"a\": 1}', 'pending', 0, 0, 0)"
            )
        )
    db.close()
    upgraded = Database(db.url)
    try:
        with upgraded.engine.connect() as conn:
            names = list(conn.scalars(text("SELECT name FROM migrations ORDER BY name")))
            schema = inspect(conn)
            tables = set(schema.get_table_names())
            indexes = {i["name"] for i in schema.get_indexes("results")}
            columns = {t: {c["name"] for c in schema.get_columns(t)} for t in LATER_COLUMNS}
        assert names == sorted(name for name, _ in MIGRATIONS)
        assert {t.name for t in Base.metadata.sorted_tables} <= tables
        assert "ix_results_cell" in indexes and "ix_results_run_row" not in indexes
        assert all(set(wanted) <= columns[t] for t, wanted in LATER_COLUMNS.items())
        assert upgraded.get_run(1).status == RunStatus.STOPPED  # 0003: "cancelled" is "stopped"
        [old] = upgraded.results(1)
        assert (old.step, old.arm, old.sample, old.input) == (0, 0, 0, {"a": 1})
        upgraded.record_results(1, [RowOutcome(old.id, RowStatus.SUCCEEDED, raw="a", calls=1, cache_key="k1")])
        assert upgraded.get_run(1).calls == 1 and upgraded.cached_replies(["k1"])["k1"].raw == "a"
        assert upgraded.results(1)[0].cached is False
    finally:
        upgraded.close()


def test_processes_opening_a_new_database_at_once_migrate_it_once(db_url):
    opened = at_once(6, lambda _i: Database(db_url))
    assert not [d for d in opened if isinstance(d, Exception)], opened
    with opened[0].engine.connect() as conn:
        names = list(conn.scalars(text("SELECT name FROM migrations")))
    assert sorted(names) == sorted(name for name, _ in MIGRATIONS)
    assert opened[1].create_run([{"a": 1}], provider="custom", model="m") == 1
    for database in opened:
        database.close()
