"""Model lists: live from the server where the server is the truth, curated otherwise.

OpenRouter offers hundreds of models that change weekly, and a local server offers whatever the
user has loaded, so those lists come from `{base_url}/models`. These are light synchronous GETs
from the UI thread, so they use httpx (decision 4 keeps completions off it), with short timeouts
and a fallback that says why.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from .keys import clean_key
from .registry import Connection, ProviderConfig, get_provider

OPENROUTER_CACHE_SECONDS = 3600.0


@dataclass(frozen=True)
class ModelInfo:
    id: str
    context_length: int | None = None
    prompt_price: float | None = None  # USD per 1M tokens
    completion_price: float | None = None  # USD per 1M tokens


@dataclass(frozen=True)
class ModelList:
    models: list[ModelInfo]
    live: bool
    message: str | None = None
    status: int | None = None  # the HTTP status of a failed listing


# OpenRouter's list, per base URL: (monotonic time fetched, models).
_cache: dict[str, tuple[float, list[ModelInfo]]] = {}
_cache_lock = threading.Lock()


def _per_million(value: Any) -> float | None:
    """OpenRouter prices are USD-per-token strings; "-1" marks a variable price (e.g. its router)."""
    try:
        price = float(value)
    except (TypeError, ValueError):
        return None
    return round(price * 1_000_000, 6) if price >= 0 else None


def _parse(payload: Any) -> list[ModelInfo]:
    items = payload.get("data", []) if isinstance(payload, dict) else payload
    models: dict[str, ModelInfo] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        pricing = item.get("pricing") if isinstance(item.get("pricing"), dict) else {}
        context = item.get("context_length")
        models.setdefault(
            item["id"],
            ModelInfo(
                id=item["id"],
                context_length=context if isinstance(context, int) else None,
                prompt_price=_per_million(pricing.get("prompt")),
                completion_price=_per_million(pricing.get("completion")),
            ),
        )
    return list(models.values())


def _fetch(conn: Connection, config: ProviderConfig, url: str, timeout: float) -> list[ModelInfo]:
    headers = dict(config.extra_headers)
    key, _ = clean_key(conn.api_key)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    with httpx.Client(timeout=timeout, headers=headers) as client:
        response = client.get(f"{url}/models")
        response.raise_for_status()
        return _parse(response.json())


def _server_root(url: str) -> str:
    return url.removesuffix("/v1")


def _failure_message(config: ProviderConfig, url: str, exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        status = exc.response.status_code
        if status in (401, 403):
            return f"{config.name} did not accept the API key when listing models; showing the built-in list."
        return f"{config.name} answered {status} when listing models; showing the built-in list."
    if isinstance(exc, httpx.TransportError):
        if config.local:
            return f"{config.name} is not answering at {_server_root(url)} — is it started?"
        if config.id == "custom":
            return f"Nothing is answering at {url} — check the address and that the server is running."
        return f"Could not reach {config.name} to list models; showing the built-in list."
    return f"{config.name} sent a model list Handai could not read; showing the built-in list."


def list_models(conn: Connection, *, refresh: bool = False, timeout: float = 5.0) -> ModelList:
    """The models to offer for this connection. Never raises for network or server trouble."""
    config = get_provider(conn.provider)
    curated = [ModelInfo(model) for model in config.models]
    if not config.live_models:
        return ModelList(curated, live=False)
    url = conn.effective_base_url()
    if not url:
        return ModelList(curated, live=False, message="Enter the server's base URL to list its models.")
    cached = config.id == "openrouter"
    if cached and not refresh:
        with _cache_lock:
            hit = _cache.get(url)
        if hit is not None and time.monotonic() - hit[0] < OPENROUTER_CACHE_SECONDS:
            return ModelList(list(hit[1]), live=True)
    try:
        models = _fetch(conn, config, url, timeout)
    except (httpx.HTTPError, ValueError) as exc:  # ValueError: a body that is not JSON
        status = exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else None
        return ModelList(curated, live=False, message=_failure_message(config, url, exc), status=status)
    if cached:
        with _cache_lock:
            _cache[url] = (time.monotonic(), list(models))
    if not models:
        return ModelList(models, live=True, message=f"{config.name} lists no models; load one first.")
    return ModelList(models, live=True)


def local_servers_status(timeout: float = 1.0) -> dict[str, ModelList]:
    """Probe LM Studio and Ollama at their default addresses at once, for start-up detection."""
    local = ("lmstudio", "ollama")
    with ThreadPoolExecutor(len(local)) as pool:
        lists = pool.map(lambda pid: list_models(Connection(pid), timeout=timeout), local)
        return dict(zip(local, lists, strict=True))


def cached_model_info(model: str) -> ModelInfo | None:
    """A model's entry in any OpenRouter list fetched in this process (for prices), or None."""
    with _cache_lock:
        lists = [models for _, models in _cache.values()]
    return next((m for models in lists for m in models if m.id == model), None)
