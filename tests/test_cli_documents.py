"""Documents as the command line's input: a folder (or ZIP, or one file) of transcripts becomes
rows through the same reader as the app, split by `--split`; a file that cannot be read is one
line on stderr while the rest load; nothing readable is exit 2. A lone .txt stays a table unless
`--split` says it is a document. In-process (`tests.helpers.run_cli`) against the fake server."""

from __future__ import annotations

from pathlib import Path

import pytest

from handai_db import Database, default_url
from handai_io import content_hash, read_table
from handai_io.documents import manifest
from tests import helpers
from tests.helpers import cli_env
from tests.test_documents import docx_bytes, pdf_bytes, zip_bytes

DOCX = docx_bytes(["Date: 3 May 2021", "Interviewer: How did you start?", "Ann: By chance.", "Interviewer: Then?"])
PDF = pdf_bytes([["Interviewer: Hello", "Bob: Hi there"], ["Interviewer: Bye"]])
BROKEN = b"%PDF-1.4 this is not a pdf"


@pytest.fixture
def run_cli(llm, tmp_path):
    """`handai_cli.py ARGS --provider/--model … --output OUT.csv` in this process, as a fresh
    process runs it: (exit code, stdout, stderr, the output file)."""
    env = cli_env(tmp_path / "handai-data", HANDAI_CUSTOM_API_KEY="k")  # the ledger the test reads
    out = tmp_path / "out.csv"

    def run(command: str, source: Path, *options: str) -> tuple[int, str, str, Path]:
        models = ["--provider", "custom", "--model", "fake-small"] if command == "transform" else []
        models += ["--model", "custom:fake-small", "--model", "custom:fake-alt"] if command == "compare" else []
        done = helpers.run_cli(
            [command, str(source), "--prompt", "Code it.", *models, "--base-url", llm.url, "-o", str(out), *options],
            env,
        )
        return done.returncode, done.stdout, done.stderr, out

    return run


def folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_a_folder_of_transcripts_split_into_turns_with_a_broken_file_said_on_stderr(run_cli, llm, tmp_path):
    source = folder(tmp_path / "interviews", {"a.docx": DOCX, "b.pdf": PDF, "broken.pdf": BROKEN, ".DS_Store": b"x"})
    code, out, err, path = run_cli("transform", source, "--split", "turn", "--columns", "speaker,text")
    assert code == 0, err
    df = read_table(path).df
    assert list(df.columns[:5]) == ["document", "segment", "position", "speaker", "text"]
    shown = df[["document", "segment", "position", "speaker", "text"]].fillna("")
    assert [tuple(r) for r in shown.itertuples(index=False)] == [
        ("interviews/a.docx", "1", "paragraph 1", "", "Date: 3 May 2021"),
        ("interviews/a.docx", "2", "paragraph 2", "Interviewer", "How did you start?"),
        ("interviews/a.docx", "3", "paragraph 3", "Ann", "By chance."),
        ("interviews/a.docx", "4", "paragraph 4", "Interviewer", "Then?"),
        ("interviews/b.pdf", "1", "page 1, line 1", "Interviewer", "Hello"),
        ("interviews/b.pdf", "2", "page 1, line 2", "Bob", "Hi there"),
        ("interviews/b.pdf", "3", "page 2, line 1", "Interviewer", "Bye"),
    ]
    assert df["ai_status"].tolist() == ["succeeded"] * 7
    assert err.splitlines()[0] == (
        "skipped: 'interviews/broken.pdf' is not a readable PDF (damaged, or not a PDF). Re-save or re-export it."
    )
    assert sum("broken.pdf" in line for line in err.splitlines()) == 1
    assert "run 1: 7 rows from interviews" in out
    assert len(llm.requests()) == 7
    db = Database(default_url())
    try:  # the same files hash as the app hashes an upload of them
        files = [("interviews/a.docx", DOCX), ("interviews/b.pdf", PDF), ("interviews/broken.pdf", BROKEN)]
        assert db.get_run(1).input_hash == content_hash(manifest(files))
    finally:
        db.close()


def test_a_folder_with_nothing_readable_is_exit_2_and_no_call(run_cli, llm, tmp_path):
    source = folder(tmp_path / "bad", {"one.pdf": BROKEN, "two.docx": b"PK\x03\x04 not a docx"})
    code, _out, err, path = run_cli("transform", source, "--split", "turn")
    assert code == 2
    lines = err.strip().splitlines()
    assert [line.split("'")[1] for line in lines[:2]] == ["bad/one.pdf", "bad/two.docx"]
    assert lines[2] == "error: No readable document in bad (2 files could not be read)."
    assert llm.requests() == [] and not path.exists()


def test_a_zip_of_documents_flows_into_compare_one_row_per_paragraph(run_cli, llm, tmp_path):
    archive = tmp_path / "set.zip"
    archive.write_bytes(zip_bytes({"a.md": b"# Notes\n\nFirst point.", "b.html": b"<p>Second point.</p>"}))
    code, _out, err, path = run_cli("compare", archive, "--split", "paragraph", "--columns", "text")
    assert code == 0, err
    df = read_table(path).df
    assert df["document"].tolist() == ["set.zip/a.md", "set.zip/a.md", "set.zip/b.html"]
    assert df["position"].tolist() == ["paragraph 1 (line 1)", "paragraph 2 (line 3)", "paragraph 1"]
    assert len(llm.requests()) == 6  # 3 rows x 2 models


def test_a_txt_is_a_table_unless_split_says_it_is_a_document(run_cli, tmp_path):
    source = tmp_path / "talk.txt"
    source.write_text("Interviewer: Why?\nAnn: Because.\nInterviewer: Thanks.\n")
    code, _out, err, path = run_cli("transform", source, "--limit", "1")
    assert code == 0, err
    assert "talk.txt read as a table; add --split" in err
    assert list(read_table(path).df.columns)[:1] == ["Interviewer: Why?"]  # the first line is the header
    code, _out, err, path = run_cli("transform", source, "--split", "turn", "--max-chars", "500")
    assert code == 0, err
    assert read_table(path).df["speaker"].tolist() == ["Interviewer", "Ann", "Interviewer"]


@pytest.mark.parametrize(
    ("name", "data", "options", "message"),
    [
        ("one.pdf", BROKEN, [], "error: 'one.pdf' is not a readable PDF"),
        ("t.csv", b"id,text\n1,a\n", ["--split", "turn"], "--split and --max-chars read documents; t.csv is"),
        ("a.docx", DOCX, ["--encoding", "cp1252"], "--encoding reads tables; documents are read"),
        ("a.docx", DOCX, ["--skip-rows", "2", "--delimiter", ";"], "--delimiter, --skip-rows read tables"),
        ("a.docx", DOCX, ["--max-chars", "50"], "--max-chars must be at least 100."),
        ("missing", None, [], "No such file or folder:"),
    ],
)
def test_bad_document_input_is_one_line_and_exit_2(run_cli, llm, tmp_path, name, data, options, message):
    source = tmp_path / name
    if data is not None:
        source.write_bytes(data)
    code, _out, err, _path = run_cli("transform", source, *options)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert llm.requests() == []
