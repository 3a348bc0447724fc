"""An uploaded table, read once per content and reading options and kept for the session."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from handai_io import FileReadError, LoadedTable, ReadOptions, content_hash, read_table

from .text import md


@dataclass(frozen=True)
class Upload:
    table: LoadedTable
    name: str
    digest: str  # the content's hash: the run's input_hash, and how estimates find test runs
    read_as: tuple[str, str]  # (name, options) it was read with


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
