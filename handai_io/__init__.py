"""Read any tabular file into a DataFrame of text; write exports safely.

Uploads are real exports, and real exports are messy: Windows-1252 bytes, byte-order marks,
semicolons, comments and titles above the header, survey exports with extra header rows, line
breaks inside quoted cells, duplicate or blank column names, workbooks with several sheets, JSON
in several shapes. The rule here is that every row the file holds arrives, and nothing else:

- every cell is read as text (identifiers keep leading zeros, ``704.0010`` stays ``704.0010``);
  a truly empty cell becomes NaN;
- anything we change or guess (the header row, skipped lines, renamed columns, a recognised
  survey export) is written to ``LoadedTable.notes`` so the user can see it;
- every failure is a ``FileReadError`` whose message says what is wrong and what to do.

The rooms, each with one job:

    api            read_table, list_sheets, content_hash, sample_dataset: the entry points
    model          ReadOptions, LoadedTable, FileReadError
    sources        bytes from an upload or a path, size-checked; the format
    encodings      bytes to text: BOM, UTF-8, cp1252, Latin-1, never a detector's guess
    delimited      .csv/.tsv/.txt: delimiter sniffing, Excel's sep= line, every record
    json_records   JSON, JSON Lines, and a .csv that really holds JSON
    parquet        Parquet
    workbooks      .xlsx/.xlsm/.xls/.ods through calamine
    guards/        workbooks measured before calamine sees them (zip, .xlsx, .ods, .xls/OLE)
    layout         parsed rows to a table: header, survey header rows, footer, notes
    header         which row is the header: comments, title blocks, rows of column numbers
    footer         which rows at the end are a footer (a rule, a source line, a comment)
    surveys        Qualtrics, SurveyMonkey, LimeSurvey and REDCap exports
    frames         cells and names to the final frame
    export         CSV/XLSX/JSON/JSONL/Parquet exports; XLSX keeps text as text, CSV's formula guard
                   is a choice whose count ``guarded_cells`` gives, ``xlsx_changed_cells`` counts the
                   control characters an XLSX drops; write_table, write_counted
    bundle         several files in one ZIP (a coded table with its reliability report)
    documents/     PDF, DOCX, TXT, Markdown, HTML (or a ZIP of them) to rows: per document,
                   paragraph, page or speaker turn; read_documents

No Streamlit here: pages call these functions.
"""

from handai_io.api import content_hash, list_sheets, read_table, sample_dataset
from handai_io.bundle import zip_bundle
from handai_io.documents import DOCUMENT_EXTENSIONS, SPLITS, DocumentTable, is_document, read_documents
from handai_io.export import (
    EXPORT_FORMATS,
    FORMULA_GUARD_HELP,
    WRITE_SUFFIXES,
    Written,
    export_bytes,
    guarded_cells,
    neutralize_formulas,
    write_counted,
    write_frames,
    write_table,
    xlsx_changed_cells,
)
from handai_io.model import FileReadError, LoadedTable, ReadOptions
from handai_io.selection import RowSelection, select_rows
from handai_io.sources import MAX_UPLOAD_BYTES, SUPPORTED_EXTENSIONS

__all__ = [
    "DOCUMENT_EXTENSIONS",
    "SPLITS",
    "DocumentTable",
    "is_document",
    "read_documents",
    "zip_bundle",
    "EXPORT_FORMATS",
    "FORMULA_GUARD_HELP",
    "MAX_UPLOAD_BYTES",
    "SUPPORTED_EXTENSIONS",
    "WRITE_SUFFIXES",
    "FileReadError",
    "LoadedTable",
    "ReadOptions",
    "RowSelection",
    "content_hash",
    "export_bytes",
    "guarded_cells",
    "list_sheets",
    "neutralize_formulas",
    "read_table",
    "sample_dataset",
    "select_rows",
    "write_counted",
    "write_frames",
    "write_table",
    "Written",
    "xlsx_changed_cells",
]
