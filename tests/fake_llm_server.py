"""An OpenAI-compatible LLM server for tests and benchmarks, on 127.0.0.1.

It speaks real HTTP so every test goes through the real `openai` client. Replies are derived
from the request (the last user message), so a test can tell that each row got its own answer:
"Reply to: <message>", or in JSON mode an object shaped by the schema the request shows.

Per-request markers, anywhere in the last user message:

    [[empty]]        200 with blank content            [[malformed]]    200 with a non-JSON body
    [[html]]         502 with an HTML error page       [[truncated]]    200 with cut-off JSON
    [[error:503]]    that HTTP status, OpenAI body     [[nochoices]]    200 with "choices": []
    [[flaky:2]]      500 for the first 2 attempts      [[slow:1.5]]     1.5 s extra latency
    [[quota]]        429 insufficient_quota            [[context]]      400 context_length_exceeded
    [[filtered]]     finish_reason content_filter      [[reset]]        connection dropped mid-reply
    [[overloaded]]   529 overloaded_error              [[prose]]        200 with plain text even in JSON mode
    [[pick:fake-alt=negative]]   that model answers "negative": every enum field (or, with no enum,
                                 every string field), or the whole text reply; [[pick:negative]]
                                 does it for every model. A list field (an array of enum items, or
                                 any array when no enum is given) gets the value split on ";":
                                 [[pick:price;quality]] answers ["price", "quality"]

Models disagree, deterministically, so Compare / Consensus / Pipeline tests see real differences.
A row's "odd third" is the rows whose user message has ``int(sha1(user)[:8], 16) % 3 == 0``
(``odd_third(user)``); ``disagrees(model, user)`` says whether a model departs from the baseline:

    most models      the baseline: enum value ``labels[len(user) % n]``, string field "<key> of
                     <message>", text "Reply to: <message>"; an array of enum items (multi-label)
                     gets that value, plus the next one ``labels[(len(user) + 1) % n]`` when the
                     message's length is even (and n > 1)
    *-alt* models    (e.g. fake-alt) the baseline, except on odd-third rows: the next enum value
                     ``labels[(len(user) + 1) % n]`` (an array's values shift the same way),
                     "<key> (alt) of <message>", "Alt reply to: ..."
    *contrarian*     (e.g. fake-contrarian) on every row: the next enum value, "<key> (contrary) of
                     <message>", "Contrary reply to: <message>" (a one-value enum cannot differ)

Numbers, booleans and lists in JSON replies are the same for every model.
``ServerConfig.answers`` (model -> text) overrides all of this: that model's reply content is
the text verbatim, in any mode (give JSON text to answer a JSON request).
A reply's ``model`` field echoes the model asked for, as most local servers do;
``ServerConfig.reported_models`` (model asked for -> id) makes it name another, dated id as OpenAI
does (``{"gpt-4o": "gpt-4o-2024-08-06"}``), or, mapped to None, leaves the field out.

Control endpoints (server-wide behaviour; ``FakeLLMServer.configure`` does the same from Python):

    POST /_config    a JSON object of settings to change, answered with all of them: latency_ms,
                     jitter_ms, error_rate, error_status, rpm, ratelimit_headers, valid_keys,
                     auth_style, models, strict_models, force_status, seed, answers,
                     reported_models
    GET  /_log       every request so far: time, model, user message, status, masked key, system
    POST /_reset     clear the log, the flaky counters and the rate bucket; reseed the randomness

The Files and Batch endpoints (OpenAI's and Azure's Batch API) are mounted from tests/fake_batches.py.

Run it on its own: ``python -m tests.fake_llm_server --port 8765 --latency-ms 100``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import random
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

from tests.fake_batches import FakeBatches

DEFAULT_MODELS = ["fake-small", "fake-large", "gpt-4o-mini", "o3-mini", "fake-alt", "fake-contrarian"]

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

MARKER = re.compile(r"\[\[(\w+)(?::([\w.]+))?\]\]")
PICK = re.compile(r"\[\[pick:(?:([^\]=\s]+)=)?([^\]]+)\]\]")


@dataclass
class ServerConfig:
    """Server-wide behaviour; every field can be changed while the server runs."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 500
    rpm: int = 0
    ratelimit_headers: bool = False
    valid_keys: list[str] | None = None
    auth_style: str = "openai"
    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    strict_models: bool = False
    force_status: int = 0
    seed: int = 0
    answers: dict[str, str] = field(default_factory=dict)
    reported_models: dict[str, str | None] = field(default_factory=dict)


def masked(key: str) -> str:
    return f"{key[:3]}****{key[-4:]}" if len(key) > 8 else "****"


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def _first_json_object(text: str) -> dict[str, Any] | None:
    """The first balanced {...} in text that parses as a JSON object (the schema the prompt shows)."""
    start = text.find("{")
    while start != -1:
        depth = 0
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    with contextlib.suppress(ValueError):
                        value = json.loads(text[start : i + 1])
                        if isinstance(value, dict):
                            return value
                    break
        start = text.find("{", start + 1)
    return None


def odd_third(user: str) -> bool:
    """The rows (about a third, fixed by the message text) on which *-alt* models disagree."""
    return int(hashlib.sha1(user.encode()).hexdigest()[:8], 16) % 3 == 0


def disagrees(model: str, user: str) -> bool:
    """Whether this model's enum value and text reply depart from the baseline for this message."""
    return "contrarian" in model or ("-alt" in model and odd_third(user))


def picked(model: str, user: str) -> str | None:
    """The answer a [[pick:model=value]] (or [[pick:value]]) marker forces on this model, if any."""
    for match in PICK.finditer(user):
        if match.group(1) in (None, model):
            return match.group(2)
    return None


def _value_for(kind: Any, key: str, user: str, index: int, model: str = "") -> Any:
    kind = str(kind).lower()
    if "int" in kind:
        return len(user) + index
    if "number" in kind or "float" in kind:
        return round(len(user) / 7 + index, 2)
    if "bool" in kind:
        return len(user) % 2 == 0
    if "array" in kind or "list" in kind:
        return [f"{key}-{_digest(user)}"]
    if "contrarian" in model:
        return f"{key} (contrary) of {user[:60]}"
    return f"{key} (alt) of {user[:60]}" if disagrees(model, user) else f"{key} of {user[:60]}"


def json_reply(system: str, user: str, response_format: dict[str, Any] | None, model: str = "") -> dict[str, Any]:
    """A JSON reply shaped by the schema in the request: json_schema properties, or the first JSON
    object shown in the system prompt (Handai shows the expected shape there). Enum values and
    string fields depend on the model (see the module docstring)."""
    forced = picked(model, user)
    schema: dict[str, Any] | None = None
    if response_format and response_format.get("type") == "json_schema":
        props = response_format.get("json_schema", {}).get("schema", {}).get("properties", {})
        enums = {k: v["enum"] for k, v in props.items() if v.get("enum")}
        lists = {k: v["items"]["enum"] for k, v in props.items() if (v.get("items") or {}).get("enum")}
        schema = {k: v.get("type", "string") for k, v in props.items()}
        if enums or lists:  # a schema that lists the allowed values gets them, as a real provider's does
            reply = {key: _value_for(kind, key, user, i, model) for i, (key, kind) in enumerate(schema.items())}
            shift = 1 if disagrees(model, user) else 0
            reply |= {k: forced or v[(len(user) + shift) % len(v)] for k, v in enums.items()}
            return reply | {k: _forced_list(forced) or _enum_list(v, user, shift) for k, v in lists.items()}
    if not schema:
        schema = _first_json_object(system)
    if not schema:
        return {"answer": forced or _text_reply(model, user), "length": len(user)}
    reply = {key: _value_for(kind, key, user, i, model) for i, (key, kind) in enumerate(schema.items())}
    if forced:
        reply = {
            k: forced if isinstance(v, str) else _forced_list(forced) if isinstance(v, list) else v
            for k, v in reply.items()
        }
    return reply


def _enum_list(labels: list[str], user: str, shift: int) -> list[str]:
    """A multi-label answer: one allowed value, two when the message's length is even."""
    first = (len(user) + shift) % len(labels)
    if len(labels) > 1 and len(user) % 2 == 0:
        return [labels[first], labels[(first + 1) % len(labels)]]
    return [labels[first]]


def _forced_list(forced: str | None) -> list[str] | None:
    return [part.strip() for part in forced.split(";") if part.strip()] if forced else None


def _text_reply(model: str, user: str) -> str:
    if "contrarian" in model:
        return f"Contrary reply to: {user}"
    return f"Alt reply to: {user}" if disagrees(model, user) else f"Reply to: {user}"


@dataclass
class LoggedRequest:
    ts: float
    model: str
    user: str
    status: int
    key: str
    system: str = ""


class FakeLLM:
    """The request handlers and their state (config, request log, rate bucket, flaky counters)."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        self.log: list[LoggedRequest] = []
        self._attempts: dict[str, int] = {}
        self._tokens = 0.0
        self._last_refill = time.monotonic()
        self._rng = random.Random(self.config.seed)
        self.batches = FakeBatches(self)  # the Files and Batch endpoints (tests/fake_batches.py)

    def reset(self) -> None:
        self._rng = random.Random(self.config.seed)
        self.log.clear()
        self._attempts.clear()
        self._tokens = 0.0
        self._last_refill = time.monotonic()
        self.batches.reset()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self.chat)
        app.router.add_post("/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/models", self.models)
        app.router.add_get("/openai/models", self.models)
        app.router.add_post("/_config", self.set_config)
        app.router.add_get("/_log", self.get_log)
        app.router.add_post("/_reset", self.do_reset)
        self.batches.mount(app)
        return app

    # -- control endpoints -------------------------------------------------------------------
    async def set_config(self, request: web.Request) -> web.Response:
        for key, value in (await request.json()).items():
            setattr(self.config, key, value)
        return web.json_response(asdict(self.config))

    async def get_log(self, _request: web.Request) -> web.Response:
        return web.json_response([asdict(r) for r in self.log])

    async def do_reset(self, _request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})

    # -- helpers -------------------------------------------------------------------------------
    def _key(self, request: web.Request) -> str:
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return request.headers.get("api-key", "") or request.headers.get("x-api-key", "")

    def _auth_error(self, key: str) -> web.Response | None:
        valid = self.config.valid_keys
        if valid is None or key in valid:
            return None
        status, body = AUTH_BODIES.get(self.config.auth_style, AUTH_BODIES["openai"])
        text = json.dumps(body).replace("{masked}", masked(key))
        return web.Response(status=status, text=text, content_type="application/json")

    def _take_rate_token(self) -> float:
        """Token bucket of one second's worth of requests; returns 0 or the seconds to wait."""
        rate = self.config.rpm / 60.0
        now = time.monotonic()
        self._tokens = min(rate, self._tokens + (now - self._last_refill) * rate)
        self._last_refill = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / rate

    def _rate_headers(self) -> dict[str, str]:
        if not (self.config.rpm and self.config.ratelimit_headers):
            return {}
        rate = self.config.rpm / 60.0
        reset = max(0.0, (1 - self._tokens) / rate)
        return {
            "x-ratelimit-limit-requests": str(self.config.rpm),
            "x-ratelimit-remaining-requests": str(int(self._tokens)),
            "x-ratelimit-reset-requests": f"{reset:.3f}s",
        }

    @staticmethod
    def _error(status: int, message: str, code: str, kind: str = "invalid_request_error") -> web.Response:
        body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        return web.json_response(body, status=status)

    # -- API -----------------------------------------------------------------------------------
    async def models(self, request: web.Request) -> web.Response:
        if (denied := self._auth_error(self._key(request))) is not None:
            return denied
        data = [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "handai-tests"} for m in self.config.models
        ]
        return web.json_response({"object": "list", "data": data})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        messages = body.get("messages", [])
        user = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")
        if isinstance(user, list):
            user = " ".join(part.get("text", "") for part in user if isinstance(part, dict))
        system = " ".join(str(m.get("content") or "") for m in messages if m.get("role") in ("system", "developer"))
        model = str(body.get("model", ""))
        key = self._key(request)
        response = await self._respond(request, body, model, system, user, key)
        self.log.append(LoggedRequest(time.time(), model, user, response.status, masked(key), system))
        return response

    async def _respond(
        self, request: web.Request, body: dict[str, Any], model: str, system: str, user: str, key: str
    ) -> web.StreamResponse:
        cfg = self.config
        markers = {m.group(1): m.group(2) for m in MARKER.finditer(user)}
        if (denied := self._auth_error(key)) is not None:
            return denied
        if cfg.rpm and (wait := self._take_rate_token()):
            headers = {"retry-after": str(max(1, round(wait))), "retry-after-ms": str(int(wait * 1000))}
            resp = self._error(429, "Rate limit reached for requests", "rate_limit_exceeded", "requests")
            resp.headers.update(headers | self._rate_headers())
            return resp
        delay = cfg.latency_ms + (self._rng.uniform(-cfg.jitter_ms, cfg.jitter_ms) if cfg.jitter_ms else 0)
        delay = delay / 1000 + float(markers.get("slow") or 0)
        if delay > 0:
            await asyncio.sleep(delay)
        if cfg.strict_models and model not in cfg.models:
            return self._error(
                404, f"The model `{model}` does not exist or you do not have access to it.", "model_not_found"
            )
        if cfg.force_status:
            return self._error(cfg.force_status, "Forced failure", "server_error", "server_error")
        failure = self._marker_failure(request, markers, user)
        if failure is not None:
            return failure
        if cfg.error_rate and self._rng.random() < cfg.error_rate:
            return self._error(cfg.error_status, "The server had an error", "server_error", "server_error")
        return self._completion(body, model, system, user, markers)

    def _marker_failure(self, request: web.Request, markers: dict[str, str | None], user: str) -> web.Response | None:
        if "flaky" in markers:
            seen = self._attempts.get(user, 0)
            self._attempts[user] = seen + 1
            if seen < int(markers["flaky"] or 1):
                return self._error(500, "The server had an error", "server_error", "server_error")
        if "error" in markers:
            return self._error(int(markers["error"] or 500), "Injected failure", "server_error", "server_error")
        if "html" in markers:
            page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
            return web.Response(status=502, text=page, content_type="text/html")
        if "quota" in markers:
            return self._error(
                429,
                "You exceeded your current quota, please check your plan and billing details.",
                "insufficient_quota",
                "insufficient_quota",
            )
        if "context" in markers:
            return self._error(400, "This model's maximum context length is 8192 tokens.", "context_length_exceeded")
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

    def _completion(
        self, body: dict[str, Any], model: str, system: str, user: str, markers: dict[str, str | None]
    ) -> web.Response:
        response_format = body.get("response_format")
        finish = "stop"
        if "empty" in markers:
            content: str | None = "  "
        elif "prose" in markers:
            content = f"Sure! Here is my answer ({_digest(user)}), in words rather than JSON."
        elif "filtered" in markers:
            content, finish = None, "content_filter"
        elif model in self.config.answers:
            content = self.config.answers[model]
        elif response_format and response_format.get("type") in ("json_object", "json_schema"):
            content = json.dumps(json_reply(system, user, response_format, model), ensure_ascii=False)
        else:
            content = picked(model, user) or _text_reply(model, user)
        choices = (
            []
            if "nochoices" in markers
            else [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": finish,
                    "logprobs": None,
                }
            ]
        )
        prompt_tokens = _tokens(system + user)
        completion_tokens = _tokens(content or "")
        reported = self.config.reported_models.get(model, model)
        payload = {
            "id": f"chatcmpl-{_digest(user)}",
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
        return web.json_response(payload, headers=self._rate_headers(), dumps=lambda o: json.dumps(o))


class FakeLLMServer:
    """Runs FakeLLM on its own event loop thread, so tests can use it from synchronous code."""

    def __init__(self, config: ServerConfig | None = None, port: int = 0) -> None:
        self.llm = FakeLLM(config)
        self._port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="fake-llm")
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """Base URL as users type it for an OpenAI-compatible server (with /v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeLLMServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.llm.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port, backlog=1024)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def configure(self, **changes: Any) -> None:
        for key, value in changes.items():
            if not hasattr(self.llm.config, key):
                raise AttributeError(f"ServerConfig has no field {key!r}")
            setattr(self.llm.config, key, value)
        if "seed" in changes:
            self.llm._rng = random.Random(self.llm.config.seed)

    def reset(self, **config: Any) -> None:
        """Clear the request log and counters and restore the default config plus `config`."""
        self.llm.config = ServerConfig(**config)
        self.llm.reset()

    def requests(self) -> list[LoggedRequest]:
        return list(self.llm.log)

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        prog="python -m tests.fake_llm_server",
        description=doc.split("\n\n", 1)[0],
        epilog=doc[doc.index("Per-request markers") :],  # the module docstring's tables: one place
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default: %(default)s)")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="milliseconds every reply waits (default: %(default)s)"
    )
    parser.add_argument(
        "--jitter-ms",
        type=float,
        default=0.0,
        help="random +/- milliseconds added to the latency (default: %(default)s)",
    )
    parser.add_argument(
        "--error-rate",
        type=float,
        default=0.0,
        help="fraction 0-1 of requests that fail with a 500 "
        "(the status is error_status in /_config; default: %(default)s)",
    )
    parser.add_argument(
        "--rpm", type=int, default=0, help="requests per minute before 429s with Retry-After (default: 0, no limit)"
    )
    parser.add_argument(
        "--ratelimit-headers", action="store_true", help="send x-ratelimit-* headers with --rpm, as OpenAI does"
    )
    parser.add_argument(
        "--valid-key",
        action="append",
        dest="valid_keys",
        metavar="KEY",
        help="accept only this API key (repeat for several); without it any key, or none, is accepted",
    )
    parser.add_argument(
        "--auth-style",
        default="openai",
        choices=sorted(AUTH_BODIES),
        help="whose error body a wrong key gets (default: %(default)s)",
    )
    args = parser.parse_args()
    config = ServerConfig(
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
        error_rate=args.error_rate,
        rpm=args.rpm,
        ratelimit_headers=args.ratelimit_headers,
        valid_keys=args.valid_keys,
        auth_style=args.auth_style,
    )
    web.run_app(FakeLLM(config).app(), host="127.0.0.1", port=args.port, access_log=None, print=print)


if __name__ == "__main__":
    main()
