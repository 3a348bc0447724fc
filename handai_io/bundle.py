"""Several files in one download (a coded table with its reliability report): a ZIP whose
members keep their bytes exactly, dated now so the archive says when it was made."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from datetime import datetime


def zip_bundle(files: Mapping[str, bytes | str]) -> bytes:
    """A ZIP of `files` (name -> content; text is written as UTF-8), compressed."""
    buffer = io.BytesIO()
    stamp = datetime.now().timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content.encode("utf-8") if isinstance(content, str) else content)
    return buffer.getvalue()


def unzip_bundle(data: bytes) -> dict[str, bytes]:
    """The members of a bundle (name -> bytes); a file that is not a ZIP raises ValueError."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}
    except zipfile.BadZipFile as exc:
        raise ValueError(f"Not a ZIP file: {exc}") from exc
