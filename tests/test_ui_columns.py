"""Described columns (a survey's question texts): their labels in the column picker, and values
sent labelled with their question, through a template that the prompt rules accept."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st_

from handai_db import ACTIVE_STATUSES, Database, default_url
from handai_prompts import TemplateError, render_template, template_fields, validate_template
from handai_ui.columns import column_label, labelled_template
from tests.helpers import widget

QUALTRICS = (
    b"StartDate,Q7,Q8\n"
    b"Start Date,How satisfied are you with the service?,What could we improve?\n"
    b'"{""ImportId"":""startDate""}","{""ImportId"":""QID7""}","{""ImportId"":""QID8""}"\n'
    b"2024-01-01,Very,Faster delivery\n"
    b"2024-01-02,Not at all,{braces} and: colons\n"
)


# -- the template -------------------------------------------------------------------------------
def test_labelled_template_puts_each_question_before_its_value():
    template = labelled_template(["Q7", "id"], {"Q7": "How satisfied are you?\n(pick one)"})
    assert template == "How satisfied are you? (pick one) (Q7): {Q7}\nid: {id}"
    assert render_template(template, {"Q7": "Very", "id": "3"}) == "How satisfied are you? (pick one) (Q7): Very\nid: 3"


def test_braces_in_a_question_are_sent_as_written():
    template = labelled_template(["Q1"], {"Q1": "Rate {product} from {{1}} to 5}"})
    validate_template(template, ["Q1"])
    assert template_fields(template) == ["Q1"]
    assert render_template(template, {"Q1": "4"}) == "Rate {product} from {{1}} to 5} (Q1): 4"


@pytest.mark.parametrize("column", ["a:b", 'say "hi"', " padded", "x{y}"])
def test_a_column_a_placeholder_cannot_hold_is_refused_with_a_way_out(column):
    with pytest.raises(TemplateError, match="as JSON"):
        labelled_template([column], {})


PLACEHOLDER_SAFE = st_.text(
    st_.characters(blacklist_characters="{}\"':\n\r", blacklist_categories=("Cs",)), min_size=1, max_size=12
).filter(lambda c: c == c.strip() and c.strip())


@given(
    st_.lists(PLACEHOLDER_SAFE, min_size=1, max_size=5, unique=True),
    st_.lists(st_.text(max_size=40), min_size=5, max_size=5),
    st_.lists(st_.text(max_size=20), min_size=5, max_size=5),
)
def test_labelled_template_round_trips_any_question_text(columns, questions, values):
    descriptions = dict(zip(columns, questions, strict=False))
    row = dict(zip(columns, values, strict=False))
    template = labelled_template(columns, descriptions)
    validate_template(template, columns)
    assert template_fields(template) == columns
    expected = []
    for column in columns:
        question = " ".join(descriptions[column].split())
        label = f"{question} ({column})" if question and question != column else column
        expected.append(f"{label}: {row[column]}")
    assert render_template(template, row) == "\n".join(expected)


def test_column_label_shows_the_question_clipped():
    long = "How satisfied are you with " + "the service " * 20
    label = column_label("Q7", {"Q7": long})
    assert label.startswith("Q7 — How satisfied are you with the service") and label.endswith("…")
    assert len(label) < 90
    assert column_label("id", {"Q7": long}) == "id"


# -- on the Transform page ------------------------------------------------------------------------
def test_a_survey_export_sends_values_labelled_with_their_questions(app, llm):
    widget(app, "selectbox", "handai_provider").set_value("custom").run()
    widget(app, "text_input", "handai_base_url_custom").set_value(llm.url).run()
    widget(app, "selectbox", "handai_model_pick_custom").set_value("fake-small").run()
    app.file_uploader[0].set_value(("survey.csv", QUALTRICS, "text/csv")).run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("Qualtrics" in c.value for c in app.caption), [c.value for c in app.caption]
    assert "Q7 — How satisfied are you with the service?" in widget(app, "multiselect", "tf_columns").options
    widget(app, "text_area", "tf_prompt").set_value("Summarise.").run()
    widget(app, "multiselect", "tf_columns").set_value(["Q7", "Q8"]).run()
    widget(app, "checkbox", "tf_labelled").check().run()
    assert not app.exception, [e.value for e in app.exception]
    first = "How satisfied are you with the service? (Q7): Very\nWhat could we improve? (Q8): Faster delivery"
    assert first in [c.value for c in app.code]  # the preview of row 1
    widget(app, "button", "tf_full").click().run()
    run_id = int(app.query_params["run"])
    db = Database(default_url())
    try:
        deadline = time.monotonic() + 30
        while db.get_run(run_id).status in ACTIVE_STATUSES:
            assert time.monotonic() < deadline, f"run {run_id} did not finish in 30 s"
            time.sleep(0.05)
        assert db.get_run(run_id).row_template.startswith("How satisfied are you with the service? (Q7): {Q7}")
    finally:
        db.close()
    second = (
        "How satisfied are you with the service? (Q7): Not at all\nWhat could we improve? (Q8): {braces} and: colons"
    )
    assert sorted(r.user for r in llm.requests()) == sorted([first, second])
