"""Delimited text (.csv, .tsv, .txt): the delimiter, judged from the first records as a CSV parser sees
them (Excel's ``sep=;`` line obeyed), then every record, quoted line breaks kept in their cells."""

import csv
import io
import re
from collections.abc import Callable
from itertools import islice

from handai_io import sources
from handai_io.encodings import SNIFF_CHARS, decode, require_text
from handai_io.footer import footer_start
from handai_io.frames import Row, filled
from handai_io.header import find_header, is_marked, most_common
from handai_io.json_records import frame_from_records, json_in_text
from handai_io.layout import table_from_rows
from handai_io.model import FileReadError, LoadedTable, ReadOptions

_DELIMITER_CANDIDATES = (",", ";", "\t", "|")
_SNIFF_ROWS = 50  # delimiter sniffing parses at most this many records (of SNIFF_CHARS of text)
_JSON_START = re.compile(r"\s*[\[{]")
_SEP_DIRECTIVE = re.compile(r"sep=([^\r\n])(?:\r\n|\r|\n|\Z)", re.IGNORECASE)
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe", " ": "space"}


def read_delimited(raw: bytes, source: str, fmt: str, options: ReadOptions) -> LoadedTable:
    text, encoding, notes = decode(raw, options.encoding, source)
    require_text(text, raw, source)
    if options.delimiter is None and _JSON_START.match(text):
        records = json_in_text(text, source, options.json_key, notes)
        if records is not None:  # a .csv that holds JSON: reading it as CSV would make a wrong table
            notes.insert(0, f"This .{fmt} file holds JSON; read it as JSON")
            df = frame_from_records(records, source, notes)
            return LoadedTable(df, encoding, None, [], None, 0, notes, source)
    directive = _SEP_DIRECTIVE.match(text)
    if directive:  # Excel's "sep=;" first line names the delimiter and is not part of the table
        text = text[directive.end() :]
        line = directive.group(0).strip("\r\n")
        name = _DELIMITER_NAMES.get(directive.group(1), repr(directive.group(1)))
        notes.append(f"The first line, '{line}', names the delimiter ({name}); used it and skipped the line")
    chosen = options.delimiter if options.delimiter is not None else directive.group(1) if directive else None
    delimiter = _choose_delimiter(text, fmt, chosen)
    first_line = 2 if directive else 1
    rows = _parse_delimited(text, delimiter, source, first_line)
    line_of = _line_numbers(text, delimiter, first_line)
    table = table_from_rows(rows, options.skip_rows, source, "line", line_of, notes, options.subheader)
    return LoadedTable(
        table.df,
        encoding,
        delimiter,
        [],
        None,
        table.skipped,
        notes,
        source,
        descriptions=table.descriptions,
        header_row=table.header_row,
        survey=table.survey,
    )


def _choose_delimiter(text: str, fmt: str, chosen: str | None) -> str:
    if chosen is not None:
        chosen = "\t" if chosen in ("\\t", "tab") else chosen
        if len(chosen) != 1:
            raise FileReadError(f"The delimiter must be one character, not {chosen!r}.")
        return chosen
    return "\t" if fmt == "tsv" else _sniff_delimiter(text)


def _sniff_delimiter(text: str) -> str:
    """The candidate that splits the largest share of the first records into equal widths (>1),
    comment lines (``#``, ``//``) left out.

    Only the first records are parsed, with a real CSV parser, because long free text defeats
    ``csv.Sniffer``. Ties go to more such records, then to the earlier candidate (comma first).
    A candidate must also split the header into several fields (see ``_splits_header``): a
    semicolon inside free text is punctuation, not a delimiter.
    """
    sample = text[:SNIFF_CHARS]
    if len(text) > SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # drop the record cut in half
    best, best_score = ",", (0.0, 0)
    for candidate in _DELIMITER_CANDIDATES:
        reader = csv.reader(io.StringIO(sample, newline=""), delimiter=candidate)
        try:
            rows = [row for _, row in zip(range(_SNIFF_ROWS), reader, strict=False)]
        except csv.Error:
            continue
        widths = [len(row) for row in rows if row and not is_marked(row)]  # comment lines are not the table
        width = most_common(widths) if widths else 0
        count = widths.count(width)
        score = (count / len(widths), count) if width > 1 and _splits_header(rows) else (0.0, 0)
        if score > best_score:
            best, best_score = candidate, score
    return best


def _splits_header(rows: list[Row]) -> bool:
    """Whether the header has more than one field: the first non-blank row, or a later row when
    every row from there on has several fields too, up to a footer (a source line under a rule):
    the rows above it are then a preamble."""
    content = [row for row in rows if filled(row)]
    if not content:
        return False
    if len(content[0]) > 1:
        return True
    header = find_header(rows).index
    below = rows[header:]
    below = below[: footer_start(below, len(rows[header]))]
    return len(rows[header]) > 1 and all(len(row) > 1 for row in below if filled(row))


def _parse_delimited(text: str, delimiter: str, source: str, first_line: int) -> list[Row]:
    """All records, quoted line breaks (even a bare CR) kept inside their cells.

    Strict parsing first, so a quote that is never closed is reported instead of silently
    swallowing the rest of the file; other quoting slips are then read leniently.
    ``first_line`` is the file's line number of the text's first line, for messages.
    """
    csv.field_size_limit(max(csv.field_size_limit(), sources.MAX_UPLOAD_BYTES))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[Row] = []
    lines_read = 0
    try:
        for row in reader:
            rows.append(row)
            lines_read = reader.line_num
    except csv.Error as e:
        if "unexpected end of data" in str(e):
            opens = first_line + lines_read  # the line where the unfinished record starts
            after = f" (after line {opens - 1:,})" if opens > 1 else ""
            raise FileReadError(
                f"'{source}' has a quoted cell that is never closed: the \" in the record that starts on line "
                f"{opens:,}{after} runs to the end of the file. Fix that quote, or check the delimiter."
            ) from e
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    return rows


def _line_numbers(text: str, delimiter: str, first_line: int) -> Callable[[int], int]:
    """The file's line number on which a record (by its position) starts; a record may span lines."""

    def line_of(index: int) -> int:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        for _ in islice(reader, index):
            pass
        return first_line + reader.line_num

    return line_of
