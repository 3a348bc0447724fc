"""Workbooks (.xlsx, .xlsm, .xls, .ods) through calamine, once the guards have measured them."""

import io
import math

import python_calamine

from handai_io.frames import Row, cell_text
from handai_io.guards import guard_sheet, guard_workbook
from handai_io.guards.common import not_a_workbook
from handai_io.layout import table_from_rows
from handai_io.model import FileReadError, LoadedTable, ReadOptions


def open_workbook(raw: bytes, source: str) -> python_calamine.CalamineWorkbook:
    """calamine's workbook, once ``guard_workbook`` has measured the file (see there why)."""
    guard_workbook(raw, source)
    try:
        return python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(raw))
    except python_calamine.PasswordError as e:
        raise FileReadError(
            f"'{source}' is password-protected. Remove the password in Excel and upload it again."
        ) from e
    except Exception as e:
        raise FileReadError(not_a_workbook(raw, source)) from e
    except BaseException as e:  # a panic inside calamine arrives as pyo3's PanicException
        if not _is_rust_panic(e):
            raise
        raise FileReadError(not_a_workbook(raw, source)) from e


def _is_rust_panic(error: BaseException) -> bool:
    """pyo3 turns a Rust panic into ``PanicException``, which derives from BaseException only."""
    return type(error).__name__ == "PanicException"


def read_workbook(raw: bytes, source: str, options: ReadOptions) -> LoadedTable:
    workbook = open_workbook(raw, source)
    sheets = list(workbook.sheet_names)
    if not sheets:
        raise FileReadError(f"'{source}' has no sheets. Check that you picked the right file.")
    sheet = options.sheet if options.sheet is not None else sheets[0]
    if sheet not in sheets:
        raise FileReadError(f"'{source}' has no sheet named '{sheet}'. Its sheets: {', '.join(sheets)}.")
    guard_sheet(raw, source, sheet)
    try:
        loaded = workbook.get_sheet_by_name(sheet)
        values = loaded.to_python()  # from the first row and column that hold something
        first_row = loaded.start[0] + 1 if loaded.start else 1
    except Exception as e:
        raise FileReadError(not_a_workbook(raw, source)) from e
    except BaseException as e:
        if not _is_rust_panic(e):
            raise
        raise FileReadError(not_a_workbook(raw, source)) from e
    rows = [_trim_row([_excel_cell_text(v) for v in row]) for row in values]
    notes = [f"Read sheet '{sheet}' (the workbook has {len(sheets)} sheets)"] if len(sheets) > 1 else []
    if not any(rows):
        others = [s for s in sheets if s != sheet]
        hint = f" Pick another sheet: {', '.join(others)}." if others else ""
        raise FileReadError(f"The sheet '{sheet}' in '{source}' is empty.{hint}")
    table = table_from_rows(
        rows, options.skip_rows, source, "row", lambda index: first_row + index, notes, options.subheader
    )
    return LoadedTable(
        table.df,
        None,
        None,
        sheets,
        sheet,
        table.skipped,
        notes,
        source,
        descriptions=table.descriptions,
        header_row=table.header_row,
        survey=table.survey,
    )


def _excel_cell_text(value: object) -> str | None:
    """Like ``cell_text``, but floats to Excel's 15 significant digits (0.1+0.2 shows 0.3)."""
    if isinstance(value, float) and math.isfinite(value) and not value.is_integer():
        return format(value, ".15g")
    return cell_text(value)


def _trim_row(row: Row) -> Row:
    """Drop trailing empty cells: a sheet pads every row to its widest, which hides a preamble."""
    end = len(row)
    while end and row[end - 1] is None:
        end -= 1
    return row[:end]
