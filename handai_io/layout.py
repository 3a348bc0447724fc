"""Parsed rows (of a text file or a sheet) to a table: the header, survey header rows, the notes."""

from collections.abc import Callable
from dataclasses import dataclass, replace

import pandas as pd

from handai_io.footer import footer_start
from handai_io.frames import Row, filled, frame_from_rows
from handai_io.header import choose_header, header_note, is_marked, most_common
from handai_io.model import FileReadError
from handai_io.surveys import EVIDENCE_ROWS, recognise


@dataclass
class Table:
    df: pd.DataFrame
    descriptions: dict[str, str]
    skipped: int  # rows above the header
    header_row: int  # the header's line (or sheet row), 1-based
    survey: str | None


def table_from_rows(
    rows: list[Row],
    skip_rows: int | None,
    source: str,
    unit: str,
    line_of: Callable[[int], int],
    notes: list[str],
    subheader: bool = False,
) -> Table:
    """The table the rows hold; ``unit`` names a row in notes ("line", "row"), ``line_of`` numbers it.

    With ``skip_rows`` set, the row under the skipped ones is the header and every row below it
    is data but a footer: no header or survey row is detected, so the user can always undo a wrong
    guess. With ``subheader`` the row under the header is part of the column names ("Question -
    Option"), not data. A footer (see ``footer``: a rule or comment, then a few short lines) is
    left out, with a note naming its lines.
    """
    header = choose_header(rows, skip_rows, source, unit)
    names = rows[header.index]
    start = header.index + 1
    survey = None if header.chosen or subheader else recognise(names, rows[start : start + EVIDENCE_ROWS])
    descriptions: list[str | None] = []
    if survey is not None:
        header = replace(header, numbering_below=False)  # the rows under it are the survey's
        names, descriptions = survey.names, survey.descriptions
        start += survey.extra_rows
    elif header.numbering_below:
        start += 1
    line = line_of(header.index)
    below = line_of(header.index + 1) if header.numbering_below else None
    notes.append(header_note(header, unit, line, below, line_of(0)))
    if survey is not None:
        notes.append(survey.note)
    if subheader:
        if start >= len(rows):
            raise FileReadError(
                f"'{source}' has no {unit} under its header ({unit} {line:,}) to use as a sub-header. "
                "Turn off the sub-header option in the reading options."
            )
        names = merge_subheader(names, rows[start])
        joined = [name for name in names if name and SUBHEADER_JOIN in name]
        example = f", such as '{joined[0]}'" if joined else ""
        notes.append(
            f"Column names join the header ({unit} {line:,}) and the {unit} under it ({unit} {line_of(start):,}), "
            f"as set in the reading options{example}; {len(joined):,} names changed."
        )
        start += 1
    width = len(rows[header.index])
    body = _without_footer(rows[start:], width, unit, lambda index: line_of(start + index), notes)
    df, described = frame_from_rows(names, body, source, notes, descriptions)
    return Table(df, described, header.index, line, survey.platform if survey else None)


def _without_footer(
    body: list[Row], header_width: int, unit: str, line_of: Callable[[int], int], notes: list[str]
) -> list[Row]:
    """The rows under the header without their footer; a note says how many lines it held and where.
    The table's width is the usual one of the header and its rows (the larger on a tie): a short
    table may have as many footer lines as rows."""
    widths = [header_width] + [len(row) for row in body if filled(row) and not is_marked(row)]
    end = footer_start(body, most_common(widths), comments=unit == "line")
    if end == len(body) or end == 0:
        return body
    left_out = sum(1 for row in body[end:] if filled(row))
    last = line_of(end) - 1  # the footer may start with blank lines: everything after this one is left out
    notes.append(
        f"{left_out:,} footer {unit}{'s' if left_out != 1 else ''} after {unit} {last:,} left out "
        "(notes under the table, not data)."
    )
    return body[:end]


SUBHEADER_JOIN = " - "


def merge_subheader(top: Row, below: Row) -> Row:
    """Column names from two header rows: "Question - Option".

    A blank top cell over a named sub-header cell continues the question to its left (a merged
    cell, as survey exports and hand-made sheets write it); a blank sub-header cell, or one equal
    to the top, leaves the top name as it is.
    """
    names: Row = []
    question = ""
    for position in range(max(len(top), len(below))):
        upper = (top[position] if position < len(top) else None) or ""
        lower = ((below[position] if position < len(below) else None) or "").strip()
        if upper.strip():
            question = upper.strip()
        elif not lower:
            question = ""
        current = upper.strip() or (question if lower else "")
        if current and lower and lower != current:
            names.append(f"{current}{SUBHEADER_JOIN}{lower}")
        else:
            names.append(current or lower or None)
    return names
