"""The frame every page starts with: page config and the shared sidebar."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from .sidebar import Choice, render_sidebar

PAGE_ICON = Path(__file__).parent / "assets" / "handai.png"  # local: no icon font fetched for the tab


def frame() -> Choice:
    """Page config and the shared sidebar, called at the top of every page."""
    _leave_pages_directory_mode()
    st.set_page_config(page_title="Handai", page_icon=str(PAGE_ICON), layout="wide")
    return render_sidebar()


def _leave_pages_directory_mode() -> None:
    """Streamlit runs a server process's first request in its old pages-directory mode when the
    app has a `pages/` folder: a deep link (a bookmark, a tab reconnecting after a restart) then
    runs the page without handai_app.py, and every session of that process shows the old page
    menu until someone opens `/`. Switch the process to st.navigation mode and rerun, so the
    entry script always runs."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a Streamlit without the old mode
        return
    if getattr(PagesManager, "uses_pages_directory", None):
        PagesManager.uses_pages_directory = False
        # AppTest re-enables the old mode before every run, and a rerun there would drop the
        # click being tested; the page renders fine in this mode, only the menu differs.
        from streamlit import config  # st.get_option does not see AppTest's hidden flag

        if not config.get_option("global.appTest"):
            st.rerun()
