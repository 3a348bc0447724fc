"""Which rows at the end of a table are a footer, not data: official statistics close their tables
with a rule (``__________``) and a source or copyright line, and some exports end with a comment.

A footer is the block after the last row as wide as the table, and it must be set apart: it starts
at a blank row, a comment (``#``, ``//``) or a rule (``___``, ``---``, ``===``); narrow rows with
nothing above them to set them apart stay data, since a sheet whose last rows leave a column empty
(not coded yet) looks just as narrow. Only a short block counts: a wrong guess must stay visible.
"""

import re

from handai_io.frames import Row, filled
from handai_io.header import is_marked

MAX_FOOTER_ROWS = 20  # a longer block of narrow rows is more likely data than a footer
_RULE = re.compile(r"[_\-=]{3,}")


def footer_start(body: list[Row], width: int, *, comments: bool = True) -> int:
    """Where the footer starts among the rows under the header (``len(body)`` when there is none).

    ``width`` is the table's usual width in fields; a row counts as narrow at half of it or less.
    Trailing blank rows alone are no footer (they are dropped as empty rows anyway). ``comments``
    off (a sheet, whose rows lose their empty last cells): a comment mark sets nothing apart, since
    a last row of "#hashtag" text whose other cells are empty looks just like a comment there.
    """
    if width < 2:
        return len(body)
    start = len(body)
    while start > 0 and _footer_like(body[start - 1], width, comments):
        start -= 1
    marker = next((index for index in range(start, len(body)) if _sets_apart(body[index], comments)), None)
    if marker is None:
        return len(body)
    lines = sum(1 for row in body[marker:] if filled(row))
    return marker if 0 < lines <= MAX_FOOTER_ROWS else len(body)


def is_rule(row: Row) -> bool:
    """A separator line: every filled cell is ``___``, ``---`` or ``===``."""
    cells = [cell.strip() for cell in row if cell and cell.strip()]
    return bool(cells) and all(_RULE.fullmatch(cell) for cell in cells)


def _footer_like(row: Row, width: int, comments: bool) -> bool:
    """Blank, or narrower than the table: a rule or a comment only needs to be narrower than the
    whole table (a comment's text may hold the delimiter), other rows must fill half of it or less.
    A row as wide as the table is data, whatever it holds ("---" or "#tag" in its first cell)."""
    if not filled(row):
        return True
    if is_rule(row) or (comments and is_marked(row)):
        return len(row) < width
    return len(row) <= width / 2


def _sets_apart(row: Row, comments: bool) -> bool:
    return not filled(row) or (comments and is_marked(row)) or is_rule(row)
