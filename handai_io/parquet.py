"""Parquet: each value as text, as any other cell."""

import pyarrow as pa
import pyarrow.parquet as pq

from handai_io.frames import cell_text, frame_from_columns
from handai_io.model import FileReadError, LoadedTable


def read_parquet(raw: bytes, source: str) -> LoadedTable:
    try:
        table = pq.read_table(pa.BufferReader(raw))
    except (pa.ArrowException, OSError) as e:
        raise FileReadError(
            f"'{source}' could not be opened as a Parquet file; it may be damaged or incomplete. Export it again."
        ) from e
    notes: list[str] = []
    columns = [[cell_text(value) for value in column.to_pylist()] for column in table.columns]
    df = frame_from_columns(table.column_names, columns, source, notes)[0]
    return LoadedTable(df, None, None, [], None, 0, notes, source)
