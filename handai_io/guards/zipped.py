"""Zip workbooks (.xlsx, .xlsm, .ods) unpacked as calamine unpacks them, counted against a cap."""

import io
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator

from handai_io.guards.common import Damaged
from handai_io.guards.ods import OdsMeasure
from handai_io.model import FileReadError
from handai_io.sources import ZIP_MAGIC

_MAX_UNPACKED_BYTES = 1 << 30  # a zip workbook's members, unpacked: at most this...
_UNPACKED_ALLOWANCE = 64 << 20  # ...and at most this plus _MAX_PACKING_RATIO times the file's size
_MAX_PACKING_RATIO = 100  # real workbooks pack 5-20 times; deflate's ceiling, a bomb's, is ~1,000
_MAX_ZIP_DIRECTORY = 8 << 20  # bytes of zip directory (~100k members); real workbooks have dozens
_UNPACK_CHUNK = 4 << 20
_ZIP_END = b"PK\x05\x06"
_XLSB_PART = re.compile(r"xl/(workbook|sharedstrings|styles)\.bin|xl/worksheets/[^/]+\.bin", re.IGNORECASE)


def zip_end(raw: bytes) -> int:
    """Where the zip's end-of-directory record starts; -1 if the bytes are not a zip."""
    return raw.rfind(_ZIP_END, max(0, len(raw) - 65_557))


def guard_zip(raw: bytes, source: str) -> None:
    end = zip_end(raw)
    if len(raw) >= end + 16 and struct.unpack_from("<I", raw, end + 12)[0] > _MAX_ZIP_DIRECTORY:
        raise Damaged("zip directory too large")
    infos = [info for info in zipfile.ZipFile(io.BytesIO(raw)).infolist() if not info.is_dir()]
    if any(_XLSB_PART.fullmatch(info.filename) for info in infos):
        raise FileReadError(
            f"'{source}' is an Excel Binary Workbook (.xlsb), which cannot be read here. "
            "Open it in Excel, save it as .xlsx (or CSV), and upload it again."
        )
    limit = min(_MAX_UNPACKED_BYTES, _UNPACKED_ALLOWANCE + _MAX_PACKING_RATIO * len(raw))
    total = 0

    def counted(chunks: Iterable[bytes]) -> Iterator[bytes]:
        nonlocal total
        for chunk in chunks:
            total += len(chunk)
            if total > limit:
                raise FileReadError(_unpacked_message(source, len(raw), limit))
            yield chunk

    for info in infos:
        chunks = counted(member_chunks(raw, info))
        if info.filename != "content.xml":  # the name calamine's .ods reader opens
            for _ in chunks:
                pass
            continue
        ods = OdsMeasure()
        ods.measure(chunks)
        if total + ods.copied_bytes > limit:
            raise FileReadError(_unpacked_message(source, len(raw), limit))


def _unpacked_message(source: str, size: int, limit: int) -> str:
    if limit >= _MAX_UNPACKED_BYTES:
        return (
            f"'{source}' unpacks to more than {limit / 2**20:,.0f} MB, more than this app loads from one "
            "workbook. Split it into smaller files, or save the sheet you need as CSV, and upload it again."
        )
    packed = f"{size / 2**20:,.1f} MB" if size >= 2**20 else f"{size / 2**10:,.0f} KB"
    return (
        f"'{source}' is {packed} but unpacks to more than {limit / 2**20:,.0f} MB, far more than "
        "real workbooks do: it is damaged or deliberately inflated, so it is not read. If you trust it, open it "
        "in Excel or LibreOffice, save it as CSV, and upload that."
    )


def member_chunks(raw: bytes, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """A member's bytes as calamine's zip reader unpacks them, in chunks of at most 4 MB.

    Inflated from the raw bytes until the deflate stream itself ends, so a size a header states,
    too small or too large, changes nothing.
    """
    offset = info.header_offset
    if raw[offset : offset + 4] != ZIP_MAGIC:
        raise Damaged("no local header")
    name_length, extra_length = struct.unpack_from("<HH", raw, offset + 26)
    start = offset + 30 + name_length + extra_length
    if info.compress_type == zipfile.ZIP_STORED:
        end = min(len(raw), start + info.compress_size)
        for position in range(start, end, _UNPACK_CHUNK):
            yield raw[position : min(end, position + _UNPACK_CHUNK)]
        return
    if info.compress_type != zipfile.ZIP_DEFLATED:
        raise Damaged("a compression method Excel does not use")
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    view = memoryview(raw)
    position = start
    while not inflater.eof:
        if inflater.unconsumed_tail:
            data = inflater.unconsumed_tail
        elif position < len(raw):
            data = view[position : position + (1 << 20)]
            position += len(data)
        else:
            return  # cut short: calamine stops there too
        try:
            out = inflater.decompress(data, _UNPACK_CHUNK)
        except zlib.error:
            return  # broken data: nothing more comes out of it for calamine either
        if out:
            yield out
