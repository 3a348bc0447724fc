"""Documents in: PDF, DOCX, TXT, Markdown and HTML files (or a ZIP of them) become rows.

Interviews and open answers arrive as documents, not tables. Each document becomes one row, or
one row per paragraph, page (PDF) or speaker turn, with columns ``document``, ``segment``
(1-based within the document), ``position`` (page / paragraph / line, to find a quote in its
source), ``speaker`` (turns only) and ``text``. A segment longer than ``max_chars`` is cut at
paragraph, then sentence boundaries. Every file is read on its own: a bad one gets one message in
``errors`` and the others still load; what was split or left out is said in ``notes``.

    readers    one function per format → blocks (pages or paragraphs)
    segments   blocks → document / paragraphs / pages / turns; long segments cut
    archive    a ZIP's members, measured and refused one by one
    folder     a folder's files (the command line's input), measured the same way
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from handai_io.documents.archive import zip_members
from handai_io.documents.folder import folder_files
from handai_io.documents.readers import Block, DocumentError, read_docx, read_html, read_pdf, read_text
from handai_io.documents.segments import SPLITS, has_turns, segments, split_long
from handai_io.sources import MAX_UPLOAD_BYTES

DOCUMENT_EXTENSIONS: tuple[str, ...] = ("pdf", "docx", "txt", "md", "markdown", "html", "htm", "zip")
DEFAULT_MAX_CHARS = 4000
COLUMNS = ["document", "segment", "position", "speaker", "text"]


@dataclass(frozen=True)
class DocumentProblem:
    name: str
    message: str


@dataclass
class DocumentTable:
    df: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    errors: list[DocumentProblem] = field(default_factory=list)


def is_document(name: str) -> bool:
    """A name the documents path reads (".txt" is both: a table when it is the only file)."""
    return _suffix(name) in DOCUMENT_EXTENSIONS


def read_documents(
    files: Sequence[tuple[str, bytes]], *, split: str = "document", max_chars: int = DEFAULT_MAX_CHARS
) -> DocumentTable:
    """Rows from every readable file (ZIPs opened one level); one error per file that is not."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    if max_chars < 100:
        raise ValueError("max_chars must be at least 100")
    rows: list[dict[str, object]] = []
    notes: list[str] = []
    errors: list[DocumentProblem] = []
    no_pages: list[str] = []
    no_turns: list[str] = []
    cut = [0, 0]  # segments cut, rows they became
    for name, data in _expand(files, errors):
        try:
            blocks, file_notes = _read(name, data)
        except DocumentError as exc:
            errors.append(DocumentProblem(name, str(exc)))
            continue
        notes.extend(file_notes)
        mode = split
        if split == "page" and blocks[0].unit != "page":
            mode = "document"
            no_pages.append(name)
        elif split == "turn" and not has_turns(blocks):
            mode = "paragraph"
            no_turns.append(name)
        number = 0
        for seg in segments(blocks, mode):
            pieces = split_long(seg.text, max_chars)
            if len(pieces) > 1:
                cut[0] += 1
                cut[1] += len(pieces)
            for piece in pieces:
                number += 1
                rows.append(
                    {
                        "document": name,
                        "segment": number,
                        "position": seg.position,
                        "speaker": seg.speaker,
                        "text": piece,
                    }
                )
    notes.extend(_summary_notes(no_pages, no_turns, cut, max_chars))
    return DocumentTable(_frame(rows, split), notes, errors)


def read_document_folder(
    root: Path, *, split: str = "document", max_chars: int = DEFAULT_MAX_CHARS
) -> tuple[DocumentTable, list[tuple[str, bytes]]]:
    """A folder's documents as rows (sub-folders included; ZIPs in it opened), with the files
    read, for their ``manifest``. A file refused before reading is one error like any other."""
    files, refused = folder_files(root)
    table = read_documents(files, split=split, max_chars=max_chars)
    table.errors[:0] = [DocumentProblem(label, message) for label, message in refused]
    return table, files


def manifest(files: Sequence[tuple[str, bytes]]) -> bytes:
    """One line per file, its name and SHA-256: what a set of documents' input hash is taken of,
    in the app and on the command line alike, so the same files give the same hash."""
    return "\n".join(f"{name}\t{hashlib.sha256(data).hexdigest()}" for name, data in files).encode()


def _expand(files: Sequence[tuple[str, bytes]], errors: list[DocumentProblem]) -> list[tuple[str, bytes]]:
    expanded: list[tuple[str, bytes]] = []
    for name, data in files:
        if len(data) > MAX_UPLOAD_BYTES:
            errors.append(
                DocumentProblem(name, f"'{name}' is larger than {MAX_UPLOAD_BYTES / 2**20:,.0f} MB. Split it.")
            )
        elif _suffix(name) == "zip":
            members, refused = zip_members(data, name)
            errors.extend(DocumentProblem(label, message) for label, message in refused)
            expanded.extend(members)
        else:
            expanded.append((name, data))
    return expanded


def _read(name: str, data: bytes) -> tuple[list[Block], list[str]]:
    suffix = _suffix(name)
    if not data:
        raise DocumentError(f"'{name}' is empty. Check that you picked the right file.")
    if suffix == "pdf":
        return read_pdf(data, name)
    if suffix == "docx":
        return read_docx(data, name), []
    if suffix in ("html", "htm"):
        return read_html(data, name)
    if suffix in ("txt", "md", "markdown"):
        return read_text(data, name)
    kind = f".{suffix} files" if suffix else "files without an extension"
    if suffix in ("doc", "rtf", "odt", "pages"):
        raise DocumentError(
            f"'{name}': {kind} cannot be read. Open it in a word processor, save it as .docx, and upload that."
        )
    raise DocumentError(
        f"'{name}': {kind} are not read as documents. Upload PDF, DOCX, TXT, Markdown or HTML files (or a ZIP of them)."
    )


def _summary_notes(no_pages: list[str], no_turns: list[str], cut: list[int], max_chars: int) -> list[str]:
    notes = []
    if no_pages:
        notes.append(f"Only PDFs have pages; {_names(no_pages)} kept as one row per document.")
    if no_turns:
        notes.append(
            f"No speaker turns (lines opening with 'Name:') found in {_names(no_turns)}; split by paragraph instead."
        )
    if cut[0]:
        notes.append(
            f"{cut[0]:,} segment{'s' if cut[0] != 1 else ''} longer than {max_chars:,} characters "
            f"{'were' if cut[0] != 1 else 'was'} split into {cut[1]:,} rows at paragraph, then sentence boundaries."
        )
    return notes


def _frame(rows: list[dict[str, object]], split: str) -> pd.DataFrame:
    columns = COLUMNS if split == "turn" else [c for c in COLUMNS if c != "speaker"]
    return pd.DataFrame(rows, columns=COLUMNS)[columns].astype({"segment": int}).astype("str")  # text, as tables


def _names(names: list[str]) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _suffix(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[-1].lower() if "." in base else ""


__all__ = [
    "COLUMNS",
    "DEFAULT_MAX_CHARS",
    "DOCUMENT_EXTENSIONS",
    "SPLITS",
    "DocumentProblem",
    "DocumentTable",
    "is_document",
    "manifest",
    "read_document_folder",
    "read_documents",
]
