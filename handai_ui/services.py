"""The process's database and engine, created once (a cached resource), and this browser
session's row in the sessions table. `st.cache_resource` getters live here, never in a page."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

import handai_db
from handai_db import Database
from handai_engine import Engine, get_engine


@st.cache_resource
def _services() -> tuple[Database, Engine, set[int]]:
    """Created once per process: runs left running by a dead process become interrupted, and the
    batch runs left open are re-attached (the ones that cannot be yet are kept, waiting)."""
    from .reattach import reattach_at_start  # it reads keys through the UI's helpers, which use these getters

    db = handai_db.get_db()
    db.mark_interrupted_runs()
    engine = get_engine(db)
    return db, engine, reattach_at_start(db, engine)


def db() -> Database:
    return _services()[0]


def engine() -> Engine:
    return _services()[1]


def waiting_runs() -> set[int]:
    """Batch runs the app could not re-attach to at start-up (no key without a browser session)."""
    return _services()[2]


def session_id() -> int:
    """This browser session's row in the sessions table, created with its first run."""
    if "handai_session_id" not in st.session_state:
        name = f"Session {datetime.now():%Y-%m-%d %H:%M}"
        st.session_state["handai_session_id"] = db().create_session(name)
    return st.session_state["handai_session_id"]
