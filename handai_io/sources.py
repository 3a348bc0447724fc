"""Where a file comes from: its bytes (size-checked before anything is parsed) and its format."""

import os
import re
from pathlib import Path

from handai_io.model import FileReadError

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
WORKBOOKS = ("xlsx", "xlsm", "xls", "ods")
JSON_FORMATS = ("json", "jsonl", "ndjson")
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_PARQUET_MAGIC = b"PAR1"


def load_bytes(data: bytes | str | os.PathLike, name: str | None) -> tuple[bytes, str]:
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


def file_format(source: str, raw: bytes) -> str:
    """The format from the extension; without one, from the first bytes."""
    suffix = Path(source).suffix.lower().lstrip(".")
    if suffix in SUPPORTED_EXTENSIONS:
        return suffix
    if suffix:
        supported = ", ".join(f".{ext}" for ext in SUPPORTED_EXTENSIONS)
        raise FileReadError(f"'{source}': files of type .{suffix} are not supported. Upload one of: {supported}.")
    if raw.startswith(_PARQUET_MAGIC):
        return "parquet"
    if raw.startswith(ZIP_MAGIC):
        return "xlsx"
    if raw.startswith(OLE_MAGIC):
        return "xls"
    if re.match(rb"\s*[\[{]", raw):
        return "json"
    return "csv"
