"""The one chat call. Every completion in Handai (runs and the connection test) is sent here.

A `ChatSender` is built once per model and connection from that provider's `AsyncOpenAI` client:
the client decides the URL (Azure's deployment path and api-version included), the headers (its
auth and the provider's extra headers) and the error classes (a 429 is the SDK's RateLimitError,
with its headers). The call itself posts the pre-built body with aiohttp and reads the raw reply.
Measured here (benchmarks/, concurrency 256, 100 ms latency, client pinned to one core): going
through the client's own low-level `post` with a raw response costs ~1.1 ms of CPU per call and
reaches 43 % of a hand-written aiohttp loop; the same request posted directly costs ~0.44 ms and
reaches ~89 % (DESIGN decision 10: the benchmark decides).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit
from urllib.request import getproxies, proxy_bypass

import aiohttp
import httpx2
import openai

from handai_errors import ErrorKind, ReplyError

# Spare sockets beyond the run's concurrency, for requests still closing as new ones start.
SOCKET_HEADROOM = 4
CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class ChatReply:
    """A reply that arrived, and so was billed: its text, or the reason it holds none."""

    text: str | None
    tokens_in: int
    tokens_out: int
    model: str | None  # the model id the provider says answered
    problem: ReplyError | None = None


def chat_body(model: str, messages: list[dict[str, str]], params: dict[str, Any]) -> dict[str, Any]:
    """The request body: exactly what is sent."""
    return {"model": model, "messages": messages, **params}


def chat_endpoint(client: openai.AsyncOpenAI, model: str) -> tuple[str, dict[str, str]]:
    """The URL and headers the client would send a chat completion for `model` with, read from
    its public settings (an Azure client without a deployment routes by the model, as the SDK does)."""
    base = str(client.base_url).rstrip("/")
    if isinstance(client, openai.AsyncAzureOpenAI) and "/deployments/" not in f"{base}/":
        base += f"/deployments/{quote(model, safe='')}"
    query = {k: str(v) for k, v in client.default_query.items() if isinstance(v, str | int | float)}
    url = f"{base}/chat/completions" + (f"?{urlencode(query)}" if query else "")
    headers = {k: v for k, v in {**client.default_headers, **client.auth_headers}.items() if isinstance(v, str)}
    return url, headers


class ChatSender:
    """Chat calls for one model through one HTTP session; open it on the loop that sends, close it there."""

    def __init__(self, client: openai.AsyncOpenAI, model: str, *, concurrency: int = 16, timeout: float = 120.0):
        self.client = client
        self.url, self.headers = chat_endpoint(client, model)
        self.sockets = max(concurrency, 1) + SOCKET_HEADROOM
        self.timeout = aiohttp.ClientTimeout(total=None, sock_connect=min(timeout, CONNECT_TIMEOUT), sock_read=timeout)
        self._request = httpx2.Request("POST", self.url)  # what the SDK's errors carry
        self.proxy = env_proxy(self.url)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, body: dict[str, Any]) -> ChatReply:
        """POST the body. Raises the SDK's errors for HTTP failures (APIStatusError by status,
        APITimeoutError, APIConnectionError), JSONDecodeError for a body that is not JSON, and
        ReplyError for JSON that is not a completion."""
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.sockets)
            # trust_env would look up ~/.netrc in a thread on every request: the proxy is read once instead
            self._session = aiohttp.ClientSession(connector=connector, timeout=self.timeout)
        data = json.dumps(body, ensure_ascii=False).encode()
        try:
            async with self._session.post(self.url, data=data, headers=self.headers, proxy=self.proxy) as response:
                content = await response.read()
                if response.status >= 400:
                    raise self._status_error(response.status, response.raw_headers, content)
        except TimeoutError as exc:
            raise openai.APITimeoutError(request=self._request) from exc
        except aiohttp.ClientError as exc:
            raise openai.APIConnectionError(message=str(exc) or type(exc).__name__, request=self._request) from exc
        return parse_completion(content)

    def _status_error(self, status: int, headers: Any, content: bytes) -> openai.APIStatusError:
        response = httpx2.Response(status, headers=list(headers), content=content, request=self._request)
        return self.client._make_status_error_from_response(response)  # the SDK's class for the status

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self.client.close()


def env_proxy(url: str) -> str | None:
    """The proxy the environment sets for this URL (HTTPS_PROXY, NO_PROXY…), as the SDK's own
    transport would use it."""
    parts = urlsplit(url)
    if not parts.hostname or proxy_bypass(parts.hostname):
        return None
    return getproxies().get(parts.scheme)


def parse_completion(content: bytes) -> ChatReply:
    data = json.loads(content)
    if not isinstance(data, dict):
        text = content.decode(errors="replace")[:2000]
        raise ReplyError(ErrorKind.UNPARSEABLE, "The provider's reply was not a JSON object", raw=text)
    usage = data.get("usage") or {}
    tokens = (_count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens")))
    model = data.get("model") if isinstance(data.get("model"), str) else None
    choices = data.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        problem = ReplyError(ErrorKind.EMPTY_REPLY, "The provider returned no choices")
        return ChatReply(None, *tokens, model, problem)
    choice = choices[0]
    content_text = (choice.get("message") or {}).get("content")
    if choice.get("finish_reason") == "content_filter" and not content_text:
        problem = ReplyError(ErrorKind.CONTENT_FILTERED, "The provider's content filter blocked the reply")
        return ChatReply(None, *tokens, model, problem)
    if content_text is not None and not isinstance(content_text, str):
        content_text = json.dumps(content_text, ensure_ascii=False)
    return ChatReply(content_text, *tokens, model)


def _count(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0
