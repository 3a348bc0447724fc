"""The Codebooks page's widgets: the saved codebooks and their versions, a file imported, and the
working copy edited in a table and saved as a new version (nothing is ever overwritten).

The working copy lives in the session state (`cb_work`): the codes table's rows, where it came
from (`source`, `run_id`) and the saved version it started from (`base`). Opening a codebook
(`open_in_editor`) sets the editor's widgets and gives the codes table a new key, so its edits
start afresh; a load asked for after the editor is drawn (a save) waits in `cb_pending` until
`codebook_start` applies it at the top of the next run. The table is keyed anew ("rebased" on
its edited rows) when the code names change, since the parent column's choices are part of the
table's identity; and when it was dropped during a visit to another page.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import streamlit as st

from handai_db import CodebookVersion
from research.codebook import FRAME_COLUMNS, Codebook, CodebookError
from research.codebook_io import FORMATS, csv_guarded_cells, read_codebook, write_codebook

from .downloads import guard_choice
from .services import db
from .state import keep, kept
from .text import md

WORK, PENDING, NEW = "cb_work", "cb_pending", "new"
CODEBOOK_SOURCES = ("Saved codebooks", "Import a file", "Generate from data")
EDITOR_KEYS = ("cb_name", "cb_desc", "cb_multi", "cb_use_none", "cb_none_label", "cb_note")
DEFAULT_NONE = "none"
FIELD_HELP = {
    "name": "The label a coder answers with.",
    "definition": "What the code means.",
    "inclusion": "When to apply it.",
    "exclusion": "When not to apply it (and which code to use instead).",
    "examples": "Short quotes that fit: one per line, or separated by ' | '.",
    "parent": "The broader code this one belongs to (optional).",
}


# -- the working copy ---------------------------------------------------------------------------
def open_in_editor(
    book: Codebook, *, origin: str, source: str = "", run_id: int | None = None, base: tuple[int, int] | None = None
) -> None:
    """Put `book` in the editor. Call before the editor is drawn in this run (or in a callback);
    `origin` says in the editor where it came from."""
    st.session_state[WORK] = {
        "rows": table_rows(book.to_frame()),
        "origin": origin,
        "source": source,
        "run_id": run_id,
        "base": list(base) if base else None,
        "generation": _next_generation(),
    }
    st.session_state["cb_name"] = book.name
    st.session_state["cb_desc"] = book.description
    st.session_state["cb_multi"] = book.multi_label
    st.session_state["cb_use_none"] = book.none_code is not None
    st.session_state["cb_none_label"] = book.none_code if book.none_code is not None else DEFAULT_NONE
    st.session_state["cb_note"] = ""


def blank_codebook() -> Codebook:
    return Codebook("", (), none_code=DEFAULT_NONE)


def open_version(version: CodebookVersion, name: str) -> None:
    open_in_editor(
        Codebook.from_record(version.content),
        origin=f"version {version.version} of '{name}'",
        base=(version.codebook_id, version.version),
    )


def codebook_start() -> None:
    """Apply a load asked for after the editor was drawn, bring back the editor as it was left
    when the user visited another page, and open a blank codebook on a first visit; call before
    any other codebook widget."""
    keep(*EDITOR_KEYS, "cb_start")
    st.session_state.setdefault("cb_start", CODEBOOK_SOURCES[0])
    pending = st.session_state.pop(PENDING, None)
    if pending:
        st.session_state["cb_pick"] = pending["pick"]
        st.session_state["cb_start"] = pending["start"]
        version = db().codebook_version(pending["pick"], pending["version"])
        if version is not None:
            open_version(version, version.content.get("name") or "")
    work = st.session_state.get(WORK)
    if work is None:
        open_in_editor(blank_codebook(), origin="a new codebook")
    elif f"cb_codes_{work['generation']}" not in st.session_state:  # gone with a visit to another page
        work["rows"], work["generation"] = work.get("now") or work["rows"], _next_generation()


def _next_generation() -> int:
    """A new key for the codes table, so a codebook opened in it starts without the old edits."""
    st.session_state["cb_generation"] = int(st.session_state.get("cb_generation", 0)) + 1
    return st.session_state["cb_generation"]


# -- saved codebooks and their versions -----------------------------------------------------------
def _picked() -> None:
    pick = st.session_state.get("cb_pick")
    if pick == NEW:
        open_in_editor(blank_codebook(), origin="a new codebook")
        return
    version = db().codebook_version(int(pick))
    if version is not None:
        open_version(version, version.content.get("name") or "")


def codebook_picker() -> None:
    """A saved codebook (or a new one) chosen, its versions listed, one of them shown with its
    downloads and offered to the editor."""
    books = db().list_codebooks()
    labels = {NEW: "New codebook"}
    for book, latest in books:
        count = len(latest.content.get("codes") or [])
        labels[book.id] = f"{book.name} · v{latest.version} · {count} codes · {latest.created_at:%Y-%m-%d %H:%M}"
    if st.session_state.get("cb_pick") not in labels:
        st.session_state["cb_pick"] = NEW
    pick = st.selectbox(
        "Codebook",
        list(labels),
        format_func=labels.get,
        key="cb_pick",
        on_change=_picked,
        help="Choosing a codebook opens its latest version in the editor below.",
    )
    if not books:
        st.info(
            "No codebooks saved yet. Write one in the editor below, import a file, or generate one from your data.",
            icon=":material/menu_book:",
        )
    if pick == NEW:
        return
    versions = db().codebook_versions(int(pick))
    name = next(b.name for b, _ in books if b.id == pick)
    st.dataframe(versions_table(versions), hide_index=True, width="stretch")
    by_number = {v.version: v for v in versions}
    shown = st.selectbox(
        "Show version",
        list(by_number),
        format_func=lambda n: f"Version {n}" + (" (latest)" if n == versions[0].version else ""),
        key=f"cb_view_{pick}",
    )
    version = by_number[shown]
    book = Codebook.from_record(version.content)
    with st.container(border=True):
        st.markdown(f"**{md(name)} · version {version.version}**")
        facts = [f"saved {version.created_at:%Y-%m-%d %H:%M}"]
        facts += [md(text) for text in (version.note, version.source) if text]
        st.caption(" · ".join(facts))
        st.dataframe(book.to_frame(), hide_index=True, width="stretch")
        codebook_downloads(book, version.version, key=f"cb_dl_{pick}_{version.version}")
        work = st.session_state.get(WORK) or {}
        in_editor = work.get("base") == [version.codebook_id, version.version]
        if st.button(
            f"Edit version {version.version}",
            icon=":material/edit:",
            key=f"cb_edit_{pick}_{version.version}",
            disabled=in_editor,
            help="Opens this version in the editor below (replacing what is there); saving makes a new version.",
            on_click=open_version,
            args=(version, name),
        ):
            st.toast(f"Version {version.version} is in the editor.", icon=":material/edit:")
        if in_editor:
            st.caption(":material/edit_note: This version is in the editor below.")


def versions_table(versions: list[CodebookVersion]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "version": v.version,
                "saved": v.created_at.strftime("%Y-%m-%d %H:%M"),
                "codes": len(v.content.get("codes") or []),
                "note": v.note,
                "source": v.source,
                "run": v.run_id,
            }
            for v in versions
        ]
    )


def codebook_downloads(book: Codebook, version: int, *, key: str) -> None:
    """One download button per format, named after the codebook and its version; the CSV's formula
    guard is the user's choice, as for results ("- mentions cost" would become "'- mentions cost")."""
    stem = re.sub(r"[^\w\-]+", "_", book.name).strip("_") or "codebook"
    guard = guard_choice(csv_guarded_cells(book), f"{key}_guard", exact="JSON, Markdown and REFI-QDA")
    for column, (fmt, spec) in zip(st.columns(len(FORMATS)), FORMATS.items(), strict=True):
        column.download_button(
            spec.label,
            data=lambda fmt=fmt: write_codebook(book, fmt, guard=guard),
            file_name=f"{stem}_v{version}{spec.extension}",
            mime=spec.mime,
            icon=":material/download:",
            key=f"{key}_{fmt}",
            on_click="ignore",
        )


# -- import -----------------------------------------------------------------------------------------
def codebook_import() -> None:
    """A codebook file read into the editor to check before it is saved; a file that cannot be
    read says why and leaves the editor as it was."""
    upload = st.file_uploader(
        "Codebook file",
        type=["csv", "json", "md", "markdown", "txt", "qdc", "xml"],
        key="cb_import",
        help="CSV (a row per code: name, definition, inclusion, exclusion, examples, parent), JSON, Markdown, or "
        "a REFI-QDA codebook (.qdc) exported from ATLAS.ti, MAXQDA, NVivo or QualCoder.",
    )
    if upload is None:
        st.info(
            "Choose a codebook file; it opens in the editor below to check before saving.", icon=":material/upload:"
        )
        return
    data = upload.getvalue()
    seen = (upload.name, len(data), hash(data))
    try:
        book = read_codebook(upload.name, data)
    except CodebookError as exc:
        st.error(f"**{md(upload.name)}** could not be read: {md(exc)}", icon=":material/error:")
        return
    if st.session_state.get("cb_imported") != seen:
        st.session_state["cb_imported"] = seen
        open_in_editor(book, origin=f"the file '{upload.name}'", source=f"imported from {upload.name}")
    st.success(
        f"Read {len(book.codes)} codes from **{md(upload.name)}**. Check them in the editor below, then save.",
        icon=":material/check_circle:",
    )


# -- the editor -------------------------------------------------------------------------------------
def table_rows(frame: pd.DataFrame) -> list[dict[str, str]]:
    """The codes table's rows as text, empty cells as ""."""
    return [{c: str(r.get(c) or "") for c in FRAME_COLUMNS} for r in frame.fillna("").to_dict("records")]


def code_names(rows: list[dict[str, str]]) -> list[str]:
    return sorted({r["name"].strip() for r in rows if r["name"].strip()}, key=str.casefold)


def codes_table(work: dict[str, Any]) -> pd.DataFrame:
    """The codes in an editable table, rows addable and deletable. When the names change, the
    table is drawn again on its edited rows, so the parent column offers the new names."""
    base = pd.DataFrame(work["rows"], columns=list(FRAME_COLUMNS)).astype("str")
    names = code_names(work["rows"])
    config: dict[str, Any] = {
        column: st.column_config.TextColumn(column, default="", help=FIELD_HELP[column])
        for column in FRAME_COLUMNS
        if column != "parent"
    }
    config["name"] = st.column_config.TextColumn("name", default="", help=FIELD_HELP["name"], required=True)
    config["parent"] = st.column_config.SelectboxColumn("parent", options=names, help=FIELD_HELP["parent"])
    edited = st.data_editor(
        base,
        num_rows="dynamic",
        key=f"cb_codes_{work['generation']}",
        width="stretch",
        hide_index=True,
        column_config=config,
        placeholder="",  # an empty cell (a new row's, a code without a parent) is blank, not a grey "None"
    )
    rows = work["now"] = table_rows(edited)
    if code_names(rows) != names:
        work["rows"], work["generation"] = rows, _next_generation()
        st.rerun()
    return edited


def unnamed_rows(edited: pd.DataFrame) -> list[int]:
    """Rows with some text but no name: `from_frame` leaves them out, so the user is told."""
    rows = []
    for i, row in enumerate(edited.fillna("").astype("str").to_dict("records"), 1):
        if not row["name"].strip() and any(row[c].strip() for c in FRAME_COLUMNS if c != "name"):
            rows.append(i)
    return rows


def codebook_editor() -> None:
    """The working copy: its settings and codes, what a coder would be told, its problems, and
    "Save as version N+1"."""
    work = st.session_state[WORK]
    st.caption(f":material/edit_note: Editing {md(work['origin'])}.")
    name = st.text_input("Name", key="cb_name", placeholder="e.g. Customer complaints").strip()
    st.text_area("Description", key="cb_desc", height=80, placeholder="What the codebook is for (optional).")
    c = st.columns([2, 1, 2], vertical_alignment="bottom")
    c[0].toggle(
        "Several codes may apply (multi-label)",
        key="cb_multi",
        help="Off: a coder picks the one code that fits best. On: every code that applies.",
    )
    use_none = c[1].toggle("A 'none' answer", key="cb_use_none", help="Lets a coder say that no code applies.")
    c[2].text_input("Label of the 'none' answer", key="cb_none_label", disabled=not use_none)
    settings = Codebook(
        name,
        (),
        multi_label=bool(st.session_state["cb_multi"]),
        none_code=st.session_state["cb_none_label"].strip() if use_none else None,
        description=st.session_state["cb_desc"].strip(),
    )
    st.markdown("**Codes**")
    st.caption(
        "Click the empty last row to add a code, double-click a cell to edit it; select rows by their left edge "
        "and press Delete to remove them. Examples: one per line, or separated by ' | '."
    )
    edited = codes_table(work)
    book = Codebook.from_frame(edited, like=settings)
    problems = ([] if name else ["Give the codebook a name."]) + book.problems()
    problems += [f"Row {i} has text but no name; name it, or it is left out." for i in unnamed_rows(edited)]
    with st.expander("What a coder is told", icon=":material/record_voice_over:"):
        st.caption("The instruction a coding run sends with every text, and the answer it asks for.")
        st.code(book.instruction(), language=None, wrap_lines=True)
        st.json(book.output_schema(), expanded=False)
    kept(*EDITOR_KEYS, "cb_start")
    _save_section(book, work, problems)


def _save_section(book: Codebook, work: dict[str, Any], problems: list[str]) -> None:
    for problem in problems:
        st.warning(md(problem), icon=":material/warning:")
    existing = db().find_codebook(book.name) if book.name else None
    latest = db().codebook_version(existing.id) if existing else None
    same = latest is not None and latest.content == book.record()
    base = work.get("base")
    if existing and latest and (not base or base[0] != existing.id):
        st.info(
            f"A codebook named '{md(book.name)}' already exists (latest version {latest.version}); saving adds a "
            "version to it. Rename this one to keep them apart.",
            icon=":material/info:",
        )
    if same:
        st.caption(f":material/check: Same as version {latest.version} of '{md(book.name)}': nothing to save.")
    note = st.text_input("Version note", key="cb_note", placeholder="What changed, and why (optional)")
    number = (latest.version if latest else 0) + 1
    label = f"Save as version {number}" if existing else "Save as a new codebook (version 1)"
    if not st.button(label, icon=":material/save:", type="primary", disabled=bool(problems) or same, key="cb_save"):
        return
    try:
        saved = db().save_codebook(
            book.name, book.record(), note=note.strip(), source=_source(work, existing), run_id=work.get("run_id")
        )
    except ValueError as exc:
        st.error(md(exc), icon=":material/error:")
        return
    st.session_state[PENDING] = {"pick": saved.codebook_id, "version": saved.version, "start": CODEBOOK_SOURCES[0]}
    st.toast(f"Saved '{md(book.name)}' as version {saved.version}.", icon=":material/save:")
    st.rerun()


def _source(work: dict[str, Any], existing: Any) -> str:
    """Where a version came from: the file or runs it was made from, else the version edited."""
    if work.get("source"):
        return work["source"]
    base = work.get("base")
    if not base:
        return "written in the editor"
    if existing is not None and existing.id == base[0]:
        return f"edited from version {base[1]}"
    return f"edited from {work['origin']}"
