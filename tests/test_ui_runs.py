"""Runs from the pages: one that cannot start says so once and leaves nothing in the ledger; Pause
and Stop write the status for any active run, whoever owns it; History shows what a run sent from
its record, and says so when an old run did not record it."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from streamlit.testing.v1 import AppTest

from handai_db import ACTIVE_STATUSES, Database, RunStatus, utcnow
from tests.helpers import no_exceptions, widget

CSV = b"id,text\n1,hello\n2,world\n"


def wait_until_finished(db: Database, run_id: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (status := db.get_run(run_id).status) in ACTIVE_STATUSES:
        if time.monotonic() > deadline:
            pytest.fail(f"run {run_id} still {status} after {timeout}s")
        time.sleep(0.05)


def ready_transform(at: AppTest) -> None:
    at.file_uploader[0].set_value(("in.csv", CSV, "text/csv")).run()
    widget(at, "text_area", "tf_prompt").set_value("Echo.").run()


# -- a run that cannot start ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("provider", "says"),
    [("openai", "key"), ("custom", "URL")],
    ids=["no key", "no endpoint"],
)
@pytest.mark.parametrize("button", ["tf_full", "tf_test"])
def test_a_transform_run_that_cannot_start_says_why_once_and_leaves_no_run(app, ledger, provider, says, button):
    ledger.set_setting(f"ui.model.{provider}", "fake-small")  # a model, typed earlier: only the key or URL lacks
    widget(app, "selectbox", "handai_provider").set_value(provider).run()
    ready_transform(app)
    widget(app, "button", button).click().run()
    no_exceptions(app)
    assert len(app.error) == 1, [e.value for e in app.error]
    assert says.lower() in app.error[0].value.lower(), app.error[0].value
    assert ledger.list_runs() == []
    assert "run" not in app.query_params
    app.run()  # the page stays usable: the message goes with the next rerun, the button stays
    no_exceptions(app)
    assert not app.error
    assert not widget(app, "button", button).disabled


def test_a_generate_run_that_cannot_start_says_why_once_and_leaves_no_run(app, ledger):
    widget(app, "selectbox", "handai_provider").set_value("openai").run()
    app.switch_page("pages/generate.py").run()
    widget(app, "button", "gen_full").click().run()
    no_exceptions(app)
    assert len(app.error) == 1 and "key" in app.error[0].value.lower(), [e.value for e in app.error]
    assert ledger.list_runs() == []


# -- Pause and Stop ------------------------------------------------------------------------------
def active_run(db: Database, owner: str = "build-box:4242:feedface", heartbeat_age: float = 0.0) -> int:
    """A run that is `running` in the ledger but has no job in this app's engine: as if the
    command line or another app were sending its rows (its last heartbeat `heartbeat_age` s ago)."""
    run_id = db.create_run(
        [{"id": "1", "text": "a"}, {"id": "2", "text": "b"}],
        kind="transform",
        provider="custom",
        model="fake-small",
        connection={"base_url": "http://127.0.0.1:9/v1"},
        params={},
        columns=["id", "text"],
        input_columns=["id", "text"],
    )
    db.claim_run(run_id)  # only a claim enters `running`
    db.update_run(run_id, owner=owner, heartbeat_at=utcnow() - timedelta(seconds=heartbeat_age))
    return run_id


@pytest.mark.parametrize(("button", "status"), [("Pause", RunStatus.PAUSED), ("Stop", RunStatus.STOPPED)])
def test_pause_and_stop_write_the_status_for_a_run_owned_elsewhere(app, ledger, button, status):
    run_id = active_run(ledger)
    app.run()
    no_exceptions(app)
    assert {b.label for b in app.button} >= {"Pause", "Stop"}
    assert any("running in process 4242 on build-box" in c.value for c in app.caption)
    widget(app, "button", f"transform_{button.lower()}_{run_id}").click().run()
    no_exceptions(app)
    assert ledger.get_run(run_id).status == status
    assert not [b for b in app.button if b.label in ("Pause", "Stop")]
    assert any(b.label == "Resume" for b in app.button)


def test_a_run_whose_owner_died_after_the_app_started_offers_resume(app, ledger):
    """The app judged dead owners once, at its start; this owner dies later (a container gone)."""
    run_id = active_run(ledger, owner="other-container:1:deadbeef", heartbeat_age=600)
    app.query_params["run"] = str(run_id)
    app.run()
    no_exceptions(app)
    assert ledger.get_run(run_id).status == RunStatus.INTERRUPTED
    assert not any("running in process 1" in c.value for c in app.caption), [c.value for c in app.caption]
    assert any(c.value.startswith(":material/warning: interrupted") for c in app.caption)
    assert any(b.label == "Resume" for b in app.button)
    assert not [b for b in app.button if b.label in ("Pause", "Stop")]


def test_pause_and_stop_are_offered_in_history_too(app, ledger):
    run_id = active_run(ledger)
    app.switch_page("pages/history.py").run()
    no_exceptions(app)
    widget(app, "button", f"history_stop_{run_id}").click().run()
    assert ledger.get_run(run_id).status == RunStatus.STOPPED


# -- what was sent -------------------------------------------------------------------------------
def test_history_shows_what_a_run_sent_from_its_record(app, ledger, llm):
    widget(app, "selectbox", "handai_provider").set_value("custom").run()
    widget(app, "text_input", "handai_base_url_custom").set_value(llm.url).run()
    widget(app, "selectbox", "handai_model_pick_custom").set_value("fake-small").run()
    ready_transform(app)
    widget(app, "button", "tf_full").click().run()
    run_id = int(app.query_params["run"])
    wait_until_finished(ledger, run_id)
    run = ledger.get_run(run_id)
    # Change the record: History must show it, not what today's code would build.
    params = {**run.params, "system_message": "RECORDED SYSTEM MESSAGE", "sent": {"temperature": 0.25}}
    ledger.update_run(run_id, params=params)
    app.switch_page("pages/history.py").run()
    no_exceptions(app)
    codes = [c.value for c in app.code]
    assert "RECORDED SYSTEM MESSAGE" in codes
    settings = next(d.value for d in app.dataframe if "Setting" in d.value.columns)
    assert dict(zip(settings["Setting"], settings["Value"], strict=True))["Sent: temperature"] == "0.25"
    assert '{"id": "1", "text": "hello"}' in codes  # the inspector's row 1, as recorded
    assert {r.user for r in llm.requests()} == {'{"id": "1", "text": "hello"}', '{"id": "2", "text": "world"}'}


def test_history_says_when_an_old_run_did_not_record_what_it_sent(app, ledger):
    run_id = ledger.create_run(
        [{"id": "1"}],
        kind="transform",
        provider="openai",
        model="gpt-4o-mini",
        params={"temperature": 0.5},  # an old run: no "sent", no "system_message"
        system_prompt="Old instruction.",
        columns=["id"],
        input_columns=["id"],
    )
    ledger.claim_run(run_id)
    assert ledger.set_run_status(run_id, RunStatus.COMPLETED)
    app.switch_page("pages/history.py").run()
    no_exceptions(app)
    assert any("before Handai recorded the system message" in c.value for c in app.caption)
    settings = next(d.value for d in app.dataframe if "Setting" in d.value.columns)
    assert (
        "before Handai recorded the request parameters"
        in dict(zip(settings["Setting"], settings["Value"], strict=True))["Parameters sent"]
    )
    assert "Old instruction." in [c.value for c in app.code]
    assert not any("Reply with" in c.value for c in app.code)  # nothing rebuilt with today's code
