"""`--batch` on the command line: submit and return (`--no-wait`), see the batch in `runs list`,
collect with `runs resume`; and `compare --batch` waiting for its results."""

from __future__ import annotations

import pandas as pd

from tests.helpers import cli_env, run_cli

KEY = "sk-test-" + "a" * 40


def test_transform_batch_no_wait_then_runs_list_and_resume_collects(tmp_path, llm):
    env = cli_env(tmp_path / "data", OPENAI_API_KEY=KEY, HANDAI_BATCH_POLL_SECONDS="0.02")
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    pd.DataFrame({"text": [f"note {i}" for i in range(5)]}).to_csv(source, index=False)
    common = ["--provider", "openai", "--model", "gpt-4o-mini", "--base-url", llm.url]
    submitted = run_cli(
        ["transform", str(source), "--prompt", "Tag.", *common, "--batch", "--no-wait", "-o", str(out)], env
    )
    assert submitted.returncode == 0, submitted.stderr
    [batch_id] = [e.id for e in llm.llm.batches.created()]
    assert f"run 1: batch {batch_id} (5 requests)" in submitted.stdout
    assert "runs resume 1" in submitted.stderr and not out.exists()

    listed = run_cli(["runs", "list"], env)
    assert "paused" in listed.stdout and "batches: 1 " in listed.stdout

    resumed = run_cli(["runs", "resume", "1", "-o", str(out)], env)
    assert resumed.returncode == 0, resumed.stderr
    table = pd.read_csv(out)
    assert list(table["ai_output"]) == [f'Reply to: {{"text": "note {i}"}}' for i in range(5)]
    assert "batches: 1 completed" in run_cli(["runs", "list"], env).stdout
    assert len(llm.llm.batches.created()) == 1 and llm.requests() == []


def test_compare_batch_sends_one_batch_per_model_and_waits_for_the_answers(tmp_path, llm):
    env = cli_env(tmp_path / "data", OPENAI_API_KEY=KEY, HANDAI_BATCH_POLL_SECONDS="0.02")
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    pd.DataFrame({"text": [f"note {i}" for i in range(4)]}).to_csv(source, index=False)
    models = ["--model", "openai:gpt-4o-mini", "--model", "openai:gpt-4o", "--base-url", llm.url]
    result = run_cli(["compare", str(source), "--prompt", "Tag.", *models, "--batch", "-o", str(out)], env)
    assert result.returncode == 0, result.stderr
    batches = llm.llm.batches.batches.values()
    assert len(batches) == 2 and llm.requests() == []
    assert len(pd.read_csv(out)) == 4


def test_a_multi_step_run_is_refused_in_batch_mode(tmp_path, llm):
    env = cli_env(tmp_path / "data", OPENAI_API_KEY=KEY)
    source = tmp_path / "in.csv"
    pd.DataFrame({"text": ["a", "b"]}).to_csv(source, index=False)
    args = ["consensus", str(source), "--prompt", "Tag.", "--model", "openai:gpt-4o-mini", "--model", "openai:gpt-4o"]
    result = run_cli(
        [*args, "--judge", "openai:gpt-4o", "--base-url", llm.url, "--batch", "-o", str(tmp_path / "o.csv")], env
    )
    assert result.returncode != 0 and "one step" in result.stderr
    assert llm.llm.batches.created() == []


def test_runs_stop_cancels_the_batches_of_a_run_no_process_is_polling(tmp_path, llm):
    llm.llm.batches.configure(in_progress_s=30)
    env = cli_env(tmp_path / "data", OPENAI_API_KEY=KEY, HANDAI_BATCH_POLL_SECONDS="0.02")
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    pd.DataFrame({"text": [f"note {i}" for i in range(4)]}).to_csv(source, index=False)
    common = ["--provider", "openai", "--model", "gpt-4o-mini", "--base-url", llm.url, "--batch", "--no-wait"]
    assert run_cli(["transform", str(source), "--prompt", "Tag.", *common, "-o", str(out)], env).returncode == 0
    stopped = run_cli(["runs", "stop", "1"], env)
    assert stopped.returncode == 0 and "cancelled 1 open batch(es)" in stopped.stdout
    assert [e.action for e in llm.llm.batches.log if e.action == "batch.cancel"] == ["batch.cancel"]
    assert "stopped" in run_cli(["runs", "list"], env).stdout
