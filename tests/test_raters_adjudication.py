"""Codebook versions, human codes and decisions in the ledger, a run read as units x raters, and
the disagreement queue (issue 12). Runs go through the real engine and `openai` client to the
fake server; the ledger is a real SQLite file, and a real PostgreSQL database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from handai_db import ADJUDICATED_RATER, Database, RatingKind, RunStatus
from handai_engine import Engine, RunSettings
from providers import Connection
from research.adjudication import BY_DISAGREEMENT, BY_JUDGE, disagreements, summary
from research.consensus import consensus_plan
from research.raters import ADJUDICATED, CONSENSUS, HUMAN, MODEL, align_codes, coded_frame, rater_table
from tests.fake_llm_server import FakeLLMServer

pytestmark = pytest.mark.ledger_backends

SCHEMA = {
    "fields": {
        "label": {"type": "category", "labels": ["x", "y"], "description": ""},
        "rationale": {"type": "string", "description": ""},
    }
}


def _run(engine: Engine, llm: FakeLLMServer, n: int, *, compare_on: tuple[str, ...] = ("label",)) -> int:
    conn = Connection("custom", api_key="k", base_url=llm.url)
    plan = consensus_plan(
        [("custom", "fake-a"), ("custom", "fake-b")],
        instruction="Code it.",
        judge=("custom", "fake-judge"),
        output_schema=SCHEMA,
        compare_on=compare_on,
    )
    rows = pd.DataFrame({"id": [f"u{i}" for i in range(n)], "text": [f"text {i}" for i in range(n)]})
    run_id = engine.create_plan_run(rows, plan, {"custom": conn}, RunSettings("custom", "unused"))
    engine.start(run_id, {"custom": conn})
    assert engine.wait(run_id, 60).status == RunStatus.COMPLETED
    return run_id


def _answers(**by_model: str) -> dict[str, str]:
    return dict(by_model)


# -- the ledger ---------------------------------------------------------------------------------
def test_codebook_versions_are_numbered_and_never_overwritten(db: Database) -> None:
    first = db.save_codebook("Reasons", {"codes": [{"name": "price"}]}, note="first")
    same = db.save_codebook("Reasons", {"codes": [{"name": "price"}]})
    second = db.save_codebook("Reasons", {"codes": [{"name": "price"}, {"name": "service"}]}, source="edited")
    assert (first.version, same.version, second.version) == (1, 1, 2)
    book = db.find_codebook("Reasons")
    assert [v.version for v in db.codebook_versions(book.id)] == [2, 1]
    assert db.codebook_version(book.id, 1).content == {"codes": [{"name": "price"}]}
    assert db.codebook_version(book.id).version == 2
    [(listed, latest)] = db.list_codebooks()
    assert (listed.name, latest.version, latest.source) == ("Reasons", 2, "edited")
    with pytest.raises(ValueError, match="name"):
        db.save_codebook("  ", {})
    db.delete_codebook(book.id)
    assert db.list_codebooks() == [] and db.find_codebook("Reasons") is None


def test_a_database_from_before_codebooks_gains_their_tables(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    Database(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        for table in ("ratings", "codebook_versions", "codebooks"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DELETE FROM migrations WHERE name = '0006_codebooks_and_ratings'")
    db = Database(f"sqlite:///{path}")
    assert db.save_codebook("B", {"codes": []}).version == 1
    db.close()


def test_human_codes_and_decisions_are_kept_with_who_and_missing_stays_missing(db: Database) -> None:
    run_id = db.create_run([{"t": "a"}, {"t": "b"}, {"t": "c"}], provider="custom", model="m")
    db.save_ratings(run_id, "Ann", {0: "x", 1: None, 2: "none"}, author="Ann")
    db.save_ratings(run_id, "Ann", {2: "y"}, author="Ann")  # overwrites one row only
    with pytest.raises(ValueError, match="who settled"):
        db.settle(run_id, 0, "x", author=" ")
    db.settle(run_id, 1, ["x", "y"], author="Bo", note="both apply")
    by = {(r.rater, r.row_index): r for r in db.ratings(run_id)}
    assert by[("Ann", 0)].value == "x" and by[("Ann", 1)].value is None and by[("Ann", 2)].value == "y"
    decision = by[(ADJUDICATED_RATER, 1)]
    assert (decision.kind, decision.value, decision.author, decision.note) == (
        RatingKind.ADJUDICATED,
        ["x", "y"],
        "Bo",
        "both apply",
    )
    assert any("Row 2 settled as" in line.message and "Bo" in line.message for line in db.logs(run_id))
    assert len(db.ratings(run_id, RatingKind.HUMAN)) == 3
    with pytest.raises(ValueError, match="settled decisions only"):  # a coder cannot pose as the decisions
        db.save_ratings(run_id, ADJUDICATED_RATER, {0: "y"})
    with pytest.raises(ValueError, match="settled decisions only"):
        db.save_ratings(run_id, "Ann", {0: "y"}, kind=RatingKind.ADJUDICATED)
    assert db.delete_ratings(run_id, "Ann") == 3 and len(db.ratings(run_id)) == 1


# -- agreement on the code, not the rationale ------------------------------------------------------
def test_coders_that_agree_on_the_code_but_not_the_reason_need_no_judge(
    engine: Engine, db: Database, llm: FakeLLMServer
) -> None:
    llm.configure(
        answers=_answers(
            **{
                "fake-a": '{"label": "x", "rationale": "one reason"}',
                "fake-b": '{"label": "x", "rationale": "another reason"}',
            }
        )
    )
    run_id = _run(engine, llm, 4)
    judged = [r for r in llm.requests() if r.model == "fake-judge"]
    assert judged == []
    table = rater_table(db, db.get_run(run_id))
    assert table.frame[CONSENSUS].tolist() == ["x"] * 4
    llm.reset()
    llm.configure(
        answers=_answers(
            **{
                "fake-a": '{"label": "x", "rationale": "one reason"}',
                "fake-b": '{"label": "x", "rationale": "another reason"}',
            }
        )
    )
    _run(engine, llm, 4, compare_on=())  # every field compared: the reasons differ, so a judge is asked
    assert len([r for r in llm.requests() if r.model == "fake-judge"]) == 4


# -- a run as units x raters ----------------------------------------------------------------------
@pytest.fixture
def divided(engine: Engine, db: Database, llm: FakeLLMServer) -> int:
    """Two model coders that say x on both rows, each with its own reason; people who differ are
    added by each test."""
    llm.configure(
        answers=_answers(
            **{
                "fake-a": '{"label": "x", "rationale": "a says x"}',
                "fake-b": '{"label": "x", "rationale": "b says x"}',
                "fake-judge": '{"label": "y", "rationale": "-", "reason": "judge prefers y"}',
            }
        )
    )
    return _run(engine, llm, 2)


def test_rater_table_has_models_consensus_humans_and_decisions(db: Database, divided: int) -> None:
    db.save_ratings(divided, "Ann", {0: "y", 1: "x"}, author="Ann")
    db.save_ratings(divided, "fake-a", {0: "x"}, author="a person called like a model")
    table = rater_table(db, db.get_run(divided))
    assert table.names(MODEL) == ["fake-a", "fake-b"]
    assert table.names(HUMAN) == ["Ann", "fake-a (human)"]
    assert table.names(CONSENSUS) == [CONSENSUS]
    assert table.frame["Ann"].tolist() == ["y", "x"]
    assert table.frame["fake-a (human)"].tolist() == ["x", None]
    assert table.reasons["fake-a"] == {0: "a says x", 1: "a says x"}
    queue = disagreements(table)
    assert [d.row for d in queue] == [0]  # row 1: everyone said x; row 0: Ann said y
    assert queue[0].answers == {"fake-a": "x", "fake-b": "x", "Ann": "y", "fake-a (human)": "x"}
    assert queue[0].options == ["x", "y"] and queue[0].divided == pytest.approx(0.25)
    db.settle(divided, 0, "y", author="Bo")
    table = rater_table(db, db.get_run(divided))
    assert table.names(ADJUDICATED) == [ADJUDICATED] and table.frame[ADJUDICATED].tolist() == ["y", None]
    assert disagreements(table) == []
    assert [d.settled for d in disagreements(table, include_settled=True)] == ["y"]
    assert summary(table) == {"rows": 2, "disagreements": 1, "settled": 1, "open": 0}
    coded = coded_frame(table)
    assert list(coded.columns[:3]) == ["row", "id", "text"]
    assert coded["row"].tolist() == [1, 2] and coded[ADJUDICATED].iloc[0] == "y" and pd.isna(coded[ADJUDICATED].iloc[1])
    assert coded["fake-a reason"].tolist() == ["a says x", "a says x"]


def test_the_queue_puts_the_most_divided_rows_and_judged_rows_first(db: Database, divided: int) -> None:
    db.save_ratings(divided, "Ann", {0: "y", 1: "y"}, author="Ann")
    db.save_ratings(divided, "Cy", {0: "none", 1: "y"}, author="Cy")
    table = rater_table(db, db.get_run(divided))
    queue = disagreements(table, order=BY_DISAGREEMENT)
    # both rows are half divided; row 0 (x, x, y, none) has more distinct codes than row 1 (x, x, y, y)
    assert [(d.row, d.divided, d.distinct) for d in queue] == [(0, 0.5, 3), (1, 0.5, 2)]
    assert {d.row for d in disagreements(table, order=BY_JUDGE)} == {0, 1}
    only_humans = disagreements(table, coders=["Ann", "Cy"])
    assert [d.row for d in only_humans] == [0]


def test_imported_codes_are_matched_by_an_id_or_by_position() -> None:
    inputs = pd.DataFrame({"id": ["a", "b", "c"], "text": ["t1", "t2", "t3"]})
    upload = pd.DataFrame({"id": ["c", "a", "zz"], "Ann": ["x", " ", "y"], "Bo": ["none", "y", None]})
    codes, how = align_codes(inputs, upload, ["Ann", "Bo"], key="id")
    assert codes == {"Ann": {2: "x", 0: None}, "Bo": {2: "none", 0: "y"}}
    assert "2 of 3" in how and "1 not found" in how
    codes, how = align_codes(inputs, upload.head(2), ["Ann"])
    assert codes == {"Ann": {0: "x", 1: None}} and "position" in how
    codes, _ = align_codes(inputs, upload, ["Ann"], key="id", labels=["X", "Y"])
    assert codes == {"Ann": {2: "X", 0: None}}  # "x" is the codebook's label "X"
    multi = pd.DataFrame({"Ann": ["x; y", "y", ""]})
    codes, _ = align_codes(inputs, multi, ["Ann"], labels=["x", "y"], multi_label=True)
    assert codes == {"Ann": {0: ["x", "y"], 1: ["y"], 2: None}}
    with pytest.raises(ValueError, match="repeats"):
        align_codes(inputs, pd.DataFrame({"id": ["a", "a"], "Ann": ["x", "y"]}), ["Ann"], key="id")
    with pytest.raises(ValueError, match="in the run's rows"):  # a run's own id column must be an id too
        align_codes(pd.DataFrame({"id": ["a", "a", "b"]}), upload, ["Ann"], key="id")
    with pytest.raises(ValueError, match="both"):
        align_codes(inputs, upload, ["Ann"], key="nope")


def test_the_queue_compares_codes_as_the_statistics_do(db: Database, divided: int) -> None:
    """ "Other" and "other" are two codes in every figure, so they are a disagreement here too."""
    db.save_ratings(divided, "Ann", {0: "Other", 1: "x "}, author="Ann")
    db.save_ratings(divided, "Bo", {0: "other", 1: "x"}, author="Bo")
    table = rater_table(db, db.get_run(divided))
    assert [d.row for d in disagreements(table, coders=["Ann", "Bo"])] == [0]  # "x " is "x"
