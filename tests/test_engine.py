"""The worker pool against the fake server over real HTTP, with a real SQLite ledger."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter

import pandas as pd
import pytest

from handai_db import Database, RunStatus
from handai_engine import Engine, RunSettings
from handai_prompts import TemplateError
from providers import Connection
from tests.helpers import cli_env, run_cli, start_cli, wait_until


def frame(n: int, prefix: str = "row") -> pd.DataFrame:
    return pd.DataFrame({"id": [f"{i:05d}" for i in range(n)], "text": [f"{prefix} {i} é" for i in range(n)]})


def custom(llm, key: str = "test-key") -> Connection:
    return Connection("custom", api_key=key, base_url=llm.url)


def run_frame(engine: Engine, llm, df: pd.DataFrame, **kw) -> int:
    conn = kw.pop("conn", None) or custom(llm)
    settings = RunSettings(
        provider=conn.provider, model=kw.pop("model", "fake-small"), system_prompt="Summarise.", **kw
    )
    run_id = engine.create_transform_run(df, settings, conn, input_name="t.csv")
    engine.start(run_id, conn)
    engine.wait(run_id, 120)
    return run_id


def test_thousand_rows_each_get_their_own_answer_exactly_once(engine, db, llm):
    llm.configure(latency_ms=5)
    run_id = run_frame(engine, llm, frame(1000), concurrency=50, columns=["text"])
    progress = engine.progress(run_id)
    assert (progress.status, progress.succeeded, progress.failed) == ("completed", 1000, 0)
    sent = Counter(r.user for r in llm.requests())
    assert len(sent) == 1000 and set(sent.values()) == {1}
    for result in db.results(run_id):
        expected_user = json.dumps({"text": f"row {result.row_index} é"}, ensure_ascii=False)
        assert result.request == expected_user
        assert result.raw == f"Reply to: {expected_user}"
        assert result.status == "succeeded" and result.attempts == 1
    out = db.results_frame(run_id)
    assert list(out.columns) == ["id", "text", "ai_output", "ai_status", "ai_error"]
    assert out["id"].iloc[7] == "00007" and out["ai_output"].iloc[7].endswith('"row 7 é"}')


def test_rate_limit_storm_ends_with_zero_failed_rows(engine, db, llm):
    llm.configure(rpm=1200)  # 20 requests per second, far below what 40 workers ask for
    run_id = run_frame(engine, llm, frame(120), concurrency=40, max_retries=0)
    progress = engine.progress(run_id)
    statuses = Counter(r.status for r in llm.requests())
    assert statuses[429] > 0, "the server never rate-limited: the test proves nothing"
    assert (progress.status, progress.succeeded, progress.failed) == ("completed", 120, 0)


def test_rate_limit_lowers_concurrency_visibly(db, llm):
    llm.configure(rpm=600, latency_ms=20)
    eng = Engine(db)
    try:
        conn = custom(llm)
        run_id = eng.create_transform_run(frame(80), RunSettings("custom", "fake-small", concurrency=32), conn)
        eng.start(run_id, conn)
        seen = set()

        def finished() -> bool:
            seen.add(eng.progress(run_id).concurrency)
            return not eng.is_running(run_id)

        wait_until(finished, 120, "the rate-limited run to finish")
        assert min(seen) < 32
        assert eng.progress(run_id).failed == 0
    finally:
        eng.shutdown()


def test_wrong_key_stops_the_run_within_the_first_rows(engine, db, llm):
    llm.configure(valid_keys=["sk-or-v1-right"], auth_style="openrouter")
    key = "sk-proj-WRONGKEY1234567890abcdef"
    conn = Connection("openrouter", api_key=key, base_url=llm.url)
    run_id = run_frame(engine, llm, frame(300), concurrency=4, conn=conn, model="openai/gpt-4o-mini")
    run = db.get_run(run_id)
    assert run.status == "failed"
    assert "OpenRouter did not accept this API key" in run.stop_reason
    assert "This looks like an OpenAI key; OpenRouter keys start with sk-or-" in run.stop_reason
    assert key not in run.stop_reason
    assert len(llm.requests()) <= 8
    counts = db.run_counts(run_id)
    assert counts.pending >= 290 and counts.errors_by_kind == {"invalid_key": counts.failed}


def test_key_string_never_reaches_the_database_file(engine, db, llm, tmp_path):
    key = "sk-proj-SECRETSECRETSECRET0123456789"
    llm.configure(valid_keys=["other"], auth_style="openai")
    run_frame(engine, llm, frame(20), concurrency=2, conn=Connection("openai", api_key=key, base_url=llm.url))
    good = "sk-proj-GOODSECRETGOODSECRET987654"
    llm.configure(valid_keys=[good])
    run_frame(engine, llm, frame(20), concurrency=2, conn=Connection("openai", api_key=good, base_url=llm.url))
    db.close()
    for path in tmp_path.glob("ledger.db*"):
        blob = path.read_bytes()
        assert key.encode() not in blob and good.encode() not in blob, path
        assert b"SECRETSECRET" not in blob and b"GOODSECRET" not in blob, path


def test_retries_recover_flaky_rows_and_permanent_errors_fail_at_once(engine, db, llm):
    df = pd.DataFrame({"text": ["ok", "[[flaky:2]] a", "[[error:400]] b", "[[empty]] c", "No", "[[context]] d"]})
    run_id = run_frame(engine, llm, df, concurrency=3, max_retries=3, row_template="{text}")
    rows = {r.row_index: r for r in db.results(run_id)}
    assert rows[0].status == "succeeded"
    assert rows[1].status == "succeeded" and rows[1].attempts == 3
    assert (rows[2].status, rows[2].error_kind, rows[2].attempts) == ("failed", "bad_request", 1)
    assert (rows[3].status, rows[3].error_kind, rows[3].attempts) == ("failed", "empty_reply", 4)
    assert rows[4].status == "succeeded" and rows[4].raw == "Reply to: No"
    assert (rows[5].error_kind, rows[5].attempts) == ("context_too_long", 1)
    assert "context window" in rows[5].error_message


def test_short_answers_are_answers_not_empty_replies(engine, db, llm):
    df = pd.DataFrame({"text": ["4", "OK", "No"]})
    run_id = run_frame(engine, llm, df, row_template="{text}")
    assert [r.status for r in db.results(run_id)] == ["succeeded"] * 3


def test_json_mode_expands_fields_into_columns(engine, db, llm):
    schema = {"fields": {"sentiment": {"type": "string", "description": "pos/neg"}, "score": {"type": "integer"}}}
    run_id = run_frame(engine, llm, frame(5), output_schema=schema, columns=["text"])
    out = db.results_frame(run_id)
    assert list(out.columns) == ["id", "text", "sentiment", "score", "ai_status", "ai_error"]
    assert out["sentiment"].iloc[0].startswith("sentiment of")
    assert out["score"].tolist() == [
        len(json.dumps({"text": f"row {i} é"}, ensure_ascii=False)) + 1
        for i in range(5)  # field index 1
    ]


def test_template_with_a_missing_column_is_an_error_before_the_run(engine, llm):
    with pytest.raises(TemplateError, match=r"\{nope\}"):
        engine.create_transform_run(frame(3), RunSettings("custom", "m", row_template="{text} {nope}"), custom(llm))
    assert llm.requests() == []


def test_cancel_then_resume_runs_only_rows_not_yet_succeeded(engine, db, llm):
    llm.configure(latency_ms=30)
    conn = custom(llm)
    run_id = engine.create_transform_run(frame(200), RunSettings("custom", "m", concurrency=4), conn)
    engine.start(run_id, conn)
    wait_until(lambda: engine.progress(run_id).succeeded >= 20, 30, "20 rows to succeed")
    engine.pause(run_id)
    engine.wait(run_id, 10)
    assert db.get_run(run_id).status == "paused"
    succeeded_before = {r.request for r in db.results(run_id, statuses=["succeeded"])}
    seen_before = len(llm.requests())
    assert 20 <= len(succeeded_before) < 200
    engine.resume(run_id, conn)
    engine.wait(run_id, 60)
    assert db.get_run(run_id).status == "completed"
    resent = [r.user for r in llm.requests()[seen_before:] if r.user in succeeded_before]
    assert resent == []
    assert db.run_counts(run_id).succeeded == 200


def test_retry_failed_with_a_changed_model_sends_the_new_model_and_records_it(engine, db, llm):
    llm.configure(strict_models=True, models=["good-model"])
    conn = custom(llm)
    run_id = engine.create_transform_run(frame(6), RunSettings("custom", "retired-model", max_retries=0), conn)
    engine.start(run_id, conn)
    engine.wait(run_id, 30)
    counts = db.run_counts(run_id)
    assert counts.succeeded == 0 and counts.failed + counts.pending == 6  # early stop leaves some pending
    assert {r.model for r in llm.requests()} == {"retired-model"}
    before = len(llm.requests())
    engine.retry_failed(run_id, conn, model="good-model", temperature=0.2)
    engine.wait(run_id, 30)
    retried = llm.requests()[before:]
    assert {r.model for r in retried} == {"good-model"} and len(retried) == 6
    run = db.get_run(run_id)
    assert (run.status, run.model, db.run_counts(run_id).succeeded) == ("completed", "good-model", 6)
    assert run.params["temperature"] == 0.2 and run.params["sent"]["temperature"] == 0.2
    assert any("model='good-model'" in line.message for line in db.logs(run_id))


def test_progress_snapshot_has_the_live_figures(engine, llm):
    llm.configure(latency_ms=20)
    conn = custom(llm)
    run_id = engine.create_transform_run(frame(100), RunSettings("custom", "m", concurrency=8), conn)
    engine.start(run_id, conn)
    p = wait_until(lambda: (q := engine.progress(run_id)).done >= 10 and q, 30, "10 rows done")
    assert p.live and p.total == 100 and 0 < p.done < 100
    assert p.rows_per_s > 0 and p.eta_s is not None and p.concurrency == 8
    final = engine.wait(run_id, 30)
    assert final.status == "completed" and final.tokens_in > 0 and final.tokens_out > 0


def test_dead_endpoint_stops_with_one_clear_reason(engine, db):
    conn = Connection("custom", api_key="k", base_url="http://127.0.0.1:9/v1")
    run_id = engine.create_transform_run(frame(50), RunSettings("custom", "m", concurrency=3, max_retries=1), conn)
    engine.start(run_id, conn)
    engine.wait(run_id, 60)
    run = db.get_run(run_id)
    assert run.status == "failed" and "Could not reach http://127.0.0.1:9/v1" in run.stop_reason


def test_mark_interrupted_runs_only_touches_dead_owners(db):
    run_id = db.create_run([{"a": 1}], provider="custom", model="m")
    db.claim_run(run_id)
    assert db.mark_interrupted_runs() == []  # owned by this live process
    db.update_run(run_id, owner="somehost-that-is-not-here:1:abc")  # fresh heartbeat: alive
    assert db.mark_interrupted_runs() == []
    db.update_run(run_id, owner=f"{os.uname().nodename}:999999:abc")  # same host, pid gone
    assert db.mark_interrupted_runs() == [run_id]
    assert db.get_run(run_id).status == "interrupted"


def test_sigkill_mid_run_resumes_with_no_row_lost_or_resent(llm, tmp_path):
    llm.configure(latency_ms=40)
    n = 1200  # about 8 s of calls at 6 in flight: the kill lands mid-run even on a loaded machine
    src = tmp_path / "in.csv"
    frame(n).to_csv(src, index=False)
    data_dir = tmp_path / "data"
    env = cli_env(data_dir, HANDAI_CUSTOM_API_KEY="k")
    common = ["--provider", "custom", "--model", "m", "--base-url", llm.url, "--concurrency", "6"]
    proc = start_cli(["transform", str(src), "--prompt", "Echo", *common, "--output", str(tmp_path / "o.csv")], env)
    wait_until((data_dir / "handai.db").exists, 60, "the CLI to create its database")
    db = Database(f"sqlite:///{data_dir / 'handai.db'}")

    def sixty_done() -> bool:
        runs = db.list_runs()
        return bool(runs) and db.run_counts(runs[0].id).succeeded >= 60

    wait_until(sixty_done, 60, "60 rows done by the CLI")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    run_id = db.list_runs()[0].id
    assert db.get_run(run_id).status == "running"
    succeeded = {r.request for r in db.results(run_id, statuses=["succeeded"])}
    assert 60 <= len(succeeded) < n
    killed = db.get_run(run_id)
    assert db.mark_interrupted_runs() == [run_id]
    ran = (killed.heartbeat_at - killed.resumed_at).total_seconds()
    assert ran > 0 and db.get_run(run_id).active_seconds == pytest.approx(ran)  # the killed stretch counts
    seen = len(llm.requests())
    out = tmp_path / "resumed.jsonl"
    resume = start_cli(["runs", "resume", str(run_id), "--output", str(out), "--concurrency", "48"], env)
    stdout, stderr = resume.communicate(timeout=120)
    assert resume.returncode == 0, stderr
    after = llm.requests()[seen:]
    assert not [r.user for r in after if r.user in succeeded], "a row was sent again after it succeeded"
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [f"{i:05d}" for i in range(n)]
    assert all(r["ai_status"] == "succeeded" for r in rows)
    assert all(r["ai_output"].startswith("Reply to: ") for r in rows)
    assert db.run_counts(run_id).succeeded == n
    db.close()


def test_openai_key_for_openrouter_is_flagged_before_any_request(llm, tmp_path):
    src = tmp_path / "in.csv"
    frame(3).to_csv(src, index=False)
    llm.configure(valid_keys=["sk-or-v1-good"], auth_style="openrouter")
    env = cli_env(tmp_path / "d", OPENROUTER_API_KEY="sk-proj-abcdefghijklmnop1234")
    done = run_cli(
        [
            "transform",
            str(src),
            "--prompt",
            "x",
            "--provider",
            "openrouter",
            "--model",
            "openai/gpt-4o-mini",
            "--base-url",
            llm.url,
            "--output",
            str(tmp_path / "o.csv"),
        ],
        env,
    )
    stderr = done.stderr
    first = stderr.strip().splitlines()[0]
    assert "This looks like an OpenAI key; OpenRouter keys start with sk-or-" in first
    assert done.returncode == 1
    assert "OpenRouter did not accept this API key" in stderr
    assert "abcdefghijklmnop1234" not in stderr
    assert "Traceback" not in stderr


def test_backoff_is_jittered_exponential_and_capped():
    from handai_engine import backoff_delay

    for attempt in range(1, 12):
        delays = [backoff_delay(attempt, base=0.5, cap=30.0) for _ in range(200)]
        assert min(delays) >= 0.25 and max(delays) <= min(30.0, 0.5 * 2**attempt) + 0.25
        assert len(set(delays)) > 150  # jittered, so retries of many rows spread out


def test_two_processes_run_jobs_on_one_database_at_once(llm, tmp_path):
    llm.configure(latency_ms=10)
    data_dir = tmp_path / "shared"
    data_dir.mkdir()
    src = tmp_path / "in.csv"
    frame(300, "cli").to_csv(src, index=False)
    env = cli_env(data_dir, HANDAI_CUSTOM_API_KEY="k")
    proc = start_cli(
        [
            "transform",
            str(src),
            "--prompt",
            "Echo",
            "--provider",
            "custom",
            "--model",
            "m",
            "--base-url",
            llm.url,
            "--concurrency",
            "16",
            "--output",
            str(tmp_path / "o.csv"),
        ],
        env,
    )
    db = Database(f"sqlite:///{data_dir / 'handai.db'}")
    eng = Engine(db)
    try:
        run_id = run_frame(eng, llm, frame(300, "app"), concurrency=16)
        _, stderr = proc.communicate(timeout=120)
    finally:
        eng.shutdown()
    assert proc.returncode == 0, stderr
    assert "locked" not in stderr.lower()
    runs = db.list_runs()
    assert len(runs) == 2 and {r.status for r in runs} == {"completed"}
    assert [db.run_counts(r.id).succeeded for r in runs] == [300, 300]
    assert db.get_run(run_id).succeeded == 300
    db.close()


def test_run_counts_on_the_run_record_are_live_mid_run(engine, db, llm):
    llm.configure(latency_ms=30)
    conn = custom(llm)
    run_id = engine.create_transform_run(frame(100), RunSettings("custom", "m", concurrency=4), conn)
    engine.start(run_id, conn)
    wait_until(lambda: db.get_run(run_id).succeeded >= 20, 30, "the run record to count 20 rows mid-run")
    assert db.get_run(run_id).succeeded < 100
    engine.wait(run_id, 30)
    assert db.get_run(run_id).succeeded == 100


def test_a_ledger_that_refuses_writes_fails_the_run_and_stops_sending(engine, db, llm):
    """A write the database refuses (here a real SQLite trigger) halts the run at once and ends it
    failed with the reason, instead of leaving it "running" while calls go on unrecorded."""
    llm.configure(latency_ms=20)
    conn = custom(llm)
    run_id = engine.create_transform_run(frame(2000), RunSettings("custom", "m", concurrency=4), conn)
    with db.engine.begin() as c:
        c.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE UPDATE OF status ON results WHEN NEW.status = 'succeeded' "
            "BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
        )
    engine.start(run_id, conn)
    final = engine.wait(run_id, 30)
    run = db.get_run(run_id)
    assert final.status == run.status == RunStatus.FAILED
    assert "The run database refused a write" in run.stop_reason and "disk says no" in run.stop_reason
    assert len(llm.requests()) < 100, "the run went on sending after the ledger refused its answers"


def test_a_generate_runs_form_is_recorded_whole(engine, db, llm):
    """Description (in full), cycling variables and template name load back into the page."""
    description = "Short customer complaints about late deliveries. " * 10  # longer than the run's name
    variables = {"topic": ["billing", "login"], "tone": ["angry", "calm", "dry"]}
    conn = custom(llm)
    settings = RunSettings("custom", "fake-small", json_mode=True)
    run_id = engine.create_generate_run(description, 3, settings, conn, variables=variables, template="reviews")
    params = db.get_run(run_id).params
    assert len(description) > 200 and db.get_run(run_id).input_name == description[:200]
    assert (params["description"], params["variables"], params["template"]) == (description, variables, "reviews")
    engine.update_settings(run_id, temperature=0.2)  # an edit keeps the form's record
    assert db.get_run(run_id).params["description"] == description
    free = engine.create_generate_run("People.", 2, RunSettings("custom", "fake-small"), conn)
    assert (db.get_run(free).params["variables"], db.get_run(free).params["template"]) == ({}, None)
