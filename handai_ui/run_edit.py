"""A past run's settings: edited before it is resumed, retried or run again (each change is
recorded on the run and logged by the engine), or loaded back into the Transform or Generate
page's widgets."""

from __future__ import annotations

from typing import Any

import streamlit as st

from handai_db import Run
from handai_prompts import GENERATE_TEMPLATES, generation_description, generation_prompts
from providers import PROVIDERS

from .connections import key_box
from .plan_load import load_plan_into_page
from .schema_editor import schema_rows
from .services import engine
from .sidebar import provider_name
from .state import remember, set_page_widget
from .text import md

EDITABLE_BASE_URL = {pid for pid, c in PROVIDERS.items() if c.base_url_editable}


def settings_changes(run: Run, edited: dict[str, Any]) -> dict[str, Any]:
    """Only what differs from the run's record."""
    current = {
        "model": run.model,
        "concurrency": run.concurrency,
        "system_prompt": run.system_prompt,
        "base_url": run.connection.get("base_url") or None,
        "temperature": run.params.get("temperature"),
    }
    return {k: v for k, v in edited.items() if k in current and v != current[k]}


def edit_run_settings(kind: str, run: Run) -> None:
    """Endpoint, key, model, concurrency and instruction, changed before Resume, Retry or a new
    run with the same settings."""
    key = f"{kind}_edit_{run.id}"
    if run.plan:
        _edit_plan_run(key, run)
        return
    with st.expander("Change settings before resuming, retrying or re-running", icon=":material/edit:"):
        with st.form(key, border=False):
            edited: dict[str, Any] = {}
            if run.provider in EDITABLE_BASE_URL:
                edited["base_url"] = (
                    st.text_input("Base URL", value=run.connection.get("base_url") or "", key=f"{key}_url").strip()
                    or None
                )
            c = st.columns(2)
            edited["model"] = c[0].text_input("Model", value=run.model, key=f"{key}_model").strip() or run.model
            edited["concurrency"] = int(
                c[1].number_input("Concurrency", 1, 512, int(run.concurrency), key=f"{key}_concurrency")
            )
            if run.kind == "transform":
                edited["system_prompt"] = st.text_area(
                    "Instruction", value=run.system_prompt or "", key=f"{key}_prompt", height=100
                )
            elif run.kind == "generate":
                described = st.text_area("Description", value=generate_description(run), key=f"{key}_desc", height=100)
                edited["system_prompt"] = generation_prompts(described, int(run.total_rows))[0]
            applied = st.form_submit_button("Save the changes", icon=":material/save:")
        key_box(run.provider, st, key)  # the typed key for this provider, used by Resume and Retry
        if applied:
            changes = settings_changes(run, edited)
            if not changes:
                st.info("Nothing changed.")
                return
            try:
                engine().update_settings(run.id, **changes)
            except (ValueError, TypeError) as exc:
                st.error(md(exc), icon=":material/error:")
                return
            st.toast(f"Run #{run.id}: {', '.join(changes)} changed (recorded in the run's log).")
            st.rerun()


def _edit_plan_run(key: str, run: Run) -> None:
    """A run of several models keeps its instructions (they are its plan); what can change is each
    model, each provider's base URL (applied to every model of that provider), the concurrency per
    model and each provider's key. Only what changed is sent to the engine, which records it."""
    arms = run.plan["arms"]
    providers = list(dict.fromkeys(arm["provider"] for arm in arms))
    with st.expander("Change settings before resuming, retrying or re-running", icon=":material/edit:"):
        with st.form(key, border=False):
            models = {
                arm["name"]: st.text_input(
                    f"Model of {md(arm['name'])}", value=arm["model"], key=f"{key}_model_{i}"
                ).strip()
                or arm["model"]
                for i, arm in enumerate(arms)
            }
            urls = {
                provider: st.text_input(
                    f"Base URL ({provider_name(provider)})",
                    value=_recorded_url(arms, provider),
                    key=f"{key}_url_{provider}",
                ).strip()
                or None
                for provider in providers
                if provider in EDITABLE_BASE_URL
            }
            concurrency = int(
                st.number_input("Concurrency per model", 1, 512, int(run.concurrency), key=f"{key}_concurrency")
            )
            applied = st.form_submit_button("Save the changes", icon=":material/save:")
        for provider in providers:
            key_box(provider, st, f"{key}_{provider}")
        if applied:
            changes: dict[str, Any] = {"arms": arm_changes(arms, models, urls)}
            if concurrency != run.concurrency:
                changes["concurrency"] = concurrency
            changes = {k: v for k, v in changes.items() if v}
            if not changes:
                st.info("Nothing changed.")
                return
            try:
                engine().update_settings(run.id, **changes)
            except (ValueError, TypeError) as exc:
                st.error(md(exc), icon=":material/error:")
                return
            st.toast(f"Run #{run.id}: {md(', '.join(_changed_names(changes)))} changed (recorded in the run's log).")
            st.rerun()


def arm_changes(
    arms: list[dict[str, Any]], models: dict[str, str], urls: dict[str, str | None]
) -> dict[str, dict[str, Any]]:
    """Per arm, only what differs from its record: its model, and its provider's base URL."""
    out: dict[str, dict[str, Any]] = {}
    for arm in arms:
        change: dict[str, Any] = {}
        if models.get(arm["name"], arm["model"]) != arm["model"]:
            change["model"] = models[arm["name"]]
        if arm["provider"] in urls and urls[arm["provider"]] != ((arm.get("endpoint") or {}).get("base_url") or None):
            change["base_url"] = urls[arm["provider"]]
        if change:
            out[arm["name"]] = change
    return out


def _recorded_url(arms: list[dict[str, Any]], provider: str) -> str:
    return next(((a.get("endpoint") or {}).get("base_url") or "" for a in arms if a["provider"] == provider), "")


def _changed_names(changes: dict[str, Any]) -> list[str]:
    named = [f"{name}'s {', '.join(change)}" for name, change in (changes.get("arms") or {}).items()]
    return [*named, *(["concurrency"] if "concurrency" in changes else [])]


# -- loading a run's settings into a page ---------------------------------------------------------
SIDEBAR_KEYS = ("handai_provider", "handai_set_temperature", "handai_temperature", "handai_set_max_tokens")
SIDEBAR_KEYS += ("handai_max_tokens", "handai_json_mode", "handai_concurrency", "handai_max_retries")


def _load_sidebar(run: Run) -> None:
    remember("provider", run.provider)
    remember(f"model.{run.provider}", run.model)
    remember("temperature", run.params.get("temperature"))
    remember("max_tokens", run.params.get("max_tokens"))
    remember("json_mode", bool(run.params.get("json_mode")))
    remember("concurrency", int(run.concurrency))
    remember("max_retries", int(run.max_retries))
    if run.provider in EDITABLE_BASE_URL and run.connection.get("base_url"):
        remember(f"base_url.{run.provider}", run.connection["base_url"])
    for key in (*SIDEBAR_KEYS, f"handai_model_pick_{run.provider}", f"handai_base_url_{run.provider}"):
        st.session_state.pop(key, None)


def generate_description(run: Run) -> str:
    """A Generate run's description as sent (an edit before a re-run included), else as recorded."""
    return generation_description(run.system_prompt or "") or run.params.get("description") or run.input_name or ""


def _load_generate(run: Run) -> None:
    """Generate's form as the run had it: its template (or fields), description, rows, variation
    and the variables that cycled per row."""
    template = run.params.get("template")
    description = generate_description(run)
    if template in GENERATE_TEMPLATES:
        set_page_widget("gen_schema_mode", "Template")
        set_page_widget("gen_template", template)
        set_page_widget(f"gen_desc_{template}", description)
    else:
        set_page_widget("gen_schema_mode", "Defined fields" if run.output_schema else "Free-form")
        set_page_widget("gen_desc", description)
    set_page_widget("gen_rows", max(int(run.total_rows), 1))
    if run.params.get("temperature") is not None:
        set_page_widget("gen_variation", float(run.params["temperature"]))
    st.session_state["gen_fields_rows"] = schema_rows(run.output_schema)
    st.session_state.pop("gen_fields", None)
    variables = run.params.get("variables") or {}
    st.session_state["gen_vars_rows"] = [
        {"variable": name, "values (comma-separated)": ", ".join(values)} for name, values in variables.items()
    ]
    st.session_state.pop("gen_vars", None)


def load_into_page(run: Run) -> str:
    """Fill the run's page (Transform, Generate, or its tool's) with the run's settings; returns the page."""
    if run.plan:
        return load_plan_into_page(run)
    _load_sidebar(run)
    examples = list(run.params.get("examples") or [])
    if run.kind == "generate":
        _load_generate(run)
        return "pages/generate.py"
    set_page_widget("tf_prompt", run.system_prompt or "")
    set_page_widget("tf_mode", "Template" if run.row_template else "Columns as JSON")
    if run.row_template:
        set_page_widget("tf_template", run.row_template)
    if run.columns:
        set_page_widget("tf_columns", list(run.columns))
    st.session_state["tf_fields_rows"] = schema_rows(run.output_schema)
    st.session_state.pop("tf_fields", None)
    st.session_state["tf_examples_rows"] = examples
    st.session_state.pop("tf_examples", None)
    return "pages/transform.py"
