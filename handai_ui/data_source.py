"""The "Data" section of the multi-model pages: upload a table or documents (or reuse this
session's upload, or the sample dataset) and preview it, with the Transform page's reading options."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import streamlit as st

from handai_io import DOCUMENT_EXTENSIONS, SUPPORTED_EXTENSIONS, sample_dataset

from .results import numbered
from .text import md
from .upload import Upload, document_messages, earlier_upload, forget_upload, read_uploads

PREVIEW_ROWS = 200
UPLOAD_TYPES = list(dict.fromkeys((*SUPPORTED_EXTENSIONS, *DOCUMENT_EXTENSIONS)))
UPLOAD_HELP = (
    "A table: CSV, TSV, TXT, Excel (XLSX, XLS), JSON, JSONL or Parquet. Or documents, one or many: "
    "PDF, DOCX, TXT, Markdown, HTML, or a ZIP of them; they become rows (per document, paragraph, "
    "page or speaker turn)."
)


@dataclass(frozen=True)
class Data:
    df: pd.DataFrame
    name: str
    digest: str
    descriptions: dict[str, str] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.df.columns]


def data_keys(prefix: str) -> tuple[str, ...]:
    """The widget keys `data_section` draws that can be kept across pages (not the uploader)."""
    return tuple(f"{prefix}_{name}" for name in ("sample", "encoding", "delimiter", "skip", "split", "max_chars"))


def data_section(prefix: str) -> Data | None:
    """The table the page runs on, or None (with a hint) until there is one. Widget keys start
    with `prefix`; the file read is kept under `{prefix}_upload_read` for the session."""
    kept = f"{prefix}_upload_read"
    uploaded = st.file_uploader(
        "Upload a table or documents",
        type=UPLOAD_TYPES,
        accept_multiple_files=True,
        key=f"{prefix}_upload",
        help=UPLOAD_HELP,
        on_change=forget_upload,
        args=(kept,),
    )
    files = list(uploaded or [])
    use_sample = st.toggle("Use the sample dataset instead", key=f"{prefix}_sample", disabled=bool(files))
    upload: Upload | None = None
    data: Data | None = None
    if files:
        upload = read_uploads(prefix, kept, files)
    elif upload := earlier_upload(kept):
        c = st.columns([4, 1], vertical_alignment="center")
        c[0].caption(f":material/description: Using **{md(upload.name)}**, uploaded earlier in this session.")
        document_messages(upload if upload.read_as[0] == "documents" else None)
        if c[1].button("Clear", icon=":material/close:", key=f"{prefix}_clear"):
            forget_upload(kept)
            st.rerun()
    elif use_sample:
        data = Data(sample_dataset(), "sample_reviews.csv", "sample")
    if upload is not None:
        data = Data(upload.table.df, upload.name, upload.digest, dict(upload.table.descriptions))
    if data is None:
        st.info("Upload a file, or turn on the sample dataset, to begin.", icon=":material/upload_file:")
        return None
    st.caption(f"**{md(data.name)}** · {len(data.df):,} rows × {len(data.df.columns)} columns")
    st.dataframe(numbered(data.df.head(PREVIEW_ROWS)), width="stretch", height=240, placeholder="")
    if len(data.df) > PREVIEW_ROWS:
        st.caption(f"Preview of the first {PREVIEW_ROWS} rows; every row is processed.")
    return data if len(data.df.columns) else None
