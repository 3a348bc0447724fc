"""Anthropic's Message Batches in the shapes the rest of batch mode speaks: a cell's chat body as
a batch request (`custom_id` + Messages `params`), a result line as an OpenAI batch output line,
a batch's state in OpenAI's words. Pure functions, no I/O.

The body converted is exactly the one a real-time call sends (StepRequest builds it): system
messages become `system`, the user and assistant turns (few-shot examples, then the row) stay
`messages`, `max_tokens` is the run's (Anthropic requires one; `DEFAULT_MAX_TOKENS` otherwise),
`temperature`, `top_p`, `top_k` pass, `stop` becomes `stop_sequences`. A JSON `response_format`
has no equivalent in the Messages API, and Anthropic's OpenAI-compatible endpoint ignores it
too: the instruction's own request for JSON stays in the system prompt and the normal parse path
reads the reply, exactly as for a real-time Anthropic call. Other OpenAI-only settings are not
sent (the Messages API rejects unknown fields).
"""

from __future__ import annotations

import json
import re
from typing import Any

from .limits import BATCH_CANCELLED, BATCH_COMPLETED, BATCH_EXPIRED, DEFAULT_MAX_TOKENS

ANSWERED = "succeeded"  # an Anthropic result line's type when the request was answered
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # Anthropic's rule for a request's custom_id
PASSED = ("temperature", "top_p", "top_k")
SYSTEM_ROLES = frozenset({"system", "developer"})
# The HTTP status a real-time call answers with each error type (docs.anthropic.com "Errors").
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}
FINISH_REFUSAL = "content_filter"
EXPIRED_MESSAGE = "This request could not be processed before the batch expired (24 h)."


def messages_params(body: dict[str, Any]) -> dict[str, Any]:
    """A chat completion body as Messages API params (see the module docstring for the mapping)."""
    chat = body.get("messages") or []
    system = "\n\n".join(str(m.get("content") or "") for m in chat if m.get("role") in SYSTEM_ROLES)
    turns = [{"role": m["role"], "content": m.get("content")} for m in chat if m.get("role") not in SYSTEM_ROLES]
    params: dict[str, Any] = {
        "model": body["model"],
        "max_tokens": body.get("max_tokens") or body.get("max_completion_tokens") or DEFAULT_MAX_TOKENS,
        "messages": turns,
    }
    if system:
        params["system"] = system
    params.update({key: body[key] for key in PASSED if body.get(key) is not None})
    stop = body.get("stop")
    if stop:
        params["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    return params


def request_line(result_id: int, body: dict[str, Any]) -> bytes:
    """One request of a batch, as a JSON line (its size counts against the 256 MB limit)."""
    custom_id = str(result_id)
    if not CUSTOM_ID.match(custom_id):
        raise ValueError(f"custom_id {custom_id!r} does not match {CUSTOM_ID.pattern}")
    request = {"custom_id": custom_id, "params": messages_params(body)}
    return json.dumps(request, ensure_ascii=False).encode() + b"\n"


def batch_state(processing_status: str, counts: dict[str, int], cancel_initiated: bool) -> str:
    """OpenAI's state word for an Anthropic batch (in_progress, canceling, ended)."""
    if processing_status == "in_progress":
        return "in_progress"
    if processing_status == "canceling":
        return "cancelling"
    if cancel_initiated:
        return BATCH_CANCELLED
    if counts.get("expired"):
        return BATCH_EXPIRED
    return BATCH_COMPLETED


def output_line(line: dict[str, Any]) -> dict[str, Any] | None:
    """A result line as an OpenAI batch output line; None for a canceled request (never sent:
    its cell stays pending, to go again)."""
    custom_id = line.get("custom_id")
    result = line.get("result") or {}
    kind = result.get("type")
    if kind == ANSWERED:
        return {"custom_id": custom_id, "response": {"status_code": 200, "body": completion(result["message"])}}
    if kind == "errored":
        error = result.get("error") or {}
        status = ERROR_STATUS.get((error.get("error") or {}).get("type"), 500)
        return {"custom_id": custom_id, "response": {"status_code": status, "body": error}}
    if kind == "expired":
        expired = {"code": "batch_expired", "message": EXPIRED_MESSAGE}
        return {"custom_id": custom_id, "response": None, "error": expired}
    return None


def completion(message: dict[str, Any]) -> dict[str, Any]:
    """A Messages API reply as the chat completion the real-time path parses: its text blocks
    joined, its usage as prompt and completion tokens, its model."""
    text = "".join(b.get("text") or "" for b in message.get("content") or [] if b.get("type") == "text")
    reason = message.get("stop_reason")
    usage = message.get("usage") or {}
    tokens_in, tokens_out = usage.get("input_tokens") or 0, usage.get("output_tokens") or 0
    return {
        "id": message.get("id"),
        "object": "chat.completion",
        "model": message.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": FINISH_REFUSAL if reason == "refusal" else FINISH.get(reason or "", "stop"),
            }
        ],
        "usage": {"prompt_tokens": tokens_in, "completion_tokens": tokens_out, "total_tokens": tokens_in + tokens_out},
    }
