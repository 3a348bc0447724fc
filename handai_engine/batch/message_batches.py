"""Anthropic's Message Batches through the official `anthropic` SDK (the real-time path keeps
Anthropic's OpenAI-compatible endpoint; only the batch endpoints need this SDK).

The requests go inline in the create call: there is no file, so nothing is uploaded and nothing
can be read back. Each cell's user message is kept in memory as its line is built (or, for a cell
already in an open batch after a restart, as the job re-plans it), and written with its result.

The crash window: a Message Batch carries no metadata and no input file, so a batch the provider
created whose id never reached the ledger (the process died, or the answer to the create was lost,
between the two) cannot be found again. The job then treats it as never created and sends its
cells again: at worst they are answered (and billed) twice, and only the second answers are
kept. The window is the round trip of one create call.

SDK errors are re-raised as the `openai` SDK's, so the job and `describe_error` classify them as
they classify every other provider's.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx2
import openai
from anthropic.types.messages import MessageBatch

from handai_engine.calls import Call
from providers import Connection

from .anthropic_lines import batch_state, output_line, request_line
from .client import UPLOAD_TIMEOUT, BatchClient, BatchView, OnFile
from .collect import jsonl
from .limits import ENDPOINTS

STATUS_ERRORS: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    409: openai.ConflictError,
    422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
}


class MessageBatchClient(BatchClient):
    """Anthropic's /v1/messages/batches for one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.endpoint = ENDPOINTS["anthropic"]
        self.root = root_url(conn.effective_base_url() or "https://api.anthropic.com")
        self.client = anthropic.AsyncAnthropic(
            api_key=conn.api_key or "", base_url=self.root, max_retries=0, timeout=UPLOAD_TIMEOUT
        )
        self.users: dict[int, str] = {}

    def line(self, call: Call) -> bytes:
        self.note(call)
        return request_line(call.result_id, call.body)

    def note(self, call: Call) -> None:
        self.users[call.result_id] = call.user

    async def submit(self, name: str, data: bytes, metadata: dict[str, str], on_file: OnFile) -> BatchView:
        requests = list(jsonl(data))
        async with self._translated():
            return _view(await self.client.messages.batches.create(requests=requests))  # type: ignore[arg-type]

    async def create(self, input_file_id: str, metadata: dict[str, str]) -> BatchView:
        raise RuntimeError("Anthropic's Message Batches carry their requests inline: there is no file to create from")

    async def retrieve(self, batch_id: str) -> BatchView:
        async with self._translated():
            return _view(await self.client.messages.batches.retrieve(batch_id))

    async def cancel(self, batch_id: str) -> BatchView:
        async with self._translated():
            return _view(await self.client.messages.batches.cancel(batch_id))

    async def sent(self, input_file_id: str | None) -> dict[int, str]:
        return self.users

    async def result_lines(self, batch: BatchView) -> list[dict[str, Any]]:
        lines = []
        async with self._translated():
            async for result in await self.client.messages.batches.results(batch.id):
                line = output_line(result.to_dict(mode="json"))
                if line is not None:
                    lines.append(line)
        return lines

    def status_error(self, status: int, body: Any) -> openai.APIStatusError:
        return status_error(status, body, self.root + self.endpoint)

    async def close(self) -> None:
        await self.client.close()

    @contextlib.asynccontextmanager
    async def _translated(self) -> AsyncIterator[None]:
        try:
            yield
        except anthropic.APIStatusError as exc:
            raise status_error(exc.status_code, exc.body, str(exc.request.url)) from exc
        except anthropic.APITimeoutError as exc:
            raise openai.APITimeoutError(exc.request) from exc
        except anthropic.APIConnectionError as exc:
            raise openai.APIConnectionError(message=str(exc), request=exc.request) from exc


def root_url(base_url: str) -> str:
    """The API's root: the SDK adds /v1 itself, the OpenAI-compatible base URL ends with it."""
    url = base_url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


def status_error(status: int, body: Any, url: str) -> openai.APIStatusError:
    """The `openai` SDK's error for an HTTP status and body, as its client would raise it."""
    response = httpx2.Response(status, json=body, request=httpx2.Request("POST", url))
    data = body.get("error", body) if isinstance(body, dict) else body
    kind = STATUS_ERRORS.get(status) or (openai.InternalServerError if status >= 500 else openai.APIStatusError)
    return kind(f"Error code: {status} - {body}", response=response, body=data)


def _view(batch: MessageBatch) -> BatchView:
    counts = batch.request_counts
    state = batch_state(batch.processing_status, counts.to_dict(), batch.cancel_initiated_at is not None)
    return BatchView(batch.id, state, counts.succeeded, counts.errored + counts.expired)
