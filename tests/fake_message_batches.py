"""Anthropic's Message Batches for the fake LLM server, close enough that the real `anthropic`
SDK (`AsyncAnthropic.messages.batches`, base_url = the server's root: the SDK adds /v1) drives it.

    POST /v1/messages/batches                   create (the requests inline)
    GET  /v1/messages/batches[/{id}]            list (newest first) or retrieve
    POST /v1/messages/batches/{id}/cancel       in_progress → canceling → ended
    GET  /v1/messages/batches/{id}/results      the JSONL results, once ended

A batch is in_progress for `in_progress_s`, then ended (the clock and the failure switches are
the OpenAI batches' `BatchConfig`). Each request is answered by the same reply logic as a
real-time call, through its OpenAI-shaped twin (system → a system message), so markers such as
``[[error:400]]`` make an `errored` line. `expire=True` ends the batch with the first `partial`
share answered and the rest `expired`; a cancel answers that share and marks the rest `canceled`.
Creates, cancels and answered lines go to the shared `FakeBatches.log`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from tests.fake_batches import FakeBatches

# An OpenAI-style error status → Anthropic's error type (docs.anthropic.com "Errors").
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


@dataclass
class _MessageBatch:
    id: str
    requests: list[dict[str, Any]]
    created: float
    status: str = "in_progress"  # in_progress, canceling, ended
    cancel_requested: float | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    ended_at: float | None = None


def _stamp(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


class FakeMessageBatches:
    def __init__(self, batches: FakeBatches) -> None:
        self.parent = batches
        self.batches: dict[str, _MessageBatch] = {}

    def reset(self) -> None:
        self.batches.clear()

    def created(self) -> list[str]:
        """Every message batch created so far (ids, in order)."""
        return [e.id for e in self.parent.log if e.action == "message_batch.create"]

    def mount(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages/batches", self.create)
        app.router.add_get("/v1/messages/batches", self.list)
        app.router.add_get("/v1/messages/batches/{batch_id}", self.retrieve)
        app.router.add_post("/v1/messages/batches/{batch_id}/cancel", self.cancel)
        app.router.add_get("/v1/messages/batches/{batch_id}/results", self.results)

    # -- endpoints -----------------------------------------------------------------------------
    async def create(self, request: web.Request) -> web.Response:
        if (denied := self.parent._denied(request)) is not None:
            return denied
        requests = (await request.json()).get("requests") or []
        if not requests or any("custom_id" not in r or "max_tokens" not in (r.get("params") or {}) for r in requests):
            return _error(400, "requests: each needs a custom_id and params with max_tokens")
        batch = _MessageBatch(self.parent._id("msgbatch"), requests, time.time())
        self.batches[batch.id] = batch
        self.parent.log.append(_event("message_batch.create", batch.id, str(len(requests))))
        return web.json_response(self._view(request, batch))

    async def retrieve(self, request: web.Request) -> web.Response:
        if (denied := self.parent._denied(request)) is not None:
            return denied
        batch = self.batches.get(request.match_info["batch_id"])
        if batch is None:
            return _error(404, "message batch not found", "not_found_error")
        if self.parent.on_retrieve is not None:
            self.parent.on_retrieve(batch.id)
        self._advance(batch)
        return web.json_response(self._view(request, batch))

    async def list(self, request: web.Request) -> web.Response:
        if (denied := self.parent._denied(request)) is not None:
            return denied
        data = []
        for batch in reversed(self.batches.values()):
            self._advance(batch)
            data.append(self._view(request, batch))
        ids = [b["id"] for b in data]
        page = {"data": data, "has_more": False, "first_id": ids[0] if ids else None}
        return web.json_response(page | {"last_id": ids[-1] if ids else None})

    async def cancel(self, request: web.Request) -> web.Response:
        if (denied := self.parent._denied(request)) is not None:
            return denied
        batch = self.batches.get(request.match_info["batch_id"])
        if batch is None:
            return _error(404, "message batch not found", "not_found_error")
        self._advance(batch)
        if batch.status == "in_progress":
            batch.status, batch.cancel_requested = "canceling", time.time()
            self.parent.log.append(_event("batch.cancel", batch.id))
        return web.json_response(self._view(request, batch))

    async def results(self, request: web.Request) -> web.Response:
        if (denied := self.parent._denied(request)) is not None:
            return denied
        batch = self.batches.get(request.match_info["batch_id"])
        if batch is None:
            return _error(404, "message batch not found", "not_found_error")
        self._advance(batch)
        if batch.status != "ended":
            return _error(400, "results are available once processing has ended")
        body = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in batch.results)
        return web.Response(body=body, content_type="application/binary")

    # -- the batch -----------------------------------------------------------------------------
    def _view(self, request: web.Request, b: _MessageBatch) -> dict[str, Any]:
        counts = dict.fromkeys(("processing", "succeeded", "errored", "canceled", "expired"), 0)
        if b.status == "ended":
            for r in b.results:
                counts[r["result"]["type"]] += 1
        else:
            counts["processing"] = len(b.requests)
        ended = b.status == "ended"
        return {
            "id": b.id,
            "type": "message_batch",
            "processing_status": b.status,
            "request_counts": counts,
            "created_at": _stamp(b.created),
            "expires_at": _stamp(b.created + 86_400),
            "ended_at": _stamp(b.ended_at),
            "cancel_initiated_at": _stamp(b.cancel_requested),
            "archived_at": None,
            "results_url": f"{request.url.origin()}/v1/messages/batches/{b.id}/results" if ended else None,
        }

    def _advance(self, b: _MessageBatch) -> None:
        cfg = self.parent.config
        now = time.time()
        if b.status == "canceling" and b.cancel_requested is not None and now - b.cancel_requested >= cfg.cancelling_s:
            self._end(b, "canceled", cfg.partial)
        elif b.status == "in_progress" and now - b.created >= cfg.in_progress_s:
            if cfg.expire:
                self._end(b, "expired", cfg.partial)
            else:
                self._end(b, "", 1.0)

    def _end(self, b: _MessageBatch, rest: str, share: float) -> None:
        """Answer the first `share` of the requests; the rest end as `rest` (canceled, expired)."""
        answered = round(len(b.requests) * share)
        for n, req in enumerate(b.requests):
            result = self._answer(req["params"]) if n < answered else {"type": rest}
            if n < answered:
                self.parent.log.append(_event("line", b.id, str(req["custom_id"])))
            b.results.append({"custom_id": req["custom_id"], "result": result})
        b.status, b.ended_at = "ended", time.time()

    def _answer(self, params: dict[str, Any]) -> dict[str, Any]:
        """A request's result, from the same reply logic as a real-time call (its OpenAI twin)."""
        system = params.get("system")
        messages = ([{"role": "system", "content": system}] if system else []) + list(params.get("messages") or [])
        status, body = self.parent._answer({"model": params.get("model"), "messages": messages})
        if status != 200:
            kind = ERROR_TYPES.get(status, "api_error")
            message = (body.get("error") or {}).get("message") if isinstance(body, dict) else str(body)
            error = {"type": "error", "error": {"type": kind, "message": message or "error"}, "request_id": None}
            return {"type": "errored", "error": error}
        choice = (body.get("choices") or [{}])[0]
        usage = body.get("usage") or {}
        message = {
            "id": f"msg_{body.get('id', '')}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model") or params.get("model"),
            "content": [{"type": "text", "text": (choice.get("message") or {}).get("content") or ""}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": usage.get("prompt_tokens", 0),
                "output_tokens": usage.get("completion_tokens", 0),
            },
        }
        return {"type": "succeeded", "message": message}


def _event(action: str, batch_id: str, detail: str = "") -> Any:
    from tests.fake_batches import BatchEvent

    return BatchEvent(time.time(), action, batch_id, detail)


def _error(status: int, message: str, kind: str = "invalid_request_error") -> web.Response:
    return web.json_response({"type": "error", "error": {"type": kind, "message": message}}, status=status)
