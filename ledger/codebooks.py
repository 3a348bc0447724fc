"""Codebooks: named, with numbered versions that are never edited."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select

from ledger.models import CodebookRow, CodebookVersion, utcnow
from ledger.store import Store, lock_for_update
from ledger.upserts import insert_ignoring


class CodebooksMixin(Store):
    """Save, list, read and delete codebooks and their versions."""

    def save_codebook(
        self, name: str, content: dict[str, Any], *, note: str = "", source: str = "", run_id: int | None = None
    ) -> CodebookVersion:
        """Save `content` as the next version of the codebook `name` (created on first save). An
        unchanged codebook is not saved twice: its latest version is returned."""
        name = name.strip()
        if not name:
            raise ValueError("A codebook needs a name.")
        with self._write_lock, self.session() as s, s.begin():
            # made if new, then locked: two people saving the same codebook number versions in turn
            lock_for_update(s.connection())
            s.execute(insert_ignoring(s.connection(), CodebookRow), {"name": name, "created_at": utcnow()})
            book = s.scalar(select(CodebookRow).where(CodebookRow.name == name).with_for_update())
            assert book is not None
            latest = s.scalar(
                select(CodebookVersion)
                .where(CodebookVersion.codebook_id == book.id)
                .order_by(CodebookVersion.version.desc())
                .limit(1)
            )
            if latest is not None and latest.content == content:
                return latest
            version = CodebookVersion(
                codebook_id=book.id,
                version=(latest.version if latest else 0) + 1,
                content=content,
                note=note,
                source=source,
                run_id=run_id,
            )
            s.add(version)
            s.flush()
            return version

    def list_codebooks(self) -> list[tuple[CodebookRow, CodebookVersion]]:
        """Every codebook with its latest version, the most recently changed first."""
        latest = (
            select(CodebookVersion.codebook_id, func.max(CodebookVersion.version).label("v"))
            .group_by(CodebookVersion.codebook_id)
            .subquery()
        )
        stmt = (
            select(CodebookRow, CodebookVersion)
            .join(latest, latest.c.codebook_id == CodebookRow.id)
            .join(
                CodebookVersion,
                (CodebookVersion.codebook_id == CodebookRow.id) & (CodebookVersion.version == latest.c.v),
            )
            .order_by(CodebookVersion.created_at.desc(), CodebookVersion.id.desc())
        )
        with self.session() as s:
            return [(book, version) for book, version in s.execute(stmt).all()]

    def codebook_versions(self, codebook_id: int) -> list[CodebookVersion]:
        with self.session() as s:
            stmt = (
                select(CodebookVersion)
                .where(CodebookVersion.codebook_id == codebook_id)
                .order_by(CodebookVersion.version.desc())
            )
            return list(s.scalars(stmt))

    def codebook_version(self, codebook_id: int, version: int | None = None) -> CodebookVersion | None:
        """One version of a codebook; its latest when `version` is None."""
        stmt = select(CodebookVersion).where(CodebookVersion.codebook_id == codebook_id)
        if version is not None:
            stmt = stmt.where(CodebookVersion.version == version)
        with self.session() as s:
            return s.scalar(stmt.order_by(CodebookVersion.version.desc()).limit(1))

    def find_codebook(self, name: str) -> CodebookRow | None:
        with self.session() as s:
            return s.scalar(select(CodebookRow).where(CodebookRow.name == name.strip()))

    def delete_codebook(self, codebook_id: int) -> None:
        with self._write_lock, self.session() as s, s.begin():
            s.execute(delete(CodebookVersion).where(CodebookVersion.codebook_id == codebook_id))
            s.execute(delete(CodebookRow).where(CodebookRow.id == codebook_id))
