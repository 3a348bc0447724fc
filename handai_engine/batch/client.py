"""The provider's side of a batch: upload a file, create, retrieve, find, cancel a batch and read
its result files, through the `openai` SDK's own Files and Batches resources (light calls: the
SDK's transport is fine here, DESIGN decision 4 is about completions)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx2
import openai
from openai.types import Batch

from providers import Connection, make_client

from .limits import COMPLETION_WINDOW, ENDPOINTS

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
UPLOAD_TIMEOUT = 600.0  # a 200 MB file takes a while
FIND_PAGES = 10  # batches listed (100 a page) when looking for one created but never recorded


class BatchClient:
    """Batch calls for one connection; close it on the loop that used it."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        # Azure: files and batches live at the resource, never under a deployment's path.
        self.client = make_client(replace(conn, deployment=None), timeout=UPLOAD_TIMEOUT)
        self.endpoint = ENDPOINTS[conn.provider]

    def line_model(self, model: str) -> str:
        """The `model` a line names: Azure routes a batch line by its deployment."""
        return (self.conn.deployment or model) if self.conn.provider == "azure" else model

    async def upload(self, name: str, data: bytes) -> str:
        uploaded = await self.client.files.create(file=(name, data, "application/jsonl"), purpose="batch")
        return uploaded.id

    async def create(self, file_id: str, metadata: dict[str, str]) -> Batch:
        return await self.client.batches.create(
            input_file_id=file_id,
            endpoint=self.endpoint,  # type: ignore[arg-type]
            completion_window=COMPLETION_WINDOW,
            metadata=metadata,
        )

    async def retrieve(self, batch_id: str) -> Batch:
        return await self.client.batches.retrieve(batch_id)

    async def cancel(self, batch_id: str) -> Batch:
        return await self.client.batches.cancel(batch_id)

    async def find(self, file_id: str) -> Batch | None:
        """The batch made from `file_id`, if one was created but its id never reached the ledger
        (the process died between the provider's answer and the write)."""
        seen = 0
        async for batch in self.client.batches.list(limit=100):
            if batch.input_file_id == file_id:
                return batch
            seen += 1
            if seen >= FIND_PAGES * 100:
                break
        return None

    async def content(self, file_id: str | None) -> bytes:
        if not file_id:
            return b""
        return (await self.client.files.content(file_id)).content

    def status_error(self, status: int, body: Any) -> openai.APIStatusError:
        """The SDK's error for a line's HTTP status, as a real-time reply with it would raise."""
        request = httpx2.Request("POST", str(self.client.base_url).rstrip("/") + self.endpoint)
        response = httpx2.Response(status, json=body, request=request)
        return self.client._make_status_error_from_response(response)

    async def close(self) -> None:
        await self.client.close()
