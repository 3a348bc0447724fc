"""Every failure Handai can meet, classified into a kind that says what happened, what to do, and
whether trying again can help.

Classification looks at the SDK's exception class, the HTTP status and the provider's own error
code or type first, and at the message text only as a last resort::

    Exception
    ├── openai.APIStatusError (HTTP status)
    │   ├── 401 ............................................ invalid_key
    │   ├── 403 ............................................ permission
    │   ├── 402 / 429 + insufficient_quota ................... quota
    │   ├── 429 ............................................ rate_limited (Retry-After)
    │   ├── 404 + model in message/code ...................... model_not_found
    │   ├── 400 + context_length_exceeded .................... context_too_long
    │   ├── 400 + content_filter / content policy ............ content_filtered
    │   ├── 400 + bad key text (Gemini) ...................... invalid_key
    │   ├── 400 / 404 / 409 / 413 / 422 ...................... bad_request
    │   ├── 408 ............................................ timeout
    │   ├── 503 / 529 / overloaded_error ..................... overloaded
    │   └── 5xx ............................................ server_error
    ├── openai.APITimeoutError / TimeoutError ................ timeout
    ├── openai.APIConnectionError / OSError .................. connection (DNS, TLS, refused, reset)
    ├── openai.APIResponseValidationError / JSONDecodeError ... bad_response (body not JSON)
    ├── ReplyError (raised by Handai itself) ................. empty_reply, unparseable (the
    │                                                          model's text is not the format asked),
    │                                                          content_filtered
    └── asyncio.CancelledError ............................... cancelled
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import openai


class ErrorKind(StrEnum):
    INVALID_KEY = "invalid_key"
    PERMISSION = "permission"
    QUOTA = "quota"
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    NETWORK = "connection"  # the stored value stays: ledgers written before keep reading
    MODEL_NOT_FOUND = "model_not_found"
    CONTEXT_TOO_LONG = "context_too_long"
    CONTENT_FILTERED = "content_filtered"
    BAD_REQUEST = "bad_request"
    SERVER_ERROR = "server_error"
    OVERLOADED = "overloaded"
    BAD_RESPONSE = "bad_response"
    EMPTY_REPLY = "empty_reply"
    UNPARSEABLE = "unparseable"
    CANCELLED = "cancelled"
    UPSTREAM_FAILED = "upstream_failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class KindInfo:
    title: str
    action: str
    retryable: bool


KINDS: dict[ErrorKind, KindInfo] = {
    ErrorKind.INVALID_KEY: KindInfo(
        "The provider did not accept the API key",
        "Check the key in Settings: copy it again from the provider's key page, for this provider.",
        False,
    ),
    ErrorKind.PERMISSION: KindInfo(
        "The key is valid but not allowed to do this",
        "Check the key's project, organisation or region permissions, or use another model.",
        False,
    ),
    ErrorKind.QUOTA: KindInfo(
        "The account has run out of credit or quota",
        "Add credit or raise the spending limit on the provider's billing page, then resume the run.",
        False,
    ),
    ErrorKind.RATE_LIMITED: KindInfo(
        "The provider is limiting the request rate",
        "Handai slows down and retries by itself; lower the concurrency if this persists.",
        True,
    ),
    ErrorKind.TIMEOUT: KindInfo(
        "The provider took too long to answer",
        "Retried automatically; if it persists, raise the timeout or use a faster model.",
        True,
    ),
    ErrorKind.NETWORK: KindInfo(
        "Could not reach the provider",
        "Check the base URL, your network, and that a local server (LM Studio, Ollama) is started.",
        True,
    ),
    ErrorKind.MODEL_NOT_FOUND: KindInfo(
        "The provider does not know this model",
        "Pick a model from the provider's list, or check the spelling of the model name.",
        False,
    ),
    ErrorKind.CONTEXT_TOO_LONG: KindInfo(
        "The row is too long for the model's context window",
        "Send fewer columns, shorten the instruction, or choose a model with a longer context.",
        False,
    ),
    ErrorKind.CONTENT_FILTERED: KindInfo(
        "The provider's content filter blocked this row",
        "Review the row's content or try another model; the other rows are unaffected.",
        False,
    ),
    ErrorKind.BAD_REQUEST: KindInfo(
        "The provider rejected the request",
        "Check the model's parameters (temperature, max tokens, JSON mode) for this provider.",
        False,
    ),
    ErrorKind.SERVER_ERROR: KindInfo(
        "The provider had an internal error",
        "Retried automatically; retry the failed rows later if it persists.",
        True,
    ),
    ErrorKind.OVERLOADED: KindInfo(
        "The provider is overloaded",
        "Retried automatically; lower the concurrency or retry the failed rows later.",
        True,
    ),
    ErrorKind.BAD_RESPONSE: KindInfo(
        "The provider sent a broken response (not valid JSON)",
        "Retried automatically; if it persists, check that the base URL is an OpenAI-compatible API (…/v1).",
        True,
    ),
    ErrorKind.EMPTY_REPLY: KindInfo(
        "The model returned an empty reply",
        "Retried automatically; if it persists, raise max tokens or rephrase the instruction.",
        True,
    ),
    ErrorKind.UNPARSEABLE: KindInfo(
        "The reply could not be read as the expected output",
        "The raw reply is kept; make the instruction ask for the exact format, or turn on JSON mode.",
        False,
    ),
    ErrorKind.CANCELLED: KindInfo("The request was cancelled", "Resume the run to process the remaining rows.", False),
    ErrorKind.UPSTREAM_FAILED: KindInfo(
        "Not sent: a step this one needs failed for the row",
        "Retry the failed rows: the earlier step is sent again first, then this one.",
        False,
    ),
    ErrorKind.UNKNOWN: KindInfo(
        "Something unexpected went wrong",
        "Retry the failed rows; if it persists, see the run's log for details.",
        False,
    ),
}


@dataclass(frozen=True)
class ClassifiedError:
    kind: ErrorKind
    message: str
    action: str
    retryable: bool
    status: int | None = None
    retry_after: float | None = None
    detail: str = ""

    def user_text(self) -> str:
        """One line for a person: what happened, then what to do."""
        return f"{self.message}. {self.action}"


class TemplateError(ValueError):
    """A `{column}` template names a column the data does not have (or an output field is
    incomplete): the user's spec, said before anything is sent."""


class RunStartError(ValueError):
    """A run cannot start (no key, no endpoint, owned by another live process); ``str(e)`` says
    what to do. Raised before anything is written, so no run is left `queued`."""


class ReplyError(Exception):
    """A reply arrived but is not usable (blank, unparseable, filtered)."""

    def __init__(self, kind: ErrorKind, detail: str = "", raw: str | None = None) -> None:
        super().__init__(detail or KINDS[kind].title)
        self.kind = kind
        self.detail = detail
        self.raw = raw


KEY_PATTERN = re.compile(
    r"(sk-(?:proj-|or-v1-|or-|ant-api\d\d-|ant-)?[A-Za-z0-9_\-]{8,}|gsk_[A-Za-z0-9]{8,}|AIza[0-9A-Za-z_\-]{20,}"
    r"|tgp_v1_[A-Za-z0-9_\-]{8,}|Bearer\s+[A-Za-z0-9._\-]{12,})"
)


def mask_key(key: str | None) -> str:
    """`sk-or-v1-abcd…` → `sk-or-…a1b2`: enough to recognise the key, never enough to use it."""
    if not key:
        return "(none)"
    key = key.strip()
    if len(key) <= 8:
        return "…" * (len(key) > 0)
    prefix = ""
    for candidate in ("sk-or-", "sk-proj-", "sk-ant-", "sk-", "gsk_", "AIza", "tgp_v1_"):
        if key.startswith(candidate):
            prefix = candidate
            break
    return f"{prefix}…{key[-4:]}"


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Replace the given secrets, and anything shaped like a known API key, by its masked form."""
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, mask_key(secret))
    return KEY_PATTERN.sub(lambda m: mask_key(m.group(0)) if "…" not in m.group(0) else m.group(0), text)


def _error_fields(body: Any) -> tuple[str, str, str]:
    """(message, code, type) from the many error body shapes providers send."""
    if isinstance(body, list) and body:
        body = body[0]
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    if not isinstance(body, dict):
        return (str(body) if body else "", "", "")
    message = str(body.get("message") or body.get("detail") or "")
    code = str(body.get("code") or "")
    kind = str(body.get("type") or body.get("status") or "")
    return message, code.lower(), kind.lower()


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                seconds = float(value) * scale
            except ValueError:
                continue
            if math.isfinite(seconds):
                return max(0.0, seconds)
    return None


def _kind_for_status(status: int, message: str, code: str, etype: str) -> ErrorKind:
    text = f"{message} {code} {etype}".lower()
    if status == 401:
        return ErrorKind.INVALID_KEY
    if status == 402 or "insufficient_quota" in text or "billing" in code or "credit" in code:
        return ErrorKind.QUOTA
    if status == 403:
        return ErrorKind.PERMISSION
    if status == 429:
        return ErrorKind.RATE_LIMITED
    if status == 408:
        return ErrorKind.TIMEOUT
    if status in (503, 529) or "overloaded" in text:
        return ErrorKind.OVERLOADED
    if status >= 500:
        return ErrorKind.SERVER_ERROR
    if "model_not_found" in code or (status == 404 and "model" in text):
        return ErrorKind.MODEL_NOT_FOUND
    if "context_length" in text or "maximum context" in text or "too many tokens" in text:
        return ErrorKind.CONTEXT_TOO_LONG
    if "content_filter" in text or "content_policy" in text or "safety" in code:
        return ErrorKind.CONTENT_FILTERED
    if "api key not valid" in text or "api_key_invalid" in text or "invalid api key" in text:
        return ErrorKind.INVALID_KEY
    return ErrorKind.BAD_REQUEST


def _classify_kind(exc: BaseException) -> tuple[ErrorKind, int | None, float | None, str]:
    if isinstance(exc, ReplyError):
        return exc.kind, None, None, exc.detail
    if isinstance(exc, asyncio.CancelledError):
        return ErrorKind.CANCELLED, None, None, ""
    if isinstance(exc, openai.APIStatusError):
        message, code, etype = _error_fields(exc.body)
        if not message and exc.response is not None:
            message = exc.response.text[:300] if "json" in exc.response.headers.get("content-type", "") else ""
        kind = _kind_for_status(exc.status_code, message, code, etype)
        return kind, exc.status_code, _retry_after(exc.response.headers), message
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return ErrorKind.TIMEOUT, None, None, ""
    if isinstance(exc, openai.APIConnectionError):
        return ErrorKind.NETWORK, None, None, _text_of(exc.__cause__ or exc)
    if isinstance(exc, openai.APIResponseValidationError | json.JSONDecodeError):
        return ErrorKind.BAD_RESPONSE, None, None, _text_of(exc)
    if isinstance(exc, ConnectionError | OSError):
        return ErrorKind.NETWORK, None, None, _text_of(exc)
    text = _text_of(exc)
    if "timed out" in text.lower() or "timeout" in text.lower():
        return ErrorKind.TIMEOUT, None, None, text
    return ErrorKind.UNKNOWN, None, None, f"{type(exc).__name__}: {text}"


def _text_of(exc: BaseException) -> str:
    """str(exc), for exceptions whose __str__ itself fails too."""
    try:
        return str(exc)
    except Exception:
        return type(exc).__name__


def classify(exc: BaseException, *, key: str | None = None, base_url: str | None = None) -> ClassifiedError:
    """Turn any exception from a provider call into a ClassifiedError with a masked, plain message.
    Provider-specific wording (the provider's name, its key format) is added by `providers`."""
    kind, status, retry_after, detail = _classify_kind(exc)
    info = KINDS[kind]
    message = info.title
    if kind == ErrorKind.INVALID_KEY and key:
        message = f"{message} ({mask_key(key)})"
    elif kind == ErrorKind.NETWORK and base_url:
        message = f"Could not reach {base_url}"
    detail = redact(detail, [key])
    return ClassifiedError(kind, message, info.action, info.retryable, status, retry_after, detail)
