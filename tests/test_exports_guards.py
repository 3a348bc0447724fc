"""Every CSV download (codebooks and reliability reports too, not only results) guards formulas by
the user's choice and says how many cells it changed; XLSX says which cells lost control characters
it cannot store. Research writers, the CLI and the pages' widgets, with fixtures built here."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import openpyxl
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from handai_io import export_bytes, write_counted, write_frames, xlsx_changed_cells
from research.codebook import Code, Codebook
from research.codebook_io import csv_guarded_cells, read_codebook, write_codebook
from research.stats import reliability
from research.stats.writers import report_guarded_cells
from tests.helpers import cli_env, run_cli

BOOK = Codebook("Costs", (Code("price", "- mentions cost"), Code("staff", "@anna's team", parent="price")))


def csv_cells(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def anna_report():
    frame = pd.DataFrame({"@anna": ["pos", "neg", "pos", "neg"], "bo": ["pos", "neg", "neg", "neg"]})
    return reliability(frame, raters=["@anna", "bo"], labels=["pos", "neg"], resamples=0)


# -- codebooks --------------------------------------------------------------------------------------
def test_a_codebook_csv_guards_by_choice_and_counts_what_it_changes():
    assert csv_guarded_cells(BOOK) == 2
    guarded = csv_cells(write_codebook(BOOK, "csv"))
    assert [row[1] for row in guarded[1:]] == ["'- mentions cost", "'@anna's team"]
    exact = csv_cells(write_codebook(BOOK, "csv", guard=False))
    assert [row[1] for row in exact[1:]] == ["- mentions cost", "@anna's team"]
    for data in (write_codebook(BOOK, "csv"), write_codebook(BOOK, "csv", guard=False)):
        assert read_codebook("Costs.csv", data).codes == BOOK.codes  # both read back as written
    assert write_codebook(BOOK, "json", guard=True) == write_codebook(BOOK, "json", guard=False)


def test_cli_codebook_export_says_the_guarded_cells_and_can_keep_them(tmp_path):
    env = cli_env(tmp_path / "data")
    source = tmp_path / "costs.json"
    source.write_text(json.dumps(BOOK.record()))
    assert run_cli(["codebooks", "import", str(source)], env).returncode == 0
    guarded = tmp_path / "guarded.csv"
    done = run_cli(["codebooks", "export", "Costs", "-o", str(guarded)], env)
    assert done.returncode == 0, done.stderr
    assert "2 cells starting with = + - or @ got a leading ' in guarded.csv" in done.stderr
    assert csv_cells(guarded.read_bytes())[1][1] == "'- mentions cost"
    exact = tmp_path / "exact.csv"
    done = run_cli(["codebooks", "export", "Costs", "-o", str(exact), "--no-csv-formula-guard"], env)
    assert done.returncode == 0 and "leading '" not in done.stderr
    assert csv_cells(exact.read_bytes())[1][1] == "- mentions cost"
    markdown = run_cli(["codebooks", "export", "Costs", "-o", str(tmp_path / "costs.md")], env)
    assert markdown.returncode == 0 and "leading '" not in markdown.stderr


# -- reliability reports -------------------------------------------------------------------------------
def test_a_report_csv_guards_a_rater_named_with_an_at_only_when_asked():
    report = anna_report()
    cells = report_guarded_cells(report)
    guarded = [cell for row in csv_cells(report.to_csv()) for cell in row]
    exact = [cell for row in csv_cells(report.to_csv(guard=False)) for cell in row]
    assert cells > 0 and cells == sum(cell.startswith("'@anna") for cell in guarded)
    assert sum(cell.startswith("@anna") for cell in exact) == cells and not any(c.startswith("'@") for c in exact)


# -- XLSX control characters -------------------------------------------------------------------------
def test_xlsx_control_characters_are_counted_and_removed_only_there(tmp_path):
    df = pd.DataFrame({"text": ["a\x0bb", "tab\tand newline\n", None, "nul\x00"], "n": [1, 2, 3, 4]})
    assert xlsx_changed_cells(df) == 2  # tab and newline are stored fine
    sheet = openpyxl.load_workbook(io.BytesIO(export_bytes(df, "xlsx"))).active
    assert [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)] == ["ab", "tab\tand newline\n", None, "nul"]
    assert json.loads(export_bytes(df, "json"))[0]["text"] == "a\x0bb"
    written = write_counted([df.head(2), df.tail(2)], tmp_path / "out.xlsx")
    assert (written.guarded, written.xlsx_changed) == (0, 2)
    assert write_counted([df], tmp_path / "out.csv").xlsx_changed == 0
    assert write_frames([pd.DataFrame({"t": ["@a"]})], tmp_path / "g.csv") == 1  # still the guard count


# -- the pages' widgets -------------------------------------------------------------------------------
def results_page() -> None:
    import pandas as pd

    from handai_ui.downloads import downloads

    downloads(pd.DataFrame({"text": ["a\x0bb", "@x", "plain"]}, dtype="str"), "run", key="x")


def test_the_results_downloads_say_what_the_xlsx_removes():
    at = AppTest.from_function(results_page, default_timeout=30).run()
    assert not at.exception
    caption = " ".join(c.value for c in at.caption)
    assert "1 cell holds control characters XLSX cannot store; removed in the XLSX only." in caption
    assert "JSON, JSONL and Parquet keep every cell exactly" in caption and "XLSX, JSON" not in caption


def codebook_page() -> None:
    from handai_ui.codebook_editor import codebook_downloads
    from research.codebook import Code, Codebook

    codebook_downloads(Codebook("Costs", (Code("price", "- mentions cost"),)), 1, key="cb")


def test_codebook_downloads_have_the_guard_box_and_its_count():
    at = AppTest.from_function(codebook_page, default_timeout=30).run()
    assert not at.exception
    box = at.checkbox(key="cb_guard")
    assert box.label == "Protect against spreadsheet formulas (CSV)" and box.value is True
    caption = " ".join(c.value for c in at.caption)
    assert "1 cell starts with = + - or @ and gets a leading ' in the CSV" in caption
    assert "JSON, Markdown and REFI-QDA keep every cell exactly" in caption
    box.uncheck().run()
    assert "1 cell starts with = + - or @ and stays as it is in the CSV" in " ".join(c.value for c in at.caption)


def report_page() -> None:
    import pandas as pd

    from handai_ui.coding_export import coded_downloads
    from handai_ui.reliability_view import show_report
    from research.stats import reliability

    frame = pd.DataFrame({"@anna": ["pos", "neg", "pos", "neg"], "bo": ["pos", "neg", "neg", "neg"]})
    report = reliability(frame, raters=["@anna", "bo"], labels=["pos", "neg"], resamples=0)
    show_report(report, key="rel")
    coded_downloads(frame, report, "coded", key="coded")


def test_the_report_csv_and_the_coded_zip_follow_their_box_and_say_the_count():
    at = AppTest.from_function(report_page, default_timeout=30).run()
    assert not at.exception
    report = anna_report()
    cells = report_guarded_cells(report)
    box = at.checkbox(key="rel_report_guard")
    assert box.value is True
    captions = " ".join(c.value for c in at.caption)
    assert f"{cells} cells start with = + - or @ and get a leading ' in the CSV; The Markdown keeps" in captions
    zip_cells = cells + 1  # the coded table's "@anna" column name
    assert f"In the ZIP's CSV files, {zip_cells} cells starting with = + - or @ get a leading '." in captions
    at.checkbox(key="dl_coded_guard").uncheck().run()
    captions = " ".join(c.value for c in at.caption)
    assert f"In the ZIP's CSV files, {zip_cells} cells starting with = + - or @ stay as they are." in captions
    assert f"{cells} cells start with = + - or @ and get a leading ' in the CSV" in captions  # its own box


@pytest.mark.parametrize("guard", [True, False])
def test_the_coded_zip_writes_both_csv_files_as_the_box_says(guard):
    from handai_ui.coding_export import coded_bundle

    frame = pd.DataFrame({"@anna": ["pos", "neg", "pos", "neg"], "bo": ["pos", "neg", "neg", "neg"]})
    files = zipfile.ZipFile(io.BytesIO(coded_bundle(frame, anna_report(), "coded", guard=guard)))
    report = files.read("reliability_report.csv").decode("utf-8-sig")
    table = files.read("coded.csv").decode("utf-8-sig")
    assert ("'@anna" in report, table.startswith("'@anna")) == (guard, guard)
    assert "@anna" in report and "@anna" in table
    sheet = openpyxl.load_workbook(io.BytesIO(files.read("coded.xlsx"))).active
    assert sheet["A1"].value == "@anna"  # the XLSX keeps it whatever the box says
