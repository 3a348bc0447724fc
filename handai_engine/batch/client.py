"""The provider's side of a batch, behind one small interface (`BatchClient`), in two kinds:

- `FilesBatchClient`: OpenAI and Azure OpenAI. The cells go up as a JSONL file (Files API), a
  batch is created from it, its results come back as output and error files. Driven by the
  `openai` SDK's own Files and Batches resources (light calls: DESIGN decision 4 is about
  completions).
- `MessageBatchClient` (message_batches.py): Anthropic's Message Batches. The requests travel
  inline in the create call, the results come back as one JSONL stream.

The job sees only `BatchView`s (OpenAI's state words: an Anthropic batch is translated) and result
lines in OpenAI's batch output shape, so polling, collecting and the ledger are written once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx2
import openai
from openai.types import Batch

from handai_engine.calls import Call
from providers import Connection, make_client

from .collect import jsonl, sent_messages
from .limits import BATCH_CANCELLED, BATCH_COMPLETED, BATCH_EXPIRED, BATCH_FAILED, COMPLETION_WINDOW, ENDPOINTS
from .parts import batch_line

TERMINAL = frozenset({BATCH_COMPLETED, BATCH_FAILED, BATCH_EXPIRED, BATCH_CANCELLED})
UPLOAD_TIMEOUT = 600.0  # a 200 MB file takes a while
FIND_PAGES = 10  # batches listed (100 a page) when looking for one created but never recorded
OnFile = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class BatchView:
    """A provider batch as the job reads it, whichever API it came from."""

    id: str
    status: str  # validating, in_progress, finalizing, completed, failed, expired, cancelling, cancelled
    done: int = 0
    failed: int = 0
    error: str | None = None  # why the provider failed the batch as a whole
    output_file_id: str | None = None
    error_file_id: str | None = None


class BatchClient(ABC):
    """What the job asks of a provider's Batch API, for one connection; close it on the loop that
    used it. `line` is what one cell adds to a batch (its size counts against the limits)."""

    conn: Connection
    endpoint: str

    @abstractmethod
    def line(self, call: Call) -> bytes:
        raise NotImplementedError

    def note(self, call: Call) -> None:
        """A cell already in an open batch (re-attached): nothing to send, only what it sent.
        A client that can read its requests back from the provider (a file) keeps nothing."""
        return None

    @abstractmethod
    async def submit(self, name: str, data: bytes, metadata: dict[str, str], on_file: OnFile) -> BatchView:
        """Create a batch of these lines; `on_file(file_id)` is awaited when an upload exists."""
        raise NotImplementedError

    async def find(self, input_file_id: str) -> BatchView | None:
        """The batch made from an uploaded file whose batch id never reached the ledger."""
        return None

    @abstractmethod
    async def create(self, input_file_id: str, metadata: dict[str, str]) -> BatchView:
        raise NotImplementedError

    @abstractmethod
    async def retrieve(self, batch_id: str) -> BatchView:
        raise NotImplementedError

    @abstractmethod
    async def cancel(self, batch_id: str) -> BatchView:
        raise NotImplementedError

    @abstractmethod
    async def sent(self, input_file_id: str | None) -> dict[int, str]:
        """Each cell's user message as it was sent, by result id (custom_id)."""
        raise NotImplementedError

    @abstractmethod
    async def result_lines(self, batch: BatchView) -> list[dict[str, Any]]:
        """The finished batch's lines, in OpenAI's batch output shape (custom_id, response
        {status_code, body}, error {code, message}). A line of a cell left unsent (cancelled)
        is left out: the cell stays pending."""
        raise NotImplementedError

    @abstractmethod
    def status_error(self, status: int, body: Any) -> openai.APIStatusError:
        """The SDK's error for a line's HTTP status, as a real-time reply with it would raise."""
        raise NotImplementedError

    @abstractmethod
    async def close(self) -> None:
        raise NotImplementedError


def batch_client(conn: Connection) -> BatchClient:
    """The Batch API client for this connection's provider."""
    if conn.provider == "anthropic":
        from .message_batches import MessageBatchClient

        return MessageBatchClient(conn)
    return FilesBatchClient(conn)


class FilesBatchClient(BatchClient):
    """OpenAI's (and Azure OpenAI's) Files and Batches endpoints."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        # Azure: files and batches live at the resource, never under a deployment's path.
        self.client = make_client(replace(conn, deployment=None), timeout=UPLOAD_TIMEOUT)
        self.endpoint = ENDPOINTS[conn.provider]

    def line_model(self, model: str) -> str:
        """The `model` a line names: Azure routes a batch line by its deployment."""
        return (self.conn.deployment or model) if self.conn.provider == "azure" else model

    def line(self, call: Call) -> bytes:
        body = {**call.body, "model": self.line_model(call.body["model"])}
        return batch_line(call.result_id, self.endpoint, body)

    async def submit(self, name: str, data: bytes, metadata: dict[str, str], on_file: OnFile) -> BatchView:
        uploaded = await self.client.files.create(file=(name, data, "application/jsonl"), purpose="batch")
        await on_file(uploaded.id)
        return await self.create(uploaded.id, metadata)

    async def create(self, input_file_id: str, metadata: dict[str, str]) -> BatchView:
        batch = await self.client.batches.create(
            input_file_id=input_file_id,
            endpoint=self.endpoint,  # type: ignore[arg-type]
            completion_window=COMPLETION_WINDOW,
            metadata=metadata,
        )
        return _view(batch)

    async def retrieve(self, batch_id: str) -> BatchView:
        return _view(await self.client.batches.retrieve(batch_id))

    async def cancel(self, batch_id: str) -> BatchView:
        return _view(await self.client.batches.cancel(batch_id))

    async def find(self, input_file_id: str) -> BatchView | None:
        seen = 0
        async for batch in self.client.batches.list(limit=100):
            if batch.input_file_id == input_file_id:
                return _view(batch)
            seen += 1
            if seen >= FIND_PAGES * 100:
                break
        return None

    async def content(self, file_id: str | None) -> bytes:
        if not file_id:
            return b""
        return (await self.client.files.content(file_id)).content

    async def sent(self, input_file_id: str | None) -> dict[int, str]:
        return sent_messages(await self.content(input_file_id))

    async def result_lines(self, batch: BatchView) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        for file_id in (batch.output_file_id, batch.error_file_id):
            lines.extend(jsonl(await self.content(file_id)))
        return lines

    def status_error(self, status: int, body: Any) -> openai.APIStatusError:
        request = httpx2.Request("POST", str(self.client.base_url).rstrip("/") + self.endpoint)
        response = httpx2.Response(status, json=body, request=request)
        return self.client._make_status_error_from_response(response)

    async def close(self) -> None:
        await self.client.close()


def _view(batch: Batch) -> BatchView:
    counts = batch.request_counts
    data = (batch.errors.data or []) if batch.errors else []
    said = "; ".join(e.message or e.code or "" for e in data if e.message or e.code)
    return BatchView(
        batch.id,
        batch.status,
        counts.completed if counts else 0,
        counts.failed if counts else 0,
        said[:2000] or None,
        batch.output_file_id,
        batch.error_file_id,
    )
