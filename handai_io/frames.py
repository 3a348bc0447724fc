"""Cells and names to the final frame: text cells, clean unique names, no column or row that holds nothing."""

import datetime
import json
import math
import re
from collections.abc import Sequence
from itertools import zip_longest

import pandas as pd

from handai_io.model import FileReadError

_UNNAMED = re.compile(r"Unnamed: \d+(_level_\d+)?")

Row = list[str | None]


def filled(row: Sequence[str | None]) -> int:
    """How many cells of the row hold something other than blanks."""
    return sum(1 for cell in row if cell and cell.strip())


def frame_from_rows(
    header: Row,
    body: list[Row],
    source: str,
    notes: list[str],
    descriptions: Sequence[str | None] = (),
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The frame of a header and its rows, and the descriptions (aligned with the header) by final name."""
    width = max(len(header), max(map(len, body), default=0))
    columns = list(zip_longest(*body)) if body else []
    columns += [(None,) * len(body)] * (width - len(columns))
    names = list(header) + [None] * (width - len(header))
    return frame_from_columns(names, columns, source, notes, descriptions)


def frame_from_columns(
    names: Sequence[str | None],
    columns: Sequence[Sequence[str | None]],
    source: str,
    notes: list[str],
    descriptions: Sequence[str | None] = (),
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The final frame, and each kept column's description (aligned with ``names``) under its final name.

    A description equal to the column's name says nothing more, and is left out.
    """
    texts = [[cell or None for cell in column] for column in columns]
    described = list(descriptions) + [None] * (len(names) - len(descriptions))
    keep = [i for i, name in enumerate(names) if (name and name.strip()) or any(texts[i])]
    if len(keep) < len(names):
        dropped = len(names) - len(keep)
        notes.append(f"Dropped {dropped} empty column{'s' if dropped > 1 else ''} without a name")
    clean = _clean_names([(i + 1, names[i]) for i in keep], notes)
    df = pd.DataFrame({pos: pd.array(texts[i], dtype="str") for pos, i in enumerate(keep)})
    df.columns = clean
    has_content = df.notna().any(axis=1)
    if not has_content.all():
        empty = int((~has_content).sum())
        notes.append(f"Dropped {empty:,} empty row{'s' if empty > 1 else ''}")
        df = df[has_content].reset_index(drop=True)
    if df.empty:
        if not clean:
            raise FileReadError(f"'{source}' holds no data: every cell is empty. Check that you picked the right file.")
        shown = ", ".join(clean[:8]) + (", …" if len(clean) > 8 else "")
        raise FileReadError(
            f"'{source}' has a header row ({shown}) but no data rows. Check that you picked the right file or sheet."
        )
    texts_by_name = {name: (described[i] or "").strip() for name, i in zip(clean, keep, strict=True)}
    return df, {name: text for name, text in texts_by_name.items() if text and text != name}


def _clean_names(numbered: list[tuple[int, str | None]], notes: list[str]) -> list[str]:
    """Strip names, name blank/``Unnamed: N`` ones ``column_N`` and number duplicates ``x_2``.

    Each kind of change is one note, however many columns it touched (see ``grouped_note``).
    """
    blank: list[str] = []
    unnamed: list[str] = []
    stripped = []
    for position, name in numbered:
        text = (name or "").strip()
        if not text or _UNNAMED.fullmatch(text):
            new = f"column_{position}"
            (unnamed if text else blank).append(f"'{text}' to '{new}'" if text else str(position))
            text = new
        stripped.append(text)
    taken = set(stripped)
    seen: set[str] = set()
    duplicates: list[str] = []
    result = []
    for text in stripped:
        if text in seen:
            suffix = 2
            while f"{text}_{suffix}" in taken:
                suffix += 1
            new = f"{text}_{suffix}"
            duplicates.append(f"'{text}' to '{new}'")
            taken.add(new)
            text = new
        seen.add(text)
        result.append(text)
    for note in (
        grouped_note(
            blank,
            "Named blank column {0} 'column_{0}'",
            "{n} blank header cells were named column_N (columns {examples})",
        ),
        grouped_note(unnamed, "Renamed {0}", "Renamed {n} 'Unnamed: N' header cells to column_N: {examples}"),
        grouped_note(duplicates, "Renamed duplicate column {0}", "Renamed {n} duplicate column names: {examples}"),
    ):
        if note:
            notes.append(note)
    return result


EXAMPLES_IN_NOTE = 3


def grouped_note(items: Sequence[str], one: str, many: str) -> str | None:
    """One note for a kind of change: ``one`` with the item when there is one; else ``many`` with
    the count ``{n}`` and the first few items as ``{examples}`` ("27 blank header cells were named
    column_N (columns 3, 5, 9 and 24 more)")."""
    if not items:
        return None
    if len(items) == 1:
        return one.format(items[0])
    rest = len(items) - EXAMPLES_IN_NOTE
    if rest > 0:
        examples = f"{', '.join(items[:EXAMPLES_IN_NOTE])} and {rest:,} more"
    else:
        examples = f"{', '.join(items[:-1])} and {items[-1]}"
    return many.format(n=f"{len(items):,}", examples=examples)


def cell_text(value: object) -> str | None:
    """Any cell value as text: ISO dates, integral floats without '.0', nested data as JSON."""
    if isinstance(value, str):
        return value or None
    if value is None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)
