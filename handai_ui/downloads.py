"""Download buttons for a results table: one per export format, built only on click.

CSV's formula guard is the user's choice, shown with what it does to this table; every other
format keeps every cell exactly (see handai_io.export).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from handai_io import EXPORT_FORMATS, FORMULA_GUARD_HELP, export_bytes, guarded_cells


def downloads(frame: pd.DataFrame, stem: str, key: str) -> None:
    guard = st.checkbox(
        "Protect against spreadsheet formulas (CSV)",
        value=True,
        key=f"dl_{key}_guard",
        help=FORMULA_GUARD_HELP,
    )
    st.caption(guard_caption(guarded_cells(frame), guard))
    cols = st.columns(len(EXPORT_FORMATS))
    for col, (fmt, mime) in zip(cols, EXPORT_FORMATS.items(), strict=True):
        col.download_button(
            fmt.upper(),
            data=lambda fmt=fmt: export_bytes(frame, fmt, guard=guard),
            file_name=f"{stem}.{fmt}",
            mime=mime,
            icon=":material/download:",
            key=f"dl_{key}_{fmt}",
            on_click="ignore",
        )


def guard_caption(cells: int, guard: bool) -> str:
    """What the CSV download does to this table's cells, in one sentence."""
    exact = "XLSX, JSON, JSONL and Parquet keep every cell exactly."
    if cells == 0:
        return f":material/check: No cell starts with = + - or @, so the CSV keeps every cell exactly too; {exact}"
    many = f"{cells:,} cell{'s' if cells != 1 else ''} start{'s' if cells == 1 else ''} with = + - or @"
    if guard:
        return f":material/shield: {many} and get a leading ' in the CSV; {exact}"
    return (
        f":material/warning: {many} and stay as they are in the CSV: a spreadsheet may run them as "
        f"formulas when it opens the file. {exact}"
    )
