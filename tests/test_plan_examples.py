"""A plan step's few-shot examples: recorded in the plan, read back (old plans without them load),
and sent by every cell of the step as earlier turns, exactly as Transform sends its examples
(checked at the fake server over real HTTP, with a real SQLite ledger)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from handai_db import RunStatus
from handai_engine import Arm, Engine, Plan, RunSettings, Step
from providers import Connection

EXAMPLES = ({"input": "great film", "output": "positive"}, {"input": "dull", "output": "negative"})


def bodies(llm) -> list[dict[str, Any]]:
    """Every chat body the fake server receives from now on (its log keeps only the last user turn)."""
    seen: list[dict[str, Any]] = []
    respond = llm.llm._respond

    async def capture(request, body, *args):
        seen.append(body)
        return await respond(request, body, *args)

    llm.llm._respond = capture
    return seen


def plan(examples: tuple[dict[str, str], ...]) -> Plan:
    return Plan(
        "pipeline",
        (Arm("small", "custom", "fake-small"), Arm("large", "custom", "fake-large")),
        (Step("mood", "Sentiment.", ("small", "large"), columns=("text",), examples=examples),),
    )


def test_a_step_records_its_examples_and_an_old_plan_loads_without_them():
    record = plan(EXAMPLES).with_sent().record()
    assert record["steps"][0]["examples"] == [dict(e) for e in EXAMPLES]
    assert Plan.from_record(record).steps[0].examples == EXAMPLES
    del record["steps"][0]["examples"]  # a plan written before steps had examples
    assert Plan.from_record(record).steps[0].examples == ()


def test_every_cell_of_a_step_sends_its_examples_as_earlier_turns(engine: Engine, db, llm):
    seen = bodies(llm)
    conn = Connection("custom", api_key="k", base_url=llm.url)
    run_id = engine.create_plan_run(
        pd.DataFrame({"text": ["lovely", "meh"]}), plan(EXAMPLES), conn, RunSettings("custom", "unused")
    )
    engine.start(run_id, conn)
    assert engine.wait(run_id, 60).status == RunStatus.COMPLETED
    assert Plan.of(db.get_run(run_id)).steps[0].examples == EXAMPLES
    assert len(seen) == 4  # two rows x two models
    for body in seen:
        messages = body["messages"]
        assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
        assert [m["content"] for m in messages[1:5]] == ["great film", "positive", "dull", "negative"]
    assert sorted(b["messages"][-1]["content"] for b in seen) == sorted(['{"text": "lovely"}', '{"text": "meh"}'] * 2)


def test_a_transform_runs_examples_are_its_one_step_examples(engine: Engine, db, llm):
    seen = bodies(llm)
    conn = Connection("custom", api_key="k", base_url=llm.url)
    settings = RunSettings("custom", "fake-small", system_prompt="Sentiment.", examples=[dict(e) for e in EXAMPLES])
    run_id = engine.create_transform_run(pd.DataFrame({"text": ["lovely"]}), settings, conn)
    engine.start(run_id, conn)
    assert engine.wait(run_id, 60).status == RunStatus.COMPLETED
    assert Plan.of(db.get_run(run_id)).steps[0].examples == EXAMPLES
    assert [m["content"] for m in seen[0]["messages"][1:5]] == ["great film", "positive", "dull", "negative"]
