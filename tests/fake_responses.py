"""The HTTP responses the fake LLM server sends: a completion, errors in OpenAI's shape, a wrong
key's error in each provider's own shape, and the failures the per-request markers ask for.

Pure builders of `aiohttp.web.Response`s: the server (tests/fake_llm_app.py) decides which one a
request gets; the Batch fakes (tests/fake_batches.py) reuse them for each line of a batch."""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

from aiohttp import web

from tests.fake_replies import digest, json_reply, picked, text_reply, tokens
from tests.fake_request_log import masked

AUTH_BODIES: dict[str, tuple[int, Any]] = {
    "openai": (
        401,
        {
            "error": {
                "message": "Incorrect API key provided: {masked}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        },
    ),
    "openrouter": (401, {"error": {"message": "No cookie auth credentials found", "code": 401}}),
    "anthropic": (
        401,
        {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}},
    ),
    "gemini": (
        400,
        [
            {
                "error": {
                    "code": 400,
                    "message": "API key not valid. Please pass a valid API key.",
                    "status": "INVALID_ARGUMENT",
                }
            }
        ],
    ),
    "groq": (
        401,
        {"error": {"message": "Invalid API Key", "type": "invalid_request_error", "code": "invalid_api_key"}},
    ),
    "azure": (
        401,
        {
            "error": {
                "code": "401",
                "message": "Access denied due to invalid subscription key or wrong API endpoint.",
            }
        },
    ),
}


class HasTransport(Protocol):
    """A request, or a batch line standing in for one (its transport None: nothing to drop)."""

    @property
    def transport(self) -> Any: ...


def error(status: int, message: str, code: str, kind: str = "invalid_request_error") -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status)


def auth_error(style: str, key: str) -> web.Response:
    """A wrong key's answer as the provider `style` words it (its status and body)."""
    status, body = AUTH_BODIES.get(style, AUTH_BODIES["openai"])
    text = json.dumps(body).replace("{masked}", masked(key))
    return web.Response(status=status, text=text, content_type="application/json")


def marker_failure(
    request: HasTransport, markers: dict[str, str | None], user: str, attempts: dict[str, int]
) -> web.Response | None:
    """The failure a marker asks for, or None; `attempts` counts [[flaky]] messages across calls."""
    if "flaky" in markers:
        seen = attempts.get(user, 0)
        attempts[user] = seen + 1
        if seen < int(markers["flaky"] or 1):
            return error(500, "The server had an error", "server_error", "server_error")
    if "error" in markers:
        return error(int(markers["error"] or 500), "Injected failure", "server_error", "server_error")
    if "html" in markers:
        page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
        return web.Response(status=502, text=page, content_type="text/html")
    if "quota" in markers:
        return error(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            "insufficient_quota",
        )
    if "context" in markers:
        return error(400, "This model's maximum context length is 8192 tokens.", "context_length_exceeded")
    if "overloaded" in markers:
        body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        return web.json_response(body, status=529)
    if "malformed" in markers:
        return web.Response(status=200, text="this is not json {", content_type="application/json")
    if "truncated" in markers:
        return web.Response(status=200, text='{"id": "x", "choices": [{"mes', content_type="application/json")
    if "reset" in markers and request.transport is not None:
        request.transport.close()
        return web.Response(status=200, text="")
    return None


def completion(
    body: dict[str, Any],
    model: str,
    system: str,
    user: str,
    markers: dict[str, str | None],
    *,
    answers: dict[str, str],
    reported_models: dict[str, str | None],
    headers: dict[str, str],
) -> web.Response:
    """A chat completion: the content the reply rules give (or a marker's, or `answers`' verbatim
    text for the model), with usage, and `model` as `reported_models` names it."""
    response_format = body.get("response_format")
    finish = "stop"
    if "empty" in markers:
        content: str | None = "  "
    elif "prose" in markers:
        content = f"Sure! Here is my answer ({digest(user)}), in words rather than JSON."
    elif "filtered" in markers:
        content, finish = None, "content_filter"
    elif model in answers:
        content = answers[model]
    elif response_format and response_format.get("type") in ("json_object", "json_schema"):
        content = json.dumps(json_reply(system, user, response_format, model), ensure_ascii=False)
    else:
        content = picked(model, user) or text_reply(model, user)
    message = {"role": "assistant", "content": content}
    choices = (
        [] if "nochoices" in markers else [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}]
    )
    prompt_tokens, completion_tokens = tokens(system + user), tokens(content or "")
    reported = reported_models.get(model, model)
    payload = {
        "id": f"chatcmpl-{digest(user)}",
        "object": "chat.completion",
        "created": int(time.time()),
        **({"model": reported} if reported is not None else {}),
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    return web.json_response(payload, headers=headers, dumps=json.dumps)
