"""AppTest: History's "Re-run from a methods bundle". A bundle of a real run (the real engine and
ledger, the fake server over HTTP) is repeated from the page and answers the same; a file that is
not a bundle, or an input without the run's columns, gets one clear message; another input shows
what will differ before anything is sent."""

from __future__ import annotations

import io
import zipfile

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from handai_db import ACTIVE_STATUSES, Database, RunStatus
from handai_engine import Engine, RunSettings
from handai_io import content_hash
from providers import Connection
from research.compare import compare_plan
from research.methods import methods_bundle
from tests.helpers import no_exceptions, wait_until, widget

ROWS = [f"review {i}: {'great' if i % 2 else 'poor'} value" for i in range(6)]


def csv_of(texts: list[str]) -> bytes:
    return pd.DataFrame({"id": range(1, len(texts) + 1), "text": texts}).to_csv(index=False).encode()


@pytest.fixture
def bundle(ledger: Database, llm) -> tuple[int, bytes]:
    """A finished transform run in the app's ledger and its methods bundle."""

    def create(engine: Engine) -> tuple[int, Connection]:
        conn = Connection("custom", base_url=llm.url)
        settings = RunSettings("custom", "fake-small", system_prompt="Sentiment?", columns=["text"], temperature=0)
        df = pd.DataFrame({"id": [str(i) for i in range(1, len(ROWS) + 1)], "text": ROWS})
        return engine.create_transform_run(df, settings, conn, input_name="in.csv", input_hash=content_hash(b"x")), conn

    return finished_run(ledger, create)


def finished_run(ledger: Database, create) -> tuple[int, bytes]:
    """A run made by `create(engine)` -> (run id, its connections), finished, and its methods bundle."""
    engine = Engine(ledger)
    try:
        run_id, conns = create(engine)
        engine.start(run_id, conns)
        assert engine.wait(run_id, 60).status == RunStatus.COMPLETED
    finally:
        engine.shutdown()
    return run_id, methods_bundle(ledger, run_id)


def history(at: AppTest, llm) -> None:
    widget(at, "selectbox", "handai_provider").set_value("custom").run()
    widget(at, "text_input", "handai_base_url_custom").set_value(llm.url).run()
    at.switch_page("pages/history.py").run()
    no_exceptions(at)


def upload(at: AppTest, key: str, name: str, data: bytes) -> None:
    widget(at, "file_uploader", key).set_value((name, data, "application/octet-stream")).run()
    no_exceptions(at)


def markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_a_bundle_repeated_from_history_gives_a_new_run_with_the_same_answers(app, ledger, llm, bundle):
    old_id, data = bundle
    history(app, llm)
    upload(app, "hist_bundle_file", "run.zip", data)
    assert any("Same recorded settings and input rows" in c.value for c in app.caption)
    recorded = next(d.value for d in app.dataframe if "endpoint" in d.value.columns)
    assert recorded.iloc[0]["model id"] == "fake-small" and recorded.iloc[0]["endpoint"] == llm.url.rstrip("/")
    assert f"**Run #{old_id}** (transform)" in markdown(app) and "6 rows" in markdown(app)
    assert len(ledger.list_runs()) == 1  # nothing created before the click
    llm.reset()
    widget(app, "button", "hist_bundle_run").click().run()
    no_exceptions(app)
    new_id = int(app.query_params["run"][0] if isinstance(app.query_params["run"], list) else app.query_params["run"])
    assert new_id != old_id
    wait_until(lambda: ledger.get_run(new_id).status not in ACTIVE_STATUSES, 30, "the repeat to finish")
    app.run()
    no_exceptions(app)
    assert [s.value for s in app.success if "differ" in s.value] == [
        f"Run #{new_id} (completed) repeated run {old_id} of run.zip: "
        "0 of 6 rows have answers that differ from the bundle's."
    ]
    assert len(llm.requests()) == len(ROWS)  # every row sent again: the cache was off
    answers = {r.input["text"]: r.raw for r in ledger.results(old_id)}
    assert {r.input["text"]: r.raw for r in ledger.results(new_id)} == answers
    assert widget(app, "selectbox", "hist_open").value == new_id  # History opened the repeat
    links = [link.proto for link in app.get("page_link") if f"Run #{new_id} on its page" in link.proto.label]
    assert len(links) == 1 and links[0].page.endswith("transform") and f"run={new_id}" in links[0].query_string, links
    widget(app, "selectbox", "hist_open").set_value(old_id).run()
    widget(app, "button", "hist_bundle_open").click().run()  # the link back to the repeat
    no_exceptions(app)
    assert widget(app, "selectbox", "hist_open").value == new_id


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"just some text", "run.zip is not a methods bundle: it is not a ZIP file."),
        (None, "run.zip is not a methods bundle: it needs provenance.json and results.csv."),
    ],
    ids=["not a zip", "no provenance"],
)
def test_a_file_that_is_not_a_bundle_gets_one_clear_message(app, ledger, llm, data, says):
    if data is None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("results.csv", "id,text\n1,a\n")
        data = buffer.getvalue()
    history(app, llm)
    upload(app, "hist_bundle_file", "run.zip", data)
    assert [e.value for e in app.error] == [says]
    assert not [b for b in app.button if b.key == "hist_bundle_run"]


def test_an_input_without_the_runs_columns_gets_one_clear_message(app, ledger, llm, bundle):
    history(app, llm)
    upload(app, "hist_bundle_file", "run.zip", bundle[1])
    upload(app, "hist_bundle_input", "other.csv", b"id,body\n1,hello\n")
    assert [e.value for e in app.error] == ["The input lacks the run's columns: text."]
    assert not [b for b in app.button if b.key == "hist_bundle_run"]


def test_another_input_shows_its_hash_as_a_difference_before_anything_is_sent(app, ledger, llm, bundle):
    old_id, data = bundle
    history(app, llm)
    upload(app, "hist_bundle_file", "run.zip", data)
    other = csv_of([*ROWS[:-1], "a new last row"])
    upload(app, "hist_bundle_input", "other.csv", other)
    shown = markdown(app)
    assert "What will differ from the record" in shown
    assert f"input file: SHA-256 {content_hash(b'x')} -> {content_hash(other)}" in shown
    assert "input rows (SHA-256 of their cells)" in shown
    assert widget(app, "button", "hist_bundle_run").label.startswith("Re-run 6 rows from other.csv")
    llm.reset()
    assert [r.id for r in ledger.list_runs()] == [old_id] and not llm.requests()


def test_a_comparison_is_repeated_with_each_model_and_the_sidebars_connection(app, ledger, llm):
    def create(engine: Engine) -> tuple[int, dict[str, Connection]]:
        models = [("custom", "fake-small"), ("custom", "fake-alt")]
        plan = compare_plan(models, instruction="Sentiment?", columns=["text"])
        conns = {"custom": Connection("custom", base_url=llm.url)}
        rows = pd.DataFrame({"id": ["1", "2", "3"], "text": ROWS[:3]})
        return engine.create_plan_run(rows, plan, conns, RunSettings("custom", "")), conns

    old_id, data = finished_run(ledger, create)
    history(app, llm)  # the sidebar's base URL: the plan recorded none for its models
    upload(app, "hist_bundle_file", "cmp.zip", data)
    recorded = next(d.value for d in app.dataframe if "endpoint" in d.value.columns)
    assert recorded["model id"].tolist() == ["fake-small", "fake-alt"]
    llm.reset()
    widget(app, "button", "hist_bundle_run").click().run()
    no_exceptions(app)
    new_id = max(r.id for r in ledger.list_runs())
    wait_until(lambda: ledger.get_run(new_id).status not in ACTIVE_STATUSES, 30, "the repeat to finish")
    app.run()
    assert any("0 of 3 rows have answers that differ from the bundle's" in s.value for s in app.success)
    assert sorted(r.model for r in llm.requests()) == ["fake-alt"] * 3 + ["fake-small"] * 3
    assert ledger.get_run(new_id).kind == "compare" and new_id != old_id
