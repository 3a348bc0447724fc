"""A folder of documents (the command line's input) → its files, each measured before it is read.

The same limits as a ZIP: at most ``MAX_MEMBERS`` files and ``MAX_TOTAL_BYTES`` in all, no file
past the upload limit; hidden and system files are skipped, as in a ZIP. Sub-folders are walked
(symbolic links to folders are not followed, so a link cannot loop).
"""

from __future__ import annotations

import os
from pathlib import Path

from handai_io.documents.archive import MAX_MEMBERS, MAX_TOTAL_BYTES, is_junk
from handai_io.sources import MAX_UPLOAD_BYTES


def folder_files(root: Path) -> tuple[list[tuple[str, bytes]], list[tuple[str, str]]]:
    """The folder's files in name order as (``folder/relative/path``, bytes), and (label, message)
    for each file refused. Labels start with the folder's name, as a ZIP's start with the archive's."""
    paths = sorted(_walk(root), key=lambda p: p.relative_to(root).as_posix().casefold())
    if len(paths) > MAX_MEMBERS:
        return [], [(root.name, f"'{root.name}' holds {len(paths):,} files; the limit is {MAX_MEMBERS:,}.")]
    files: list[tuple[str, bytes]] = []
    refused: list[tuple[str, str]] = []
    total = 0
    for path in paths:
        label = f"{root.name}/{path.relative_to(root).as_posix()}"
        try:
            size = path.stat().st_size
            if size > MAX_UPLOAD_BYTES:
                refused.append((label, f"'{label}' is larger than {MAX_UPLOAD_BYTES / 2**20:,.0f} MB. Split it."))
                continue
            if total + size > MAX_TOTAL_BYTES:
                refused.append(
                    (label, f"'{label}' would take the folder past {MAX_TOTAL_BYTES / 2**20:,.0f} MB; read it apart.")
                )
                continue
            data = path.read_bytes()
        except OSError as exc:
            refused.append((label, f"'{label}' could not be opened ({exc.strerror or exc})."))
            continue
        total += len(data)
        files.append((label, data))
    return files, refused


def _walk(root: Path) -> list[Path]:
    found = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [s for s in subfolders if not s.startswith(".") and s != "__MACOSX"]
        found.extend(Path(folder, name) for name in names if not is_junk(name))
    return found
