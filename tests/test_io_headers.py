"""handai_io's header detection: comments, title blocks and rows of column numbers above (or just
under) the header are not data; the notes name the header's line; ``skip_rows`` always wins.

Every fixture is built here, in code.
"""

import io

import openpyxl
import pandas as pd
import pytest

from handai_io import ReadOptions, read_table

# How every detected header note ends: where the user changes the header.
CHANGE = " — change it under Reading options → Skip lines above the header."

COLUMNS = ["Gebiet", "Merkmal", "Jahr", "Anzahl", "Anteil", "Bemerkung"]
RECORDS = [
    ["Bund", "Wahlberechtigte", "2021", "61181072", "", ""],
    ["Bund", "Wählende", "2021", "46854508", "76,583339", ""],
    ["Schleswig-Holstein", "Wählende", "2021", "1745339", "78,2", "vorläufig"],
]


def values(df: pd.DataFrame) -> list[list[str | None]]:
    """Cells as plain Python values, NaN as None, for exact comparisons."""
    return df.astype(object).where(df.notna(), None).values.tolist()


def expected(records: list[list[str]]) -> list[list[str | None]]:
    return [[cell or None for cell in record] for record in records]


def official_statistics_csv(padded: bool = True) -> bytes:
    """The issue's file: UTF-8 with BOM, ';', CRLF, seven '#' lines and a row of column numbers above the header."""
    comments = [
        "# Statistisches Amt, Wiesbaden 2024",
        "# Datenlizenz Deutschland – Namensnennung – Version 2.0",
        "# Tabelle 12411-0001: Wahlbeteiligung",
        "#",
        "# Stand: 14.10.2021",
        "# Zeichensatz: UTF-8; Trennzeichen: Semikolon",
        "# Quelle: eigene Berechnungen",
    ]
    pad = ";" * (len(COLUMNS) - 1) if padded else ""
    lines = [comment + pad for comment in comments]
    lines.append(";".join(str(number) for number in range(1, len(COLUMNS) + 1)))
    lines += [";".join(COLUMNS)] + [";".join(record) for record in RECORDS]
    return "\ufeff".encode() + "\r\n".join(lines).encode() + b"\r\n"


@pytest.mark.parametrize("padded", [True, False], ids=["padded", "unpadded"])
def test_comments_and_a_row_of_column_numbers_above_the_header_are_not_data(padded):
    table = read_table(official_statistics_csv(padded), "12411-0001.csv")
    assert (table.encoding, table.delimiter) == ("utf-8-sig", ";")
    assert list(table.df.columns) == COLUMNS
    assert values(table.df) == expected(RECORDS)
    assert (table.skipped_rows, table.header_row) == (8, 9)
    assert (
        "Header taken from line 9; 8 lines above it skipped (comments and a row of column numbers)" + CHANGE
        in table.notes
    )
    assert (table.survey, table.descriptions) == (None, {})


def test_skip_rows_wins_over_the_detected_header():
    data = official_statistics_csv()
    everything = read_table(data, "12411-0001.csv", ReadOptions(skip_rows=0))
    assert everything.df.columns[0] == "# Statistisches Amt, Wiesbaden 2024"
    assert len(everything.df) == 6 + 1 + 1 + len(RECORDS)  # the other comments, the numbers, the header, the rows
    assert "Header taken from line 1, as set in the reading options." in everything.notes
    numbers_as_header = read_table(data, "12411-0001.csv", ReadOptions(skip_rows=7))
    assert list(numbers_as_header.df.columns) == [str(number) for number in range(1, len(COLUMNS) + 1)]
    assert numbers_as_header.header_row == 8
    assert "Header taken from line 8, as set in the reading options (7 lines above it skipped)." in (
        numbers_as_header.notes
    )


def test_parenthesised_column_numbers_and_a_comment_with_slashes():
    text = "// export of 2024-05-01\r\n(1),(2),(3)\r\nid,name,score\r\n1,a,2\r\n2,b,3\r\n"
    table = read_table(text.encode(), "numbered.csv")
    assert (list(table.df.columns), values(table.df)) == (["id", "name", "score"], [["1", "a", "2"], ["2", "b", "3"]])
    assert (
        "Header taken from line 3; 2 lines above it skipped (a comment and a row of column numbers)" + CHANGE
        in table.notes
    )


@pytest.mark.parametrize("numbers", ["1;2;3;4", "(1);(2);(3);(4)", ";1;2;3"])
def test_a_row_of_column_numbers_under_the_header_is_not_data(numbers):
    text = f"Kreis;Partei;Stimmen;Anteil\n{numbers}\nFlensburg;SPD;12.345;31,2\nKiel;CDU;9.876;25,0\n"
    table = read_table(text.encode(), "under.csv")
    assert list(table.df.columns) == ["Kreis", "Partei", "Stimmen", "Anteil"]
    assert values(table.df) == [["Flensburg", "SPD", "12.345", "31,2"], ["Kiel", "CDU", "9.876", "25,0"]]
    assert table.header_row == 1
    assert (
        "Header taken from line 1; the row of column numbers under it (line 2) is not data and was left out" + CHANGE
        in table.notes
    )


def test_a_first_record_of_1_2_3_in_a_table_of_numbers_stays_data():
    table = read_table(b"a,b,c\n1,2,3\n4,5,6\n7,8,9\n", "numbers.csv")
    assert values(table.df) == [["1", "2", "3"], ["4", "5", "6"], ["7", "8", "9"]]
    assert table.notes == ["Header taken from line 1" + CHANGE]


def test_a_table_without_a_preamble_is_read_as_before():
    text = 'id,review,stars\r\n001,"Great, really",5\r\n002,"Broke\nafter a week",1\r\n'
    table = read_table(text.encode(), "plain.csv")
    assert list(table.df.columns) == ["id", "review", "stars"]
    assert values(table.df) == [["001", "Great, really", "5"], ["002", "Broke\nafter a week", "1"]]
    assert (table.skipped_rows, table.header_row, table.survey, table.descriptions) == (0, 1, None, {})
    assert table.notes == ["Header taken from line 1" + CHANGE]


def test_a_hash_column_name_is_a_header_not_a_comment():
    table = read_table(b"#,name,score\n1,a,2\n2,b,3\n", "ranked.csv")
    assert (list(table.df.columns), table.skipped_rows) == (["#", "name", "score"], 0)


def test_a_padded_one_word_row_may_be_a_header_with_unnamed_columns():
    table = read_table(b"text,\nhello,1\nbye,2\n", "unnamed.csv")
    assert list(table.df.columns) == ["text", "column_2"]
    assert values(table.df) == [["hello", "1"], ["bye", "2"]]


def test_a_title_stays_the_header_when_no_header_like_row_follows():
    table = read_table(b"Measurements 2024\n1,2,3\n4,5,6\n", "untitled.csv")
    assert table.skipped_rows == 0
    assert table.df.columns[0] == "Measurements 2024"


def test_header_lines_count_the_lines_of_the_file_not_records():
    text = 'sep=,\n"Annual report\nsecond line of the title",,,\n\nid,name,qty,price\n1,a,2,3\n2,b,4,5\n'
    table = read_table(text.encode(), "report.csv")
    assert list(table.df.columns) == ["id", "name", "qty", "price"]
    assert (table.skipped_rows, table.header_row) == (2, 5)
    # Four lines of the file are above the header, but the option counts records: the note says 2, and 2 works.
    assert (
        "Header taken from line 5; 2 records above it skipped (a title and a blank line) — change it under "
        "Reading options → Skip lines above the header, which counts records, not lines: 2 here "
        "(the sep= line is not counted and a quoted line break keeps a record on several lines)."
    ) in table.notes
    chosen = read_table(text.encode(), "report.csv", ReadOptions(skip_rows=2))
    assert (list(chosen.df.columns), chosen.header_row) == (["id", "name", "qty", "price"], 5)


def test_the_header_note_names_the_option_and_plain_files_count_lines():
    table = read_table(b"Sales report\n\nid,name,qty\n1,a,2\n", "plain.csv")
    note = "Header taken from line 3; 2 lines above it skipped (a title and a blank line) — change it under "
    assert note + "Reading options → Skip lines above the header." in table.notes
    assert read_table(b"Sales report\n\nid,name,qty\n1,a,2\n", "plain.csv", ReadOptions(skip_rows=2)).header_row == 3


def xlsx_bytes(cells: dict[str, object]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for reference, value in cells.items():
        sheet[reference] = value
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def sheet_cells(rows: dict[int, list[object]]) -> dict[str, object]:
    return {f"{chr(65 + column)}{number}": value for number, row in rows.items() for column, value in enumerate(row)}


def test_a_title_block_above_an_excel_table_is_skipped_and_named_by_sheet_row():
    rows = {
        2: ["Annual customer survey 2024"],
        3: ["Source: Ministry of Examples"],
        4: ["Status:", "final"],
        6: ["id", "name", "score", "comment"],
        7: ["001", "Zoë", 3, "fine"],
        8: ["002", "Ærø", 4.5, None],
    }
    table = read_table(xlsx_bytes(sheet_cells(rows)), "titled.xlsx")
    assert list(table.df.columns) == ["id", "name", "score", "comment"]
    assert values(table.df) == [["001", "Zoë", "3", "fine"], ["002", "Ærø", "4.5", None]]
    # The sheet's first row is empty: rows are counted as Excel numbers them, skips from the first used row.
    assert (table.skipped_rows, table.header_row) == (4, 6)
    assert (
        "Header taken from row 6; 4 rows above it skipped (a title block and a blank row) — change it under "
        "Reading options → Skip lines above the header, which counts rows from the first that holds something "
        "(row 2): 4 here."
    ) in table.notes
    chosen = read_table(xlsx_bytes(sheet_cells(rows)), "titled.xlsx", ReadOptions(skip_rows=0))
    assert chosen.df.columns[0] == "Annual customer survey 2024"
    assert "Header taken from row 2, as set in the reading options." in chosen.notes


def test_a_row_of_column_numbers_under_an_excel_header():
    rows = {
        1: ["Land", "Kreis", "Stimmen"],
        2: ["(1)", "(2)", "(3)"],
        3: ["SH", "Kiel", 9876],
        4: ["SH", "Lübeck", 5432],
    }
    table = read_table(xlsx_bytes(sheet_cells(rows)), "numbered.xlsx")
    assert values(table.df) == [["SH", "Kiel", "9876"], ["SH", "Lübeck", "5432"]]
    assert (
        "Header taken from row 1; the row of column numbers under it (row 2) is not data and was left out" + CHANGE
        in (table.notes)
    )
