"""A saved codebook version chosen for a run (the Qualitative coder, Compare, Consensus), with the
coder's options: a rationale and an evidence quote per code. What the run records is the
version's reference and its content, so the run shows what the coders were given."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from research.codebook import Codebook
from research.coder import codebook_record, with_codebook

from .services import db
from .text import md

CODEBOOKS_PAGE = "pages/codebooks.py"


@dataclass(frozen=True)
class ChosenCodebook:
    codebook: Codebook
    ref: dict[str, Any]  # {"id", "name", "version"}
    rationale: bool
    evidence: bool

    def plan_options(self, task: str) -> dict[str, Any]:
        """A planner's instruction, schema and compared field, and the version recorded."""
        spec = with_codebook(self.codebook, task=task, rationale=self.rationale, evidence=self.evidence)
        record = codebook_record(self.codebook, self.ref, task=task, rationale=self.rationale, evidence=self.evidence)
        return {**spec, "codebook": record}


def codebook_keys(prefix: str) -> tuple[str, ...]:
    return tuple(f"{prefix}_{name}" for name in ("codebook", "cb_version", "rationale", "evidence"))


def codebook_pick(prefix: str) -> ChosenCodebook | None:
    """A saved codebook and version (latest by default), or None with a pointer to the
    Codebooks page when there is none yet."""
    books = db().list_codebooks()
    if not books:
        st.info("No codebook yet: create, import or generate one on the Codebooks page.", icon=":material/info:")
        st.page_link(CODEBOOKS_PAGE, label="Open Codebooks", icon=":material/menu_book:")
        return None
    names = {book.name: (book, latest) for book, latest in books}
    c = st.columns([3, 1])
    name = c[0].selectbox("Codebook", list(names), key=f"{prefix}_codebook")
    book, latest = names[name]
    versions = [v.version for v in db().codebook_versions(book.id)]
    version_key, for_key = f"{prefix}_cb_version", f"{prefix}_cb_for"
    if st.session_state.get(for_key) != book.id or st.session_state.get(version_key) not in versions:
        st.session_state.pop(version_key, None)  # another codebook: its latest version, not the same number
        st.session_state[for_key] = book.id
    version = c[1].selectbox("Version", versions, key=version_key, format_func=lambda v: f"v{v}")
    saved = db().codebook_version(book.id, version) or latest
    codebook = Codebook.from_record(saved.content)
    kind = "several codes per row" if codebook.multi_label else "one code per row"
    none = f', "{codebook.none_code}" when no code applies' if codebook.none_code else ""
    st.caption(md(f"{len(codebook.codes)} codes · {kind}{none} · saved {saved.created_at:%Y-%m-%d %H:%M}"))
    with st.expander("The codes", icon=":material/menu_book:"):
        st.dataframe(codebook.to_frame(), hide_index=True, width="stretch")
    c = st.columns(2)
    rationale = c[0].toggle(
        "Ask for a rationale", value=True, key=f"{prefix}_rationale", help="A sentence on why each row got its code."
    )
    evidence = c[1].toggle(
        "Ask for an evidence quote",
        value=True,
        key=f"{prefix}_evidence",
        help="A verbatim quote from the row for each code; quotes not found in the row's text are flagged.",
    )
    return ChosenCodebook(codebook, {"id": book.id, "name": book.name, "version": saved.version}, rationale, evidence)


def codebook_ref_text(codebook: dict[str, Any] | None) -> str:
    """ "Interview codes v3" for a run's recorded codebook ({"ref", "content"})."""
    ref = (codebook or {}).get("ref") or {}
    return f"{ref.get('name', 'unsaved')} v{ref.get('version', '?')}"
