"""The command line, run as a user runs it: real files, the fake server, exit codes and printed
lines. `handai_cli.main` runs in this process (`run_cli`, a fresh database and engine per call, as
a new process has); one test runs the script as a process of its own, so its entry point stays covered."""

from __future__ import annotations

import json
import os
import subprocess
import threading

import pandas as pd
import pytest

from handai_db import Database
from tests.helpers import PYTHON, ROOT, cli_env, run_cli


@pytest.fixture
def env(tmp_path):
    return cli_env(tmp_path / "data", HANDAI_CUSTOM_API_KEY="k")


@pytest.fixture
def src(tmp_path):
    path = tmp_path / "in.csv"
    pd.DataFrame({"id": ["007", "010", "011"], "text": ["a, b", 'ü "q"', "line\nbreak"]}).to_csv(path, index=False)
    return path


def base(llm) -> list[str]:
    return ["--provider", "custom", "--model", "fake-small", "--base-url", llm.url]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".json", ".jsonl"])
def test_transform_writes_input_columns_then_output_status_error(llm, env, src, tmp_path, suffix):
    out = tmp_path / f"out{suffix}"
    done = run_cli(
        ["transform", str(src), "--prompt", "Echo", "--columns", "text", *base(llm), "--output", str(out)], env
    )
    assert done.returncode == 0, done.stderr
    assert "run 1" in done.stdout and "3/3" in done.stderr
    from handai_io import read_table

    df = read_table(out).df
    assert list(df.columns) == ["id", "text", "ai_output", "ai_status", "ai_error"]
    assert df["id"].tolist() == ["007", "010", "011"]
    assert df["ai_output"].tolist()[2] == 'Reply to: {"text": "line\\nbreak"}'
    assert df["ai_status"].tolist() == ["succeeded"] * 3


def test_json_flag_gives_one_column_per_field(llm, env, src, tmp_path):
    out = tmp_path / "out.jsonl"
    done = run_cli(
        [
            "transform",
            str(src),
            "--prompt",
            'Reply as {"topic": "string", "size": "integer"}',
            "--json",
            *base(llm),
            "--output",
            str(out),
        ],
        env,
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert list(rows[0]) == ["id", "text", "topic", "size", "ai_status", "ai_error"]
    assert rows[0]["topic"].startswith("topic of")


def test_runs_list_export_and_retry_failed(llm, env, src, tmp_path):
    llm.configure(error_rate=1.0, error_status=400)
    first = run_cli(
        ["transform", str(src), "--prompt", "x", *base(llm), "--max-retries", "0", "--output", str(tmp_path / "o.csv")],
        env,
    )
    assert first.returncode == 1
    listing = run_cli(["runs", "list"], env)
    assert "failed" in listing.stdout and "custom/fake-small" in listing.stdout
    llm.configure(error_rate=0.0)
    retried = run_cli(["runs", "retry-failed", "1", "--output", str(tmp_path / "r.csv")], env)
    assert retried.returncode == 0, retried.stderr
    exported = run_cli(["runs", "export", "1", "--output", str(tmp_path / "e.json")], env)
    assert exported.returncode == 0
    rows = json.loads((tmp_path / "e.json").read_text(encoding="utf-8"))
    assert [r["ai_status"] for r in rows] == ["succeeded"] * 3


def test_generate_with_a_template(llm, env, tmp_path):
    out = tmp_path / "g.csv"
    done = run_cli(
        [
            "generate",
            "--template",
            "product_reviews",
            "--rows",
            "5",
            "--var",
            "product=phone|laptop",
            *base(llm),
            "--output",
            str(out),
        ],
        env,
    )
    assert done.returncode == 0, done.stderr
    df = pd.read_csv(out)
    assert list(df.columns) == ["product", "rating", "review", "ai_status", "ai_error"]
    assert len(df) == 5
    sent = [r.user for r in llm.requests()]
    assert "product: phone." in sent[0] or any("product: phone." in s for s in sent)


@pytest.mark.parametrize(
    "args, message",
    [
        (["transform", "missing.csv", "--prompt", "x"], "No such file"),
        (["transform", "{bad}", "--prompt", "x"], "does not look like"),
        (["transform", "{src}", "--prompt", "x", "--template", "{nope}"], "no such column"),
        (["transform", "{src}", "--prompt", "x", "--provider-override", "nosuch"], "Unknown provider"),
    ],
)
def test_bad_input_gives_one_clear_line_and_exit_2(llm, env, src, tmp_path, args, message):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(bytes(range(256)) * 50)
    args = [a.replace("{src}", str(src)).replace("{bad}", str(bad)) for a in args]
    provider = "custom"
    if "--provider-override" in args:
        i = args.index("--provider-override")
        provider = args[i + 1]
        del args[i : i + 2]
    done = run_cli(
        [*args, "--provider", provider, "--model", "m", "--base-url", llm.url, "--output", str(tmp_path / "o.csv")], env
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0]


def test_missing_key_is_one_line(src, tmp_path):
    env = cli_env(tmp_path / "d")
    done = run_cli(
        [
            "transform",
            str(src),
            "--prompt",
            "x",
            "--provider",
            "openai",
            "--model",
            "gpt-4o-mini",
            "--output",
            str(tmp_path / "o.csv"),
        ],
        env,
    )
    assert done.returncode == 2
    assert "OPENAI_API_KEY" in done.stderr and "Traceback" not in done.stderr
    db = Database(f"sqlite:///{tmp_path / 'd' / 'handai.db'}")
    try:  # refused before anything was written: no run left queued, no empty session
        assert db.list_runs() == [] and db.list_sessions() == []
    finally:
        db.close()


def test_dead_endpoint_is_one_clear_reason(env, src, tmp_path):
    done = run_cli(
        [
            "transform",
            str(src),
            "--prompt",
            "x",
            "--provider",
            "custom",
            "--model",
            "m",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--max-retries",
            "0",
            "--output",
            str(tmp_path / "o.csv"),
        ],
        env,
    )
    assert done.returncode == 1
    assert "Could not reach http://127.0.0.1:9/v1" in done.stderr and "Traceback" not in done.stderr


def test_budget_and_no_cache_flags(llm, env, src, tmp_path):
    out = tmp_path / "o.csv"
    assert run_cli(["transform", str(src), "--prompt", "x", *base(llm), "--output", str(out)], env).returncode == 0
    again = run_cli(["transform", str(src), "--prompt", "x", *base(llm), "--output", str(out)], env)
    assert "cached 3" in again.stderr and len(llm.requests()) == 3
    fresh = run_cli(["transform", str(src), "--prompt", "x", *base(llm), "--no-cache", "--output", str(out)], env)
    assert fresh.returncode == 0 and len(llm.requests()) == 6


def test_a_run_on_a_wrong_url_is_resumed_at_the_right_one_with_a_changed_model(llm, env, src, tmp_path):
    wrong = ["--provider", "custom", "--model", "fake-small", "--base-url", "http://127.0.0.1:9/v1"]
    first = run_cli(
        ["transform", str(src), "--prompt", "x", *wrong, "--max-retries", "0", "--output", str(tmp_path / "o.csv")], env
    )
    assert first.returncode == 1
    out = tmp_path / "fixed.csv"
    fixed = run_cli(["runs", "resume", "1", "--base-url", llm.url, "--model", "fake-large", "--output", str(out)], env)
    assert fixed.returncode == 0, fixed.stderr
    assert f"fake-large at {llm.url}" in fixed.stdout
    assert {r.model for r in llm.requests()} == {"fake-large"}
    assert list(pd.read_csv(out)["ai_status"]) == ["succeeded"] * 3


def test_the_script_runs_end_to_end_as_a_process_of_its_own(llm, env, src, tmp_path):
    """The real entry point (`python handai_cli.py`): its imports, `__main__` and exit code."""
    out = tmp_path / "out.csv"
    args = ["transform", str(src), "--prompt", "Echo", "--columns", "text", *base(llm), "--output", str(out)]
    done = subprocess.run(
        [PYTHON, str(ROOT / "handai_cli.py"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["run 1: 3 rows from in.csv", f"Wrote 3 rows to {out}"]
    assert "3/3 100%" in done.stderr and "Traceback" not in done.stderr
    df = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert df["id"].tolist() == ["007", "010", "011"]
    assert df["ai_output"].tolist()[1] == 'Reply to: {"text": "ü \\"q\\""}'
    assert df["ai_status"].tolist() == ["succeeded"] * 3


def test_in_process_runs_exit_as_argparse_says_and_leave_nothing_behind(env, tmp_path):
    """`run_cli` itself: --help and a bad flag give the exit codes a process gives; the call's
    environment and engine threads are gone when it returns."""
    before = {t.name for t in threading.enumerate()}
    helped = run_cli(["--help"], env)
    assert helped.returncode == 0 and helped.stdout.startswith("usage: handai_cli.py") and helped.stderr == ""
    bad = run_cli(["runs", "list", "--no-such-flag"], env)
    assert bad.returncode == 2 and "unrecognized arguments: --no-such-flag" in bad.stderr and bad.stdout == ""
    listed = run_cli(["runs", "list"], env)
    assert (listed.returncode, listed.stdout, listed.stderr) == (0, "", "")
    assert (tmp_path / "data" / "handai.db").exists()  # the call's own data folder, not this test's
    assert os.environ["HANDAI_DATA_DIR"] != env["HANDAI_DATA_DIR"]
    assert {t.name for t in threading.enumerate()} == before
