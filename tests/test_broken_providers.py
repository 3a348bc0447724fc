"""Providers that misbehave: each failure is classified to the right kind, retried or not as that
kind says, and reported with what to do. All through real HTTP against the fake server."""

from __future__ import annotations

import pandas as pd
import pytest

from handai_engine import RunSettings
from handai_errors import KINDS, ErrorKind
from providers import Connection

CASES = [
    # marker, kind, retried?
    ("[[html]]", ErrorKind.SERVER_ERROR, True),
    ("[[truncated]]", ErrorKind.BAD_RESPONSE, True),
    ("[[malformed]]", ErrorKind.BAD_RESPONSE, True),
    ("[[reset]]", ErrorKind.NETWORK, True),
    ("[[slow:3]]", ErrorKind.TIMEOUT, True),
    ("[[error:500]]", ErrorKind.SERVER_ERROR, True),
    ("[[error:502]]", ErrorKind.SERVER_ERROR, True),
    ("[[error:503]]", ErrorKind.OVERLOADED, True),
    ("[[overloaded]]", ErrorKind.OVERLOADED, True),
    ("[[nochoices]]", ErrorKind.EMPTY_REPLY, True),
    ("[[empty]]", ErrorKind.EMPTY_REPLY, True),
    ("[[quota]]", ErrorKind.QUOTA, False),
    ("[[filtered]]", ErrorKind.CONTENT_FILTERED, False),
    ("[[context]]", ErrorKind.CONTEXT_TOO_LONG, False),
    ("[[error:400]]", ErrorKind.BAD_REQUEST, False),
]


def run_rows(engine, llm, texts: list[str], **kw) -> int:
    conn = Connection("custom", api_key="k", base_url=llm.url)
    settings = RunSettings("custom", "m", row_template="{t}", **kw)
    run_id = engine.create_transform_run(pd.DataFrame({"t": texts}), settings, conn)
    engine.start(run_id, conn)
    engine.wait(run_id, 60)
    return run_id


def test_each_failure_is_classified_retried_as_its_kind_says_and_explained(engine, db, llm):
    markers = [m for m, _, _ in CASES]
    run_id = run_rows(engine, llm, markers, max_retries=1, timeout=1.0, concurrency=len(markers))
    rows = {r.input["t"]: r for r in db.results(run_id)}
    for marker, kind, retried in CASES:
        row = rows[marker]
        assert (row.status, row.error_kind) == ("failed", kind.value), marker
        assert row.attempts == (2 if retried else 1), marker
        assert KINDS[kind].retryable is retried
        assert KINDS[kind].action in row.error_message, marker
    assert rows["[[malformed]]"].raw == "this is not json {"
    assert db.get_run(run_id).status == "completed"


def test_flaky_rows_recover_within_their_retries(engine, db, llm):
    run_id = run_rows(engine, llm, [f"[[flaky:2]] row {i}" for i in range(10)], max_retries=3)
    assert {r.status for r in db.results(run_id)} == {"succeeded"}
    assert {r.attempts for r in db.results(run_id)} == {3}


@pytest.mark.parametrize("status", [500, 502, 503, 529])
def test_bursts_of_server_errors_end_with_every_row(engine, db, llm, status):
    llm.configure(error_rate=0.25, error_status=status, seed=status)
    engine.backoff_cap = 1.0  # the schedule is tested elsewhere; here only the outcome matters
    run_id = run_rows(engine, llm, [f"row {i}" for i in range(40)], max_retries=6, concurrency=8)
    statuses = [r.status for r in llm.requests()]
    assert statuses.count(status) > 3, "no burst happened: the test proves nothing"
    assert db.run_counts(run_id).succeeded == 40
