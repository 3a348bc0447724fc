"""AppTest for every page: empty database, upload → run against the fake server → results,
History listing and opening the run, and a bad file meeting one message instead of a traceback."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from handai_db import ACTIVE_STATUSES, Database, default_url
from tests.helpers import no_exceptions, widget

CSV = 'id,review\n001,Great phone — love it\n002,Battery died in a day\n003,"Okay, I guess"\n'.encode()


def use_fake_server(at: AppTest, llm) -> None:
    widget(at, "selectbox", "handai_provider").set_value("custom").run()
    widget(at, "text_input", "handai_base_url_custom").set_value(llm.url).run()
    widget(at, "selectbox", "handai_model_pick_custom").set_value("fake-small").run()


def wait_for_run(run_id: int, timeout: float = 30) -> None:
    """Until the run is no longer active; fails, saying so, after `timeout` seconds."""
    db = Database(default_url())
    try:
        deadline = time.monotonic() + timeout
        while (status := db.get_run(run_id).status) in ACTIVE_STATUSES:
            if time.monotonic() > deadline:
                pytest.fail(f"run {run_id} still {status} after {timeout}s")
            time.sleep(0.1)
    finally:
        db.close()


@pytest.mark.parametrize(
    ("page", "title"),
    [
        ("pages/transform.py", "Transform"),
        ("pages/generate.py", "Generate"),
        ("pages/history.py", "History"),
        ("pages/settings.py", "Settings"),
        ("pages/coder.py", "Qualitative coder"),
        ("pages/reliability.py", "Reliability"),
        ("pages/adjudicate.py", "Adjudicate"),
    ],
)
def test_every_page_loads_with_an_empty_database(app, page, title):
    app.switch_page(page).run()
    no_exceptions(app)
    assert [t.value for t in app.title] == [title]


@pytest.mark.parametrize("page", ["pages/reliability.py", "pages/adjudicate.py"])
def test_the_coding_pages_say_there_is_no_coded_run_yet(app, page):
    app.switch_page(page).run()
    no_exceptions(app)
    assert any(i.value.startswith("No coded run yet") for i in app.info), [i.value for i in app.info]
    assert not app.error and not app.warning


def test_upload_run_and_see_results_then_history(app, llm):
    use_fake_server(app, llm)
    app.file_uploader[0].set_value(("reviews.csv", CSV, "text/csv")).run()
    no_exceptions(app)
    assert any("3 rows × 2 columns" in c.value for c in app.caption)
    widget(app, "text_area", "tf_prompt").set_value("Classify the sentiment.").run()
    assert any("Great phone — love it" in c.value for c in app.code)
    widget(app, "button", "tf_full").click().run()
    no_exceptions(app)
    run_id = int(app.query_params["run"][0] if isinstance(app.query_params["run"], list) else app.query_params["run"])
    wait_for_run(run_id)
    app.run()
    no_exceptions(app)
    frames = [d.value for d in app.dataframe]
    results = next(f for f in frames if "ai_output" in f.columns)
    assert results["id"].tolist() == ["001", "002", "003"]
    assert results["ai_status"].tolist() == ["succeeded"] * 3
    assert results["ai_output"].iloc[1] == 'Reply to: {"id": "002", "review": "Battery died in a day"}'
    assert {b.label for b in app.get("download_button")} >= {"CSV", "XLSX", "JSON", "JSONL"}
    sent = [r.user for r in llm.requests()]
    assert len(sent) == 3
    app.run()  # results never vanish on a rerun
    assert any("ai_output" in d.value.columns for d in app.dataframe)

    app.switch_page("pages/history.py").run()
    no_exceptions(app)
    listing = app.dataframe[0].value
    assert listing["run"].tolist() == [run_id] and listing["status"].tolist() == ["completed"]
    assert any("ai_output" in d.value.columns for d in app.dataframe[1:])


def test_test_run_sends_only_the_first_rows(app, llm):
    use_fake_server(app, llm)
    app.file_uploader[0].set_value(("reviews.csv", CSV, "text/csv")).run()
    widget(app, "text_area", "tf_prompt").set_value("Summarise.").run()
    widget(app, "number_input", "tf_test_rows").set_value(2).run()
    widget(app, "button", "tf_test").click().run()
    run_id = int(app.query_params["run"])
    wait_for_run(run_id)
    assert len(llm.requests()) == 2


def test_a_bad_file_shows_one_message_and_the_page_stays_usable(app):
    app.file_uploader[0].set_value(("junk.csv", bytes(range(256)) * 40, "text/csv")).run()
    no_exceptions(app)
    assert len(app.error) == 1
    app.file_uploader[0].set_value(("reviews.csv", CSV, "text/csv")).run()
    no_exceptions(app)
    assert not app.error
    assert any("3 rows × 2 columns" in c.value for c in app.caption)


def test_generate_with_a_template_against_the_fake_server(app, llm):
    use_fake_server(app, llm)
    app.switch_page("pages/generate.py").run()
    widget(app, "number_input", "gen_rows").set_value(4).run()
    widget(app, "button", "gen_full").click().run()
    no_exceptions(app)
    run_id = int(app.query_params["run"])
    wait_for_run(run_id)
    app.run()
    results = next(d.value for d in app.dataframe if "ai_status" in d.value.columns)
    assert list(results.columns)[:2] == ["question", "answer"]
    assert results["ai_status"].tolist() == ["succeeded"] * 4
    assert results["ai_duplicate"].tolist() == [False] * 4


def test_settings_connection_test_reports_the_truth(app, llm):
    llm.configure(valid_keys=["sk-or-v1-goodgoodgoodgood"], auth_style="openrouter")
    app.switch_page("pages/settings.py").run()
    widget(app, "text_input", "set_base_url_custom").set_value(llm.url).run()
    widget(app, "button", "set_test_custom").click().run()
    no_exceptions(app)
    texts = [e.value for e in app.error] + [s.value for s in app.success]
    assert any("did not accept" in t for t in texts), texts


def test_transform_keeps_the_file_and_instruction_across_pages(app):
    app.file_uploader[0].set_value(("reviews.csv", CSV, "text/csv")).run()
    widget(app, "text_area", "tf_prompt").set_value("Classify the sentiment.").run()
    app.switch_page("pages/history.py").run()
    app.switch_page("pages/transform.py").run()
    no_exceptions(app)
    assert any("Using **reviews.csv**" in c.value for c in app.caption)
    assert widget(app, "text_area", "tf_prompt").value == "Classify the sentiment."
    widget(app, "button", "tf_clear").click().run()
    assert not any("Using **reviews.csv**" in c.value for c in app.caption)


def test_results_filter_by_error_kind(app, llm):
    use_fake_server(app, llm)
    bad = b"id,t\n1,ok\n2,[[error:400]] x\n3,[[context]] y\n"
    app.file_uploader[0].set_value(("bad.csv", bad, "text/csv")).run()
    widget(app, "text_area", "tf_prompt").set_value("Echo.").run()
    widget(app, "button", "tf_full").click().run()
    wait_for_run(int(app.query_params["run"]))
    app.run()
    kinds = widget(app, "multiselect", f"transform_kinds_{app.query_params['run']}")
    assert sorted(kinds.options) == ["bad_request (1)", "context_too_long (1)"]
    kinds.set_value(["context_too_long"]).run()
    shown = next(d.value for d in app.dataframe if "ai_status" in d.value.columns)
    assert shown["id"].tolist() == ["3"]
