"""Codebooks in and out of files: CSV (one row per code), JSON (the stored record), Markdown (for
people to read and edit) and the REFI-QDA codebook (`.qdc`, read and written by ATLAS.ti, MAXQDA,
NVivo and QualCoder).

A `.qdc` code has a name, a GUID, `isCodable`, an optional colour, a `Description` and nested
child codes; it has no slots for inclusion/exclusion criteria or examples, so they travel inside
the Description under labelled lines ("Include when:", "Exclude when:", "Examples:") that a person
reads in any QDA program and this module parses back. A Description without those lines is all
definition. The REFI-QDA codebook holds no codebook name, multi-label setting or "none" option:
the name comes from the file name, the rest from the defaults.
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from handai_io import export_bytes, guarded_cells

from .codebook import FRAME_COLUMNS, Code, Codebook, CodebookError

QDC_NS = "urn:QDA-XML:codebook:1.0"
GUID_NAMESPACE = uuid.UUID("5b0a1f7e-3c55-4d8e-9a0e-6f1f3b2c9d41")  # Handai's codes: the same GUID every export
INCLUDE, EXCLUDE, EXAMPLES = "Include when:", "Exclude when:", "Examples:"
MD_SECTIONS = {"definition": "Definition", "inclusion": "Include when", "exclusion": "Exclude when"}
# Column names other programs and people use, mapped to ours (compared case- and space-blind).
SYNONYMS = {
    "name": ("name", "code", "code name", "label", "theme"),
    "definition": ("definition", "description", "meaning", "memo"),
    "inclusion": ("inclusion", "include", "include when", "inclusion criteria", "when to use"),
    "exclusion": ("exclusion", "exclude", "exclude when", "exclusion criteria", "when not to use"),
    "examples": ("examples", "example", "example quotes", "quotes"),
    "parent": ("parent", "parent code", "category", "group"),
}
_FORMULA_QUOTED = re.compile(r"'[=+\-@\t\r]")


@dataclass(frozen=True)
class Format:
    label: str
    extension: str
    mime: str


FORMATS: dict[str, Format] = {
    "csv": Format("CSV (one row per code)", ".csv", "text/csv"),
    "json": Format("JSON", ".json", "application/json"),
    "md": Format("Markdown", ".md", "text/markdown"),
    "qdc": Format("REFI-QDA codebook (.qdc)", ".qdc", "application/xml"),
}


def read_codebook(filename: str, data: bytes) -> Codebook:
    """A codebook from a file's bytes, by its extension; CodebookError says what is wrong."""
    suffix = PurePath(filename).suffix.lower().lstrip(".")
    suffix = {"markdown": "md", "txt": "md", "xml": "qdc"}.get(suffix, suffix)
    readers: dict[str, Callable[[str, bytes], Codebook]] = {
        "csv": _read_csv,
        "json": _read_json,
        "md": _read_markdown,
        "qdc": _read_qdc,
    }
    if suffix not in readers:
        raise CodebookError(
            f"'{filename}' is not a codebook file this app reads; use .csv, .json, .md or .qdc (REFI-QDA)."
        )
    codebook = readers[suffix](PurePath(filename).stem or "Codebook", data)
    if not codebook.codes:
        raise CodebookError(f"'{filename}' holds no codes; check it is the codebook and not another file.")
    return codebook


def write_codebook(codebook: Codebook, fmt: str, *, guard: bool = True) -> bytes:
    """The codebook as a download in `fmt` (a key of FORMATS). ``guard`` applies to CSV only, as for
    results: a cell a spreadsheet would run as a formula ("- mentions cost", "@user") gets a leading '
    (``csv_guarded_cells`` says how many); every other format keeps every cell exactly."""
    writers: dict[str, Callable[[Codebook], bytes]] = {
        "csv": lambda cb: export_bytes(cb.to_frame(), "csv", guard=guard),
        "json": lambda cb: json.dumps(cb.record(), ensure_ascii=False, indent=2).encode("utf-8"),
        "md": lambda cb: _write_markdown(cb).encode("utf-8"),
        "qdc": _write_qdc,
    }
    if fmt not in writers:
        raise CodebookError(f"Unknown codebook format '{fmt}'; use one of {', '.join(FORMATS)}.")
    return writers[fmt](codebook)


# -- text ---------------------------------------------------------------------------------------
def _decode(data: bytes) -> str:
    """UTF-8 (with or without a BOM), UTF-16 with its BOM, else Windows-1252 (old Excel CSVs)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _field_for(header: str) -> str | None:
    key = " ".join(str(header).replace("_", " ").split()).casefold()
    return next((ours for ours, names in SYNONYMS.items() if key in names), None)


def _codes_from_rows(rows: Iterable[Mapping[str, Any]]) -> list[Code]:
    codes = []
    for row in rows:
        cells = {ours: row[theirs] for theirs in row if (ours := _field_for(theirs)) and row[theirs] is not None}
        if str(cells.get("name") or "").strip():
            codes.append(Code.from_record(cells))
    return codes


# -- CSV ----------------------------------------------------------------------------------------
def _read_csv(name: str, data: bytes) -> Codebook:
    text = _decode(data)
    if not text.strip():
        raise CodebookError("The CSV file is empty; it needs a header row with a 'name' column and a row per code.")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    headers = reader.fieldnames or []
    if not any(_field_for(h) == "name" for h in headers):
        raise CodebookError(
            f"The CSV has no 'name' column (its columns: {', '.join(headers) or 'none'}). "
            f"Name the columns {', '.join(FRAME_COLUMNS)}; only 'name' is required."
        )
    rows = [{k: _unguard(v) for k, v in row.items() if k is not None} for row in reader]
    return Codebook(name, tuple(_codes_from_rows(rows)))


def _unguard(value: str | None) -> str | None:
    """A cell the CSV formula guard quoted ('=…) back to what was written."""
    return value[1:] if value and _FORMULA_QUOTED.match(value) else value


def csv_guarded_cells(codebook: Codebook) -> int:
    """How many cells of the codebook's CSV the formula guard changes."""
    return guarded_cells(codebook.to_frame())


# -- JSON ---------------------------------------------------------------------------------------
def _read_json(name: str, data: bytes) -> Codebook:
    try:
        value = json.loads(_decode(data))
    except ValueError as exc:
        raise CodebookError(f"The JSON file is not valid JSON ({exc}); export it again or fix it.") from exc
    if isinstance(value, list):
        value = {"name": name, "codes": value}
    if not isinstance(value, dict) or not isinstance(value.get("codes"), list):
        raise CodebookError(
            'The JSON needs a list of codes: {"name": ..., "codes": [{"name": ..., "definition": ...}]}, '
            "or just the list."
        )
    codes = [{"name": c} if isinstance(c, str) else c for c in value["codes"]]
    if not all(isinstance(c, dict) for c in codes):
        raise CodebookError("Every code in the JSON must be an object with a 'name' (or just the name).")
    rows = [{**c, "name": c.get("name", c.get("code"))} for c in codes]
    record = {**value, "name": value.get("name") or name, "codes": [c.record() for c in _codes_from_rows(rows)]}
    return Codebook.from_record(record)


# -- Markdown -----------------------------------------------------------------------------------
def _write_markdown(codebook: Codebook) -> str:
    lines = [f"# {codebook.name}", ""]
    if codebook.description.strip():
        lines += [_md_escape(codebook.description), ""]
    lines += [
        f"- Multi-label: {'yes' if codebook.multi_label else 'no'}",
        f"- None option: {codebook.none_code if codebook.none_code is not None else '(off)'}",
        "",
    ]
    for code in codebook.codes:
        lines += [f"## {code.name}", ""]
        if code.parent:
            lines += [f"Parent: {code.parent}", ""]
        for attr, title in MD_SECTIONS.items():
            text = getattr(code, attr)
            if text.strip():
                lines += [f"### {title}", "", _md_escape(text), ""]
        if code.examples:
            lines += ["### Examples", "", *(_bullet(e) for e in code.examples), ""]
    return "\n".join(lines).rstrip() + "\n"


def _md_escape(text: str) -> str:
    """Lines that would read as headings are escaped (`\\#`), as Markdown itself allows."""
    return "\n".join("\\" + line if line.startswith(("#", "\\")) else line for line in text.strip().splitlines())


def _bullet(text: str) -> str:
    first, *rest = text.strip().splitlines() or [""]
    return "\n".join([f"- {first}", *(f"  {line}" for line in rest)])


def _read_markdown(name: str, data: bytes) -> Codebook:
    lines = _decode(data).splitlines()
    if not any(line.startswith("## ") for line in lines):
        codes = _markdown_list(lines)
        if not codes:
            raise CodebookError(
                "The Markdown has no codes: give each code a '## name' heading (with '### Definition', "
                "'### Include when', '### Exclude when' and '### Examples' under it), "
                "or list them as '- name: definition'."
            )
        title = next((line[2:].strip() for line in lines if line.startswith("# ")), name)
        return Codebook(title, tuple(codes))
    title, description, settings = name, [], {}
    codes: list[dict[str, Any]] = []
    section: str | None = None
    for line in lines:
        if line.startswith("# ") and not codes:
            title = line[2:].strip()
        elif line.startswith("## "):
            codes.append({"name": line[3:].strip(), "parent": "", "definition": [], "inclusion": [], "exclusion": []})
            codes[-1]["examples"], section = [], None
        elif line.startswith("### ") and codes:
            heading = line[4:].strip().casefold()
            section = next((a for a, t in MD_SECTIONS.items() if t.casefold() == heading), None)
            section = "examples" if heading == "examples" else section
        elif not codes:
            match = re.match(r"- (Multi-label|None option): (.*)$", line.strip())
            if match:
                settings[match.group(1)] = match.group(2).strip()
            else:
                description.append(line)
        elif section is None:
            if line.startswith("Parent:"):
                codes[-1]["parent"] = line[7:].strip()
        elif section == "examples":
            if line.startswith("- "):
                codes[-1]["examples"].append([line[2:]])
            elif line.startswith("  ") and codes[-1]["examples"]:
                codes[-1]["examples"][-1].append(line[2:])
        else:
            codes[-1][section].append(line[1:] if line.startswith("\\") else line)
    none = settings.get("None option", "none")
    return Codebook(
        title,
        tuple(
            Code(
                c["name"],
                "\n".join(c["definition"]).strip(),
                "\n".join(c["inclusion"]).strip(),
                "\n".join(c["exclusion"]).strip(),
                tuple("\n".join(e).strip() for e in c["examples"] if "\n".join(e).strip()),
                c["parent"] or None,
            )
            for c in codes
            if c["name"]
        ),
        multi_label=settings.get("Multi-label", "no").casefold() in ("yes", "true"),
        none_code=None if none == "(off)" else none or None,
        description="\n".join(line[1:] if line.startswith("\\") else line for line in description).strip(),
    )


def _markdown_list(lines: list[str]) -> list[Code]:
    """A plain list, as people type one: `- name: definition` or `- **name** — definition`."""
    codes = []
    for line in lines:
        match = re.match(r"\s*[-*]\s+(?:\*\*(.+?)\*\*|([^:—–]+))\s*(?:[:—–]\s*(.*))?$", line)
        if match:
            codes.append(Code((match.group(1) or match.group(2)).strip(), (match.group(3) or "").strip()))
    return codes


# -- REFI-QDA codebook (.qdc) -------------------------------------------------------------------
def _write_qdc(codebook: Codebook) -> bytes:
    ET.register_namespace("", QDC_NS)
    root = ET.Element(f"{{{QDC_NS}}}CodeBook", {"origin": "Handai"})
    codes_el = ET.SubElement(root, f"{{{QDC_NS}}}Codes")
    names = {c.name for c in codebook.codes}
    children: dict[str | None, list[Code]] = {}
    for code in codebook.codes:
        children.setdefault(code.parent if code.parent in names else None, []).append(code)
    placed: set[str] = set()

    def add(parent_el: ET.Element, code: Code) -> None:
        placed.add(code.name)
        guid = str(uuid.uuid5(GUID_NAMESPACE, f"{codebook.name}\x00{code.name}")).upper()
        el = ET.SubElement(parent_el, f"{{{QDC_NS}}}Code", {"guid": guid, "name": code.name, "isCodable": "true"})
        description = _qdc_description(code)
        if description:
            ET.SubElement(el, f"{{{QDC_NS}}}Description").text = description
        for child in children.get(code.name, []):
            if child.name not in placed:
                add(el, child)

    for code in [*children.get(None, []), *codebook.codes]:  # then codes caught in a parent loop
        if code.name not in placed:
            add(codes_el, code)
    ET.indent(root, space="  ")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8", xml_declaration=False)


def _qdc_description(code: Code) -> str:
    parts = [code.definition.strip()] if code.definition.strip() else []
    for label, text in ((INCLUDE, code.inclusion), (EXCLUDE, code.exclusion)):
        if text.strip():
            parts.append(f"{label}\n{text.strip()}")
    if code.examples:
        parts.append(EXAMPLES + "\n" + "\n".join(_bullet(e) for e in code.examples))
    return "\n\n".join(parts)


def _parse_description(text: str) -> dict[str, Any]:
    """A Description back into definition, inclusion, exclusion and examples; text without the
    labelled lines is all definition."""
    blocks: dict[str, list[str]] = {"definition": [], "inclusion": [], "exclusion": [], "examples": []}
    labels = {INCLUDE: "inclusion", EXCLUDE: "exclusion", EXAMPLES: "examples"}
    current = "definition"
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.strip() in labels:
            current = labels[line.strip()]
        else:
            blocks[current].append(line)
    examples: list[list[str]] = []
    for line in blocks["examples"]:
        if line.startswith("- "):
            examples.append([line[2:]])
        elif line.startswith("  ") and examples:
            examples[-1].append(line[2:])
        elif line.strip():
            examples.append([line])
    return {
        "definition": "\n".join(blocks["definition"]).strip(),
        "inclusion": "\n".join(blocks["inclusion"]).strip(),
        "exclusion": "\n".join(blocks["exclusion"]).strip(),
        "examples": tuple(e for e in ("\n".join(lines).strip() for lines in examples) if e),
    }


def _local(tag: Any) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _read_qdc(name: str, data: bytes) -> Codebook:
    text = _decode(data)
    if re.search(r"<!(DOCTYPE|ENTITY)", text):
        raise CodebookError(
            "The .qdc file declares a DOCTYPE or entities, which a REFI-QDA codebook never needs; "
            "export it again from your QDA program."
        )
    try:
        root = ET.fromstring(re.sub(r"^\s*<\?xml[^>]*\?>", "", text))
    except ET.ParseError as exc:
        raise CodebookError(
            f"The .qdc file is not valid XML ({exc}); export the codebook again from your QDA program."
        ) from exc
    if _local(root.tag) == "Project":
        root = next((el for el in root if _local(el.tag) == "CodeBook"), root)
    codes_el = next((el for el in root if _local(el.tag) == "Codes"), None)
    if _local(root.tag) != "CodeBook" or codes_el is None:
        raise CodebookError(
            f"The file is XML but not a REFI-QDA codebook: expected <CodeBook><Codes>…, found <{_local(root.tag)}>."
        )
    codes: list[Code] = []

    def walk(el: ET.Element, parent: str | None) -> None:
        code_name = (el.get("name") or "").strip()
        if not code_name:
            raise CodebookError(f"A <Code> (guid {el.get('guid') or '?'}) has no name; name it in your QDA program.")
        description = next((d.text or "" for d in el if _local(d.tag) == "Description"), "")
        codes.append(Code(code_name, parent=parent, **_parse_description(description)))
        for child in el:
            if _local(child.tag) == "Code":
                walk(child, code_name)

    for el in codes_el:
        if _local(el.tag) == "Code":
            walk(el, None)
    return Codebook(name, tuple(codes))
