"""What a run sent, read from its record (DESIGN: provenance is read from the ledger, never
reconstructed from today's code). A run made before something was recorded says so."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from handai_db import Run
from handai_engine import Plan

from .sidebar import provider_name
from .text import md


def not_recorded(what: str) -> str:
    return f"Not recorded: this run was made before Handai recorded {what} it sent."


def run_settings_table(run: Run) -> pd.DataFrame:
    """Where the run was sent, the exact request parameters sent, and Handai's own settings."""
    rows: dict[str, object] = {
        "Provider": provider_name(run.provider),
        "Model": run.model,
        "Endpoint": run.connection.get("base_url") or "",
    }
    if "sent" not in run.params:
        rows["Parameters sent"] = not_recorded("the request parameters")
    elif not run.params["sent"]:
        rows["Parameters sent"] = "none (each at the provider's default)"
    else:
        rows.update({f"Sent: {name}": json.dumps(value) for name, value in run.params["sent"].items()})
    rows.update(
        {
            "Cache": "on" if run.params.get("use_cache", True) else "off",
            "Budget cap (USD)": run.params.get("budget_usd") or "none",
            "Cost (USD)": "unknown" if run.cost_usd is None else f"{run.cost_usd:.6f}",
            "Calls made / saved by cache": f"{run.calls} / {run.cache_hits}",
            "Concurrency": run.concurrency,
            "Retries": run.max_retries,
            "Input": run.input_name,
            "Input SHA-256": run.input_hash,
        }
    )
    return pd.DataFrame({"Setting": list(rows), "Value": [str(v) for v in rows.values()]})


def what_was_sent(run: Run) -> None:
    """The run's recorded request: parameters, the system message, how each row was sent, and the
    output schema."""
    if run.plan:
        plan_sent(run)
        return
    st.dataframe(run_settings_table(run), hide_index=True, width="stretch")
    st.markdown("**System message sent**")
    if "system_message" in run.params:
        st.code(run.params["system_message"], language=None, wrap_lines=True)
    else:
        st.caption(not_recorded("the system message") + " The instruction as written:")
        st.code(run.system_prompt or "", language=None, wrap_lines=True)
    if run.row_template:
        st.markdown("**Row template** (each row's user message)")
        st.code(run.row_template, language=None, wrap_lines=True)
    elif run.columns:
        st.markdown(f"**Columns sent as JSON:** {md(', '.join(map(str, run.columns)))}")
    if run.output_schema:
        st.markdown("**Output schema**")
        st.json(run.output_schema)
    timing = {"created": run.created_at, "started": run.started_at, "finished": run.finished_at}
    st.caption(" · ".join(f"{k} {v:%Y-%m-%d %H:%M:%S}" for k, v in timing.items() if v))


def plan_sent(run: Run) -> None:
    """A run of several models or steps, from its recorded plan: each model and where it was sent,
    then each step (how rows were sent, its condition) with exactly what each of its models sent."""
    plan = Plan.of(run)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "model": arm.name,
                    "provider": provider_name(arm.provider),
                    "model id": arm.model,
                    "endpoint": arm.endpoint.get("base_url") or "",
                    "samples per row": arm.samples,
                }
                for arm in plan.arms
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    st.caption(
        f"Cache {'on' if run.params.get('use_cache', True) else 'off'} · budget cap "
        f"{run.params.get('budget_usd') or 'none'} · concurrency {run.concurrency} per model · "
        f"retries {run.max_retries} · input {md(run.input_name)} (SHA-256 {md(run.input_hash)})"
    )
    for step in plan.steps:
        st.markdown(f"**Step {md(step.name)}**" + (f" · only where {md(step.run_if)}" if step.run_if else ""))
        if step.row_template:
            st.code(step.row_template, language=None, wrap_lines=True)
        elif step.columns:
            st.caption(f"Columns sent as JSON: {md(', '.join(step.columns))}")
        for name in step.arms:
            key = f"{step.name}/{name}"
            sent = plan.sent.get(key)
            if sent is None:
                st.caption(not_recorded(f"what {name} sent in this step"))
                continue
            st.caption(f"{md(name)} · parameters sent: {md(json.dumps(sent.params) if sent.params else 'none')}")
            st.code(sent.system, language=None, wrap_lines=True)
