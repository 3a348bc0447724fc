"""JSON in its shapes: an array of records, records under a key, one object, JSON Lines; values as written."""

import decimal
import json
import re

import pandas as pd

from handai_io.encodings import decode, require_text
from handai_io.frames import cell_text, frame_from_columns
from handai_io.model import FileReadError, LoadedTable, ReadOptions


def read_json(raw: bytes, source: str, fmt: str, options: ReadOptions) -> LoadedTable:
    text, encoding, notes = decode(raw, options.encoding, source)
    require_text(text, raw, source)
    if fmt == "json" or re.match(r"\s*\[", text):
        records = _json_document_records(text, source, options.json_key, notes)
    else:
        records = _json_lines_records(text, source)
    return LoadedTable(frame_from_records(records, source, notes), encoding, None, [], None, 0, notes, source)


def frame_from_records(records: list[dict], source: str, notes: list[str]) -> pd.DataFrame:
    if not records:
        raise FileReadError(f"'{source}' holds no records. Check that you picked the right file.")
    try:
        keys = list(dict.fromkeys(key for record in records for key in record))
        columns = [[_json_cell_text(record.get(key)) for record in records] for key in keys]
    except RecursionError as e:  # a value nested too deeply to write back as JSON text
        raise FileReadError(too_deep_message(source)) from e
    return frame_from_columns([_storable(key) for key in keys], columns, source, notes)[0]


def too_deep_message(source: str, line: int | None = None) -> str:
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


def json_in_text(text: str, source: str, key: str | None, notes: list[str]) -> list[dict] | None:
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
        raise FileReadError(too_deep_message(source)) from e
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
        raise FileReadError(too_deep_message(source)) from e
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
            raise FileReadError(too_deep_message(source, number)) from e
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
    return cell_text(value)
