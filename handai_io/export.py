"""Exports: CSV (UTF-8 with BOM, so Excel shows non-ASCII text), XLSX, JSON, JSON Lines; written safely.

Spreadsheet formats are guarded against formula injection (OWASP "CSV injection"); files are
replaced atomically, never left half-written.
"""

import datetime
import io
import json
import os
import re
import tempfile
from pathlib import Path

import openpyxl
import pandas as pd
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

EXPORT_FORMATS: dict[str, str] = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
    "jsonl": "application/x-ndjson",
}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_XLSX_MAX_ROWS = 1_048_576
_XLSX_MAX_COLUMNS = 16_384


def neutralize_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """A copy where text a spreadsheet would run as a formula starts with a single quote.

    OWASP's CSV-injection rule: cells starting with = + - @ tab or CR. Plain numbers such as
    "-3.5" are left alone; they cannot run anything. Column names are cells too.
    """
    out = df.copy()
    for position in range(out.shape[1]):
        column = out.iloc[:, position]
        if column.dtype == object or pd.api.types.is_string_dtype(column):
            out.isetitem(position, column.map(_neutralize_cell, na_action="ignore"))
    out.columns = [_neutralize_cell(name) for name in out.columns]
    return out


def _neutralize_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def export_bytes(df: pd.DataFrame, fmt: str) -> bytes:
    """The table as a download: CSV (UTF-8 with BOM) or XLSX with formulas neutralised; JSON/JSONL."""
    fmt = fmt.lower()
    if fmt == "csv":
        return neutralize_formulas(df).to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")
    if fmt == "xlsx":
        return _xlsx_bytes(neutralize_formulas(df))
    if fmt == "json":
        return json.dumps(_json_records(df), ensure_ascii=False, default=str).encode("utf-8")
    if fmt == "jsonl":
        lines = (json.dumps(record, ensure_ascii=False, default=str) + "\n" for record in _json_records(df))
        return "".join(lines).encode("utf-8")
    raise ValueError(f"Unknown export format '{fmt}'. Use one of: {', '.join(EXPORT_FORMATS)}.")


def _json_records(df: pd.DataFrame) -> list[dict]:
    as_objects = df.astype(object)
    return as_objects.where(df.notna(), None).to_dict(orient="records")


def _xlsx_bytes(df: pd.DataFrame) -> bytes:
    if len(df) >= _XLSX_MAX_ROWS or df.shape[1] > _XLSX_MAX_COLUMNS:
        raise ValueError(
            f"{len(df):,} rows × {df.shape[1]:,} columns do not fit in one Excel sheet "
            f"(max {_XLSX_MAX_ROWS - 1:,} rows × {_XLSX_MAX_COLUMNS:,} columns). Export as CSV or JSONL."
        )
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("data")
    sheet.append([_xlsx_value(name) for name in df.columns])
    for row in df.itertuples(index=False, name=None):
        sheet.append([_xlsx_value(value) for value in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _xlsx_value(value: object) -> object:
    """A value openpyxl can store: control characters removed (XML forbids them), NaN empty."""
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("", value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return value.isoformat()  # Excel has no time zones
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return value


_WRITE_FORMATS = {".csv": "csv", ".xlsx": "xlsx", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write to a file whose suffix picks the format; replaced atomically, never half-written."""
    path = Path(path)
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"Cannot write '{path.name}': unknown file type '{path.suffix}'. Use one of: {', '.join(_WRITE_FORMATS)}."
        )
    payload = export_bytes(df, fmt)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
