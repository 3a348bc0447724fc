"""Steering a run: few-shot examples, categorical outputs, which rows, pre-flight, editing a run
before it is resumed or re-run, saved instructions, whole-run time, and what the log says."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest

from handai_db import RunStatus
from handai_engine import Engine, RunSettings, preflight, truncate_rows
from handai_io import RowSelection, select_rows
from handai_prompts import TemplateError, make_schema, schema_instruction
from providers import Connection, request_params
from tests.helpers import wait_until


def custom(llm) -> Connection:
    return Connection("custom", api_key="k", base_url=llm.url)


def run(engine: Engine, llm, df: pd.DataFrame, settings: RunSettings, conn: Connection | None = None) -> int:
    conn = conn or custom(llm)
    run_id = engine.create_transform_run(df, settings, conn)
    engine.start(run_id, conn)
    engine.wait(run_id, 60)
    return run_id


# -- few-shot examples ------------------------------------------------------------------------
def test_examples_are_sent_as_earlier_turns_and_recorded(engine, db, llm):
    examples = [{"input": "great film", "output": "positive"}, {"input": "dull", "output": "negative"}]
    settings = RunSettings("custom", "m", system_prompt="Sentiment.", examples=examples)
    run_id = run(engine, llm, pd.DataFrame({"text": ["lovely"]}), settings)
    assert db.get_run(run_id).params["examples"] == examples
    body = llm.llm.log[-1]
    assert body.user == '{"text": "lovely"}' and body.system == "Sentiment."
    # Changing the examples changes the request, so the cache does not answer from the old one.
    before = len(llm.requests())
    settings2 = RunSettings("custom", "m", system_prompt="Sentiment.", examples=examples[:1])
    run(engine, llm, pd.DataFrame({"text": ["lovely"]}), settings2)
    assert len(llm.requests()) == before + 1


def test_examples_reach_the_server_in_order(engine, llm):
    from handai_prompts import build_messages

    messages = build_messages("S", "row", [{"input": "a", "output": "b"}])
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert [m["content"] for m in messages] == ["S", "a", "b", "row"]


# -- categorical outputs ----------------------------------------------------------------------
SENTIMENT = [{"name": "sentiment", "type": "category", "labels": "positive, negative, neutral"}]


def test_a_category_field_lists_its_labels_and_needs_some():
    schema = make_schema(SENTIMENT)
    assert schema["fields"]["sentiment"]["labels"] == ["positive", "negative", "neutral"]
    assert 'Exactly one of: "positive", "negative", "neutral".' in schema_instruction(schema)
    with pytest.raises(TemplateError, match="needs its labels"):
        make_schema([{"name": "x", "type": "category", "labels": " , "}])


def test_providers_that_enforce_a_schema_get_the_labels_as_an_enum():
    from handai_prompts import json_schema

    schema = json_schema(make_schema(SENTIMENT))
    sent = request_params("openai", "gpt-4o-mini", json_mode=True, response_schema=schema)
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"]["properties"]["sentiment"]["enum"] == [
        "positive",
        "negative",
        "neutral",
    ]
    assert request_params("groq", "llama-3.3-70b-versatile", json_mode=True, response_schema=schema)[
        "response_format"
    ] == {"type": "json_object"}


def test_off_list_answers_are_kept_and_flagged(engine, db, llm):
    settings = RunSettings("custom", "m", output_schema=make_schema(SENTIMENT))
    run_id = run(engine, llm, pd.DataFrame({"text": ["a", "b"]}), settings)
    frame = db.results_frame(run_id)
    assert list(frame["ai_status"]) == ["succeeded", "succeeded"]
    assert frame["sentiment"].str.startswith("sentiment of").all()  # kept as the model said it
    assert frame["ai_flags"].str.contains("is not one of positive, negative, neutral").all()
    assert db.results(run_id)[0].flags == {"sentiment": frame["sentiment"][0]}


def test_an_enforced_enum_gives_listed_labels_and_no_flags(engine, db, llm):
    conn = Connection("openai", api_key="sk-proj-" + "a" * 40, base_url=llm.url)
    settings = RunSettings("openai", "gpt-4o-mini", output_schema=make_schema(SENTIMENT))
    run_id = run(engine, llm, pd.DataFrame({"text": ["a", "bb", "ccc"]}), settings, conn)
    frame = db.results_frame(run_id)
    assert set(frame["sentiment"]) <= {"positive", "negative", "neutral"}
    assert "ai_flags" not in frame.columns
    assert db.get_run(run_id).params["sent"]["response_format"]["type"] == "json_schema"


def test_a_label_in_another_case_is_the_label():
    from handai_prompts import parse_reply

    schema = make_schema(SENTIMENT)
    assert parse_reply('{"sentiment": " Positive "}', structured=True, schema=schema) == {"sentiment": "positive"}


# -- which rows -------------------------------------------------------------------------------
def test_row_selection_first_sample_and_filter():
    df = pd.DataFrame({"lang": ["en", "fi", "en", "de", "fi"], "text": list("abcde")})
    first, said = select_rows(df, RowSelection("first", n=2))
    assert list(first["text"]) == ["a", "b"] and said == "the first 2 of 5 rows"
    sample, said = select_rows(df, RowSelection("sample", n=3, seed=7))
    again, _ = select_rows(df, RowSelection("sample", n=3, seed=7))
    assert list(sample.index) == list(again.index) == sorted(sample.index) and "seed 7" in said
    fi, said = select_rows(df, RowSelection("filter", column="lang", values=["fi"]))
    assert list(fi["text"]) == ["b", "e"] and said == "2 of 5 rows where lang is one of fi"
    has, _ = select_rows(df, RowSelection("filter", column="text", contains="C"))
    assert list(has["text"]) == ["c"]
    with pytest.raises(ValueError, match="No column"):
        select_rows(df, RowSelection("filter", column="nope", values=["x"]))


def test_the_selection_is_recorded_on_the_run(engine, db, llm):
    df, said = select_rows(pd.DataFrame({"t": list("abcdef")}), RowSelection("sample", n=2, seed=1))
    conn = custom(llm)
    run_id = engine.create_transform_run(df, RunSettings("custom", "m"), conn, selection=said)
    assert db.get_run(run_id).params["selection"] == said and db.get_run(run_id).total_rows == 2


# -- pre-flight -------------------------------------------------------------------------------
def test_preflight_finds_rows_over_the_window_and_truncation_makes_them_fit():
    df = pd.DataFrame({"id": ["1", "2"], "text": ["short", "word " * 200_000]})
    settings = RunSettings("openai", "gpt-4o-mini", columns=["id", "text"], max_tokens=500)
    check = preflight(df, settings)
    assert check.window == 128_000 and check.over == [1] and check.largest > check.limit
    fixed = truncate_rows(df, settings, check.limit)
    assert preflight(fixed, settings).fits
    assert fixed["text"][0] == "short" and fixed["text"][1].endswith(" […]") and fixed["id"][1] == "2"


def test_preflight_says_nothing_for_an_unknown_window():
    check = preflight(pd.DataFrame({"t": ["x" * 10]}), RunSettings("custom", "my-local-model"))
    assert check.window is None and check.fits and check.largest > 0


# -- editing before resume, retry and re-run ----------------------------------------------------
def test_a_run_on_a_wrong_base_url_is_pointed_at_the_right_one_and_resumed(engine, db, llm):
    wrong = Connection("custom", api_key="k", base_url="http://127.0.0.1:9/v1")
    settings = RunSettings("custom", "m", max_retries=0, concurrency=2)
    run_id = run(engine, llm, pd.DataFrame({"t": list("abcdef")}), settings, wrong)
    assert db.get_run(run_id).status == RunStatus.FAILED
    engine.update_settings(run_id, base_url=llm.url, system_prompt="Now with a better instruction.")
    recorded = db.get_run(run_id)
    assert recorded.connection["base_url"] == llm.url
    assert recorded.params["system_message"] == "Now with a better instruction."
    engine.resume(run_id, Connection.from_record(recorded.connection, "k"))
    assert engine.wait(run_id, 30).status == RunStatus.COMPLETED
    assert {r.system for r in llm.requests()} == {"Now with a better instruction."}
    assert any("base_url=" in line.message for line in db.logs(run_id))


def test_a_rerun_with_changes_uses_them(engine, db, llm):
    run_id = run(engine, llm, pd.DataFrame({"t": ["a"]}), RunSettings("custom", "fake-small"))
    clone = engine.clone_run(run_id, custom(llm), model="fake-large", temperature=0.5)
    engine.wait(clone, 30)
    assert db.get_run(clone).model == "fake-large" and db.get_run(clone).params["sent"]["temperature"] == 0.5
    assert llm.requests()[-1].model == "fake-large"


# -- saved instructions -----------------------------------------------------------------------
def test_saved_instructions_round_trip(db):
    db.save_instruction("Sentiment", "Classify the sentiment.", [{"input": "yay", "output": "positive"}])
    db.save_instruction("Topic", "Name the topic.")
    assert set(db.instructions()) == {"Sentiment", "Topic"}
    assert db.instructions()["Sentiment"]["examples"][0]["output"] == "positive"
    db.delete_instruction("Topic")
    assert list(db.instructions()) == ["Sentiment"]
    with pytest.raises(ValueError):
        db.save_instruction(" ", "text")


# -- the whole run's figures, and its log ------------------------------------------------------
def test_elapsed_time_covers_every_start_and_not_the_pauses(engine, db, llm):
    llm.configure(latency_ms=40)
    conn = custom(llm)
    run_id = engine.create_transform_run(
        pd.DataFrame({"t": [str(i) for i in range(60)]}), RunSettings("custom", "m", concurrency=2), conn
    )
    engine.start(run_id, conn)
    wait_until(lambda: engine.progress(run_id).succeeded >= 10, 30, "10 rows")
    engine.pause(run_id)
    first = engine.wait(run_id, 30)
    assert first.status == RunStatus.PAUSED and first.elapsed_s > 0.1
    time.sleep(1.0)  # paused time must not count
    engine.resume(run_id, conn)
    final = engine.wait(run_id, 60)
    run_ = db.get_run(run_id)
    assert final.status == RunStatus.COMPLETED
    assert run_.active_seconds == pytest.approx(final.elapsed_s, rel=0.05)
    wall = (run_.finished_at - run_.started_at).total_seconds()
    assert run_.active_seconds < wall - 0.8
    assert run_.calls == len(llm.requests())


def test_the_log_tells_failures_retries_and_rate_limits(engine, db, llm):
    llm.configure(rpm=600)
    rows = [f"[[flaky:1]] row {i}" for i in range(3)] + ["[[error:400]] bad"] + [f"row {i}" for i in range(40)]
    run_id = run(engine, llm, pd.DataFrame({"t": rows}), RunSettings("custom", "m", concurrency=16, max_retries=2))
    log = "\n".join(line.message for line in db.logs(run_id))
    assert "retry 1 in" in log and "server_error" in log
    assert "Row 4 failed (bad_request)" in log
    assert "Rate limited (429): all calls paused" in log and "concurrency 16 → 8" in log


def test_the_newest_finished_rows_are_read_alone(engine, db, llm):
    run_id = run(engine, llm, pd.DataFrame({"t": list("abcdef")}), RunSettings("custom", "m", concurrency=1))
    newest = db.latest_finished(run_id, 3)
    assert len(newest) == 3 and set(newest) <= set(range(6))
    frame = db.results_frame(run_id, rows=newest)
    assert sorted(frame["t"]) == sorted("abcdef"[i] for i in newest)


def test_finished_times_hold_only_what_the_charts_need(engine, db, llm):
    texts = ["a", "[[error:400]] b", "c"]
    run_id = run(engine, llm, pd.DataFrame({"t": texts}), RunSettings("custom", "m", max_retries=0))
    times = db.finished_times(run_id)
    assert list(times.columns) == ["time", "status", "latency_ms", "error"]
    assert sorted(times["status"]) == ["failed", "succeeded", "succeeded"]
    assert list(times.loc[times["status"] == "failed", "error"]) == ["bad_request"]


# -- pre-flight of a run of several models or steps ---------------------------------------------
def test_preflight_of_a_plan_checks_each_step_and_model_against_its_own_window():
    from handai_engine.preflight import preflight_plan, truncate_plan_rows
    from research.compare import compare_plan
    from research.pipeline import pipeline_plan

    df = pd.DataFrame({"id": ["1", "2", "3"], "text": ["short", "word " * 30_000, "word " * 120_000]})
    plan = compare_plan([("custom", "fake-small"), ("openai", "gpt-4o-mini")], instruction="Classify.")
    check = preflight_plan(df, plan)
    assert check.window == 128_000 and check.over == [2] and check.where == "model 'gpt-4o-mini'"
    smaller = compare_plan([("groq", "mistral-saba"), ("openai", "gpt-4o")], instruction="Classify.")
    check = preflight_plan(df, smaller)  # a 32,768-token model is the tightest: rows 2 and 3 fail there
    assert check.window == 32_768 and check.over == [1, 2] and check.largest > check.limit
    assert check.where == "model 'mistral-saba'"
    fixed = truncate_plan_rows(df, smaller)
    assert preflight_plan(fixed, smaller).fits and fixed["text"][0] == "short" and df["text"][1] == "word " * 30_000
    # A later step that sends only the id fits; the first step, sending the text, does not.
    spec = {
        "steps": [
            {"name": "a", "model": "openai:gpt-4o", "instruction": "x", "columns": ["text"]},
            {"name": "b", "model": "groq:mistral-saba", "instruction": "y", "template": "{id}: {a}"},
        ]
    }
    check = preflight_plan(df, pipeline_plan(spec))
    assert check.over == [2] and check.where == "step 'a', model 'gpt-4o'"
    unknown = preflight_plan(df, compare_plan([("custom", "a"), ("custom", "b")], instruction="x"))
    assert unknown.window is None and unknown.fits


def test_a_plans_examples_and_reply_room_count_against_the_window():
    from handai_engine.preflight import preflight_plan
    from research.compare import compare_plan

    df = pd.DataFrame({"text": ["word " * 25_600]})  # about 32,000 tokens of a 32,768-token window
    bare = compare_plan([("groq", "mistral-saba"), ("custom", "x")], instruction="Classify.", max_tokens=100)
    assert preflight_plan(df, bare).fits
    shots = [{"input": "word " * 1_000, "output": "ok"}] * 2
    with_shots = compare_plan(
        [("groq", "mistral-saba"), ("custom", "x")], instruction="Classify.", max_tokens=100, examples=shots
    )
    assert preflight_plan(df, with_shots).over == [0]
    default_reply_room = compare_plan([("groq", "mistral-saba"), ("custom", "x")], instruction="Classify.")
    assert not preflight_plan(df, default_reply_room).fits


# -- few-shot examples in the planners ------------------------------------------------------------
def test_planners_put_examples_on_the_steps_that_answer_the_task():
    from research.consensus import consensus_plan
    from research.pipeline import pipeline_plan, spec_of

    pair = [{"input": "great film", "output": "positive"}]
    plan = consensus_plan([("custom", "a"), ("custom", "b")], instruction="x", judge=("custom", "j"), examples=pair)
    assert [s.examples for s in plan.steps] == [tuple(pair), ()]  # the judge answers another question
    spec = {"steps": [{"name": "s", "model": "custom:m", "instruction": "x", "examples": pair}]}
    assert pipeline_plan(spec).steps[0].examples == tuple(pair)
    assert spec_of(pipeline_plan(spec))["steps"][0]["examples"] == pair
    from handai_engine import PlanError

    with pytest.raises(PlanError, match="pairs of text"):
        pipeline_plan({"steps": [{**spec["steps"][0], "examples": [{"input": 1}]}]})


def test_a_compare_run_sends_its_examples_to_every_model(engine, db, llm):
    from research.compare import compare_plan

    pair = [{"input": "great film", "output": "positive"}]
    plan = compare_plan([("custom", "fake-small"), ("custom", "fake-alt")], instruction="Mood.", examples=pair)
    conn = custom(llm)
    run_id = engine.create_plan_run(pd.DataFrame({"t": ["a", "b"]}), plan, {"custom": conn}, RunSettings("custom", ""))
    engine.start(run_id, {"custom": conn})
    engine.wait(run_id, 30)
    assert db.run_counts(run_id).succeeded == 4
    # The fake server logs the last user turn: the row, not the example's input.
    assert sorted((r.model, r.user) for r in llm.requests()) == sorted(
        (m, json.dumps({"t": t})) for m in ("fake-small", "fake-alt") for t in "ab"
    )
    assert db.get_run(run_id).plan["steps"][0]["examples"] == pair


def test_values_labelled_with_their_question_come_from_the_prompt_rules():
    from handai_prompts import labelled_template, render_template

    template = labelled_template(["Q7"], {"Q7": "How satisfied are you?"})
    assert render_template(template, {"Q7": "Very"}) == "How satisfied are you? (Q7): Very"


# -- editing a run of several models ------------------------------------------------------------
def test_only_the_arms_that_change_are_sent_to_the_engine():
    from handai_ui.run_edit import arm_changes

    arms = [
        {"name": "a", "provider": "custom", "model": "a", "endpoint": {"base_url": "http://x/v1"}},
        {"name": "b", "provider": "custom", "model": "b", "endpoint": {"base_url": "http://x/v1"}},
        {"name": "c", "provider": "openai", "model": "c", "endpoint": {}},
    ]
    assert arm_changes(arms, {"a": "a", "b": "b", "c": "c"}, {"custom": "http://x/v1"}) == {}
    assert arm_changes(arms, {"a": "a", "b": "b2", "c": "c"}, {"custom": "http://y/v1"}) == {
        "a": {"base_url": "http://y/v1"},
        "b": {"model": "b2", "base_url": "http://y/v1"},
    }
