"""research/rerun.py: a methods bundle of a real run (the real engine and ledger, the fake server over
HTTP) read back, repeated on its own rows or on another input, what differs predicted before the run
exists and checked against the repeat's own record, and the answers compared after."""

from __future__ import annotations

import io
import json
import zipfile

import pandas as pd
import pytest

from handai_db import RunStatus
from handai_engine import Engine, RunSettings
from handai_io import content_hash
from providers import Connection
from research.compare import compare_plan
from research.methods import METHODS, PROVENANCE, RESULTS, methods_bundle
from research.methods import ROWS as SENT_ROWS
from research.rerun import (
    Bundle,
    CannotRepeat,
    NotABundle,
    arms_table,
    compare_answers,
    create_repeat,
    expected_differences,
    input_file_change,
    plan_repeat,
    read_bundle,
    recorded_differences,
    transform_connection,
)

ROWS = [f"review {i}: {'great' if i % 2 else 'poor'} value" for i in range(6)]


def table(texts: list[str] = ROWS) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"{i:03}" for i in range(len(texts))], "text": texts})


def finish(engine: Engine, run_id: int, conn) -> None:
    engine.start(run_id, conn)
    final = engine.wait(run_id, 60)
    assert final.status == RunStatus.COMPLETED, final.stop_reason


@pytest.fixture
def transform_bundle(engine, db, llm) -> Bundle:
    conn = Connection("custom", base_url=llm.url)
    settings = RunSettings("custom", "fake-small", system_prompt="Sentiment?", columns=["text"], temperature=0)
    run_id = engine.create_transform_run(table(), settings, conn, input_name="in.csv", input_hash="abc123")
    finish(engine, run_id, conn)
    return read_bundle(methods_bundle(db, run_id), "run.zip")


def zipped(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"not a zip at all", "it is not a ZIP file."),
        (zipped({"results.csv": "id\n1\n"}), f"it needs {PROVENANCE} and {RESULTS}"),
        (zipped({PROVENANCE: "{not json", RESULTS: "id\n1\n"}), "is not valid JSON"),
        (zipped({PROVENANCE: json.dumps({"format": "other/1"}), RESULTS: "id\n1\n"}), "not a Handai provenance"),
    ],
    ids=["not a zip", "no provenance", "bad json", "not a record"],
)
def test_anything_but_a_bundle_is_one_clear_error_naming_the_file(data, says):
    with pytest.raises(NotABundle) as caught:
        read_bundle(data, "x.zip")
    assert str(caught.value).startswith("x.zip is not a methods bundle: ") and says in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_a_bundle_reads_back_its_record_and_rows(transform_bundle):
    assert transform_bundle.kind == "transform" and transform_bundle.rows == len(ROWS)
    assert transform_bundle.input_columns == ["id", "text"]
    assert transform_bundle.results["text"].tolist() == ROWS
    assert transform_bundle.results["id"].tolist() == [f"{i:03}" for i in range(len(ROWS))]  # read as text
    (arm,) = arms_table(transform_bundle)
    assert arm["provider"] == "custom" and arm["model id"] == "fake-small"
    assert arm["endpoint"].startswith("http://127.0.0.1") and json.loads(arm["parameters sent"]) == {"temperature": 0}


def test_by_default_the_bundles_own_rows_are_repeated_with_the_recorded_settings(transform_bundle, llm):
    repeat = plan_repeat(transform_bundle)
    assert repeat.rows.columns.tolist() == ["id", "text"] and repeat.rows["text"].tolist() == ROWS
    assert repeat.input_name == f"run.zip/{SENT_ROWS}"
    assert repeat.input_hash == content_hash(transform_bundle.sent_bytes)
    assert repeat.plan is None and repeat.providers == ["custom"]
    assert repeat.settings.system_prompt == "Sentiment?" and repeat.settings.temperature == 0
    assert repeat.settings.use_cache is False and plan_repeat(transform_bundle, use_cache=True).settings.use_cache
    assert repeat.endpoint["base_url"] == llm.url.rstrip("/")
    # the recorded endpoint wins over today's, today's key is kept
    conn = transform_connection(repeat, Connection("custom", api_key="sk-today", base_url="http://elsewhere/v1"))
    assert conn.base_url == llm.url.rstrip("/") and conn.api_key == "sk-today"


def test_an_input_lacking_the_runs_columns_cannot_be_repeated(transform_bundle):
    with pytest.raises(CannotRepeat, match="The input lacks the run's columns: text"):
        plan_repeat(transform_bundle, pd.DataFrame({"id": ["1"], "body": ["x"]}), name="other.csv", digest="d")


def test_extra_input_columns_are_left_out(transform_bundle):
    given = table().assign(extra="x")
    repeat = plan_repeat(transform_bundle, given, name="more.csv", digest="feed")
    assert repeat.rows.columns.tolist() == ["id", "text"] and repeat.input_name == "more.csv"


def test_a_generate_bundle_cannot_be_repeated_yet(transform_bundle):
    prov = {**transform_bundle.provenance, "run": {**transform_bundle.provenance["run"], "kind": "generate"}}
    bundle = Bundle("gen.zip", prov, transform_bundle.results, transform_bundle.results_bytes)
    with pytest.raises(CannotRepeat, match="A generate run cannot be repeated"):
        plan_repeat(bundle)


def test_the_input_file_line_names_both_hashes(transform_bundle):
    assert input_file_change(transform_bundle, "abc123") is None
    assert input_file_change(transform_bundle, "f00d") == "input file: SHA-256 abc123 -> f00d"


def test_a_repeat_on_the_same_rows_differs_in_nothing_and_answers_the_same(transform_bundle, engine, db, llm):
    repeat = plan_repeat(transform_bundle)
    conn = transform_connection(repeat, Connection("custom"))
    assert expected_differences(transform_bundle, repeat, conn) == []
    run_id = create_repeat(engine, repeat, conn)
    assert recorded_differences(db, transform_bundle, run_id, repeat) == []
    llm.reset()
    finish(engine, run_id, conn)
    assert len(llm.requests()) == len(ROWS)  # no reply reused
    assert compare_answers(db, transform_bundle, run_id) == (0, len(ROWS))
    run = db.get_run(run_id)
    assert run.input_name == f"run.zip/{SENT_ROWS}" and run.system_prompt == "Sentiment?"


def test_cells_the_csv_guard_changed_are_repeated_exactly_as_first_sent(engine, db, llm):
    """results.csv guards "@anna …" as "'@anna …"; the repeat sends rows.jsonl's exact text."""
    texts = ["@anna loved it", "=1+1 is two", "-5 stars", "plain words"]
    conn = Connection("custom", base_url=llm.url)
    settings = RunSettings("custom", "fake-small", system_prompt="Sentiment?", columns=["text"], temperature=0)
    run_id = engine.create_transform_run(table(texts), settings, conn)
    finish(engine, run_id, conn)
    bundle = read_bundle(methods_bundle(db, run_id, guard=True), "run.zip")
    assert bundle.results["text"].tolist()[:3] == ["'@anna loved it", "'=1+1 is two", "'-5 stars"]
    repeat = plan_repeat(bundle)
    assert repeat.rows["text"].tolist() == texts and repeat.rows["id"].tolist() == ["000", "001", "002", "003"]
    first = sorted(r.user for r in llm.requests())
    llm.reset()
    repeated = create_repeat(engine, repeat, transform_connection(repeat, Connection("custom")))
    finish(engine, repeated, conn)
    assert sorted(r.user for r in llm.requests()) == first
    assert compare_answers(db, bundle, repeated) == (0, len(texts))


def test_what_differs_is_known_before_the_run_exists_and_matches_its_record(transform_bundle, engine, db):
    changed = table([*ROWS[:-1], "a new last row"])
    repeat = plan_repeat(transform_bundle, changed, name="other.csv", digest="f00d")
    conn = transform_connection(repeat, Connection("custom"))
    before = expected_differences(transform_bundle, repeat, conn)
    assert [line.split(":")[0] for line in before] == ["input rows (SHA-256 of their cells)"]
    run_id = create_repeat(engine, repeat, conn)
    assert recorded_differences(db, transform_bundle, run_id, repeat) == before
    finish(engine, run_id, conn)
    assert compare_answers(db, transform_bundle, run_id) == (1, len(ROWS))


def test_an_endpoint_that_was_not_recorded_shows_where_the_repeat_goes(transform_bundle, llm):
    prov = json.loads(json.dumps(transform_bundle.provenance))
    prov["arms"][0]["endpoint"] = "not recorded"
    bundle = Bundle("old.zip", prov, transform_bundle.results, transform_bundle.results_bytes)
    repeat = plan_repeat(bundle)
    assert repeat.endpoint == {}
    (line,) = expected_differences(bundle, repeat, Connection("custom", base_url=llm.url))
    assert line.startswith("model model: ") and "not recorded" in line and llm.url.rstrip("/") in line


def test_a_compare_bundle_repeats_its_plan_for_each_model(engine, db, llm):
    plan = compare_plan(
        [("custom", "fake-small"), ("custom", "fake-alt")],
        instruction="Sentiment?",
        columns=["text"],
        endpoints={"custom": {"base_url": llm.url}},
    )
    conns = {"custom": Connection("custom", base_url=llm.url)}
    settings = RunSettings("custom", "", concurrency=4)
    run_id = engine.create_plan_run(table(), plan, conns, settings, input_name="in.csv")
    finish(engine, run_id, conns)
    data = methods_bundle(db, run_id)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert METHODS in archive.namelist()
    bundle = read_bundle(data, "cmp.zip")
    repeat = plan_repeat(bundle)
    assert repeat.plan is not None and [a.model for a in repeat.plan.arms] == ["fake-small", "fake-alt"]
    assert repeat.providers == ["custom"] and repeat.settings.concurrency == 4
    assert expected_differences(bundle, repeat, {"custom": Connection("custom")}) == []
    again = create_repeat(engine, repeat, {"custom": Connection("custom")})
    assert recorded_differences(db, bundle, again, repeat) == []
    llm.reset()
    finish(engine, again, {"custom": Connection("custom")})
    assert len(llm.requests()) == 2 * len(ROWS)
    assert compare_answers(db, bundle, again) == (0, len(ROWS))


def test_a_newer_model_snapshot_shows_only_once_the_repeat_has_answered(engine, db, llm):
    llm.configure(reported_models={"fake-small": "fake-small-2024-08-06"})
    conn = Connection("custom", base_url=llm.url)
    settings = RunSettings("custom", "fake-small", system_prompt="Sentiment?", columns=["text"])
    first = engine.create_transform_run(table(), settings, conn, input_name="in.csv")
    finish(engine, first, conn)
    bundle = read_bundle(methods_bundle(db, first), "run.zip")
    repeat = plan_repeat(bundle)
    again = create_repeat(engine, repeat, conn)
    assert recorded_differences(db, bundle, again, repeat) == []  # nothing answered yet: nothing claimed
    llm.configure(reported_models={"fake-small": "fake-small-2099-01-01"})
    finish(engine, again, conn)
    (line,) = recorded_differences(db, bundle, again, repeat)
    assert line == 'model model as reported: ["fake-small-2024-08-06"] -> ["fake-small-2099-01-01"]'
