"""Hostile uploads: every file ends in a correct load or in one FileReadError that says what is
wrong and what to do, never in a traceback, a wrong table, a crash, a hang or exhausted memory.

Every fixture is built here, in code. Workbook bombs are read in a child process under a memory
limit, so a crash or runaway allocation there cannot take the test run down with it.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import random
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import handai_io
from handai_io import FileReadError, export_bytes, read_table
from handai_ui.text import md
from tests.conftest import ROOT

APP = str(ROOT / "handai_app.py")
GOOD_CSV = 'id,review\n001,Great phone — love it\n002,Battery died in a day\n003,"Okay, I guess"\n'.encode()

# Technical text a user must never see: traceback lines and exception class names.
TECHNICAL = re.compile(r"Traceback|File \"|line \d+, in |\b[A-Z]\w*(Error|Exception|Warning)\b")
# A message must say what to do: at least one of these actions.
ACTIONS = (
    "expected a",
    "must",
    "check",
    "re-save",
    "rename",
    "export",
    "split",
    "fix",
    "choose",
    "remove",
    "open",
    "upload",
    "pick",
)


def values(df: pd.DataFrame) -> list[list[str | None]]:
    """Cells as plain Python values, NaN as None, for exact comparisons."""
    return df.astype(object).where(df.notna(), None).values.tolist()


def assert_user_message(message: str, *keywords: str | tuple[str, ...]) -> None:
    """A message for a person: no traceback or class names, says what to do, names the problem."""
    assert not TECHNICAL.search(message), f"technical text in the message: {message!r}"
    lowered = message.lower()
    assert any(action in lowered for action in ACTIONS), f"no action in the message: {message!r}"
    for keyword in keywords:
        options = (keyword,) if isinstance(keyword, str) else keyword
        assert any(option.lower() in lowered for option in options), f"{options} not in {message!r}"


# ---------------------------------------------------------------------------------------------
# Fixture builders (all in code)


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def parquet_bytes() -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"id": [str(i) for i in range(200)], "text": ["row text"] * 200}), buffer)
    return buffer.getvalue()


def zip_bytes(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_PKG = "http://schemas.openxmlformats.org/package/2006"
_DOC = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
XLSX_PARTS = {
    "[Content_Types].xml": f'{_XML}<Types xmlns="{_PKG}/content-types">'
    f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>'
    f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_CT}.worksheet+xml"/>'
    f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_CT}.sharedStrings+xml"/></Types>',
    "_rels/.rels": f'{_XML}<Relationships xmlns="{_PKG}/relationships">'
    f'<Relationship Id="rId1" Type="{_DOC}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
    "xl/workbook.xml": f'{_XML}<workbook xmlns="{_MAIN}" xmlns:r="{_DOC}">'
    '<sheets><sheet name="data" sheetId="1" r:id="rId1"/></sheets></workbook>',
    "xl/_rels/workbook.xml.rels": f'{_XML}<Relationships xmlns="{_PKG}/relationships">'
    f'<Relationship Id="rId1" Type="{_DOC}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_DOC}/sharedStrings" Target="sharedStrings.xml"/></Relationships>',
}
SHARED_STRINGS = (
    f'{_XML}<sst xmlns="{_MAIN}"><si><t>id</t></si><si><t>text</t></si><si><t>1</t></si><si><t>x</t></si></sst>'
)


def sheet_xml(cells: str) -> str:
    return f'{_XML}<worksheet xmlns="{_MAIN}"><sheetData>{cells}</sheetData></worksheet>'


HEADER_AND_ROW = (
    '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
    '<row r="2"><c r="A2" t="s"><v>2</v></c><c r="B2" t="s"><v>3</v></c></row>'
)


def handmade_xlsx(sheet: str, shared_strings: str = SHARED_STRINGS) -> bytes:
    return zip_bytes(
        {**XLSX_PARTS, "xl/worksheets/sheet1.xml": sheet, "xl/sharedStrings.xml": shared_strings},
    )


BOMB_MB = 200


@functools.cache
def shared_strings_bomb() -> bytes:
    """A minimal valid xlsx whose one shared string is 200 MB of 'A': a few hundred KB zipped."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, content in XLSX_PARTS.items():
            archive.writestr(name, content)
        archive.writestr("xl/worksheets/sheet1.xml", sheet_xml(HEADER_AND_ROW))
        with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as part:
            part.write(
                f'{_XML}<sst xmlns="{_MAIN}"><si><t>id</t></si><si><t>text</t></si><si><t>1</t></si><si><t>'.encode()
            )
            chunk = b"A" * 2**20
            for _ in range(BOMB_MB):
                part.write(chunk)
            part.write(b"</t></si></sst>")
    return buffer.getvalue()


def far_cell_bomb() -> bytes:
    """Under 2 KB: a header, a row, and one more cell at XFD1048576, the last cell Excel has."""
    far = '<row r="1048576"><c r="XFD1048576" t="s"><v>3</v></c></row>'
    return handmade_xlsx(sheet_xml(HEADER_AND_ROW + far))


def seeded_bytes(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def deep_array(depth: int) -> str:
    return "[" * depth + "]" * depth


RECORDS = [{"id": "1", "t": "a"}, {"id": "2", "t": "b"}]
JSONL = b'{"id": "1", "t": "a"}\n{"id": "2", "t": "b"}\n'
TEN_K = 10_000
LONG_NAME = "n" * TEN_K
MEGA_CELL = "y" * 2**20


# ---------------------------------------------------------------------------------------------
# Expectations


@dataclass(frozen=True)
class Loads:
    """A correct load: exactly these columns and rows."""

    columns: list[str]
    rows: list[list[str | None]]


@dataclass(frozen=True)
class Refused:
    """A FileReadError naming the problem (each keyword, or one of a tuple, must appear)."""

    keywords: tuple[str | tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class LoadsOrRefused:
    """Either outcome is right; a wrong table or a technical message is not."""

    loads: Loads
    refused: Refused = field(default_factory=Refused)


Expectation = Loads | Refused | LoadsOrRefused


def check(data: bytes, name: str, expected: Expectation) -> None:
    try:
        table = read_table(data, name)
    except FileReadError as exc:
        assert not isinstance(expected, Loads), f"expected a load, got: {exc}"
        refused = expected.refused if isinstance(expected, LoadsOrRefused) else expected
        assert_user_message(str(exc), *refused.keywords)
        assert name in str(exc) or "delimiter" in str(exc), f"the file is not named in {exc}"
        return
    assert not isinstance(expected, Refused), f"expected a refusal, got columns {list(table.df.columns)[:5]}"
    loads = expected.loads if isinstance(expected, LoadsOrRefused) else expected
    assert list(table.df.columns) == loads.columns
    assert values(table.df) == loads.rows


def case(case_id: str, build: Callable[[], tuple[bytes, str]], expected: Expectation, bug: str | None = None):
    marks = [pytest.mark.xfail(strict=True, reason=f"BUG: {bug}")] if bug else []
    return pytest.param(build, expected, id=case_id, marks=marks)


NOT_A_TABLE = Refused(("not a table", "list of objects"))
DAMAGED_WORKBOOK = Refused(("excel workbook", "damaged"))

CASES = [
    # -- empty and near-empty
    case("empty-file", lambda: (b"", "empty.csv"), Refused(("empty",))),
    case("whitespace-only", lambda: (b"  \n\t\r\n  \n", "blank.csv"), Refused(("empty",))),
    case("header-only", lambda: (b"id,text\n", "header.csv"), Refused(("no data rows", "id, text"))),
    case("bom-only-csv", lambda: (b"\xef\xbb\xbf", "bom.csv"), Refused(("empty",))),
    case("utf16-bom-only", lambda: (b"\xff\xfe", "bom16.csv"), Refused(("empty",))),
    case(
        "only-delimiters",
        lambda: (b",,,\n,,,\n", "commas.csv"),
        Refused(("every cell is empty",)),
    ),
    # -- binary and misnamed containers
    case("binary-named-csv", lambda: (seeded_bytes(1, 4096), "binary.csv"), Refused(("binary",))),
    case("random-bytes-named-xlsx", lambda: (seeded_bytes(2, 4096), "random.xlsx"), DAMAGED_WORKBOOK),
    case("random-bytes-named-xls", lambda: (seeded_bytes(3, 4096), "random.xls"), DAMAGED_WORKBOOK),
    case("random-bytes-named-ods", lambda: (seeded_bytes(4, 4096), "random.ods"), DAMAGED_WORKBOOK),
    case(
        "truncated-xlsx-half",
        lambda: ((x := xlsx_bytes([["id", "t"], *[[i, "x" * 50] for i in range(200)]]))[: len(x) // 2], "cut.xlsx"),
        DAMAGED_WORKBOOK,
    ),
    case(
        "truncated-xlsx-tail",
        lambda: (xlsx_bytes([["id", "t"], *[[i, "x" * 50] for i in range(200)]])[:-10], "cut.xlsx"),
        DAMAGED_WORKBOOK,
    ),
    case("zip-that-is-not-xlsx", lambda: (zip_bytes({"notes.txt": "hello"}), "archive.xlsx"), DAMAGED_WORKBOOK),
    case("zip-not-xlsx-as-xlsm", lambda: (zip_bytes({"a.bin": b"\x00" * 10}), "archive.xlsm"), DAMAGED_WORKBOOK),
    case(
        "xlsx-with-broken-sheet-xml",
        lambda: (handmade_xlsx(f'{_XML}<worksheet xmlns="{_MAIN}"><sheetData><row r="1"><c r="A1"'), "broken.xlsx"),
        DAMAGED_WORKBOOK,
    ),
    case(
        "csv-named-xlsx",
        lambda: (b"id,t\n1,a\n", "really-csv.xlsx"),
        Refused(("excel workbook", "rename it to .csv")),
    ),
    case(
        "truncated-parquet",
        lambda: ((p := parquet_bytes())[: len(p) // 2], "cut.parquet"),
        Refused(("parquet", "damaged")),
    ),
    case("parquet-magic-only", lambda: (b"PAR1", "magic.parquet"), Refused(("parquet",))),
    case("csv-named-parquet", lambda: (b"id,t\n1,a\n", "really-csv.parquet"), Refused(("parquet",))),
    case("unsupported-extension", lambda: (b"id,t\n1,a\n", "table.exe"), Refused(("not supported", ".csv"))),
    # -- encodings
    case(
        "mixed-utf8-and-cp1252-lines",
        lambda: ("id,t\n1,café\n".encode() + "2,naïve\n".encode("cp1252"), "mixed.csv"),
        LoadsOrRefused(Loads(["id", "t"], [["1", "café"], ["2", "naïve"]]), Refused(("encoding",))),
    ),
    case(
        "utf16-le-with-bom",
        lambda: ("id,t\n1,café\n2,日本\n".encode("utf-16"), "u16.csv"),
        Loads(["id", "t"], [["1", "café"], ["2", "日本"]]),
    ),
    case(
        "utf16-be-with-bom-tsv",
        lambda: (b"\xfe\xff" + "id\tt\n1\tcafé\n".encode("utf-16-be"), "u16be.tsv"),
        Loads(["id", "t"], [["1", "café"]]),
    ),
    case(
        "utf16-without-bom",
        lambda: ("id,t\n1,café\n".encode("utf-16-le"), "u16nobom.csv"),
        Refused(("utf-16",)),
    ),
    # -- wrong extension
    case("json-holding-csv", lambda: (b"id,t\n1,a\n2,b\n", "table.json"), Refused(("not valid json",))),
    case(
        "csv-holding-json-array",
        lambda: (json.dumps(RECORDS).encode(), "records.csv"),
        LoadsOrRefused(Loads(["id", "t"], [["1", "a"], ["2", "b"]]), Refused(("json",))),
    ),
    case(
        "csv-holding-pretty-json",
        lambda: (json.dumps(RECORDS, indent=2).encode(), "records.csv"),
        LoadsOrRefused(Loads(["id", "t"], [["1", "a"], ["2", "b"]]), Refused(("json",))),
    ),
    case(
        "csv-holding-json-lines",
        lambda: (JSONL, "records.csv"),
        LoadsOrRefused(Loads(["id", "t"], [["1", "a"], ["2", "b"]]), Refused(("json",))),
    ),
    case(
        "json-named-without-extension",
        lambda: (json.dumps(RECORDS).encode(), "upload"),
        Loads(["id", "t"], [["1", "a"], ["2", "b"]]),
    ),
    # -- column names
    case(
        "duplicate-column-names",
        lambda: (b"a,a,b,a\n1,2,3,4\n", "dups.csv"),
        Loads(["a", "a_2", "b", "a_3"], [["1", "2", "3", "4"]]),
    ),
    case(
        "blank-column-names",
        lambda: (b",,b, \n1,2,3,4\n", "blanks.csv"),
        Loads(["column_1", "column_2", "b", "column_4"], [["1", "2", "3", "4"]]),
    ),
    case(
        "column-name-10000-chars",
        lambda: (f"{LONG_NAME},b\n1,2\n".encode(), "long.csv"),
        Loads([LONG_NAME, "b"], [["1", "2"]]),
    ),
    case(
        "ten-thousand-columns",
        lambda: (
            (",".join(f"c{i}" for i in range(TEN_K)) + "\n" + ",".join(map(str, range(TEN_K))) + "\n").encode(),
            "wide.csv",
        ),
        Loads([f"c{i}" for i in range(TEN_K)], [[str(i) for i in range(TEN_K)]]),
    ),
    # -- big cells
    case(
        "one-megabyte-cell",
        lambda: (f"id,t\n1,{MEGA_CELL}\n".encode(), "mega.csv"),
        Loads(["id", "t"], [["1", MEGA_CELL]]),
    ),
    # -- JSON shapes
    case(
        "json-nested-10000-deep",
        lambda: (deep_array(TEN_K).encode(), "deep.json"),
        Refused(("nested",)),
    ),
    case(
        "json-record-with-10000-deep-value",
        lambda: (('[{"a": ' + deep_array(TEN_K) + "}]").encode(), "deepvalue.json"),
        Refused(("nested",)),
    ),
    case(
        "jsonl-line-10000-deep",
        lambda: (('{"a": 1}\n{"a": ' + deep_array(TEN_K) + "}\n").encode(), "deep.jsonl"),
        Refused(("nested",)),
    ),
    case("json-a-number", lambda: (b"42", "number.json"), NOT_A_TABLE),
    case("json-a-string", lambda: (b'"hello"', "string.json"), NOT_A_TABLE),
    case("json-null", lambda: (b"null", "null.json"), NOT_A_TABLE),
    case("json-list-of-numbers", lambda: (b"[1, 2, 3]", "numbers.json"), NOT_A_TABLE),
    case("json-list-of-lists", lambda: (b"[[1, 2], [3, 4]]", "lists.json"), NOT_A_TABLE),
    case("json-empty-list", lambda: (b"[]", "nothing.json"), Refused(("no records",))),
    case(
        "json-nan-and-infinity-literals",
        lambda: (b'[{"a": NaN, "b": Infinity, "c": -Infinity, "d": 1.50}]', "nan.json"),
        Loads(["a", "b", "c", "d"], [[None, "Infinity", "-Infinity", "1.50"]]),
    ),
    case(
        "json-lone-surrogate-escape",
        lambda: (b'[{"id": "1", "t": "cut emoji \\ud83d"}]', "surrogate.json"),
        LoadsOrRefused(Loads(["id", "t"], [["1", "cut emoji \ufffd"]]), Refused(("json",))),
    ),
    case(
        "jsonl-with-a-bad-line",
        lambda: (b'{"a": 1}\n{"a": \n{"a": 3}\n', "bad.jsonl"),
        Refused(("line 2", "not valid json")),
    ),
    case(
        "jsonl-with-a-non-object-line",
        lambda: (b"[1]\n", "arrays.ndjson"),
        NOT_A_TABLE,
    ),
    case("jsonl-of-numbers", lambda: (b"1\n2\n", "numbers.jsonl"), Refused(("line 1", "not a json object"))),
    # -- dangerous and odd cell content (kept verbatim on reading)
    case(
        "formula-cells",
        lambda: (b"a,b\n=1+2,-3.5\n+x,@SUM(A1)\n-cmd,ok\n", "formulas.csv"),
        Loads(["a", "b"], [["=1+2", "-3.5"], ["+x", "@SUM(A1)"], ["-cmd", "ok"]]),
    ),
    case(
        "html-and-script-cells",
        lambda: (b'a,b\n<script>alert("x")</script>,<b>bold</b> &amp;\n', "html.csv"),
        Loads(["a", "b"], [['<script>alert("x")</script>', "<b>bold</b> &amp;"]]),
    ),
    case("nul-in-a-tiny-csv", lambda: (b"id,t\n1,a\x00b\n2,c\n", "nul.csv"), Refused(("binary",))),
    case(
        "nul-in-a-larger-csv",
        lambda: (b"id,t\n" + b"".join(b"%d,row text\n" % i for i in range(99)) + b"99,a\x00b\n", "nul.csv"),
        Loads(["id", "t"], [*[[str(i), "row text"] for i in range(99)], ["99", "a\x00b"]]),
    ),
    # -- quotes and line endings
    case("lone-quote-only", lambda: (b'"', "quote.csv"), Refused(("never closed", "quote"))),
    case("unclosed-quote", lambda: (b'id,t\n1,"abc\n2,d\n', "open.csv"), Refused(("never closed", "quote"))),
    case(
        "stray-quote-mid-field",
        lambda: (b'id,t\n1,ab"c\n2,d\n', "stray.csv"),
        Loads(["id", "t"], [["1", 'ab"c'], ["2", "d"]]),
    ),
    case(
        "cr-only-line-endings", lambda: (b"id,t\r1,a\r2,b\r", "mac.csv"), Loads(["id", "t"], [["1", "a"], ["2", "b"]])
    ),
    case(
        "cr-only-with-cr-in-quoted-cell",
        lambda: (b'id,t\r1,"a\rb"\r2,c\r', "mac.csv"),
        Loads(["id", "t"], [["1", "a\rb"], ["2", "c"]]),
    ),
    case(
        "one-column-free-text-with-semicolons",
        lambda: (b"review\nGreat; would buy again\nBroke after a week; no refund\nFine\n", "reviews.csv"),
        Loads(["review"], [["Great; would buy again"], ["Broke after a week; no refund"], ["Fine"]]),
    ),
    case(
        "excel-sep-directive-line",
        lambda: (b"sep=;\na;b\n1;2\n", "excel.csv"),
        Loads(["a", "b"], [["1", "2"]]),
    ),
]


@pytest.mark.parametrize(("build", "expected"), CASES)
def test_hostile_file(build, expected):
    data, name = build()
    check(data, name, expected)


# ---------------------------------------------------------------------------------------------
# The upload limit


@pytest.fixture
def one_megabyte_limit(monkeypatch):
    monkeypatch.setattr(handai_io.sources, "MAX_UPLOAD_BYTES", 2**20)


OVERSIZED = b"id,text\n" + b"1,abcdefghijklmnopqrstuvwxyz\n" * 60_000  # 1.7 MB


def test_over_the_upload_limit_as_bytes(one_megabyte_limit):
    with pytest.raises(FileReadError) as caught:
        read_table(OVERSIZED, "big.csv")
    assert_user_message(str(caught.value), "big.csv", "1.7 MB", "limit is 1 MB", "split")


def test_over_the_upload_limit_as_a_path_is_refused_before_reading(one_megabyte_limit, tmp_path, monkeypatch):
    path = tmp_path / "big.csv"
    path.write_bytes(OVERSIZED)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read an oversized file"))
    with pytest.raises(FileReadError) as caught:
        read_table(path)
    assert_user_message(str(caught.value), "big.csv", "limit is 1 MB")


# ---------------------------------------------------------------------------------------------
# Workbook bombs, read in a child process under a memory limit

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from handai_io import FileReadError, read_table

data = Path(sys.argv[2]).read_bytes()
with open("/proc/self/status") as status:
    vm = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
limit = vm + int(sys.argv[4]) * 2**20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.monotonic()
try:
    table = read_table(data, sys.argv[3])
    out = {"outcome": "loaded", "columns": list(map(str, table.df.columns))[:10],
           "shape": list(table.df.shape),
           "cell_lengths": [[len(str(v)) for v in row] for row in table.df.head(3).values.tolist()]}
except FileReadError as exc:
    out = {"outcome": "refused", "message": str(exc)}
out["seconds"] = time.monotonic() - start
out["growth_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
print(json.dumps(out))
"""


def read_in_child(tmp_path: Path, data: bytes, name: str, headroom_mb: int = 3000, timeout: float = 45) -> dict:
    """read_table in a fresh interpreter whose address space is capped; its outcome, time and memory."""
    path = tmp_path / name
    path.write_bytes(data)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT), str(path), name, str(headroom_mb)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"the reader died (exit {done.returncode}): {done.stderr[-600:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


needs_linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and RLIMIT_AS")


@pytest.fixture(scope="module")
def bomb_result(tmp_path_factory) -> dict:
    """The shared-strings bomb is read once, in a child process; both tests below judge the outcome."""
    return read_in_child(tmp_path_factory.mktemp("bomb"), shared_strings_bomb(), "bomb.xlsx")


@needs_linux
def test_shared_strings_bomb_is_small_on_disk_and_ends_without_crash_or_hang(bomb_result):
    assert len(shared_strings_bomb()) < 1_000_000  # 200 MB of text in well under 1 MB
    result = bomb_result
    assert result["seconds"] < 30
    if result["outcome"] == "refused":
        assert_user_message(result["message"], "bomb.xlsx")
    else:  # a correct load of what the file says: one row, the second cell 200 MB long
        assert result["columns"] == ["id", "text"]
        assert result["shape"] == [1, 2]
        assert result["cell_lengths"] == [[1, BOMB_MB * 2**20]]


@needs_linux
def test_shared_strings_bomb_is_refused_or_read_in_bounded_memory(bomb_result):
    bomb, result = shared_strings_bomb(), bomb_result
    if result["outcome"] == "refused":
        assert_user_message(result["message"], "bomb.xlsx")
    # No honest 0.2 MB workbook needs more than this to read.
    assert result["growth_mb"] < 256 + 20 * len(bomb) / 2**20, result


@needs_linux
def test_far_cell_bomb_is_refused_not_a_process_abort(tmp_path):
    bomb = far_cell_bomb()
    assert len(bomb) < 4096
    result = read_in_child(tmp_path, bomb, "far.xlsx", timeout=30)
    assert result["outcome"] == "refused", result
    assert_user_message(result["message"], "far.xlsx")


# ---------------------------------------------------------------------------------------------
# Exports neutralise formulas and keep HTML as text

DANGEROUS = ["=1+2", "+x", "-cmd", "@SUM(A1)", '=HYPERLINK("http://x","y")', "\tx", "\rx", "-", "--3"]
HARMLESS = ["-3.5", "+7", "-1e5", "plain", "<script>alert(1)</script>", "<b>bold</b>"]


def export_frame() -> pd.DataFrame:
    cells = DANGEROUS + HARMLESS
    return pd.DataFrame({"=cmd": cells, "text": cells}, dtype="str")


def test_csv_export_neutralises_formulas_and_keeps_numbers_and_html():
    exported = export_bytes(export_frame(), "csv")
    assert exported.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(exported.decode("utf-8-sig"), newline="")))
    assert rows[0] == ["'=cmd", "text"]
    body = [row[1] for row in rows[1:]]
    assert body == ["'" + cell for cell in DANGEROUS] + HARMLESS
    assert all(row[0] == row[1] for row in rows[1:])


def test_xlsx_export_keeps_formulas_as_text_and_numbers_and_html():
    exported = export_bytes(export_frame(), "xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(exported)).active
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert rows[0] == ["=cmd", "text"]
    body = [row[1] for row in rows[1:]]
    # openpyxl writes through lxml (python-docx's dependency), which keeps a raw CR: every cell exact
    assert body == DANGEROUS + HARMLESS
    assert all(cell.data_type == "s" for row in sheet.iter_rows() for cell in row)  # never a formula


def test_a_loaded_formula_file_is_guarded_in_csv_and_kept_as_text_in_xlsx():
    table = read_table(b"a,b\n=1+2,-3.5\n+x,@SUM(A1)\n", "formulas.csv")
    again = read_table(export_bytes(table.df, "csv"), "export.csv")
    assert values(again.df) == [["'=1+2", "-3.5"], ["'+x", "'@SUM(A1)"]]
    for fmt, guard in (("csv", False), ("xlsx", True), ("parquet", True)):
        again = read_table(export_bytes(table.df, fmt, guard=guard), f"export.{fmt}")
        assert values(again.df) == [["=1+2", "-3.5"], ["+x", "@SUM(A1)"]], fmt


def test_json_exports_keep_html_and_formulas_verbatim():
    df = export_frame()
    records = json.loads(export_bytes(df, "json"))
    assert [r["text"] for r in records] == DANGEROUS + HARMLESS
    lines = export_bytes(df, "jsonl").decode().splitlines()
    assert [json.loads(line)["text"] for line in lines] == DANGEROUS + HARMLESS


# ---------------------------------------------------------------------------------------------
# The Transform page meets the worst files one after another


@pytest.fixture
def app() -> AppTest:
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def expected_message(data: bytes, name: str) -> str:
    """The reader's message as the page shows it: made literal for Markdown."""
    with pytest.raises(FileReadError) as caught:
        read_table(data, name)
    return md(caught.value)


WORST = [
    (seeded_bytes(1, 4096), "binary.csv", "text/csv"),
    (seeded_bytes(2, 4096), "random.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    (xlsx_bytes([["id", "t"], *[[i, "x"] for i in range(100)]])[:700], "cut.xlsx", "application/octet-stream"),
    (deep_array(TEN_K).encode(), "deep.json", "application/json"),
    (parquet_bytes()[:300], "cut.parquet", "application/octet-stream"),
    (zip_bytes({"notes.txt": "hello"}), "archive.xlsx", "application/zip"),
    (b'id,t\n1,"abc\n2,d\n', "open.csv", "text/csv"),
]


def assert_page_usable_with_good_csv(at: AppTest) -> None:
    at.file_uploader[0].set_value(("reviews.csv", GOOD_CSV, "text/csv")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any("3 rows × 2 columns" in c.value for c in at.caption)
    assert values(at.dataframe[0].value) == [
        ["001", "Great phone — love it"],
        ["002", "Battery died in a day"],
        ["003", "Okay, I guess"],
    ]


def test_worst_files_one_after_another_each_show_one_message_then_a_good_csv_loads(app):
    for data, name, mime in WORST:
        app.file_uploader[0].set_value((name, data, mime)).run()
        assert not app.exception, (name, [e.value for e in app.exception])
        assert [e.value for e in app.error] == [expected_message(data, name)], name
        assert not app.dataframe, name  # no table left over from an earlier file
    assert_page_usable_with_good_csv(app)


def test_a_bad_file_after_a_good_one_replaces_the_table_with_one_message(app):
    assert_page_usable_with_good_csv(app)
    app.file_uploader[0].set_value(("deep.json", deep_array(TEN_K).encode(), "application/json")).run()
    assert not app.exception
    assert len(app.error) == 1
    assert not app.dataframe
    assert not any("rows ×" in c.value for c in app.caption)
    assert_page_usable_with_good_csv(app)


def test_an_upload_over_the_limit_shows_one_message_on_the_page(app, one_megabyte_limit):
    app.file_uploader[0].set_value(("big.csv", OVERSIZED, "text/csv")).run()
    assert not app.exception
    assert len(app.error) == 1
    assert_user_message(app.error[0].value, "big.csv", "limit is 1 MB", "split")
    assert_page_usable_with_good_csv(app)
