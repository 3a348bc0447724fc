"""Steering the pages of several models as Transform steers: pre-flight against each model's
context window, few-shot examples and saved instructions, values labelled with their survey
question, a row filter that survives a page visit (on Transform too), and a failed run's model
endpoint edited before it is retried. The tests drive Compare in AppTest against the fake server."""

from __future__ import annotations

import pytest

from handai_db import RunStatus
from tests.helpers import no_exceptions, widget
from tests.test_ui_multi import CSV, REVIEWS, compare, finish, pick, sent, use_custom

DEAD_URL = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
QUALTRICS = (
    b"StartDate,Q7,Q8\n"
    b"Start Date,How satisfied are you with the service?,What could we improve?\n"
    b'"{""ImportId"":""startDate""}","{""ImportId"":""QID7""}","{""ImportId"":""QID8""}"\n'
    b"2024-01-01,Very,Faster delivery\n"
    b"2024-01-02,Not at all,Answer the phone\n"
)


@pytest.fixture
def turns(llm, monkeypatch) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every chat request's model and whole conversation (role, content), as the server got them."""
    seen: list[tuple[str, list[tuple[str, str]]]] = []
    respond = llm.llm._respond

    async def recording(request, body, *args):
        seen.append((body["model"], [(m["role"], m["content"]) for m in body["messages"]]))
        return await respond(request, body, *args)

    monkeypatch.setattr(llm.llm, "_respond", recording)
    return seen


def compare_file(app, llm, name: str, data: bytes, models: list[str]) -> None:
    use_custom(app, llm)
    app.switch_page("pages/compare.py").run()
    app.file_uploader[0].set_value((name, data, "text/csv")).run()
    widget(app, "text_area", "cmp_prompt").set_value("Classify.").run()
    widget(app, "number_input", "cmp_count").set_value(len(models)).run()
    for i, model in enumerate(models):
        pick(app, f"cmp_{i}", model)
    no_exceptions(app)


# -- 1. pre-flight --------------------------------------------------------------------------------
def test_a_row_too_long_for_one_model_is_warned_about_and_can_be_shortened(app, llm, ledger):
    llm.configure(models=["fake-small", "mistral-small"])  # mistral-*: a 32,768-token window
    long_text = "word " * 30_000  # about 37,500 tokens
    data = f"id,text\n1,short\n2,{long_text}\n3,also short\n".encode()
    compare_file(app, llm, "long.csv", data, ["fake-small", "mistral-small"])
    warning = next(w.value for w in app.warning if "longer than" in w.value)
    assert warning.startswith("1 rows are longer than the model's 32,768-token context window (model 'mistral")
    assert "row 2" in warning
    widget(app, "checkbox", "cmp_truncate").check().run()
    widget(app, "button", "cmp_full").click().run()
    finish(app, ledger)
    users = {(r.model, r.user) for r in llm.requests()}
    assert len(users) == 6
    cut = [u for _, u in users if "[…]" in u]
    assert len(cut) == 2 and all(len(u) < len(long_text) - 1_000 for u in cut)  # the same row, both models
    assert {u for _, u in users if "short" in u} == {
        '{"id": "1", "text": "short"}',
        '{"id": "3", "text": "also short"}',
    }


# -- 2. examples and saved instructions -----------------------------------------------------------
def test_examples_loaded_with_a_saved_instruction_reach_every_model_as_earlier_turns(app, llm, ledger, turns):
    ledger.save_instruction("mood", "Say the mood.", [{"input": "great film", "output": "positive"}])
    compare(app, llm, ["fake-small", "fake-contrarian"])
    widget(app, "selectbox", "cmp_instr_pick").set_value("mood").run()
    widget(app, "button", "cmp_instr_load").click().run()
    no_exceptions(app)
    assert widget(app, "text_area", "cmp_prompt").value == "Say the mood."
    widget(app, "button", "cmp_full").click().run()
    rid = finish(app, ledger)
    assert ledger.get_run(rid).status == RunStatus.COMPLETED
    assert len(turns) == 2 * len(REVIEWS)
    for model, conversation in turns:
        assert model in ("fake-small", "fake-contrarian")
        assert conversation[:3] == [("system", "Say the mood."), ("user", "great film"), ("assistant", "positive")]
        assert conversation[3][0] == "user" and len(conversation) == 4
    assert {c[3][1] for _, c in turns} == {sent(i, t) for i, t in enumerate(REVIEWS, 1)}
    recorded = ledger.get_run(rid).plan["steps"][0]["examples"]
    assert recorded == [{"input": "great film", "output": "positive"}]


def test_an_instruction_is_saved_from_compare(app, llm, ledger):
    compare(app, llm, ["fake-small", "fake-alt"])
    widget(app, "text_input", "cmp_instr_name").set_value("sentiment").run()
    widget(app, "button", "cmp_instr_save").click().run()
    no_exceptions(app)
    assert ledger.instructions()["sentiment"]["text"] == "Classify the sentiment."


# -- 3. survey question texts ----------------------------------------------------------------------
def test_values_are_sent_labelled_with_their_question_text(app, llm, ledger):
    compare_file(app, llm, "survey.csv", QUALTRICS, ["fake-small", "fake-alt"])
    widget(app, "multiselect", "cmp_columns").set_value(["Q7"]).run()
    widget(app, "checkbox", "cmp_labelled").check().run()
    no_exceptions(app)
    widget(app, "button", "cmp_full").click().run()
    finish(app, ledger)
    assert sorted(r.user for r in llm.requests()) == sorted(
        [f"How satisfied are you with the service? (Q7): {answer}" for answer in ("Very", "Not at all")] * 2
    )


def test_the_label_option_is_offered_only_for_described_columns(app, llm):
    compare(app, llm, ["fake-small", "fake-alt"])
    assert not [c for c in app.checkbox if c.key == "cmp_labelled"]


# -- 4. which rows ---------------------------------------------------------------------------------
def test_a_row_filter_survives_a_visit_to_another_page(app, llm, ledger):
    compare(app, llm, ["fake-small", "fake-alt"])
    widget(app, "segmented_control", "cmp_rows_mode").set_value("filter").run()
    widget(app, "selectbox", "cmp_rows_column").set_value("score").run()
    widget(app, "multiselect", "cmp_rows_values").set_value(["1", "2"]).run()
    no_exceptions(app)
    app.switch_page("pages/history.py").run()
    app.switch_page("pages/compare.py").run()
    no_exceptions(app)
    assert widget(app, "selectbox", "cmp_rows_column").value == "score"
    assert widget(app, "multiselect", "cmp_rows_values").value == ["1", "2"]
    chosen = [i for i in range(1, len(REVIEWS) + 1) if i % 5 in (1, 2)]
    assert widget(app, "button", "cmp_full").label == f"Run the {len(chosen)} chosen rows"
    widget(app, "button", "cmp_full").click().run()
    finish(app, ledger)
    assert sorted(r.user for r in llm.requests() if r.model == "fake-small") == sorted(
        sent(i, REVIEWS[i - 1]) for i in chosen
    )


def test_a_transform_row_filter_survives_a_visit_to_another_page(app, llm):
    use_custom(app, llm)
    app.file_uploader[0].set_value(("reviews.csv", CSV, "text/csv")).run()
    widget(app, "segmented_control", "tf_rows_mode").set_value("filter").run()
    widget(app, "selectbox", "tf_rows_column").set_value("text").run()
    widget(app, "multiselect", "tf_rows_values").set_value(["Meh", "Great value"]).run()
    app.switch_page("pages/history.py").run()
    app.switch_page("pages/transform.py").run()
    no_exceptions(app)
    assert widget(app, "multiselect", "tf_rows_values").value == ["Meh", "Great value"]
    assert widget(app, "button", "tf_full").label == "Run the 2 chosen rows"


# -- 5. a failed run's endpoint edited before retrying ----------------------------------------------
def test_a_run_on_a_dead_url_is_pointed_at_the_server_and_every_cell_succeeds(app, llm, ledger):
    compare(app, llm, ["fake-small", "fake-alt"])
    widget(app, "number_input", "handai_max_retries").set_value(0).run()
    widget(app, "text_input", "handai_base_url_custom").set_value(DEAD_URL).run()
    widget(app, "button", "cmp_full").click().run()
    rid = finish(app, ledger, 60)
    counts = ledger.run_counts(rid)  # the first cells fail alike, so the run stops and says why
    assert counts.failed > 0 and counts.succeeded == 0 and not llm.requests()
    key = f"compare_edit_{rid}"
    assert widget(app, "text_input", f"{key}_url_custom").value == DEAD_URL
    widget(app, "text_input", f"{key}_url_custom").set_value(llm.url)
    widget(app, "text_input", f"{key}_model_1").set_value("fake-contrarian")
    next(b for b in app.button if b.label == "Save the changes").click().run()
    no_exceptions(app)
    arms = ledger.get_run(rid).plan["arms"]
    assert [a["endpoint"]["base_url"] for a in arms] == [llm.url, llm.url]
    assert [a["model"] for a in arms] == ["fake-small", "fake-contrarian"]
    next(b for b in app.button if b.label.startswith("Retry")).click().run()
    no_exceptions(app)
    finish(app, ledger)
    assert ledger.run_counts(rid).succeeded == 2 * len(REVIEWS)
    assert sorted({r.model for r in llm.requests()}) == ["fake-contrarian", "fake-small"]
    assert any(line.message.startswith("Settings changed") for line in ledger.logs(rid))
