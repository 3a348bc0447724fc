"""AppTest for the Codebooks page: a codebook written in the editor, saved, edited and saved again
(versions 1 and 2, nothing overwritten), version 1 loaded back; CSV and REFI-QDA files imported
and a malformed one refused with its reason; the downloads of a version; and the generator run
end to end against the fake server (themes per chunk, then codes), its draft saved with the runs
it came from. AppTest cannot type into a data editor: edits are given as the editor's own edit
state (`edited_rows`, `added_rows`, `deleted_rows`), as a browser would send them."""

from __future__ import annotations

from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from handai_db import ACTIVE_STATUSES, Database
from research.codebook import Codebook
from research.codebook_gen import chunk_rows
from tests.helpers import no_exceptions, wait_until, widget

PAGE = "pages/codebooks.py"
SAVED, IMPORT, GENERATE = "Saved codebooks", "Import a file", "Generate from data"


# -- helpers -------------------------------------------------------------------------------------------
def open_page(app: AppTest) -> AppTest:
    app.switch_page(PAGE).run()
    no_exceptions(app)
    return app


def edit_codes(app: AppTest, *, added: list[dict[str, str]] = (), edited: dict[int, dict[str, str]] | None = None):
    """Send the codes table an edit, as the browser does, and run the page."""
    key = app.data_editor[0].key
    app.session_state[key] = {"edited_rows": edited or {}, "added_rows": list(added), "deleted_rows": []}
    app.run()
    no_exceptions(app)


def editor_rows(app: AppTest) -> list[dict[str, Any]]:
    """The codes table as the page now draws it (its base rows: every edit so far is in them once
    the names have changed)."""
    frame = app.data_editor[0].value.fillna("")
    return frame.to_dict("records")


def save(app: AppTest, note: str = "") -> None:
    widget(app, "text_input", "cb_note").set_value(note)
    button = widget(app, "button", "cb_save")
    assert not button.disabled, [w.value for w in app.warning]
    button.click().run()
    no_exceptions(app)


def versions(ledger: Database, name: str) -> list[Any]:
    book = ledger.find_codebook(name)
    assert book is not None, f"no codebook named {name!r}"
    return ledger.codebook_versions(book.id)


def names(version: Any) -> list[str]:
    return [c["name"] for c in version.content["codes"]]


# -- the editor and versions ---------------------------------------------------------------------------
def test_the_page_loads_with_an_empty_database_and_says_what_to_do(app):
    open_page(app)
    assert [t.value for t in app.title] == ["Codebooks"]
    assert any("No codebooks saved yet" in i.value for i in app.info)
    assert widget(app, "button", "cb_save").disabled
    assert "Give the codebook a name." in [w.value for w in app.warning]
    assert any("has no codes" in w.value for w in app.warning)


def test_write_save_edit_save_and_load_version_1_back(app, ledger):
    open_page(app)
    widget(app, "text_input", "cb_name").set_value("Reviews").run()
    edit_codes(
        app,
        added=[
            {"name": "price", "definition": "Cost or value for money.", "examples": "too expensive\ncheap"},
            {"name": "quality", "definition": "How well it is made.", "parent": "price"},
        ],
    )
    assert [r["name"] for r in editor_rows(app)] == ["price", "quality"]
    assert widget(app, "button", "cb_save").label == "Save as a new codebook (version 1)"
    save(app, "first draft")
    (v1,) = versions(ledger, "Reviews")
    assert (v1.version, v1.note, v1.source, v1.run_id) == (1, "first draft", "written in the editor", None)
    book = Codebook.from_record(v1.content)
    assert names(v1) == ["price", "quality"] and book.code("price").examples == ("too expensive", "cheap")
    assert book.code("quality").parent == "price" and book.none_code == "none" and not book.multi_label
    # the saved version is what the editor now holds: nothing to save until it changes
    assert widget(app, "button", "cb_save").disabled
    assert any("Same as version 1" in c.value for c in app.caption)

    edit_codes(app, added=[{"name": "delivery", "definition": "Shipping and arrival."}])
    widget(app, "toggle", "cb_multi").set_value(True).run()
    assert widget(app, "button", "cb_save").label == "Save as version 2"
    save(app, "added delivery")
    v2, v1_again = versions(ledger, "Reviews")
    assert (v2.version, v2.source, v2.content["multi_label"]) == (2, "edited from version 1", True)
    assert names(v2) == ["price", "quality", "delivery"]
    assert v1_again.content == v1.content  # never overwritten

    codebook_id = ledger.find_codebook("Reviews").id
    assert widget(app, "selectbox", "cb_pick").value == codebook_id
    table = next(d.value for d in app.dataframe if "version" in d.value.columns)
    assert list(table["version"]) == [2, 1] and list(table["note"]) == ["added delivery", "first draft"]
    widget(app, "selectbox", f"cb_view_{codebook_id}").set_value(1).run()
    widget(app, "button", f"cb_edit_{codebook_id}_1").click().run()
    no_exceptions(app)
    assert [r["name"] for r in editor_rows(app)] == ["price", "quality"]
    assert widget(app, "toggle", "cb_multi").value is False
    assert widget(app, "button", "cb_save").label == "Save as version 3"  # saving v1 again makes v3
    assert not widget(app, "button", "cb_save").disabled


def test_problems_are_shown_and_block_saving(app, ledger):
    open_page(app)
    widget(app, "text_input", "cb_name").set_value("Topics").run()
    edit_codes(app, added=[{"name": "price"}, {"name": "Price "}, {"name": "none"}, {"definition": "no name here"}])
    warnings = [w.value for w in app.warning]
    assert any("are the same name" in w for w in warnings)
    assert any("'none' option 'none' is also a code's name" in w for w in warnings)
    assert any(w.startswith("Row 4 has text but no name") for w in warnings)
    assert widget(app, "button", "cb_save").disabled
    widget(app, "text_input", "cb_none_label").set_value("no code").run()
    assert not any("also a code's name" in w.value for w in app.warning)
    assert ledger.find_codebook("Topics") is None


def test_the_instruction_and_schema_a_coder_would_get_are_shown(app):
    open_page(app)
    widget(app, "text_input", "cb_name").set_value("Mood").run()
    edit_codes(app, added=[{"name": "happy", "definition": "Glad."}, {"name": "sad"}])
    instruction = app.get("code")[0].value
    assert 'Code the text using the codebook "Mood".' in instruction and "- happy" in instruction
    assert '"happy", "sad", "none"' in instruction
    assert app.json[0].value  # the output schema, drawn as JSON


# -- import and export -----------------------------------------------------------------------------------
CSV = (
    "code,description,include when,examples\n"
    'praise,Positive words about the product,"Any compliment","love it | très bien"\n'
    "complaint,Negative words,,awful\n"
).encode()
QDC = """<?xml version="1.0" encoding="utf-8"?>
<CodeBook xmlns="urn:QDA-XML:codebook:1.0" origin="MAXQDA">
  <Codes>
    <Code guid="7A1E2F10-0000-4000-8000-000000000001" name="Service" isCodable="true">
      <Description>Anything about staff.</Description>
      <Code guid="7A1E2F10-0000-4000-8000-000000000002" name="Rude staff" isCodable="true">
        <Description>Staff were impolite.
Include when:
Insults or sighs.</Description>
      </Code>
    </Code>
    <Code guid="7A1E2F10-0000-4000-8000-000000000003" name="Waiting at the café" isCodable="true"/>
  </Codes>
</CodeBook>
""".encode()


def import_file(app: AppTest, name: str, data: bytes, mime: str = "text/plain") -> None:
    if widget(app, "button_group", "cb_start").value != IMPORT:
        widget(app, "button_group", "cb_start").set_value(IMPORT).run()
    app.file_uploader(key="cb_import").set_value((name, data, mime)).run()
    no_exceptions(app)


def test_import_a_csv_and_a_qdc_check_them_in_the_editor_and_save(app, ledger):
    open_page(app)
    import_file(app, "survey codes.csv", CSV, "text/csv")
    assert any("Read 2 codes from" in s.value for s in app.success)
    assert widget(app, "text_input", "cb_name").value == "survey codes"
    rows = editor_rows(app)
    assert [r["name"] for r in rows] == ["praise", "complaint"]
    assert rows[0]["inclusion"] == "Any compliment" and rows[0]["examples"] == "love it\ntrès bien"
    save(app)
    (v1,) = versions(ledger, "survey codes")
    assert v1.source == "imported from survey codes.csv"

    import_file(app, "service.qdc", QDC, "application/xml")
    assert widget(app, "text_input", "cb_name").value == "service"
    rows = {r["name"]: r for r in editor_rows(app)}
    assert list(rows) == ["Service", "Rude staff", "Waiting at the café"]
    assert rows["Rude staff"]["parent"] == "Service" and rows["Rude staff"]["inclusion"] == "Insults or sighs."
    save(app)
    assert versions(ledger, "service")[0].source == "imported from service.qdc"


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("broken.qdc", b"<CodeBook><Codes><Code name='x'>", "not valid XML"),
        ("project.qdc", b"<Project><Users/></Project>", "not a REFI-QDA codebook"),
        ("colours.csv", b"colour,size\nred,big\n", "has no 'name' column"),
        ("codes.json", b"{not json", "not valid JSON"),
        ("notes.txt", b"Just some notes, no headings or lists.", "The Markdown has no codes"),
    ],
)
def test_a_file_that_cannot_be_read_says_why_and_nothing_else_breaks(app, name, data, says):
    open_page(app)
    widget(app, "text_input", "cb_name").set_value("Kept").run()
    import_file(app, name, data)
    assert any(name in e.value and says in e.value for e in app.error), [e.value for e in app.error]
    assert widget(app, "text_input", "cb_name").value == "Kept"  # the editor is left as it was
    import_file(app, "survey codes.csv", CSV, "text/csv")
    assert [r["name"] for r in editor_rows(app)] == ["praise", "complaint"]


def test_a_version_is_offered_in_every_format_named_after_the_codebook_and_version(app, ledger):
    open_page(app)
    import_file(app, "survey codes.csv", CSV, "text/csv")
    save(app)
    buttons = {b.label: b for b in app.get("download_button")}
    assert set(buttons) == {"CSV (one row per code)", "JSON", "Markdown", "REFI-QDA codebook (.qdc)"}
    codebook_id = ledger.find_codebook("survey codes").id
    assert all(b.proto.deferred_file_id for b in buttons.values())  # built only when clicked
    assert {b.key for b in buttons.values()} == {f"cb_dl_{codebook_id}_1_{fmt}" for fmt in ("csv", "json", "md", "qdc")}


# -- the generator ---------------------------------------------------------------------------------------
ANSWERS = [
    "The price was far too high for what you get.",
    "Delivery took three weeks.",
    "Staff at the shop were friendly.",
    "Cheap and cheerful, does the job.",
    "The parcel arrived damaged.",
    "Customer service never answered my email.",
    "Good value overall.",
]
TEXTS_PER_CHUNK = 3


def texts_csv(answers: list[str]) -> bytes:
    return ("id,answer\n" + "".join(f'{i},"{a}"\n' for i, a in enumerate(answers, 1))).encode()


def use_custom(app: AppTest, llm: Any) -> None:
    widget(app, "selectbox", "handai_provider").set_value("custom").run()
    widget(app, "text_input", "handai_base_url_custom").set_value(llm.url).run()


def finish(app: AppTest, ledger: Database, kind: str, timeout: float = 30) -> int:
    """The run of this kind the page started, once it ended; the page run again."""
    rid = wait_until(lambda: app.session_state[f"{kind}_run_id"], 5, f"a {kind} run")
    wait_until(lambda: ledger.get_run(rid).status not in ACTIVE_STATUSES, timeout, f"run {rid} to finish")
    app.run()
    no_exceptions(app)
    return rid


def generate(app: AppTest, llm: Any, answers: list[str]) -> None:
    use_custom(app, llm)
    open_page(app)
    widget(app, "button_group", "cb_start").set_value(GENERATE).run()
    app.file_uploader(key="cbg_upload").set_value(("answers.csv", texts_csv(answers), "text/csv")).run()
    widget(app, "selectbox", "cbg_column").set_value("answer").run()
    widget(app, "number_input", "cbg_n").set_value(5).run()
    widget(app, "number_input", "cbg_texts").set_value(TEXTS_PER_CHUNK).run()
    no_exceptions(app)
    widget(app, "selectbox", "cbg_model_provider").set_value("custom").run()
    widget(app, "selectbox", "cbg_model_model_custom").set_value("fake-small").run()
    widget(app, "text_input", "cbg_name").set_value("Shop survey").run()
    no_exceptions(app)
    assert any("7 texts in 3 chunks" in c.value for c in app.caption)
    widget(app, "button", "cbg_start").click().run()
    no_exceptions(app)


def test_generate_a_draft_from_data_in_two_runs_and_save_it_with_its_provenance(app, llm, ledger):
    generate(app, llm, ANSWERS)
    themes = finish(app, ledger, "codebook_themes")
    consolidate = finish(app, ledger, "codebook_consolidate")
    assert (ledger.get_run(themes).kind, ledger.get_run(consolidate).kind) == (
        "codebook_themes",
        "codebook_consolidate",
    )
    chunks = chunk_rows(ANSWERS, max_texts=TEXTS_PER_CHUNK)
    requests = llm.requests()
    assert sorted(r.user for r in requests[:3]) == sorted(f"Texts:\n\n{c['texts']}" for c in chunks)  # all seen
    assert len(requests) == 4 and requests[3].user.startswith("Themes:\n\nChunk 1:")
    assert any("is in the editor below" in s.value for s in app.success)
    assert not any("chunks failed" in w.value for w in app.warning)
    (code,) = editor_rows(app)  # the fake server names one code, from its reply to run 2
    assert code["name"].startswith("codes-")
    assert widget(app, "text_input", "cb_name").value == "Shop survey"
    save(app, "first draft")
    (v1,) = versions(ledger, "Shop survey")
    assert v1.source == f"generated by runs #{themes} and #{consolidate}" and v1.run_id == consolidate


def test_failed_chunks_are_said_and_the_codes_wait_for_the_users_choice(app, llm, ledger):
    answers = [*ANSWERS[:3], "This one breaks the model [[context]]", *ANSWERS[4:]]
    generate(app, llm, answers)
    themes = finish(app, ledger, "codebook_themes")
    assert any("1 of 3 chunks failed; their texts were not seen" in w.value for w in app.warning)
    assert app.session_state["cbg_job"]["consolidate"] is None  # not started by itself
    widget(app, "button", f"cbg_consolidate_{themes}").click().run()
    no_exceptions(app)
    consolidate = finish(app, ledger, "codebook_consolidate")
    assert consolidate != themes
    assert any("from 2 of 3 chunks (1 failed; their texts were not seen)" in s.value for s in app.success)
    assert "Chunk 2:" not in llm.requests()[-1].user  # the failed chunk's themes were not there to merge


def test_unsaved_edits_survive_a_visit_to_another_page(app):
    open_page(app)
    widget(app, "text_input", "cb_name").set_value("Draft").run()
    edit_codes(app, added=[{"name": "price"}])
    edit_codes(app, edited={0: {"definition": "Cost."}})  # no new name: the table keeps its key and edits
    app.switch_page("pages/history.py").run()
    open_page(app)
    assert widget(app, "text_input", "cb_name").value == "Draft"
    assert [(r["name"], r["definition"]) for r in editor_rows(app)] == [("price", "Cost.")]


def test_the_generator_reads_a_seeded_sample_of_a_long_column(app, llm, ledger):
    many = [f"Answer number {i}: {ANSWERS[i % len(ANSWERS)]}" for i in range(50)]
    use_custom(app, llm)
    open_page(app)
    widget(app, "button_group", "cb_start").set_value(GENERATE).run()
    app.file_uploader(key="cbg_upload").set_value(("many.csv", texts_csv(many), "text/csv")).run()
    widget(app, "selectbox", "cbg_column").set_value("answer").run()
    widget(app, "number_input", "cbg_texts").set_value(10).run()
    widget(app, "number_input", "cbg_read").set_value(20).run()
    widget(app, "selectbox", "cbg_model_provider").set_value("custom").run()
    widget(app, "selectbox", "cbg_model_model_custom").set_value("fake-small").run()
    no_exceptions(app)
    assert any("20 texts in 2 chunks" in c.value for c in app.caption)
    widget(app, "button", "cbg_start").click().run()
    finish(app, ledger, "codebook_themes")
    sent = "\n".join(r.user for r in llm.requests()[:2])
    read = [t for t in many if t in sent]
    assert len(read) == 20 and read != many[:20]  # a sample, not the first rows


def test_empty_cells_are_blank_not_none_and_a_markdown_name_is_shown_literally(app, ledger):
    from handai_ui.text import md

    open_page(app)
    editor = app.data_editor[0]
    # A missing value is drawn blank, not as a grey "None" (an unset placeholder would read "" too).
    assert editor.proto.HasField("placeholder") and editor.proto.placeholder == ""
    name = "**Bold** _costs_ :red[x]"
    widget(app, "text_input", "cb_name").set_value(name).run()
    edit_codes(app, added=[{"name": "price", "definition": "Cost."}, {"name": "quality", "parent": "price"}])
    frame = app.data_editor[0].value
    assert frame.isna().sum().sum() == 0 and frame.loc[0, "parent"] == ""  # no parent is "", not None
    save(app)
    toasts = [t.value for t in app.toast]
    assert f"Saved '{md(name)}' as version 1." in toasts, toasts
    assert ledger.find_codebook(name) is not None
