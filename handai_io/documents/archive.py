"""A ZIP of documents → its members, each measured before it is read.

Member names are only labels (nothing is written to disk), but a name that climbs out of the
archive or is absolute is refused all the same: it marks a crafted archive. Nested ZIPs are not
opened (one level only), and a member is read with a byte limit, not trusting its stated size.
"""

from __future__ import annotations

import io
import posixpath
import zipfile

MAX_MEMBERS = 2000
MAX_MEMBER_BYTES = 100 * 1024 * 1024
MAX_TOTAL_BYTES = 500 * 1024 * 1024
_SKIPPED_PREFIXES = ("__MACOSX/",)


def zip_members(data: bytes, name: str) -> tuple[list[tuple[str, bytes]], list[tuple[str, str]]]:
    """The archive's files as (``name/member``, bytes), and (label, message) for members refused.
    An archive that cannot be opened at all is one refused entry under its own name."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in archive.infolist() if not i.is_dir() and not is_junk(i.filename)]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        return [], [(name, f"'{name}' is not a readable ZIP archive ({exc}). Re-create the archive.")]
    if len(infos) > MAX_MEMBERS:
        return [], [(name, f"'{name}' holds {len(infos):,} files; the limit is {MAX_MEMBERS:,}. Upload fewer.")]
    members: list[tuple[str, bytes]] = []
    refused: list[tuple[str, str]] = []
    total = 0
    with archive:
        for info in infos:
            label = f"{name}/{info.filename}"
            problem = _member_problem(info, total)
            if problem is None:
                try:
                    with archive.open(info) as handle:
                        content = handle.read(MAX_MEMBER_BYTES + 1)
                except RuntimeError:  # zipfile's "encrypted, password required"
                    problem = "is encrypted. Re-create the archive without a password."
                except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
                    problem = f"is damaged in the archive ({exc})."
                else:
                    if len(content) > MAX_MEMBER_BYTES:
                        problem = (
                            f"is larger than {MAX_MEMBER_BYTES / 2**20:,.0f} MB unpacked. Upload it on its own, split."
                        )
            if problem is not None:
                refused.append((label, f"'{label}' {problem}"))
                continue
            total += len(content)
            members.append((label, content))
    return members, refused


def _member_problem(info: zipfile.ZipInfo, total: int) -> str | None:
    path = info.filename.replace("\\", "/")
    if path.startswith("/") or ".." in posixpath.normpath(path).split("/") or ":" in path.split("/")[0]:
        return "has a path outside the archive and was refused (a crafted archive?)."
    if path.lower().endswith(".zip"):
        return "is a ZIP inside the ZIP; nested archives are not opened. Unpack it and upload its files."
    if info.file_size > MAX_MEMBER_BYTES:
        return f"is {info.file_size / 2**20:,.0f} MB unpacked; the limit is {MAX_MEMBER_BYTES / 2**20:,.0f} MB."
    if total + info.file_size > MAX_TOTAL_BYTES:
        return f"would take the archive past {MAX_TOTAL_BYTES / 2**20:,.0f} MB unpacked; upload the rest separately."
    return None


def is_junk(filename: str) -> bool:
    """macOS resource forks and hidden files travel in ZIPs but are nobody's documents."""
    base = posixpath.basename(filename.rstrip("/"))
    return filename.startswith(_SKIPPED_PREFIXES) or base.startswith(".") or base in ("Thumbs.db", "desktop.ini")
