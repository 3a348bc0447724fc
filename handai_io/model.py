"""What a caller asks the reader for, what it gets back, and the one error it can get."""

from dataclasses import dataclass, field

import pandas as pd


class FileReadError(Exception):
    """A file could not be read; ``str(e)`` is a user-facing message saying what to do."""


@dataclass
class ReadOptions:
    encoding: str | None = None  # None = detect
    delimiter: str | None = None  # None = detect
    sheet: str | None = None  # None = first sheet
    skip_rows: int | None = None  # None = detect the header (preamble, survey header rows); a number = exactly that
    json_key: str | None = None  # for JSON objects holding records under a key; None = detect
    # The row under the header is a second header row (options under a question): its cells join
    # the names ("Question - Option") and it is not data. Text files and sheets only.
    subheader: bool = False


@dataclass
class LoadedTable:
    df: pd.DataFrame  # every cell as text (str dtype), NaN for empty cells; unique, non-blank names
    encoding: str | None  # what was used, for text formats
    delimiter: str | None
    sheets: list[str]  # sheet names for workbooks, else []
    sheet: str | None
    skipped_rows: int  # preamble lines skipped
    notes: list[str]  # what was changed or guessed, for the user to see
    source_name: str
    # Column name -> human text for it, such as a survey question's full wording; only where the
    # file holds such a text and it says more than the name. Empty when the file has none.
    descriptions: dict[str, str] = field(default_factory=dict)
    header_row: int | None = None  # 1-based line (text) or sheet row (workbook) of the header; None for JSON/Parquet
    survey: str | None = None  # the survey platform whose export this is ("Qualtrics", ...), if recognised
