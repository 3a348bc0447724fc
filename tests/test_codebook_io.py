"""Codebooks in and out of CSV, JSON, Markdown and the REFI-QDA codebook (.qdc): round trips with
awkward text, files written by other programs, and malformed files that say what is wrong."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

import pytest

from research.codebook import Code, Codebook, CodebookError
from research.codebook_io import FORMATS, QDC_NS, read_codebook, write_codebook

AWKWARD = Codebook(
    "Complaints",
    (
        Code(
            "price, value",
            'Costs, "fees", commas\nand a second line; ünïcödé 日本語 🙂',
            'Names a price — or says "worth it".\n# not a heading\n\\ a backslash',
            "Delivery: use 'delivery'.",
            ('=HYPERLINK("x")', "£30, really?", "- starts with a dash"),
        ),
        Code("quality", "Broken & badly <made>."),
        Code("screen", "The display.", examples=("cracked",), parent="quality"),
        Code("pixels", parent="screen"),
        Code("delivery"),
    ),
    description="Customer complaints.\nSecond line.",
)
MULTI = Codebook("M", (Code("a", "x"), Code("b")), multi_label=True, none_code=None, description="")


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_keeps_the_codes(fmt):
    data = write_codebook(AWKWARD, fmt)
    back = read_codebook(f"Complaints{FORMATS[fmt].extension}", data)
    assert back.codes == AWKWARD.codes
    assert back.name == "Complaints"


@pytest.mark.parametrize("fmt", ["json", "md"])
def test_json_and_markdown_keep_the_settings_too(fmt):
    for codebook in (AWKWARD, MULTI):
        back = read_codebook(f"other-name{FORMATS[fmt].extension}", write_codebook(codebook, fmt))
        assert back == codebook


def test_csv_is_one_row_per_code_and_guards_formulas():
    text = write_codebook(AWKWARD, "csv").decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [r["name"] for r in rows] == [c.name for c in AWKWARD.codes]
    assert rows[0]["examples"].startswith("'=HYPERLINK")  # a spreadsheet shows it, never runs it
    assert rows[2]["parent"] == "quality"


def test_csv_from_a_spreadsheet_with_other_headers_semicolons_and_cp1252():
    data = "Code;Description;Include when;Example\r\nPrix;Coût élevé;mentions €;trop cher | hors de prix\r\n"
    back = read_codebook("codes.csv", data.encode("cp1252"))
    assert back.codes == (Code("Prix", "Coût élevé", "mentions €", "", ("trop cher", "hors de prix")),)
    assert back.name == "codes"


def test_a_bare_json_list_is_a_codebook():
    data = json.dumps(["a", {"code": "b", "description": "bee", "examples": "x\ny"}]).encode()
    back = read_codebook("list.json", data)
    assert back.codes == (Code("a"), Code("b", "bee", examples=("x", "y")))
    assert back.name == "list"


def test_a_plain_markdown_list_is_a_codebook():
    data = "# Mine\n\n- price: about money\n- **self-esteem** — how one sees oneself\n- other\n".encode()
    back = read_codebook("mine.md", data)
    assert back.name == "Mine"
    assert back.codes == (Code("price", "about money"), Code("self-esteem", "how one sees oneself"), Code("other"))


# -- REFI-QDA ---------------------------------------------------------------------------------------
def test_qdc_is_the_refi_codebook_layout():
    root = ET.fromstring(write_codebook(AWKWARD, "qdc"))
    assert root.tag == f"{{{QDC_NS}}}CodeBook"
    codes = root.find(f"{{{QDC_NS}}}Codes")
    top = codes.findall(f"{{{QDC_NS}}}Code")
    assert [c.get("name") for c in top] == ["price, value", "quality", "delivery"]
    screen = top[1].find(f"{{{QDC_NS}}}Code")
    assert screen.get("name") == "screen" and screen.find(f"{{{QDC_NS}}}Code").get("name") == "pixels"
    for el in root.iter(f"{{{QDC_NS}}}Code"):
        assert el.get("isCodable") == "true" and len(el.get("guid")) == 36
    description = top[0].find(f"{{{QDC_NS}}}Description").text
    assert "Include when:\nNames a price" in description and "Examples:\n- =HYPERLINK" in description
    # the same codebook exported twice gets the same GUIDs (a QDA program can match them up)
    assert write_codebook(AWKWARD, "qdc") == write_codebook(AWKWARD, "qdc")


# Shaped like QualCoder's export (a BOM, xsi namespace and schemaLocation, origin, colours, a
# non-codable category, pretty-printed, nested codes, codes without a Description) and ATLAS.ti's
# (Sets with MemberCode).
FOREIGN = (
    "\ufeff"
    + """<?xml version="1.0" encoding="utf-8"?>
<CodeBook xmlns="urn:QDA-XML:codebook:1.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
          xsi:schemaLocation="urn:QDA-XML:codebook:1.0 Codebook.xsd" origin="QualCoder 3.6">
  <Codes>
    <Code guid="1FF58B12-6F6F-4B0C-8BE5-BBDC91F55294" name="Emotions" isCodable="false">
      <Description>Feelings people report.</Description>
      <Code guid="2FF58B12-6F6F-4B0C-8BE5-BBDC91F55294" name="joy" isCodable="true" color="#46AA00">
        <Description>Happiness, delight &amp; relief.
Include: this is just text here</Description>
        <Code guid="3FF58B12-6F6F-4B0C-8BE5-BBDC91F55294" name="relief" isCodable="true" color="#AAAA00"/>
      </Code>
      <Code guid="4FF58B12-6F6F-4B0C-8BE5-BBDC91F55294" name="anger" isCodable="true" color="#FF0000"></Code>
    </Code>
    <Code guid="5FF58B12-6F6F-4B0C-8BE5-BBDC91F55294" name="Ökonomie" isCodable="true"/>
  </Codes>
  <Sets>
    <Set name="code group 1" guid="ECA18D76-2B8B-4F26-BC1D-19ECA19FB3F0">
      <Description>kategorie 1</Description>
      <MemberCode guid="2FF58B12-6F6F-4B0C-8BE5-BBDC91F55294" />
    </Set>
  </Sets>
</CodeBook>
"""
)


def test_a_qdc_from_another_program_reads():
    back = read_codebook("exported.QDC", FOREIGN.encode("utf-8"))
    assert back.name == "exported"
    assert back.codes == (
        Code("Emotions", "Feelings people report."),
        Code("joy", "Happiness, delight & relief.\nInclude: this is just text here", parent="Emotions"),
        Code("relief", parent="joy"),
        Code("anger", parent="Emotions"),
        Code("Ökonomie"),
    )
    assert back.problems() == []


def test_a_qdc_in_utf16_and_inside_a_project_reads():
    project = FOREIGN.replace("CodeBook xmlns=", "CodeBook x=").replace("<?xml", "<?xml", 1)
    project = (
        '<Project xmlns="urn:QDA-XML:project:1.0" name="p">'
        + project.split("?>", 1)[1].replace('x="urn:QDA-XML:codebook:1.0"', "")
        + "</Project>"
    )
    assert [c.name for c in read_codebook("p.qdc", project.encode()).codes][:2] == ["Emotions", "joy"]
    assert len(read_codebook("u.qdc", FOREIGN.encode("utf-16")).codes) == 5


@pytest.mark.parametrize(
    ("filename", "data", "message"),
    [
        ("a.docx", b"x", "use .csv, .json, .md or .qdc"),
        ("a.qdc", b"<CodeBook><Codes><Code name='x'", "not valid XML"),
        ("a.qdc", b"<Project><Sources/></Project>", "not a REFI-QDA codebook"),
        ("a.qdc", b"<CodeBook><Codes/></CodeBook>", "holds no codes"),
        ("a.qdc", b"<CodeBook><Codes><Code guid='g1' isCodable='true'/></Codes></CodeBook>", "guid g1\\) has no name"),
        (
            "a.qdc",
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><CodeBook><Codes/></CodeBook>',
            "DOCTYPE",
        ),
        ("a.json", b"{not json", "not valid JSON"),
        ("a.json", b'{"name": "x"}', "needs a list of codes"),
        ("a.json", b'{"codes": [1]}', "must be an object"),
        ("a.csv", b"", "empty"),
        ("a.csv", b"definition,parent\nx,y\n", "no 'name' column"),
        ("a.md", b"just some prose\n", "no codes"),
    ],
)
def test_malformed_files_say_what_is_wrong(filename, data, message):
    with pytest.raises(CodebookError, match=message):
        read_codebook(filename, data)


def test_an_unknown_export_format_is_refused():
    with pytest.raises(CodebookError, match="csv, json, md, qdc"):
        write_codebook(AWKWARD, "docx")
