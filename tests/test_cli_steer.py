"""Steering a run from the command line as the app steers it: which rows (a sample, a filter, the
first N, each recorded on the run), how the file is read (the header note, --skip-rows), the
pre-flight check of long rows (and --truncate), and runs that cannot start leaving nothing behind.
`handai_cli.main` runs in this process (`run_cli`) against the fake server; every file is built here."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from handai_db import Database
from tests.helpers import cli_env, run_cli

TEXTS = [f"note {i}: {'kept' if i % 3 else 'dropped'}" for i in range(9)]


@pytest.fixture
def env(tmp_path):
    return cli_env(tmp_path / "data", HANDAI_CUSTOM_API_KEY="k")


@pytest.fixture
def src(tmp_path) -> Path:
    path = tmp_path / "in.csv"
    frame = pd.DataFrame({"id": [str(i) for i in range(9)], "group": list("abc" * 3), "text": TEXTS})
    frame.to_csv(path, index=False)
    return path


def ledger(tmp_path: Path) -> Database:
    """The run database the calls wrote (the env's data folder)."""
    return Database(f"sqlite:///{tmp_path / 'data' / 'handai.db'}")


def custom(llm, model: str = "fake-small") -> list[str]:
    return ["--provider", "custom", "--model", model, "--base-url", llm.url]


def sent_texts(llm) -> list[str]:
    """The `text` cell of each row the fake server was sent (with --columns text)."""
    return sorted(json.loads(r.user)["text"] for r in llm.requests())


def recorded_selection(tmp_path: Path, run_id: int = 1) -> str | None:
    db = ledger(tmp_path)
    try:
        return (db.get_run(run_id).params or {}).get("selection")
    finally:
        db.close()


# -- which rows --------------------------------------------------------------------------------------------


def test_a_seeded_sample_sends_exactly_the_rows_pandas_samples_and_is_recorded(llm, env, src, tmp_path):
    args = ["transform", str(src), "--prompt", "Echo", "--columns", "text", *custom(llm)]
    done = run_cli([*args, "--sample", "2", "--seed", "7", "-o", str(tmp_path / "o.csv")], env)
    assert done.returncode == 0, done.stderr
    expected = pd.read_csv(src, dtype=str).sample(2, random_state=7)["text"]
    assert sent_texts(llm) == sorted(expected)
    described = "a random sample of 2 of 9 rows (seed 7)"
    assert recorded_selection(tmp_path) == described
    assert done.stdout.splitlines()[0] == f"run 1: 2 rows from in.csv ({described})"
    assert len(pd.read_csv(tmp_path / "o.csv")) == 2


def test_the_seed_defaults_to_0(llm, env, src, tmp_path):
    args = ["transform", str(src), "--prompt", "Echo", "--columns", "text", *custom(llm), "--sample", "3"]
    assert run_cli([*args, "-o", str(tmp_path / "o.csv")], env).returncode == 0
    assert sent_texts(llm) == sorted(pd.read_csv(src, dtype=str).sample(3, random_state=0)["text"])
    assert recorded_selection(tmp_path) == "a random sample of 3 of 9 rows (seed 0)"


def test_limit_is_recorded_as_the_first_n_rows(llm, env, src, tmp_path):
    args = ["transform", str(src), "--prompt", "Echo", "--columns", "text", *custom(llm), "--limit", "4"]
    assert run_cli([*args, "-o", str(tmp_path / "o.csv")], env).returncode == 0
    assert sent_texts(llm) == sorted(TEXTS[:4])
    assert recorded_selection(tmp_path) == "the first 4 of 9 rows"


def test_every_row_records_no_selection(llm, env, src, tmp_path):
    args = ["transform", str(src), "--prompt", "Echo", "--columns", "text", *custom(llm)]
    assert run_cli([*args, "-o", str(tmp_path / "o.csv")], env).returncode == 0
    assert sent_texts(llm) == sorted(TEXTS) and recorded_selection(tmp_path) is None


def test_filters_keep_equal_values_and_contained_text_then_sample(llm, env, src, tmp_path):
    args = ["transform", str(src), "--prompt", "Echo", "--columns", "text", *custom(llm), "--where", "group=a|b"]
    args += ["--where-contains", "text=KEPT", "-o", str(tmp_path / "o.csv")]
    assert run_cli(args, env).returncode == 0, "filters"
    wanted = [t for i, t in enumerate(TEXTS) if "abc"[i % 3] in "ab" and "kept" in t]
    assert sent_texts(llm) == sorted(wanted) and len(wanted) == 3
    assert recorded_selection(tmp_path) == (
        "6 of 9 rows where group is one of a, b; then 3 of 6 rows where text contains 'KEPT'"
    )


def test_compare_chooses_rows_the_same_way_and_records_them(llm, env, src, tmp_path):
    args = ["compare", str(src), "--prompt", "Echo", "--columns", "text", "--base-url", llm.url]
    args += ["--model", "custom:fake-small", "--model", "custom:fake-alt", "--sample", "2", "--seed", "7"]
    done = run_cli([*args, "-o", str(tmp_path / "o.csv")], env)
    assert done.returncode == 0, done.stderr
    expected = sorted(pd.read_csv(src, dtype=str).sample(2, random_state=7)["text"])
    assert sent_texts(llm) == sorted(expected * 2)  # each row once per model
    assert recorded_selection(tmp_path) == "a random sample of 2 of 9 rows (seed 7)"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--where", "colour=red"], "error: --where: no column named 'colour'. Columns: id, group, text."),
        (["--where", "group=z"], "error: No row is left: none of the 9 rows matches --where group=z."),
        (["--where-contains", "text=absent"], "none of the 9 rows matches --where-contains text=absent."),
        (["--where", "group"], "error: --where takes COL=V1|V2 (got 'group')."),
        (["--sample", "2", "--limit", "3"], "Choose --limit N (the first N rows) or --sample N"),
        (["--seed", "3"], "error: --seed sets the seed of --sample; add --sample N."),
        (["--sample", "0"], "error: --sample must be at least 1."),
    ],
)
def test_a_selection_that_cannot_be_made_is_one_line_and_writes_nothing(llm, env, src, tmp_path, flags, message):
    args = ["transform", str(src), "--prompt", "Echo", *custom(llm), *flags, "-o", str(tmp_path / "o.csv")]
    done = run_cli(args, env)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [next(line for line in done.stderr.splitlines() if message in line)]
    assert_nothing_written(tmp_path)
    assert llm.requests() == []


# -- a run that cannot start leaves nothing ------------------------------------------------------------------


def assert_nothing_written(tmp_path: Path) -> None:
    db = ledger(tmp_path)
    try:
        assert db.list_runs() == [] and db.list_sessions() == []
    finally:
        db.close()


CUSTOM = ["--provider", "custom", "--model", "m", "--base-url", "{url}"]


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["transform", "{src}", "--prompt", "x", "--provider", "custom", "--model", "m"], "base URL"),
        (["transform", "{src}", "--prompt", "x", "--provider", "openai", "--model", "gpt-4o-mini"], "OPENAI_API_KEY"),
        (["generate", "--description", "d", "--rows", "2", "--provider", "openai", "--model", "m"], "OPENAI_API_KEY"),
        (["compare", "{src}", "--prompt", "x", "--model", "custom:a", "--model", "openai:b"], "OPENAI_API_KEY"),
        (["transform", "{src}", "--prompt", "x", "--columns", "nope", *CUSTOM], "--columns: no column named nope"),
        (["transform", "{src}", "--prompt", "x", "--template", "{nope}", *CUSTOM], "no such column"),
        (["transform", "{src}", "--prompt", "x", *CUSTOM, "--batch"], "has no Batch API"),
        (["compare", "{src}", "--prompt", "x", "--model", "custom:a", "--model", "custom:b", "--batch"], "Batch API"),
        (["pipeline", "{spec}", "{src}"], "also a column name"),
    ],
)
def test_a_run_that_cannot_start_writes_no_run_and_no_session(llm, env, src, tmp_path, command, message):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"steps": [{"name": "text", "model": "custom:fake-small", "instruction": "x"}]}))
    args = [a.replace("{src}", str(src)).replace("{spec}", str(spec)).replace("{url}", llm.url) for a in command]
    if args[0] in ("compare", "pipeline"):
        args += ["--base-url", llm.url]
    done = run_cli([*args, "-o", str(tmp_path / "o.csv")], env)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert_nothing_written(tmp_path)
    assert llm.requests() == []


def test_a_budget_cap_with_batch_is_refused_before_anything_is_read_or_written(llm, src, tmp_path):
    env = cli_env(tmp_path / "data", OPENAI_API_KEY="sk-test-" + "a" * 40)
    common = ["--budget", "1", "--batch", "--base-url", llm.url, "-o", str(tmp_path / "o.csv")]
    refused = (
        "error: A budget cap cannot pause a batch: every request is submitted to the provider at once and billed "
        "as it completes; remove --budget or drop --batch."
    )
    for args in (
        ["transform", str(src), "--prompt", "x", "--provider", "openai", "--model", "gpt-4o-mini", *common],
        ["generate", "--description", "d", "--rows", "2", "--provider", "openai", "--model", "gpt-4o-mini", *common],
        ["compare", str(src), "--prompt", "x", "--model", "openai:gpt-4o-mini", "--model", "openai:gpt-4o", *common],
    ):
        done = run_cli(args, env)
        assert (done.returncode, done.stderr.strip()) == (2, refused), args[0]
    assert_nothing_written(tmp_path)
    assert llm.requests() == [] and llm.llm.batches.created() == []


def test_resuming_a_batch_run_with_a_budget_is_refused(llm, src, tmp_path):
    env = cli_env(tmp_path / "data", OPENAI_API_KEY="sk-test-" + "a" * 40, HANDAI_BATCH_POLL_SECONDS="0.02")
    args = ["transform", str(src), "--prompt", "x", "--provider", "openai", "--model", "gpt-4o-mini"]
    submitted = run_cli([*args, "--base-url", llm.url, "--batch", "--no-wait", "-o", str(tmp_path / "o.csv")], env)
    assert submitted.returncode == 0, submitted.stderr
    resumed = run_cli(["runs", "resume", "1", "--budget", "5"], env)
    assert resumed.returncode == 2 and "A budget cap cannot pause a batch" in resumed.stderr
    db = ledger(tmp_path)
    try:
        assert db.get_run(1).params.get("budget_usd") is None  # nothing recorded
    finally:
        db.close()


# -- reading the file ----------------------------------------------------------------------------------------

COLUMNS = ["Gebiet", "Merkmal", "Jahr", "Anzahl"]
RECORDS = [["Bund", "Wahlberechtigte", "2021", "61181072"], ["Bund", "Wählende", "2021", "46854508"]]


def official_statistics_csv() -> bytes:
    """The issue's shape: UTF-8 with BOM, ';', CRLF, seven '#' lines and a row of column numbers above the header."""
    comments = ["# Statistisches Amt", "# Datenlizenz", "# Tabelle 12411-0001", "#", "# Stand", "# UTF-8", "# Quelle"]
    lines = [*comments, ";".join(str(n) for n in range(1, len(COLUMNS) + 1)), ";".join(COLUMNS)]
    lines += [";".join(record) for record in RECORDS]
    return "\ufeff".encode() + "\r\n".join(lines).encode() + b"\r\n"


def test_the_header_note_is_printed_and_skip_rows_changes_the_header(llm, env, tmp_path):
    source = tmp_path / "12411-0001.csv"
    source.write_bytes(official_statistics_csv())
    args = ["transform", str(source), "--prompt", "Echo", *custom(llm)]
    detected = run_cli([*args, "-o", str(tmp_path / "a.csv")], env)
    assert detected.returncode == 0, detected.stderr
    assert "note: Header taken from line 9; 8 lines above it skipped" in detected.stderr
    assert "with --skip-rows N" in detected.stderr and "Reading options" not in detected.stderr
    assert list(pd.read_csv(tmp_path / "a.csv", dtype=str).columns[:4]) == COLUMNS
    assert [json.loads(r.user)["Gebiet"] for r in llm.requests()] == ["Bund", "Bund"]

    chosen = run_cli([*args, "--skip-rows", "7", "-o", str(tmp_path / "b.csv")], env)
    assert chosen.returncode == 0, chosen.stderr
    assert "note: Header taken from line 8, as set with --skip-rows (7 lines above it skipped)." in chosen.stderr
    assert list(pd.read_csv(tmp_path / "b.csv", dtype=str).columns[:4]) == ["1", "2", "3", "4"]
    assert "3 rows from 12411-0001.csv" in chosen.stdout  # the real header is a row now


def test_a_plain_file_prints_no_header_note_and_a_delimiter_can_be_given(llm, env, tmp_path):
    source = tmp_path / "pipes.csv"
    source.write_text("id|text\n1|a, b\n2|c, d\n", encoding="utf-8")
    args = ["transform", str(source), "--prompt", "Echo", "--columns", "text", *custom(llm)]
    done = run_cli([*args, "--delimiter", "|", "-o", str(tmp_path / "o.csv")], env)
    assert done.returncode == 0, done.stderr
    assert "note:" not in done.stderr
    assert sent_texts(llm) == ["a, b", "c, d"]
    bad = run_cli([*args, "--delimiter", "||", "-o", str(tmp_path / "o.csv")], env)
    assert bad.returncode == 2 and "--delimiter must be one character, or tab" in bad.stderr


# -- pre-flight: rows longer than the model's context window --------------------------------------------------

# qwen2.5 models have a 32,768-token window; with 32,000 kept for the reply a row may use about 740 tokens.
SMALL_WINDOW = ["--model", "qwen2.5-7b", "--max-tokens", "32000"]
LONG = "word " * 1500  # about 1,875 tokens


@pytest.fixture
def long_src(tmp_path) -> Path:
    path = tmp_path / "long.csv"
    pd.DataFrame({"id": ["0", "1", "2", "3"], "text": ["short a", "short b", "short c", LONG]}).to_csv(
        path, index=False
    )
    return path


def test_a_row_too_long_for_the_window_is_warned_about_with_its_file_row_number(llm, env, long_src, tmp_path):
    args = ["transform", str(long_src), "--prompt", "Echo", "--columns", "text", "--provider", "custom"]
    args += [*SMALL_WINDOW, "--base-url", llm.url, "--where", "id=1|3", "-o", str(tmp_path / "o.csv")]
    done = run_cli(args, env)
    assert done.returncode == 0, done.stderr
    [warning] = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert warning.startswith("warning: 1 row is too long for the model's 32,768-token context window")
    assert "(input rows 4, numbered from 1)" in warning and "add --truncate to shorten them" in warning
    assert LONG in sent_texts(llm)  # warned, not changed


def test_truncate_shortens_the_long_row_to_fit_and_leaves_the_others(llm, env, long_src, tmp_path):
    args = ["transform", str(long_src), "--prompt", "Echo", "--columns", "text", "--provider", "custom"]
    done = run_cli([*args, *SMALL_WINDOW, "--base-url", llm.url, "--truncate", "-o", str(tmp_path / "o.csv")], env)
    assert done.returncode == 0, done.stderr
    assert "their longest cells were shortened to fit (--truncate)" in done.stderr
    sent = sent_texts(llm)
    assert sent[:3] == ["short a", "short b", "short c"]
    assert sent[3].endswith(" […]") and 1000 < len(sent[3]) < len(LONG) - 3000
    assert len(json.dumps({"text": sent[3]})) / 4 <= 32_768 - 32_000


def test_compare_warns_for_the_model_whose_window_is_too_small(llm, env, long_src, tmp_path):
    args = ["compare", str(long_src), "--prompt", "Echo", "--columns", "text", "--base-url", llm.url]
    args += ["--model", "custom:fake-small", "--model", "custom:qwen2.5-7b", "--max-tokens", "32000"]
    done = run_cli([*args, "--truncate", "-o", str(tmp_path / "o.csv")], env)
    assert done.returncode == 0, done.stderr
    [warning] = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert "1 row is too long for the model's 32,768-token context window (model 'qwen2.5-7b')" in warning
    assert "input rows 4," in warning
    long_sent = {r.model: json.loads(r.user)["text"] for r in llm.requests() if len(r.user) > 100}
    assert set(long_sent) == {"fake-small", "qwen2.5-7b"}
    assert all(text.endswith(" […]") for text in long_sent.values())  # both are sent the same row


# -- the formula guard's note on a bundle ----------------------------------------------------------------------


def test_runs_export_bundle_says_how_many_cells_the_guard_changed(llm, env, tmp_path):
    source = tmp_path / "at.csv"
    pd.DataFrame({"text": ["@anna hi", "plain", "=1+1"]}).to_csv(source, index=False)
    args = ["transform", str(source), "--prompt", "Echo", "--columns", "text", *custom(llm)]
    assert run_cli([*args, "-o", str(tmp_path / "o.json")], env).returncode == 0
    table = run_cli(["runs", "export", "1", "-o", str(tmp_path / "e.csv")], env)
    bundle = run_cli(["runs", "export", "1", "--bundle", str(tmp_path / "b.zip")], env)
    assert bundle.returncode == 0, bundle.stderr
    assert "note: 2 cells starting with = + - or @ got a leading ' in results.csv of b.zip" in bundle.stderr
    assert "note: 2 cells starting with = + - or @ got a leading ' in e.csv" in table.stderr
    kept = run_cli(["runs", "export", "1", "--bundle", str(tmp_path / "k.zip"), "--no-csv-formula-guard"], env)
    assert kept.returncode == 0 and "note:" not in kept.stderr
