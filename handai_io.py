"""Read any tabular file into a DataFrame of text; write exports safely.

Uploads are real exports, and real exports are messy: Windows-1252 bytes, byte-order marks,
semicolons, notes above the header, line breaks inside quoted cells, duplicate or blank column
names, workbooks with several sheets, JSON in several shapes. The rule here is that every row
the file holds arrives, and nothing else:

- every cell is read as text (identifiers keep leading zeros, ``704.0010`` stays ``704.0010``);
  a truly empty cell becomes NaN;
- encodings are tried in a fixed order (BOM, UTF-8, cp1252, Latin-1), never guessed by a
  detector, because detectors are wrong on real files;
- the delimiter and any preamble are judged from the first rows only, as a CSV parser sees them;
- anything we change (renamed columns, skipped lines, dropped empty columns) is written to
  ``LoadedTable.notes`` so the user can see it;
- every failure is a ``FileReadError`` whose message says what is wrong and what to do.

Exports guard against spreadsheet formula injection (OWASP "CSV injection") and write CSV with
a BOM so Excel shows non-ASCII text correctly. No Streamlit here: pages call these functions.
"""

import csv
import datetime
import decimal
import hashlib
import io
import json
import math
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

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
    except Exception as e:  # a bug or an unforeseen file: still a message, never a traceback
        raise FileReadError(
            f"'{source}' could not be read ({type(e).__name__}: {e}). "
            "Try re-saving it as UTF-8 CSV or .xlsx and upload it again."
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
    """Text, the encoding used and notes: BOM, then UTF-8, cp1252, Latin-1 (never fails)."""
    if encoding:
        return _decode_as(raw, encoding, source), encoding, []
    candidates = [enc for bom, enc in _BOMS if raw.startswith(bom)] + ["utf-8", "cp1252"]
    for enc in candidates:
        try:
            text = raw.decode(enc)
        except UnicodeDecodeError:
            continue
        return text.removeprefix("\ufeff"), enc, _notes_for_encoding(enc)
    return raw.decode("latin-1"), "latin-1", _notes_for_encoding("latin-1")


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
    delimiter = _choose_delimiter(text, fmt, options.delimiter)
    rows = _parse_delimited(text, delimiter, source)
    skipped, header, body = _split_header(rows, options.skip_rows, source, "lines", notes)
    df = _frame_from_rows(header, body, source, notes)
    return LoadedTable(df, encoding, delimiter, [], None, skipped, notes, source)


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
    """
    sample = text[:_SNIFF_CHARS]
    if len(text) > _SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # drop the record cut in half
    best, best_score = ",", (0.0, 0)
    for candidate in _DELIMITER_CANDIDATES:
        reader = csv.reader(io.StringIO(sample, newline=""), delimiter=candidate)
        try:
            widths = [len(row) for _, row in zip(range(_SNIFF_ROWS), reader, strict=False) if row]
        except csv.Error:
            continue
        width = _most_common(widths) if widths else 0
        count = widths.count(width)
        score = (count / len(widths), count) if width > 1 else (0.0, 0)
        if score > best_score:
            best, best_score = candidate, score
    return best


def _parse_delimited(text: str, delimiter: str, source: str) -> list[list[str]]:
    """All records, quoted line breaks (even a bare CR) kept inside their cells.

    Strict parsing first, so a quote that is never closed is reported instead of silently
    swallowing the rest of the file; other quoting slips are then read leniently.
    """
    csv.field_size_limit(max(csv.field_size_limit(), MAX_UPLOAD_BYTES))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[list[str]] = []
    last_line = 0
    try:
        for row in reader:
            rows.append(row)
            last_line = reader.line_num
    except csv.Error as e:
        if "unexpected end of data" in str(e):
            raise FileReadError(
                f"'{source}' has a quoted cell that is never closed: the \" after line {last_line} "
                "runs to the end of the file. Fix that quote, or check the delimiter."
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
        raise FileReadError(f"'{source}' holds no data: every cell is empty.")
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
            raise FileReadError(f"'{source}' holds no data: every cell is empty.")
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
    try:
        return python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(raw))
    except python_calamine.PasswordError as e:
        raise FileReadError(
            f"'{source}' is password-protected. Remove the password in Excel and upload it again."
        ) from e
    except Exception as e:
        raise FileReadError(_not_a_workbook(raw, source)) from e


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
        raise FileReadError(f"'{source}' has no sheets.")
    sheet = options.sheet if options.sheet is not None else sheets[0]
    if sheet not in sheets:
        raise FileReadError(f"'{source}' has no sheet named '{sheet}'. Its sheets: {', '.join(sheets)}.")
    try:
        values = workbook.get_sheet_by_name(sheet).to_python()
    except Exception as e:
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
# Reading: JSON, JSON Lines, Parquet


def _read_json(raw: bytes, source: str, fmt: str, options: ReadOptions) -> LoadedTable:
    text, encoding, notes = _decode(raw, options.encoding, source)
    _require_text(text, raw, source)
    if fmt == "json" or re.match(r"\s*\[", text):
        records = _json_document_records(text, source, options.json_key, notes)
    else:
        records = _json_lines_records(text, source)
    if not records:
        raise FileReadError(f"'{source}' holds no records. Check that you picked the right file.")
    names = list(dict.fromkeys(key for record in records for key in record))
    columns = [[_json_cell_text(record.get(key)) for record in records] for key in names]
    df = _frame_from_columns(names, columns, source, notes)
    return LoadedTable(df, encoding, None, [], None, 0, notes, source)


def _json_constant(name: str) -> str | None:
    """NaN is a missing value; Infinity stays as the text it was."""
    return None if name == "NaN" else name


def _load_json(text: str) -> object:
    return json.loads(text, parse_float=decimal.Decimal, parse_constant=_json_constant)


def _json_document_records(text: str, source: str, key: str | None, notes: list[str]) -> list[dict]:
    try:
        document = _load_json(text)
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
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=float)
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
