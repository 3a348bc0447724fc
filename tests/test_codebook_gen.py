"""The codebook generator's planning and parsing: chunks of texts, the themes run's and the
consolidation run's plans, the one consolidation row, and a draft codebook read tolerantly from
what the model answered; then both runs end to end through the real engine and the fake server
(which answers in the schema's shape, so these assert the plumbing, not the model's judgement)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from handai_db import RunStatus
from handai_engine import Engine, Plan, PlanError, RunSettings
from providers import Connection
from research.codebook import Code, CodebookError
from research.codebook_gen import (
    CUT,
    MODES,
    chunk_rows,
    consolidate_plan,
    consolidation_rows,
    draft_codebook,
    themes_plan,
)

MODEL = ("custom", "fake-small")


# -- chunks ---------------------------------------------------------------------------------------
def test_texts_are_numbered_and_chunked_by_size_and_count():
    texts = [f"text number {i}" for i in range(10)]
    rows = chunk_rows(texts, max_chars=8000, max_texts=4)
    assert [(r["chunk"], r["n_texts"]) for r in rows] == [(1, 4), (2, 4), (3, 2)]
    assert rows[0]["texts"] == "[1] text number 0\n\n[2] text number 1\n\n[3] text number 2\n\n[4] text number 3"
    by_size = chunk_rows(["x" * 150] * 6, max_chars=400)
    assert [r["n_texts"] for r in by_size] == [2, 2, 2]
    assert all(len(r["texts"]) <= 400 for r in by_size)


def test_blank_texts_are_left_out_but_keep_their_number():
    rows = chunk_rows(["a", "", None, "  ", "b"])
    assert rows == [{"chunk": 1, "texts": "[1] a\n\n[5] b", "n_texts": 2}]
    assert chunk_rows([]) == []


def test_a_long_text_is_cut_and_says_so():
    (row,) = chunk_rows(["y" * 5000], max_chars=1000)
    assert len(row["texts"]) <= 1000
    assert row["texts"].endswith(CUT.format(n=5000 - row["texts"].count("y")))
    assert row["texts"].startswith("[1] yyy")
    with pytest.raises(PlanError, match="at least 200"):
        chunk_rows(["a"], max_chars=10)


# -- plans ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_the_plans_are_valid_for_their_rows(mode):
    seeds = ("price", "quality") if mode != "inductive" else ()
    themes = themes_plan(MODEL, mode=mode, seeds=seeds, focus="Why do customers complain?")
    assert themes.tool == "codebook_themes" and [s.name for s in themes.steps] == ["themes"]
    themes.validate(list(chunk_rows(["a"])[0]))
    system = themes.with_sent().sent["themes/fake-small"].system
    assert "Research focus: Why do customers complain?" in system and '{"themes": "array"}' in system
    assert ('"price", "quality"' in system) == bool(seeds)

    merge = consolidate_plan(MODEL, mode=mode, n_codes=6, seeds=seeds, multi_label=mode == "hybrid")
    assert merge.tool == "codebook_consolidate"
    merge.validate(list(consolidation_rows([{"themes": ["x"]}])[0]))
    system = merge.with_sent().sent["consolidate/fake-small"].system
    assert '{"codes": "array"}' in system and "inclusion" in system
    if mode == "deductive":
        assert 'exactly these codes, in this order and named exactly so: "price", "quality"' in system
    elif mode == "inductive":
        assert "at most 6 codes" in system
    assert ("several codes" in system) == (mode == "hybrid")


def test_plans_refuse_unknown_modes_and_missing_seeds():
    with pytest.raises(PlanError, match="Unknown mode"):
        themes_plan(MODEL, mode="grounded")
    with pytest.raises(PlanError, match="deductive mode starts from given themes"):
        consolidate_plan(MODEL, mode="deductive", seeds=[" "])
    with pytest.raises(PlanError, match="1 to 50"):
        consolidate_plan(MODEL, mode="inductive", n_codes=0)


# -- consolidation row and draft -------------------------------------------------------------------
def test_consolidation_is_one_row_of_every_chunks_themes():
    outputs = [
        {"themes": [{"name": "price", "description": "cost", "examples": ["too dear", "£30"]}, "late"]},
        None,  # a chunk that failed
        {"themes": []},
        {"themes": json.dumps([{"theme": "quality", "quotes": "it broke"}])},  # a list sent as text
    ]
    (row,) = consolidation_rows(outputs)
    assert row["n_chunks"] == 2
    assert row["themes"] == (
        'Chunk 1:\n- price: cost (quotes: "too dear"; "£30")\n- late\n\nChunk 4:\n- quality (quotes: "it broke")'
    )
    with pytest.raises(CodebookError, match="No chunk returned any themes"):
        consolidation_rows([None, {"themes": []}, {"other": 1}])


def test_a_draft_is_read_from_whatever_shape_came_back():
    parsed = {
        "codebook": {
            "codes": [
                {"name": "Price", "description": "cost", "include": "mentions money", "examples": "a\nb"},
                {"code": "quality", "definition": "breaks", "exclusion_criteria": "price", "quotes": ["q"]},
                "delivery",
                {"name": " price "},  # a repeat
                {"definition": "no name"},
                7,
            ]
        }
    }
    draft = draft_codebook(parsed, name="Draft", multi_label=True)
    assert draft.name == "Draft" and draft.multi_label
    assert draft.codes == (
        Code("Price", "cost", "mentions money", "", ("a", "b")),
        Code("quality", "breaks", "", "price", ("q",)),
        Code("delivery"),
    )
    assert draft.problems() == []


def test_deductive_keeps_exactly_the_seeds_and_hybrid_adds_to_them():
    parsed = {"codes": [{"name": "PRICE", "definition": "cost"}, {"name": "new one"}]}
    deductive = draft_codebook(parsed, name="d", multi_label=False, mode="deductive", seeds=["price", "quality"])
    assert deductive.codes == (Code("price", "cost"), Code("quality"))
    hybrid = draft_codebook(parsed, name="h", multi_label=False, mode="hybrid", seeds=["price", "quality"])
    assert [c.name for c in hybrid.codes] == ["price", "quality", "new one"]


@pytest.mark.parametrize("parsed", [None, {}, {"codes": []}, {"codes": [{"definition": "x"}]}, {"answer": "sorry"}])
def test_nothing_usable_says_so(parsed):
    with pytest.raises(CodebookError, match="holds no codes"):
        draft_codebook(parsed, name="x", multi_label=False)


# -- end to end -----------------------------------------------------------------------------------
def run_plan(engine: Engine, rows: list[dict], plan: Plan, conn: Connection) -> list:
    run_id = engine.create_plan_run(pd.DataFrame(rows), plan, conn, RunSettings("custom", "unused", concurrency=3))
    engine.start(run_id, conn)
    final = engine.wait(run_id, 60)
    assert final.status == RunStatus.COMPLETED, final.stop_reason
    return run_id


TEXTS = [f"Customer {i}: {'too expensive' if i % 2 else 'arrived broken'} and {'late' * (i % 3)}" for i in range(25)]


def test_themes_then_consolidation_give_a_draft(engine, db, llm):
    conn = Connection("custom", api_key="k", base_url=llm.url)
    chunks = chunk_rows(TEXTS, max_chars=400)
    assert len(chunks) >= 3
    themes_run = run_plan(engine, chunks, themes_plan(MODEL, mode="inductive"), conn)
    sent = sorted(r.user for r in llm.requests())
    assert sent == sorted(f"Texts:\n\n{c['texts']}" for c in chunks)  # each chunk once, as its own row
    outputs = [r.parsed for r in db.results(themes_run)]
    assert all(isinstance(o["themes"], list) and o["themes"] for o in outputs)

    rows = consolidation_rows(outputs)
    assert len(rows) == 1 and rows[0]["n_chunks"] == len(chunks)
    for output in outputs:
        assert output["themes"][0] in rows[0]["themes"]
    llm.reset()
    merge_run = run_plan(engine, rows, consolidate_plan(MODEL, mode="inductive", n_codes=5), conn)
    assert [r.user for r in llm.requests()] == [f"Themes:\n\n{rows[0]['themes']}"]
    (result,) = db.results(merge_run)
    draft = draft_codebook(result.parsed, name="Draft", multi_label=False)
    assert [c.name for c in draft.codes] == result.parsed["codes"]  # the fake's names, carried through
    assert draft.problems() == []


def test_a_deductive_consolidation_with_a_full_answer(engine, db, llm):
    answer = {
        "codes": [
            {
                "name": "Price",
                "definition": "Cost.",
                "inclusion": "money",
                "exclusion": "delivery fees",
                "examples": ["too expensive"],
            },
            {"name": "invented", "definition": "not a seed"},
        ]
    }
    llm.configure(answers={"fake-large": json.dumps(answer)})
    conn = Connection("custom", api_key="k", base_url=llm.url)
    rows = consolidation_rows([{"themes": [{"name": "price", "examples": ["too expensive"]}]}])
    plan = consolidate_plan(("custom", "fake-large"), mode="deductive", seeds=["price", "quality"])
    (result,) = db.results(run_plan(engine, rows, plan, conn))
    draft = draft_codebook(
        result.parsed, name="Deductive", multi_label=False, mode="deductive", seeds=["price", "quality"]
    )
    assert draft.codes == (Code("price", "Cost.", "money", "delivery fees", ("too expensive",)), Code("quality"))
