"""An .xls measured before calamine reads it whole: the OLE container's sizes and sector chains,
DIMENSIONS records and the bounding box of every sheet's cell records."""

import array
import struct
import sys
from collections.abc import Callable, Iterator, Sequence

from handai_io.guards import common
from handai_io.guards.common import Damaged, Extent, TooManyCells

_FREE_SECTORS = 0xFFFFFFFA  # sector numbers from here on are markers
_END_OF_CHAIN = 0xFFFFFFFE
_BIFF_EOF, _BIFF_SHEET, _BIFF_DIMENSIONS = 0x000A, 0x0085, 0x0200
_BIFF_FORMULA, _BIFF_FORMULA_STRING, _BIFF_MULRK = 0x0006, 0x0207, 0x00BD
_BIFF_CELLS = {0x0203: 14, 0x0204: 6, 0x0205: 8, 0x027E: 10, 0x00FD: 10}  # record -> the length calamine needs


def guard_xls(raw: bytes) -> None:
    stream = _ole_stream(raw, ("Workbook", "Book"))
    if stream is not None:
        _check_biff(stream)


def _ole_stream(raw: bytes, names: Sequence[str]) -> bytes | None:
    """The first stream of an OLE file with one of ``names``, read as calamine reads it.

    Sizes in the header and directory that exceed the file, and sector chains that loop or
    leave the file, are ``Damaged``: calamine would reserve memory for them, or never stop.
    """
    if len(raw) < 512:
        raise Damaged("too short")
    shift, mini_shift = struct.unpack_from("<HH", raw, 0x1E)
    if shift not in (9, 12) or mini_shift != 6:
        raise Damaged("sector size")
    size = 1 << shift
    directory_sectors, fat_sectors, directory_start = struct.unpack_from("<3I", raw, 0x28)
    minifat_start, minifat_sectors, difat_start, difat_sectors = struct.unpack_from("<4I", raw, 0x3C)
    in_file = max(len(raw) // size - 1, 0)
    if max(directory_sectors, fat_sectors, minifat_sectors, difat_sectors) > in_file:
        raise Damaged("header sizes")

    def sector(number: int) -> bytes:
        start = (number + 1) * size
        if number >= _FREE_SECTORS or start + size > len(raw):
            raise Damaged("sector outside the file")
        return raw[start : start + size]

    difat = list(struct.unpack_from("<109I", raw, 0x4C))
    number, steps = difat_start, 0
    while number < _FREE_SECTORS:
        steps += 1
        if steps > in_file:
            raise Damaged("DIFAT loop")
        entries = struct.unpack(f"<{size // 4}I", sector(number))
        difat.extend(entries[:-1])
        number = entries[-1]
    fat = _u32_array(b"".join(sector(number) for number in difat if number < 0xFFFFFFFC))
    directory = _ole_chain(directory_start, fat, sector, in_file)
    entries = []
    for start in range(0, len(directory) - 127, 128):
        entry = directory[start : start + 128]
        name = entry[:64].decode("utf-16-le", "ignore").split("\0", 1)[0]
        first = struct.unpack_from("<I", entry, 116)[0]
        length = struct.unpack_from("<I" if size == 512 else "<Q", entry, 120)[0]
        entries.append((name, first, length))
    if not entries:
        raise Damaged("no directory")
    wanted = next((entry for name in names for entry in entries if entry[0] == name), None)
    if wanted is None:
        return None  # calamine finds no workbook either, and says so
    root = entries[0]
    if wanted[2] > len(raw) or root[2] > len(raw):
        raise Damaged("stream larger than the file")
    if wanted[2] >= 4096:
        return _ole_chain(wanted[1], fat, sector, in_file)[: wanted[2]]
    if not minifat_sectors:
        return None
    ministream = _ole_chain(root[1], fat, sector, in_file)[: root[2]]
    minifat = _u32_array(_ole_chain(minifat_start, fat, sector, in_file))

    def mini_sector(number: int) -> bytes:
        if number * 64 + 64 > len(ministream):
            raise Damaged("mini sector outside the mini stream")
        return ministream[number * 64 : number * 64 + 64]

    return _ole_chain(wanted[1], minifat, mini_sector, len(ministream) // 64)[: wanted[2]]


def _u32_array(data: bytes) -> array.array:
    values = array.array("I")
    values.frombytes(data[: len(data) - len(data) % 4])
    if sys.byteorder == "big":
        values.byteswap()
    return values


def _ole_chain(first: int, table: Sequence[int], read: Callable[[int], bytes], limit: int) -> bytes:
    parts, number = [], first
    while number != _END_OF_CHAIN:
        if len(parts) > limit or number >= len(table):
            raise Damaged("broken sector chain")
        parts.append(read(number))
        number = table[number]
    return b"".join(parts)


def _biff_records(stream: bytes, position: int) -> Iterator[tuple[int, int, int]]:
    """(record type, data start, data length) from ``position`` to the stream's end."""
    while position + 4 <= len(stream):
        kind, length = struct.unpack_from("<HH", stream, position)
        if position + 4 + length > len(stream):
            return  # calamine stops with an error here
        yield kind, position + 4, length
        position += 4 + length


def _check_biff(stream: bytes) -> None:
    """Sizes calamine allocates for an .xls: room for DIMENSIONS, and a grid for every sheet's cells."""
    sheets = []
    for kind, start, length in _biff_records(stream, 0):
        if kind == _BIFF_SHEET and length >= 4:
            sheets.append(struct.unpack_from("<I", stream, start)[0])
        elif kind == _BIFF_EOF:
            break
    total = 0
    for position in sheets:
        if position > len(stream):
            raise Damaged("sheet outside the stream")
        cells, formulas = Extent(), Extent()
        formula_at = (0, 0)
        for kind, start, length in _biff_records(stream, position):
            if kind == _BIFF_EOF:
                break
            if kind == _BIFF_DIMENSIONS:
                rows, columns = _biff_dimensions(stream, start, length)
                if rows * columns > common.MAX_SHEET_CELLS:
                    raise TooManyCells(rows, columns)
                continue
            if kind in _BIFF_CELLS and length >= _BIFF_CELLS[kind]:
                found = [struct.unpack_from("<HH", stream, start)]
            elif kind == _BIFF_MULRK and length >= 12:
                row, column = struct.unpack_from("<HH", stream, start)
                found = [(row, column), (row, column + (length - 6) // 6 - 1)]
            elif kind == _BIFF_FORMULA and length >= 20:
                formula_at = struct.unpack_from("<HH", stream, start)
                formulas.add(*formula_at)
                found = [formula_at]
            elif kind == _BIFF_FORMULA_STRING:
                found = [formula_at]
            else:
                continue
            for row, column in found:
                cells.add(row, column)
        for extent in (cells, formulas):
            rows, columns = extent.size()
            total += rows * columns
            if total > common.MAX_SHEET_CELLS:
                raise TooManyCells(rows, columns)


def _biff_dimensions(stream: bytes, start: int, length: int) -> tuple[int, int]:
    """The (rows, columns) calamine reserves room for from a DIMENSIONS record."""
    if length == 10:
        first_row, last_row, first_column, last_column = struct.unpack_from("<4H", stream, start)
    elif length == 14:
        first_row, last_row, first_column, last_column = struct.unpack_from("<2I2H", stream, start)
    else:
        return 0, 0  # calamine rejects the record
    if last_row < 1 or last_column < 1:
        return 1, 1
    rows = (last_row - 1 - first_row + 1) % 2**32
    columns = (last_column - 1 - first_column + 1) % 2**32
    return rows, columns
