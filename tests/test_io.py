"""handai_io: every row a messy file holds arrives, as text, and nothing else; exports are safe.

Fixtures are built here, in code. The real files in the folder named by HANDAI_SHARED_DATA
(see its SOURCES.md) are checked against their known row and column counts.
"""

import hashlib
import io
import json
import os
import time
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import handai_io
from handai_io import FileReadError, ReadOptions, export_bytes, read_table


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
    assert (table.encoding, table.delimiter, table.skipped_rows) == ("utf-8-sig", ";", 3)
    assert "Skipped 3 lines above the header" in table.notes
    assert list(table.df.columns) == ["id", "name", "value"]
    assert values(table.df) == [["001", "Zoë", "1,5"], ["002", "Åsa", "2,25"]]
    assert_text_frame(table.df)


def test_comment_lines_above_the_header_are_skipped_unless_the_user_says_otherwise():
    data = b"# exported by tool\n# 2 rows\nid,text\n1,a\n2,b\n"
    assert read_table(data, "c.csv").df.to_dict("list") == {"id": ["1", "2"], "text": ["a", "b"]}
    kept = read_table(data, "c.csv", ReadOptions(skip_rows=0))
    assert kept.skipped_rows == 0
    assert len(kept.df) == 4  # nothing skipped: the comment is the header, every other line a row


def test_padded_title_row_stays_the_header_so_nothing_is_lost():
    table = read_table(b"Sales report,,\nid,name,qty\n1,a,2\n", "padded.csv")
    assert table.skipped_rows == 0
    assert values(table.df) == [["id", "name", "qty"], ["1", "a", "2"]]


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
    assert "Renamed duplicate column 'name' to 'name_2'" in table.notes
    assert "Named blank column 3 'column_3'" in table.notes
    assert "Renamed 'Unnamed: 3' to 'column_4'" in table.notes
    assert "Renamed duplicate column 'x' to 'x_3'" in table.notes


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
    lines = ["id,text,label"] + [
        f'{i:06d},"Review {i}, with ""quotes""\nand a newline",x' for i in range(100_000)
    ]
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
    monkeypatch.setattr(handai_io, "MAX_UPLOAD_BYTES", 10)
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


def test_export_xlsx_neutralises_formulas():
    df = pd.DataFrame({"v": [*FORMULAS, "-3.5"]})
    sheet = openpyxl.load_workbook(io.BytesIO(export_bytes(df, "xlsx"))).active
    cells = [row[0] for row in sheet.iter_rows(min_row=2)]
    assert all(cell.data_type == "s" for cell in cells)  # text, never a formula
    expected = ["'" + value.replace("\r", "\n") for value in FORMULAS]  # XML stores CR as LF
    assert [cell.value for cell in cells] == [*expected, "-3.5"]


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


def test_xlsx_turns_carriage_returns_into_line_feeds():
    """XML normalises CR and CRLF to LF; Excel shows a line break either way."""
    df = pd.DataFrame({"a": ["x\r\ny"]}, dtype="str")
    assert values(read_table(export_bytes(df, "xlsx"), "o.xlsx").df) == [["x\ny"]]


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
    assert set(handai_io.EXPORT_FORMATS) == {"csv", "xlsx", "json", "jsonl"}


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
    rows = draw(
        st.lists(st.lists(st.none() | SAFE_CELL, min_size=width, max_size=width), min_size=1, max_size=15)
    )
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
    # Two-row header: the first row is kept as the header and the SurveyMonkey sub-header
    # ("Respondent Name", "Response", ...) is data row 1. Skipping either row would drop content,
    # and this matches SOURCES.md's correct read, pd.read_csv(sep="\t"): 27 x 60.
    "fte_poll_of_pollsters_5.tsv": (None, 27, 60),
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
    assert (table.encoding, table.delimiter, table.skipped_rows) == ("utf-8-sig", ";", 9)
    assert table.df.columns[0] == "Wahlart"
    assert table.df.loc[1, "Prozent"] == "76,583339"  # decimal commas stay text


def test_shared_cp1252_has_real_curly_quotes(read_shared):
    table = read_shared("fte_potential_candidates_events_cp1252.csv")
    assert table.encoding == "cp1252"
    assert table.df["Snippet"].str.contains("[’“”]").any()


def test_shared_tweets_keep_bare_carriage_returns(read_shared):
    text = read_shared("fte_mayweather_mcgregor_tweets.csv").df["text"]
    assert text.str.contains("\r", regex=False).sum() == 5


def test_shared_poll_keeps_the_sub_header_as_data(read_shared):
    df = read_shared("fte_poll_of_pollsters_5.tsv").df
    assert df.iloc[0, 0] == "Respondent Name"


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
