"""OpenAI's (and Azure OpenAI's) Files and Batch endpoints for the fake LLM server, close enough
that the real `openai` SDK (`AsyncOpenAI.files`, `.batches`) drives them.

    POST /v1/files                    upload a JSONL file (multipart, purpose=batch)
    GET  /v1/files/{id}               the file object;  GET /v1/files/{id}/content  its bytes
    POST /v1/batches                  create a batch from an uploaded file
    GET  /v1/batches[/{id}]           list (newest first) or retrieve
    POST /v1/batches/{id}/cancel      cancelling → cancelled (with what was done so far)

Azure's paths are the same under /openai/ (the SDK adds the api-version query).

A batch moves validating → in_progress → finalizing → completed on a clock of its own
(`BatchConfig`: seconds per stage, fast in tests). Each line is answered by the same reply logic
as a real-time call (markers such as ``[[error:400]]`` included), so a test can tell every row got
its own answer: successes go to the output file, failed lines to the error file, each with its
`custom_id`. Configurable failures: `fail_validation` (the batch fails before any line runs),
`expire` (it expires with the first `partial` share of its lines answered, the rest written to
the error file as `batch_expired`). Every create, cancel and line answered is kept in `log`.
Anthropic's Message Batches (tests/fake_message_batches.py) are mounted from here, on the same
clock, switches and log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fake_message_batches import FakeMessageBatches

if TYPE_CHECKING:
    from tests.fake_llm_server import FakeLLM

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


@dataclass
class BatchConfig:
    """How batches behave; change it while the server runs (`FakeBatches.configure`)."""

    validating_s: float = 0.05
    in_progress_s: float = 0.1
    finalizing_s: float = 0.05
    cancelling_s: float = 0.05
    fail_validation: bool = False
    expire: bool = False
    partial: float = 0.5  # share of lines answered when a batch expires or is cancelled


@dataclass
class BatchEvent:
    ts: float
    action: str  # "file.create", "batch.create", "batch.cancel", "line"
    id: str
    detail: str = ""


@dataclass
class _Batch:
    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, Any] | None
    created: float
    status: str = "validating"
    stamps: dict[str, int] = field(default_factory=dict)
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: dict[str, Any] | None = None
    counts: dict[str, int] = field(default_factory=lambda: {"total": 0, "completed": 0, "failed": 0})
    cancel_requested: float | None = None


class FakeBatches:
    def __init__(self, llm: FakeLLM) -> None:
        self.llm = llm
        self.config = BatchConfig()
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.batches: dict[str, _Batch] = {}
        self.log: list[BatchEvent] = []
        self.on_retrieve: Callable[[str], None] | None = None  # told each batch id polled, before it answers
        self.messages = FakeMessageBatches(self)  # Anthropic's Message Batches
        self._next = 0

    def reset(self) -> None:
        self.config = BatchConfig()
        self.files.clear()
        self.contents.clear()
        self.batches.clear()
        self.log.clear()
        self.on_retrieve = None
        self.messages.reset()

    def configure(self, **changes: Any) -> None:
        for key, value in changes.items():
            if not hasattr(self.config, key):
                raise AttributeError(f"BatchConfig has no field {key!r}")
            setattr(self.config, key, value)

    def created(self) -> list[BatchEvent]:
        """Every batch created so far: a re-attached run must not add one."""
        return [e for e in self.log if e.action == "batch.create"]

    def mount(self, app: web.Application) -> None:
        for prefix in ("/v1", "/openai"):
            app.router.add_post(f"{prefix}/files", self.upload)
            app.router.add_get(f"{prefix}/files/{{file_id}}", self.file)
            app.router.add_get(f"{prefix}/files/{{file_id}}/content", self.content)
            app.router.add_post(f"{prefix}/batches", self.create)
            app.router.add_get(f"{prefix}/batches", self.list)
            app.router.add_get(f"{prefix}/batches/{{batch_id}}", self.retrieve)
            app.router.add_post(f"{prefix}/batches/{{batch_id}}/cancel", self.cancel)
        app.router.add_get("/_batches/log", self.get_log)
        self.messages.mount(app)

    # -- helpers -------------------------------------------------------------------------------
    def _id(self, prefix: str) -> str:
        self._next += 1
        return f"{prefix}-{self._next:06d}"

    def _denied(self, request: web.Request) -> web.Response | None:
        return self.llm._auth_error(self.llm._key(request))

    @staticmethod
    def _not_found(what: str) -> web.Response:
        body = {"error": {"message": f"No such {what}", "type": "invalid_request_error", "param": None, "code": None}}
        return web.json_response(body, status=404)

    def _store(self, content: bytes, filename: str, purpose: str) -> str:
        file_id = self._id("file")
        self.files[file_id] = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }
        self.contents[file_id] = content
        return file_id

    # -- files ---------------------------------------------------------------------------------
    async def upload(self, request: web.Request) -> web.Response:
        if (denied := self._denied(request)) is not None:
            return denied
        form = await request.post()
        upload, purpose = form.get("file"), str(form.get("purpose") or "")
        if not isinstance(upload, web.FileField) or purpose != "batch":
            return self.llm._error(400, "Upload a file with purpose=batch", "invalid_request")
        file_id = self._store(upload.file.read(), upload.filename, purpose)
        self.log.append(BatchEvent(time.time(), "file.create", file_id, upload.filename))
        return web.json_response(self.files[file_id])

    async def file(self, request: web.Request) -> web.Response:
        found = self.files.get(request.match_info["file_id"])
        return web.json_response(found) if found else self._not_found("file")

    async def content(self, request: web.Request) -> web.Response:
        found = self.contents.get(request.match_info["file_id"])
        if found is None:
            return self._not_found("file")
        return web.Response(body=found, content_type="application/octet-stream")

    # -- batches -------------------------------------------------------------------------------
    async def create(self, request: web.Request) -> web.Response:
        if (denied := self._denied(request)) is not None:
            return denied
        body = await request.json()
        file_id = body.get("input_file_id")
        if file_id not in self.contents:
            return self.llm._error(400, f"Input file {file_id} not found", "invalid_request")
        batch = _Batch(
            self._id("batch"),
            file_id,
            body.get("endpoint", ""),
            body.get("completion_window", "24h"),
            body.get("metadata"),
            time.monotonic(),
        )
        batch.counts["total"] = len(self._lines(file_id))
        self.batches[batch.id] = batch
        self.log.append(BatchEvent(time.time(), "batch.create", batch.id, file_id))
        return web.json_response(self._view(batch))

    async def retrieve(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["batch_id"])
        if batch is None:
            return self._not_found("batch")
        if self.on_retrieve is not None:
            self.on_retrieve(batch.id)
        self._advance(batch)
        return web.json_response(self._view(batch))

    async def list(self, request: web.Request) -> web.Response:
        if (denied := self._denied(request)) is not None:
            return denied
        data = []
        for batch in reversed(self.batches.values()):
            self._advance(batch)
            data.append(self._view(batch))
        ids = [b["id"] for b in data]
        page = {"object": "list", "data": data, "has_more": False}
        return web.json_response(page | {"first_id": ids[0] if ids else None, "last_id": ids[-1] if ids else None})

    async def cancel(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["batch_id"])
        if batch is None:
            return self._not_found("batch")
        self._advance(batch)
        if batch.status not in TERMINAL and batch.cancel_requested is None:
            batch.cancel_requested = time.monotonic()
            batch.status = "cancelling"
            batch.stamps["cancelling_at"] = int(time.time())
            self.log.append(BatchEvent(time.time(), "batch.cancel", batch.id))
        return web.json_response(self._view(batch))

    async def get_log(self, _request: web.Request) -> web.Response:
        return web.json_response([asdict(e) for e in self.log])

    def _view(self, b: _Batch) -> dict[str, Any]:
        return {
            "id": b.id,
            "object": "batch",
            "endpoint": b.endpoint,
            "input_file_id": b.input_file_id,
            "completion_window": b.completion_window,
            "status": b.status,
            "created_at": int(time.time() - (time.monotonic() - b.created)),
            "expires_at": int(time.time()) + 86_400,
            "output_file_id": b.output_file_id,
            "error_file_id": b.error_file_id,
            "errors": b.errors,
            "request_counts": dict(b.counts),
            "metadata": b.metadata,
            **b.stamps,
        }

    # -- the clock -----------------------------------------------------------------------------
    def _advance(self, b: _Batch) -> None:
        """Move a batch along its clock, as far as the time since it was created allows."""
        if b.status in TERMINAL:
            return
        cfg = self.config
        now = time.monotonic()
        if b.cancel_requested is not None:
            if now - b.cancel_requested >= cfg.cancelling_s:
                self._finish(b, "cancelled", cfg.partial)
            return
        age = now - b.created
        if age < cfg.validating_s:
            return
        if cfg.fail_validation:
            b.errors = {
                "object": "list",
                "data": [{"code": "invalid_request", "message": "The input file is not valid.", "line": 1}],
            }
            b.status = "failed"
            b.stamps["failed_at"] = int(time.time())
            return
        b.stamps.setdefault("in_progress_at", int(time.time()))
        if age < cfg.validating_s + cfg.in_progress_s:
            b.status = "in_progress"
            return
        if cfg.expire:
            self._finish(b, "expired", cfg.partial)
            return
        b.stamps.setdefault("finalizing_at", int(time.time()))
        if age < cfg.validating_s + cfg.in_progress_s + cfg.finalizing_s:
            b.status = "finalizing"
            return
        self._finish(b, "completed", 1.0)

    def _lines(self, file_id: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.contents[file_id].splitlines() if line.strip()]

    def _finish(self, b: _Batch, status: str, share: float) -> None:
        """Answer the first `share` of the lines and write the output and error files."""
        lines = self._lines(b.input_file_id)
        answered = round(len(lines) * share)
        out, errors = [], []
        for n, line in enumerate(lines):
            if n >= answered:
                if status == "expired":
                    errors.append(self._expired_line(line))
                continue
            code, body = self._answer(line.get("body") or {})
            self.log.append(BatchEvent(time.time(), "line", b.id, str(line.get("custom_id"))))
            result = {
                "id": self._id("batch_req"),
                "custom_id": line.get("custom_id"),
                "response": {"status_code": code, "request_id": self._id("req"), "body": body},
                "error": None,
            }
            (out if code == 200 else errors).append(result)
        b.counts = {"total": len(lines), "completed": len(out), "failed": len(errors)}
        if out:
            b.output_file_id = self._store(_jsonl(out), f"{b.id}_output.jsonl", "batch_output")
        if errors:
            b.error_file_id = self._store(_jsonl(errors), f"{b.id}_error.jsonl", "batch_output")
        b.status = status
        b.stamps[f"{status}_at"] = int(time.time())

    def _expired_line(self, line: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self._id("batch_req"),
            "custom_id": line.get("custom_id"),
            "response": None,
            "error": {
                "code": "batch_expired",
                "message": "This request could not be executed before the completion window expired.",
            },
        }

    def _answer(self, body: dict[str, Any]) -> tuple[int, Any]:
        """A line's status and body, from the same reply logic as a real-time call."""
        from tests.fake_llm_server import MARKER

        messages = body.get("messages", [])
        user = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")
        system = " ".join(str(m.get("content") or "") for m in messages if m.get("role") in ("system", "developer"))
        model = str(body.get("model", ""))
        markers = {m.group(1): m.group(2) for m in MARKER.finditer(user)}
        response = self.llm._marker_failure(_NoRequest(), markers, user) or self.llm._completion(
            body, model, system, user, markers
        )
        text = response.text or ""
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text


class _NoRequest:
    """A batch line has no connection of its own to drop ([[reset]] answers normally)."""

    transport = None


def _jsonl(items: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(item, ensure_ascii=False).encode() + b"\n" for item in items)
