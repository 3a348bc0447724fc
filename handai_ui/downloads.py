"""Download buttons for a results table: one per export format, built only on click.

CSV's formula guard is the user's choice, shown with what it does to this table; XLSX drops the
control characters XML cannot hold, and says how many cells that touches; every other format keeps
every cell exactly (see handai_io.export). ``guard_choice`` is the same box and caption for any
other CSV download (a codebook, a reliability report).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from handai_io import EXPORT_FORMATS, FORMULA_GUARD_HELP, export_bytes, guarded_cells, xlsx_changed_cells

EXACT_FORMATS = "XLSX, JSON, JSONL and Parquet"


def downloads(frame: pd.DataFrame, stem: str, key: str) -> bool:
    """The guard box, what the exports change, a button per format; whether the CSV guard is on."""
    cleaned = xlsx_changed_cells(frame)
    exact = "JSON, JSONL and Parquet" if cleaned else EXACT_FORMATS
    guard = guard_choice(guarded_cells(frame), f"dl_{key}_guard", exact=exact)
    if cleaned:
        st.caption(xlsx_caption(cleaned))
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
    return guard


def guard_choice(cells: int, key: str, *, exact: str = EXACT_FORMATS) -> bool:
    """The CSV formula-guard box (on by default) and what it does to ``cells`` cells; whether it is on.
    ``exact`` names the other downloads beside it, which keep every cell exactly."""
    guard = st.checkbox("Protect against spreadsheet formulas (CSV)", value=True, key=key, help=FORMULA_GUARD_HELP)
    st.caption(guard_caption(cells, guard, exact=exact))
    return guard


def guard_caption(cells: int, guard: bool, *, exact: str = EXACT_FORMATS) -> str:
    """What the CSV download does to this table's cells, in one sentence."""
    rest = f"{exact} keep{'s' if ' and ' not in exact else ''} every cell exactly."
    if cells == 0:
        return f":material/check: No cell starts with = + - or @, so the CSV keeps every cell exactly too; {rest}"
    one = cells == 1
    many = f"{cells:,} cell{'' if one else 's'} start{'s' if one else ''} with = + - or @"
    if guard:
        return f":material/shield: {many} and get{'s' if one else ''} a leading ' in the CSV; {rest}"
    return (
        f":material/warning: {many} and stay{'s' if one else ''} as {'it is' if one else 'they are'} in the CSV: "
        f"a spreadsheet may run {'it as a formula' if one else 'them as formulas'} when it opens the file. {rest}"
    )


def xlsx_caption(cells: int) -> str:
    return f":material/info: {xlsx_sentence(cells)}"


def xlsx_sentence(cells: int) -> str:
    """What the XLSX download does to cells holding control characters (a vertical tab, NUL)."""
    many = f"{cells:,} cell{'s' if cells != 1 else ''} hold{'s' if cells == 1 else ''}"
    return f"{many} control characters XLSX cannot store; removed in the XLSX only."
