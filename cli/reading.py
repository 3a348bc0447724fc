"""Reading the input as the app reads an upload: a table with the app's reading options (sheet,
encoding, delimiter, lines above the header, a second header row) and its notes on stderr, or
documents (a file, a ZIP, a folder) made into rows."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from handai_io import (
    DOCUMENT_EXTENSIONS,
    MAX_UPLOAD_BYTES,
    SPLITS,
    LoadedTable,
    ReadOptions,
    read_documents,
    read_table,
)
from handai_io.documents import DEFAULT_MAX_CHARS, manifest, read_document_folder
from handai_io.header import SKIP_OPTION

from .common import CliError


def read_input(args: argparse.Namespace) -> tuple[Path, bytes, LoadedTable]:
    """The input as rows, with the bytes its input hash is taken of. A table file reads as before
    (the file's bytes). A document, a ZIP of documents or a folder of them becomes document rows
    (``--split``, ``--max-chars``; the hash is of each file's name and hash, as the app takes it);
    a file that cannot be read is one line on stderr and the rest load. A lone .txt is a table
    unless --split or --max-chars says it is a document."""
    path = Path(args.input)
    split, max_chars = getattr(args, "split", None), getattr(args, "max_chars", None)
    if path.is_dir():
        return path, *_documents(args, path, split, max_chars)
    if not path.is_file():
        raise CliError(f"No such file or folder: {path}")
    suffix = path.suffix.lower().lstrip(".")
    as_document = split is not None or max_chars is not None
    if suffix in DOCUMENT_EXTENSIONS and (suffix != "txt" or as_document):
        return path, *_documents(args, path, split, max_chars)
    if as_document:
        raise CliError(f"--split and --max-chars read documents; {path.name} is read as a table.")
    data = path.read_bytes()
    table = read_table(data, path.name, _read_options(args))
    for note in table_notes(table):
        print(f"note: {note}", file=sys.stderr)
    if suffix == "txt":
        print(f"note: {path.name} read as a table; add --split to read it as a document.", file=sys.stderr)
    return path, data, table


def table_notes(table: LoadedTable) -> list[str]:
    """What the reader guessed or changed (the header line chosen, a survey export, renamed
    columns…), worded for the command line. A header on the first line with nothing skipped is
    the usual case and goes unsaid."""
    notes = []
    for note in table.notes:
        if note.startswith(HEADER_NOTE) and table.header_row == 1 and not table.skipped_rows:
            continue
        notes.append(note.replace(f"under {SKIP_OPTION}", "with --skip-rows N").replace(APP_SET, CLI_SET))
    return notes


HEADER_NOTE = "Header taken from"
APP_SET, CLI_SET = "as set in the reading options", "as set with --skip-rows"


def _read_options(args: argparse.Namespace) -> ReadOptions:
    """The table reading options the app's "Reading options" offer, from the flags."""
    skip = getattr(args, "skip_rows", None)
    if skip is not None and skip < 0:
        raise CliError("--skip-rows must be 0 or more.")
    delimiter = getattr(args, "delimiter", None)
    if delimiter is not None:
        delimiter = DELIMITER_NAMES.get(delimiter.lower(), delimiter)
        if len(delimiter) != 1:
            raise CliError(f"--delimiter must be one character, or tab (got {delimiter!r}).")
    return ReadOptions(
        sheet=getattr(args, "sheet", None),
        encoding=getattr(args, "encoding", None),
        delimiter=delimiter,
        skip_rows=skip,
        subheader=getattr(args, "subheader", False),
    )


DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
TABLE_ONLY = ("sheet", "encoding", "delimiter", "skip_rows", "subheader")  # flags for tables, not documents


def _is_set(value: Any) -> bool:
    """A flag the user gave: `--skip-rows 0` is one, an untouched option (None) or switch (False) not."""
    return value is not None and value is not False


def _documents(
    args: argparse.Namespace, path: Path, split: str | None, max_chars: int | None
) -> tuple[bytes, LoadedTable]:
    """Document rows from a file, a ZIP or a folder; each file that cannot be read is one
    "skipped:" line, and nothing readable at all is a user error (exit 2)."""
    given = [f"--{n.replace('_', '-')}" for n in TABLE_ONLY if _is_set(getattr(args, n, None))]
    if given:
        raise CliError(
            f"{', '.join(given)} read{'s' if len(given) == 1 else ''} tables; documents are read with their "
            "encoding detected."
        )
    if max_chars is not None and max_chars < 100:
        raise CliError("--max-chars must be at least 100.")
    options = {"split": split or "document", "max_chars": DEFAULT_MAX_CHARS if max_chars is None else max_chars}
    many = path.is_dir() or path.suffix.lower() == ".zip"
    if path.is_dir():
        result, files = read_document_folder(path, **options)
    elif path.stat().st_size > MAX_UPLOAD_BYTES:
        raise CliError(f"{path.name} is larger than {MAX_UPLOAD_BYTES / 2**20:,.0f} MB. Split it.")
    else:
        files = [(path.name, path.read_bytes())]
        result = read_documents(files, **options)
    if not many and result.errors:
        raise CliError(result.errors[0].message)
    for problem in result.errors:
        print(f"skipped: {problem.message}", file=sys.stderr)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if result.df.empty:
        failed = len(result.errors)
        said = f"{failed} file{'s' if failed != 1 else ''} could not be read" if failed else "it holds no files"
        raise CliError(f"No readable document in {path.name} ({said}).")
    return manifest(files), LoadedTable(result.df, None, None, [], None, 0, result.notes, path.name)


def add_table_options(p: argparse.ArgumentParser) -> None:
    """How a table is read, as the app's "Reading options": sheet, encoding, delimiter, the lines
    above the header, a second header row."""
    p.add_argument("--sheet", help="worksheet name for Excel files")
    p.add_argument("--encoding", help="text encoding of a table (default: detected)")
    p.add_argument("--delimiter", help="a text table's delimiter: one character, or tab (default: detected)")
    p.add_argument(
        "--skip-rows",
        type=int,
        metavar="N",
        help="skip exactly N lines above the header (default: detected; the note on stderr says which line was "
        "taken as the header)",
    )
    p.add_argument(
        "--subheader",
        action="store_true",
        help="the row under the header is a second header row (answer options under their question): join it "
        'into the names ("Question - Option") instead of reading it as data',
    )


def add_input_options(p: argparse.ArgumentParser) -> None:
    """How the input is read: a table's reading options; documents' split and longest row."""
    add_table_options(p)
    p.add_argument(
        "--split",
        choices=SPLITS,
        help="documents: one row per document (the default), paragraph, page (PDF) or speaker turn ('Name:' lines); "
        "with a .txt file, read it as a document, not a table",
    )
    p.add_argument(
        "--max-chars",
        type=int,
        metavar="N",
        help=f"documents: a segment longer than N characters becomes several rows, cut at paragraph, then "
        f"sentence boundaries (default: {DEFAULT_MAX_CHARS:,})",
    )


INPUT_HELP = (
    "a table (CSV, TSV, TXT, Excel, JSON, JSONL, Parquet), or documents: a PDF, DOCX, TXT, Markdown or HTML file, "
    "a ZIP of them, or a folder of them"
)
