"""The shared sidebar: provider, model, key and parameters for the next run (choices persist,
never the key), local servers that are up, and links to runs in progress."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from handai_engine import RunSettings
from providers import PROVIDERS, Connection, list_models
from research.tools import TOOLS

from .connections import base_url_box, connection, key_box, local_servers
from .services import db
from .state import remember, saved
from .text import md


@dataclass
class Choice:
    """What the sidebar says to use for the next run."""

    provider: str
    model: str
    temperature: float | None
    max_tokens: int | None
    json_mode: bool
    concurrency: int
    max_retries: int

    def settings(self, **fields: Any) -> RunSettings:
        return RunSettings(
            provider=self.provider,
            model=self.model,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            json_mode=self.json_mode,
            concurrency=self.concurrency,
            max_retries=self.max_retries,
            **fields,
        )


def provider_name(provider: str) -> str:
    """Display name, also for runs recorded by a provider id this version no longer knows."""
    return PROVIDERS[provider].name if provider in PROVIDERS else provider


@st.cache_data(ttl=600, show_spinner=False, max_entries=50)
def _models(conn: Connection, refresh_token: int) -> tuple[list[str], str | None]:
    """Model ids for a connection; cached in memory (the key is part of the hashed cache key only)."""
    result = list_models(conn, refresh=refresh_token > 0)
    return [m.id for m in result.models], result.message


def model_options(provider: str) -> tuple[list[str], str | None]:
    """The models to offer for a provider (the sidebar's list, also used by the model pickers),
    and a note when the list could not be fetched."""
    return _models(connection(provider), st.session_state.get("handai_models_refresh", 0))


def render_sidebar() -> Choice:
    sb = st.sidebar
    ids = list(PROVIDERS)
    provider = sb.selectbox(
        "Provider",
        ids,
        index=ids.index(saved("provider", "openai")) if saved("provider", "openai") in ids else 0,
        format_func=lambda p: PROVIDERS[p].name,
        key="handai_provider",
    )
    config = PROVIDERS[provider]
    if config.base_url_editable:
        base_url_box(provider, sb, "handai")
    models, message = model_options(provider)
    saved_model = saved(f"model.{provider}", None) or config.default_model or (models[0] if models else "")
    options = list(dict.fromkeys([*models, *([saved_model] if saved_model else [])]))
    col1, col2 = sb.columns([5, 1], vertical_alignment="bottom")
    picked = col1.selectbox(
        "Model",
        options,
        index=options.index(saved_model) if saved_model in options else 0,
        key=f"handai_model_pick_{provider}",
        accept_new_options=True,
        help="Pick from the list or type any model name the provider accepts.",
    )
    if col2.button("", icon=":material/refresh:", key="handai_models_refresh_btn", help="Refresh the model list"):
        st.session_state["handai_models_refresh"] = st.session_state.get("handai_models_refresh", 0) + 1
        st.rerun()
    if message:
        sb.caption(md(message))
    model = (picked or "").strip()
    remember(f"model.{provider}", model or None)
    if provider == "azure":
        sb.caption("Model = your deployment name.")
    key_box(provider, sb, "handai")
    with sb.expander("Parameters", icon=":material/tune:"):
        temperature = _optional_number("Temperature", "temperature", 0.0, 2.0, 0.7, step=0.1)
        max_tokens = _optional_number("Max tokens", "max_tokens", 1, 200_000, 1024, step=64)
        json_mode = st.toggle(
            "JSON mode",
            value=bool(saved("json_mode", False)),
            key="handai_json_mode",
            help="Ask for a JSON object per row; its fields become columns.",
        )
        concurrency = st.slider(
            "Concurrency",
            1,
            128,
            int(saved("concurrency", 16)),
            key="handai_concurrency",
            help="Rows in flight at once. Handai lowers it by itself when the provider rate-limits.",
        )
        max_retries = st.number_input("Retries per row", 0, 10, int(saved("max_retries", 3)), key="handai_max_retries")
    for name, value in (
        ("provider", provider),
        ("json_mode", json_mode),
        ("concurrency", concurrency),
        ("max_retries", int(max_retries)),
    ):
        remember(name, value)
    for pid, listed in local_servers().items():
        if listed.live and pid != provider:
            sb.caption(f":material/dns: {PROVIDERS[pid].name} is running with {len(listed.models)} models.")
    _active_runs(sb)
    return Choice(provider, model, temperature, max_tokens, json_mode, int(concurrency), int(max_retries))


def _optional_number(label: str, name: str, lo: float, hi: float, default: float, step: float) -> Any:
    current = saved(name, None)
    custom = st.checkbox(
        f"Set {label.lower()}",
        value=current is not None,
        key=f"handai_set_{name}",
        help="Off: the provider's default is used.",
    )
    if not custom:
        remember(name, None)
        st.caption(f"{label}: provider default")
        return None
    cast = float if isinstance(step, float) else int
    value = st.number_input(
        label,
        cast(lo),
        cast(hi),
        cast(current if current is not None else default),
        step=cast(step),
        key=f"handai_{name}",
    )
    remember(name, value)
    return value


ACTIVE_LINKS_EVERY_S = 2.0
PAGES = {"generate": "pages/generate.py", **{kind: tool.page for kind, tool in TOOLS.items()}}


def run_page(kind: str) -> str:
    """The page that starts and shows runs of this kind."""
    return PAGES.get(kind, "pages/transform.py")


def _active_runs(container: Any) -> None:
    """A link to each run in progress (this process's or another's), on the page of its kind;
    refreshed on its own, so a run that ends while the page draws does not stay listed."""
    with container:
        _active_run_links()


@st.fragment(run_every=ACTIVE_LINKS_EVERY_S)
def _active_run_links() -> None:
    for run in db().active_runs()[:3]:
        page = run_page(run.kind)
        st.page_link(
            page,
            label=f"Run #{run.id} in progress",
            icon=":material/progress_activity:",
            query_params={"run": str(run.id)},
        )
