"""One download for a paper: the run's results table with provenance.json and METHODS.md, in a ZIP
built only when clicked (a large run's bundle is not built on every rerun)."""

from __future__ import annotations

import streamlit as st

from research.methods import methods_bundle

from .services import db


def methods_bundle_button(run_id: int, key: str) -> None:
    """The "Methods bundle (ZIP)" button; its CSV follows the formula-guard choice made above it."""
    guard = bool(st.session_state.get(f"dl_{key}_guard", True))
    st.download_button(
        "Methods bundle (ZIP)",
        data=lambda: methods_bundle(db(), run_id, guard=guard),
        file_name=f"handai_run_{run_id}_methods.zip",
        mime="application/zip",
        icon=":material/folder_zip:",
        key=f"dl_{key}_bundle",
        on_click="ignore",
        help="The results table, provenance.json (exactly what was sent, to which models, with what outcome; "
        "never a key) and METHODS.md (a methods paragraph to adapt, with every instruction in full). "
        "`python handai_cli.py runs rerun BUNDLE.zip` repeats the run.",
    )
