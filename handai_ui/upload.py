"""An uploaded table, read once per content and reading options and kept for the session."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

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


def earlier_upload(key: str) -> Upload | None:
    """The file read earlier in this session (the uploader forgets it when the page is left)."""
    return st.session_state.get(key)


def forget_upload(key: str) -> None:
    st.session_state.pop(key, None)
