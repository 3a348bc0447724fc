"""Keys and endpoints: where a provider's key comes from, the key and endpoint boxes shared by the
sidebar and Settings, and the `Connection` a run is sent over."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import streamlit as st

from handai_db import Database, Run
from handai_engine.runner import Connections
from handai_errors import mask_key
from providers import (
    PROVIDERS,
    Connection,
    KeyStore,
    ResolvedKey,
    check_key_format,
    local_servers_status,
    resolve_endpoint,
    resolve_key,
    test_connection,
)

from .services import db
from .state import remember, saved
from .text import md


def secrets() -> Mapping[str, Any]:
    """st.secrets, or nothing when there is no secrets file (st.secrets raises then)."""
    try:
        return dict(st.secrets)
    except Exception:  # no secrets.toml, or an unreadable one: both mean "no keys from there"
        return {}


def typed_keys() -> dict[str, str]:
    """Keys typed in this browser session, per provider (never stored anywhere else)."""
    return st.session_state.setdefault("handai_keys", {})


def key_for(provider: str) -> ResolvedKey:
    return resolve_key(provider, typed=typed_keys(), secrets=secrets(), store=KeyStore())


def connection(provider: str) -> Connection:
    """The connection for a provider from the sidebar's/Settings' fields and the key sources."""
    return saved_connection(db(), provider, key_for(provider).key)


def saved_connection(database: Database, provider: str, key: str | None) -> Connection:
    """A provider's connection at the endpoint saved in Settings (Azure: else the secrets' one),
    with `key`: the sidebar's connection and the one the app re-attaches batches with at start-up
    read the same saved fields."""
    base_url = database.get_setting(f"ui.base_url.{provider}", None)
    azure = provider == "azure"
    if azure:
        base_url = base_url or resolve_endpoint("azure", secrets=secrets())
    return Connection(
        provider,
        api_key=key,
        base_url=base_url or None,
        api_version=database.get_setting("ui.azure.api_version", None) if azure else None,
        deployment=database.get_setting("ui.azure.deployment", None) if azure else None,
    )


def run_connection(run: Run) -> Connections:
    """The connection a recorded run was made with (its endpoint), with today's key; for a run of
    several models, one per provider (each arm's recorded endpoint is applied by the engine)."""
    if run.plan:
        return connections([arm["provider"] for arm in run.plan["arms"]])
    return Connection(run.provider, api_key=key_for(run.provider).key).at(run.connection)


def connections(providers: Iterable[str]) -> dict[str, Connection]:
    """A connection per provider, from the sidebar's/Settings' fields and the key sources."""
    return {p: connection(p) for p in dict.fromkeys(providers)}


@st.cache_data(ttl=30, show_spinner=False)
def local_servers() -> dict[str, Any]:
    """LM Studio and Ollama, probed at start-up and every 30 s at most."""
    return local_servers_status()


def test_provider(conn: Connection):
    """The cheapest real call, with the model chosen for this provider in the sidebar."""
    return test_connection(conn, saved(f"model.{conn.provider}", None) or None)


def synced_text(
    container: Any, label: str, widget_key: str, current: str, on_set: Callable[[str], None], **kwargs: Any
) -> str:
    """A text input bound to a store outside the widget, so the same value can be edited from the
    sidebar and the Settings page and both always show it."""
    st.session_state[widget_key] = current

    def changed() -> None:
        on_set(st.session_state[widget_key])

    return container.text_input(label, key=widget_key, on_change=changed, **kwargs)


def base_url_box(provider: str, container: Any, prefix: str) -> str:
    config = PROVIDERS[provider]
    current = saved(f"base_url.{provider}", None) or ""
    if provider == "azure":
        label, hint = "Endpoint", "https://your-resource.openai.azure.com"
    else:
        label, hint = "Base URL", config.base_url or "http://localhost:8000/v1"
    return synced_text(
        container,
        label,
        f"{prefix}_base_url_{provider}",
        current,
        lambda v: remember(f"base_url.{provider}", v.strip() or None),
        placeholder=hint,
    )


def _set_typed_key(provider: str, value: str) -> None:
    if value.strip():
        typed_keys()[provider] = value


def key_box(provider: str, container: Any, prefix: str) -> None:
    """Key field with the format check as the user types; the key stays in this session only."""
    config = PROVIDERS[provider]
    if not config.needs_key and provider != "custom":
        container.caption(f"{config.name} runs locally: no key needed.")
        return
    resolved = key_for(provider)
    if resolved.key:
        placeholder = f"{mask_key(resolved.key)} ({resolved.label}); type to replace"
    else:
        placeholder = config.key_prefixes[0] + "…" if config.key_prefixes else "optional"
    # Write-only: a committed key moves to this session's memory and the box empties, so the key
    # is never part of the page (a password box still carries its value in the HTML).
    synced_text(
        container,
        f"{config.name} API key",
        f"{prefix}_key_{provider}",
        "",
        lambda v: _set_typed_key(provider, v),
        type="password",
        placeholder=placeholder,
    )
    if resolved.source == "session" and container.button(
        "Forget the typed key", icon=":material/backspace:", key=f"{prefix}_forget_{provider}", type="tertiary"
    ):
        typed_keys().pop(provider, None)
        st.rerun()
    key = key_for(provider)
    check = check_key_format(provider, key.key)
    if key.key and check.cleaned and key.source == "session":
        container.info(md(" ".join(check.cleaned)), icon=":material/cleaning_services:")
    if check.level == "warning":
        container.warning(md(check.message), icon=":material/warning:")
    elif check.level == "error" and config.needs_key:
        link = f" Get one at {config.key_url}" if config.key_url else ""
        container.caption(f":material/key_off: {md(check.message + link)}")
    elif key.key:
        container.caption(f":material/key: {md(mask_key(key.key))} ({key.label})")
