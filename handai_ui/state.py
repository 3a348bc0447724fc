"""State that outlives a rerun: the user's choices saved in the ledger's settings (never a key),
and widget values kept while the user visits other pages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from .services import db


def saved(name: str, default: Any) -> Any:
    return db().get_setting(f"ui.{name}", default)


def remember(name: str, value: Any) -> None:
    if saved(name, None) != value:
        db().set_setting(f"ui.{name}", value)


def keep(*keys: str) -> None:
    """Widget values that survive leaving the page (Streamlit drops a widget's state with its
    page): restore them from a shadow copy now; `kept` records them again after every change."""
    for key in keys:
        shadow = f"_kept_{key}"
        if key not in st.session_state and shadow in st.session_state:
            st.session_state[key] = st.session_state[shadow]


def kept(*keys: str) -> None:
    """Record the current values of widgets listed in `keep` (call at the end of the page)."""
    for key in keys:
        if key in st.session_state:
            st.session_state[f"_kept_{key}"] = st.session_state[key]


def set_page_widget(key: str, value: Any) -> None:
    """Set a widget of another page: its kept copy, which the page restores (`keep`)."""
    st.session_state.pop(key, None)
    st.session_state[f"_kept_{key}"] = value


def follow_table_columns(key: str, columns: Sequence[str]) -> None:
    """A column choice (the multiselect under `key`) follows a changed table: columns it lacks are
    dropped, and columns the previous table did not have are added, as a first upload chooses every
    column (documents split into speaker turns gain `speaker`); a column the user took out stays out."""
    seen_key = f"{key}_for"
    now = list(columns)
    chosen, before = st.session_state.get(key), st.session_state.get(seen_key)
    st.session_state[seen_key] = now
    if not isinstance(chosen, list) or before == now:
        return
    known = set(before) if isinstance(before, list) else set(now)
    st.session_state[key] = [c for c in now if c in chosen or c not in known]  # in the table's order
