"""Documents become rows: each reader on files built here (DOCX by python-docx, PDFs by pypdf),
each split (document, paragraph, page, speaker turn), long segments cut at stated boundaries, and
every failure (scanned, encrypted, broken, unsupported, hostile ZIP) as one message per file
while the other files still load."""

from __future__ import annotations

import io
import zipfile

import docx
import pandas as pd
import pytest
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

from handai_io import read_documents
from handai_io.documents.segments import split_long


def pdf_bytes(pages: list[list[str]], password: str | None = None) -> bytes:
    """A PDF whose pages hold these lines as real text (an empty list: a page without text)."""
    writer = PdfWriter()
    font = writer._add_object(
        DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
    )
    for lines in pages:
        page = writer.add_blank_page(612, 792)
        if not lines:
            continue
        stream = DecodedStreamObject()
        stream.set_data(
            ("BT /F1 12 Tf 14 TL 72 720 Td " + " ".join(f"({line}) Tj T*" for line in lines) + " ET").encode()
        )
        page[NameObject("/Contents")] = writer._add_object(stream)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
    if password:
        writer.encrypt(password, algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def docx_bytes(paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, text in enumerate(row):
                grid.cell(r, c).text = text
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def rows(table) -> list[tuple]:
    return [tuple(r) for r in table.df.itertuples(index=False)]


TRANSCRIPT = b"""Interview 4, 12 May

Interviewer: How did you start?
It was a long time ago.

Speaker 1: In 2019. I was
a student then.
[00:01:02] Ann Lee: I remember that.
00:02 JOHN: Me too.
Note that this line: is not a turn.
"""


def test_a_transcript_splits_into_turns_of_every_style_with_line_positions():
    table = read_documents([("t.txt", TRANSCRIPT)], split="turn")
    assert list(table.df.columns) == ["document", "segment", "position", "speaker", "text"]
    got = [(r[1], r[2], r[3], r[4]) for r in rows(table)]
    assert got[0][:2] == ("1", "line 1") and pd.isna(got[0][2]) and got[0][3] == "Interview 4, 12 May"
    assert got[1:] == [
        ("2", "line 3", "Interviewer", "How did you start?\nIt was a long time ago."),
        ("3", "line 6", "Speaker 1", "In 2019. I was\na student then."),
        ("4", "line 8", "Ann Lee", "I remember that."),
        ("5", "line 9", "JOHN", "Me too.\nNote that this line: is not a turn."),
    ]
    assert table.errors == [] and table.notes == []


def test_docx_paragraphs_and_a_two_column_table_read_as_turns():
    data = docx_bytes(["Interviewer: Why this job?", "Participant 3: The people."], [["Interviewer", "And now?"]])
    table = read_documents([("i.docx", data)], split="turn")
    assert [(r[2], r[3], r[4]) for r in rows(table)] == [
        ("paragraph 1", "Interviewer", "Why this job?"),
        ("paragraph 2", "Participant 3", "The people."),
        ("paragraph 3", "Interviewer", "And now?"),
    ]
    by_paragraph = read_documents([("i.docx", data)], split="paragraph")
    assert by_paragraph.df["text"].tolist()[1] == "Participant 3: The people."
    assert "speaker" not in by_paragraph.df.columns


def test_pdf_pages_with_a_page_without_text_left_out_and_said_so():
    data = pdf_bytes([["First page text"], [], ["Third page", "second line"]])
    table = read_documents([("r.pdf", data)], split="page")
    assert [(r[1], r[2], r[3]) for r in rows(table)] == [
        ("1", "page 1", "First page text"),
        ("2", "page 3", "Third page\nsecond line"),
    ]
    assert table.notes == ["'r.pdf': page 2 without text (scanned images?) left out."]
    whole = read_documents([("r.pdf", data)])
    assert rows(whole) == [("r.pdf", "1", "pages 1-3", "First page text\n\nThird page\nsecond line")]


def test_pdf_turns_carry_page_and_line():
    data = pdf_bytes([["Interviewer: Hello", "and welcome"], ["Ann: Thanks"]])
    table = read_documents([("p.pdf", data)], split="turn")
    assert [(r[2], r[3], r[4]) for r in rows(table)] == [
        ("page 1, line 1", "Interviewer", "Hello\nand welcome"),
        ("page 2, line 1", "Ann", "Thanks"),
    ]


def test_html_keeps_visible_text_by_paragraph_without_scripts_or_styles():
    html = b"""<html><head><title>T</title><style>p{color:red}</style></head><body>
    <script>alert('x')</script><h1>Report</h1><p>First &amp; foremost.</p><div>Second<br>line</div></body></html>"""
    table = read_documents([("page.html", html)], split="paragraph")
    assert table.df["text"].tolist() == ["Report", "First & foremost.", "Second\nline"]
    assert table.df["position"].tolist() == ["paragraph 1", "paragraph 2", "paragraph 3"]


def test_markdown_and_cp1252_text_use_the_project_decoder():
    table = read_documents([("a.md", "# Café\n\nSecond paragraph".encode("cp1252"))], split="paragraph")
    assert table.df["text"].tolist() == ["# Café", "Second paragraph"]
    assert table.df["position"].tolist() == ["paragraph 1 (line 1)", "paragraph 2 (line 3)"]
    assert any("Windows-1252" in note for note in table.notes)


def test_each_bad_file_gets_one_message_and_the_good_ones_load():
    files = [
        ("good.txt", b"Hello world."),
        ("scan.pdf", pdf_bytes([[], []])),
        ("locked.pdf", pdf_bytes([["secret"]], password="pw")),
        ("broken.pdf", b"%PDF-1.7\nthis is not a pdf at all"),
        ("broken.docx", b"PK\x03\x04 not really a zip"),
        ("old.doc", b"\xd0\xcf\x11\xe0 whatever"),
        ("data.xlsx", b"PK"),
        ("empty.txt", b""),
    ]
    table = read_documents(files)
    assert table.df["document"].tolist() == ["good.txt"]
    messages = {e.name: e.message for e in table.errors}
    assert list(messages) == [name for name, _ in files[1:]]
    assert "no text layer" in messages["scan.pdf"] and "OCR" in messages["scan.pdf"]
    assert "password-protected" in messages["locked.pdf"]
    assert "not a readable PDF" in messages["broken.pdf"]
    assert "not a readable Word document" in messages["broken.docx"]
    assert "save it as .docx" in messages["old.doc"]
    assert ".xlsx files are not read as documents" in messages["data.xlsx"]
    assert "is empty" in messages["empty.txt"]


def test_a_zip_is_read_member_by_member_with_its_guards():
    archive = zip_bytes(
        {
            "interviews/a.docx": docx_bytes(["Alpha."]),
            "interviews/b.txt": b"Beta.",
            "interviews/bad.pdf": b"%PDF-1.4 broken",
            "inner.zip": zip_bytes({"c.txt": b"Gamma."}),
            "../escape.txt": b"Out.",
            "__MACOSX/._a.docx": b"junk",
            ".DS_Store": b"junk",
        }
    )
    table = read_documents([("set.zip", archive), ("loose.txt", b"Delta.")])
    assert rows(table) == [
        ("set.zip/interviews/a.docx", "1", "paragraph 1", "Alpha."),
        ("set.zip/interviews/b.txt", "1", "paragraph 1", "Beta."),
        ("loose.txt", "1", "paragraph 1", "Delta."),
    ]
    messages = {e.name: e.message for e in table.errors}
    assert set(messages) == {"set.zip/interviews/bad.pdf", "set.zip/inner.zip", "set.zip/../escape.txt"}
    assert "nested archives are not opened" in messages["set.zip/inner.zip"]
    assert "outside the archive" in messages["set.zip/../escape.txt"]
    assert "not a readable ZIP" in read_documents([("x.zip", b"PK\x03\x04nope")]).errors[0].message


def test_a_very_long_paragraph_is_cut_at_sentences_and_the_notes_count_it():
    sentence = "This sentence is exactly fifty characters long ok. "
    long_text = (sentence * 200).strip()  # 10,000 characters, one paragraph
    table = read_documents([("long.txt", long_text.encode()), ("short.txt", b"Short.")], max_chars=4000)
    texts = table.df["text"].tolist()
    assert len(texts) == 4
    assert all(len(t) <= 4000 for t in texts) and all(t.endswith("ok.") for t in texts[:3])
    assert " ".join(texts[:3]) == long_text
    assert table.df["segment"].tolist() == ["1", "2", "3", "1"]
    assert table.notes == [
        "1 segment longer than 4,000 characters was split into 3 rows at paragraph, then sentence boundaries."
    ]


def test_split_long_prefers_paragraphs_then_sentences_then_words():
    assert split_long("a" * 50 + "\n\n" + "b" * 50, 120) == ["a" * 50 + "\n\n" + "b" * 50]
    assert split_long("a" * 80 + "\n\n" + "b" * 80, 100) == ["a" * 80, "b" * 80]
    assert split_long("One two. Three four.", 10) == ["One two.", "Three", "four."]
    assert split_long("x" * 250, 100) == ["x" * 100, "x" * 100, "x" * 50]


def test_page_split_on_non_pdf_and_turn_split_without_turns_fall_back_with_a_note():
    table = read_documents([("a.txt", b"One.\n\nTwo.")], split="page")
    assert table.df["text"].tolist() == ["One.\n\nTwo."]
    assert table.notes == ["Only PDFs have pages; 'a.txt' kept as one row per document."]
    table = read_documents([("a.txt", b"One.\n\nTwo.")], split="turn")
    assert table.df["text"].tolist() == ["One.", "Two."]
    assert "No speaker turns" in table.notes[0]


def test_bad_options_are_refused():
    with pytest.raises(ValueError):
        read_documents([], split="sentence")
    with pytest.raises(ValueError):
        read_documents([], max_chars=10)
    assert read_documents([]).df.empty


def test_a_pdf_locked_only_against_editing_reads():
    writer = PdfWriter(clone_from=io.BytesIO(pdf_bytes([["Open text"]])))
    writer.encrypt("", owner_password="owner", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    table = read_documents([("o.pdf", out.getvalue())])
    assert rows(table) == [("o.pdf", "1", "page 1", "Open text")] and table.errors == []


def test_header_lines_that_look_like_turns_are_not_speakers():
    """ "Date: 3 May 2021" opens a line as "Ann:" does; only labels that recur, name a role, or come
    once the conversation has begun are speakers, and header keys never are."""
    text = (
        b"Date: 3 May 2021\nLocation: Zoom\nProject Title: Care at home\n\n"
        b"Ann: I started in 2019.\nBob: Why then?\nAnn: The pay.\n\n"
        b"Date: 4 May 2021\nBob: And now?\nCarol: I joined late.\nNote: laughter\n"
    )
    table = read_documents([("t.txt", text)], split="turn")
    got = [(r[2], r[3], r[4]) for r in rows(table)]
    assert got[0][0] == "line 1" and pd.isna(got[0][1])
    assert got[0][2] == "Date: 3 May 2021\nLocation: Zoom\nProject Title: Care at home"
    assert got[1:] == [
        ("line 5", "Ann", "I started in 2019."),
        ("line 6", "Bob", "Why then?"),
        ("line 7", "Ann", "The pay.\nDate: 4 May 2021"),  # blocks join by line
        ("line 10", "Bob", "And now?"),
        ("line 11", "Carol", "I joined late.\nNote: laughter"),
    ]
    assert table.notes == []


def test_a_header_alone_is_not_a_transcript():
    table = read_documents([("h.txt", b"Date: 3 May 2021\nLocation: Zoom\n\nWe met twice.")], split="turn")
    assert table.df["text"].tolist() == ["Date: 3 May 2021\nLocation: Zoom", "We met twice."]
    assert table.df["speaker"].isna().all()
    assert "No speaker turns" in table.notes[0]
