"""Models for a multi-model run, picked as provider + model per row from the lists the sidebar
shows; each provider's key and base URL come from the sidebar or Settings (`connections`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import streamlit as st

from handai_errors import RunStartError
from providers import PROVIDERS, Connection, check_connection

from .connections import connections
from .sidebar import model_options, provider_name
from .state import saved

Model = tuple[str, str]


def model_row(key: str, *, index: int = 0, label: str = "Model") -> Model:
    """One provider and model, side by side; the model list is the provider's (type any other
    name). A new row starts on the sidebar's provider and its `index`-th listed model; a value
    put in the session state first (a loaded spec) is kept."""
    ids = list(PROVIDERS)
    provider_key = f"{key}_provider"
    if provider_key not in st.session_state:
        sidebar_provider = saved("provider", "openai")
        st.session_state[provider_key] = sidebar_provider if sidebar_provider in ids else ids[0]
    c = st.columns([2, 3], vertical_alignment="bottom")
    provider = c[0].selectbox(f"{label} provider", ids, format_func=provider_name, key=provider_key)
    model_key = f"{key}_model_{provider}"
    models, _ = model_options(provider)
    extra = [m for m in (saved(f"model.{provider}", None), st.session_state.get(model_key)) if m]
    options = list(dict.fromkeys([*models, *extra]))
    if model_key not in st.session_state and options:
        st.session_state[model_key] = options[min(index, len(options) - 1)]
    model = c[1].selectbox(label, options, key=model_key, accept_new_options=True, placeholder="type a model name")
    return provider, (model or "").strip()


def row_keys(key: str) -> tuple[str, ...]:
    """The widget keys `model_row` may draw, for `handai_ui.keep` / `kept`."""
    return (f"{key}_provider", *(f"{key}_model_{p}" for p in PROVIDERS))


def picker_keys(prefix: str, high: int) -> tuple[str, ...]:
    """The widget keys `model_picker` may draw."""
    return (f"{prefix}_count", *(k for i in range(high) for k in row_keys(f"{prefix}_{i}")))


def model_picker(prefix: str, *, low: int, high: int, start: int = 2, label: str = "Model") -> list[Model]:
    """`low` to `high` models, one row each; rows without a model name are left out."""
    count = int(
        st.number_input(
            f"Number of {label.lower()}s", low, high, start, key=f"{prefix}_count", help=f"{low} to {high}."
        )
    )
    picked = [model_row(f"{prefix}_{i}", index=i, label=f"{label} {i + 1}") for i in range(count)]
    return [(p, m) for p, m in picked if m]


def endpoints_for(models: Iterable[Model]) -> dict[str, dict[str, Any]]:
    """The endpoint each model's provider will be sent to, recorded in the plan (so a resume goes
    where the run went, whatever the sidebar says by then)."""
    return endpoints(connections(p for p, _ in models))


def connection_problem(models: Iterable[Model]) -> str | None:
    """Why a run on these models could not start (a key or base URL missing), said before the
    button is pressed; the engine checks again when the run is written."""
    for provider, conn in connections(p for p, _ in models).items():
        try:
            check_connection(conn)
        except RunStartError as exc:
            return f"{provider_name(provider)}: {exc}"
    return None


def endpoints(conns: dict[str, Connection]) -> dict[str, dict[str, Any]]:
    """Each provider's endpoint as the run records it (never the key)."""
    return {p: c.endpoint() for p, c in conns.items()}
