"""A finished batch's files → one outcome per cell, through the same parse path as a real-time
reply (`providers.chat.parse_completion`, then `handai_prompts.parse_reply`), billed at the batch
price. A cell the batch never answered ends failed with why (expired, the batch failed), except
in a cancelled batch, where it stays pending to be sent again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from handai_db import RowOutcome, RowStatus
from handai_errors import ErrorKind, ReplyError, redact
from handai_prompts import off_list, parse_reply
from providers import Price, describe_error
from providers.chat import parse_completion

from ..calls import StepRequest

if TYPE_CHECKING:
    from .client import BatchClient

MODEL_ID_CHARS = 200
EXPIRED = (
    "The batch expired before this row was answered (the provider's 24 h window). "
    "Retry the failed rows, in real time or as a new batch."
)


def jsonl(content: bytes) -> Iterator[dict[str, Any]]:
    for line in content.splitlines():
        if line.strip():
            yield json.loads(line)


def sent_messages(input_content: bytes) -> dict[int, str]:
    """Each cell's user message, read from the file that was uploaded: what was sent is recorded."""
    sent: dict[int, str] = {}
    for line in jsonl(input_content):
        messages = (line.get("body") or {}).get("messages") or []
        user = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), None)
        sent[int(line["custom_id"])] = user if isinstance(user, str) else json.dumps(user, ensure_ascii=False)
    return sent


class Collector:
    """Outcomes for the lines of one arm's batches."""

    def __init__(self, request: StepRequest, client: BatchClient, price: Price | None) -> None:
        self.request = request
        self.client = client
        self.price = price
        self.keys = [client.conn.api_key]

    def outcome(self, line: dict[str, Any], user: str | None) -> RowOutcome:
        result_id = int(line["custom_id"])
        response = line.get("response") or {}
        status, body = response.get("status_code"), response.get("body")
        if status == 200:
            return self._answered(result_id, body, user)
        if status:
            return self._failed(result_id, user, self.client.status_error(int(status), body))
        error = line.get("error") or {}
        if error.get("code") == "batch_expired":
            return self.unanswered(result_id, user, ErrorKind.TIMEOUT, EXPIRED)
        message = f"The batch could not run this row: {error.get('message') or error.get('code') or 'no reason given'}"
        return self.unanswered(result_id, user, ErrorKind.BAD_REQUEST, message)

    def _answered(self, result_id: int, body: Any, user: str | None) -> RowOutcome:
        tokens_in = tokens_out = 0
        cost = None
        raw = None
        try:
            data = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
            reply = parse_completion(data.encode())
            tokens_in, tokens_out = reply.tokens_in, reply.tokens_out
            cost = round(self.price.cost(tokens_in, tokens_out), 8) if self.price else None
            if reply.problem is not None:
                raise reply.problem
            raw = reply.text
            parsed = parse_reply(raw, structured=self.request.structured, schema=self.request.schema)
        except Exception as exc:
            if isinstance(exc, ReplyError) and exc.raw is not None:
                raw = exc.raw
            elif isinstance(exc, json.JSONDecodeError):
                raw = exc.doc[:2000]
            billed = {"tokens_in": tokens_in, "tokens_out": tokens_out, "cost_usd": cost}
            return self._failed(result_id, user, exc, raw=raw, **billed)
        return RowOutcome(
            result_id,
            RowStatus.SUCCEEDED,
            raw=raw,
            parsed=parsed,
            attempts=1,
            calls=1,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost_usd=cost,
            request=user,
            flags=off_list(parsed, self.request.schema) or None,
            model_reported=reply.model[:MODEL_ID_CHARS] if reply.model else None,
        )

    def _failed(self, result_id: int, user: str | None, exc: BaseException, **values: Any) -> RowOutcome:
        err = describe_error(exc, self.client.conn)
        return RowOutcome(
            result_id,
            RowStatus.FAILED,
            error_kind=err.kind.value,
            error_message=redact(err.user_text(), self.keys),
            attempts=1,
            calls=1,
            request=user,
            **values,
        )

    @staticmethod
    def unanswered(result_id: int, user: str | None, kind: ErrorKind, message: str) -> RowOutcome:
        """A cell the batch did not answer: failed, nothing billed, to be sent again by retry-failed."""
        return RowOutcome(result_id, RowStatus.FAILED, error_kind=kind.value, error_message=message, request=user)
