"""Bringing a run to the user's attention: its progress scrolled into view when it starts (and its
answers when it ends), and a long run's end announced (a toast, and the browser tab's title) when it finishes."""

from __future__ import annotations

import json

import streamlit as st

from handai_db import ACTIVE_STATUSES, Run, RunStatus
from handai_engine import Progress

LONG_RUN_S = 30.0
DONE_MARKS = {RunStatus.COMPLETED: "✓", RunStatus.FAILED: "✗"}

_SCROLL = """<script>
const doc = window.parent.document;
const heading = [...doc.querySelectorAll('h3')].find(h => h.textContent.trim().startsWith(%s));
if (heading) heading.scrollIntoView({behavior: 'smooth', block: 'start'});
</script>"""
_TITLE = "<script>window.parent.document.title = %s;</script>"


def _script(html: str) -> None:
    """A tiny same-origin frame that runs `html`'s script against the app's page (our own
    script; the only data in it is JSON-encoded)."""
    st.iframe(html, height=1)


def mark_started(kind: str) -> None:
    """Called when a run starts (or resumes) on a page: scroll to it, announce its end."""
    st.session_state[f"{kind}_scroll"] = True
    st.session_state[f"{kind}_watching"] = True


def scroll_to_run(kind: str, run_id: int) -> None:
    """Bring the run's heading into view once, right after it started."""
    if st.session_state.pop(f"{kind}_scroll", False):
        _script(_SCROLL % json.dumps(f"Run #{run_id}"))


def finished_title(run: Run, failed: int) -> str:
    mark = DONE_MARKS.get(RunStatus(run.status), "■")
    failed_text = f" · {failed:,} failed" if failed else ""
    return f"{mark} Run #{run.id} {run.status}{failed_text} · Handai"


def announce_finish(kind: str, run: Run, p: Progress) -> None:
    """A run this page watched ended: when it took long, say so in a toast and the tab's title
    (the user is probably looking elsewhere)."""
    if run.status in ACTIVE_STATUSES or not st.session_state.pop(f"{kind}_watching", False):
        return
    _script(_SCROLL % json.dumps(f"Run #{run.id}"))  # its answers, right below
    if p.elapsed_s < LONG_RUN_S:
        return
    title = finished_title(run, p.failed)
    st.toast(title.removesuffix(" · Handai"), icon=":material/notifications:")
    st.set_page_config(page_title=title)
    _script(_TITLE % json.dumps(title))
