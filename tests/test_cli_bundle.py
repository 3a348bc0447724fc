"""`runs export --bundle` and `runs rerun BUNDLE.zip` as a script runs them: real files, the fake
server, the real engine and ledger (`handai_cli.main` in this process, a fresh engine per call: `run_cli`)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections import Counter

import pandas as pd
import pytest

from tests.helpers import cli_env, run_cli

KEY = "sk-proj-BUNDLEKEYabcdefghijklmnopqrst"
ROWS = [f"review {i}: {'great' if i % 2 else 'poor'} value" for i in range(8)]


@pytest.fixture
def env(tmp_path):
    return cli_env(tmp_path / "data", HANDAI_CUSTOM_API_KEY=KEY, OPENAI_API_KEY=KEY)


@pytest.fixture
def src(tmp_path):
    path = tmp_path / "in.csv"
    pd.DataFrame({"id": [f"{i:03}" for i in range(len(ROWS))], "text": ROWS}).to_csv(path, index=False)
    return path


def run_id_of(stdout: str) -> int:
    return int(re.search(r"^run (\d+):", stdout, re.M).group(1))


def members(path) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


def test_a_transform_exported_as_a_bundle_and_repeated_gives_the_same_answers(llm, env, src, tmp_path):
    args = ["transform", str(src), "--prompt", "Sentiment?", "--columns", "text", "--temperature", "0"]
    args += ["--provider", "custom", "--model", "fake-small", "--base-url", llm.url]
    done = run_cli([*args, "--output", str(tmp_path / "out.csv")], env)
    assert done.returncode == 0, done.stderr
    bundle = tmp_path / "run.zip"
    exported = run_cli(["runs", "export", str(run_id_of(done.stdout)), "--bundle", str(bundle)], env)
    assert exported.returncode == 0, exported.stderr
    files = members(bundle)
    assert sorted(files) == ["METHODS.md", "provenance.json", "results.csv", "rows.jsonl"]
    assert all(KEY not in text for text in files.values())
    prov = json.loads(files["provenance.json"])
    assert prov["input"]["name"] == "in.csv" and prov["outcome"]["rows"] == len(ROWS)
    assert prov["steps"][0]["sent"]["model"]["parameters"] == {"temperature": 0}

    llm.reset()
    again = run_cli(["runs", "rerun", str(bundle), "--output", str(tmp_path / "again.csv")], env)
    assert again.returncode == 0, again.stderr
    assert "same recorded settings and input rows" in again.stdout
    assert f"0 of {len(ROWS)} rows have answers that differ from the bundle's" in again.stdout
    assert sorted(r.user for r in llm.requests()) == sorted(json.dumps({"text": t}) for t in ROWS)
    assert all(r.system == prov["steps"][0]["sent"]["model"]["system_message"] for r in llm.requests())


def test_a_repeat_on_another_input_says_what_differs(llm, env, src, tmp_path):
    args = ["transform", str(src), "--prompt", "Sentiment?", "--columns", "text"]
    done = run_cli(
        [*args, "--provider", "custom", "--model", "fake-small", "--base-url", llm.url, "-o", str(tmp_path / "o.csv")],
        env,
    )
    assert done.returncode == 0, done.stderr
    bundle = tmp_path / "run.zip"
    assert run_cli(["runs", "export", str(run_id_of(done.stdout)), "--bundle", str(bundle)], env).returncode == 0
    other = tmp_path / "other.csv"
    changed = [*ROWS[:-1], "a new last row"]
    pd.DataFrame({"id": [f"{i:03}" for i in range(len(changed))], "text": changed}).to_csv(other, index=False)
    again = run_cli(["runs", "rerun", str(bundle), "--input", str(other)], env)
    assert again.returncode == 0, again.stderr
    assert "input file: SHA-256" in again.stdout
    assert "differs: input rows (SHA-256 of their cells)" in again.stdout
    assert f"1 of {len(ROWS)} rows have answers that differ from the bundle's" in again.stdout


def test_a_compare_bundle_repeats_each_model(llm, env, src, tmp_path):
    args = ["compare", str(src), "--prompt", "Sentiment?", "--columns", "text", "--base-url", llm.url]
    done = run_cli(
        [*args, "--model", "custom:fake-small", "--model", "custom:fake-alt", "-o", str(tmp_path / "o.csv")], env
    )
    assert done.returncode == 0, done.stderr
    bundle = tmp_path / "cmp.zip"
    assert run_cli(["runs", "export", str(run_id_of(done.stdout)), "--bundle", str(bundle)], env).returncode == 0
    methods = members(bundle)["METHODS.md"]
    assert "fake-small" in methods and "fake-alt" in methods and "percent agreement" in methods
    llm.reset()
    again = run_cli(["runs", "rerun", str(bundle)], env)
    assert again.returncode == 0, again.stderr
    assert f"0 of {len(ROWS)} rows have answers that differ" in again.stdout
    assert Counter(r.model for r in llm.requests()) == {"fake-small": len(ROWS), "fake-alt": len(ROWS)}


def test_a_file_that_is_not_a_bundle_is_one_clear_error(env, tmp_path):
    fake = tmp_path / "x.zip"
    fake.write_bytes(b"not a zip")
    done = run_cli(["runs", "rerun", str(fake)], env)
    assert done.returncode == 2 and "is not a methods bundle" in done.stderr
