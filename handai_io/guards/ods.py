"""An .ods measured before calamine opens it: calamine expands every table, repeats and all, on opening."""

from collections.abc import Iterable
from xml.parsers import expat

from handai_io.guards import common
from handai_io.guards.common import Damaged, TooManyCells
from handai_io.guards.xmlstream import parse_xml


class OdsMeasure:
    """The cells and copied text calamine will hold for an .ods: it expands every table on opening.

    calamine stores each row's cells with repeated columns written out (trailing empty ones
    excepted), copying a repeated cell's text each time, then expands repeated rows between a
    table's first and last row with a value into a dense grid as wide as its widest row. Names
    are compared with their prefixes, as calamine compares them.
    """

    def __init__(self) -> None:
        self.stored = self.cells = self.copied_bytes = 0
        self.parser = expat.ParserCreate()
        self._table()
        self._row(1)
        self.cell: list[int] | None = None  # [repeats, start byte, spaces] of a repeated cell with a value
        self.depth = 0  # elements open inside that cell

    def measure(self, chunks: Iterable[bytes]) -> None:
        parse_xml(chunks, self._start, self._end, self.parser)

    def _table(self) -> None:
        self.rows_before = 0  # rows so far in this table, repeats included
        self.first = self.last = -1  # rows before the first / up to the last row with a value
        self.width = 0

    def _row(self, repeats: int) -> None:
        self.repeats, self.row_stored, self.pending, self.row_width, self.row_text = repeats, 0, 0, 0, 0

    def _start(self, name: str, attributes: dict[str, str]) -> None:
        if name == "table:table-cell" or name == "table:covered-table-cell":
            if self.cell is None:
                self._add_cell(attributes)
                return
        elif name == "text:s":  # spaces calamine writes out: text the file does not hold
            spaces = _count(attributes.get("text:c", "1"))
            self.copied_bytes += spaces
            if self.cell is not None:
                self.cell[2] += spaces
        elif self.cell is None:
            if name == "table:table-row":
                self._row(_count(attributes.get("table:number-rows-repeated", "1")))
            elif name == "table:table":
                self._table()
            return
        if self.cell is not None:
            self.depth += 1

    def _end(self, name: str) -> None:
        if self.cell is not None:
            if self.depth:
                self.depth -= 1
                return
            repeats, start, spaces = self.cell
            size = self.parser.CurrentByteIndex - start + spaces  # the cell's text, markup included
            self.row_text += repeats * size
            self.copied_bytes += (repeats - 1) * size
            self.cell = None
        elif name == "table:table-row":
            self._end_row()
        elif name == "table:table":
            self._end_table()

    def _add_cell(self, attributes: dict[str, str]) -> None:
        repeats = _count(attributes.get("table:number-columns-repeated", "1"))
        self.row_stored += self.pending
        self.pending = 0
        if any(key.startswith("office:") or key == "table:formula" for key in attributes):  # any value or type
            self.row_stored += repeats
            self.row_width = self.row_stored
            if repeats > 1 or self.repeats > 1:  # text copied: measure it
                self.cell, self.depth = [repeats, self.parser.CurrentByteIndex, 0], 0
        else:
            self.pending = repeats
        if self.row_stored > common.MAX_SHEET_CELLS:
            raise TooManyCells(1, self.row_stored)

    def _end_row(self) -> None:
        self.stored += self.row_stored
        if self.row_width:
            if self.first < 0:
                self.first = self.rows_before
            self.last = self.rows_before + self.repeats
            self.width = max(self.width, self.row_width)
            self.copied_bytes += (self.repeats - 1) * self.row_text
            rows = self.last - self.first
            if self.cells + rows * self.width > common.MAX_SHEET_CELLS:
                raise TooManyCells(rows, self.width)
        if self.stored > common.MAX_SHEET_CELLS:
            raise TooManyCells(self.rows_before + self.repeats, self.row_stored)
        self.rows_before += self.repeats
        self._row(1)

    def _end_table(self) -> None:
        if self.first >= 0:
            self.cells += (self.last - self.first) * self.width
        self._table()


def _count(text: str) -> int:
    """A repeat or space count as calamine parses it (an unreadable one makes it fail)."""
    text = text.strip()
    if not text.isdigit():
        raise Damaged("an unreadable count")
    return int(text)
