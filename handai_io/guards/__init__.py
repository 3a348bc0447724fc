"""Workbooks measured before calamine sees them.

calamine (Rust) unpacks zip members without a limit and allocates one dense grid for the
bounding box of a sheet's cells; when an allocation fails, Rust aborts the whole process (the
Streamlit server with it) instead of raising. A 2 KB .xlsx with one cell at XFD1048576 asks for
512 GiB; a 0.2 MB one can unpack to 200 MB of text. So before calamine sees a workbook it is
measured here, streaming, without trusting any size or dimension a header states:

- zip workbooks (.xlsx/.xlsm/.ods): every member is inflated from its raw bytes in bounded
  chunks and counted against a cap that grows with the file's size; .xlsb parts are refused;
- an .xlsx sheet, before calamine loads it: the bounding box of the cells that can hold a value,
  from every ``<c>`` tag, whether its position is written (``r="XFD1048576"``) or implied.
  ``<dimension ref>`` is not trusted either way; calamine only uses it for a capped reservation;
- .ods (calamine expands every table when it opens the file): each table's size after repeated
  rows and columns are expanded, and the text those repetitions copy;
- .xls (also read whole on opening): the OLE container's sizes and sector chains, DIMENSIONS
  records and the bounding box of every sheet's cell records.

Not guarded: memory that grows with honest content up to these caps (a sheet of 20M cells still
needs a few GB), and CPU time on a workbook whose cell tags are not in the usual form: those are
walked tag by tag in Python, which the unpacked-size cap bounds but does not make fast.
"""

import io
import zipfile

from handai_io.guards import common
from handai_io.guards.common import GUARD_ERRORS, TooManyCells, not_a_workbook, too_many_cells_message
from handai_io.guards.xls import guard_xls
from handai_io.guards.xlsx import sheet_parts, xlsx_extent
from handai_io.guards.zipped import guard_zip, member_chunks, zip_end
from handai_io.model import FileReadError
from handai_io.sources import OLE_MAGIC


def guard_workbook(raw: bytes, source: str) -> None:
    """Refuse, before calamine opens it, a workbook that would make calamine exhaust memory."""
    try:
        if raw.startswith(OLE_MAGIC):
            guard_xls(raw)
        elif zip_end(raw) >= 0:
            guard_zip(raw, source)
    except TooManyCells as e:
        raise FileReadError(too_many_cells_message(source, e.rows, e.columns)) from e
    except GUARD_ERRORS as e:
        raise FileReadError(not_a_workbook(raw, source)) from e


def guard_sheet(raw: bytes, source: str, sheet: str) -> None:
    """Before calamine loads an .xlsx sheet: refuse one whose cells span more than the limit."""
    if raw.startswith(OLE_MAGIC) or zip_end(raw) < 0:
        return
    try:
        members: dict[str, list[zipfile.ZipInfo]] = {}
        for info in zipfile.ZipFile(io.BytesIO(raw)).infolist():
            members.setdefault(info.filename.lower(), []).append(info)
        if "xl/workbook.xml" not in members:
            return  # not an .xlsx: an .ods was measured whole when it was opened
        # Members of the same name (calamine reads one of them) are all checked, and so is every
        # member when the sheet's cannot be told.
        part = sheet_parts(raw, members).get(sheet)
        infos = members[part] if part else [info for infos in members.values() for info in infos]
        for info in infos:
            rows, columns = xlsx_extent(lambda info=info: member_chunks(raw, info))
            if rows * columns > common.MAX_SHEET_CELLS:
                raise FileReadError(too_many_cells_message(source, rows, columns, sheet))
    except GUARD_ERRORS as e:
        raise FileReadError(not_a_workbook(raw, source)) from e
