"""The fake LLM server's aiohttp application: its routes, its settings (`ServerConfig`) and the
state a request can change (request log, in-flight requests, rate bucket, [[flaky]] counters).

Each request's answer is decided here in one order: key, rate limit, latency, unknown model, a
forced status, a marker's failure, random errors, then the completion (tests/fake_responses.py)."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

from tests.fake_batches import FakeBatches
from tests.fake_replies import DEFAULT_MODELS, markers_in
from tests.fake_request_log import InFlightRequests, LoggedRequest, masked
from tests.fake_responses import auth_error, completion, error, marker_failure

HOLD_POLL_S = 0.01  # how often a held reply looks whether it may go


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
    hold: bool = False  # replies wait (after their latency) until it is False again


class FakeLLM:
    """The request handlers and their state (config, request log, rate bucket, flaky counters)."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        self.log: list[LoggedRequest] = []
        self.in_flight = InFlightRequests()
        self._attempts: dict[str, int] = {}
        self._tokens = 0.0
        self._last_refill = time.monotonic()
        self._rng = random.Random(self.config.seed)
        self.batches = FakeBatches(self)  # the Files and Batch endpoints (tests/fake_batches.py)

    def reset(self) -> None:
        """Clear the log, the flaky counters and the rate bucket; reseed the randomness."""
        self.reseed()
        self.log.clear()
        self._attempts.clear()
        self._tokens = 0.0
        self._last_refill = time.monotonic()
        self.batches.reset()

    def reseed(self) -> None:
        self._rng = random.Random(self.config.seed)

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

    # -- helpers (tests/fake_batches.py uses them too) -------------------------------------------
    def _key(self, request: web.Request) -> str:
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return request.headers.get("api-key", "") or request.headers.get("x-api-key", "")

    def _auth_error(self, key: str) -> web.Response | None:
        valid = self.config.valid_keys
        return None if valid is None or key in valid else auth_error(self.config.auth_style, key)

    _error = staticmethod(error)

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

    def _marker_failure(self, request: Any, markers: dict[str, str | None], user: str) -> web.Response | None:
        return marker_failure(request, markers, user, self._attempts)

    def _completion(
        self, body: dict[str, Any], model: str, system: str, user: str, markers: dict[str, str | None]
    ) -> web.Response:
        cfg = self.config
        return completion(
            body,
            model,
            system,
            user,
            markers,
            answers=cfg.answers,
            reported_models=cfg.reported_models,
            headers=self._rate_headers(),
        )

    # -- API -----------------------------------------------------------------------------------
    async def models(self, request: web.Request) -> web.Response:
        if (denied := self._auth_error(self._key(request))) is not None:
            return denied
        data = [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "handai-tests"} for m in self.config.models
        ]
        return web.json_response({"object": "list", "data": data})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        """One chat call: in flight from entry until it is logged (or fails), whatever happens."""
        ticket, pending = self.in_flight.begin()
        try:
            body = await request.json()
            messages = body.get("messages", [])
            user = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")
            if isinstance(user, list):
                user = " ".join(part.get("text", "") for part in user if isinstance(part, dict))
            system = " ".join(str(m.get("content") or "") for m in messages if m.get("role") in ("system", "developer"))
            model = str(body.get("model", ""))
            pending.model, pending.user = model, user
            key = self._key(request)
            response = await self._respond(request, body, model, system, user, key)
            self.log.append(LoggedRequest(time.time(), model, user, response.status, masked(key), system))
            return response
        finally:
            self.in_flight.end(ticket)

    async def _respond(
        self, request: web.Request, body: dict[str, Any], model: str, system: str, user: str, key: str
    ) -> web.StreamResponse:
        cfg = self.config
        markers = markers_in(user)
        if (denied := self._auth_error(key)) is not None:
            return denied
        if cfg.rpm and (wait := self._take_rate_token()):
            headers = {"retry-after": str(max(1, round(wait))), "retry-after-ms": str(int(wait * 1000))}
            resp = error(429, "Rate limit reached for requests", "rate_limit_exceeded", "requests")
            resp.headers.update(headers | self._rate_headers())
            return resp
        delay = cfg.latency_ms + (self._rng.uniform(-cfg.jitter_ms, cfg.jitter_ms) if cfg.jitter_ms else 0)
        delay = delay / 1000 + float(markers.get("slow") or 0)
        if delay > 0:
            await asyncio.sleep(delay)
        while cfg.hold and cfg is self.config:  # a reset (a new config) lets held replies go too
            await asyncio.sleep(HOLD_POLL_S)
        if cfg.strict_models and model not in cfg.models:
            return error(404, f"The model `{model}` does not exist or you do not have access to it.", "model_not_found")
        if cfg.force_status:
            return error(cfg.force_status, "Forced failure", "server_error", "server_error")
        failure = self._marker_failure(request, markers, user)
        if failure is not None:
            return failure
        if cfg.error_rate and self._rng.random() < cfg.error_rate:
            return error(cfg.error_status, "The server had an error", "server_error", "server_error")
        return self._completion(body, model, system, user, markers)
