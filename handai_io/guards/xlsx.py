"""An .xlsx sheet's real extent: the bounding box of the cells calamine will hold, found without trusting
``<dimension ref>``; and which zip member holds which sheet, resolved as calamine resolves it."""

import math
import re
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable

from handai_io.guards import common
from handai_io.guards.common import Damaged, Extent
from handai_io.guards.xmlstream import parse_xml, xml_tags
from handai_io.guards.zipped import member_chunks


def sheet_parts(raw: bytes, members: dict[str, list[zipfile.ZipInfo]]) -> dict[str, str]:
    """Sheet name -> lower-case member name, resolved as calamine resolves them.

    Parsed with expat, a real XML parser like calamine's, so that no quoting trick shows this
    code another sheet than calamine reads; a name given twice, or any doubt, leaves it out.
    """
    targets: dict[str, str] = {}
    sheets: list[dict[str, str]] = []

    def relationship(name: str, attributes: dict[str, str]) -> None:
        if name.rpartition(":")[2] == "Relationship" and "Id" in attributes and "Target" in attributes:
            targets[attributes["Id"]] = attributes["Target"]

    def sheet(name: str, attributes: dict[str, str]) -> None:
        if name.rpartition(":")[2] == "sheet":
            sheets.append(attributes)

    try:
        for info in members.get("xl/_rels/workbook.xml.rels", []):
            parse_xml(member_chunks(raw, info), relationship, lambda name: None)
        for info in members["xl/workbook.xml"]:
            parse_xml(member_chunks(raw, info), sheet, lambda name: None)
    except Damaged:
        return {}
    parts: dict[str, str] = {}
    named = Counter(attributes.get("name") for attributes in sheets)
    for attributes in sheets:
        target = targets.get(attributes.get("r:id", attributes.get("relationships:id", "")))
        if target is None or named[attributes.get("name")] > 1:
            continue
        if target.startswith("/xl/"):
            target = target[1:]
        elif not target.startswith("xl/"):
            target = "xl/" + target
        if target.lower() in members:
            parts[attributes["name"]] = target.lower()
    return parts


# The quick paths only read ``<c r="REF"`` at the start of each cell tag, which no quoting trick can
# hide, and count every such cell, empty or not: an upper bound. When a tag has another form, or
# the bound is over the limit, the sheet is parsed with expat, exactly as calamine reads it.
_ODD_CELL_TAG = re.compile(rb'<c(?:[\t\n\r>]| (?!r="[A-Z]{1,3}[1-9][0-9]{0,6}"))|:c[\s/>]')
_CELL_COLUMNS = re.compile(rb'<c r="([A-Z]{1,3})[1-9][0-9]{0,6}"')
_CELL_ROWS = re.compile(rb'<c r="[A-Z]{1,3}([1-9][0-9]{0,6})"')
_DIMENSION = re.compile(rb"<(?:[\w.-]+:)?dimension\b[^>]*?\sref\s*=\s*\"([^\"]*)\"")


def xlsx_extent(open_chunks: Callable[[], Iterable[bytes]]) -> tuple[int, int]:
    """(rows, columns) of the bounding box of the sheet's cells that can hold a value.

    A cell without content (``<c r="XFD1" s="1"/>``, a formatted empty cell) holds none, and
    calamine skips it; every other cell counts, whether its position is written or implied.
    """
    for quick in (_xlsx_extent_within_dimension, _xlsx_extent_bound):
        extent = quick(open_chunks())
        if extent is not None and extent[0] * extent[1] <= common.MAX_SHEET_CELLS:
            return extent
    return _xlsx_extent_by_parsing(open_chunks())


def _xlsx_extent_within_dimension(chunks: Iterable[bytes]) -> tuple[int, int] | None:
    """A1 to the end of ``<dimension ref>``, if a scan shows every cell within it; else None.

    The header is only a guess to check, with one search per chunk for a cell beyond it:
    much faster than collecting every reference.
    """
    beyond = None
    for piece in xml_tags(chunks):
        if b"\x00" in piece:  # UTF-16 or stranger: left to the parser
            return None
        if beyond is None:
            found = _DIMENSION.search(piece)
            end = re.fullmatch(rb"([A-Z]{1,3})([1-9][0-9]{0,6})", found.group(1).split(b":")[-1]) if found else None
            if end is None:
                return None
            rows, columns = int(end.group(2)), _column_number(end.group(1))
            if rows * columns > common.MAX_SHEET_CELLS:
                return None
            right = _greater_pattern(end.group(1).decode(), "A", "Z", "A", 3)
            below = _greater_pattern(end.group(2).decode(), "0", "9", "1", 7)
            beyond = re.compile(f'<c r="(?:(?:{right})[1-9][0-9]{{0,6}}|[A-Z]{{1,3}}(?:{below}))"'.encode())
        if _ODD_CELL_TAG.search(piece) or beyond.search(piece):
            return None
    return (rows, columns) if beyond is not None else (0, 0)


def _greater_pattern(value: str, low: str, high: str, first: str, longest: int) -> str:
    """A regex for the strings of ``low``-``high`` (not starting below ``first``) above ``value``.

    Order is by length, then character by character: how row numbers and column letters compare.
    """
    alternatives = []
    if len(value) < longest:
        alternatives.append(f"[{first}-{high}][{low}-{high}]{{{len(value)},{longest - 1}}}")
    for index, char in enumerate(value):
        if char < high:
            rest = len(value) - index - 1
            alternatives.append(f"{value[:index]}[{chr(ord(char) + 1)}-{high}][{low}-{high}]{{{rest}}}")
    return "|".join(alternatives) or "(?!)"


def _xlsx_extent_bound(chunks: Iterable[bytes]) -> tuple[int, int] | None:
    """The bounding box of every cell reference, if every cell tag has the usual form; else None."""
    columns: set[bytes] = set()  # at most 26 + 26² + 26³ letter strings
    top, bottom = math.inf, 0
    for piece in xml_tags(chunks):
        if b"\x00" in piece or _ODD_CELL_TAG.search(piece):
            return None
        columns.update(_CELL_COLUMNS.findall(piece))
        rows = [int(row) for row in set(_CELL_ROWS.findall(piece))]
        if rows:
            top, bottom = min(top, min(rows)), max(bottom, max(rows))
    if not columns:
        return 0, 0
    numbers = [_column_number(letters) for letters in columns]
    return int(bottom - top) + 1, max(numbers) - min(numbers) + 1


def _xlsx_extent_by_parsing(chunks: Iterable[bytes]) -> tuple[int, int]:
    """The exact bounding box: positions follow calamine's rules, implied ones included."""
    extent = Extent()
    row = column = 0
    cell: tuple[int, int] | None = None  # position of an open cell
    filled = False  # whether the open cell has content

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal row, column, cell, filled
        if cell is not None:
            filled = True
            return
        local = name.rpartition(":")[2]
        if local == "row":
            position = _reference(attributes.get("r"))
            if position and position[1] is not None:
                row = position[1]
        elif local == "c":
            position = _reference(attributes.get("r"))
            if position is None:
                cell = (row, column)
            elif position[0] is None or position[1] is None:
                raise Damaged("an unreadable cell reference")  # calamine rejects the sheet
            else:
                cell, column = (position[1], position[0]), position[0]
            column += 1
            filled = False

    def end(name: str) -> None:
        nonlocal row, column, cell
        local = name.rpartition(":")[2]
        if cell is not None and local == "c":
            if filled:
                extent.add(*cell)
            cell = None
        elif cell is None and local == "row":
            row, column = row + 1, 0

    parse_xml(chunks, start, end)
    return extent.size()


def _reference(value: str | None) -> tuple[int | None, int | None] | None:
    """(column, row), 0-based, of a cell reference; None without one; None parts if unreadable."""
    if value is None:
        return None
    match = re.fullmatch(r"([A-Za-z]*)([0-9]*)", value)
    if not match:
        return None, None
    letters, digits = match.groups()
    return (
        _column_number(letters.encode()) - 1 if letters else None,
        max(int(digits) - 1, 0) if digits else None,
    )


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + letter - 64
    return number
