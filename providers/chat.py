"""The one chat call. Every completion in Handai (runs and the connection test) is sent here.

The body is built once by the caller (model, messages and the recorded parameters) and posted
through the `AsyncOpenAI` client's low-level `post` with a raw response: the client keeps its
transport, auth, Azure deployment routing and error classes, but skips the typed layer that
turns dicts into models and back, which was most of the client's CPU per call (DESIGN decision 10,
measured in benchmarks/).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx2
import openai

from handai_errors import ErrorKind, ReplyError


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


async def send_chat(client: openai.AsyncOpenAI, body: dict[str, Any]) -> ChatReply:
    """POST /chat/completions. Raises the SDK's errors for HTTP failures, JSONDecodeError for a
    body that is not JSON, and ReplyError for JSON that is not a completion."""
    response = await client.post("/chat/completions", body=body, cast_to=httpx2.Response)
    data = json.loads(response.content)
    if not isinstance(data, dict):
        raise ReplyError(ErrorKind.UNPARSEABLE, "The provider's reply was not a JSON object", raw=response.text[:2000])
    usage = data.get("usage") or {}
    tokens = (_count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens")))
    model = data.get("model") if isinstance(data.get("model"), str) else None
    choices = data.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        problem = ReplyError(ErrorKind.EMPTY_REPLY, "The provider returned no choices")
        return ChatReply(None, *tokens, model, problem)
    choice = choices[0]
    content = (choice.get("message") or {}).get("content")
    if choice.get("finish_reason") == "content_filter" and not content:
        problem = ReplyError(ErrorKind.CONTENT_FILTERED, "The provider's content filter blocked the reply")
        return ChatReply(None, *tokens, model, problem)
    text = content if content is None or isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    return ChatReply(text, *tokens, model)


def _count(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0
