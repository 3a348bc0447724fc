"""Reading notes are grouped by kind; a second header row can be chosen as a sub-header."""

from __future__ import annotations

import io

import openpyxl
import pytest
from streamlit.testing.v1 import AppTest

from handai_io import FileReadError, ReadOptions, read_table

# How every detected header note ends: where the user changes the header.
CHANGE = " — change it under Reading options → Skip lines above the header."

# A survey export by hand: the question over its first option, blank over the rest.
SURVEY = b"Respondent,Which fruits do you eat?,,,Comment\n,Apple,Pear,Plum,\n1,x,,x,nice\n2,,x,,\n"
MERGED = ["Respondent", "Which fruits do you eat? - Apple", "Which fruits do you eat? - Pear"]
MERGED += ["Which fruits do you eat? - Plum", "Comment"]


def values(df) -> list[list[str | None]]:
    return [[None if cell != cell else cell for cell in row] for row in df.values.tolist()]


def test_many_blank_header_cells_make_one_note_with_a_count_and_examples():
    header = b"id," + b",".join([b""] * 27) + b",text\n"
    body = b"1," + b",".join([b"v"] * 27) + b",t\n"
    table = read_table(header + body, "wide.csv")
    assert list(table.df.columns)[:3] == ["id", "column_2", "column_3"]
    assert table.notes == [
        "Header taken from line 1" + CHANGE,
        "27 blank header cells were named column_N (columns 2, 3, 4 and 24 more)",
    ]


def test_many_duplicates_and_unnamed_make_one_note_each():
    names = b"a,a,a,a,a,Unnamed: 6,Unnamed: 7\n"
    table = read_table(names + b"1,2,3,4,5,6,7\n", "dups.csv")
    assert list(table.df.columns) == ["a", "a_2", "a_3", "a_4", "a_5", "column_6", "column_7"]
    assert table.notes[1:] == [
        "Renamed 2 'Unnamed: N' header cells to column_N: 'Unnamed: 6' to 'column_6' and 'Unnamed: 7' to 'column_7'",
        "Renamed 4 duplicate column names: 'a' to 'a_2', 'a' to 'a_3', 'a' to 'a_4' and 1 more",
    ]


def test_the_sub_header_joins_the_names_and_is_not_data():
    table = read_table(SURVEY, "survey.csv", ReadOptions(subheader=True))
    assert list(table.df.columns) == MERGED
    assert values(table.df) == [["1", "x", None, "x", "nice"], ["2", None, "x", None, None]]
    assert table.notes[-1] == (
        "Column names join the header (line 1) and the line under it (line 2), as set in the reading options, "
        "such as 'Which fruits do you eat? - Apple'; 3 names changed."
    )


def test_without_the_option_the_second_row_is_data():
    table = read_table(SURVEY, "survey.csv")
    assert list(table.df.columns) == ["Respondent", "Which fruits do you eat?", "column_3", "column_4", "Comment"]
    assert values(table.df)[0] == [None, "Apple", "Pear", "Plum", None]


def test_the_sub_header_works_with_skipped_lines_and_in_workbooks():
    with_title = b"Fruit survey 2024\n\n" + SURVEY
    table = read_table(with_title, "titled.csv", ReadOptions(skip_rows=2, subheader=True))
    assert list(table.df.columns) == MERGED
    assert "(line 3) and the line under it (line 4)" in table.notes[-1]

    book = openpyxl.Workbook()
    sheet = book.active
    for line in SURVEY.decode().splitlines():
        sheet.append([cell or None for cell in line.split(",")])
    buffer = io.BytesIO()
    book.save(buffer)
    table = read_table(buffer.getvalue(), "survey.xlsx", ReadOptions(subheader=True))
    assert list(table.df.columns) == MERGED
    assert len(table.df) == 2
    assert "(row 1) and the row under it (row 2)" in table.notes[-1]


def test_a_sub_header_equal_to_the_header_or_blank_leaves_the_name():
    data = b"id,name,score\nid,,points\n1,Ann,3\n"
    table = read_table(data, "same.csv", ReadOptions(subheader=True))
    assert list(table.df.columns) == ["id", "name", "score - points"]


def test_a_header_with_nothing_under_it_cannot_have_a_sub_header():
    with pytest.raises(FileReadError, match="no line under its header .* Turn off the sub-header option"):
        read_table(b"a,b\n", "only.csv", ReadOptions(skip_rows=0, subheader=True))


def reading_page() -> None:
    import streamlit as st

    from handai_ui.upload import read_upload, reading_options, sheet_picker

    data = st.session_state.get("data", b"")
    options, slot = reading_options("t")
    upload = read_upload("t_read", data, "survey.csv", options)
    if upload is not None:
        sheet_picker("t", slot, upload)
        st.write(", ".join(upload.table.df.columns))


def test_the_reading_options_expander_offers_the_sub_header():
    at = AppTest.from_function(reading_page, default_timeout=30)
    at.session_state["data"] = SURVEY
    at.run()
    assert not at.exception
    assert at.expander[0].label == "Reading options"
    box = at.checkbox(key="t_subheader")
    assert box.value is False and "Question - Option" in box.help
    assert "column_3" in at.markdown[-1].value
    box.check().run()
    assert at.markdown[-1].value == ", ".join(MERGED)
    assert any("Column names join the header" in caption.value for caption in at.caption)
