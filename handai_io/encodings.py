"""Bytes to text: a fixed order of encodings (BOM, UTF-8, cp1252, Latin-1), never a detector's guess.

Detectors are wrong on real files: on a real cp1252 export chardet is 21 % sure, and
charset-normalizer calls it cp852. In a UTF-8 file, lines that are not UTF-8 are
read as cp1252 one by one, and named in a note.
"""

import re

from handai_io.model import FileReadError
from handai_io.sources import OLE_MAGIC, ZIP_MAGIC

SNIFF_CHARS = 64 * 1024  # text judged by its first characters only (binary check, delimiter sniffing)
_BINARY_CONTROL_SHARE = 0.05  # more control characters than this means "not text"
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
_FALLBACK_NOTES = {
    "cp1252": "The file is not valid UTF-8; read it as Windows-1252 (cp1252).",
    "latin-1": "The file is neither UTF-8 nor Windows-1252; read it as Latin-1. "
    "If characters look wrong, choose the encoding.",
}


def decode(raw: bytes, encoding: str | None, source: str) -> tuple[str, str, list[str]]:
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


def require_text(text: str, raw: bytes, source: str) -> None:
    """Refuse empty text and binary data early, with a hint when it is a misnamed workbook."""
    if not text or text.isspace():
        raise FileReadError(f"The file '{source}' is empty. Check that you picked the right file.")
    sample = text[:SNIFF_CHARS]
    if len(_CONTROL_CHARS.findall(sample)) <= _BINARY_CONTROL_SHARE * len(sample):
        return
    if raw.startswith((ZIP_MAGIC, OLE_MAGIC)):
        hint = "It looks like an Excel workbook: rename it to .xlsx (or .xls) and upload it again."
    else:
        hint = "Export it as CSV (UTF-8), Excel, JSON or Parquet; if it is UTF-16 text, choose that encoding."
    raise FileReadError(f"'{source}' does not look like a text table (it holds binary data). {hint}")
