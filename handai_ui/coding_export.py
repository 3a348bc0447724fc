"""The coded table a researcher takes away: every row with each coder's code and reason and the
settled decision, in each export format, and in one ZIP with the reliability report (CSV and
Markdown) computed on screen, so the figures travel with the data they describe. The ZIP's CSV
files follow the formula-guard box above it, and its caption says how many cells that changes."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from handai_io import export_bytes, guarded_cells, xlsx_changed_cells, zip_bundle
from research.stats import Report
from research.stats.writers import report_guarded_cells

from .downloads import downloads, xlsx_sentence


def coded_downloads(coded: pd.DataFrame, report: Report | None, stem: str, key: str) -> None:
    guard = downloads(coded, stem, key=key)
    st.download_button(
        "Coded table with the reliability report (ZIP)" if report is not None else "Coded table (ZIP)",
        data=lambda: coded_bundle(coded, report, stem, guard=guard),
        file_name=f"{stem}.zip",
        mime="application/zip",
        icon=":material/folder_zip:",
        key=f"{key}_zip",
        on_click="ignore",
        help="The table as XLSX and CSV (with the formula choice above), and the report's figures as CSV and "
        "Markdown with their definitions.",
    )
    st.caption(zip_caption(coded, report, guard))


def coded_bundle(coded: pd.DataFrame, report: Report | None, stem: str, *, guard: bool) -> bytes:
    """The ZIP: the table as XLSX and CSV, the report as CSV and Markdown; both CSVs guarded as asked."""
    files: dict[str, bytes | str] = {
        f"{stem}.xlsx": export_bytes(coded, "xlsx"),
        f"{stem}.csv": export_bytes(coded, "csv", guard=guard),
    }
    if report is not None:
        files["reliability_report.csv"] = report.to_csv(guard=guard)
        files["reliability_report.md"] = report.to_markdown()
    return zip_bundle(files)


def zip_caption(coded: pd.DataFrame, report: Report | None, guard: bool) -> str:
    """What the ZIP's files change: the CSV files' guarded cells (or that the box is off), the XLSX's
    control characters."""
    cells = guarded_cells(coded) + (report_guarded_cells(report) if report is not None else 0)
    many = f"{cells:,} cell{'s' if cells != 1 else ''}"
    if cells == 0:
        said = ":material/check: In the ZIP, no CSV cell starts with = + - or @: every cell is kept exactly."
    elif guard:
        said = f":material/shield: In the ZIP's CSV files, {many} starting with = + - or @ get a leading '."
    else:
        said = f":material/warning: In the ZIP's CSV files, {many} starting with = + - or @ stay as they are."
    cleaned = xlsx_changed_cells(coded)
    return f"{said} {xlsx_sentence(cleaned)}" if cleaned else said
