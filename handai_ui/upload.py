"""An uploaded table, or uploaded documents made into rows, read once per content and reading
options and kept for the session."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import streamlit as st
from streamlit.delta_generator import DeltaGenerator
from streamlit.runtime.uploaded_file_manager import UploadedFile

from handai_io import (
    SPLITS,
    SUPPORTED_EXTENSIONS,
    FileReadError,
    LoadedTable,
    ReadOptions,
    content_hash,
    is_document,
    read_documents,
    read_table,
)
from handai_io.documents import DEFAULT_MAX_CHARS, manifest

from .text import md


@dataclass(frozen=True)
class Upload:
    table: LoadedTable
    name: str
    digest: str  # the content's hash: the run's input_hash, and how estimates find test runs
    read_as: tuple[str, str]  # (name, options) it was read with
    problems: tuple[str, ...] = ()  # documents only: one message per file that could not be read


def read_upload(key: str, data: bytes, name: str, options: ReadOptions) -> Upload | None:
    """The file read with `options` (kept under `key`); a file that cannot be read shows one
    message and nothing else."""
    digest = content_hash(data)
    kept = st.session_state.get(key)
    if kept is not None and kept.digest == digest and kept.read_as == (name, repr(options)):
        return kept
    try:
        table = read_table(data, name, options)
    except FileReadError as exc:
        forget_upload(key)
        st.error(md(exc), icon=":material/error:")
        return None
    st.session_state[key] = Upload(table, name, digest, (name, repr(options)))
    return st.session_state[key]


ENCODINGS = ["detect", "utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16"]
DELIMITERS = ["detect", ",", ";", "\\t", "|"]
SUBHEADER_HELP = (
    "Survey exports and hand-made sheets often put the answer options in a second header row, under "
    "their question (left blank over a question's further columns). Turn this on to join the two rows "
    'into each column\'s name ("Question - Option") instead of reading the second row as data.'
)


def reading_options(prefix: str) -> tuple[ReadOptions, DeltaGenerator]:
    """The "Reading options" expander (widget keys ``{prefix}_encoding``, ``_delimiter``, ``_skip``,
    ``_subheader``, ``_sheet``): the options it sets, and an empty slot for the sheet picker, which
    is filled once the file is read and its sheets are known (``sheet_picker``)."""
    with st.expander("Reading options", icon=":material/tune:"):
        c = st.columns(4)
        encoding = c[0].selectbox("Encoding", ENCODINGS, key=f"{prefix}_encoding")
        delimiter = c[1].selectbox("Delimiter", DELIMITERS, key=f"{prefix}_delimiter")
        skip = c[2].number_input(
            "Skip lines above the header", 0, 1000, value=None, key=f"{prefix}_skip", placeholder="detect"
        )
        sheet_slot = c[3].empty()
        subheader = st.checkbox(
            "The row under the header is a second header row (sub-header)",
            key=f"{prefix}_subheader",
            help=SUBHEADER_HELP,
        )
    options = ReadOptions(
        encoding=None if encoding == "detect" else encoding,
        delimiter=None if delimiter == "detect" else delimiter.replace("\\t", "\t"),
        skip_rows=None if skip is None else int(skip),
        sheet=st.session_state.get(f"{prefix}_sheet"),
        subheader=subheader,
    )
    return options, sheet_slot


def sheet_picker(prefix: str, slot: DeltaGenerator, upload: Upload) -> None:
    """The sheet picker in the expander's slot, for a workbook; the notes of what the reader guessed."""
    if upload.table.sheets:
        slot.selectbox("Sheet", upload.table.sheets, key=f"{prefix}_sheet")
    for note in upload.table.notes:  # header row, sub-header, survey export, encoding, renamed columns…
        st.caption(f":material/info: {md(note)}")


def earlier_upload(key: str) -> Upload | None:
    """The file read earlier in this session (the uploader forgets it when the page is left)."""
    return st.session_state.get(key)


def forget_upload(key: str) -> None:
    st.session_state.pop(key, None)


SPLIT_LABELS = {"document": "Whole document", "paragraph": "Paragraph", "page": "Page (PDF)", "turn": "Speaker turn"}
MAX_CHARS_HELP = (
    "A segment longer than this becomes several rows, cut at paragraph, then sentence boundaries, so "
    "no row is too long for the model. The notes say how many were cut."
)


def read_uploads(prefix: str, key: str, files: Sequence[UploadedFile]) -> Upload | None:
    """What the uploader holds, read: one table file exactly as before (reading options, sheet
    picker); documents, or several files, as document rows with the "Split into" choice."""
    if len(files) == 1 and _is_table(files[0].name) and not _text_as_document(prefix, files[0].name):
        options, sheet_slot = reading_options(prefix)
        upload = read_upload(key, files[0].getvalue(), files[0].name, options)
        if upload is not None:
            sheet_picker(prefix, sheet_slot, upload)
        return upload
    tables = [f.name for f in files if not is_document(f.name)]
    if tables:
        st.error(
            f"{md(', '.join(tables))}: a table is uploaded on its own. Remove it to read the documents, "
            "or upload only the table.",
            icon=":material/error:",
        )
        return None
    split, max_chars = document_options(prefix)
    upload = read_document_upload(key, [(f.name, f.getvalue()) for f in files], split, max_chars)
    document_messages(upload)
    return upload if len(upload.table.df) else None


def _is_table(name: str) -> bool:
    return name.rsplit(".", 1)[-1].lower() in SUPPORTED_EXTENSIONS


def _text_as_document(prefix: str, name: str) -> bool:
    """A lone .txt is a table unless the user says it is a document (a transcript, say)."""
    if not name.lower().endswith(".txt"):
        return False
    return st.toggle(
        "Read this text file as a document (paragraphs or speaker turns), not as a table",
        key=f"{prefix}_txt_as_document",
    )


def document_options(prefix: str) -> tuple[str, int]:
    """The "Split into" choice and the longest row (keys ``{prefix}_split``, ``{prefix}_max_chars``)."""
    c = st.columns([3, 1], vertical_alignment="bottom")
    split = c[0].radio(
        "Split into",
        SPLITS,
        format_func=SPLIT_LABELS.__getitem__,
        horizontal=True,
        key=f"{prefix}_split",
        help="One row per document, or per paragraph, per page (PDF) or per speaker turn ('Name:' lines).",
    )
    max_chars = c[1].number_input(
        "Max characters per row",
        100,
        200_000,
        value=DEFAULT_MAX_CHARS,
        step=500,
        key=f"{prefix}_max_chars",
        help=MAX_CHARS_HELP,
    )
    return str(split), int(max_chars)


NAMED_FILES = 3  # documents named in the input's name (and so in provenance and METHODS.md); then "and N more"


def read_document_upload(key: str, files: list[tuple[str, bytes]], split: str, max_chars: int) -> Upload:
    """The documents as rows (kept under `key` until the files or the options change)."""
    chosen = len(files)
    files = list(dict.fromkeys(files))  # a file picked twice (same name and bytes) is read once
    digest = content_hash(manifest(files))  # the CLI hashes the same documents the same way
    read_as = ("documents", f"{split}/{max_chars}")
    kept = st.session_state.get(key)
    if kept is not None and kept.digest == digest and kept.read_as == read_as:
        return kept
    result = read_documents(files, split=split, max_chars=max_chars)
    names = [n for n, _ in files]
    name = ", ".join(names[:NAMED_FILES]) + (
        f" and {len(names) - NAMED_FILES} more" if len(names) > NAMED_FILES else ""
    )
    twice = (
        [f"{chosen - len(files)} file(s) chosen twice (same name and content) were read once."]
        if chosen > len(files)
        else []
    )
    table = LoadedTable(result.df, None, None, [], None, 0, [*twice, *result.notes], name)
    problems = tuple(problem.message for problem in result.errors)
    st.session_state[key] = Upload(table, name, digest, read_as, problems)
    return st.session_state[key]


def document_messages(upload: Upload | None) -> None:
    """One message per file that could not be read, then the notes (what was split or left out)."""
    if upload is None:
        return
    for problem in upload.problems:
        st.error(md(problem), icon=":material/error:")
    for note in upload.table.notes:
        st.caption(f":material/info: {md(note)}")
