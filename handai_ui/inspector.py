"""One row of a run, as the ledger recorded it: status, what was sent, the raw reply and the
parsed values. Nothing is rebuilt with today's code."""

from __future__ import annotations

import streamlit as st

from handai_db import Run
from handai_prompts import is_structured

from .provenance import not_recorded
from .services import db
from .text import md


def inspector(run: Run, key: str) -> None:
    with st.expander("Inspect a row", icon=":material/search:"):
        index = st.number_input("Row", 1, max(run.total_rows, 1), 1, key=f"inspect_{key}") - 1
        result = db().result(run.id, int(index))
        if result is None:
            st.info("No such row.")
            return
        st.markdown(
            f"**Status:** {md(result.status)} · attempts {result.attempts} · "
            f"latency {result.latency_ms or 0:.0f} ms · tokens {result.tokens_in} in, {result.tokens_out} out"
            + (" · from the cache" if result.cached else "")
            + (f" · {md(f'${result.cost_usd:.6f}')}" if result.cost_usd is not None else "")
        )
        if result.error_message:
            st.error(md(f"{result.error_kind}: {result.error_message}"))
        st.markdown("**Input**")
        st.json(result.input, expanded=False)
        st.markdown("**System message sent**")
        if "system_message" in run.params:
            st.code(run.params["system_message"], language=None, wrap_lines=True)
        else:
            st.caption(not_recorded("the system message"))
        st.markdown("**User message sent**")
        if result.request is not None:
            st.code(result.request, language=None, wrap_lines=True)
        else:
            st.caption("Not sent yet." if not result.attempts else not_recorded("the user message"))
        st.markdown("**Raw reply**")
        structured = is_structured(run.output_schema, bool(run.params.get("json_mode")))
        st.code(result.raw or "", language="json" if structured else None, wrap_lines=True)
        if result.parsed:
            st.markdown("**Parsed values**")
            st.json(result.parsed)
