"""The hot path builds each cell's request once (DESIGN decision 10): over a real run of 50 rows
against the fake server, with the reply cache on, the user message, the messages, the cache key
and the chat body are each built exactly 50 times. Spies count calls and pass them through."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

import handai_prompts
import providers.chat
from handai_db import RunStatus
from handai_engine import Engine, RunSettings, StepRequest
from providers import Connection

ROWS = 50


def spy_everywhere(monkeypatch: pytest.MonkeyPatch, counts: Counter[str], fn: Callable[..., Any], label: str) -> None:
    """Count every call of `fn` under whichever module-level name it was imported."""

    def counted(*args: Any, **kwargs: Any) -> Any:
        counts[label] += 1
        return fn(*args, **kwargs)

    patched = 0
    for module in list(sys.modules.values()):
        name = getattr(module, "__name__", "")
        if not name.startswith(("handai", "providers", "research", "ledger")):
            continue
        for attr, value in list(vars(module).items()):
            if value is fn:
                monkeypatch.setattr(module, attr, counted)
                patched += 1
    assert patched, f"{label} is not used by any module: the spy would count nothing"


def test_each_cells_request_is_built_once(engine: Engine, llm, monkeypatch):
    counts: Counter[str] = Counter()
    spy_everywhere(monkeypatch, counts, handai_prompts.user_message, "user_message")
    spy_everywhere(monkeypatch, counts, handai_prompts.build_messages, "build_messages")
    spy_everywhere(monkeypatch, counts, providers.chat.chat_body, "chat_body")
    key = StepRequest.key

    def counted_key(self: StepRequest, *args: Any, **kwargs: Any) -> str:
        counts["key"] += 1
        return key(self, *args, **kwargs)

    monkeypatch.setattr(StepRequest, "key", counted_key)
    conn = Connection("custom", api_key="k", base_url=llm.url)
    settings = RunSettings("custom", "fake-small", system_prompt="S", use_cache=True, concurrency=8)
    run_id = engine.create_transform_run(pd.DataFrame({"text": [f"r{i}" for i in range(ROWS)]}), settings, conn)
    engine.start(run_id, conn)
    final = engine.wait(run_id, 60)
    assert (final.status, final.succeeded) == (RunStatus.COMPLETED, ROWS)
    assert len(llm.requests()) == ROWS
    assert counts == {"user_message": ROWS, "build_messages": ROWS, "key": ROWS, "chat_body": ROWS}
