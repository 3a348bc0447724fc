"""The tables people read for Compare, Consensus and Pipeline runs, and the agreement figures,
built from a real ledger whose cells are written the way the engine writes them (no HTTP)."""

from __future__ import annotations

from typing import Any

import pytest

from handai_db import Database, RowOutcome, RowStatus, Run
from handai_engine import Arm, Plan, Step
from research.compare import compare_agreement, compare_plan
from research.consensus import consensus_plan
from research.tools import table_for

Answers = dict[tuple[int, int, int, int], tuple[str, Any]]  # (row, step, arm, sample) -> (status, parsed)


def ledger_run(db: Database, plan: Plan, rows: list[dict[str, Any]], answers: Answers) -> Run:
    """A run of `plan` over `rows` with the given cells finished (the rest stay pending)."""
    plan = plan.with_sent()
    run_id = db.create_run(
        rows,
        cells=plan.cells(),
        kind=plan.tool,
        provider="custom",
        model="m",
        plan=plan.record(),
        input_columns=list(rows[0]),
    )
    ids = {(r.row_index, r.step, r.arm, r.sample): r.id for r in db.results(run_id)}
    outcomes = [
        RowOutcome(
            ids[key],
            status,
            parsed=parsed if status == RowStatus.SUCCEEDED else None,
            error_message=None if status == RowStatus.SUCCEEDED else f"{status} here",
        )
        for key, (status, parsed) in answers.items()
    ]
    db.record_results(run_id, outcomes)
    run = db.get_run(run_id)
    assert run is not None
    return run


OK, FAILED, SKIPPED = RowStatus.SUCCEEDED, RowStatus.FAILED, RowStatus.SKIPPED
EXTRA_AFTER = ["agreed", "judge_reason", "decided_by"]


def text(value: str) -> tuple[str, dict[str, str]]:
    return OK, {"output": value}


def test_consensus_decides_unanimous_judge_majority_or_undecided(db):
    plan = consensus_plan(
        [("custom", "a"), ("custom", "b"), ("custom", "c")], instruction="Answer.", judge=("custom", "j")
    )
    rows = [{"text": f"t{i}"} for i in range(6)]
    coders: list[tuple[Any, Any, Any]] = [
        (text("Yes"), text("  yes "), text("YES")),  # the same answer, spacing and case aside
        (text("yes"), text("yes"), text("no")),  # the judge decides
        (text("yes"), text("yes"), text("no")),  # the judge failed: two of three is a majority
        (text("yes"), text("no"), (FAILED, None)),  # one each, one missing: undecided
        (text("a"), text("b"), text("c")),  # no majority, judge not answered yet
        (text("yes"), text("yes"), (FAILED, None)),  # two of three answered alike
    ]
    judge = {
        0: (SKIPPED, None),
        1: (OK, {"answer": "no", "reason": "Row 1 says no."}),
        2: (FAILED, None),
        3: (FAILED, None),
        5: (FAILED, None),
    }
    answers: Answers = {(r, 0, a, 0): coders[r][a] for r in range(6) for a in range(3)}
    answers |= {(r, 1, 3, 0): verdict for r, verdict in judge.items()}
    run = ledger_run(db, plan, rows, answers)
    table = table_for(run)
    statuses = [f"{n}_{w}" for n in ("a", "b", "c", "judge") for w in ("status", "error")]
    assert table.columns() == ["text", "a", "b", "c", "consensus", "agreed", "judge_reason", "decided_by", *statuses]
    out = table.frame(db, run)
    assert out["decided_by"].tolist() == ["unanimous", "judge", "majority", "undecided", "undecided", "majority"]
    assert out["consensus"].tolist()[:3] == ["Yes", "no", "yes"] and out["consensus"].iloc[5] == "yes"
    assert out["consensus"].iloc[3:5].isna().all()
    assert out["agreed"].tolist() == [True, False, False, False, False, False]
    assert out["judge_reason"].iloc[1] == "Row 1 says no." and out["judge_reason"].drop(index=1).isna().all()
    assert out["judge_status"].tolist() == ["skipped", "succeeded", "failed", "failed", "pending", "failed"]
    assert out["c_error"].iloc[3] == "failed here" and out["c"].isna().iloc[3]


def test_consensus_of_structured_answers_has_a_column_per_field(db):
    schema = {"fields": {"label": {"type": "string"}, "score": {"type": "integer"}}}
    plan = consensus_plan(
        [("custom", "a")], instruction="Label.", samples=2, output_schema=schema, judge=("custom", "a")
    )
    assert [a.name for a in plan.arms] == ["a", "a (judge)"]  # the judge gets a name of its own
    rows = [{"text": "x"}, {"text": "y"}]
    answers: Answers = {
        (0, 0, 0, 0): (OK, {"label": "Pos", "score": 2}),
        (0, 0, 0, 1): (OK, {"label": "pos ", "score": 2}),
        (0, 1, 1, 0): (SKIPPED, None),
        (1, 0, 0, 0): (OK, {"label": "pos", "score": 2}),
        (1, 0, 0, 1): (OK, {"label": "neg", "score": 1}),
        (1, 1, 1, 0): (OK, {"label": "neg", "score": 1, "reason": "Because."}),
    }
    run = ledger_run(db, plan, rows, answers)
    table = table_for(run)
    outputs = ["a#1.label", "a#1.score", "a#2.label", "a#2.score"]
    assert table.columns()[: 1 + 4 + 5] == ["text", *outputs, "consensus.label", "consensus.score", *EXTRA_AFTER]
    out = table.frame(db, run)
    assert out[["consensus.label", "consensus.score", "decided_by"]].values.tolist() == [
        ["Pos", 2, "unanimous"],
        ["neg", 1, "judge"],
    ]
    assert out["judge_reason"].tolist()[1] == "Because."


def test_percent_agreement_leaves_out_rows_a_model_did_not_answer(db):
    plan = compare_plan([("custom", "a"), ("custom", "b"), ("custom", "c")], instruction="Label.")
    rows = [{"text": f"t{i}"} for i in range(5)]
    grid = [
        ("x", "x", "x"),
        ("x", "X ", "y"),
        ("x", None, "x"),  # b failed
        ("y", "y", "y"),
        ("z", "z", None),  # c still pending
    ]
    answers: Answers = {}
    for r, row in enumerate(grid):
        for a, value in enumerate(row):
            if value is not None:
                answers[(r, 0, a, 0)] = text(value)
    answers[(2, 0, 1, 0)] = (FAILED, None)
    run = ledger_run(db, plan, rows, answers)
    agreement = compare_agreement(db, run, Plan.of(run))
    assert (agreement.n_rows, agreement.n_units, agreement.percent) == (5, 3, pytest.approx(2 / 3))
    pairs = {p.raters: (p.n, p.percent) for p in agreement.pairwise}
    assert pairs == {
        ("a", "b"): (4, 1.0),
        ("a", "c"): (4, pytest.approx(3 / 4)),
        ("b", "c"): (3, pytest.approx(2 / 3)),
    }
    assert "66.7% over 3 of 5 rows" in agreement.describe()
    out = table_for(run).frame(db, run)
    assert out["all_agree"].tolist() == [True, False, None, True, None]


def test_the_table_streams_in_chunks_that_add_up_to_the_whole(db):
    plan = compare_plan([("custom", "a"), ("custom", "b")], instruction="Label.")
    rows = [{"text": f"t{i}"} for i in range(7)]
    answers: Answers = {(r, 0, a, 0): text(f"{r}-{a}") for r in range(7) for a in range(2)}
    run = ledger_run(db, plan, rows, answers)
    table = table_for(run)
    chunks = list(table.frames(db, run, chunk=3))
    assert [len(c) for c in chunks] == [3, 3, 1]
    whole = table.frame(db, run)
    assert whole["a"].tolist() == [f"{r}-0" for r in range(7)] and whole["b"].tolist() == [f"{r}-1" for r in range(7)]
    assert [c for chunk in chunks for c in chunk["text"]] == whole["text"].tolist()
    some = table.frame(db, run, rows=[1, 5])
    assert some["text"].tolist() == ["t1", "t5"]


def test_a_pipeline_table_names_each_steps_arms_and_samples(db):
    plan = Plan(
        "pipeline",
        (Arm("m1", "custom", "x"), Arm("m2", "custom", "y", samples=2)),
        (
            Step("tag", "Tag.", ("m1",), output_schema={"fields": {"tag": {"type": "string"}}}),
            Step("vote", "Vote.", ("m1", "m2")),
        ),
    )
    rows = [{"text": "hello"}]
    answers: Answers = {
        (0, 0, 0, 0): (OK, {"tag": "greeting"}),
        (0, 1, 0, 0): text("v1"),
        (0, 1, 1, 0): text("v2"),
        (0, 1, 1, 1): (SKIPPED, None),
    }
    run = ledger_run(db, plan, rows, answers)
    table = table_for(run)
    names = ["tag", "vote/m1", "vote/m2#1", "vote/m2#2"]
    assert table.columns() == [
        "text",
        "tag.tag",
        "vote/m1",
        "vote/m2#1",
        "vote/m2#2",
        *[f"{n}_{w}" for n in names for w in ("status", "error")],
    ]
    got = table.frame(db, run).iloc[0]
    assert (got["tag.tag"], got["vote/m1"], got["vote/m2#1"]) == ("greeting", "v1", "v2")
    assert got["vote/m2#2_status"] == "skipped" and got["vote/m2#2"] is None
