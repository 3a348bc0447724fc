"""The one client factory: every completion in Handai goes through a client built here.

SDK retries are off because the engine owns retries (DESIGN decision 3), and the transport is the
SDK's aiohttp one with a pool sized to the run's concurrency (decision 4).
"""

from __future__ import annotations

from typing import Any

import httpx2
import openai

from handai_errors import RunStartError

from .keys import check_key_format
from .registry import Connection, get_provider

# Sent to servers that take no key, because the SDK refuses to build a client without one.
# It is never shown as a key: callers report `Connection.api_key`, which stays None.
NO_KEY_PLACEHOLDER = "not-needed"
# Spare connections beyond the run's concurrency, for requests still closing as new ones start.
CONNECTION_HEADROOM = 4
CONNECT_TIMEOUT = 10.0


class MissingKeyError(RunStartError):
    """No usable API key for a provider that needs one; the message says where to set it."""


class MissingEndpointError(RunStartError):
    """No base URL (Custom) or endpoint (Azure) to send requests to."""


class _AioHttpClient(openai.DefaultAioHttpClient):
    """The SDK's aiohttp client, with unreachable servers reported as connection errors.

    The SDK's vendored aiohttp transport maps every aiohttp.ClientConnectionError, refused and
    DNS failures included, to httpx2.ConnectTimeout, so a stopped Ollama would read as "took too
    long" (noted in the review of openai/openai-python#3594). Real timeouts pass unchanged.
    """

    async def send(self, request: httpx2.Request, **kwargs: Any) -> httpx2.Response:
        try:
            return await super().send(request, **kwargs)
        except httpx2.ConnectTimeout as exc:
            cause = exc.__cause__
            if cause is None or isinstance(cause, TimeoutError):
                raise
            error = httpx2.ConnectError if isinstance(cause, OSError) else httpx2.ReadError
            raise error(str(exc), request=request) from cause


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


def make_client(conn: Connection, *, concurrency: int = 16, timeout: float = 120.0) -> openai.AsyncOpenAI:
    """An async client for one run; close it (`await client.close()`) on the loop that used it."""
    config = get_provider(conn.provider)
    api_key = client_api_key(conn)
    url = client_base_url(conn)
    pool = max(concurrency, 1) + CONNECTION_HEADROOM
    request_timeout = httpx2.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT))
    http_client = _AioHttpClient(
        limits=httpx2.Limits(max_connections=pool, max_keepalive_connections=pool),
        timeout=request_timeout,
    )
    common: dict[str, Any] = {
        "api_key": api_key,
        "max_retries": 0,
        "timeout": request_timeout,
        "default_headers": dict(config.extra_headers) or None,
        "http_client": http_client,
    }
    if config.id == "azure":
        return openai.AsyncAzureOpenAI(
            azure_endpoint=url,
            api_version=conn.effective_api_version(),
            azure_deployment=conn.deployment or None,
            **common,
        )
    return openai.AsyncOpenAI(base_url=url, **common)
