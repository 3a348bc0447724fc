"""The reader's entry points: read a table, list a workbook's sheets, recognise an upload, try a sample."""

import hashlib
import os

import pandas as pd

from handai_io import delimited, sources
from handai_io.json_records import read_json, too_deep_message
from handai_io.model import FileReadError, LoadedTable, ReadOptions
from handai_io.parquet import read_parquet
from handai_io.workbooks import open_workbook, read_workbook


def read_table(
    data: bytes | str | os.PathLike, name: str | None = None, options: ReadOptions | None = None
) -> LoadedTable:
    """Read an upload (bytes, with ``name`` giving the extension) or a path into text cells.

    A ``str`` is a path, not file content. Raises only ``FileReadError``.
    """
    options = options or ReadOptions()
    raw, source = sources.load_bytes(data, name)
    fmt = sources.file_format(source, raw)
    if not raw or raw.isspace():
        raise FileReadError(f"The file '{source}' is empty. Check that you picked the right file.")
    try:
        if fmt in sources.WORKBOOKS:
            return read_workbook(raw, source, options)
        if fmt in sources.JSON_FORMATS:
            return read_json(raw, source, fmt, options)
        if fmt == "parquet":
            return read_parquet(raw, source)
        return delimited.read_delimited(raw, source, fmt, options)
    except FileReadError:
        raise
    except MemoryError as e:
        raise FileReadError(f"'{source}' is too large to load in memory here. Split it into smaller files.") from e
    except RecursionError as e:
        raise FileReadError(too_deep_message(source)) from e
    except Exception as e:  # a bug or an unforeseen file: still a message, never a traceback or a class name
        raise FileReadError(
            f"'{source}' could not be read: something in it is not what a .{fmt} file should hold. "
            "Open it in Excel, LibreOffice or a text editor, re-save it as UTF-8 CSV or .xlsx, and upload it again."
        ) from e


def list_sheets(data: bytes | str | os.PathLike, name: str | None = None) -> list[str]:
    """Sheet names of a workbook, so the user can pick one; ``[]`` for other formats."""
    raw, source = sources.load_bytes(data, name)
    if sources.file_format(source, raw) not in sources.WORKBOOKS:
        return []
    return list(open_workbook(raw, source).sheet_names)


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
