"""AppTest: documents uploaded on a page that uses the shared Data section become rows. Two
transcripts split into speaker turns show their rows and notes before any call; a bad file's
message shows while the good one loads; a lone table still reads as a table."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.helpers import no_exceptions, widget
from tests.test_documents import docx_bytes

TRANSCRIPT = b"Interviewer: How was it?\nAnn: Good, mostly.\n\n[00:01:10] Interviewer: Why?\n"


def upload(at: AppTest, page: str, files: list[tuple[str, bytes, str]]) -> None:
    at.switch_page(page).run()
    at.file_uploader[0].set_value(files).run()
    no_exceptions(at)


def preview(at: AppTest):
    return at.dataframe[0].value


def test_two_transcripts_split_into_turns_show_rows_and_notes_before_any_call(app):
    long_answer = "Ann: " + "A long answer that goes on. " * 30
    docx = docx_bytes(["Interviewer: Start?", long_answer])
    upload(
        app, "pages/consensus.py", [("a.txt", TRANSCRIPT, "text/plain"), ("b.docx", docx, "application/octet-stream")]
    )
    widget(app, "radio", "cns_split").set_value("turn").run()
    widget(app, "number_input", "cns_max_chars").set_value(300).run()
    no_exceptions(app)
    df = preview(app)
    assert list(df.columns)[-5:] == ["document", "segment", "position", "speaker", "text"]
    assert df["speaker"].tolist()[:3] == ["Interviewer", "Ann", "Interviewer"]
    assert df["position"].tolist()[:3] == ["line 1", "line 2", "line 4"]
    assert df["document"].tolist()[3:] == ["b.docx"] * 4
    assert df["segment"].tolist()[3:] == ["1", "2", "3", "4"]
    assert df["position"].tolist()[3:] == ["paragraph 1"] + ["paragraph 2"] * 3
    assert any("1 segment longer than 300 characters was split into 3 rows" in c.value for c in app.caption)
    assert any("a.txt, b.docx" in c.value and "7 rows" in c.value for c in app.caption)
    assert not app.error


def test_a_bad_file_gets_its_message_while_the_good_one_loads(app):
    files = [("good.md", b"# Notes\n\nFirst point.", "text/markdown"), ("bad.pdf", b"%PDF-1.4 junk", "application/pdf")]
    upload(app, "pages/compare.py", files)
    widget(app, "radio", "cmp_split").set_value("paragraph").run()
    assert preview(app)["text"].tolist() == ["# Notes", "First point."]
    assert [e.value for e in app.error] == [
        "'bad.pdf' is not a readable PDF (damaged, or not a PDF). Re-save or re-export it."
    ]


def test_one_table_file_still_reads_as_a_table(app):
    upload(app, "pages/compare.py", [("t.csv", b"id,text\n1,hello\n2,world\n", "text/csv")])
    assert preview(app)["text"].tolist() == ["hello", "world"]
    assert not [w for w in app.radio if w.key == "cmp_split"]


def test_transform_runs_a_docx_transcript_split_into_turns_and_keeps_the_position_columns(app, llm):
    from handai_db import Database, default_url
    from handai_io import export_bytes, read_table
    from tests.test_app import use_fake_server, wait_for_run

    use_fake_server(app, llm)
    docx = docx_bytes(["Date: 3 May 2021", "Interviewer: How did you start?", "Ann: By chance.", "Interviewer: Then?"])
    upload(app, "pages/transform.py", [("talk.docx", docx, "application/octet-stream")])
    widget(app, "radio", "tf_split").set_value("turn").run()
    no_exceptions(app)
    shown = preview(app).fillna("")
    assert [tuple(r) for r in shown[["segment", "position", "speaker", "text"]].itertuples(index=False)] == [
        ("1", "paragraph 1", "", "Date: 3 May 2021"),
        ("2", "paragraph 2", "Interviewer", "How did you start?"),
        ("3", "paragraph 3", "Ann", "By chance."),
        ("4", "paragraph 4", "Interviewer", "Then?"),
    ]
    assert any("**talk.docx** · 4 rows × 5 columns" in c.value for c in app.caption)
    widget(app, "text_area", "tf_prompt").set_value("Code the turn.").run()
    widget(app, "multiselect", "tf_columns").set_value(["speaker", "text"]).run()
    widget(app, "button", "tf_full").click().run()
    no_exceptions(app)
    run_id = int(app.query_params["run"][0] if isinstance(app.query_params["run"], list) else app.query_params["run"])
    wait_for_run(run_id)
    app.run()
    assert [r.user for r in llm.requests()][1] == '{"speaker": "Interviewer", "text": "How did you start?"}'
    results = next(d.value for d in app.dataframe if "ai_output" in d.value.columns)
    assert {"document", "segment", "position", "speaker"} <= set(results.columns)
    assert {b.label for b in app.get("download_button")} >= {"CSV", "XLSX", "JSON", "JSONL"}
    db = Database(default_url())
    try:  # what the CSV download holds: the page exports the run's results frame
        exported = read_table(export_bytes(db.results_frame(run_id), "csv"), "out.csv").df
    finally:
        db.close()
    assert exported[["document", "segment", "position"]].values.tolist()[3] == ["talk.docx", "4", "paragraph 4"]
    assert exported["ai_status"].tolist() == ["succeeded"] * 4

    app.switch_page("pages/history.py").run()
    app.switch_page("pages/transform.py").run()
    assert any("Using **talk.docx**" in c.value for c in app.caption)
    app.file_uploader[0].set_value([("talk.docx", docx, "application/octet-stream")]).run()
    assert widget(app, "radio", "tf_split").value == "turn"  # kept across the page switch


def test_the_columns_sent_follow_the_split_new_columns_in_and_a_column_taken_out_stays_out(app):
    """Whole documents have no `speaker`; split into turns they do, and it is sent unless the user
    took it out (Streamlit keeps a multiselect's choice, so the page has to add new columns)."""
    docx = docx_bytes(["Interviewer: How was it?", "Ann: Good, mostly.", "Interviewer: Why?"])
    upload(app, "pages/coder.py", [("talk.docx", docx, "application/octet-stream")])
    widget(app, "radio", "qc_split").set_value("document").run()
    assert widget(app, "multiselect", "qc_columns").value == ["document", "segment", "position", "text"]
    widget(app, "multiselect", "qc_columns").set_value(["document", "text"]).run()
    widget(app, "radio", "qc_split").set_value("turn").run()
    no_exceptions(app)
    assert widget(app, "multiselect", "qc_columns").value == ["document", "speaker", "text"]
    widget(app, "multiselect", "qc_columns").set_value(["text"]).run()
    widget(app, "radio", "qc_split").set_value("paragraph").run()
    widget(app, "radio", "qc_split").set_value("turn").run()
    assert widget(app, "multiselect", "qc_columns").value == ["speaker", "text"]


def test_a_document_picked_twice_is_read_once_and_the_page_says_so(app):
    docx = docx_bytes(["Interviewer: How was it?", "Ann: Good, mostly."])
    twice = [("talk.docx", docx, "application/octet-stream")] * 2
    upload(app, "pages/coder.py", [*twice, ("other.txt", TRANSCRIPT, "text/plain")])
    assert len(preview(app)) == 2
    assert any("1 file(s) chosen twice (same name and content) were read once." in c.value for c in app.caption)
    assert any("talk.docx, other.txt" in c.value for c in app.caption)
