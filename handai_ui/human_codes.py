"""Human coders beside the models, in the same ledger: codes imported from a file (a column per
coder, matched to the run's rows by an id column or by position) or typed by hand, row by row.
Each coder is a rater of the run; removing one removes only that coder's codes."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from handai_db import ADJUDICATED_RATER, Run
from handai_io import ReadOptions
from research.raters import CONSENSUS, HUMAN, MODEL, RaterTable, align_codes

from .results import numbered
from .services import db
from .text import md
from .upload import read_upload

BY_POSITION = "(by position)"
HAND_ROWS = 50


def human_coders(run: Run, table: RaterTable, prefix: str) -> None:
    """Import, code by hand, or remove human coders of `run`."""
    humans = table.names(HUMAN)
    title = f"Human coders ({len(humans)})" if humans else "Human coders"
    with st.expander(title, icon=":material/groups:", expanded=not humans):
        tabs = st.tabs(["From the run's own columns", "Import codes", "Code by hand", "Remove a coder"])
        with tabs[0]:
            _own_columns(run, table, prefix)
        with tabs[1]:
            _import(run, table, prefix)
        with tabs[2]:
            _by_hand(run, table, prefix)
        with tabs[3]:
            _remove(run, humans, prefix)


def _own_columns(run: Run, table: RaterTable, prefix: str) -> None:
    """Human codes that came in the uploaded table itself (a column per coder, beside the text)."""
    coders = st.multiselect(
        "Columns of the run's input that hold a person's codes",
        list(table.inputs.columns),
        key=f"{prefix}_own_coders",
        help="Each becomes a human coder of this run, row by row.",
    )
    if coders and st.button("Add them as human coders", icon=":material/group_add:", key=f"{prefix}_own_save"):
        codes, _ = align_codes(table.inputs, table.inputs, coders, labels=table.labels, multi_label=table.multi_label)
        _save(run, table, codes)


def _taken(table: RaterTable) -> set[str]:
    """Names a human coder cannot have: the models', the consensus and the settled decisions."""
    return {*table.names(MODEL, CONSENSUS), CONSENSUS, ADJUDICATED_RATER}


def _save(run: Run, table: RaterTable, codes: dict[str, dict[int, Any]]) -> None:
    taken = _taken(table)
    for coder, values in codes.items():
        name = f"{coder} (human)" if coder in taken else coder
        db().save_ratings(run.id, name, values, author=name)
    st.toast(f"Saved {len(codes)} human coder(s) for run #{run.id}.", icon=":material/check:")
    st.rerun()


def _import(run: Run, table: RaterTable, prefix: str) -> None:
    st.caption(
        "A table with one column per human coder (an empty cell is 'not coded'; several codes in a cell are "
        "separated by ';'). Rows are matched to the run's rows by an id column present in both, or by position "
        "(the file's first row is the run's first row)."
    )
    file = st.file_uploader("Human codes", key=f"{prefix}_hc_file", type=["csv", "xlsx", "xls", "json", "tsv", "txt"])
    if file is None:
        return
    upload = read_upload(f"{prefix}_hc_read", file.getvalue(), file.name, ReadOptions())
    if upload is None:
        return
    df = upload.table.df
    shared = [c for c in df.columns if c in table.inputs.columns]
    key = st.selectbox("Match rows on", [BY_POSITION, *shared], key=f"{prefix}_hc_key")
    candidates = [c for c in df.columns if c not in shared]
    coders = st.multiselect("Coder columns", candidates or list(df.columns), key=f"{prefix}_hc_coders")
    if not coders:
        st.caption("Choose the columns that hold each coder's codes.")
        return
    try:
        codes, how = align_codes(
            table.inputs,
            df,
            coders,
            key=None if key == BY_POSITION else key,
            labels=table.labels,
            multi_label=table.multi_label,
        )
    except ValueError as exc:
        st.error(md(exc), icon=":material/error:")
        return
    st.caption(md(how))
    taken = [c for c in coders if c in _taken(table)]
    if taken:
        st.caption(md(f"{', '.join(taken)}: a model's or the decisions' name; saved as '<name> (human)'."))
    if st.button("Save these coders", icon=":material/save:", key=f"{prefix}_hc_save"):
        _save(run, table, codes)


def _by_hand(run: Run, table: RaterTable, prefix: str) -> None:
    name = st.text_input("Your coder name", key=f"{prefix}_hand_name", placeholder="e.g. Coder A")
    if not name.strip():
        st.caption("Type your coder name to start; your codes are saved under it.")
        return
    name = name.strip()
    if name in _taken(table):
        st.error(f"'{md(name)}' is a model's or the settled decisions' name: pick another coder name.")
        return
    start = int(
        st.number_input(
            "From row", 1, max(1, len(table.frame)), 1, key=f"{prefix}_hand_start", help=f"{HAND_ROWS} rows at a time."
        )
    )
    rows = list(table.frame.index[start - 1 : start - 1 + HAND_ROWS])
    shown = numbered(table.inputs.loc[rows].reset_index(drop=True))
    shown.index = pd.Index([r + 1 for r in rows], name="row")
    current = table.frame[name] if name in table.frame.columns else pd.Series(index=table.frame.index, dtype=object)
    # An uncoded row is "" (data_editor draws None as a grey "None").
    shown[name] = [_cell(current.get(r)) for r in rows]
    if table.multi_label:
        column = st.column_config.TextColumn(name, help="Codes separated by '; '")
    elif table.labels:
        column = st.column_config.SelectboxColumn(name, options=table.labels)
    else:
        column = st.column_config.TextColumn(name)
    edited = st.data_editor(
        shown,
        disabled=[c for c in shown.columns if c != name],
        column_config={name: column},
        key=f"{prefix}_hand_{name}_{start}",
        width="stretch",
        placeholder="",
    )
    if st.button(f"Save {md(name)}'s codes for rows {rows[0] + 1}-{rows[-1] + 1}", icon=":material/save:"):
        values = {}
        for row, value in zip(rows, edited[name], strict=True):
            text = None if value is None or (isinstance(value, float) and pd.isna(value)) else str(value).strip()
            if table.multi_label and text:
                values[row] = [part.strip() for part in text.split(";") if part.strip()]
            else:
                values[row] = text or None
        db().save_ratings(run.id, name, values, author=name)
        st.toast(f"Saved {sum(v is not None for v in values.values())} codes by {md(name)}.", icon=":material/check:")
        st.rerun()


def _cell(value: Any) -> str:
    """A coder's code as the editor shows it: "" when not coded, codes joined by "; "."""
    if isinstance(value, list):
        return "; ".join(value)
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _remove(run: Run, humans: list[str], prefix: str) -> None:
    if not humans:
        st.caption("No human coder yet.")
        return
    who = st.selectbox("Coder", humans, key=f"{prefix}_hc_remove")
    if st.button(f"Remove {md(who)}'s codes", icon=":material/delete:", key=f"{prefix}_hc_remove_btn"):
        db().delete_ratings(run.id, who)
        st.rerun()
