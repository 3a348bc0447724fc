"""Codebooks on the command line, run as a script runs them (`handai_cli.main` in this process, a
fresh database and engine per call: `run_cli`): codebooks written here (a file, or one saved
through `codebooks import`), the fake server. The custom provider gets no JSON schema, so a
`[[pick:…]]` marker in a row can make a model answer outside the codebook."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from handai_db import Database
from handai_engine import Plan
from handai_io import read_table
from research.codebook import Code, Codebook
from research.codebook_io import read_codebook
from tests.helpers import cli_env, run_cli

CODEBOOK_CSV = (
    'name,definition,inclusion\nprice,What it costs,"Mentions money, cost or value"\nquality,How well it is made,\n'
)
ROWS = [
    "fair price for what it is [[pick:price]]",  # a code
    "the quality let me down [[pick:quality]]",  # a code
    "nothing to say [[pick:none]]",  # the codebook's "none"
    "they refunded me [[pick:refund]]",  # off the codebook: kept and counted
    "no marker here",  # the fake's own answer: off the codebook, its quote not in the text
    "talk talk [[prose]]",  # not JSON: unparseable
]


@pytest.fixture
def env(tmp_path):
    return cli_env(tmp_path / "data", HANDAI_CUSTOM_API_KEY="k")


@pytest.fixture
def src(tmp_path):
    path = tmp_path / "in.csv"
    pd.DataFrame({"id": [f"{i:03}" for i in range(len(ROWS))], "text": ROWS}).to_csv(path, index=False)
    return path


@pytest.fixture
def plain(tmp_path):
    """Rows every model answers (no failure markers)."""
    path = tmp_path / "plain.csv"
    pd.DataFrame({"text": ROWS[:5]}).to_csv(path, index=False)
    return path


@pytest.fixture
def codebook(tmp_path):
    path = tmp_path / "reasons.csv"
    path.write_text(CODEBOOK_CSV, encoding="utf-8")
    return path


def recorded_plan(tmp_path, run_id: int) -> Plan:
    db = Database(f"sqlite:///{tmp_path / 'data' / 'handai.db'}")
    try:
        return Plan.of(db.get_run(run_id))
    finally:
        db.close()


def sent(text: str) -> str:
    return json.dumps({"text": text}, ensure_ascii=False)


def test_code_keeps_off_codebook_answers_checks_quotes_and_prints_the_counts(llm, env, src, codebook, tmp_path):
    out = tmp_path / "coded.csv"
    args = ["code", str(src), "--codebook", str(codebook), "--model", "custom:fake-small", "--columns", "text"]
    done = run_cli([*args, "--prompt", "Why this rating?", "--base-url", llm.url, "--output", str(out)], env)
    assert done.returncode == 1, done.stderr  # one cell failed (unparseable)
    df = read_table(out).df
    assert list(df.columns) == ["id", "text", "code", "rationale", "evidence", "off_codebook", "evidence_found",
                                "fake-small_status", "fake-small_error"]  # fmt: skip
    fallback = f"code of {sent(ROWS[4])}"
    assert df["code"].fillna("").tolist() == ["price", "quality", "none", "refund", fallback, ""]
    assert df["off_codebook"].fillna("").tolist() == ["", "", "", "refund", fallback, ""]
    assert df["evidence_found"].astype(str).tolist()[:5] == ["True", "True", "True", "True", "False"]
    assert df["fake-small_status"].tolist() == ["succeeded"] * 5 + ["failed"]
    assert "coded 3 of 6 | off the codebook 2 (" in done.stdout
    assert '"refund" x1' in done.stdout and f'"{fallback}" x1' in done.stdout
    assert "| unparseable 1 | failed 0 | quotes not in the text 1 of 5" in done.stdout
    assert "codes: " in done.stdout and "price 1" in done.stdout and "none 1" in done.stdout
    assert "model fake-small: 5 ok 1 failed" in done.stdout
    [system] = {r.system for r in llm.requests()}
    assert system.startswith("Why this rating?") and "Mentions money, cost or value" in system
    assert recorded_plan(tmp_path, 1).codebook["ref"] == {"name": "reasons", "file": "reasons.csv"}


def test_a_multi_label_codebook_saved_by_name_and_version(llm, env, tmp_path):
    first = tmp_path / "v1.json"
    first.write_text(json.dumps({"name": "Reasons", "multi_label": True, "codes": ["price", "quality"]}))
    second = tmp_path / "v2.json"
    second.write_text(json.dumps({"name": "Reasons", "multi_label": True, "codes": ["price", "quality", "service"]}))
    for path in (first, second):
        assert run_cli(["codebooks", "import", str(path)], env).returncode == 0
    src = tmp_path / "in.csv"
    texts = ["price and quality [[pick:price;quality]]", "service only [[pick:service]]"]
    pd.DataFrame({"text": texts}).to_csv(src, index=False)
    models = ["--model", "custom:fake-small", "--model", "custom:fake-alt"]
    for spec, run_id, off in (("Reasons", 1, ""), ("Reasons@1", 2, "fake-small: service; fake-alt: service")):
        out = tmp_path / f"{run_id}.csv"
        done = run_cli(["code", str(src), "--codebook", spec, *models, "--base-url", llm.url, "-o", str(out)], env)
        assert done.returncode == 0, done.stderr
        df = read_table(out).df
        assert df["fake-small.codes"].tolist() == ["price; quality", "service"]
        assert df["fake-alt.codes"].tolist() == ["price; quality", "service"]
        assert df["off_codebook"].fillna("").tolist() == ["", off]
        assert df["all_agree"].astype(str).tolist() == ["True", "True"]
        ref = recorded_plan(tmp_path, run_id).codebook["ref"]
        assert (ref["name"], ref["version"]) == ("Reasons", 2 if spec == "Reasons" else 1)
    assert 'coded 2 of 4 | off the codebook 2 ("service" x2)' in done.stdout
    assert "codes: price 2, quality 2, service 2" in done.stdout
    v1_prompts = {r.system for r in llm.requests()[-4:]}
    assert all('"price", "quality", "none"' in s and '"service"' not in s for s in v1_prompts)


def test_compare_with_a_codebook_agrees_on_the_code_whatever_the_rationales_say(llm, env, plain, codebook, tmp_path):
    llm.configure(
        answers={
            "fake-small": '{"code": "price", "rationale": "one reason", "evidence": "price"}',
            "fake-alt": '{"code": "price", "rationale": "another reason", "evidence": "fair"}',
        }
    )
    models = ["--model", "custom:fake-small", "--model", "custom:fake-alt", "--columns", "text", "--base-url", llm.url]
    out = tmp_path / "with.csv"
    done = run_cli(["compare", str(plain), "--codebook", str(codebook), *models, "-o", str(out)], env)
    assert done.returncode == 0, done.stderr
    df = read_table(out).df
    assert {"fake-small.code", "fake-small.rationale", "fake-alt.code", "fake-alt.evidence"} <= set(df.columns)
    assert df["all_agree"].astype(str).tolist() == ["True"] * 5
    assert "Percent agreement: 100.0% over 5 of 5 rows" in done.stdout
    plan = recorded_plan(tmp_path, 1)
    assert plan.steps[0].compare_on == ("code",) and plan.codebook["ref"]["file"] == "reasons.csv"
    without = run_cli(["compare", str(plain), "--prompt", "Why?", *models, "-o", str(tmp_path / "without.csv")], env)
    assert without.returncode == 0, without.stderr
    assert "Percent agreement: 0.0% over 5 of 5 rows" in without.stdout  # whole replies compared


def test_consensus_with_a_codebook_needs_no_judge_when_the_codes_match(llm, env, plain, codebook, tmp_path):
    llm.configure(
        answers={
            "fake-small": '{"code": "quality", "rationale": "one reason"}',
            "fake-alt": '{"code": "Quality", "rationale": "another reason"}',
        }
    )
    args = ["consensus", str(plain), "--codebook", str(codebook), "--no-evidence", "--columns", "text"]
    args += ["--model", "custom:fake-small", "--model", "custom:fake-alt", "--judge", "custom:fake-contrarian"]
    out = tmp_path / "out.csv"
    done = run_cli([*args, "--base-url", llm.url, "-o", str(out)], env)
    assert done.returncode == 0, done.stderr
    df = read_table(out).df
    assert df["consensus.code"].tolist() == ["quality"] * 5
    assert df["decided_by"].tolist() == ["unanimous"] * 5
    assert not any(r.model == "fake-contrarian" for r in llm.requests())
    assert "evidence" not in next(r.system for r in llm.requests()).split("Reply with")[-1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["code", "IN", "--codebook", "missing.csv"], "No such codebook file: missing.csv"),
        (["code", "IN", "--codebook", "Motives"], "The saved codebooks: 'Reasons'."),
        (["code", "IN", "--codebook", "Reasons@7"], "The codebook 'Reasons' has no version 7; its versions: 1."),
        (["code", "IN", "--codebook", "BAD"], "Cannot read the codebook bad.csv: The CSV has no 'name' column"),
        (["code", "IN", "--codebook", "TWICE"], "'Price' and 'price' are the same name"),
        (["compare", "IN", "--codebook", "CB", "--fields", "x:string:y"], "a codebook defines the output"),
        (["compare", "IN"], "--prompt, or a codebook with --codebook"),
        (["consensus", "IN"], "--prompt, or a codebook with --codebook"),
    ],
)
def test_bad_codebook_input_is_one_line_and_exit_2(llm, env, src, codebook, tmp_path, args, message):
    if args[-1].startswith(("Motives", "Reasons")):
        assert run_cli(["codebooks", "import", str(codebook), "--name", "Reasons"], env).returncode == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("label_text,meaning\nprice,cost\n")
    twice = tmp_path / "twice.csv"
    twice.write_text("name\nprice\nPrice\n")
    files = {"IN": src, "CB": codebook, "BAD": bad, "TWICE": twice}
    args = [str(files[a]) if a in files else a for a in args]
    models = ["--model", "custom:fake-small", "--model", "custom:fake-alt"]
    done = run_cli([*args, *models, "--base-url", llm.url, "--output", str(tmp_path / "out.csv")], env)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert llm.requests() == []


def test_codebooks_import_list_export_round_trip(env, tmp_path):
    first = Codebook("Reasons", (Code("price", "What it costs", examples=("too dear",)), Code("quality")))
    path = tmp_path / "reasons.json"
    path.write_text(json.dumps(first.record()))
    done = run_cli(["codebooks", "import", str(path), "--note", "first"], env)
    assert (done.returncode, done.stdout.strip()) == (0, "codebook 'Reasons' version 1: 2 codes from reasons.json")
    again = run_cli(["codebooks", "import", str(path)], env)
    assert "unchanged: already saved as version 1" in again.stdout
    changed = tmp_path / "more.csv"
    changed.write_text("name,definition\nprice,What it costs\nquality,\nservice,How staff behave\n")
    done = run_cli(["codebooks", "import", str(changed), "--name", "Reasons"], env)
    assert "codebook 'Reasons' version 2: 3 codes from more.csv" in done.stdout
    listed = run_cli(["codebooks", "list"], env)
    assert listed.returncode == 0
    [line] = listed.stdout.strip().splitlines()
    assert line.split()[:4] == ["Reasons", "v2", "3", "codes"]
    qdc = tmp_path / "reasons.qdc"
    done = run_cli(["codebooks", "export", "Reasons@1", "--output", str(qdc)], env)
    assert done.returncode == 0, done.stderr
    back = read_codebook(qdc.name, qdc.read_bytes())
    assert [(c.name, c.definition, c.examples) for c in back.codes] == [
        ("price", "What it costs", ("too dear",)),
        ("quality", "", ()),
    ]
    latest = tmp_path / "latest.md"
    assert run_cli(["codebooks", "export", "Reasons", "-o", str(latest)], env).returncode == 0
    assert read_codebook(latest.name, latest.read_bytes()).labels() == ["price", "quality", "service", "none"]
    wrong = run_cli(["codebooks", "export", "Reasons", "-o", str(tmp_path / "reasons.xlsx")], env)
    assert wrong.returncode == 2 and "--output must end in .csv, .json, .md, .qdc" in wrong.stderr
