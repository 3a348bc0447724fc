"""Which row is the header: what the rows above it are (comments, a title block, a row of column
numbers), and whether the row just under it numbers the columns instead of holding data.

The header is the first row that looks like the top of the table. Above it, a row is passed over
only when it is clearly not the table: blank; a comment (``#`` or ``//`` first); a title or a
note (a few cells at the left of a table at least twice as wide); or a row of column numbers
(``1;2;3`` or ``(1)``, ``(2)``...) directly above a header. A title is passed over only when a
header-like row follows it. Any doubt keeps a row as the header: a wrong header is visible, and
the note names its line so the user can set ``ReadOptions.skip_rows``, which always wins.
"""

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from handai_io.frames import Row, filled
from handai_io.model import FileReadError

_SAMPLE_ROWS = 200  # rows used to learn the table's usual width
_MAX_PREAMBLE_ROWS = 50  # a header further down than this is not looked for
_COMMENT_MARKS = ("#", "//")
_COLUMN_NAME_LIKE = re.compile(r"#\w*")  # "#" or "#id" heading a full row is a column's name, not a comment
_COLUMN_NUMBER = re.compile(r"([(\[]?)(\d{1,3})([)\]]?)\.?")  # 1, (1), [1], 1.
_NUMBER = re.compile(r"[+-]?(\d[\d.,' ]*|[.,]\d+)([eE][+-]?\d+)?\s*%?")  # a number as any locale writes it

# What the rows above the header were, in the words of the note ("comments and a row of column numbers").
_KINDS = {
    "comment": ("a comment", "comments"),
    "title": ("a title", "a title block"),
    "blank": ("a blank {unit}", "blank {unit}s"),
    "numbering": ("a row of column numbers", "rows of column numbers"),
}


@dataclass
class Header:
    index: int  # the header's position among the rows
    above: list[str] = field(default_factory=list)  # what each row above it is: a key of _KINDS
    numbering_below: bool = False  # the row just under it numbers the columns: not data
    chosen: bool = False  # set by the user (ReadOptions.skip_rows): taken as it is


def choose_header(rows: list[Row], skip_rows: int | None, source: str, unit: str) -> Header:
    """The user's choice of header (``skip_rows`` rows above it), or the detected one."""
    if not any(filled(row) for row in rows):
        raise FileReadError(f"'{source}' holds no data: every cell is empty. Check that you picked the right file.")
    if skip_rows is None:
        return find_header(rows)
    if skip_rows < 0 or skip_rows >= len(rows):
        raise FileReadError(
            f"Cannot skip {skip_rows} {unit}s: '{source}' has {len(rows):,} {unit}s. "
            f"Choose a number from 0 to {len(rows) - 1:,}."
        )
    return Header(skip_rows, chosen=True)


def find_header(rows: list[Row]) -> Header:
    """The detected header (see the module's docstring)."""
    profile = [row for row in rows[:_SAMPLE_ROWS] if filled(row) and not is_marked(row)]
    if not profile:
        return Header(0)
    width = most_common(len(row) for row in profile)
    above: list[str] = []
    first_content: Header | None = None  # the fallback: the first row that is neither blank nor a comment
    for index, row in enumerate(rows[: _MAX_PREAMBLE_ROWS + 1]):
        if not filled(row):
            above.append("blank")
            continue
        if _is_comment(row, width):
            above.append("comment")
            continue
        first_content = first_content or Header(index, list(above))
        if _numbers_columns(row, width) and _looks_like_header(_next_filled(rows, index), width):
            above.append("numbering")
            continue
        if _is_title(row, width):
            above.append("title")
            continue
        if "title" in above and not _looks_like_header(row, width):
            break
        return Header(index, above, _numbering_below(rows, index, width))
    return first_content or Header(0)


SKIP_OPTION = "Reading options → Skip lines above the header"


def header_note(header: Header, unit: str, line: int, line_below: int | None, first_line: int = 1) -> str:
    """Which line (or sheet row) is the header, why, and where to change it; ``line_below``: the line
    of the row of column numbers left out under it, if one was; ``first_line``: the line of the first
    row the skip option counts (after a ``sep=`` line, or the sheet's first row that holds something).

    The option counts rows as read, not lines of the file: where the two differ (a quoted line
    break, a ``sep=`` line, empty rows at the top of a sheet), the note says the number to give it.
    """
    said = f"Header taken from {unit} {line:,}"
    agree = line == first_line + header.index and first_line == 1
    counted = "record" if unit == "line" and not agree else unit
    skipped = f"{header.index:,} {counted}{'s' if header.index != 1 else ''} above it skipped"
    if header.chosen:
        return f"{said}, as set in the reading options" + (f" ({skipped})." if header.index else ".")
    parts = [said]
    if header.index:
        counts = Counter(header.above)
        kinds = [_KINDS[kind][counts[kind] > 1].format(unit=unit) for kind in dict.fromkeys(header.above)]
        listed = kinds[0] if len(kinds) == 1 else f"{', '.join(kinds[:-1])} and {kinds[-1]}"
        parts.append(f"{skipped} ({listed})")
    if line_below is not None:
        parts.append(f"the row of column numbers under it ({unit} {line_below:,}) is not data and was left out")
    change = f" — change it under {SKIP_OPTION}" + ("" if agree else _how_counted(unit, line, first_line, header.index))
    return "; ".join(parts) + change + "."


def _how_counted(unit: str, line: int, first_line: int, index: int) -> str:
    """What the skip option counts, where it is not the header's line minus one."""
    if unit != "line":
        return f", which counts {unit}s from the first that holds something ({unit} {first_line:,}): {index:,} here"
    reasons = ["the sep= line is not counted"] if first_line > 1 else []
    if line != first_line + index:
        reasons.append("a quoted line break keeps a record on several lines")
    return f", which counts records, not lines: {index:,} here ({' and '.join(reasons)})"


def _used_width(row: Sequence[str | None]) -> int:
    """Fields up to the last non-blank one: trailing delimiters do not count."""
    end = len(row)
    while end and not (row[end - 1] and row[end - 1].strip()):
        end -= 1
    return end


def most_common(numbers: Iterable[int]) -> int:
    """The most frequent number; the larger one on a tie."""
    counts = Counter(numbers)
    return max(counts, key=lambda number: (counts[number], number))


def _cells(row: Sequence[str | None]) -> list[str]:
    return [cell.strip() for cell in row if cell and cell.strip()]


def is_marked(row: Row) -> bool:
    """Whether the row starts with a comment mark."""
    return bool(row) and (row[0] or "").lstrip().startswith(_COMMENT_MARKS)


def _is_comment(row: Row, width: int) -> bool:
    """A comment mark first; but a full row headed "#" or "#id" is a header naming a column so."""
    if not is_marked(row):
        return False
    return filled(row) <= width / 2 or not _COLUMN_NAME_LIKE.fullmatch((row[0] or "").strip())


def _is_title(row: Row, width: int) -> bool:
    """A title or a note ("Status: final"): cells at the left of a table at least twice as wide. When the
    row is padded to the table's width, its cells must read as words: "name,," may be a header
    whose other columns have no name."""
    return (
        width >= 2
        and _used_width(row) <= max(1, width // 2)
        and (len(row) < width or any(" " in cell or cell.endswith(":") for cell in _cells(row)))
    )


def _next_filled(rows: list[Row], index: int) -> Row:
    """The first row below ``index`` that is not blank ([] if none is)."""
    return next((rows[later] for later in range(index + 1, len(rows)) if filled(rows[later])), [])


def _looks_like_header(row: Row, width: int) -> bool:
    """Fills at least half the table's width, and names something: not all numbers."""
    cells = _cells(row)
    return len(cells) >= max(1, width / 2) and any(not _NUMBER.fullmatch(cell) for cell in cells)


def _numbers_columns(row: Row, width: int, least: int = 2) -> bool:
    """Whether the row numbers the columns: 1, 2, 3... (or (1), (2)... ), starting at 0, 1 or the
    column's position, across at least half the table and ``least`` columns."""
    positions = [(position, cell.strip()) for position, cell in enumerate(row, 1) if cell and cell.strip()]
    if len(positions) < max(least, width / 2):
        return False
    matches = [_COLUMN_NUMBER.fullmatch(cell) for _, cell in positions]
    if not all(match and bool(match.group(1)) == bool(match.group(3)) for match in matches):
        return False
    numbers = [int(match.group(2)) for match in matches]
    steps = all(after == before + 1 for before, after in zip(numbers, numbers[1:], strict=False))
    return steps and numbers[0] in (0, 1, positions[0][0])


def _numbering_below(rows: list[Row], index: int, width: int) -> bool:
    """Whether the row just under the header numbers the columns rather than holds data.

    It must number three columns or more. "(1)", "(2)"... is never data. Plain 1, 2, 3 is only
    taken for numbers when some column it numbers holds mostly words below it: in a table of
    numbers, it may well be the first record.
    """
    if index + 1 >= len(rows) or not _numbers_columns(rows[index + 1], width, least=3):
        return False
    numbering = rows[index + 1]
    if any(not cell.isdigit() for cell in _cells(numbering)):
        return True
    below = rows[index + 2 : index + 2 + _SAMPLE_ROWS]
    for position, cell in enumerate(numbering):
        if not (cell and cell.strip()):
            continue
        column = [row[position].strip() for row in below if position < len(row) and (row[position] or "").strip()]
        if len(column) >= 2 and sum(not _NUMBER.fullmatch(value) for value in column) > len(column) / 2:
            return True
    return False
