"""The one client factory: every completion in Handai is sent for a client built here (its URL,
headers and error classes; `chat.ChatSender` posts the bytes). SDK retries are off because the
engine owns retries (DESIGN decision 3).
"""

from __future__ import annotations

from typing import Any

import httpx2
import openai

from handai_errors import RunStartError

from .chat import ChatSender
from .keys import check_key_format
from .registry import Connection, get_provider

# Sent to servers that take no key, because the SDK refuses to build a client without one.
# It is never shown as a key: callers report `Connection.api_key`, which stays None.
NO_KEY_PLACEHOLDER = "not-needed"
CONNECT_TIMEOUT = 10.0


class MissingKeyError(RunStartError):
    """No usable API key for a provider that needs one; the message says where to set it."""


class MissingEndpointError(RunStartError):
    """No base URL (Custom) or endpoint (Azure) to send requests to."""


def client_api_key(conn: Connection) -> str:
    """The cleaned key to send, or the placeholder for servers that need none."""
    check = check_key_format(conn.provider, conn.api_key)
    if check.level == "error":
        raise MissingKeyError(check.message)
    return check.key or NO_KEY_PLACEHOLDER


def client_base_url(conn: Connection) -> str:
    """Where requests go (Azure: the resource endpoint); Custom and Azure have no default."""
    url = conn.effective_base_url()
    if not url:
        config = get_provider(conn.provider)
        where = f"Set {config.endpoint_env} or enter it" if config.endpoint_env else "Enter it"
        raise MissingEndpointError(f"No base URL for {config.name}. {where} in Settings.")
    return url


def check_connection(conn: Connection) -> None:
    """Raise MissingKeyError / MissingEndpointError (RunStartError) when no call could be sent:
    checked before a run is written, so none is left behind that could never start."""
    client_api_key(conn)
    client_base_url(conn)


def make_client(conn: Connection, *, timeout: float = 120.0) -> openai.AsyncOpenAI:
    """An async client for one connection; close it (`await client.close()`) on the loop that used it."""
    config = get_provider(conn.provider)
    api_key = client_api_key(conn)
    url = client_base_url(conn)
    request_timeout = httpx2.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT))
    common: dict[str, Any] = {
        "api_key": api_key,
        "max_retries": 0,
        "timeout": request_timeout,
        "default_headers": dict(config.extra_headers) or None,
    }
    if config.id == "azure":
        return openai.AsyncAzureOpenAI(
            azure_endpoint=url,
            api_version=conn.effective_api_version(),
            azure_deployment=conn.deployment or None,
            **common,
        )
    return openai.AsyncOpenAI(base_url=url, **common)


def chat_sender(conn: Connection, model: str, *, concurrency: int = 16, timeout: float = 120.0) -> ChatSender:
    """The chat call for one model on one connection, with a socket pool sized to `concurrency`."""
    return ChatSender(make_client(conn, timeout=timeout), model, concurrency=concurrency, timeout=timeout)
