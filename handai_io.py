"""Read any tabular file into a DataFrame of text; write exports safely.

Uploads are real exports, and real exports are messy: Windows-1252 bytes, byte-order marks,
semicolons, notes above the header, line breaks inside quoted cells, duplicate or blank column
names, workbooks with several sheets, JSON in several shapes. The rule here is that every row
the file holds arrives, and nothing else:

- every cell is read as text (identifiers keep leading zeros, ``704.0010`` stays ``704.0010``);
  a truly empty cell becomes NaN;
- encodings are tried in a fixed order (BOM, UTF-8, cp1252, Latin-1), never guessed by a
  detector, because detectors are wrong on real files; in a UTF-8 file, lines that are not
  UTF-8 are read as cp1252 one by one, and named;
- the delimiter and any preamble are judged from the first rows only, as a CSV parser sees them
  (Excel's ``sep=;`` line is obeyed; a .csv that holds JSON is read as JSON);
- workbooks are measured before calamine reads them, so a crafted file is refused instead of
  aborting the process (see "Reading: workbook guards");
- anything we change (renamed columns, skipped lines, dropped empty columns) is written to
  ``LoadedTable.notes`` so the user can see it;
- every failure is a ``FileReadError`` whose message says what is wrong and what to do.

Exports guard against spreadsheet formula injection (OWASP "CSV injection") and write CSV with
a BOM so Excel shows non-ASCII text correctly. No Streamlit here: pages call these functions.
"""

import array
import csv
import datetime
import decimal
import hashlib
import io
import json
import math
import os
import re
import struct
import sys
import tempfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from xml.parsers import expat

import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import python_calamine
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    "csv",
    "tsv",
    "txt",
    "xlsx",
    "xlsm",
    "xls",
    "ods",
    "json",
    "jsonl",
    "ndjson",
    "parquet",
)
MAX_UPLOAD_BYTES: int = 200 * 1024 * 1024
EXPORT_FORMATS: dict[str, str] = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
    "jsonl": "application/x-ndjson",
}

_DELIMITED = ("csv", "tsv", "txt")
_WORKBOOKS = ("xlsx", "xlsm", "xls", "ods")
_JSON = ("json", "jsonl", "ndjson")
_DELIMITER_CANDIDATES = (",", ";", "\t", "|")
_SNIFF_CHARS = 64 * 1024  # delimiter sniffing reads only this much text...
_SNIFF_ROWS = 50  # ...and at most this many records of it
_HEADER_SAMPLE_ROWS = 200  # rows used to learn the table's usual width
_MAX_PREAMBLE_ROWS = 50  # a header further down than this is not looked for
_BINARY_CONTROL_SHARE = 0.05  # more control characters than this means "not text"
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_UNNAMED = re.compile(r"Unnamed: \d+(_level_\d+)?")
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_PARQUET_MAGIC = b"PAR1"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_XLSX_MAX_ROWS = 1_048_576
_XLSX_MAX_COLUMNS = 16_384


class FileReadError(Exception):
    """A file could not be read; ``str(e)`` is a user-facing message saying what to do."""


@dataclass
class ReadOptions:
    encoding: str | None = None  # None = detect
    delimiter: str | None = None  # None = detect
    sheet: str | None = None  # None = first sheet
    skip_rows: int | None = None  # None = detect preamble
    json_key: str | None = None  # for JSON objects holding records under a key; None = detect


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


# ---------------------------------------------------------------------------------------------
# Reading: entry points


def read_table(
    data: bytes | str | os.PathLike, name: str | None = None, options: ReadOptions | None = None
) -> LoadedTable:
    """Read an upload (bytes, with ``name`` giving the extension) or a path into text cells.

    A ``str`` is a path, not file content. Raises only ``FileReadError``.
    """
    options = options or ReadOptions()
    raw, source = _load_bytes(data, name)
    fmt = _file_format(source, raw)
    if not raw or raw.isspace():
        raise FileReadError(f"The file '{source}' is empty. Check that you picked the right file.")
    try:
        if fmt in _WORKBOOKS:
            return _read_workbook(raw, source, options)
        if fmt in _JSON:
            return _read_json(raw, source, fmt, options)
        if fmt == "parquet":
            return _read_parquet(raw, source)
        return _read_delimited(raw, source, fmt, options)
    except FileReadError:
        raise
    except MemoryError as e:
        raise FileReadError(f"'{source}' is too large to load in memory here. Split it into smaller files.") from e
    except RecursionError as e:
        raise FileReadError(_too_deep_message(source)) from e
    except Exception as e:  # a bug or an unforeseen file: still a message, never a traceback or a class name
        raise FileReadError(
            f"'{source}' could not be read: something in it is not what a .{fmt} file should hold. "
            "Open it in Excel, LibreOffice or a text editor, re-save it as UTF-8 CSV or .xlsx, and upload it again."
        ) from e


def list_sheets(data: bytes | str | os.PathLike, name: str | None = None) -> list[str]:
    """Sheet names of a workbook, so the user can pick one; ``[]`` for other formats."""
    raw, source = _load_bytes(data, name)
    if _file_format(source, raw) not in _WORKBOOKS:
        return []
    return list(_open_workbook(raw, source).sheet_names)


def content_hash(data: bytes) -> str:
    """SHA-256 hex digest, to recognise the same upload again."""
    return hashlib.sha256(data).hexdigest()


def sample_dataset() -> pd.DataFrame:
    """A small built-in table of product reviews, for a first try without a file of one's own."""
    reviews = [
        ("Battery lasts two full days, even with GPS on.", "Trail watch"),
        ("Stopped charging after a week. Support never answered.", "Trail watch"),
        ("Fits well, but the strap smells of plastic.", "Trail watch"),
        ("Café-quality espresso at home — worth every cent.", "Espresso maker"),
        ("Loud, and the milk frother leaks.", "Espresso maker"),
        ("Does the job. Nothing more, nothing less.", "Espresso maker"),
        ("Très bon rapport qualité-prix, livraison rapide.", "Desk lamp"),
        ("The dimmer flickers at low brightness.", "Desk lamp"),
        ("Schönes Design, aber die Lampe wird sehr heiß.", "Desk lamp"),
        ("Bought a second one for my mother; she loves it.", "Noise-cancelling headphones"),
        ("Great sound, but they hurt after an hour.", "Noise-cancelling headphones"),
        ("音质很好，降噪效果一般。", "Noise-cancelling headphones"),
    ]
    return pd.DataFrame(
        {
            "id": [f"{i:03d}" for i in range(1, len(reviews) + 1)],
            "review_text": [text for text, _ in reviews],
            "product": [product for _, product in reviews],
        },
        dtype="str",
    )


# ---------------------------------------------------------------------------------------------
# Reading: bytes, format, encoding


def _load_bytes(data: bytes | str | os.PathLike, name: str | None) -> tuple[bytes, str]:
    """The file's bytes and a display name; size-checked before anything is parsed."""
    if isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
        source = name or "upload"
    elif isinstance(data, str | os.PathLike):
        path = Path(data)
        if not path.is_file():
            raise FileReadError(f"No file found at '{path}'. Check the path.")
        _check_size(path.stat().st_size, name or path.name)
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise FileReadError(f"'{path}' could not be opened ({e.strerror}).") from e
        source = name or path.name
    else:
        raise TypeError(f"read_table needs bytes or a path, not {type(data).__name__}")
    _check_size(len(raw), source)
    return raw, source


def _check_size(size: int, source: str) -> None:
    if size > MAX_UPLOAD_BYTES:
        raise FileReadError(
            f"'{source}' is {size / 2**20:,.1f} MB; the limit is {MAX_UPLOAD_BYTES / 2**20:,.0f} MB. "
            "Split it into smaller files or remove columns you do not need."
        )


def _file_format(source: str, raw: bytes) -> str:
    """The format from the extension; without one, from the first bytes."""
    suffix = Path(source).suffix.lower().lstrip(".")
    if suffix in SUPPORTED_EXTENSIONS:
        return suffix
    if suffix:
        supported = ", ".join(f".{ext}" for ext in SUPPORTED_EXTENSIONS)
        raise FileReadError(f"'{source}': files of type .{suffix} are not supported. Upload one of: {supported}.")
    if raw.startswith(_PARQUET_MAGIC):
        return "parquet"
    if raw.startswith(_ZIP_MAGIC):
        return "xlsx"
    if raw.startswith(_OLE_MAGIC):
        return "xls"
    if re.match(rb"\s*[\[{]", raw):
        return "json"
    return "csv"


_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
_FALLBACK_NOTES = {
    "cp1252": "The file is not valid UTF-8; read it as Windows-1252 (cp1252).",
    "latin-1": "The file is neither UTF-8 nor Windows-1252; read it as Latin-1. "
    "If characters look wrong, choose the encoding.",
}


def _decode(raw: bytes, encoding: str | None, source: str) -> tuple[str, str, list[str]]:
    """Text, the encoding used and notes: BOM, then UTF-8, cp1252, Latin-1 (never fails).

    A file of UTF-8 lines with a few lines in cp1252 (two exports pasted together) keeps its
    UTF-8 lines: only the lines that are not valid UTF-8 are read as cp1252, and named in a note.
    """
    if encoding:
        return _decode_as(raw, encoding, source), encoding, []
    for bom, enc in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(enc).removeprefix("\ufeff"), enc, []
            except UnicodeDecodeError:
                break
    body = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        return body.decode("utf-8"), "utf-8", []
    except UnicodeDecodeError:
        pass
    mixed = _decode_mixed(body)
    if mixed is not None:
        text, lines = mixed
        return text, "utf-8", [_mixed_lines_note(lines)]
    for enc in ("cp1252", "latin-1"):
        try:
            return body.decode(enc), enc, _notes_for_encoding(enc)
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any bytes")


# cp1252 where it differs from Latin-1; its five undefined bytes keep their Latin-1 meaning.
_CP1252_TABLE = {
    byte: bytes([byte]).decode("cp1252") for byte in range(0x80, 0xA0) if byte not in b"\x81\x8d\x8f\x90\x9d"
}
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # a byte that is not UTF-8, after "surrogateescape"


def _decode_mixed(raw: bytes) -> tuple[str, list[int]] | None:
    """UTF-8 text in which each line that is not valid UTF-8 is read as cp1252; and those lines' numbers.

    None when the file holds no UTF-8 beyond ASCII, or so little beside so many other lines that
    it is a cp1252 file where a pair of characters happens to form UTF-8 (such as "ß“").
    """
    text = raw.decode("utf-8", "surrogateescape")  # each stray byte becomes one U+DC80-U+DCFF
    evidence = len(raw) - len(text)  # bytes saved by multi-byte UTF-8 sequences: at least one each
    if not evidence:
        return None
    newline = "\n" if "\n" in text else "\r"
    parts: list[str] = []
    bad_lines: list[int] = []
    position = line = 0  # line: line breaks before position
    while found := _ESCAPED_BYTE.search(text, position):
        start = text.rfind(newline, position, found.start()) + 1 or position
        end = text.find(newline, found.start())
        end = len(text) if end < 0 else end + 1
        line += text.count(newline, position, start)
        bad_lines.append(line + 1)
        if len(bad_lines) > 20 * evidence + 20:
            return None
        original = text[start:end].encode("utf-8", "surrogateescape")
        parts += [text[position:start], original.decode("latin-1").translate(_CP1252_TABLE)]
        line += text.count(newline, start, end)
        position = end
    parts.append(text[position:])
    return "".join(parts), bad_lines


def _mixed_lines_note(lines: list[int]) -> str:
    shown = [f"{line:,}" for line in lines[:5]]
    if len(lines) > 5:
        listed = f"{', '.join(shown)} and {len(lines) - 5:,} more"
    elif len(shown) > 1:
        listed = f"{', '.join(shown[:-1])} and {shown[-1]}"
    else:
        listed = shown[0]
    subject = f"Lines {listed} are" if len(lines) > 1 else f"Line {listed} is"
    return (
        f"{subject} not valid UTF-8 (the rest of the file is); read {'them' if len(lines) > 1 else 'it'} as "
        "Windows-1252 (cp1252). If characters there look wrong, choose the encoding."
    )


def _notes_for_encoding(encoding: str) -> list[str]:
    note = _FALLBACK_NOTES.get(encoding)
    return [note] if note else []


def _decode_as(raw: bytes, encoding: str, source: str) -> str:
    try:
        return raw.decode(encoding).removeprefix("\ufeff")
    except LookupError as e:
        raise FileReadError(f"'{encoding}' is not a known encoding. Try utf-8, cp1252 or latin-1.") from e
    except UnicodeDecodeError as e:
        raise FileReadError(
            f"'{source}' is not valid {encoding}: byte 0x{raw[e.start]:02x} at position {e.start:,} "
            "does not fit. Choose another encoding or leave it on automatic."
        ) from e


def _require_text(text: str, raw: bytes, source: str) -> None:
    """Refuse empty text and binary data early, with a hint when it is a misnamed workbook."""
    if not text or text.isspace():
        raise FileReadError(f"The file '{source}' is empty. Check that you picked the right file.")
    sample = text[:_SNIFF_CHARS]
    if len(_CONTROL_CHARS.findall(sample)) <= _BINARY_CONTROL_SHARE * len(sample):
        return
    if raw.startswith((_ZIP_MAGIC, _OLE_MAGIC)):
        hint = "It looks like an Excel workbook: rename it to .xlsx (or .xls) and upload it again."
    else:
        hint = "Export it as CSV (UTF-8), Excel, JSON or Parquet; if it is UTF-16 text, choose that encoding."
    raise FileReadError(f"'{source}' does not look like a text table (it holds binary data). {hint}")


# ---------------------------------------------------------------------------------------------
# Reading: delimited text


def _read_delimited(raw: bytes, source: str, fmt: str, options: ReadOptions) -> LoadedTable:
    text, encoding, notes = _decode(raw, options.encoding, source)
    _require_text(text, raw, source)
    if options.delimiter is None and _JSON_START.match(text):
        records = _json_in_text(text, source, options.json_key, notes)
        if records is not None:  # a .csv that holds JSON: reading it as CSV would make a wrong table
            notes.insert(0, f"This .{fmt} file holds JSON; read it as JSON")
            return LoadedTable(_frame_from_records(records, source, notes), encoding, None, [], None, 0, notes, source)
    directive = _SEP_DIRECTIVE.match(text)
    if directive:  # Excel's "sep=;" first line names the delimiter and is not part of the table
        text = text[directive.end() :]
        line = directive.group(0).strip("\r\n")
        name = _DELIMITER_NAMES.get(directive.group(1), repr(directive.group(1)))
        notes.append(f"The first line, '{line}', names the delimiter ({name}); used it and skipped the line")
    chosen = options.delimiter if options.delimiter is not None else directive.group(1) if directive else None
    delimiter = _choose_delimiter(text, fmt, chosen)
    rows = _parse_delimited(text, delimiter, source, first_line=2 if directive else 1)
    skipped, header, body = _split_header(rows, options.skip_rows, source, "lines", notes)
    df = _frame_from_rows(header, body, source, notes)
    return LoadedTable(df, encoding, delimiter, [], None, skipped, notes, source)


_JSON_START = re.compile(r"\s*[\[{]")
_SEP_DIRECTIVE = re.compile(r"sep=([^\r\n])(?:\r\n|\r|\n|\Z)", re.IGNORECASE)
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe", " ": "space"}


def _choose_delimiter(text: str, fmt: str, chosen: str | None) -> str:
    if chosen is not None:
        chosen = "\t" if chosen in ("\\t", "tab") else chosen
        if len(chosen) != 1:
            raise FileReadError(f"The delimiter must be one character, not {chosen!r}.")
        return chosen
    return "\t" if fmt == "tsv" else _sniff_delimiter(text)


def _sniff_delimiter(text: str) -> str:
    """The candidate that splits the largest share of the first records into equal widths (>1).

    Only the first records are parsed, with a real CSV parser, because long free text defeats
    ``csv.Sniffer``. Ties go to more such records, then to the earlier candidate (comma first).
    A candidate must also split the header into several fields (see ``_splits_header``): a
    semicolon inside free text is punctuation, not a delimiter.
    """
    sample = text[:_SNIFF_CHARS]
    if len(text) > _SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # drop the record cut in half
    best, best_score = ",", (0.0, 0)
    for candidate in _DELIMITER_CANDIDATES:
        reader = csv.reader(io.StringIO(sample, newline=""), delimiter=candidate)
        try:
            rows = [row for _, row in zip(range(_SNIFF_ROWS), reader, strict=False)]
        except csv.Error:
            continue
        widths = [len(row) for row in rows if row]
        width = _most_common(widths) if widths else 0
        count = widths.count(width)
        score = (count / len(widths), count) if width > 1 and _splits_header(rows) else (0.0, 0)
        if score > best_score:
            best, best_score = candidate, score
    return best


def _splits_header(rows: list[list[str]]) -> bool:
    """Whether the header has more than one field: the first non-blank row, or a later row when
    every row from there on has several fields too (the rows above it are then a preamble)."""
    filled = [row for row in rows if _filled(row)]
    if not filled:
        return False
    if len(filled[0]) > 1:
        return True
    header = _find_header(rows)
    return len(rows[header]) > 1 and all(len(row) > 1 for row in rows[header:] if _filled(row))


def _parse_delimited(text: str, delimiter: str, source: str, first_line: int = 1) -> list[list[str]]:
    """All records, quoted line breaks (even a bare CR) kept inside their cells.

    Strict parsing first, so a quote that is never closed is reported instead of silently
    swallowing the rest of the file; other quoting slips are then read leniently.
    ``first_line`` is the file's line number of the text's first line, for messages.
    """
    csv.field_size_limit(max(csv.field_size_limit(), MAX_UPLOAD_BYTES))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[list[str]] = []
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


# ---------------------------------------------------------------------------------------------
# Reading: header, preamble, frame


def _filled(row: Sequence[str | None]) -> int:
    return sum(1 for cell in row if cell and cell.strip())


def _find_header(rows: list[list[str | None]]) -> int:
    """Index of the header row: rows above it are notes or comments (a preamble).

    The header is the first non-blank row that looks like the table: as many fields as most
    rows, or as many non-empty leading fields as most rows hold, or more than half of them
    filled. Any doubt keeps a row as the header, because a skipped row is lost while a wrong
    header is visible and fixable (``ReadOptions.skip_rows``).
    """
    sample = [row for row in rows[:_HEADER_SAMPLE_ROWS] if _filled(row)]
    if not sample:
        return 0
    width = _most_common(len(row) for row in sample)
    used_width = _most_common(_used_width(row) for row in sample)
    for index, row in enumerate(rows[: _MAX_PREAMBLE_ROWS + 1]):
        filled = _filled(row)
        if filled and (len(row) == width or _used_width(row) >= used_width or filled > width / 2):
            return index
    return 0


def _most_common(numbers: Iterable[int]) -> int:
    """The most frequent number; the larger one on a tie."""
    counts = Counter(numbers)
    return max(counts, key=lambda number: (counts[number], number))


def _used_width(row: Sequence[str | None]) -> int:
    """Fields up to the last non-blank one: trailing delimiters do not count."""
    end = len(row)
    while end and not (row[end - 1] and row[end - 1].strip()):
        end -= 1
    return end


def _split_header(
    rows: list[list[str | None]], skip_rows: int | None, source: str, unit: str, notes: list[str]
) -> tuple[int, list[str | None], list[list[str | None]]]:
    """(rows skipped, header row, data rows), from the user's choice or the preamble detection."""
    if not any(_filled(row) for row in rows):
        raise FileReadError(f"'{source}' holds no data: every cell is empty. Check that you picked the right file.")
    if skip_rows is None:
        skipped = _find_header(rows)
    elif skip_rows < 0 or skip_rows >= len(rows):
        raise FileReadError(
            f"Cannot skip {skip_rows} {unit}: '{source}' has {len(rows):,} {unit}. "
            f"Choose a number from 0 to {len(rows) - 1:,}."
        )
    else:
        skipped = skip_rows
    if skipped:
        notes.append(f"Skipped {skipped} {unit} above the header")
    return skipped, rows[skipped], rows[skipped + 1 :]


def _frame_from_rows(
    header: list[str | None], body: list[list[str | None]], source: str, notes: list[str]
) -> pd.DataFrame:
    width = max(len(header), max(map(len, body), default=0))
    columns = list(zip_longest(*body)) if body else []
    columns += [(None,) * len(body)] * (width - len(columns))
    names = list(header) + [None] * (width - len(header))
    return _frame_from_columns(names, columns, source, notes)


def _frame_from_columns(
    names: Sequence[str | None], columns: Sequence[Sequence[str | None]], source: str, notes: list[str]
) -> pd.DataFrame:
    """The final frame: text cells, clean unique names, no column or row that holds nothing."""
    texts = [[cell or None for cell in column] for column in columns]
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
    return df


def _clean_names(numbered: list[tuple[int, str | None]], notes: list[str]) -> list[str]:
    """Strip names, name blank/``Unnamed: N`` ones ``column_N`` and number duplicates ``x_2``."""
    stripped = []
    for position, name in numbered:
        text = (name or "").strip()
        if not text or _UNNAMED.fullmatch(text):
            new = f"column_{position}"
            notes.append(f"Renamed '{text}' to '{new}'" if text else f"Named blank column {position} '{new}'")
            text = new
        stripped.append(text)
    taken = set(stripped)
    seen: set[str] = set()
    result = []
    for text in stripped:
        if text in seen:
            suffix = 2
            while f"{text}_{suffix}" in taken:
                suffix += 1
            new = f"{text}_{suffix}"
            notes.append(f"Renamed duplicate column '{text}' to '{new}'")
            taken.add(new)
            text = new
        seen.add(text)
        result.append(text)
    return result


def _cell_text(value: object) -> str | None:
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


# ---------------------------------------------------------------------------------------------
# Reading: workbooks


def _open_workbook(raw: bytes, source: str) -> python_calamine.CalamineWorkbook:
    """calamine's workbook, once ``_guard_workbook`` has measured the file (see there why)."""
    _guard_workbook(raw, source)
    try:
        return python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(raw))
    except python_calamine.PasswordError as e:
        raise FileReadError(
            f"'{source}' is password-protected. Remove the password in Excel and upload it again."
        ) from e
    except Exception as e:
        raise FileReadError(_not_a_workbook(raw, source)) from e
    except BaseException as e:  # a panic inside calamine arrives as pyo3's PanicException
        if not _is_rust_panic(e):
            raise
        raise FileReadError(_not_a_workbook(raw, source)) from e


def _is_rust_panic(error: BaseException) -> bool:
    """pyo3 turns a Rust panic into ``PanicException``, which derives from BaseException only."""
    return type(error).__name__ == "PanicException"


def _not_a_workbook(raw: bytes, source: str) -> str:
    message = (
        f"'{source}' could not be opened as an Excel workbook; it may be damaged or incomplete. "
        "Open it in Excel or LibreOffice, re-save it as .xlsx, and upload it again."
    )
    if b"\x00" not in raw[:4096] and not raw.startswith((_ZIP_MAGIC, _OLE_MAGIC)):
        message += " (It looks like a text file: if it is CSV, rename it to .csv.)"
    return message


def _read_workbook(raw: bytes, source: str, options: ReadOptions) -> LoadedTable:
    workbook = _open_workbook(raw, source)
    sheets = list(workbook.sheet_names)
    if not sheets:
        raise FileReadError(f"'{source}' has no sheets. Check that you picked the right file.")
    sheet = options.sheet if options.sheet is not None else sheets[0]
    if sheet not in sheets:
        raise FileReadError(f"'{source}' has no sheet named '{sheet}'. Its sheets: {', '.join(sheets)}.")
    _guard_sheet(raw, source, sheet)
    try:
        values = workbook.get_sheet_by_name(sheet).to_python()
    except Exception as e:
        raise FileReadError(_not_a_workbook(raw, source)) from e
    except BaseException as e:
        if not _is_rust_panic(e):
            raise
        raise FileReadError(_not_a_workbook(raw, source)) from e
    rows = [_trim_row([_excel_cell_text(v) for v in row]) for row in values]
    notes = [f"Read sheet '{sheet}' (the workbook has {len(sheets)} sheets)"] if len(sheets) > 1 else []
    if not any(rows):
        others = [s for s in sheets if s != sheet]
        hint = f" Pick another sheet: {', '.join(others)}." if others else ""
        raise FileReadError(f"The sheet '{sheet}' in '{source}' is empty.{hint}")
    skipped, header, body = _split_header(rows, options.skip_rows, source, "rows", notes)
    df = _frame_from_rows(header, body, source, notes)
    return LoadedTable(df, None, None, sheets, sheet, skipped, notes, source)


def _excel_cell_text(value: object) -> str | None:
    """Like ``_cell_text``, but floats to Excel's 15 significant digits (0.1+0.2 shows 0.3)."""
    if isinstance(value, float) and math.isfinite(value) and not value.is_integer():
        return format(value, ".15g")
    return _cell_text(value)


def _trim_row(row: list[str | None]) -> list[str | None]:
    """Drop trailing empty cells: a sheet pads every row to its widest, which hides a preamble."""
    end = len(row)
    while end and row[end - 1] is None:
        end -= 1
    return row[:end]


# ---------------------------------------------------------------------------------------------
# Reading: workbook guards
#
# calamine (Rust) unpacks zip members without a limit and allocates one dense grid for the
# bounding box of a sheet's cells; when an allocation fails, Rust aborts the whole process (the
# Streamlit server with it) instead of raising. A 2 KB .xlsx with one cell at XFD1048576 asks for
# 512 GiB; a 0.2 MB one can unpack to 200 MB of text. So before calamine sees a workbook it is
# measured here, streaming, without trusting any size or dimension a header states:
#
# - zip workbooks (.xlsx/.xlsm/.ods): every member is inflated from its raw bytes in bounded
#   chunks and counted against a cap that grows with the file's size; .xlsb parts are refused;
# - an .xlsx sheet, before calamine loads it: the bounding box of the cells that can hold a value,
#   from every ``<c>`` tag, whether its position is written (``r="XFD1048576"``) or implied.
#   ``<dimension ref>`` is not trusted either way; calamine only uses it for a capped reservation;
# - .ods (calamine expands every table when it opens the file): each table's size after repeated
#   rows and columns are expanded, and the text those repetitions copy;
# - .xls (also read whole on opening): the OLE container's sizes and sector chains, DIMENSIONS
#   records and the bounding box of every sheet's cell records.
#
# Not guarded: memory that grows with honest content up to these caps (a sheet of 20M cells still
# needs a few GB), and CPU time on a workbook whose cell tags are not in the usual form: those are
# walked tag by tag in Python, which the unpacked-size cap bounds but does not make fast.

_MAX_SHEET_CELLS = 20_000_000  # rows × columns of calamine's dense grids (summed where it holds several)
_MAX_UNPACKED_BYTES = 1 << 30  # a zip workbook's members, unpacked: at most this...
_UNPACKED_ALLOWANCE = 64 << 20  # ...and at most this plus _MAX_PACKING_RATIO times the file's size
_MAX_PACKING_RATIO = 100  # real workbooks pack 5-20 times; deflate's ceiling, a bomb's, is ~1,000
_MAX_ZIP_DIRECTORY = 8 << 20  # bytes of zip directory (~100k members); real workbooks have dozens
_MAX_TAG_BYTES = 1 << 20  # an XML tag longer than this is no spreadsheet's
_UNPACK_CHUNK = 4 << 20
_ZIP_END = b"PK\x05\x06"
_XLSB_PART = re.compile(r"xl/(workbook|sharedstrings|styles)\.bin|xl/worksheets/[^/]+\.bin", re.IGNORECASE)


class _Damaged(Exception):
    """The workbook's structure is inconsistent: calamine would fail on it, or run away."""


class _TooManyCells(Exception):
    def __init__(self, rows: int, columns: int):
        super().__init__(rows, columns)
        self.rows, self.columns = rows, columns


def _too_many_cells_message(source: str, rows: int, columns: int, sheet: str | None = None) -> str:
    where = f"the sheet '{sheet}'" if sheet else "a sheet"
    return (
        f"'{source}' is too large to load here: {where} spans {rows:,} rows × {columns:,} columns "
        f"({rows * columns:,} cells; the limit is {_MAX_SHEET_CELLS:,}). A stray cell far below or to the right "
        "of the data often causes this: delete the empty rows and columns after your data in Excel or "
        "LibreOffice, save, and upload it again, or save the sheet as CSV."
    )


_GUARD_ERRORS = (_Damaged, zipfile.BadZipFile, zipfile.LargeZipFile, struct.error, IndexError, KeyError, ValueError)


def _guard_workbook(raw: bytes, source: str) -> None:
    """Refuse, before calamine opens it, a workbook that would make calamine exhaust memory."""
    try:
        if raw.startswith(_OLE_MAGIC):
            _guard_xls(raw)
        elif _zip_end(raw) >= 0:
            _guard_zip(raw, source)
    except _TooManyCells as e:
        raise FileReadError(_too_many_cells_message(source, e.rows, e.columns)) from e
    except _GUARD_ERRORS as e:
        raise FileReadError(_not_a_workbook(raw, source)) from e


def _guard_sheet(raw: bytes, source: str, sheet: str) -> None:
    """Before calamine loads an .xlsx sheet: refuse one whose cells span more than the limit."""
    if raw.startswith(_OLE_MAGIC) or _zip_end(raw) < 0:
        return
    try:
        members: dict[str, list[zipfile.ZipInfo]] = {}
        for info in zipfile.ZipFile(io.BytesIO(raw)).infolist():
            members.setdefault(info.filename.lower(), []).append(info)
        if "xl/workbook.xml" not in members:
            return  # not an .xlsx: an .ods was measured whole when it was opened
        # Members of the same name (calamine reads one of them) are all checked, and so is every
        # member when the sheet's cannot be told.
        part = _xlsx_sheet_parts(raw, members).get(sheet)
        infos = members[part] if part else [info for infos in members.values() for info in infos]
        for info in infos:
            rows, columns = _xlsx_extent(lambda info=info: _member_chunks(raw, info))
            if rows * columns > _MAX_SHEET_CELLS:
                raise FileReadError(_too_many_cells_message(source, rows, columns, sheet))
    except _GUARD_ERRORS as e:
        raise FileReadError(_not_a_workbook(raw, source)) from e


# -- zip workbooks


def _zip_end(raw: bytes) -> int:
    """Where the zip's end-of-directory record starts; -1 if the bytes are not a zip."""
    return raw.rfind(_ZIP_END, max(0, len(raw) - 65_557))


def _guard_zip(raw: bytes, source: str) -> None:
    end = _zip_end(raw)
    if len(raw) >= end + 16 and struct.unpack_from("<I", raw, end + 12)[0] > _MAX_ZIP_DIRECTORY:
        raise _Damaged("zip directory too large")
    infos = [info for info in zipfile.ZipFile(io.BytesIO(raw)).infolist() if not info.is_dir()]
    if any(_XLSB_PART.fullmatch(info.filename) for info in infos):
        raise FileReadError(
            f"'{source}' is an Excel Binary Workbook (.xlsb), which cannot be read here. "
            "Open it in Excel, save it as .xlsx (or CSV), and upload it again."
        )
    limit = min(_MAX_UNPACKED_BYTES, _UNPACKED_ALLOWANCE + _MAX_PACKING_RATIO * len(raw))
    total = 0

    def counted(chunks: Iterable[bytes]) -> Iterator[bytes]:
        nonlocal total
        for chunk in chunks:
            total += len(chunk)
            if total > limit:
                raise FileReadError(_unpacked_message(source, len(raw), limit))
            yield chunk

    for info in infos:
        chunks = counted(_member_chunks(raw, info))
        if info.filename != "content.xml":  # the name calamine's .ods reader opens
            for _ in chunks:
                pass
            continue
        ods = _OdsMeasure()
        ods.measure(chunks)
        if total + ods.copied_bytes > limit:
            raise FileReadError(_unpacked_message(source, len(raw), limit))


def _unpacked_message(source: str, size: int, limit: int) -> str:
    if limit >= _MAX_UNPACKED_BYTES:
        return (
            f"'{source}' unpacks to more than {limit / 2**20:,.0f} MB, more than this app loads from one "
            "workbook. Split it into smaller files, or save the sheet you need as CSV, and upload it again."
        )
    packed = f"{size / 2**20:,.1f} MB" if size >= 2**20 else f"{size / 2**10:,.0f} KB"
    return (
        f"'{source}' is {packed} but unpacks to more than {limit / 2**20:,.0f} MB, far more than "
        "real workbooks do: it is damaged or deliberately inflated, so it is not read. If you trust it, open it "
        "in Excel or LibreOffice, save it as CSV, and upload that."
    )


def _member_chunks(raw: bytes, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """A member's bytes as calamine's zip reader unpacks them, in chunks of at most 4 MB.

    Inflated from the raw bytes until the deflate stream itself ends, so a size a header states,
    too small or too large, changes nothing.
    """
    offset = info.header_offset
    if raw[offset : offset + 4] != _ZIP_MAGIC:
        raise _Damaged("no local header")
    name_length, extra_length = struct.unpack_from("<HH", raw, offset + 26)
    start = offset + 30 + name_length + extra_length
    if info.compress_type == zipfile.ZIP_STORED:
        end = min(len(raw), start + info.compress_size)
        for position in range(start, end, _UNPACK_CHUNK):
            yield raw[position : min(end, position + _UNPACK_CHUNK)]
        return
    if info.compress_type != zipfile.ZIP_DEFLATED:
        raise _Damaged("a compression method Excel does not use")
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    view = memoryview(raw)
    position = start
    while not inflater.eof:
        if inflater.unconsumed_tail:
            data = inflater.unconsumed_tail
        elif position < len(raw):
            data = view[position : position + (1 << 20)]
            position += len(data)
        else:
            return  # cut short: calamine stops there too
        try:
            out = inflater.decompress(data, _UNPACK_CHUNK)
        except zlib.error:
            return  # broken data: nothing more comes out of it for calamine either
        if out:
            yield out


def _xml_tags(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The same bytes, re-cut so that no tag is split between two pieces."""
    tail = b""
    for chunk in chunks:
        buffer = tail + chunk if tail else chunk
        last = buffer.rfind(b"<")
        if last < 0 or buffer.find(b">", last) >= 0:
            tail = b""
            yield buffer
            continue
        tail = buffer[last:]
        if len(tail) > _MAX_TAG_BYTES:
            raise _Damaged("an XML tag of more than 1 MB")
        yield buffer[:last]
    if tail:
        yield tail


def _xlsx_sheet_parts(raw: bytes, members: dict[str, list[zipfile.ZipInfo]]) -> dict[str, str]:
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
            _parse_xml(_member_chunks(raw, info), relationship, lambda name: None)
        for info in members["xl/workbook.xml"]:
            _parse_xml(_member_chunks(raw, info), sheet, lambda name: None)
    except _Damaged:
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


def _xlsx_extent(open_chunks: Callable[[], Iterable[bytes]]) -> tuple[int, int]:
    """(rows, columns) of the bounding box of the sheet's cells that can hold a value.

    A cell without content (``<c r="XFD1" s="1"/>``, a formatted empty cell) holds none, and
    calamine skips it; every other cell counts, whether its position is written or implied.
    """
    for quick in (_xlsx_extent_within_dimension, _xlsx_extent_bound):
        extent = quick(open_chunks())
        if extent is not None and extent[0] * extent[1] <= _MAX_SHEET_CELLS:
            return extent
    return _xlsx_extent_by_parsing(open_chunks())


def _xlsx_extent_within_dimension(chunks: Iterable[bytes]) -> tuple[int, int] | None:
    """A1 to the end of ``<dimension ref>``, if a scan shows every cell within it; else None.

    The header is only a guess to check, with one search per chunk for a cell beyond it:
    much faster than collecting every reference.
    """
    beyond = None
    for piece in _xml_tags(chunks):
        if b"\x00" in piece:  # UTF-16 or stranger: left to the parser
            return None
        if beyond is None:
            found = _DIMENSION.search(piece)
            end = re.fullmatch(rb"([A-Z]{1,3})([1-9][0-9]{0,6})", found.group(1).split(b":")[-1]) if found else None
            if end is None:
                return None
            rows, columns = int(end.group(2)), _column_number(end.group(1))
            if rows * columns > _MAX_SHEET_CELLS:
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
    for piece in _xml_tags(chunks):
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
    extent = _Extent()
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
                raise _Damaged("an unreadable cell reference")  # calamine rejects the sheet
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

    _parse_xml(chunks, start, end)
    return extent.size()


def _parse_xml(
    chunks: Iterable[bytes],
    start: Callable[[str, dict[str, str]], None],
    end: Callable[[str], None],
    parser: "expat.XMLParserType | None" = None,
) -> None:
    """Stream XML through expat; a document type declaration (entities) counts as damage."""

    def refuse(*_: object) -> None:
        raise _Damaged("a document type declaration")

    parser = parser or expat.ParserCreate()
    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.StartDoctypeDeclHandler = refuse
    parser.buffer_text = True
    try:
        for chunk in chunks:
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except expat.ExpatError as e:
        raise _Damaged("not well-formed XML") from e


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


class _Extent:
    """The bounding box of cell positions, as calamine sizes a sheet's grid (in any order)."""

    def __init__(self) -> None:
        self.top = self.bottom = self.left = self.right = -1

    def add(self, row: int, column: int) -> None:
        if self.top < 0:
            self.top = self.bottom = row
            self.left = self.right = column
            return
        self.top, self.bottom = min(self.top, row), max(self.bottom, row)
        self.left, self.right = min(self.left, column), max(self.right, column)

    def size(self) -> tuple[int, int]:
        if self.top < 0:
            return 0, 0
        return self.bottom - self.top + 1, self.right - self.left + 1


# -- .ods


class _OdsMeasure:
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
        _parse_xml(chunks, self._start, self._end, self.parser)

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
        if self.row_stored > _MAX_SHEET_CELLS:
            raise _TooManyCells(1, self.row_stored)

    def _end_row(self) -> None:
        self.stored += self.row_stored
        if self.row_width:
            if self.first < 0:
                self.first = self.rows_before
            self.last = self.rows_before + self.repeats
            self.width = max(self.width, self.row_width)
            self.copied_bytes += (self.repeats - 1) * self.row_text
            rows = self.last - self.first
            if self.cells + rows * self.width > _MAX_SHEET_CELLS:
                raise _TooManyCells(rows, self.width)
        if self.stored > _MAX_SHEET_CELLS:
            raise _TooManyCells(self.rows_before + self.repeats, self.row_stored)
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
        raise _Damaged("an unreadable count")
    return int(text)


# -- .xls

_FREE_SECTORS = 0xFFFFFFFA  # sector numbers from here on are markers
_END_OF_CHAIN = 0xFFFFFFFE
_BIFF_EOF, _BIFF_SHEET, _BIFF_DIMENSIONS = 0x000A, 0x0085, 0x0200
_BIFF_FORMULA, _BIFF_FORMULA_STRING, _BIFF_MULRK = 0x0006, 0x0207, 0x00BD
_BIFF_CELLS = {0x0203: 14, 0x0204: 6, 0x0205: 8, 0x027E: 10, 0x00FD: 10}  # record -> the length calamine needs


def _guard_xls(raw: bytes) -> None:
    stream = _ole_stream(raw, ("Workbook", "Book"))
    if stream is not None:
        _check_biff(stream)


def _ole_stream(raw: bytes, names: Sequence[str]) -> bytes | None:
    """The first stream of an OLE file with one of ``names``, read as calamine reads it.

    Sizes in the header and directory that exceed the file, and sector chains that loop or
    leave the file, are ``_Damaged``: calamine would reserve memory for them, or never stop.
    """
    if len(raw) < 512:
        raise _Damaged("too short")
    shift, mini_shift = struct.unpack_from("<HH", raw, 0x1E)
    if shift not in (9, 12) or mini_shift != 6:
        raise _Damaged("sector size")
    size = 1 << shift
    directory_sectors, fat_sectors, directory_start = struct.unpack_from("<3I", raw, 0x28)
    minifat_start, minifat_sectors, difat_start, difat_sectors = struct.unpack_from("<4I", raw, 0x3C)
    in_file = max(len(raw) // size - 1, 0)
    if max(directory_sectors, fat_sectors, minifat_sectors, difat_sectors) > in_file:
        raise _Damaged("header sizes")

    def sector(number: int) -> bytes:
        start = (number + 1) * size
        if number >= _FREE_SECTORS or start + size > len(raw):
            raise _Damaged("sector outside the file")
        return raw[start : start + size]

    difat = list(struct.unpack_from("<109I", raw, 0x4C))
    number, steps = difat_start, 0
    while number < _FREE_SECTORS:
        steps += 1
        if steps > in_file:
            raise _Damaged("DIFAT loop")
        entries = struct.unpack(f"<{size // 4}I", sector(number))
        difat.extend(entries[:-1])
        number = entries[-1]
    fat = _u32_array(b"".join(sector(number) for number in difat if number < 0xFFFFFFFC))
    directory = _ole_chain(directory_start, fat, sector, in_file)
    entries = []
    for start in range(0, len(directory) - 127, 128):
        entry = directory[start : start + 128]
        name = entry[:64].decode("utf-16-le", "ignore").split("\0", 1)[0]
        first = struct.unpack_from("<I", entry, 116)[0]
        length = struct.unpack_from("<I" if size == 512 else "<Q", entry, 120)[0]
        entries.append((name, first, length))
    if not entries:
        raise _Damaged("no directory")
    wanted = next((entry for name in names for entry in entries if entry[0] == name), None)
    if wanted is None:
        return None  # calamine finds no workbook either, and says so
    root = entries[0]
    if wanted[2] > len(raw) or root[2] > len(raw):
        raise _Damaged("stream larger than the file")
    if wanted[2] >= 4096:
        return _ole_chain(wanted[1], fat, sector, in_file)[: wanted[2]]
    if not minifat_sectors:
        return None
    ministream = _ole_chain(root[1], fat, sector, in_file)[: root[2]]
    minifat = _u32_array(_ole_chain(minifat_start, fat, sector, in_file))

    def mini_sector(number: int) -> bytes:
        if number * 64 + 64 > len(ministream):
            raise _Damaged("mini sector outside the mini stream")
        return ministream[number * 64 : number * 64 + 64]

    return _ole_chain(wanted[1], minifat, mini_sector, len(ministream) // 64)[: wanted[2]]


def _u32_array(data: bytes) -> array.array:
    values = array.array("I")
    values.frombytes(data[: len(data) - len(data) % 4])
    if sys.byteorder == "big":
        values.byteswap()
    return values


def _ole_chain(first: int, table: Sequence[int], read: Callable[[int], bytes], limit: int) -> bytes:
    parts, number = [], first
    while number != _END_OF_CHAIN:
        if len(parts) > limit or number >= len(table):
            raise _Damaged("broken sector chain")
        parts.append(read(number))
        number = table[number]
    return b"".join(parts)


def _biff_records(stream: bytes, position: int) -> Iterator[tuple[int, int, int]]:
    """(record type, data start, data length) from ``position`` to the stream's end."""
    while position + 4 <= len(stream):
        kind, length = struct.unpack_from("<HH", stream, position)
        if position + 4 + length > len(stream):
            return  # calamine stops with an error here
        yield kind, position + 4, length
        position += 4 + length


def _check_biff(stream: bytes) -> None:
    """Sizes calamine allocates for an .xls: room for DIMENSIONS, and a grid for every sheet's cells."""
    sheets = []
    for kind, start, length in _biff_records(stream, 0):
        if kind == _BIFF_SHEET and length >= 4:
            sheets.append(struct.unpack_from("<I", stream, start)[0])
        elif kind == _BIFF_EOF:
            break
    total = 0
    for position in sheets:
        if position > len(stream):
            raise _Damaged("sheet outside the stream")
        cells, formulas = _Extent(), _Extent()
        formula_at = (0, 0)
        for kind, start, length in _biff_records(stream, position):
            if kind == _BIFF_EOF:
                break
            if kind == _BIFF_DIMENSIONS:
                rows, columns = _biff_dimensions(stream, start, length)
                if rows * columns > _MAX_SHEET_CELLS:
                    raise _TooManyCells(rows, columns)
                continue
            if kind in _BIFF_CELLS and length >= _BIFF_CELLS[kind]:
                found = [struct.unpack_from("<HH", stream, start)]
            elif kind == _BIFF_MULRK and length >= 12:
                row, column = struct.unpack_from("<HH", stream, start)
                found = [(row, column), (row, column + (length - 6) // 6 - 1)]
            elif kind == _BIFF_FORMULA and length >= 20:
                formula_at = struct.unpack_from("<HH", stream, start)
                formulas.add(*formula_at)
                found = [formula_at]
            elif kind == _BIFF_FORMULA_STRING:
                found = [formula_at]
            else:
                continue
            for row, column in found:
                cells.add(row, column)
        for extent in (cells, formulas):
            rows, columns = extent.size()
            total += rows * columns
            if total > _MAX_SHEET_CELLS:
                raise _TooManyCells(rows, columns)


def _biff_dimensions(stream: bytes, start: int, length: int) -> tuple[int, int]:
    """The (rows, columns) calamine reserves room for from a DIMENSIONS record."""
    if length == 10:
        first_row, last_row, first_column, last_column = struct.unpack_from("<4H", stream, start)
    elif length == 14:
        first_row, last_row, first_column, last_column = struct.unpack_from("<2I2H", stream, start)
    else:
        return 0, 0  # calamine rejects the record
    if last_row < 1 or last_column < 1:
        return 1, 1
    rows = (last_row - 1 - first_row + 1) % 2**32
    columns = (last_column - 1 - first_column + 1) % 2**32
    return rows, columns


# ---------------------------------------------------------------------------------------------
# Reading: JSON, JSON Lines, Parquet


def _read_json(raw: bytes, source: str, fmt: str, options: ReadOptions) -> LoadedTable:
    text, encoding, notes = _decode(raw, options.encoding, source)
    _require_text(text, raw, source)
    if fmt == "json" or re.match(r"\s*\[", text):
        records = _json_document_records(text, source, options.json_key, notes)
    else:
        records = _json_lines_records(text, source)
    return LoadedTable(_frame_from_records(records, source, notes), encoding, None, [], None, 0, notes, source)


def _frame_from_records(records: list[dict], source: str, notes: list[str]) -> pd.DataFrame:
    if not records:
        raise FileReadError(f"'{source}' holds no records. Check that you picked the right file.")
    try:
        keys = list(dict.fromkeys(key for record in records for key in record))
        columns = [[_json_cell_text(record.get(key)) for record in records] for key in keys]
    except RecursionError as e:  # a value nested too deeply to write back as JSON text
        raise FileReadError(_too_deep_message(source)) from e
    return _frame_from_columns([_storable(key) for key in keys], columns, source, notes)


def _too_deep_message(source: str, line: int | None = None) -> str:
    where = f"Line {line:,} of '{source}'" if line else f"'{source}'"
    return (
        f"{where} is nested too deeply to read as a table: it holds lists or objects inside each other "
        "hundreds of levels deep. Check that you picked the right file, or export the data as a flat list "
        'of records such as [{"id": 1, "text": "…"}, …].'
    )


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _storable(text: str) -> str:
    """Text that can be stored and encoded: a lone surrogate (half an emoji, from a JSON escape
    such as "\\ud83d" cut off by an exporter) becomes U+FFFD, the replacement character."""
    return text if text.isascii() else _LONE_SURROGATE.sub("\ufffd", text)


def _json_in_text(text: str, source: str, key: str | None, notes: list[str]) -> list[dict] | None:
    """The records of a delimited file that really holds JSON or JSON Lines; None if it does not."""
    json_notes: list[str] = []
    try:
        document = _load_json(text)
    except json.JSONDecodeError as e:
        if e.msg != "Extra data":
            return None
        try:
            records = _json_lines_records(text, source)
        except FileReadError:
            return None
        notes.append("It holds one JSON object per line (JSON Lines)")
        return records
    except RecursionError as e:
        raise FileReadError(_too_deep_message(source)) from e
    records = _records_in(document, source, key, json_notes)
    notes.extend(json_notes)
    return records


def _json_constant(name: str) -> str | None:
    """NaN is a missing value; Infinity stays as the text it was."""
    return None if name == "NaN" else name


def _load_json(text: str) -> object:
    return json.loads(text, parse_float=decimal.Decimal, parse_constant=_json_constant)


def _json_document_records(text: str, source: str, key: str | None, notes: list[str]) -> list[dict]:
    try:
        document = _load_json(text)
    except RecursionError as e:
        raise FileReadError(_too_deep_message(source)) from e
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":  # one object per line, named .json
            notes.append("The file holds one JSON object per line; read it as JSON Lines")
            return _json_lines_records(text, source)
        raise FileReadError(
            f"'{source}' is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}. "
            "Fix the file or export it again."
        ) from e
    return _records_in(document, source, key, notes)


def _records_in(document: object, source: str, key: str | None, notes: list[str]) -> list[dict]:
    """Records from an array of objects, from an object holding them under a key, or one object."""
    if _is_records(document):
        return document
    if not isinstance(document, dict):
        raise FileReadError(_not_records_message(source))
    if key is not None:
        if key not in document:
            keys = ", ".join(map(str, document)) or "none"
            raise FileReadError(f"'{source}' has no key '{key}'. Its top-level keys: {keys}.")
        value = document[key]
        if isinstance(value, dict):
            return [value]
        if not _is_records(value):
            raise FileReadError(f"The key '{key}' in '{source}' does not hold a list of objects.")
        notes.append(f"Read the records under the key '{key}'")
        return value
    for candidate, value in document.items():
        if value and _is_records(value):
            notes.append(f"Read the records under the key '{candidate}'")
            return value
    notes.append("The JSON holds a single object; read it as one row")
    return [document]


def _is_records(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _not_records_message(source: str) -> str:
    return (
        f"'{source}' is JSON but not a table. Expected a list of objects such as "
        '[{"id": 1, "text": "…"}, …], or an object holding such a list under a key.'
    )


def _json_lines_records(text: str, source: str) -> list[dict]:
    """One object per line; blank lines skipped; a bad line is reported by its number."""
    records = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = _load_json(line)
        except RecursionError as e:
            raise FileReadError(_too_deep_message(source, number)) from e
        except json.JSONDecodeError as e:
            raise FileReadError(
                f"Line {number} of '{source}' is not valid JSON ({e.msg}). Fix or remove that line."
            ) from e
        if not isinstance(record, dict):
            raise FileReadError(
                f"Line {number} of '{source}' is not a JSON object; each line must be one {{…}} record."
            )
        records.append(record)
    return records


def _json_cell_text(value: object) -> str | None:
    """A JSON value as text: numbers as written, true/false, nested values as JSON."""
    if isinstance(value, str):
        return _storable(value) or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return _storable(json.dumps(value, ensure_ascii=False, default=float))
    return _cell_text(value)


def _read_parquet(raw: bytes, source: str) -> LoadedTable:
    try:
        table = pq.read_table(pa.BufferReader(raw))
    except (pa.ArrowException, OSError) as e:
        raise FileReadError(
            f"'{source}' could not be opened as a Parquet file; it may be damaged or incomplete. Export it again."
        ) from e
    notes: list[str] = []
    columns = [[_cell_text(value) for value in column.to_pylist()] for column in table.columns]
    df = _frame_from_columns(table.column_names, columns, source, notes)
    return LoadedTable(df, None, None, [], None, 0, notes, source)


# ---------------------------------------------------------------------------------------------
# Writing


def neutralize_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """A copy where text a spreadsheet would run as a formula starts with a single quote.

    OWASP's CSV-injection rule: cells starting with = + - @ tab or CR. Plain numbers such as
    "-3.5" are left alone; they cannot run anything. Column names are cells too.
    """
    out = df.copy()
    for position in range(out.shape[1]):
        column = out.iloc[:, position]
        if column.dtype == object or pd.api.types.is_string_dtype(column):
            out.isetitem(position, column.map(_neutralize_cell, na_action="ignore"))
    out.columns = [_neutralize_cell(name) for name in out.columns]
    return out


def _neutralize_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def export_bytes(df: pd.DataFrame, fmt: str) -> bytes:
    """The table as a download: CSV (UTF-8 with BOM) or XLSX with formulas neutralised; JSON/JSONL."""
    fmt = fmt.lower()
    if fmt == "csv":
        return neutralize_formulas(df).to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")
    if fmt == "xlsx":
        return _xlsx_bytes(neutralize_formulas(df))
    if fmt == "json":
        return json.dumps(_json_records(df), ensure_ascii=False, default=str).encode("utf-8")
    if fmt == "jsonl":
        lines = (json.dumps(record, ensure_ascii=False, default=str) + "\n" for record in _json_records(df))
        return "".join(lines).encode("utf-8")
    raise ValueError(f"Unknown export format '{fmt}'. Use one of: {', '.join(EXPORT_FORMATS)}.")


def _json_records(df: pd.DataFrame) -> list[dict]:
    as_objects = df.astype(object)
    return as_objects.where(df.notna(), None).to_dict(orient="records")


def _xlsx_bytes(df: pd.DataFrame) -> bytes:
    if len(df) >= _XLSX_MAX_ROWS or df.shape[1] > _XLSX_MAX_COLUMNS:
        raise ValueError(
            f"{len(df):,} rows × {df.shape[1]:,} columns do not fit in one Excel sheet "
            f"(max {_XLSX_MAX_ROWS - 1:,} rows × {_XLSX_MAX_COLUMNS:,} columns). Export as CSV or JSONL."
        )
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("data")
    sheet.append([_xlsx_value(name) for name in df.columns])
    for row in df.itertuples(index=False, name=None):
        sheet.append([_xlsx_value(value) for value in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _xlsx_value(value: object) -> object:
    """A value openpyxl can store: control characters removed (XML forbids them), NaN empty."""
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("", value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return value.isoformat()  # Excel has no time zones
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return value


_WRITE_FORMATS = {".csv": "csv", ".xlsx": "xlsx", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write to a file whose suffix picks the format; replaced atomically, never half-written."""
    path = Path(path)
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"Cannot write '{path.name}': unknown file type '{path.suffix}'. Use one of: {', '.join(_WRITE_FORMATS)}."
        )
    payload = export_bytes(df, fmt)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
