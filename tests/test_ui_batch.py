"""Batch mode in the app: Transform sent as provider batches against the fake server's Files and
Batches endpoints (the real `openai` SDK, a real ledger), its batches table and estimate, History's
batch state, and a batch run found again by a new app process with its key in the environment or
typed in a browser session."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from handai_db import ACTIVE_STATUSES, Database, RowStatus, RunStatus
from handai_engine import Engine, RunSettings
from handai_ui.batch_panel import BATCH, REAL_TIME, WITHIN_24_H
from providers import Connection
from tests.helpers import ROOT, no_exceptions, wait_until, widget

KEY = "sk-test-" + "b" * 40
TEXTS = [f"review {i}: {'good ' * i}" for i in range(1, 7)]
CSV = ("text\n" + "\n".join(TEXTS) + "\n").encode()
PRICES = {"openai/gpt-4o-mini": {"prompt": 1000.0, "completion": 1000.0}}  # large: the halving shows at 4 decimals


@pytest.fixture
def fast_batches(monkeypatch: pytest.MonkeyPatch, llm) -> None:
    """Batches polled every 20 ms, by every engine made from now on (the app's too)."""
    monkeypatch.setenv("HANDAI_BATCH_POLL_SECONDS", "0.02")


def new_app() -> AppTest:
    """A new app process as far as Streamlit's caches go: the engine and the start-up re-attach anew."""
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()
    return AppTest.from_file(str(ROOT / "handai_app.py"), default_timeout=30)


def openai_at_fake(ledger: Database, llm) -> None:
    """OpenAI's base URL is not a sidebar field: it is the saved setting the app reads."""
    ledger.set_setting("ui.base_url.openai", llm.url)
    ledger.set_setting("ui.provider", "openai")


def user_of(text: str) -> str:
    return json.dumps({"text": text}, ensure_ascii=False)


def dollars(caption: str) -> float:
    return float(re.search(r"about \\\$([\d,.]+)", caption).group(1).replace(",", ""))


def estimate(at: AppTest) -> str:
    return next(c.value for c in at.caption if c.value.startswith("Estimate for"))


def wait_finished(ledger: Database, run_id: int) -> None:
    wait_until(lambda: ledger.get_run(run_id).status not in ACTIVE_STATUSES, 30, f"run {run_id} to finish")


def assert_every_row_answered(ledger: Database, run_id: int, texts: list[str]) -> None:
    results = ledger.results(run_id)
    assert len(results) == len(texts)
    for r in results:
        user = user_of(texts[r.row_index])
        assert (r.status, r.request, r.raw) == (RowStatus.SUCCEEDED, user, f"Reply to: {user}")


def test_transform_as_batches_at_half_the_estimate_completes_and_history_shows_its_batches(
    fast_batches, llm, ledger, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    openai_at_fake(ledger, llm)
    ledger.set_setting("prices", PRICES)
    at = new_app()
    at.run()
    at.file_uploader[0].set_value(("reviews.csv", CSV, "text/csv")).run()
    widget(at, "text_area", "tf_prompt").set_value("Summarise.").run()
    no_exceptions(at)
    mode = widget(at, "radio", "tf_send_mode")
    assert not mode.disabled and mode.value == REAL_TIME
    real_time = estimate(at)
    mode.set_value(BATCH).run()
    batch = estimate(at)
    assert dollars(batch) == pytest.approx(dollars(real_time) / 2, abs=1e-4) and dollars(batch) > 0.01
    assert "results within 24 h" in batch and "results within 24 h" not in real_time

    widget(at, "button", "tf_full").click().run()
    no_exceptions(at)
    run_id = int(at.query_params["run"][0] if isinstance(at.query_params["run"], list) else at.query_params["run"])
    wait_finished(ledger, run_id)
    at.run()
    no_exceptions(at)
    run = ledger.get_run(run_id)
    assert (run.status, run.params["mode"]) == (RunStatus.COMPLETED, "batch")
    assert_every_row_answered(ledger, run_id, TEXTS)
    assert llm.requests() == [], "a batch run made real-time calls"
    [created] = llm.llm.batches.created()
    table = next(d.value for d in at.dataframe if "batch" in d.value.columns)
    assert table[["batch", "state", "requests", "done", "failed"]].to_dict("records") == [
        {"batch": created.id, "state": "completed", "requests": 6, "done": 6, "failed": 0}
    ]
    assert not [b for b in at.button if b.label == "Cancel batches"], "nothing left to cancel"

    at.switch_page("pages/history.py").run()
    no_exceptions(at)
    runs = next(d.value for d in at.dataframe if "batches" in d.value.columns)
    assert runs.set_index("run").loc[run_id, "batches"] == "1 completed"


@pytest.mark.parametrize("provider", ["groq", "custom"])
def test_the_batch_choice_is_disabled_with_the_reason_for_a_provider_without_a_batch_api(app, provider):
    widget(app, "selectbox", "handai_provider").set_value(provider).run()
    app.file_uploader[0].set_value(("reviews.csv", CSV, "text/csv")).run()
    no_exceptions(app)
    mode = widget(app, "radio", "tf_send_mode")
    assert mode.disabled and mode.value == REAL_TIME
    assert "no Batch API" in mode.help and "OpenAI" in mode.help


def submitted_and_detached(ledger: Database, llm, texts: list[str]) -> int:
    """A batch run submitted by one engine, which then lets go (detach) and is dropped: its batch
    goes on at the provider, still open in the ledger."""
    llm.llm.batches.configure(in_progress_s=60.0)  # still running at the provider when the engine goes
    engine = Engine(ledger)
    try:
        conn = Connection("openai", api_key=KEY, base_url=llm.url)
        settings = RunSettings(provider="openai", model="gpt-4o-mini", system_prompt="Summarise.", columns=["text"])
        run_id = engine.create_transform_run(pd.DataFrame({"text": texts}), settings, conn, batch=True)
        engine.start(run_id, conn)
        assert engine.wait_submitted(run_id, 30)
        engine.detach(run_id)
        assert engine.wait(run_id, 30).status == RunStatus.PAUSED
    finally:
        engine.shutdown()
    assert len(ledger.run_batches(run_id, open_only=True)) == 1
    llm.llm.batches.configure(in_progress_s=0.05)
    return run_id


def test_a_new_app_with_the_key_in_the_environment_re_attaches_and_completes_the_run(
    fast_batches, llm, ledger, monkeypatch
):
    openai_at_fake(ledger, llm)
    run_id = submitted_and_detached(ledger, llm, TEXTS)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    at = new_app()
    at.run()
    no_exceptions(at)
    wait_finished(ledger, run_id)
    assert ledger.get_run(run_id).status == RunStatus.COMPLETED
    assert_every_row_answered(ledger, run_id, TEXTS)
    assert len(llm.llm.batches.created()) == 1, "a batch was submitted twice"
    assert llm.requests() == []


def test_a_run_whose_key_only_a_browser_session_has_waits_says_so_and_is_re_attached_once_typed(
    fast_batches, llm, ledger
):
    openai_at_fake(ledger, llm)
    run_id = submitted_and_detached(ledger, llm, TEXTS)
    at = new_app()
    at.query_params["run"] = str(run_id)
    at.run()
    no_exceptions(at)
    waiting = [w.value for w in at.warning if "waiting for a key" in w.value]
    assert waiting and "OpenAI" in waiting[0]
    assert ledger.get_run(run_id).status == RunStatus.PAUSED
    assert any(WITHIN_24_H in c.value for c in at.caption)
    assert any(b.label == "Cancel batches" for b in at.button)

    widget(at, "text_input", "handai_key_openai").set_value(KEY).run()
    no_exceptions(at)
    assert not [w for w in at.warning if "waiting for a key" in w.value]
    wait_finished(ledger, run_id)
    assert ledger.get_run(run_id).status == RunStatus.COMPLETED
    assert_every_row_answered(ledger, run_id, TEXTS)
    assert len(llm.llm.batches.created()) == 1
    at.run()
    no_exceptions(at)
    assert not [w for w in at.warning if "waiting for a key" in w.value], "said again after it was re-attached"


def test_the_batch_choice_is_disabled_for_a_plan_of_several_steps(app, llm):
    """Consensus with a judge: the judge needs the coders' answers first, so it cannot go as one batch."""
    widget(app, "selectbox", "handai_provider").set_value("custom").run()
    widget(app, "text_input", "handai_base_url_custom").set_value(llm.url).run()
    app.switch_page("pages/consensus.py").run()
    app.file_uploader[0].set_value(("reviews.csv", CSV, "text/csv")).run()
    widget(app, "text_area", "cns_prompt").set_value("Summarise.").run()
    for key, model in (("cns_0", "fake-small"), ("cns_1", "fake-alt")):
        widget(app, "selectbox", f"{key}_provider").set_value("custom").run()
        widget(app, "selectbox", f"{key}_model_custom").set_value(model).run()
    no_exceptions(app)
    mode = widget(app, "radio", "cns_send_mode")
    assert mode.disabled and "no Batch API" in mode.help  # the coders' provider has none
    widget(app, "toggle", "cns_use_judge").set_value(True).run()
    widget(app, "selectbox", "cns_judge_provider").set_value("custom").run()
    widget(app, "selectbox", "cns_judge_model_custom").set_value("fake-large").run()
    no_exceptions(app)
    mode = widget(app, "radio", "cns_send_mode")
    assert mode.disabled and "one step" in mode.help


def test_generate_as_a_batch_at_half_the_estimate_completes_with_every_record(fast_batches, llm, ledger, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    openai_at_fake(ledger, llm)
    ledger.set_setting("prices", PRICES)
    at = new_app()
    at.run()
    at.switch_page("pages/generate.py").run()
    widget(at, "number_input", "gen_rows").set_value(4).run()
    real_time = estimate(at)
    widget(at, "radio", "gen_send_mode").set_value(BATCH).run()
    assert dollars(estimate(at)) == pytest.approx(dollars(real_time) / 2, abs=1e-4)
    widget(at, "button", "gen_full").click().run()
    no_exceptions(at)
    run_id = int(at.query_params["run"][0] if isinstance(at.query_params["run"], list) else at.query_params["run"])
    wait_finished(ledger, run_id)
    run = ledger.get_run(run_id)
    assert (run.status, run.params["mode"], run.succeeded) == (RunStatus.COMPLETED, "batch", 4)
    assert llm.requests() == [], "a batch run made real-time calls"
    assert len(llm.llm.batches.created()) == 1
