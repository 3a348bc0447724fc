"""handai_io: every row a messy file holds arrives, as text, and nothing else; exports are safe.

Fixtures are built here, in code. The real files in the folder named by HANDAI_SHARED_DATA
(see its SOURCES.md) are checked against their known row and column counts.
"""

import hashlib
import io
import json
import os
import struct
import time
import warnings
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import python_calamine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import handai_io
from handai_io import FileReadError, ReadOptions, export_bytes, read_table

# How every detected header note ends: where the user changes the header.
CHANGE = " — change it under Reading options → Skip lines above the header."


def values(df: pd.DataFrame) -> list[list[str | None]]:
    """Cells as plain Python values, NaN as None, for exact comparisons."""
    return df.astype(object).where(df.notna(), None).values.tolist()


def xlsx_bytes(sheets: dict[str, list[list[object]]]) -> bytes:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def assert_text_frame(df: pd.DataFrame) -> None:
    assert all(dtype == "str" for dtype in df.dtypes)
    names = list(df.columns)
    assert len(set(names)) == len(names)
    assert all(isinstance(name, str) and name.strip() == name and name for name in names)


# ---------------------------------------------------------------------------------------------
# Delimited text


def test_bom_semicolon_and_preamble_are_detected():
    data = "\ufeffReport\nGenerated 2024-05-01\n\nid;name;value\n001;Zoë;1,5\n002;Åsa;2,25\n"
    table = read_table(data.encode("utf-8"), "export.csv")
    assert (table.encoding, table.delimiter, table.skipped_rows, table.header_row) == ("utf-8-sig", ";", 3, 4)
    assert "Header taken from line 4; 3 lines above it skipped (a title block and a blank line)" + CHANGE in table.notes
    assert list(table.df.columns) == ["id", "name", "value"]
    assert values(table.df) == [["001", "Zoë", "1,5"], ["002", "Åsa", "2,25"]]
    assert_text_frame(table.df)


def test_comment_lines_above_the_header_are_skipped_unless_the_user_says_otherwise():
    data = b"# exported by tool\n# 2 rows\nid,text\n1,a\n2,b\n"
    assert read_table(data, "c.csv").df.to_dict("list") == {"id": ["1", "2"], "text": ["a", "b"]}
    kept = read_table(data, "c.csv", ReadOptions(skip_rows=0))
    assert kept.skipped_rows == 0
    assert len(kept.df) == 4  # nothing skipped: the comment is the header, every other line a row


def test_padded_title_row_is_a_title_and_skip_rows_brings_it_back():
    data = b"Sales report,,\nid,name,qty\n1,a,2\n"
    table = read_table(data, "padded.csv")
    assert (table.skipped_rows, table.header_row) == (1, 2)
    assert values(table.df) == [["1", "a", "2"]]
    assert "Header taken from line 2; 1 line above it skipped (a title)" + CHANGE in table.notes
    kept = read_table(data, "padded.csv", ReadOptions(skip_rows=0))
    assert values(kept.df) == [["id", "name", "qty"], ["1", "a", "2"]]
    assert "Header taken from line 1, as set in the reading options." in kept.notes


def test_cp1252_curly_quotes_are_decoded_not_mangled():
    data = "id,quote\n1,\u201cHello\u201d \u2013 it\u2019s\xa0here\n".encode("cp1252")
    table = read_table(data, "quotes.csv")
    assert table.encoding == "cp1252"
    assert table.df.loc[0, "quote"] == "\u201cHello\u201d \u2013 it\u2019s\xa0here"
    assert any("cp1252" in note for note in table.notes)


def test_encoding_override_is_used_and_a_wrong_one_explains_itself():
    data = "id,quote\n1,caf\u00e9 \u201cx\u201d\n".encode("cp1252")
    assert read_table(data, "q.csv", ReadOptions(encoding="latin-1")).encoding == "latin-1"
    with pytest.raises(FileReadError, match="not valid utf-8"):
        read_table(data, "q.csv", ReadOptions(encoding="utf-8"))
    with pytest.raises(FileReadError, match="not a known encoding"):
        read_table(data, "q.csv", ReadOptions(encoding="klingon"))


def test_utf16_with_bom_is_read():
    table = read_table("a\tb\r\n1\tä\r\n".encode("utf-16"), "wide.txt")
    assert (table.encoding, table.delimiter) == ("utf-16", "\t")
    assert values(table.df) == [["1", "ä"]]


def test_line_breaks_inside_quoted_cells_survive_including_bare_cr():
    data = b'id,text\r\n1,"a\rb"\r\n2,"c\nd"\r\n3,"e\r\nf, ""g"""\r\n'
    table = read_table(data, "breaks.csv")
    assert values(table.df) == [["1", "a\rb"], ["2", "c\nd"], ["3", 'e\r\nf, "g"']]


def test_duplicate_blank_and_unnamed_headers_are_renamed_with_notes():
    table = read_table(b"name,name,,Unnamed: 3, spaced ,x_2,x,x\n1,2,3,4,5,6,7,8\n", "h.csv")
    assert list(table.df.columns) == ["name", "name_2", "column_3", "column_4", "spaced", "x_2", "x", "x_3"]
    assert table.notes[1:] == [
        "Named blank column 3 'column_3'",
        "Renamed 'Unnamed: 3' to 'column_4'",
        "Renamed 2 duplicate column names: 'name' to 'name_2' and 'x' to 'x_3'",
    ]


def test_trailing_delimiters_and_empty_rows_are_dropped_but_content_never_is():
    table = read_table(b"a,b,,\n1,2,,\n,,,\n\n3,4,,\n", "t.csv")
    assert values(table.df) == [["1", "2"], ["3", "4"]]
    assert "Dropped 2 empty columns without a name" in table.notes
    assert "Dropped 2 empty rows" in table.notes
    ragged = read_table(b"a,b\n1,2,extra\n3\n", "r.csv")
    assert list(ragged.df.columns) == ["a", "b", "column_3"]
    assert values(ragged.df) == [["1", "2", "extra"], ["3", None, None]]


def test_cells_stay_text_identifiers_keep_zeros_and_decimals():
    table = read_table(b"id,zip,arxiv,amount,flag\n007,01234,704.0010,-1,\n", "ids.csv")
    assert values(table.df) == [["007", "01234", "704.0010", "-1", None]]
    assert_text_frame(table.df)


@pytest.mark.parametrize(
    ("data", "name", "delimiter"),
    [
        (b"a\tb\n1\t2, with a comma\n", "t.tsv", "\t"),
        (b"a\tb\n1\t2\n", "t.txt", "\t"),
        (b"a|b|c\n1|2|3\n", "p.csv", "|"),
        (b'id,text\n1,"long; text; with; semicolons"\n2,plain\n', "c.csv", ","),
        (b"just one column\nvalue\n", "one.csv", ","),
    ],
)
def test_delimiter_is_sniffed_from_the_first_lines(data, name, delimiter):
    assert read_table(data, name).delimiter == delimiter


def test_delimiter_override_wins():
    table = read_table(b"a;b\n1;2\n", "x.csv", ReadOptions(delimiter=","))
    assert (table.delimiter, list(table.df.columns)) == (",", ["a;b"])


def test_a_path_works_like_bytes(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"a,b\n1,2\n")
    for data in (path, str(path)):
        table = read_table(data)
        assert (table.source_name, values(table.df)) == ("data.csv", [["1", "2"]])
    with pytest.raises(FileReadError, match="No file found"):
        read_table(tmp_path / "missing.csv")


def test_100k_rows_read_quickly():
    lines = ["id,text,label"] + [f'{i:06d},"Review {i}, with ""quotes""\nand a newline",x' for i in range(100_000)]
    started = time.perf_counter()
    table = read_table("\n".join(lines).encode(), "big.csv")
    assert time.perf_counter() - started < 10
    assert table.df.shape == (100_000, 3)
    assert table.df.iloc[-1].tolist() == ["099999", 'Review 99999, with "quotes"\nand a newline', "x"]


# ---------------------------------------------------------------------------------------------
# Errors a user can act on


@pytest.mark.parametrize("data", [b"", b"  \r\n\n"])
def test_empty_file(data):
    with pytest.raises(FileReadError, match="is empty"):
        read_table(data, "empty.csv")


def test_header_only():
    with pytest.raises(FileReadError, match=r"header row \(a, b, c\) but no data rows"):
        read_table(b"a,b,c\n", "h.csv")


def test_binary_junk_named_csv():
    with pytest.raises(FileReadError, match="does not look like a text table"):
        read_table(bytes(range(256)) * 8, "junk.csv")
    with pytest.raises(FileReadError, match=r"rename it to \.xlsx"):
        read_table(xlsx_bytes({"s": [["a"], [1]]}), "really_a_workbook.csv")


def test_truncated_xlsx():
    data = xlsx_bytes({"s": [["a", "b"], *[[i, f"row {i}"] for i in range(200)]]})
    with pytest.raises(FileReadError, match="could not be opened as an Excel workbook.*re-save it"):
        read_table(data[: len(data) // 2], "cut.xlsx")


def test_text_named_xlsx_gets_a_hint():
    with pytest.raises(FileReadError, match=r"rename it to \.csv"):
        read_table(b"a,b\n1,2\n", "wrong.xlsx")


def test_unsupported_extension_lists_the_supported_ones():
    with pytest.raises(FileReadError, match=r"\.docx are not supported.*\.csv.*\.parquet"):
        read_table(b"whatever", "letter.docx")


def test_file_over_the_size_limit(monkeypatch, tmp_path):
    monkeypatch.setattr(handai_io.sources, "MAX_UPLOAD_BYTES", 10)
    with pytest.raises(FileReadError, match="the limit is"):
        read_table(b"a,b\n1,2\n3,4\n", "big.csv")
    path = tmp_path / "big.csv"
    path.write_bytes(b"a,b\n1,2\n3,4\n")
    with pytest.raises(FileReadError, match="the limit is"):
        read_table(path)


def test_unclosed_quote_is_reported_not_swallowed():
    with pytest.raises(FileReadError, match="never closed.*after line 2"):
        read_table(b'a,b\n1,2\n3,"oops\n4,5\n', "q.csv")


def test_impossible_skip_rows():
    with pytest.raises(FileReadError, match="Cannot skip 5 lines"):
        read_table(b"a\n1\n", "s.csv", ReadOptions(skip_rows=5))


# ---------------------------------------------------------------------------------------------
# JSON, JSON Lines, Parquet


def test_json_array_of_records_keeps_values_as_written():
    data = (
        '[{"id": 1, "text": "Grüße", "score": 0.50, "ok": true, "tags": ["a", "b"],'
        ' "meta": {"k": null, "x": 1.5}, "n": NaN, "big": Infinity},'
        ' {"id": 2, "extra": "x"}]'
    )
    table = read_table(data.encode(), "records.json")
    assert list(table.df.columns) == ["id", "text", "score", "ok", "tags", "meta", "n", "big", "extra"]
    assert values(table.df) == [
        ["1", "Grüße", "0.50", "true", '["a", "b"]', '{"k": null, "x": 1.5}', None, "Infinity", None],
        ["2", None, None, None, None, None, None, None, "x"],
    ]
    assert_text_frame(table.df)


def test_json_records_under_a_key_are_found():
    data = b'{"meta": {"version": 1}, "empty": [], "data": [{"a": 1}, {"a": 2}]}'
    table = read_table(data, "wrapped.json")
    assert values(table.df) == [["1"], ["2"]]
    assert "Read the records under the key 'data'" in table.notes


def test_json_key_option_and_its_errors():
    data = b'{"x": [{"a": 1}], "y": [{"b": 1}, {"b": 2}], "z": 3}'
    assert values(read_table(data, "k.json", ReadOptions(json_key="y")).df) == [["1"], ["2"]]
    with pytest.raises(FileReadError, match="no key 'w'.*x, y, z"):
        read_table(data, "k.json", ReadOptions(json_key="w"))
    with pytest.raises(FileReadError, match="does not hold a list of objects"):
        read_table(data, "k.json", ReadOptions(json_key="z"))


def test_single_json_object_is_one_row():
    table = read_table(b'{"name": "x", "n": 3}', "one.json")
    assert values(table.df) == [["x", "3"]]


@pytest.mark.parametrize("data", [b"[1, 2, 3]", b'"text"', b"[[1, 2], [3, 4]]"])
def test_json_that_is_not_records(data):
    with pytest.raises(FileReadError, match="not a table"):
        read_table(data, "bad.json")


def test_invalid_json_and_empty_array():
    with pytest.raises(FileReadError, match="not valid JSON.*line 1"):
        read_table(b'[{"a": 1},', "broken.json")
    with pytest.raises(FileReadError, match="no records"):
        read_table(b"[]", "none.json")


def test_jsonl_skips_blank_lines_and_names_a_bad_line():
    assert values(read_table(b'{"a": 1}\n\n{"a": "\\u00e9"}\n', "ok.jsonl").df) == [["1"], ["é"]]
    with pytest.raises(FileReadError, match="Line 4 of 'bad.ndjson' is not valid JSON"):
        read_table(b'{"a": 1}\n\n{"a": 2}\n{bad\n', "bad.ndjson")
    with pytest.raises(FileReadError, match="Line 2 .* not a JSON object"):
        read_table(b'{"a": 1}\n[1]\n', "list.jsonl")


def test_json_lines_named_json_are_read_with_a_note():
    table = read_table(b'{"a": 1}\n{"a": 2}\n', "lines.json")
    assert values(table.df) == [["1"], ["2"]]
    assert any("JSON Lines" in note for note in table.notes)


def test_parquet_is_read_as_text():
    table = pa.table(
        {
            "id": ["001", "002"],
            "n": [1, None],
            "x": [0.25, 2.0],
            "ok": [True, False],
            "when": pa.array([pd.Timestamp("2024-01-02 03:04:05"), None], pa.timestamp("s")),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    loaded = read_table(buffer.getvalue(), "t.parquet")
    assert values(loaded.df) == [
        ["001", "1", "0.25", "TRUE", "2024-01-02T03:04:05"],
        ["002", None, "2", "FALSE", None],
    ]
    with pytest.raises(FileReadError, match="Parquet"):
        read_table(buffer.getvalue()[:50], "cut.parquet")


# ---------------------------------------------------------------------------------------------
# Workbooks


@pytest.fixture
def two_sheet_workbook() -> bytes:
    return xlsx_bytes(
        {
            "people": [
                ["id", "name", "born", "score", "member"],
                ["007", "Zoë", pd.Timestamp("1990-05-17").date(), 3.0, True],
                ["008", "Ærø", pd.Timestamp("2001-01-02").date(), 0.1 + 0.2, False],
            ],
            "notes": [["Quarterly report"], [], ["topic", "text"], ["a", "multi\nline"]],
            "blank": [],
        }
    )


def test_xlsx_sheets_are_listed_and_the_first_is_read(two_sheet_workbook):
    assert handai_io.list_sheets(two_sheet_workbook, "book.xlsx") == ["people", "notes", "blank"]
    table = read_table(two_sheet_workbook, "book.xlsx")
    assert (table.sheets, table.sheet, table.encoding) == (["people", "notes", "blank"], "people", None)
    assert values(table.df) == [
        ["007", "Zoë", "1990-05-17", "3", "TRUE"],
        ["008", "Ærø", "2001-01-02", "0.3", "FALSE"],
    ]
    assert_text_frame(table.df)


def test_xlsx_sheet_picker_and_title_rows(two_sheet_workbook):
    table = read_table(two_sheet_workbook, "book.xlsx", ReadOptions(sheet="notes"))
    assert (table.sheet, table.skipped_rows) == ("notes", 2)
    assert values(table.df) == [["a", "multi\nline"]]
    with pytest.raises(FileReadError, match="no sheet named 'nope'.*people, notes, blank"):
        read_table(two_sheet_workbook, "book.xlsx", ReadOptions(sheet="nope"))
    with pytest.raises(FileReadError, match="'blank'.* is empty. Pick another sheet: people, notes"):
        read_table(two_sheet_workbook, "book.xlsx", ReadOptions(sheet="blank"))


def test_list_sheets_is_empty_for_text_formats():
    assert handai_io.list_sheets(b"a,b\n1,2\n", "x.csv") == []


# ---------------------------------------------------------------------------------------------
# Export


FORMULAS = ["=SUM(A1:A2)", "+1+1", "@cmd", "\tx", "\r=1", "-", "-2+3"]
SAFE = ["-3.5", "+4", "-1e5", "plain", "a=b", None]


def test_neutralize_formulas_prefixes_only_dangerous_text():
    df = pd.DataFrame({"v": FORMULAS + SAFE, "n": range(len(FORMULAS) + len(SAFE))})
    out = handai_io.neutralize_formulas(df)
    assert out["v"].tolist()[: len(FORMULAS)] == ["'" + value for value in FORMULAS]
    assert out["v"].tolist()[len(FORMULAS) : -1] == SAFE[:-1]
    assert out["n"].tolist() == df["n"].tolist()
    assert df["v"].tolist()[0] == "=SUM(A1:A2)"  # the input is not changed


def test_export_csv_neutralises_formulas():
    df = pd.DataFrame({"id": [str(i) for i in range(len(FORMULAS) + 1)], "v": [*FORMULAS, "-3.5"]})
    back = read_table(export_bytes(df, "csv"), "out.csv").df
    assert back["v"].tolist() == ["'" + value for value in FORMULAS] + ["-3.5"]


def test_export_xlsx_keeps_formula_like_text_exactly_as_text():
    df = pd.DataFrame({"v": [*FORMULAS, "-3.5"]})
    sheet = openpyxl.load_workbook(io.BytesIO(export_bytes(df, "xlsx"))).active
    cells = [row[0] for row in sheet.iter_rows(min_row=2)]
    assert all(cell.data_type == "s" for cell in cells)  # text, never a formula
    assert [cell.value for cell in cells] == [*FORMULAS, "-3.5"]  # exactly, carriage returns too


ROUND_TRIP = pd.DataFrame(
    {
        "id": ["001", "002", "003"],
        "text": ["Grüße\nzweite Zeile", '日本語, “quotes” and "double"', None],
        "emoji": ["🙂", "ä\tb", "ok"],
    },
    dtype="str",
)


@pytest.mark.parametrize("fmt", list(handai_io.EXPORT_FORMATS))
def test_round_trip_keeps_non_ascii_and_newlines(fmt):
    back = read_table(export_bytes(ROUND_TRIP, fmt), f"out.{fmt}").df
    assert values(back) == values(ROUND_TRIP)
    assert list(back.columns) == list(ROUND_TRIP.columns)


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_round_trip_keeps_carriage_returns(fmt):
    df = pd.DataFrame({"a": ["x\r\ny", "p\rq"]}, dtype="str")
    assert values(read_table(export_bytes(df, fmt), f"o.{fmt}").df) == values(df)


def test_xlsx_keeps_carriage_returns():
    """openpyxl writes through lxml (pinned: python-docx needs it), which escapes a CR, so a cell
    with CR or CRLF reads back exactly; the stdlib writer turned them into LF."""
    df = pd.DataFrame({"a": ["x\r\ny", "p\rq"]}, dtype="str")
    assert values(read_table(export_bytes(df, "xlsx"), "o.xlsx").df) == [["x\r\ny"], ["p\rq"]]


def test_export_formats_details():
    assert export_bytes(ROUND_TRIP, "csv").startswith(b"\xef\xbb\xbfid,text,emoji\r\n")
    records = json.loads(export_bytes(ROUND_TRIP, "json"))
    assert records[2] == {"id": "003", "text": None, "emoji": "ok"}
    assert "Grüße".encode() in export_bytes(ROUND_TRIP, "json")
    lines = export_bytes(ROUND_TRIP, "jsonl").decode().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["001", "002", "003"]
    mixed = pd.DataFrame({"n": [1, 2], "f": [0.5, float("nan")]})
    assert json.loads(export_bytes(mixed, "json")) == [{"n": 1, "f": 0.5}, {"n": 2, "f": None}]
    with pytest.raises(ValueError, match="Unknown export format 'pdf'"):
        export_bytes(ROUND_TRIP, "pdf")
    assert set(handai_io.EXPORT_FORMATS) == {"csv", "xlsx", "json", "jsonl", "parquet"}


def test_xlsx_export_drops_characters_xml_cannot_hold():
    df = pd.DataFrame({"a": ["bell\x07 and nul\x00"]})
    assert values(read_table(export_bytes(df, "xlsx"), "o.xlsx").df) == [["bell and nul"]]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".json", ".jsonl"])
def test_write_table_picks_the_format_from_the_suffix(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    handai_io.write_table(ROUND_TRIP, path)
    assert values(read_table(path).df) == values(ROUND_TRIP)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


def test_write_table_rejects_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"unknown file type '\.pdf'"):
        handai_io.write_table(ROUND_TRIP, tmp_path / "out.pdf")


def test_sample_dataset_and_content_hash():
    sample = handai_io.sample_dataset()
    assert sample.shape == (12, 3)
    assert list(sample.columns) == ["id", "review_text", "product"]
    assert sample["review_text"].map(lambda text: not text.isascii()).sum() >= 3
    assert_text_frame(sample)
    assert handai_io.content_hash(b"abc") == hashlib.sha256(b"abc").hexdigest()


# ---------------------------------------------------------------------------------------------
# Properties


FAST = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
MAGIC_PREFIXES = [
    b"",
    b"PK\x03\x04",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
    b"PAR1",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
]


@FAST
@given(
    prefix=st.sampled_from(MAGIC_PREFIXES),
    body=st.binary(max_size=600),
    extension=st.sampled_from(handai_io.SUPPORTED_EXTENSIONS),
)
def test_random_bytes_only_ever_raise_file_read_error(prefix, body, extension):
    try:
        table = read_table(prefix + body, f"random.{extension}")
    except FileReadError as e:
        assert str(e)
    else:
        assert_text_frame(table.df)
        assert len(table.df) > 0


CSV_TEXT = st.text(alphabet=st.sampled_from(list('ab1 ,;\t|"\n\r#é=-')), max_size=200)


@FAST
@given(text=CSV_TEXT, extension=st.sampled_from(["csv", "tsv", "txt"]))
def test_random_csv_text_only_ever_raises_file_read_error(text, extension):
    try:
        table = read_table(text.encode(), f"random.{extension}")
    except FileReadError as e:
        assert str(e)
    else:
        assert_text_frame(table.df)


SAFE_CELL = st.text(
    alphabet=st.characters(exclude_categories=["Cs", "Cc"], include_characters='\n\r\t,";'),
    min_size=1,
    max_size=30,
).filter(lambda text: not text.startswith(("=", "+", "-", "@", "\t", "\r")))


@st.composite
def text_frames(draw) -> pd.DataFrame:
    width = draw(st.integers(min_value=2, max_value=4))
    rows = draw(st.lists(st.lists(st.none() | SAFE_CELL, min_size=width, max_size=width), min_size=1, max_size=15))
    frame = pd.DataFrame(rows, columns=[f"c{i}" for i in range(width)], dtype="str")
    return frame[frame.notna().any(axis=1)].reset_index(drop=True)  # fully empty rows are dropped


@FAST
@given(frame=text_frames())
def test_csv_export_round_trips_cell_values(frame):
    if frame.empty:
        return
    back = read_table(export_bytes(frame, "csv"), "out.csv").df
    assert list(back.columns) == list(frame.columns)
    assert values(back) == values(frame)


# ---------------------------------------------------------------------------------------------
# Real files (folder named by HANDAI_SHARED_DATA; see its SOURCES.md)


SHARED_DATA = os.environ.get("HANDAI_SHARED_DATA")

# file -> (sheet, rows, columns), the counts of SOURCES.md's "correct read".
REAL_FILES = {
    "fte_riddler_castle_solutions.csv": (None, 1_349, 11),
    "fte_mayweather_mcgregor_tweets.csv": (None, 10_235, 7),
    "btw21_kerg2_bundeswahlleiter.csv": (None, 18_761, 18),
    "fte_potential_candidates_events_cp1252.csv": (None, 74, 8),
    # A SurveyMonkey export: its second header row ("Respondent Name", "Response", ...) goes into the
    # column names, so one row fewer than SOURCES.md's pd.read_csv(sep="\t"), which reads it as data.
    "fte_poll_of_pollsters_5.tsv": (None, 26, 60),
    "fte_biden_score_2023.xlsx": ("votes", 36_727, 7),
    "titanic3.xls": (None, 1_309, 14),
    "turku_paraphrase_opus_pb_dev_fi.json": (None, 4_894, 5),
    "gsm8k_test.jsonl": (None, 1_319, 2),
    "arxiv_metadata_abstracts.csv": (None, 1_558, 14),
    "abcnews_headlines.csv": (None, 40_665, 2),
}


@pytest.fixture(scope="module")
def shared_data() -> Path:
    if not SHARED_DATA:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("HANDAI_SHARED_DATA is not set; CI must run the real-file tests.")
        pytest.skip("HANDAI_SHARED_DATA is not set")
    return Path(SHARED_DATA)


@pytest.fixture(scope="module")
def read_shared(shared_data):
    cache: dict[tuple[str, str | None], handai_io.LoadedTable] = {}

    def read(name: str, sheet: str | None = None) -> handai_io.LoadedTable:
        if (name, sheet) not in cache:
            cache[name, sheet] = read_table(shared_data / name, options=ReadOptions(sheet=sheet))
        return cache[name, sheet]

    return read


def test_every_shared_file_has_expected_counts(shared_data):
    on_disk = {path.name for path in shared_data.iterdir() if path.suffix != ".md"}
    assert on_disk == set(REAL_FILES)


@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_shared_file_reads_every_row(read_shared, name):
    sheet, rows, columns = REAL_FILES[name]
    table = read_shared(name, sheet)
    assert table.df.shape == (rows, columns)
    assert_text_frame(table.df)


def test_shared_kerg2_preamble_and_decimal_commas(read_shared):
    table = read_shared("btw21_kerg2_bundeswahlleiter.csv")
    assert (table.encoding, table.delimiter, table.skipped_rows, table.header_row) == ("utf-8-sig", ";", 9, 10)
    assert "Header taken from line 10; 9 lines above it skipped (a title block and blank lines)" + CHANGE in table.notes
    assert table.df.columns[0] == "Wahlart"
    assert table.df.loc[1, "Prozent"] == "76,583339"  # decimal commas stay text


def test_shared_cp1252_has_real_curly_quotes(read_shared):
    table = read_shared("fte_potential_candidates_events_cp1252.csv")
    assert table.encoding == "cp1252"
    assert table.df["Snippet"].str.contains("[’“”]").any()


def test_shared_tweets_keep_bare_carriage_returns(read_shared):
    text = read_shared("fte_mayweather_mcgregor_tweets.csv").df["text"]
    assert text.str.contains("\r", regex=False).sum() == 5


def test_shared_poll_is_a_surveymonkey_export_whose_sub_header_is_not_data(read_shared):
    table = read_shared("fte_poll_of_pollsters_5.tsv")
    assert table.survey == "SurveyMonkey"
    assert table.df.columns[0] == "Please enter your information and your polling… - Respondent Name"
    assert table.df.iloc[0, 0] == "John Anzalone"
    assert "Respondent Name" not in table.df.iloc[:, 0].tolist()
    # The full question text (HTML links reduced to their words) describes each column of the question.
    question = table.descriptions[table.df.columns[2]]
    assert question.startswith("Since we last did a poll of pollsters -- after many polls missed")
    assert question.endswith("Is the U.S. polling industry in better or worse shape than a year ago?")
    assert table.descriptions[table.df.columns[3]] == question + " - Please explain your answer:"


def test_shared_arxiv_ids_stay_text(read_shared):
    ids = read_shared("arxiv_metadata_abstracts.csv").df["id"]
    # The file itself already holds "704.001" (mangled upstream, see SOURCES.md): no "704.0010".
    assert ids.iloc[9:11].tolist() == ["704.001", "704.0011"]
    assert ids.dtype == "str"


def test_shared_biden_workbook_sheets(read_shared):
    table = read_shared("fte_biden_score_2023.xlsx", "votes")
    assert table.sheets == [
        "biden_agreement",
        "biden_agreement_senate_no_noms",
        "bills",
        "nominations",
        "votes",
    ]
    assert read_shared("fte_biden_score_2023.xlsx").df.shape == (531, 8)


# ---------------------------------------------------------------------------------------------
# Hostile input, case by case (tests/test_hostile_files.py holds the end-to-end cases)


def test_utf8_lines_stay_utf8_and_cp1252_lines_are_named():
    data = "id,t\n1,café\n".encode() + "2,naïve\n".encode("cp1252") + "3,Grüße\n".encode() + b"4,\x93q\x94\n"
    table = read_table(data, "mixed.csv")
    assert values(table.df) == [["1", "café"], ["2", "naïve"], ["3", "Grüße"], ["4", "“q”"]]
    assert table.encoding == "utf-8"
    assert any("Lines 3 and 5 are not valid UTF-8" in note and "cp1252" in note for note in table.notes)


def test_a_cp1252_file_whose_bytes_happen_to_form_utf8_stays_cp1252():
    # "ß“" is 0xDF 0x93 in cp1252: a valid UTF-8 sequence by accident, among hundreds of cp1252 lines.
    text = "id,t\nx,Das ist groß“\n" + "".join(f"{i},Café naïve\n" for i in range(200))
    table = read_table(text.encode("cp1252"), "german.csv")
    assert table.encoding == "cp1252"
    assert table.df.loc[0, "t"] == "Das ist groß“"


def test_json_in_a_delimited_file_is_read_as_json_with_a_note():
    records = b'[{"id": "001", "t": "a, b"}, {"id": "002", "t": "c"}]'
    table = read_table(records, "records.csv")
    assert values(table.df) == [["001", "a, b"], ["002", "c"]]
    assert (table.delimiter, table.notes[0]) == (None, "This .csv file holds JSON; read it as JSON")
    lines = read_table(b'{"a": 1}\n{"a": 2}\n', "lines.txt")
    assert values(lines.df) == [["1"], ["2"]]
    assert "This .txt file holds JSON; read it as JSON" in lines.notes
    assert read_table(b"[id],[name]\n1,2\n", "brackets.csv").delimiter == ","  # not JSON: still CSV
    chosen = read_table(b'{"a": 1}\n{"a": 2}\n', "lines.csv", ReadOptions(delimiter=";"))  # the user's choice wins
    assert (chosen.delimiter, list(chosen.df.columns)) == (";", ['{"a": 1}'])
    with pytest.raises(FileReadError, match="JSON but not a table"):
        read_table(b"[1, 2, 3]", "numbers.csv")


def test_excel_sep_line_names_the_delimiter_and_is_not_data():
    table = read_table(b"sep=|\r\na|b\r\n1|x;y\r\n", "excel.csv")
    assert (table.delimiter, list(table.df.columns), values(table.df)) == ("|", ["a", "b"], [["1", "x;y"]])
    assert "The first line, 'sep=|', names the delimiter (pipe); used it and skipped the line" in table.notes
    with pytest.raises(FileReadError, match=r"starts on line 3 \(after line 2\)"):  # lines of the file, sep= included
        read_table(b'sep=;\na;b\n1;"open\n', "excel.csv")


def test_unclosed_quote_in_the_first_record_names_line_1():
    with pytest.raises(FileReadError, match='the " in the record that starts on line 1 runs'):
        read_table(b'"id,text\n1,a\n', "q.csv")


def test_a_delimiter_must_split_the_header():
    # Semicolons inside one-column free text are punctuation...
    reviews = read_table(b"review\nGreat; would buy again\nBroke; no refund\nFine\n", "reviews.csv")
    assert (list(reviews.df.columns), len(reviews.df), reviews.skipped_rows) == (["review"], 3, 0)
    # ...but a title above a table that is semicolon-separated throughout is a preamble.
    titled = read_table(b"Quarterly export\nid;name\n1;a\n2;b\n", "titled.csv")
    assert (titled.delimiter, titled.skipped_rows, values(titled.df)) == (";", 1, [["1", "a"], ["2", "b"]])


def test_deep_json_and_lone_surrogates_get_plain_answers():
    deep = "[" * 5000 + "]" * 5000
    for data, name in ((deep, "deep.json"), (deep, "deep.csv"), ('{"a": 1}\n{"a": ' + deep + "}\n", "deep.jsonl")):
        with pytest.raises(FileReadError, match="nested too deeply") as caught:
            read_table(data.encode(), name)
        assert "Error" not in str(caught.value)
    assert "Line 2 of 'deep.jsonl'" in str(caught.value)
    table = read_table(b'[{"id": "1", "\\ud83d": {"t": "x \\udc00"}}]', "cut.json")
    assert list(table.df.columns) == ["id", "\ufffd"]
    assert values(table.df) == [["1", '{"t": "x \ufffd"}']]


def test_an_unexpected_failure_gives_advice_without_class_names(monkeypatch):
    def broken(*args):
        raise KeyError("internal detail")

    monkeypatch.setattr(handai_io.delimited, "read_delimited", broken)
    with pytest.raises(FileReadError) as caught:
        read_table(b"a,b\n1,2\n", "x.csv")
    message = str(caught.value)
    assert "KeyError" not in message and "internal detail" not in message
    assert "re-save it as UTF-8 CSV or .xlsx" in message


def test_an_all_empty_file_says_what_to_do():
    with pytest.raises(FileReadError, match="every cell is empty. Check that you picked the right file"):
        read_table(b'"","  "\n"",""\n', "empty.csv")


# -- workbooks built by hand: calamine would abort the process on some of these (see _guard_workbook)

_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_PKG = "http://schemas.openxmlformats.org/package/2006"
_DOC = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
GOOD_ROWS = (
    '<row r="1"><c r="A1" t="inlineStr"><is><t>id</t></is></c><c r="B1" t="inlineStr"><is><t>text</t></is></c></row>'
    '<row r="2"><c r="A2"><v>1</v></c><c r="B2" t="inlineStr"><is><t>a</t></is></c></row>'
)
FAR_CELL = '<row r="1048576"><c r="XFD1048576"><v>9</v></c></row>'


def zip_of(parts: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in parts.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def handmade_xlsx(sheets: dict[str, str], head: str = "") -> bytes:
    """A minimal .xlsx: each sheet's <sheetData> content as given (``head`` goes before it)."""
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/s{i}.xml" ContentType="{_CT}.worksheet+xml"/>' for i in range(len(sheets))
    )
    parts: dict[str, str | bytes] = {
        "[Content_Types].xml": f'<Types xmlns="{_PKG}/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>{overrides}</Types>',
        "_rels/.rels": f'<Relationships xmlns="{_PKG}/relationships">'
        f'<Relationship Id="rId1" Type="{_DOC}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": f'<workbook xmlns="{_MAIN}" xmlns:r="{_DOC}"><sheets>'
        + "".join(f'<sheet name="{name}" sheetId="{i + 1}" r:id="rId{i + 1}"/>' for i, name in enumerate(sheets))
        + "</sheets></workbook>",
        "xl/_rels/workbook.xml.rels": f'<Relationships xmlns="{_PKG}/relationships">'
        + "".join(
            f'<Relationship Id="rId{i + 1}" Type="{_DOC}/worksheet" Target="worksheets/s{i}.xml"/>'
            for i in range(len(sheets))
        )
        + "</Relationships>",
    }
    for i, rows in enumerate(sheets.values()):
        parts[f"xl/worksheets/s{i}.xml"] = (
            f'<worksheet xmlns="{_MAIN}" xmlns:x="{_MAIN}">{head}<sheetData>{rows}</sheetData></worksheet>'
        )
    return zip_of(parts)


def test_a_far_cell_is_refused_for_its_sheet_only():
    data = handmade_xlsx({"good": GOOD_ROWS, "bad": GOOD_ROWS + FAR_CELL})
    assert handai_io.list_sheets(data, "far.xlsx") == ["good", "bad"]
    assert values(read_table(data, "far.xlsx").df) == [["1", "a"]]
    with pytest.raises(FileReadError) as caught:
        read_table(data, "far.xlsx", ReadOptions(sheet="bad"))
    message = str(caught.value)
    assert "the sheet 'bad' spans 1,048,576 rows × 16,384 columns" in message
    assert "delete the empty rows and columns" in message


@pytest.mark.parametrize(
    "far",
    [
        '<row r="1048576">' + "<c/>" * 16_383 + "<c><v>9</v></c></row>",  # the position is implied
        '<row r="1048576"><c s="1" r="XFD1048576"><v>9</v></c></row>',  # r is not the first attribute
        '<row r="1048576"><c x="/>" r="XFD1048576"><v>9</v></c></row>',  # quoting hides the tag's end
        '<row r="1048576"><x:c r="XFD1048576"><v>9</v></x:c></row>',  # a namespace prefix
        '<row r="1048576"><c r="xfd1048576"><v>9</v></c></row>',  # lower case
        '<row><c r="A99999999"><v>9</v></c><c r="ZZZZ1"><v>9</v></c></row>',  # beyond Excel's limits
    ],
)
def test_a_far_cell_is_found_however_it_is_written(far):
    with pytest.raises(FileReadError, match="is too large to load here"):
        read_table(handmade_xlsx({"data": GOOD_ROWS + far}), "far.xlsx")


def rezipped(data: bytes, change: dict[str, bytes], extra: list[tuple[str, bytes]] = ()) -> bytes:
    """The zip with some members replaced and others appended (a name may then appear twice)."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    members = [(name, change.get(name, archive.read(name))) for name in archive.namelist()]
    return zip_of_members([*members, *extra])


def zip_of_members(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        warnings.simplefilter("ignore")  # "Duplicate name" is the point
        for name, content in members:
            archive.writestr(name, content)
    return buffer.getvalue()


def test_the_sheet_checked_is_the_sheet_calamine_reads():
    """calamine aborts on each of these: the far cell must be found in the member it really reads."""
    data = handmade_xlsx({"other": GOOD_ROWS, "data": GOOD_ROWS + FAR_CELL})
    workbook = zipfile.ZipFile(io.BytesIO(data)).read("xl/workbook.xml").decode()
    decoy = "<sheet name='data' r:id='rId1'/>"  # inside an attribute: only a regex would see it
    fooled = workbook.replace('r:id="rId1"/>', f'r:id="rId1" x="{decoy}"/>')
    good, bad = (zipfile.ZipFile(io.BytesIO(data)).read(f"xl/worksheets/s{i}.xml") for i in (0, 1))
    variants = {
        "decoy.xlsx": rezipped(data, {"xl/workbook.xml": fooled.encode()}),
        "twice.xlsx": rezipped(data, {"xl/worksheets/s1.xml": good}, [("xl/worksheets/s1.xml", bad)]),
        "utf16.xlsx": rezipped(data, {"xl/worksheets/s1.xml": bad.decode().encode("utf-16")}),
    }
    for name, variant in variants.items():
        with pytest.raises(FileReadError, match="is too large to load here"):
            read_table(variant, name, ReadOptions(sheet="data"))


@pytest.mark.parametrize(
    ("rows", "head"),
    [
        (GOOD_ROWS + '<row r="1048576"><c r="XFD1048576" s="1"/></row>', ""),  # a formatted empty cell
        (GOOD_ROWS + '<row r="1048576"><c r="XFD1048576" s="1"></c></row>', ""),
        (GOOD_ROWS, '<dimension ref="A1:XFD1048576"/>'),  # a header that claims the whole sheet
        (GOOD_ROWS, '<dimension ref="A1"/>'),  # or too little
    ],
)
def test_empty_far_cells_and_wrong_dimensions_do_not_block_a_sheet(rows, head):
    assert values(read_table(handmade_xlsx({"data": rows}, head), "ok.xlsx").df) == [["1", "a"]]


def test_the_sheet_cell_limit_names_the_sheet(monkeypatch):
    monkeypatch.setattr(handai_io.guards.common, "MAX_SHEET_CELLS", 3)
    with pytest.raises(FileReadError, match=r"the sheet 'data' spans 2 rows × 2 columns \(4 cells; the limit is 3\)"):
        read_table(handmade_xlsx({"data": GOOD_ROWS}, '<dimension ref="A1:B2"/>'), "small.xlsx")


def test_a_workbook_that_unpacks_far_beyond_its_size_is_refused(monkeypatch):
    monkeypatch.setattr(handai_io.guards.zipped, "_UNPACKED_ALLOWANCE", 1 << 20)
    padding = "<!--" + " " * (3 << 20) + "-->"  # 3 MB of nothing, a few KB packed
    data = handmade_xlsx({"data": GOOD_ROWS + padding})
    assert len(data) < 50_000
    with pytest.raises(FileReadError, match="unpacks to more than 1 MB, far more than real workbooks do") as caught:
        read_table(data, "inflated.xlsx")
    assert "save it as CSV" in str(caught.value)
    with pytest.raises(FileReadError, match="unpacks to more than"):
        handai_io.list_sheets(data, "inflated.xlsx")


def test_a_zip_header_that_understates_a_size_changes_nothing(monkeypatch):
    monkeypatch.setattr(handai_io.guards.zipped, "_UNPACKED_ALLOWANCE", 1 << 20)
    data = bytearray(handmade_xlsx({"data": GOOD_ROWS + "<!--" + " " * (3 << 20) + "-->"}))
    archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    for info in archive.infolist():  # every local and central header now claims 10 bytes unpacked
        struct.pack_into("<I", data, info.header_offset + 22, 10)
    position = bytes(data).find(b"PK\x01\x02")
    while position >= 0:
        struct.pack_into("<I", data, position + 24, 10)
        position = bytes(data).find(b"PK\x01\x02", position + 4)
    with pytest.raises(FileReadError, match="unpacks to more than"):
        read_table(bytes(data), "lying.xlsx")


def test_binary_workbook_parts_are_refused():
    data = zip_of({"[Content_Types].xml": "<Types/>", "xl/workbook.bin": b"\x00" * 10})
    with pytest.raises(FileReadError, match=r"Excel Binary Workbook \(\.xlsb\).*save it as \.xlsx"):
        read_table(data, "binary.xlsx")


def test_a_panic_inside_calamine_becomes_a_message(monkeypatch):
    class PanicException(BaseException):  # how pyo3 reports a Rust panic: not an Exception
        pass

    def panic(*args):
        raise PanicException("index out of bounds")

    monkeypatch.setattr(python_calamine.CalamineWorkbook, "from_filelike", panic)
    with pytest.raises(FileReadError, match="could not be opened as an Excel workbook"):
        read_table(xlsx_bytes({"s": [["a"], [1]]}), "panic.xlsx")


def handmade_ods(table: str) -> bytes:
    ns = "urn:oasis:names:tc:opendocument:xmlns"
    content = (
        f'<office:document-content xmlns:office="{ns}:office:1.0" xmlns:table="{ns}:table:1.0" '
        f'xmlns:text="{ns}:text:1.0" office:version="1.2"><office:body><office:spreadsheet>'
        f'<table:table table:name="S">{table}</table:table>'
        "</office:spreadsheet></office:body></office:document-content>"
    )
    kind = "application/vnd.oasis.opendocument.spreadsheet"
    manifest = (
        f'<manifest:manifest xmlns:manifest="{ns}:manifest:1.0" manifest:version="1.2">'
        f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{kind}"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>'
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mimetype", kind, zipfile.ZIP_STORED)
        archive.writestr("META-INF/manifest.xml", manifest)
        archive.writestr("content.xml", '<?xml version="1.0" encoding="UTF-8"?>' + content)
    return buffer.getvalue()


def ods_cell(text: str, attributes: str = "") -> str:
    return f'<table:table-cell office:value-type="string"{attributes}><text:p>{text}</text:p></table:table-cell>'


ODS_GOOD = f"<table:table-row>{ods_cell('id')}{ods_cell('text')}</table:table-row>" + (
    f"<table:table-row>{ods_cell('1')}{ods_cell('a')}</table:table-row>"
)


REPEATED = ' table:number-columns-repeated="1000"'
MANY_SPACES = 'a<text:s text:c="99999999"/>'


def test_ods_tables_are_measured_after_repetition():
    trailing = '<table:table-row table:number-rows-repeated="1048574"><table:table-cell/></table:table-row>'
    assert values(read_table(handmade_ods(ODS_GOOD + trailing), "ok.ods").df) == [["1", "a"]]
    bombs = {
        "rows": ODS_GOOD + '<table:table-row table:number-rows-repeated="1048574"><table:table-cell/></table:table-row>'
        f'<table:table-row><table:table-cell table:number-columns-repeated="16383"/>{ods_cell("x")}</table:table-row>',
        "cells": f'<table:table-row table:number-rows-repeated="100000">{ods_cell("x", REPEATED)}</table:table-row>',
    }
    for name, table in bombs.items():
        with pytest.raises(FileReadError, match="is too large to load here"):
            read_table(handmade_ods(table), f"{name}.ods")
    spaces = f"<table:table-row>{ods_cell(MANY_SPACES)}</table:table-row>"
    with pytest.raises(FileReadError, match="unpacks to more than"):  # 100 MB of spaces written as one tag
        read_table(handmade_ods(ODS_GOOD + spaces), "spaces.ods")


def biff(kind: int, data: bytes = b"") -> bytes:
    return struct.pack("<HH", kind, len(data)) + data


def xls_bytes(cells: list[tuple[int, int, str | float]], dimensions: tuple[int, int, int, int]) -> bytes:
    """A minimal BIFF8 .xls with one sheet 'data' in an OLE container; DIMENSIONS as given."""
    bof = struct.pack("<HHHHII", 0x0600, 0x0005, 0, 0, 0, 0)
    globals_ = biff(0x0809, bof) + biff(0x0085, struct.pack("<IBBBB", 0, 0, 0, 4, 0) + b"data") + biff(0x000A)
    sheet = biff(0x0809, bof[:2] + b"\x10\x00" + bof[4:]) + biff(0x0200, struct.pack("<IIHHH", *dimensions, 0))
    for row, column, value in cells:
        if isinstance(value, str):
            sheet += biff(0x0204, struct.pack("<HHHHB", row, column, 0, len(value), 0) + value.encode("latin-1"))
        else:
            sheet += biff(0x0203, struct.pack("<HHHd", row, column, 0, value))
    stream = bytearray(globals_ + sheet + biff(0x000A))
    struct.pack_into("<I", stream, 20 + 4, len(globals_))  # the sheet record points at the sheet's BOF
    stream = bytes(stream).ljust(max(4096, -(-len(stream) // 512) * 512), b"\0")
    sectors = len(stream) // 512
    fat = [0xFFFFFFFD, 0xFFFFFFFE, *range(3, 2 + sectors), 0xFFFFFFFE]
    fat += [0xFFFFFFFF] * (128 - len(fat))

    def entry(name: str, kind: int, start: int, size: int, child: int = 0xFFFFFFFF) -> bytes:
        encoded = (name + "\0").encode("utf-16-le") if name else b""
        fields = struct.pack("<HBBIII", len(encoded), kind, 1, 0xFFFFFFFF, 0xFFFFFFFF, child)
        return encoded.ljust(64, b"\0") + fields + bytes(36) + struct.pack("<III", start, size, 0)

    directory = entry("Root Entry", 5, 0xFFFFFFFE, 0, 1) + entry("Workbook", 2, 2, len(stream)) + entry("", 0, 0, 0) * 2
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + bytes(16)
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + bytes(6)
        + struct.pack("<9I", 0, 1, 1, 0, 4096, 0xFFFFFFFE, 0, 0xFFFFFFFE, 0)
        + struct.pack("<109I", 0, *[0xFFFFFFFF] * 108)
    )
    return header + struct.pack("<128I", *fat) + directory + stream


XLS_CELLS = [(0, 0, "id"), (0, 1, "text"), (1, 0, 1.0), (1, 1, "a")]


def test_xls_sheets_are_measured_before_calamine_reads_them():
    assert values(read_table(xls_bytes(XLS_CELLS, (0, 2, 0, 2)), "ok.xls").df) == [["1", "a"]]
    far = xls_bytes([*XLS_CELLS, (65535, 65535, 9.0)], (0, 2, 0, 2))  # DIMENSIONS understates it
    with pytest.raises(FileReadError, match="spans 65,536 rows × 65,536 columns"):
        read_table(far, "far.xls")
    reserve = xls_bytes(XLS_CELLS, (0, 0xFFFFFFFF, 0, 0xFFFF))  # calamine reserves what DIMENSIONS says
    with pytest.raises(FileReadError, match="is too large to load here"):
        read_table(reserve, "dimensions.xls")


def test_xls_sector_chains_that_loop_or_leave_the_file_are_damage():
    data = bytearray(xls_bytes(XLS_CELLS, (0, 2, 0, 2)))
    struct.pack_into("<I", data, 512 + 4 * 3, 2)  # the stream's second sector leads back to its first
    with pytest.raises(FileReadError, match="could not be opened as an Excel workbook"):
        read_table(bytes(data), "loop.xls")
    data = bytearray(xls_bytes(XLS_CELLS, (0, 2, 0, 2)))
    struct.pack_into("<I", data, 0x2C, 1_000_000)  # a header claiming a million FAT sectors
    with pytest.raises(FileReadError, match="could not be opened as an Excel workbook"):
        read_table(bytes(data), "header.xls")
