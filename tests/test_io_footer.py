"""Footers under a table (a rule and a source line, a trailing comment) are not data: the delimiter is
still found, the lines are left out with a note naming them, and narrow last rows that nothing sets
apart (a sheet whose last rows are not coded yet) stay data. Every fixture is built here, in code."""

import io

import openpyxl
import pandas as pd
import pytest

from handai_io import ReadOptions, read_table

TITLE = (
    "GENESIS-Tabelle: 12411-0001\r\nBevölkerung: Deutschland, Stichtag\r\nFortschreibung des Bevölkerungsstandes\r\n"
)
DATA = "".join(f"31.12.{1990 + i};{83000000 + i}\r\n" for i in range(30))
FOOTER = "__________\r\n© Statistisches Bundesamt (Destatis), 2024 | Stand: 08.05.2024 / 14:26:06\r\n"


def genesis_csv() -> bytes:
    """A Destatis GENESIS-like export: a title block whose lines hold commas, a ';' table, a footer."""
    return (TITLE + "Deutschland\r\nStichtag;Bevölkerung\r\n" + DATA + FOOTER).encode("utf-8-sig")


def values(df: pd.DataFrame) -> list[list[str | None]]:
    return df.astype(object).where(df.notna(), None).values.tolist()


@pytest.mark.parametrize("options", [None, ReadOptions(delimiter=";")], ids=["sniffed", "semicolon chosen"])
def test_a_destatis_footer_is_left_out_and_the_delimiter_found(options):
    table = read_table(genesis_csv(), "12411-0001.csv", options)
    assert table.delimiter == ";"
    assert list(table.df.columns) == ["Stichtag", "Bevölkerung"]
    assert table.df.shape == (30, 2)
    assert values(table.df.tail(1)) == [["31.12.2019", "83000029"]]
    assert table.header_row == 5
    assert "2 footer lines after line 35 left out (notes under the table, not data)." in table.notes


def test_a_trailing_comment_line_is_left_out_even_with_the_delimiter_in_it():
    text = b"id,text,label\n1,hello,a\n2,world,b\n# exported by tool, v2\n"
    table = read_table(text, "x.csv")
    assert values(table.df) == [["1", "hello", "a"], ["2", "world", "b"]]
    assert "1 footer line after line 3 left out (notes under the table, not data)." in table.notes


def test_blank_lines_before_a_source_note_belong_to_the_footer():
    table = read_table(b"id;text;label\n1;hello;a\n2;world;b\n\n\nSource: a ministry\n", "x.csv")
    assert table.df.shape == (2, 3)
    assert "1 footer line after line 3 left out (notes under the table, not data)." in table.notes


def test_narrow_last_rows_that_nothing_sets_apart_stay_data():
    # The last records lack a field (no delimiter), but no rule, comment or blank line sets them apart.
    table = read_table(b"id,text,label\n1,hello,a\n2,world\n3\n", "x.csv")
    assert len(table.df) == 3
    assert not any("footer" in note for note in table.notes)


def test_uncoded_last_rows_of_a_sheet_stay_data():
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["text", "label", "coder"])
    sheet.append(["first answer", "yes", "ana"])
    for number in range(5):  # not coded yet: only the text column is filled, which a sheet trims to one cell
        sheet.append([f"answer {number}"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    table = read_table(buffer.getvalue(), "coding.xlsx")
    assert len(table.df) == 6


def test_a_rule_at_the_foot_of_a_sheet_starts_its_footer_counted_in_rows():
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in (["id", "name", "score", "note"], ["1", "a", 2, "x"], ["2", "b", 3, "y"], ["-----"], ["Source: us"]):
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    table = read_table(buffer.getvalue(), "scores.xlsx")
    assert values(table.df) == [["1", "a", "2", "x"], ["2", "b", "3", "y"]]
    assert "2 footer rows after row 3 left out (notes under the table, not data)." in table.notes


def test_a_long_block_of_narrow_rows_after_a_blank_line_stays_data():
    rows = "".join(f"note {number}\n" for number in range(25))
    table = read_table(("id,text,label\n1,hello,a\n\n" + rows).encode(), "x.csv")
    assert len(table.df) == 26


def test_semicolons_in_one_column_free_text_still_are_punctuation_with_a_footer():
    table = read_table(b"review\nGreat; would buy again\nBroke; no refund\n---\nSource: shop\n", "reviews.csv")
    assert table.delimiter == ","
    assert list(table.df.columns) == ["review"]


def test_a_sheets_last_rows_of_hashtag_text_stay_data():
    # A results sheet: the last rows failed (no output), and a sheet drops their empty cells.
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in (["text", "output"], ["first", "ok"], ["#UFC tonight"], ["#boxing"]):
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    table = read_table(buffer.getvalue(), "results.xlsx")
    assert values(table.df) == [["first", "ok"], ["#UFC tonight", None], ["#boxing", None]]


def test_a_full_width_row_is_data_whatever_its_first_cell_holds():
    table = read_table(b"a,b,c\n1,2,3\n---,,\n# tag,x,y\n", "x.csv")
    assert values(table.df)[-2:] == [["---", None, None], ["# tag", "x", "y"]]
