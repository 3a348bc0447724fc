"""The command line, run as a user runs it: a subprocess, real files, the fake server."""

from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest

from tests.helpers import PYTHON, ROOT, cli_env


def cli(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, str(ROOT / "handai_cli.py"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


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
    done = cli(["transform", str(src), "--prompt", "Echo", "--columns", "text", *base(llm), "--output", str(out)], env)
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
    done = cli(
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
    first = cli(
        ["transform", str(src), "--prompt", "x", *base(llm), "--max-retries", "0", "--output", str(tmp_path / "o.csv")],
        env,
    )
    assert first.returncode == 1
    listing = cli(["runs", "list"], env)
    assert "failed" in listing.stdout and "custom/fake-small" in listing.stdout
    llm.configure(error_rate=0.0)
    retried = cli(["runs", "retry-failed", "1", "--output", str(tmp_path / "r.csv")], env)
    assert retried.returncode == 0, retried.stderr
    exported = cli(["runs", "export", "1", "--output", str(tmp_path / "e.json")], env)
    assert exported.returncode == 0
    rows = json.loads((tmp_path / "e.json").read_text(encoding="utf-8"))
    assert [r["ai_status"] for r in rows] == ["succeeded"] * 3


def test_generate_with_a_template(llm, env, tmp_path):
    out = tmp_path / "g.csv"
    done = cli(
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
    done = cli(
        [*args, "--provider", provider, "--model", "m", "--base-url", llm.url, "--output", str(tmp_path / "o.csv")], env
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0]


def test_missing_key_is_one_line(src, tmp_path):
    env = cli_env(tmp_path / "d")
    done = cli(
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


def test_dead_endpoint_is_one_clear_reason(env, src, tmp_path):
    done = cli(
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
    assert cli(["transform", str(src), "--prompt", "x", *base(llm), "--output", str(out)], env).returncode == 0
    again = cli(["transform", str(src), "--prompt", "x", *base(llm), "--output", str(out)], env)
    assert "cached 3" in again.stderr and len(llm.requests()) == 3
    fresh = cli(["transform", str(src), "--prompt", "x", *base(llm), "--no-cache", "--output", str(out)], env)
    assert fresh.returncode == 0 and len(llm.requests()) == 6


def test_a_run_on_a_wrong_url_is_resumed_at_the_right_one_with_a_changed_model(llm, env, src, tmp_path):
    wrong = ["--provider", "custom", "--model", "fake-small", "--base-url", "http://127.0.0.1:9/v1"]
    first = cli(
        ["transform", str(src), "--prompt", "x", *wrong, "--max-retries", "0", "--output", str(tmp_path / "o.csv")], env
    )
    assert first.returncode == 1
    out = tmp_path / "fixed.csv"
    fixed = cli(["runs", "resume", "1", "--base-url", llm.url, "--model", "fake-large", "--output", str(out)], env)
    assert fixed.returncode == 0, fixed.stderr
    assert f"fake-large at {llm.url}" in fixed.stdout
    assert {r.model for r in llm.requests()} == {"fake-large"}
    assert list(pd.read_csv(out)["ai_status"]) == ["succeeded"] * 3
