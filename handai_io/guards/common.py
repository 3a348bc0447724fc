"""What every workbook guard shares: the cell limit, its two failures, their messages, a bounding box."""

import struct
import zipfile

from handai_io.sources import OLE_MAGIC, ZIP_MAGIC

MAX_SHEET_CELLS = 20_000_000  # rows × columns of calamine's dense grids (summed where it holds several)


class Damaged(Exception):
    """The workbook's structure is inconsistent: calamine would fail on it, or run away."""


class TooManyCells(Exception):
    def __init__(self, rows: int, columns: int):
        super().__init__(rows, columns)
        self.rows, self.columns = rows, columns


GUARD_ERRORS = (Damaged, zipfile.BadZipFile, zipfile.LargeZipFile, struct.error, IndexError, KeyError, ValueError)


def too_many_cells_message(source: str, rows: int, columns: int, sheet: str | None = None) -> str:
    where = f"the sheet '{sheet}'" if sheet else "a sheet"
    return (
        f"'{source}' is too large to load here: {where} spans {rows:,} rows × {columns:,} columns "
        f"({rows * columns:,} cells; the limit is {MAX_SHEET_CELLS:,}). A stray cell far below or to the right "
        "of the data often causes this: delete the empty rows and columns after your data in Excel or "
        "LibreOffice, save, and upload it again, or save the sheet as CSV."
    )


def not_a_workbook(raw: bytes, source: str) -> str:
    message = (
        f"'{source}' could not be opened as an Excel workbook; it may be damaged or incomplete. "
        "Open it in Excel or LibreOffice, re-save it as .xlsx, and upload it again."
    )
    if b"\x00" not in raw[:4096] and not raw.startswith((ZIP_MAGIC, OLE_MAGIC)):
        message += " (It looks like a text file: if it is CSV, rename it to .csv.)"
    return message


class Extent:
    """The bounding box of cell positions, as calamine sizes a sheet's grid (in any order)."""

    def __init__(self) -> None:
        self.top = self.bottom = self.left = self.right = -1

    def add(self, row: int, column: int) -> None:
        if self.top < 0:
            self.top = self.bottom = row
            self.left = self.right = column
            return
        self.top, self.bottom = min(self.top, row), max(self.bottom, row)
        self.left, self.right = min(self.left, column), max(self.right, column)

    def size(self) -> tuple[int, int]:
        if self.top < 0:
            return 0, 0
        return self.bottom - self.top + 1, self.right - self.left + 1
