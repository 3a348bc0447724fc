"""The coded table a researcher takes away: every row with each coder's code and reason and the
settled decision, in each export format, and in one ZIP with the reliability report (CSV and
Markdown) computed on screen, so the figures travel with the data they describe."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from handai_io import export_bytes, zip_bundle
from research.stats import Report

from .downloads import downloads


def coded_downloads(coded: pd.DataFrame, report: Report | None, stem: str, key: str) -> None:
    downloads(coded, stem, key=key)
    guard = bool(st.session_state.get(f"dl_{key}_guard", True))

    def bundle() -> bytes:
        files: dict[str, bytes | str] = {
            f"{stem}.xlsx": export_bytes(coded, "xlsx", guard=False),
            f"{stem}.csv": export_bytes(coded, "csv", guard=guard),
        }
        if report is not None:
            files["reliability_report.csv"] = report.to_csv()
            files["reliability_report.md"] = report.to_markdown()
        return zip_bundle(files)

    st.download_button(
        "Coded table with the reliability report (ZIP)" if report is not None else "Coded table (ZIP)",
        data=bundle,
        file_name=f"{stem}.zip",
        mime="application/zip",
        icon=":material/folder_zip:",
        key=f"{key}_zip",
        on_click="ignore",
        help="The table as XLSX and CSV (with the formula choice above), and the report's figures as CSV and "
        "Markdown with their definitions.",
    )
