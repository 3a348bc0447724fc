"""Exports: CSV (UTF-8 with BOM, so Excel shows non-ASCII text), XLSX, JSON, JSON Lines and Parquet.

The rule: an export never changes a cell without saying so.

- XLSX writes every text cell as text (an inline string), so ``=1+1``, ``@user`` and ``- item``
  arrive exactly as they are and a spreadsheet evaluates nothing. XML cannot hold most control
  characters (a vertical tab, NUL): they are removed in the XLSX only, and ``xlsx_changed_cells``
  counts the cells that hold them so the caller can say so.
- CSV has no types: a spreadsheet that opens it runs any cell starting with ``= + - @`` (or a
  tab or CR) as a formula (OWASP "CSV injection"). The guard (``guard=True``, the default) puts a
  single quote before such cells; it is a choice the caller shows the user, with the count from
  ``guarded_cells``. Plain numbers such as ``-3.5`` are never touched.
- JSON, JSON Lines and Parquet hold every cell exactly.

Files are replaced atomically, never left half-written.
"""

import datetime
import io
import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

EXPORT_FORMATS: dict[str, str] = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}
# File suffixes write_table understands, and the format each one writes.
WRITE_SUFFIXES: dict[str, str] = {
    ".csv": "csv",
    ".xlsx": "xlsx",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}
FORMULA_GUARD_HELP = (
    "Spreadsheets (Excel, LibreOffice, Google Sheets) run a CSV cell that starts with = + - or @ as a "
    "formula, which can be abused to run commands or leak data when the file is opened. The guard puts "
    "a single quote (') before such cells so they open as plain text. It changes those cells, which "
    "breaks joins back to the source (e.g. tweets that start with @); turn it off if the CSV goes to a "
    "program rather than a spreadsheet. XLSX, JSON, JSONL and Parquet keep every cell exactly."
)
_FORMULA_START = re.compile(r"[=+\-@\t\r]")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_XLSX_MAX_ROWS = 1_048_576
_XLSX_MAX_COLUMNS = 16_384


def _is_formula_like(value: object) -> bool:
    return isinstance(value, str) and bool(_FORMULA_START.match(value)) and not _PLAIN_NUMBER.fullmatch(value)


def _formula_mask(column: pd.Series) -> pd.Series:
    """Which cells of a column a spreadsheet would run as a formula (non-text cells never)."""
    if not (column.dtype == object or pd.api.types.is_string_dtype(column)):
        return pd.Series(False, index=column.index)
    text = column.astype(object)
    try:
        starts = text.str.match(_FORMULA_START.pattern, na=False).astype(bool)
    except AttributeError:  # an object column with no text at all, e.g. True / False / None
        return pd.Series(False, index=column.index)
    if not starts.any():
        return starts
    return starts & ~text.str.fullmatch(_PLAIN_NUMBER.pattern, na=False).astype(bool)


def guarded_cells(df: pd.DataFrame) -> int:
    """How many cells (column names included) the CSV formula guard changes in this table."""
    names = sum(_is_formula_like(name) for name in df.columns)
    return names + sum(int(_formula_mask(df.iloc[:, position]).sum()) for position in range(df.shape[1]))


def xlsx_changed_cells(df: pd.DataFrame) -> int:
    """How many text cells (column names included) hold control characters an XLSX cannot store,
    which the XLSX export removes; every other format keeps them."""
    names = sum(isinstance(name, str) and bool(ILLEGAL_CHARACTERS_RE.search(name)) for name in df.columns)
    return names + sum(int(_control_mask(df.iloc[:, position]).sum()) for position in range(df.shape[1]))


def _control_mask(column: pd.Series) -> pd.Series:
    if not (column.dtype == object or pd.api.types.is_string_dtype(column)):
        return pd.Series(False, index=column.index)
    try:
        return column.astype(object).str.contains(ILLEGAL_CHARACTERS_RE.pattern, regex=True, na=False).astype(bool)
    except AttributeError:  # an object column with no text at all
        return pd.Series(False, index=column.index)


def neutralize_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """A copy where text a spreadsheet would run as a formula starts with a single quote.

    OWASP's CSV-injection rule: cells starting with = + - @ tab or CR. Plain numbers such as
    "-3.5" are left alone; they cannot run anything. Column names are cells too.
    """
    out = df.copy()
    for position in range(out.shape[1]):
        mask = _formula_mask(out.iloc[:, position])
        if mask.any():
            column = out.iloc[:, position].astype(object)
            column[mask] = "'" + column[mask]
            out.isetitem(position, column.astype(out.dtypes.iloc[position]))
    out.columns = ["'" + name if _is_formula_like(name) else name for name in out.columns]
    return out


def export_bytes(df: pd.DataFrame, fmt: str, *, guard: bool = True) -> bytes:
    """The table as a download in ``fmt`` (a key of EXPORT_FORMATS).

    ``guard`` applies to CSV only: cells a spreadsheet would run as formulas get a leading ``'``
    (``guarded_cells`` says how many). Every other format keeps every cell exactly.
    """
    fmt = fmt.lower()
    if fmt == "csv":
        table = neutralize_formulas(df) if guard else df
        return table.to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")
    if fmt == "xlsx":
        return _xlsx_bytes(df)
    if fmt == "json":
        return json.dumps(_json_records(df), ensure_ascii=False, default=str).encode("utf-8")
    if fmt == "jsonl":
        lines = (json.dumps(record, ensure_ascii=False, default=str) + "\n" for record in _json_records(df))
        return "".join(lines).encode("utf-8")
    if fmt == "parquet":
        return _parquet_bytes(df)
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
    sheet.append([_xlsx_cell(sheet, name) for name in df.columns])
    for row in df.itertuples(index=False, name=None):
        sheet.append([_xlsx_cell(sheet, value) for value in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _xlsx_cell(sheet: object, value: object) -> object:
    """A value openpyxl can store; text as an explicit string cell, never a formula."""
    value = _xlsx_value(value)
    if not isinstance(value, str):
        return value
    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"  # openpyxl would store "=1+1" as a formula; a string cell is shown as typed
    return cell


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


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    """Parquet with each column's own type; a column mixing kinds (text and numbers) is stored as text."""
    arrays = []
    for position in range(df.shape[1]):
        column = df.iloc[:, position]
        try:
            arrays.append(pa.array(column, from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays.append(pa.array(column.map(_parquet_text, na_action="ignore"), type=pa.string(), from_pandas=True))
    table = pa.Table.from_arrays(arrays, names=[str(name) for name in df.columns])
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _parquet_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


@dataclass(frozen=True)
class Written:
    """What writing a file changed, for the caller to say: cells the CSV formula guard quoted, and
    cells whose control characters the XLSX could not store (0 for the other formats)."""

    guarded: int = 0
    xlsx_changed: int = 0


def write_table(df: pd.DataFrame, path: str | os.PathLike, *, guard: bool = True) -> int:
    """Write to a file whose suffix picks the format; replaced atomically, never half-written.

    Returns how many cells the CSV formula guard changed (0 for every other format, or ``guard=False``).
    """
    return write_frames([df], path, guard=guard)


def write_frames(frames: Iterable[pd.DataFrame], path: str | os.PathLike, *, guard: bool = True) -> int:
    """`write_table` for a table that arrives in chunks; the count of cells the CSV guard changed."""
    return write_counted(frames, path, guard=guard).guarded


def write_counted(frames: Iterable[pd.DataFrame], path: str | os.PathLike, *, guard: bool = True) -> Written:
    """`write_table` for a table that arrives in chunks (a run streamed from the ledger), saying
    every cell it changed. CSV and JSONL are written chunk by chunk, so a million-row export never
    sits in memory; XLSX, JSON and Parquet are one document each and are built from the chunks joined."""
    path = Path(path)
    fmt = WRITE_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"Cannot write '{path.name}': unknown file type '{path.suffix}'. Use one of: {', '.join(WRITE_SUFFIXES)}."
        )
    changed = xlsx_changed = 0
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            if fmt in ("csv", "jsonl"):
                for n, df in enumerate(frames):
                    payload = export_bytes(df, fmt, guard=guard)
                    if fmt == "csv" and n:  # the header (and BOM) once, at the top
                        payload = payload.split(b"\r\n", 1)[1] if b"\r\n" in payload else b""
                    file.write(payload)
                    if fmt == "csv" and guard:  # the header's cells are counted once
                        changed += guarded_cells(df) - (guarded_cells(df.head(0)) if n else 0)
            else:
                whole = pd.concat(list(frames), ignore_index=True)
                file.write(export_bytes(whole, fmt, guard=guard))
                xlsx_changed = xlsx_changed_cells(whole) if fmt == "xlsx" else 0
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return Written(changed, xlsx_changed)
