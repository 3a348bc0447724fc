"""Parsed rows (of a text file or a sheet) to a table: the header, survey header rows, the notes."""

from collections.abc import Callable
from dataclasses import dataclass, replace

import pandas as pd

from handai_io.frames import Row, frame_from_rows
from handai_io.header import choose_header, header_note
from handai_io.surveys import EVIDENCE_ROWS, recognise


@dataclass
class Table:
    df: pd.DataFrame
    descriptions: dict[str, str]
    skipped: int  # rows above the header
    header_row: int  # the header's line (or sheet row), 1-based
    survey: str | None


def table_from_rows(
    rows: list[Row], skip_rows: int | None, source: str, unit: str, line_of: Callable[[int], int], notes: list[str]
) -> Table:
    """The table the rows hold; ``unit`` names a row in notes ("line", "row"), ``line_of`` numbers it.

    With ``skip_rows`` set, the row under the skipped ones is the header and every row below it
    is data: nothing is detected, so the user can always undo a wrong guess.
    """
    header = choose_header(rows, skip_rows, source, unit)
    names = rows[header.index]
    start = header.index + 1
    survey = None if header.chosen else recognise(names, rows[start : start + EVIDENCE_ROWS])
    descriptions: list[str | None] = []
    if survey is not None:
        header = replace(header, numbering_below=False)  # the rows under it are the survey's
        names, descriptions = survey.names, survey.descriptions
        start += survey.extra_rows
    elif header.numbering_below:
        start += 1
    line = line_of(header.index)
    notes.append(header_note(header, unit, line, line_of(header.index + 1) if header.numbering_below else None))
    if survey is not None:
        notes.append(survey.note)
    df, described = frame_from_rows(names, rows[start:], source, notes, descriptions)
    return Table(df, described, header.index, line, survey.platform if survey else None)
