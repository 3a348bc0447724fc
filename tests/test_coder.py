"""The Qualitative coder: its plan, the answer check (codes, off-codebook answers, evidence quotes),
its table and figures; then whole runs through the real engine and `openai` client against the
fake server. Expected answers come from the fake server's documented rules, never from the code
under test."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest

from handai_db import RunStatus
from handai_engine import Engine, Plan, PlanError, RunSettings, Step
from providers import Connection
from research.codebook import Code, Codebook
from research.coder import (
    AnswerCheck,
    check_answer,
    coder_plan,
    coder_summary,
    coder_table,
    normalize_quote,
    plan_codebook,
    quote_in,
    source_text,
    with_codebook,
)
from research.compare import compare_plan
from research.consensus import consensus_plan
from tests.fake_llm_server import disagrees

CB = Codebook(
    "Complaints",
    (
        Code("price", "Cost or value for money.", examples=("too expensive",)),
        Code("quality", "Breaks or works badly."),
        Code("delivery", "Late or damaged delivery."),
    ),
)
MULTI = Codebook("Complaints", CB.codes, multi_label=True)
REF = {"id": 7, "name": "Complaints", "version": 3}
OPENAI_KEY = "sk-proj-" + "a" * 40


# -- planning -----------------------------------------------------------------------------------
def test_the_plan_is_one_code_step_with_the_codebook_recorded():
    plan = coder_plan(
        CB,
        [("custom", "fake-small"), ("custom", "fake-alt")],
        task="Code it.",
        columns=["text"],
        codebook_ref=REF,
        samples=2,
        temperature=0.7,
    )
    assert plan.tool == "coder" and [s.name for s in plan.steps] == ["code"]
    step = plan.steps[0]
    assert step.arms == ("fake-small", "fake-alt") and step.columns == ("text",)
    assert step.output_schema == CB.output_schema()
    assert step.instruction == CB.instruction("Code it.")
    assert {a.samples for a in plan.arms} == {2} and {a.temperature for a in plan.arms} == {0.7}
    assert plan.codebook == {
        "ref": REF,
        "content": CB.record(),
        "task": "Code it.",
        "rationale": True,
        "evidence": True,
    }
    assert step.compare_on == ("code",)
    plan.validate(["text"])
    sent = plan.with_sent()
    assert 'Use only these codes, spelled exactly as given: "price", "quality", "delivery", "none"' in (
        sent.sent["code/fake-small"].system
    )
    again = Plan.from_record(json.loads(json.dumps(sent.record())))
    assert again.codebook == plan.codebook and plan_codebook(again) == CB


def test_the_plan_refuses_a_broken_codebook_or_no_model():
    with pytest.raises(PlanError, match="no codes"):
        coder_plan(Codebook("x", ()), [("custom", "m")])
    with pytest.raises(PlanError, match="1 to 8 models"):
        coder_plan(CB, [])


def test_compare_and_consensus_take_a_codebook_the_same_way():
    spec = with_codebook(MULTI, task="Code it.", rationale=False, evidence=False)
    compare = compare_plan([("custom", "a"), ("custom", "b")], columns=["text"], **spec)
    assert compare.steps[0].output_schema["fields"]["codes"]["type"] == "categories"
    consensus = consensus_plan([("custom", "a"), ("custom", "b")], judge=("custom", "j"), **spec)
    judge = consensus.steps[1].output_schema["fields"]
    assert judge["codes"] == spec["output_schema"]["fields"]["codes"] and "reason" in judge
    # without a record, the codebook is read back from the schema's code field
    assert plan_codebook(compare).labels() == MULTI.labels()
    assert compare.steps[0].agreement_fields == ["codes"]
    assert consensus.steps[0].agreement_fields == consensus.steps[1].agreement_fields == ["codes"]
    full = compare_plan([("custom", "a"), ("custom", "b")], **with_codebook(CB))
    assert full.steps[0].agreement_fields == ["code"]


# -- checking one answer ------------------------------------------------------------------------
TEXT = "I paid £30 and it’s “way too expensive” for what it is.\nThe box arrived   late."


@pytest.mark.parametrize(
    ("quote", "found"),
    [
        ("way too expensive", True),
        ('"Way too   EXPENSIVE"', True),  # quote marks, case and spacing aside
        ("it's \u201cway too expensive\u201d", True),  # curly or straight apostrophes and quotes
        ("I paid ... for what it is", True),  # an ellipsis stands for left-out words, in order
        ("for what it is … I paid", False),
        ("box arrived late", True),
        ("the parcel was late", False),
    ],
)
def test_quotes_are_found_after_normalising(quote, found):
    assert quote_in(quote, normalize_quote(TEXT)) is found


def test_check_single_label():
    good = check_answer(CB, {"code": " Price ", "evidence": "way too expensive"}, TEXT)
    assert good == AnswerCheck(["price"], [], ["way too expensive"], [])
    assert good.evidence_found is True
    off = check_answer(CB, {"code": "Shipping", "evidence": "arrived on time"}, TEXT)
    assert (off.codes, off.off_codebook, off.quotes_missing) == (["Shipping"], ["Shipping"], ["arrived on time"])
    assert off.evidence_found is False
    assert check_answer(CB, None, TEXT) == AnswerCheck()
    assert check_answer(CB, {"code": "none"}, TEXT).evidence_found is None


def test_check_multi_label():
    parsed = {"codes": ["price", "delivery", "banana"], "evidence": {"price": "too expensive", "delivery": "lost"}}
    check = check_answer(MULTI, parsed, TEXT)
    assert check.codes == ["price", "delivery", "banana"]
    assert check.off_codebook == ["banana"]
    assert check.quotes_missing == ["lost"] and check.evidence_found is False
    assert check_answer(MULTI, {"codes": "Price; DELIVERY"}, TEXT).codes == ["price", "delivery"]
    assert check_answer(MULTI, {"codes": ["price"], "evidence": ["way too", ""]}, TEXT).evidence_found is True


def test_source_text_is_the_row_as_sent():
    row = {"id": 1, "text": "hello", "note": None}
    assert source_text(Step("code", "i", ("a",), columns=("text",)), row) == "hello"
    assert source_text(Step("code", "i", ("a",)), row) == "1\nhello"
    assert source_text(Step("code", "i", ("a",), row_template="Text: {text} ({id})"), row) == "Text: hello (1)"


# -- the table and the figures from ledger-shaped cells -------------------------------------------
def cell(step, arm, status="succeeded", parsed=None, error_kind=None, sample=0):
    return SimpleNamespace(
        step=step, arm=arm, sample=sample, status=status, parsed=parsed, error_kind=error_kind, error_message=None
    )


def test_one_coder_table():
    plan = coder_plan(CB, [("custom", "m")], columns=["text"])
    table = coder_table(plan, ["id", "text"])
    assert table.columns() == [
        "id",
        "text",
        "code",
        "rationale",
        "evidence",
        "off_codebook",
        "evidence_found",
        "m_status",
        "m_error",
    ]
    parsed = {"code": "Shipping", "rationale": "r", "evidence": "way too expensive"}
    record = table.record({"id": 1, "text": TEXT}, [cell(0, 0, parsed=parsed)])
    assert record["code"] == "Shipping" and record["off_codebook"] == "Shipping"
    assert record["evidence_found"] is True and record["m_status"] == "succeeded"
    empty = table.record({"id": 2, "text": TEXT}, [cell(0, 0, status="failed")])
    assert (empty["code"], empty["off_codebook"], empty["evidence_found"]) == (None, None, None)


def test_several_coders_table_joins_codes_and_says_if_they_agree():
    plan = coder_plan(MULTI, [("custom", "a"), ("custom", "b")], columns=["text"], rationale=False)
    table = coder_table(plan, ["text"])
    assert table.columns() == [
        "text",
        "a.codes",
        "a.evidence",
        "a.evidence_found",
        "b.codes",
        "b.evidence",
        "b.evidence_found",
        "off_codebook",
        "all_agree",
        "a_status",
        "a_error",
        "b_status",
        "b_error",
    ]
    a = {"codes": ["price", "delivery"], "evidence": {"price": "too expensive", "delivery": "it came late"}}
    b = {"codes": ["delivery", "price", "kiwi"], "evidence": {"price": "too expensive"}}
    record = table.record({"text": TEXT}, [cell(0, 0, parsed=a), cell(0, 1, parsed=b)])
    assert record["a.codes"] == "price; delivery"
    assert record["a.evidence"] == "price: too expensive; delivery: it came late"
    assert (record["a.evidence_found"], record["b.evidence_found"]) == (False, True)  # "it came late" is not verbatim
    assert record["off_codebook"] == "b: kiwi" and record["all_agree"] is False
    b["codes"] = ["delivery", "price"]
    assert table.record({"text": TEXT}, [cell(0, 0, parsed=a), cell(0, 1, parsed=b)])["all_agree"] is True


def test_summary_counts_every_kind_of_cell():
    plan = coder_plan(CB, [("custom", "a"), ("custom", "b")], columns=["text"])
    rows = [
        (
            0,
            {"text": TEXT},
            [
                cell(0, 0, parsed={"code": "price", "evidence": "too expensive"}),
                cell(0, 1, parsed={"code": "banana", "evidence": "nowhere"}),
            ],
        ),
        (
            1,
            {"text": TEXT},
            [cell(0, 0, parsed={"code": "none"}), cell(0, 1, status="failed", error_kind="unparseable")],
        ),
        (2, {"text": TEXT}, [cell(0, 0, status="failed", error_kind="server_error"), cell(0, 1, status="pending")]),
        (3, {"text": TEXT}, [cell(0, 0, parsed={"code": ""}), cell(0, 1, parsed={"code": " "})]),  # no code given
    ]
    summary = coder_summary(plan, rows).as_dict()
    assert summary == {
        "cells": 8,
        "coded": 2,
        "empty": 2,
        "off_codebook": 1,
        "none": 1,
        "unparseable": 1,
        "failed": 1,
        "not_done": 1,
        "quotes_checked": 2,
        "quotes_missing": 1,
        "code_counts": {"price": 1, "banana": 1, "none": 1},
        "off_answers": {"banana": 1},
    }


# -- whole runs against the fake server ------------------------------------------------------------
def run_plan(engine: Engine, rows: pd.DataFrame, plan: Plan, conns) -> int:
    run_id = engine.create_plan_run(rows, plan, conns, RunSettings("custom", "unused", concurrency=4))
    engine.start(run_id, conns)
    final = engine.wait(run_id, 60)
    assert final.status == RunStatus.COMPLETED, final.stop_reason
    return run_id


def listed(column: pd.Series) -> list:
    """A column's values with pandas' missing values as None."""
    return [None if pd.isna(v) else v for v in column]


def user_of(text: str) -> str:
    return json.dumps({"text": text}, ensure_ascii=False)


REVIEWS = [
    f"review {i}: {'the price was high' if i % 2 else 'it broke, then arrived late'}{'!' * (i % 3)}" for i in range(12)
]


def test_an_enforcing_provider_gets_the_enum_and_answers_within_the_codebook(engine, db, llm):
    plan = coder_plan(
        CB,
        [("openai", "gpt-4o-mini"), ("openai", "fake-alt")],
        columns=["text"],
        endpoints={"openai": {"base_url": llm.url}},
        codebook_ref=REF,
    )
    run_id = run_plan(engine, pd.DataFrame({"text": REVIEWS}), plan, Connection("openai", api_key=OPENAI_KEY))
    run = db.get_run(run_id)
    sent = run.plan["sent"]["code/gpt-4o-mini"]["params"]["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["schema"]["properties"]["code"]["enum"] == CB.labels()
    assert (run.plan["codebook"]["ref"], run.plan["codebook"]["content"]) == (REF, CB.record())

    labels = CB.labels()
    out = coder_table(Plan.of(run), run.input_columns).frame(db, run)
    for model in ("gpt-4o-mini", "fake-alt"):
        expected = [labels[(len(user_of(t)) + disagrees(model, user_of(t))) % len(labels)] for t in REVIEWS]
        assert out[f"{model}.code"].tolist() == expected
        # the fake server's evidence ("evidence of <message>") is not in the text: flagged, never hidden
        assert out[f"{model}.evidence_found"].tolist() == [False] * len(REVIEWS)
        assert out[f"{model}.evidence"].str.startswith("evidence").all()
    assert out["off_codebook"].isna().all()
    summary = coder_summary(Plan.of(run), db.iter_rows(run_id))
    assert (summary.cells, summary.coded, summary.off_codebook, summary.quotes_missing) == (24, 24, 0, 24)


def test_off_codebook_answers_are_kept_counted_and_shown(engine, db, llm):
    texts = [
        "The price [[pick:price]] was high",
        "It broke [[pick:quality]] quickly",
        "Bananas [[pick:banana]] everywhere",  # an answer outside the codebook
        "Plain text [[pick:NONE]]",  # the none option, in another case
    ]
    plan = coder_plan(CB, [("custom", "fake-small")], columns=["text"])
    run_id = run_plan(
        engine, pd.DataFrame({"id": range(4), "text": texts}), plan, Connection("custom", api_key="k", base_url=llm.url)
    )
    run = db.get_run(run_id)
    sent = run.plan["sent"]["code/fake-small"]["params"]
    assert sent.get("response_format", {}).get("type") != "json_schema"  # no enum: the model may stray
    results = db.results(run_id)
    assert [r.status for r in results] == ["succeeded"] * 4
    assert results[2].parsed["code"] == "banana" and results[2].flags == {"code": "banana"}

    out = coder_table(Plan.of(run), run.input_columns).frame(db, run)
    assert out["code"].tolist() == ["price", "quality", "banana", "none"]
    assert listed(out["off_codebook"]) == [None, None, "banana", None]
    assert listed(out["evidence_found"]) == [True] * 4  # the marker (and so the forced quote) is in the text
    summary = coder_summary(Plan.of(run), db.iter_rows(run_id)).as_dict()
    assert summary | {"code_counts": None} == {
        "cells": 4,
        "coded": 3,
        "empty": 0,
        "off_codebook": 1,
        "none": 1,
        "unparseable": 0,
        "failed": 0,
        "not_done": 0,
        "quotes_checked": 4,
        "quotes_missing": 0,
        "code_counts": None,
        "off_answers": {"banana": 1},
    }


def test_a_quote_not_in_the_text_is_flagged(engine, db, llm):
    llm.configure(
        answers={"fake-large": json.dumps({"code": "price", "rationale": "r", "evidence": "“Too EXPENSIVE”"})}
    )
    texts = ["It is way too   expensive.", "Cheap enough, I'd say.", "TOO expensive!"]
    plan = coder_plan(CB, [("custom", "fake-large")], row_template="Review: {text}")
    run_id = run_plan(engine, pd.DataFrame({"text": texts}), plan, Connection("custom", api_key="k", base_url=llm.url))
    run = db.get_run(run_id)
    out = coder_table(Plan.of(run), run.input_columns).frame(db, run)
    assert listed(out["evidence_found"]) == [True, False, True]
    assert out["evidence"].tolist() == ["“Too EXPENSIVE”"] * 3  # shown as the model gave it
    summary = coder_summary(Plan.of(run), db.iter_rows(run_id))
    assert (summary.coded, summary.quotes_checked, summary.quotes_missing) == (3, 3, 1)


def test_multi_label_runs_give_lists_of_codes(engine, db, llm):
    plan = coder_plan(MULTI, [("openai", "gpt-4o-mini")], columns=["text"], endpoints={"openai": {"base_url": llm.url}})
    rows = REVIEWS[:8]
    run_id = run_plan(engine, pd.DataFrame({"text": rows}), plan, Connection("openai", api_key=OPENAI_KEY))
    run = db.get_run(run_id)
    prop = run.plan["sent"]["code/gpt-4o-mini"]["params"]["response_format"]["json_schema"]["schema"]["properties"]
    assert prop["codes"]["items"]["enum"] == MULTI.labels()
    labels = MULTI.labels()

    def expected(text: str) -> list[str]:  # the fake server's documented rule for an array of enum items
        n, first = len(user_of(text)), len(user_of(text)) % len(labels)
        return [labels[first], labels[(first + 1) % len(labels)]] if n % 2 == 0 else [labels[first]]

    results = db.results(run_id)
    assert [r.parsed["codes"] for r in results] == [expected(t) for t in rows]
    assert any(len(expected(t)) == 2 for t in rows) and any(len(expected(t)) == 1 for t in rows)
    out = coder_table(Plan.of(run), run.input_columns).frame(db, run)
    assert out["codes"].tolist() == ["; ".join(expected(t)) for t in rows]
    assert out["off_codebook"].isna().all()


def test_multi_label_off_codebook_through_a_custom_provider(engine, db, llm):
    texts = ["cheap and late [[pick:price;banana]]", "fine [[pick:delivery]]"]
    plan = coder_plan(MULTI, [("custom", "fake-small")], columns=["text"], evidence=False)
    run_id = run_plan(engine, pd.DataFrame({"text": texts}), plan, Connection("custom", api_key="k", base_url=llm.url))
    run = db.get_run(run_id)
    results = db.results(run_id)
    assert [r.parsed["codes"] for r in results] == [["price", "banana"], ["delivery"]]
    assert results[0].flags == {"codes": ["banana"]} and results[1].flags is None
    out = coder_table(Plan.of(run), run.input_columns).frame(db, run)
    assert out["codes"].tolist() == ["price; banana", "delivery"]
    assert listed(out["off_codebook"]) == ["banana", None]
