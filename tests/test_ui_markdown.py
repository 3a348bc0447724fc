"""Untrusted text is never read as Markdown: `md()` on its own, and the pages showing a file
name, a column name, a file-reading error and a provider's error with Markdown in them."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st_
from streamlit.testing.v1 import AppTest

from handai_db import ACTIVE_STATUSES, ADJUDICATED_RATER, Database, default_url
from handai_ui.text import WORD_JOINER, md
from research.codebook import Code, Codebook
from tests.helpers import no_exceptions, wait_until, widget

MARKDOWN = "**bold** [link](http://x) <b>"
# What would be read as markup if it reached Markdown unescaped.
LIVE_MARKUP = ("**bold**", "](http", "<b>")
ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def rendered(source: str) -> str:
    """The text CommonMark shows for `source` when it holds no markup but backslash escapes (and
    invisible word joiners)."""
    return ESCAPE.sub(r"\1", source).replace(WORD_JOINER, "")


def live(source: str, markup: str) -> bool:
    """`markup` occurs in `source` with its first character not backslash-escaped."""
    return re.search(r"(?<!\\)(?:\\\\)*" + re.escape(markup), source) is not None


def shows_literally(source: str, text: str) -> bool:
    return text in rendered(source) and not any(live(source, m) for m in LIVE_MARKUP)


# -- md() -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        MARKDOWN,
        "# heading\n- item\n1. first\n> quote\n---\n| a | b |",
        ":red[colour] :material/home: :smile: $x^2$ ~~gone~~ `code` _em_",
        "see www.example.com or me@example.com or https://example.com &amp; <!-- c -->",
        "C:\\path\\file_name.csv",
    ],
)
def test_md_escapes_every_markup_and_renders_the_same_text(text):
    source = md(text)
    assert rendered(source) == text
    for markup in (
        "**",
        "](",
        "<b",
        "<!",
        "`c",
        "~~",
        ":red",
        ":material",
        ":smile",
        "$x",
        "&amp",
        "www.",
        "_em",
        "@e",
    ):
        assert not live(source, markup), (markup, source)
    for line in source.splitlines():
        assert not re.match(r"\s*([#>+\-=|:]|\d+[.)])", line), line


def test_md_leaves_ordinary_text_as_it_is():
    for text in (
        "reviews.csv",
        "Columns: id, text",
        "The file 'x.csv' is empty. Check it.",
        "sk-proj-…abcd (typed)",
        'a flat list such as [{"id": 1}, …] at 12:30 < 5',
        "C:\\path\\file name",
    ):
        assert md(text) == text


@given(st_.text().filter(lambda t: WORD_JOINER not in t))
def test_md_round_trips_any_text(text):
    """Any text but the invisible word joiner itself, which md() inserts and `rendered` drops."""
    assert rendered(md(text)) == text


# -- the pages ----------------------------------------------------------------------------------
def texts(at: AppTest) -> list[str]:
    """Every element and label that Streamlit renders as Markdown."""
    parts = [
        e.value
        for kind in ("title", "subheader", "caption", "markdown", "error", "warning", "info", "success")
        for e in getattr(at, kind)
    ]
    parts += [e.label for e in at.expander] + [e.label for e in at.tabs] + [t.value for t in at.toast]
    parts += [
        w.label
        for kind in ("text_input", "text_area", "selectbox", "multiselect", "button", "checkbox", "toggle", "radio")
        for w in getattr(at, kind)
    ]
    parts += [str(option) for r in at.radio for option in r.options]  # a radio's options are Markdown too
    return parts


def assert_no_live_markup(at: AppTest) -> None:
    shown = [t for t in texts(at) if any(live(t, m) for m in LIVE_MARKUP)]
    assert not shown, shown


def test_a_file_and_a_column_named_in_markdown_show_literally(app):
    name = f"{MARKDOWN}.csv"
    data = f'id,"{MARKDOWN}"\n1,hello\n2,"{MARKDOWN} in a cell"\n'.encode()
    app.file_uploader[0].set_value((name, data, "text/csv")).run()
    assert not app.exception, [e.value for e in app.exception]
    caption = next(c.value for c in app.caption if "2 rows × 2 columns" in c.value)
    assert shows_literally(caption, name), caption
    assert list(app.dataframe[0].value.columns) == ["id", MARKDOWN]
    # A template naming a missing column: the message lists the columns, Markdown and all.
    widget(app, "text_area", "tf_prompt").set_value("Classify.").run()
    widget(app, "segmented_control", "tf_mode").set_value("Template").run()
    widget(app, "text_area", "tf_template").set_value("{nope}").run()
    problem = next(c.value for c in app.caption if "nope" in c.value)
    assert shows_literally(problem, MARKDOWN), problem
    assert_no_live_markup(app)


def test_a_file_reading_error_naming_the_file_shows_it_literally(app):
    name = f"{MARKDOWN}.csv"
    app.file_uploader[0].set_value((name, b"", "text/csv")).run()
    assert not app.exception
    assert len(app.error) == 1
    assert shows_literally(app.error[0].value, name), app.error[0].value
    assert_no_live_markup(app)


def test_a_model_named_in_markdown_shows_literally_through_a_failed_run(app, llm):
    """The model's name reaches the run's caption, its stop reason and the row errors; the fake
    server rejects the unknown model, so the run fails."""
    llm.configure(strict_models=True)
    db = Database(default_url())
    db.set_setting("ui.model.custom", MARKDOWN)  # as if typed into the model box earlier
    widget(app, "selectbox", "handai_provider").set_value("custom").run()
    widget(app, "text_input", "handai_base_url_custom").set_value(llm.url).run()
    assert widget(app, "selectbox", "handai_model_pick_custom").value == MARKDOWN
    app.file_uploader[0].set_value(("in.csv", b"id,t\n1,a\n2,b\n", "text/csv")).run()
    widget(app, "text_area", "tf_prompt").set_value("Echo.").run()
    widget(app, "button", "tf_full").click().run()
    assert not app.exception, [e.value for e in app.exception]
    run_id = int(app.query_params["run"])
    try:
        for _ in range(300):
            if db.get_run(run_id).status not in ACTIVE_STATUSES:
                break
            app.run()  # polling by rerunning (AppTest does not fire run_every)
        else:
            pytest.fail(f"run {run_id} did not finish")
        assert db.run_counts(run_id).failed == 2
    finally:
        db.close()
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    caption = next(c.value for c in app.caption if "· Custom" in c.value)
    assert shows_literally(caption, f"Custom (OpenAI-compatible) / {MARKDOWN}"), caption
    assert app.error or app.warning  # the failure is said
    assert_no_live_markup(app)


ANSWER = "**bold** <b>x"  # a model's answer (the fake server's [[pick:…]] cannot hold "]")


def test_a_coder_named_and_an_answer_written_in_markdown_show_literally(app, llm, ledger):
    """A human coder's column named like Markdown joins a coded run on Reliability, and a model's
    answer in Markdown is one of the choices on Adjudicate: each shows as written, and the
    decision keeps the raw answer."""
    book = Codebook("Reasons", (Code("price"), Code("quality")))
    ledger.save_codebook(book.name, book.record())
    widget(app, "selectbox", "handai_provider").set_value("custom").run()
    widget(app, "text_input", "handai_base_url_custom").set_value(llm.url).run()
    rows = f'text,"{MARKDOWN}"\n"a [[pick:{ANSWER}]]",price\n"b [[pick:quality]]",quality\n'
    app.switch_page("pages/coder.py").run()
    app.file_uploader[0].set_value(("coded.csv", rows.encode(), "text/csv")).run()
    widget(app, "multiselect", "qc_columns").set_value(["text"]).run()
    widget(app, "selectbox", "qc_model_provider").set_value("custom").run()
    widget(app, "selectbox", "qc_model_model_custom").set_value("fake-small").run()
    widget(app, "button", "qc_full").click().run()
    no_exceptions(app)
    rid = int(app.query_params["run"])
    wait_until(lambda: ledger.get_run(rid).status not in ACTIVE_STATUSES, 30, f"run {rid} to finish")

    app.switch_page("pages/reliability.py").run()
    widget(app, "multiselect", "rel_own_coders").set_value([MARKDOWN]).run()
    widget(app, "button", "rel_own_save").click().run()
    no_exceptions(app)
    assert {r.rater for r in ledger.ratings(rid)} == {MARKDOWN}
    removing = next(b.label for b in app.button if b.key == "rel_hc_remove_btn")
    assert shows_literally(removing, f"Remove {MARKDOWN}'s codes"), removing
    widget(app, "text_input", "rel_hand_name").set_value(MARKDOWN).run()
    no_exceptions(app)
    saving = next(b.label for b in app.button if b.label.startswith("Save "))
    assert shows_literally(saving, f"Save {MARKDOWN}'s codes for rows 1-2"), saving
    assert_no_live_markup(app)

    app.switch_page("pages/adjudicate.py").run()
    no_exceptions(app)
    widget(app, "text_input", "adj_author").set_value("Dana").run()
    decision = next(r for r in app.radio if r.label == "Decision")
    assert md(ANSWER) in decision.options and "price" in decision.options  # each answer shown through md()
    assert_no_live_markup(app)
    decision.set_value(ANSWER).run()
    widget(app, "button", "adj_settle").click().run()
    no_exceptions(app)
    settled = [r.value for r in ledger.ratings(rid) if r.rater == ADJUDICATED_RATER]
    assert settled == [ANSWER]
    toast = next(t.value for t in app.toast if "settled as" in t.value)
    assert shows_literally(toast, f"Row 1 settled as {ANSWER}."), toast
    assert_no_live_markup(app)
