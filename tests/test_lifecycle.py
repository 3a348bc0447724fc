"""A run's life, with the ledger as the one truth: runs that cannot start leave nothing behind,
status changes are compare-and-set, control works across processes, money is counted once, and
what was sent is what was recorded. Processes are real (the CLI in a subprocess)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections import Counter
from datetime import timedelta

import pandas as pd
import pytest

from handai_db import Database, RowOutcome, RunStatus, owner_id, utcnow
from handai_engine import Engine, RunSettings
from handai_errors import RunStartError
from providers import Connection
from tests.helpers import PYTHON, ROOT, cli_env, start_cli, wait_until

pytestmark = pytest.mark.ledger_backends


def frame(n: int, prefix: str = "row") -> pd.DataFrame:
    return pd.DataFrame({"text": [f"{prefix} {i}" for i in range(n)]})


def custom(llm) -> Connection:
    return Connection("custom", api_key="test-key", base_url=llm.url)


# -- runs that cannot start ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("conn", "said"),
    [
        (Connection("custom", api_key="k"), "No base URL"),
        (Connection("openai", api_key=None), "OPENAI_API_KEY"),
    ],
)
def test_a_run_that_cannot_start_leaves_no_run_behind(engine, db, conn, said):
    with pytest.raises(RunStartError, match=said):
        engine.create_transform_run(frame(3), RunSettings(conn.provider, "m"), conn)
    with pytest.raises(RunStartError, match=said):
        engine.create_generate_run("people", 3, RunSettings(conn.provider, "m"), conn)
    assert db.list_runs() == []


def test_a_queued_run_whose_start_fails_is_failed_with_the_reason(engine, db, llm):
    run_id = engine.create_transform_run(frame(2), RunSettings("custom", "m"), custom(llm))
    with pytest.raises(RunStartError, match="No base URL"):
        engine.start(run_id, Connection("custom", api_key="k"))
    run = db.get_run(run_id)
    assert run.status == RunStatus.FAILED and "No base URL" in run.stop_reason
    assert db.active_runs() == []


# -- guarded status changes -------------------------------------------------------------------
def test_status_writes_are_compare_and_set(db):
    run_id = db.create_run([{"a": 1}], provider="custom", model="m")
    assert not db.set_run_status(run_id, RunStatus.COMPLETED)  # queued cannot complete
    db.claim_run(run_id)
    assert db.set_run_status(run_id, RunStatus.STOPPED)
    assert not db.finish_run(run_id, RunStatus.COMPLETED, None, 1.5)  # a late owner never un-stops it
    assert db.get_run(run_id).status == RunStatus.STOPPED
    assert db.get_run(run_id).active_seconds == 1.5  # the time it ran still counts
    assert not db.set_run_status(run_id, RunStatus.PAUSED)  # stopped → paused is not a move
    with pytest.raises(ValueError, match="only claim_run"):  # running is entered only with an owner
        db.set_run_status(run_id, RunStatus.RUNNING)
    assert db.get_run(run_id).status == RunStatus.STOPPED
    with pytest.raises(ValueError):
        db.set_run_status(run_id, RunStatus.COMPLETED, only_from=(RunStatus.PAUSED,))


def test_claiming_is_atomic_and_a_live_owner_is_named(db, tmp_path):
    run_id = db.create_run([{"a": 1}], provider="custom", model="m")
    other = Database(db.url)
    db.claim_run(run_id)
    with pytest.raises(RunStartError, match="already running in this process"):
        other.claim_run(run_id)
    db.update_run(run_id, owner="build-box:4242:feedface")  # another machine, fresh heartbeat
    with pytest.raises(RunStartError, match="process 4242 on build-box"):
        db.claim_run(run_id)
    other.close()


def test_a_restarted_container_is_not_taken_for_the_old_owner(db):
    """Same host, same pid (PID 1 again), another boot: judged by the heartbeat."""
    host, pid, _boot = owner_id().split(":")
    run_id = db.create_run([{"a": 1}], provider="custom", model="m")
    db.claim_run(run_id)
    db.update_run(run_id, owner=f"{host}:{pid}:0ldb00t0")
    assert db.mark_interrupted_runs() == []  # heartbeat fresh: maybe alive
    db.update_run(run_id, heartbeat_at=utcnow() - timedelta(minutes=5))
    assert db.mark_interrupted_runs() == [run_id]
    assert db.claim_run(run_id).owner == owner_id()


# -- control across processes -----------------------------------------------------------------
def _cli_transform(llm, tmp_path, rows: int, *extra: str) -> tuple[subprocess.Popen, Database]:
    data_dir = tmp_path / "shared"
    data_dir.mkdir(exist_ok=True)
    src = tmp_path / "in.csv"
    frame(rows, "cli").to_csv(src, index=False)
    env = cli_env(data_dir, HANDAI_CUSTOM_API_KEY="k")
    args = ["transform", str(src), "--prompt", "Echo", "--provider", "custom", "--model", "m"]
    proc = start_cli([*args, "--base-url", llm.url, *extra, "--output", str(tmp_path / "out.csv")], env)
    db_path = data_dir / "handai.db"
    wait_until(db_path.exists, 60, "the CLI to create its database")
    db = Database(f"sqlite:///{db_path}")
    return proc, db


def test_a_cli_run_paused_from_the_app_halts_and_resumes_without_resending(llm, tmp_path):
    llm.configure(latency_ms=60)
    proc, db = _cli_transform(llm, tmp_path, 400, "--concurrency", "8")
    app = Engine(db)
    try:
        run_id = wait_until(lambda: db.list_runs() and db.list_runs()[0].id, 30, "the CLI's run")
        wait_until(lambda: db.run_counts(run_id).succeeded >= 40, 60, "40 rows done by the CLI")
        with pytest.raises(RunStartError, match=f"process {proc.pid} on"):
            app.resume(run_id, custom(llm))  # refused: the CLI owns it
        assert app.pause(run_id)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 1, stderr
        assert f"runs resume {run_id}" in stderr
        run = db.get_run(run_id)
        assert run.status == RunStatus.PAUSED and "Paused by the user" in run.stop_reason
        sent = Counter(r.user for r in llm.requests() if r.status == 200)
        assert run.calls == len(llm.requests())  # every call the server saw is in the ledger
        assert db.run_counts(run_id).succeeded == len(sent)  # every reply received was recorded
        app.resume(run_id, custom(llm))
        assert app.wait(run_id, 120).status == RunStatus.COMPLETED
        again = Counter(r.user for r in llm.requests() if r.status == 200)
        assert len(again) == 400 and set(again.values()) == {1}, "a row was sent twice"
    finally:
        app.shutdown()
        db.close()


def test_a_run_in_the_app_is_stopped_by_the_cli(engine, db, llm, tmp_path):
    llm.configure(latency_ms=50)
    conn = custom(llm)
    run_id = engine.create_transform_run(frame(5000), RunSettings("custom", "m", concurrency=4), conn)
    engine.start(run_id, conn)
    wait_until(lambda: db.run_counts(run_id).succeeded >= 10, 30, "10 rows done")
    env = cli_env(tmp_path, HANDAI_DATABASE_URL=db.url)
    out = subprocess.run(
        [PYTHON, str(ROOT / "handai_cli.py"), "runs", "stop", str(run_id)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    final = engine.wait(run_id, 30)
    assert not engine.is_running(run_id)
    run = db.get_run(run_id)
    assert final.status == run.status == RunStatus.STOPPED
    assert run.stop_reason == "Stopped by the user from the command line."
    counts = db.run_counts(run_id)
    assert counts.pending > 0 and counts.succeeded == sum(1 for r in llm.requests() if r.status == 200)


def test_a_stop_while_calls_are_in_flight_records_their_replies(engine, db, llm):
    llm.configure(latency_ms=400)
    conn = custom(llm)
    run_id = engine.create_transform_run(frame(3), RunSettings("custom", "m", concurrency=3), conn)
    engine.start(run_id, conn)
    wait_until(lambda: engine.progress(run_id).in_flight == 3, 10, "three calls in flight")
    engine.stop(run_id)
    final = engine.wait(run_id, 30)
    assert final.status == RunStatus.STOPPED
    assert db.run_counts(run_id).succeeded == 3  # paid for, so kept
    assert db.get_run(run_id).calls == 3


# -- money ------------------------------------------------------------------------------------
def test_every_billed_call_is_counted_once_retries_and_unparseable_replies_included(engine, db, llm):
    db.set_setting("prices", {"custom/m": {"prompt": 1.0, "completion": 2.0}})
    conn = custom(llm)
    texts = ["fine one", "[[empty]] blank every time", "[[prose]] never JSON", "fine two"]
    settings = RunSettings("custom", "m", json_mode=True, max_retries=2, concurrency=1)
    run_id = engine.create_transform_run(pd.DataFrame({"text": texts}), settings, conn)
    engine.start(run_id, conn)
    live = engine.wait(run_id, 30)
    run = db.get_run(run_id)
    tries = Counter(json.loads(r.user)["text"] for r in llm.requests())
    assert tries == {"fine one": 1, "[[empty]] blank every time": 3, "[[prose]] never JSON": 1, "fine two": 1}
    assert run.calls == 6
    blank, prose = db.result(run_id, 1), db.result(run_id, 2)
    assert (blank.status, blank.error_kind, prose.error_kind) == ("failed", "empty_reply", "unparseable")
    fine = db.result(run_id, 0)
    assert blank.tokens_out >= 3 and blank.tokens_in > 2 * fine.tokens_in  # all three billed replies
    assert prose.tokens_out > 0 and prose.cost_usd > 0
    assert run.tokens_in == sum(r.tokens_in for r in db.results(run_id)) == live.tokens_in
    assert run.tokens_out == sum(r.tokens_out for r in db.results(run_id)) == live.tokens_out
    row_cost = sum(r.cost_usd or 0 for r in db.results(run_id))
    assert run.cost_usd == pytest.approx(row_cost) and live.cost_usd == pytest.approx(run.cost_usd)
    assert run.cost_usd == pytest.approx((run.tokens_in * 1.0 + run.tokens_out * 2.0) / 1e6)


def test_a_budget_pause_records_calls_in_flight_and_never_pays_twice(engine, db, llm):
    db.set_setting("prices", {"custom/m": {"prompt": 1000.0, "completion": 1000.0}})
    llm.configure(latency_ms=150)
    conn = custom(llm)
    settings = RunSettings("custom", "m", concurrency=8, budget_usd=0.2)
    run_id = engine.create_transform_run(frame(200), settings, conn)
    engine.start(run_id, conn)
    paused = engine.wait(run_id, 60)
    assert paused.status == RunStatus.PAUSED and "budget cap" in paused.stop_reason
    run = db.get_run(run_id)
    assert run.calls == len(llm.requests())  # calls in flight at the pause were recorded
    assert db.run_counts(run_id).succeeded == len(llm.requests())
    engine.update_settings(run_id, budget_usd=None)
    engine.resume(run_id, conn)
    assert engine.wait(run_id, 120).status == RunStatus.COMPLETED
    sent = Counter(r.user for r in llm.requests())
    assert len(sent) == 200 and set(sent.values()) == {1}


# -- what was sent ----------------------------------------------------------------------------
def test_resume_sends_the_recorded_system_message_and_parameters(engine, db, llm):
    conn = custom(llm)
    settings = RunSettings("custom", "m", system_prompt="Summarise.", temperature=0.3, concurrency=2)
    run_id = engine.create_transform_run(frame(4), settings, conn)
    run = db.get_run(run_id)
    assert run.params["system_message"] == "Summarise." and run.params["sent"] == {"temperature": 0.3}
    # As recorded by an earlier version whose system message differed from today's build:
    db.update_run(run_id, params={**run.params, "system_message": "Summarise. (as recorded)"})
    engine.start(run_id, conn)
    engine.wait(run_id, 30)
    assert {r.system for r in llm.requests()} == {"Summarise. (as recorded)"}


def test_a_cloned_run_records_the_endpoint_it_really_uses(engine, db, llm):
    conn = custom(llm)
    run_id = engine.create_transform_run(
        frame(2), RunSettings("custom", "m"), Connection("custom", "k", "http://127.0.0.1:9/v1")
    )
    clone = engine.clone_run(run_id, conn)
    engine.wait(clone, 30)
    assert db.get_run(clone).connection["base_url"] == llm.url
    assert db.get_run(clone).status == RunStatus.COMPLETED


def test_a_finished_job_drops_its_connection(engine, llm):
    conn = custom(llm)
    run_id = engine.create_transform_run(frame(2), RunSettings("custom", "m"), conn)
    engine.start(run_id, conn)
    engine.wait(run_id, 30)
    job = engine._jobs[run_id]
    assert job.conns is None and job.pool is None


def test_the_owner_id_names_host_pid_and_boot():
    host, pid, boot = owner_id().split(":")
    assert host == socket.gethostname() and pid == str(os.getpid()) and len(boot) == 8
    assert json.dumps(owner_id())


# -- refused starts write nothing; dead owners are judged on read ------------------------------
def _owned_elsewhere_with_a_failed_row(db: Database) -> int:
    """A run that a live process on another machine runs (fresh heartbeat), one row failed."""
    run_id = db.create_run([{"text": "a"}, {"text": "b"}], provider="custom", model="m", columns=["text"])
    db.claim_run(run_id)
    first = db.results(run_id)[0]
    db.record_results(run_id, [RowOutcome(first.id, "failed", error_kind="server_error", error_message="boom")])
    db.update_run(run_id, owner="build-box:4242:feedface", heartbeat_at=utcnow())
    return run_id


def test_a_refused_retry_or_settings_change_writes_nothing(engine, db, llm):
    run_id = _owned_elsewhere_with_a_failed_row(db)
    logged = [entry.message for entry in db.logs(run_id)]
    with pytest.raises(RunStartError, match="process 4242 on build-box"):
        engine.retry_failed(run_id, custom(llm), model="x")
    with pytest.raises(RunStartError, match="process 4242 on build-box"):
        engine.resume(run_id, custom(llm), batch=False)
    with pytest.raises(RunStartError, match="process 4242 on build-box"):
        engine.update_settings(run_id, model="x")
    run = db.get_run(run_id)
    assert (run.model, run.status, run.owner) == ("m", RunStatus.RUNNING, "build-box:4242:feedface")
    assert "batch" not in run.params
    failed = db.results(run_id)[0]
    assert (failed.status, failed.error_message) == ("failed", "boom")
    assert [entry.message for entry in db.logs(run_id)] == logged
    assert not any("Settings changed" in m for m in logged)
    assert llm.requests() == []


def test_a_run_whose_owner_died_is_interrupted_when_its_progress_is_read(engine, db):
    run_id = db.create_run([{"text": "a"}], provider="custom", model="m", columns=["text"])
    db.claim_run(run_id)
    db.update_run(run_id, owner="other-container:1:deadbeef", heartbeat_at=utcnow())
    assert engine.progress(run_id).status == RunStatus.RUNNING  # heartbeat fresh: maybe alive
    db.update_run(run_id, heartbeat_at=utcnow() - timedelta(minutes=5))
    progress = engine.progress(run_id)
    run = db.get_run(run_id)
    assert progress.status == run.status == RunStatus.INTERRUPTED
    assert "stopped before it finished" in run.stop_reason
    assert not db.interrupt_if_orphaned(run_id)  # once


def test_an_orphan_check_leaves_a_run_claimed_meanwhile_alone(db):
    run_id = db.create_run([{"text": "a"}], provider="custom", model="m")
    db.claim_run(run_id)
    db.update_run(run_id, owner="gone:7:deadbeef", heartbeat_at=utcnow() - timedelta(minutes=5))
    before = db.get_run(run_id)
    db.update_run(run_id, owner="alive:8:cafecafe", heartbeat_at=utcnow())  # taken over meanwhile
    assert not db.interrupt_if_orphaned(run_id)
    assert db.get_run(run_id).status == RunStatus.RUNNING and before.owner == "gone:7:deadbeef"


def test_the_time_a_killed_run_ran_counts_once(db):
    run_id = db.create_run([{"text": "a"}], provider="custom", model="m")
    db.claim_run(run_id)
    killed_at = utcnow() - timedelta(minutes=10)  # resumed, beat for 5 s, then SIGKILLed
    db.update_run(
        run_id,
        owner="gone:7:deadbeef",
        resumed_at=killed_at - timedelta(seconds=5),
        heartbeat_at=killed_at,
        active_seconds=2.0,  # from an earlier stretch
    )
    assert db.mark_interrupted_runs() == [run_id]
    run = db.get_run(run_id)
    assert run.status == RunStatus.INTERRUPTED and run.resumed_at is None
    assert run.active_seconds == pytest.approx(7.0)
    assert run.elapsed_seconds() == pytest.approx(7.0)
    assert db.mark_interrupted_runs() == [] and db.get_run(run_id).active_seconds == pytest.approx(7.0)


def test_a_dead_owners_run_taken_over_directly_keeps_its_time(db):
    run_id = db.create_run([{"text": "a"}], provider="custom", model="m")
    db.claim_run(run_id)
    killed_at = utcnow() - timedelta(minutes=10)
    db.update_run(run_id, owner="gone:7:deadbeef", resumed_at=killed_at - timedelta(seconds=3), heartbeat_at=killed_at)
    run = db.claim_run(run_id)  # still `running` in the ledger: taken over without a start-up sweep
    assert run.owner == owner_id() and run.active_seconds == pytest.approx(3.0)


def test_a_refused_cli_resume_with_a_new_model_records_nothing(db, tmp_path):
    run_id = _owned_elsewhere_with_a_failed_row(db)
    env = cli_env(tmp_path, HANDAI_DATABASE_URL=db.url, HANDAI_CUSTOM_API_KEY="k")
    for command in ("resume", "retry-failed"):
        out = subprocess.run(
            [PYTHON, str(ROOT / "handai_cli.py"), "runs", command, str(run_id), "--model", "x"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 2 and "process 4242 on build-box" in out.stderr, (out.returncode, out.stderr)
    run = db.get_run(run_id)
    assert (run.model, run.owner) == ("m", "build-box:4242:feedface")
    assert not any("Settings changed" in entry.message for entry in db.logs(run_id))
