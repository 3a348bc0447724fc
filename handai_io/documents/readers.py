"""One reader per document format: bytes → blocks of text (PDF pages or paragraphs).

Readers raise ``DocumentError`` with one message that says what is wrong and what to do, so one
bad file never stops the others. pypdf and python-docx are lenient with damaged files; anything
they raise is treated as "damaged", since a hostile file can make them raise almost anything.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser

from handai_io.encodings import decode

MAX_DOCX_UNPACKED_BYTES = 200 * 1024 * 1024  # a DOCX unpacking to more than this is refused (zip bomb)
MAX_PDF_PAGES = 5000
_BLANK_LINES = re.compile(r"\n\s*\n")
# pypdf logs what it repairs ("EOF marker not found") as warnings; with no handler configured
# Python would print them on stderr next to our one message per file. An app that configures
# logging still receives them.
logging.getLogger("pypdf").addHandler(logging.NullHandler())


class DocumentError(Exception):
    """A file that cannot be read as a document; the message is meant for the user."""


@dataclass(frozen=True)
class Block:
    """A page (PDF) or paragraph of a document. ``first_line`` is the 1-based line in the file
    where it starts, for plain-text files only, so a quote can be found in the source."""

    unit: str  # "page" or "paragraph"
    number: int
    text: str
    first_line: int | None = None


def read_pdf(data: bytes, name: str) -> tuple[list[Block], list[str]]:
    """The PDF's pages with text, and notes about pages left out (no text layer)."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError(
                f"'{name}' is password-protected. Open it, save a copy without a password, and upload that."
            )
        pages = list(reader.pages)
    except DocumentError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser error on a damaged file
        raise DocumentError(
            f"'{name}' is not a readable PDF (damaged, or not a PDF). Re-save or re-export it."
        ) from exc
    if len(pages) > MAX_PDF_PAGES:
        raise DocumentError(f"'{name}' has {len(pages):,} pages; the limit is {MAX_PDF_PAGES:,}. Split it.")
    blocks, empty = [], []
    for number, page in enumerate(pages, start=1):
        try:
            text = _clean(page.extract_text() or "")
        except Exception:  # noqa: BLE001 - one damaged page is left out, not the file
            text = ""
        if text:
            blocks.append(Block("page", number, text))
        else:
            empty.append(number)
    if not blocks:
        raise DocumentError(
            f"'{name}' has no text layer (a scanned PDF?). Run OCR on it (e.g. ocrmypdf, or your PDF "
            "reader's 'recognise text'), then upload it again."
        )
    pages_word = "page" if len(empty) == 1 else "pages"
    notes = [f"'{name}': {pages_word} {_numbers(empty)} without text (scanned images?) left out."] if empty else []
    return blocks, notes


def read_docx(data: bytes, name: str) -> list[Block]:
    """The DOCX's paragraphs in order, table rows included (a two-cell row reads "A: B", as a
    transcript kept in a table does)."""
    import docx
    from docx.table import Table

    _check_unpacked_size(data, name)
    try:
        document = docx.Document(io.BytesIO(data))
        texts: list[str] = []
        for item in document.iter_inner_content():
            if isinstance(item, Table):
                texts.extend(_table_rows(item))
            else:
                texts.append(item.text)
    except Exception as exc:  # noqa: BLE001 - any parser error on a damaged file
        raise DocumentError(
            f"'{name}' is not a readable Word document (damaged, or not a .docx). Open it in Word and save "
            "it as .docx again."
        ) from exc
    blocks = [Block("paragraph", i, t) for i, t in enumerate((_clean(t) for t in texts if t.strip()), start=1)]
    return _require_text(blocks, name)


def read_text(data: bytes, name: str) -> tuple[list[Block], list[str]]:
    """A text or Markdown file's paragraphs (split at blank lines), with their first lines."""
    text, _encoding, notes = decode(data, None, name)
    if "\x00" in text[:4096]:
        raise DocumentError(f"'{name}' holds binary data, not text. Check that you picked the right file.")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks: list[Block] = []
    position = 0
    for match in [*_BLANK_LINES.finditer(text), None]:
        chunk = text[position : match.start() if match else len(text)]
        if chunk.strip():
            start = position + len(chunk) - len(chunk.lstrip())
            blocks.append(Block("paragraph", len(blocks) + 1, _clean(chunk), text.count("\n", 0, start) + 1))
        if match:
            position = match.end()
    return _require_text(blocks, name), [f"'{name}': {n}" for n in notes]


def read_html(data: bytes, name: str) -> tuple[list[Block], list[str]]:
    """An HTML page's visible text by paragraph: no scripts, styles or head."""
    text, _encoding, notes = decode(data, None, name)
    parser = _TextParser()
    parser.feed(text)
    parser.close()
    paragraphs = [_clean(p) for p in _BLANK_LINES.split(parser.text())]
    blocks = [Block("paragraph", i, p) for i, p in enumerate((p for p in paragraphs if p), start=1)]
    return _require_text(blocks, name), [f"'{name}': {n}" for n in notes]


class _TextParser(HTMLParser):
    _SKIP = {"script", "style", "head", "noscript", "template", "svg"}
    _BLOCKS = {
        "p",
        "div",
        "li",
        "tr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "section",
        "article",
        "blockquote",
        "pre",
        "table",
        "ul",
        "ol",
        "dd",
        "dt",
        "header",
        "footer",
        "main",
        "aside",
        "nav",
        "title",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag == "br":
            self._parts.append("\n")
        elif tag in self._BLOCKS:
            self._parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCKS:
            self._parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self._parts.append(re.sub(r"\s+", " ", data))

    def text(self) -> str:
        return "".join(self._parts)


def _table_rows(table: object) -> list[str]:
    rows = []
    for row in table.rows:  # type: ignore[attr-defined]
        cells = [c.text.strip() for c in row.cells]
        cells = [c for i, c in enumerate(cells) if c and (i == 0 or c != cells[i - 1])]  # merged cells repeat
        rows.append(": ".join(cells) if len(cells) == 2 and len(cells[0]) <= 40 else " | ".join(cells))
    return rows


def _check_unpacked_size(data: bytes, name: str) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise DocumentError(
            f"'{name}' is not a readable Word document (damaged, or an old .doc renamed). Open it in Word and "
            "save it as .docx again."
        ) from exc
    if unpacked > MAX_DOCX_UNPACKED_BYTES:
        raise DocumentError(f"'{name}' unpacks to {unpacked / 2**20:,.0f} MB; the limit is 200 MB.")


def _require_text(blocks: list[Block], name: str) -> list[Block]:
    if not blocks:
        raise DocumentError(f"'{name}' holds no text. Check that you picked the right file.")
    return blocks


def _clean(text: str) -> str:
    """Trailing spaces and runs of blank lines removed; line breaks kept (turns start on a line)."""
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.replace("\r", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _numbers(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:20])
    return shown + (f" and {len(numbers) - 20} more" if len(numbers) > 20 else "")
