"""The "Test connection" button: one real, cheapest-possible request, reported in words.

Listing models proves little (OpenRouter lists models without a key), so the test sends a
one-token chat completion through the same client factory a run uses: if this works, the run's
requests will reach the provider with the same key, URL and headers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from handai_errors import KINDS, ClassifiedError, ErrorKind

from .capabilities import request_params
from .chat import chat_body
from .client import MissingEndpointError, MissingKeyError, chat_sender, client_base_url
from .errors import describe_error
from .keys import check_key_format
from .models import list_models
from .registry import PROVIDERS, Connection, ProviderConfig

T = TypeVar("T")
PING_MESSAGES = [{"role": "user", "content": "ping"}]


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    latency_ms: float | None
    model: str | None
    message: str
    error: ClassifiedError | None  # None when it succeeded, or when no request could be sent


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code, even if this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _ping(conn: Connection, model: str, timeout: float) -> float:
    """Milliseconds for one one-token completion."""
    sender = chat_sender(conn, model, concurrency=1, timeout=timeout)
    try:
        params = request_params(conn.provider, model, max_tokens=1)
        start = time.perf_counter()
        await sender.send(chat_body(model, PING_MESSAGES, params))  # any reply means connected
        return (time.perf_counter() - start) * 1000
    finally:
        await sender.close()


def _model_to_test(
    conn: Connection, config: ProviderConfig, timeout: float
) -> tuple[str | None, str, ClassifiedError | None]:
    """(model, why none, the error behind it): the deployment or default model; for local and
    custom servers, one they list. A rejected key on the model list is the key's error, so the
    page can say "key rejected (401)"."""
    if conn.provider == "azure" and conn.deployment:
        return conn.deployment, "", None
    if config.default_model and not (config.local or config.id == "custom"):
        return config.default_model, "", None
    listed = list_models(conn, timeout=min(timeout, 5.0))
    ids = [info.id for info in listed.models]
    if config.default_model in ids:
        return config.default_model, "", None
    if ids:
        return ids[0], "", None
    if listed.status in (401, 403):
        info = KINDS[ErrorKind.INVALID_KEY]
        error = ClassifiedError(ErrorKind.INVALID_KEY, info.title, info.action, False, status=listed.status)
        return None, f"{config.name} did not accept the key (HTTP {listed.status}). {info.action}", error
    return None, listed.message or f"{config.name} offers no model to test; choose one first.", None


def test_connection(conn: Connection, model: str | None = None, *, timeout: float = 20.0) -> ProbeResult:
    """Send one tiny request and say what happened. Never raises; never shows the key."""
    config = PROVIDERS.get(conn.provider)
    if config is None:
        return ProbeResult(False, None, model, f"Unknown provider {conn.provider!r}.", None)
    check = check_key_format(conn.provider, conn.api_key)
    if check.level == "error":
        return ProbeResult(False, None, model, check.message, None)
    hint = f" {check.message}" if check.level == "warning" else ""
    try:
        client_base_url(conn)  # a missing URL is said plainly, not as a failed model list
        if not model:
            model, why, error = _model_to_test(conn, config, timeout)
            if not model:
                return ProbeResult(False, None, None, why, error)
        latency = _run_sync(_ping(conn, model, timeout))
    except (MissingKeyError, MissingEndpointError) as exc:
        return ProbeResult(False, None, model, str(exc), None)
    except Exception as exc:  # every failure becomes a message; classify masks the key
        error = describe_error(exc, conn, key=check.key or "")
        message = error.user_text()
        if hint and check.message not in message:
            message += hint
        return ProbeResult(False, None, model, message, error)
    message = f"Connected to {config.name} in {latency:.0f} ms ({model}).{hint}"
    return ProbeResult(True, latency, model, message, None)


test_connection.__test__ = False  # type: ignore[attr-defined]  # named test_*, but not a pytest test
