"""The multi-model commands (compare, consensus, pipeline) as a script runs them: real files, the fake
server answering differently per model; their output columns are a contract. `handai_cli.main` runs
in this process (`run_cli`); the run killed mid-way is a process of its own, and so is its resume."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter

import pandas as pd
import pytest

from handai_db import Database
from handai_io import read_table
from tests.fake_llm_server import disagrees
from tests.helpers import cli_env, run_cli, start_cli, wait_until

ROWS = [f"review {i}: {'great' if i % 2 else 'poor'} value" for i in range(12)]


@pytest.fixture
def env(tmp_path):
    return cli_env(tmp_path / "data", HANDAI_CUSTOM_API_KEY="k")


@pytest.fixture
def src(tmp_path):
    path = tmp_path / "in.csv"
    pd.DataFrame({"id": [f"{i:03}" for i in range(len(ROWS))], "text": ROWS}).to_csv(path, index=False)
    return path


def sent(text: str) -> str:
    """The user message a row sends with --columns text."""
    return json.dumps({"text": text}, ensure_ascii=False)


def test_compare_writes_inputs_then_a_column_per_model_then_statuses(llm, env, src, tmp_path):
    out = tmp_path / "out.csv"
    args = ["compare", str(src), "--prompt", "Sentiment?", "--columns", "text", "--base-url", llm.url]
    done = run_cli([*args, "--model", "custom:fake-small", "--model", "custom:fake-alt", "--output", str(out)], env)
    assert done.returncode == 0, done.stderr
    df = read_table(out).df
    assert list(df.columns) == [
        "id",
        "text",
        "fake-small",
        "fake-alt",
        "fake-small_status",
        "fake-small_error",
        "fake-alt_status",
        "fake-alt_error",
        "all_agree",
    ]
    assert df["id"].tolist()[:2] == ["000", "001"]  # input cells kept exactly
    expected_agree = [not disagrees("fake-alt", sent(t)) for t in ROWS]
    assert df["all_agree"].astype(str).tolist() == [str(a) for a in expected_agree]
    assert 0 < sum(expected_agree) < len(ROWS)  # the server really disagrees on some rows
    share = sum(expected_agree) / len(ROWS)
    assert f"Percent agreement: {share:.1%} over 12 of 12 rows" in done.stdout
    assert "model fake-alt: 12 ok 0 failed" in done.stdout
    models = Counter(r.model for r in llm.requests())
    assert models == {"fake-small": 12, "fake-alt": 12}


def test_consensus_columns_and_a_judge_only_where_the_coders_disagree(llm, env, src, tmp_path):
    out = tmp_path / "out.jsonl"
    args = ["consensus", str(src), "--prompt", "Sentiment?", "--columns", "text", "--base-url", llm.url]
    args += ["--model", "custom:fake-small", "--model", "custom:fake-alt", "--judge", "custom:fake-contrarian"]
    done = run_cli([*args, "--output", str(out)], env)
    assert done.returncode == 0, done.stderr
    df = read_table(out).df
    assert list(df.columns)[:7] == ["id", "text", "fake-small", "fake-alt", "consensus", "agreed", "judge_reason"]
    disagreeing = [t for t in ROWS if disagrees("fake-alt", sent(t))]
    judged = [r.user for r in llm.requests() if r.model == "fake-contrarian"]
    assert len(judged) == len(disagreeing) > 0
    assert all("The answers to judge:" in u and "Answer 2:" in u for u in judged)
    rows = df.set_index("text")
    for text in ROWS:
        row = rows.loc[text]
        if text in disagreeing:
            assert str(row["agreed"]).lower() == "false" and row["decided_by"] == "judge" and row["judge_reason"]
        else:
            assert str(row["agreed"]).lower() == "true" and row["decided_by"] == "unanimous"
            assert row["consensus"] == row["fake-small"]


def test_pipeline_spec_runs_steps_and_skips_rows_where_run_if_is_false(llm, env, src, tmp_path):
    spec = {
        "steps": [
            {"name": "first", "model": "custom:fake-small", "instruction": "Echo", "columns": ["text"]},
            {
                "name": "second",
                "model": "custom:fake-alt",
                "instruction": "Summarise",
                "template": "Earlier: {first}",
                "run_if": "contains(text, 'great')",
            },
        ]
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    out = tmp_path / "out.csv"
    done = run_cli(["pipeline", str(path), str(src), "--base-url", llm.url, "--output", str(out)], env)
    assert done.returncode == 0, done.stderr
    df = read_table(out).df
    assert list(df.columns) == ["id", "text", "first", "second", "first_status", "first_error", "second_status",
                                "second_error"]  # fmt: skip
    great = df["text"].str.contains("great")
    assert (df.loc[great, "second_status"] == "succeeded").all()
    assert (df.loc[~great, "second_status"] == "skipped").all()
    assert df.loc[~great, "second_error"].str.contains("run_if").all()
    second = [r.user for r in llm.requests() if r.model == "fake-alt"]
    assert sorted(second) == sorted(f"Earlier: Reply to: {sent(t)}" for t in ROWS if "great" in t)
    assert "step second: 6 ok 0 failed 6 skipped" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "IN", "--prompt", "p", "--model", "fake-small", "--model", "custom:x"], "is not PROVIDER:MODEL"),
        (["compare", "IN", "--prompt", "p", "--model", "nope:x", "--model", "custom:x"], "Unknown provider 'nope'"),
        (["compare", "IN", "--prompt", "p", "--model", "custom:x"], "Compare takes 2 to 8 models; 1 chosen"),
        (["consensus", "IN", "--prompt", "p", "--model", "custom:a", "--samples", "6"], "2 to 5 coders"),
        (["pipeline", "SPEC", "IN"], "not valid JSON"),
    ],
)
def test_bad_multi_model_input_is_one_line_and_exit_2(llm, env, src, tmp_path, args, message):
    spec = tmp_path / "spec.json"
    spec.write_text("{not json")
    args = [str(src) if a == "IN" else str(spec) if a == "SPEC" else a for a in args]
    done = run_cli([*args, "--base-url", llm.url, "--output", str(tmp_path / "out.csv")], env)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert llm.requests() == []


def test_a_killed_three_model_run_with_a_judge_resumes_sending_each_cell_once(llm, env, src, tmp_path):
    llm.configure(latency_ms=150)
    models = ["--model", "custom:fake-small", "--model", "custom:fake-alt", "--model", "custom:fake-contrarian"]
    args = ["consensus", str(src), "--prompt", "Sentiment?", "--columns", "text", "--base-url", llm.url, *models]
    args += ["--judge", "custom:fake-alt", "--judge-always", "--concurrency", "2", "--no-cache"]
    proc = start_cli([*args, "--output", str(tmp_path / "first.csv")], env)
    ledger = None
    try:
        wait_until(lambda: len(llm.requests()) >= 10, 60, "the first calls")
        llm.configure(hold=True)  # no reply leaves the server from here until the kill
        ledger = Database(f"sqlite:///{tmp_path / 'data' / 'handai.db'}")  # the CLI's (HANDAI_DATA_DIR)

        def all_written() -> bool:
            """Every reply the server has sent is in the ledger: the kill loses only calls in flight."""
            served = sum(r.status == 200 for r in llm.requests())
            return ledger.run_counts(1).succeeded >= served

        wait_until(all_written, 30, "the replies received before the hold to be written")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        if ledger is not None:
            ledger.close()
    at_kill = len(llm.requests())
    llm.configure(hold=False)  # the held calls are answered, to nobody, and logged
    wait_until(lambda: llm.in_flight() == 0, 10, "the killed run's calls in flight to be logged")
    assert at_kill < 4 * len(ROWS)  # killed mid-run
    out = tmp_path / "out.csv"
    resume = start_cli(["runs", "resume", "1", "--output", str(out)], env)
    _stdout, stderr = resume.communicate(timeout=180)
    assert resume.returncode == 0, stderr
    df = read_table(out).df
    statuses = [c for c in df.columns if c.endswith("_status")]
    assert len(statuses) == 4 and (df[statuses] == "succeeded").all().all()
    per_cell = Counter((r.model, r.user) for r in llm.requests() if r.status == 200)
    coders = [(m, sent(t)) for t in ROWS for m in ("fake-small", "fake-alt", "fake-contrarian")]
    assert all(per_cell[c] >= 1 for c in coders)
    # sent twice: at most the calls in flight at the kill (2 per model and judge), and replies
    # received in the writer's last 20 ms (a SIGKILL loses those)
    twice = {k: n for k, n in per_cell.items() if n > 1}
    assert sum(n - 1 for n in per_cell.values()) <= 2 * 4 + 2, (at_kill, len(twice))
    assert len(df) == len(ROWS) and df["decided_by"].eq("judge").all()


def test_a_compare_run_on_a_dead_url_is_retried_at_the_right_one_with_a_changed_model(llm, env, src, tmp_path):
    dead = "http://127.0.0.1:9/v1"
    args = [
        "compare",
        str(src),
        "--prompt",
        "Sentiment?",
        "--columns",
        "text",
        "--base-url",
        dead,
        "--max-retries",
        "0",
    ]
    first = run_cli(
        [*args, "--model", "custom:fake-small", "--model", "custom:fake-alt", "-o", str(tmp_path / "a.csv")], env
    )
    assert first.returncode == 1 and llm.requests() == []
    out = tmp_path / "out.csv"
    fixed = ["--base-url", llm.url, "--arm-model", "fake-alt=fake-contrarian"]
    done = run_cli(["runs", "retry-failed", "1", *fixed, "--output", str(out)], env)
    assert done.returncode == 0, done.stderr
    assert Counter(r.model for r in llm.requests()) == {"fake-small": len(ROWS), "fake-contrarian": len(ROWS)}
    df = read_table(out).df
    assert (df["fake-alt_status"] == "succeeded").all()  # the column keeps the arm's name
    assert df["fake-alt"].str.startswith("Contrary reply to:").all()
    bad = run_cli(["runs", "resume", "1", "--arm-model", "nobody=x"], env)
    assert bad.returncode == 2 and "No model named nobody" in bad.stderr
