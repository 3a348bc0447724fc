"""Download buttons for a results table: one per export format, built only on click."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from handai_io import EXPORT_FORMATS, export_bytes


def downloads(frame: pd.DataFrame, stem: str, key: str) -> None:
    cols = st.columns(len(EXPORT_FORMATS))
    for col, (fmt, mime) in zip(cols, EXPORT_FORMATS.items(), strict=True):
        col.download_button(
            fmt.upper(),
            data=lambda fmt=fmt: export_bytes(frame, fmt),
            file_name=f"{stem}.{fmt}",
            mime=mime,
            icon=":material/download:",
            key=f"dl_{key}_{fmt}",
            on_click="ignore",
        )
