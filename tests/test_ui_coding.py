"""AppTest for qualitative coding across pages (issue 12): a saved codebook applied by Consensus
(two models and a judge, constrained to the codebook's labels by the json_schema the `openai`
provider sends to the fake server), human coders imported beside them, every reliability figure
with its n and definition, a disagreement settled on Adjudicate and used as gold, and the
Qualitative coder's counts of off-codebook answers."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from handai_db import ACTIVE_STATUSES, ADJUDICATED_RATER, Database
from research.codebook import Code, Codebook
from tests.fake_llm_server import odd_third
from tests.helpers import no_exceptions, wait_until, widget

LABELS = ["price", "quality", "service"]
ANSWERS = ["Too expensive", "Broke on day one", "Rude staff", "Costs a lot", "Fell apart", "Slow replies"]
CSV = ("id,text\n" + "".join(f"{i},{t}\n" for i, t in enumerate(ANSWERS, 1))).encode()
KEY = "sk-test-0123456789abcdefghijklmnopqrstuvwxyz"


def sent(i: int, text: str) -> str:
    return json.dumps({"id": str(i), "text": text}, ensure_ascii=False)


def baseline(user: str, labels: list[str]) -> str:
    """The fake server's enum answer for most models (its module docstring)."""
    return labels[len(user) % len(labels)]


def shifted(user: str, labels: list[str]) -> str:
    return labels[(len(user) + 1) % len(labels)]


def save_codebook(db: Database) -> Codebook:
    book = Codebook("Reasons", tuple(Code(name, definition=f"About {name}.") for name in LABELS))
    db.save_codebook(book.name, book.record(), note="first")
    return book


def use_openai_at_fake(at: AppTest, llm, ledger: Database) -> None:
    """OpenAI's base URL is not a sidebar field: it is the saved setting the app reads."""
    ledger.set_setting("ui.base_url.openai", llm.url)
    widget(at, "selectbox", "handai_provider").set_value("openai").run()


def type_models(at: AppTest, models: dict[str, str]) -> None:
    """OpenAI models its list does not hold, as typed into their boxes (`accept_new_options`):
    put in the session state before the page first draws them."""
    for key, model in models.items():
        at.session_state[f"{key}_model_openai"] = model


def finish(at: AppTest, ledger: Database) -> int:
    value = at.query_params["run"]
    rid = int(value[0] if isinstance(value, list) else value)
    wait_until(lambda: ledger.get_run(rid).status not in ACTIVE_STATUSES, 30, f"run {rid} to finish")
    at.run()
    no_exceptions(at)
    return rid


def frame_with(at: AppTest, column: str) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if column in d.value.columns)


@pytest.fixture
def openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def test_consensus_with_a_codebook_then_humans_reliability_and_adjudication(app, llm, ledger, openai_key):
    book = save_codebook(ledger)
    labels = book.labels()  # the codes, then "none"
    use_openai_at_fake(app, llm, ledger)
    type_models(app, {"cns_0": "fake-small", "cns_1": "fake-alt", "cns_judge": "fake-large"})
    app.switch_page("pages/consensus.py").run()
    app.file_uploader[0].set_value(("answers.csv", CSV, "text/csv")).run()
    widget(app, "toggle", "cns_use_codebook").set_value(True).run()
    no_exceptions(app)
    assert widget(app, "selectbox", "cns_codebook").value == "Reasons"
    widget(app, "multiselect", "cns_columns").set_value(["id", "text"]).run()
    widget(app, "toggle", "cns_use_judge").set_value(True).run()
    assert [widget(app, "selectbox", f"{k}_model_openai").value for k in ("cns_0", "cns_1", "cns_judge")] == [
        "fake-small",
        "fake-alt",
        "fake-large",
    ]
    widget(app, "button", "cns_full").click().run()
    no_exceptions(app)
    rid = finish(app, ledger)
    assert any(c.value.startswith("Codebook Reasons v1 · 0 answers off the codebook") for c in app.caption)

    users = [sent(i, t) for i, t in enumerate(ANSWERS, 1)]
    differs = [odd_third(u) and baseline(u, labels) != shifted(u, labels) for u in users]
    assert 0 < sum(differs) < len(users)
    judged = [r for r in llm.requests() if r.model == "fake-large"]
    assert len(judged) == sum(differs)  # coders agree on the code: no judge needed there
    coder_requests = [r for r in llm.requests() if r.model == "fake-small"]
    assert all("About price." in r.system for r in coder_requests)  # the codebook is in the instruction
    run = ledger.get_run(rid)
    assert run.plan["codebook"]["ref"]["name"] == "Reasons" and run.plan["codebook"]["ref"]["version"] == 1

    # Reliability: the run's models, plus two human coders imported by id
    humans = pd.DataFrame(
        {
            "id": [str(i) for i in range(1, 7)],
            "Ann": [baseline(u, labels) for u in users],
            "Bo": [baseline(u, labels) if i % 2 else "none" for i, u in enumerate(users)],
        }
    )
    app.switch_page("pages/reliability.py").run()
    no_exceptions(app)
    app.file_uploader[0].set_value(("humans.csv", humans.to_csv(index=False).encode(), "text/csv")).run()
    widget(app, "selectbox", "rel_hc_key").set_value("id").run()
    widget(app, "multiselect", "rel_hc_coders").set_value(["Ann", "Bo"]).run()
    assert any("Matched on 'id': 6 of 6" in c.value for c in app.caption)
    widget(app, "button", "rel_hc_save").click().run()
    no_exceptions(app)
    saved = {(r.rater, r.row_index): r.value for r in ledger.ratings(rid)}
    assert saved[("Ann", 0)] == baseline(users[0], labels) and saved[("Bo", 0)] == "none"
    chosen = next(m for m in app.multiselect if m.label == "Coders compared")
    assert chosen.value == ["fake-small", "fake-alt", "Ann", "Bo"]  # the imported coders join the models
    overall = frame_with(app, "definition")
    figures = dict(zip(overall["figure"], overall["value"], strict=True))
    for name in ("Percent agreement", "Krippendorff's alpha (nominal)", "Fleiss' kappa", "Gwet's AC1"):
        assert float(figures[name]) <= 1.0  # a number, not "undefined"
    assert figures["Cohen's kappa"].startswith("undefined")  # four coders: Cohen's kappa is per pair
    assert overall["n units"].max() == 6 and overall["definition"].str.len().gt(20).all()
    pairs = frame_with(app, "n (units both rated)")
    assert len(pairs) == 6  # 4 coders: 6 pairs
    groups = frame_with(app, "mean Cohen's kappa")
    assert any("human" in g and "model" in g for g in groups["groups"])

    # Adjudicate: settle the first disagreement; it becomes the gold column
    app.switch_page("pages/adjudicate.py").run()
    no_exceptions(app)
    widget(app, "text_input", "adj_author").set_value("Dana").run()
    widget(app, "button", "adj_settle").click().run()
    no_exceptions(app)
    decisions = ledger.ratings(rid)
    settled = [r for r in decisions if r.rater == ADJUDICATED_RATER]
    assert len(settled) == 1 and settled[0].author == "Dana" and settled[0].value in labels

    app.switch_page("pages/reliability.py").run()
    widget(app, "selectbox", f"rel_gold_run{rid}").set_value("adjudicated").run()
    no_exceptions(app)
    assert any("settled rows are the ones the coders disagreed on" in c.value for c in app.caption)
    assert any("against gold" in m.value for m in app.markdown)


def test_reliability_of_an_uploaded_table_of_two_human_coders(app):
    table = pd.DataFrame({"A": ["x", "x", "y", "y", "", "x"], "B": ["x", "y", "y", "y", "x", "none"]})
    app.switch_page("pages/reliability.py").run()
    widget(app, "segmented_control", "rel_source").set_value("An uploaded table").run()
    app.file_uploader[0].set_value(("two.csv", table.to_csv(index=False).encode(), "text/csv")).run()
    widget(app, "multiselect", "rel_table_raters").set_value(["A", "B"]).run()
    no_exceptions(app)
    overall = frame_with(app, "definition")
    assert overall["n units"].max() == 5  # the row A left empty is missing, not a code
    widget(app, "selectbox", "rel_level").set_value("ordinal").run()
    order = next(t for t in app.text_area if t.label == "Label order, lowest first, one per line")
    order.set_value("").run()
    assert any("needs the label order" in c.value for c in app.caption)


def test_the_coder_counts_and_shows_answers_off_the_codebook(app, llm, ledger):
    """The custom provider gets no json_schema, so [[pick:…]] can force an answer outside the
    codebook: it is kept in the table, counted and filterable, never blanked."""
    save_codebook(ledger)
    widget(app, "selectbox", "handai_provider").set_value("custom").run()
    widget(app, "text_input", "handai_base_url_custom").set_value(llm.url).run()
    rows = ["fine [[pick:price]]", "odd [[pick:banana]]", "ok [[pick:service]]"]
    csv = ("text\n" + "".join(f"{t}\n" for t in rows)).encode()
    app.switch_page("pages/coder.py").run()
    app.file_uploader[0].set_value(("few.csv", csv, "text/csv")).run()
    widget(app, "selectbox", "qc_model_provider").set_value("custom").run()
    widget(app, "selectbox", "qc_model_model_custom").set_value("fake-small").run()
    widget(app, "text_area", "qc_prompt").set_value("Find the reason.").run()
    widget(app, "toggle", "qc_evidence").set_value(False).run()
    no_exceptions(app)
    widget(app, "button", "qc_full").click().run()
    rid = finish(app, ledger)
    wide = frame_with(app, "off_codebook")
    assert wide["code"].tolist() == ["price", "banana", "service"]
    assert wide["off_codebook"].fillna("").tolist() == ["", "banana", ""]
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Off the codebook"] == "1" and metrics["Coded"] == "2"
    widget(app, "toggle", f"coder_off_{rid}").set_value(True).run()
    assert frame_with(app, "off_codebook")["code"].tolist() == ["banana"]

    # History opens the run and loads its codebook, version, task and model back into the coder
    ledger.save_codebook("Reasons", {**ledger.codebook_version(1).content, "description": "v2"})
    app.switch_page("pages/history.py").run()
    no_exceptions(app)
    widget(app, "button", "hist_load").click().run()
    no_exceptions(app)
    assert [t.value for t in app.title] == ["Qualitative coder"]
    assert widget(app, "selectbox", "qc_codebook").value == "Reasons"
    assert widget(app, "selectbox", "qc_cb_version").value == 1  # the version the run used, not the newest
    assert widget(app, "text_area", "qc_prompt").value == "Find the reason."
    assert widget(app, "toggle", "qc_evidence").value is False
    assert widget(app, "selectbox", "qc_model_model_custom").value == "fake-small"


def test_human_codes_that_came_in_the_uploaded_table_join_the_run_as_coders(app, llm, ledger):
    """The common case: the file already holds two people's codes beside the text; the model
    codes the text, and the people's columns become coders of the same run."""
    save_codebook(ledger)
    widget(app, "selectbox", "handai_provider").set_value("custom").run()
    widget(app, "text_input", "handai_base_url_custom").set_value(llm.url).run()
    rows = pd.DataFrame(
        {
            "text": ["a [[pick:price]]", "b [[pick:quality]]", "c [[pick:service]]", "d [[pick:none]]"],
            "ann": ["Price", "quality", "service", "none"],  # "Price" is the codebook's "price"
            "bo": ["price", "service", "", "none"],  # an empty cell: not coded
        }
    )
    app.switch_page("pages/coder.py").run()
    app.file_uploader[0].set_value(("coded.csv", rows.to_csv(index=False).encode(), "text/csv")).run()
    widget(app, "multiselect", "qc_columns").set_value(["text"]).run()
    widget(app, "selectbox", "qc_model_provider").set_value("custom").run()
    widget(app, "selectbox", "qc_model_model_custom").set_value("fake-small").run()
    widget(app, "button", "qc_full").click().run()
    rid = finish(app, ledger)
    app.switch_page("pages/reliability.py").run()
    widget(app, "multiselect", "rel_own_coders").set_value(["ann", "bo"]).run()
    widget(app, "button", "rel_own_save").click().run()
    no_exceptions(app)
    saved = {(r.rater, r.row_index): r.value for r in ledger.ratings(rid)}
    assert [saved[("ann", i)] for i in range(4)] == ["price", "quality", "service", "none"]
    assert [saved[("bo", i)] for i in range(4)] == ["price", "service", None, "none"]
    pairs = frame_with(app, "n (units both rated)")
    counts = zip(pairs["rater A"], pairs["rater B"], pairs["n (units both rated)"], strict=True)
    by_pair = {(a, b): n for a, b, n in counts}
    assert by_pair[("fake-small", "ann")] == 4 and by_pair[("ann", "bo")] == 3  # pairwise deletion


def test_each_run_keeps_its_own_label_set_and_a_label_may_hold_a_comma():
    def page() -> None:
        import pandas as pd
        import streamlit as st

        from handai_ui.reliability_settings import reliability_settings

        scope = st.radio("run", ["A", "B"], key="which")
        labels = {"A": ["Price, value", "Service", "none"], "B": ["x", "y", "z"]}[scope]
        frame = pd.DataFrame({"m": [labels[0], labels[1]], "h": [labels[0], labels[0]]})
        settings = reliability_settings("t", frame, {"m": "model", "h": "human"}, scope=scope, labels=labels)
        st.session_state["got"] = settings.labels

    at = AppTest.from_function(page, default_timeout=30).run()
    assert at.session_state["got"] == ("Price, value", "Service", "none")  # one label, comma and all
    at.radio(key="which").set_value("B").run()
    assert at.session_state["got"] == ("x", "y", "z")  # not run A's labels left in the box
    at.radio(key="which").set_value("A").run()
    assert at.session_state["got"] == ("Price, value", "Service", "none")


def test_choosing_another_codebook_takes_its_latest_version(app, ledger):
    for name, versions in (("A", 2), ("B", 3)):
        for v in range(versions):
            ledger.save_codebook(name, Codebook(name, (Code(f"code{v}"),)).record())
    app.switch_page("pages/coder.py").run()
    app.file_uploader[0].set_value(("t.csv", b"text\nhello\n", "text/csv")).run()
    widget(app, "selectbox", "qc_codebook").set_value("A").run()
    widget(app, "selectbox", "qc_cb_version").set_value(1).run()
    widget(app, "selectbox", "qc_codebook").set_value("B").run()
    no_exceptions(app)
    assert widget(app, "selectbox", "qc_cb_version").value == 3  # B's latest, not "version 1" carried over
