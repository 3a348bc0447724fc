"""Codebooks on the command line: which codebook a `--codebook` names (a file, or one saved in the
app's database as NAME or NAME@VERSION), and `codebooks list | export | import`."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from handai_db import Database
from research.codebook import Codebook, CodebookError
from research.codebook_io import FORMATS, csv_guarded_cells, read_codebook, write_codebook

from .common import CliError, add_guard_option, guard_note

# What read_codebook reads: a --codebook ending in one of these is a file, anything else a saved name.
FILE_SUFFIXES = (*(f.extension for f in FORMATS.values()), ".markdown", ".txt", ".xml")
LIST_HINT = "See `python handai_cli.py codebooks list`"
IMPORT_HINT = "import one with `python handai_cli.py codebooks import FILE`"


def load_codebook(spec: str, db: Database) -> tuple[Codebook, dict[str, Any]]:
    """The codebook `spec` names and the reference a run records of it: a file's
    `{"name", "file"}`, a saved version's `{"id", "name", "version"}`."""
    path = Path(spec)
    if path.is_file() or path.suffix.lower() in FILE_SUFFIXES:
        codebook = read_codebook_file(path)
        return codebook, {"name": codebook.name, "file": path.name}
    name, version = split_version(spec)
    book = db.find_codebook(name)
    if book is None:
        saved = ", ".join(f"'{b.name}'" for b, _ in db.list_codebooks())
        known = f"The saved codebooks: {saved}." if saved else f"No codebook is saved yet: {IMPORT_HINT}."
        raise CliError(
            f"No codebook file or saved codebook named '{name}'. {known} Or give a .csv, .json, .md or .qdc file."
        )
    saved_version = db.codebook_version(book.id, version)
    if saved_version is None:
        versions = ", ".join(str(v.version) for v in db.codebook_versions(book.id))
        raise CliError(f"The codebook '{book.name}' has no version {version}; its versions: {versions}.")
    try:
        codebook = Codebook.from_record(saved_version.content)
    except CodebookError as exc:
        raise CliError(f"The saved codebook '{book.name}' version {saved_version.version} is malformed: {exc}") from exc
    return codebook, {"id": book.id, "name": book.name, "version": saved_version.version}


def read_codebook_file(path: Path) -> Codebook:
    if not path.is_file():
        raise CliError(
            f"No such codebook file: {path}. Give a .csv, .json, .md or .qdc file, or a saved codebook's name "
            f"({LIST_HINT})."
        )
    try:
        return read_codebook(path.name, path.read_bytes())
    except CodebookError as exc:
        raise CliError(f"Cannot read the codebook {path.name}: {exc}") from exc


def split_version(spec: str) -> tuple[str, int | None]:
    """NAME@VERSION → (NAME, VERSION); a bare NAME → (NAME, None), its latest version."""
    name, sep, version = spec.rpartition("@")
    if sep and name.strip() and version.strip().isdigit():
        return name.strip(), int(version)
    return spec.strip(), None


def usable(codebook: Codebook) -> Codebook:
    """The codebook, or one CliError listing everything to fix before it can code."""
    problems = codebook.problems()
    if problems:
        raise CliError(f"The codebook '{codebook.name}' cannot be used yet: {' '.join(problems)}")
    return codebook


def cmd_codebooks(args: argparse.Namespace, db: Database) -> int:
    if args.codebooks_command == "list":
        saved = db.list_codebooks()
        if not saved:
            print(f"No saved codebooks; {IMPORT_HINT}.")
        for book, latest in saved:
            codes = len(latest.content.get("codes") or [])
            print(f"{book.name:<30}  v{latest.version:<3}  {codes:>3} codes  {latest.created_at:%Y-%m-%d %H:%M}")
        return 0
    if args.codebooks_command == "export":
        output = Path(args.output)
        fmt = output.suffix.lower().lstrip(".")
        if fmt not in FORMATS:
            raise CliError(f"--output must end in {', '.join(f.extension for f in FORMATS.values())}.")
        if not output.parent.exists():
            raise CliError(f"The folder {output.parent} does not exist.")
        codebook, ref = load_codebook(args.codebook, db)
        guard = args.csv_formula_guard
        output.write_bytes(write_codebook(codebook, fmt, guard=guard))
        guard_note(csv_guarded_cells(codebook) if fmt == "csv" and guard else 0, output.name)
        version = f" version {ref['version']}" if "version" in ref else ""
        print(f"Wrote the codebook '{codebook.name}'{version} ({len(codebook.codes)} codes) to {output}")
        return 0
    path = Path(args.file)
    codebook = usable(read_codebook_file(path))
    if args.name:
        codebook = replace(codebook, name=args.name.strip())
    book = db.find_codebook(codebook.name)
    before = db.codebook_version(book.id) if book else None
    saved = db.save_codebook(
        codebook.name, codebook.record(), note=args.note or "", source=f"imported from {path.name}"
    )
    if before is not None and saved.version == before.version:
        print(f"codebook '{codebook.name}' unchanged: already saved as version {saved.version}")
    else:
        print(f"codebook '{codebook.name}' version {saved.version}: {len(codebook.codes)} codes from {path.name}")
    return 0


def add_parser(sub: Any) -> None:
    cb = sub.add_parser("codebooks", help="list, export or import the app's saved codebooks")
    cs = cb.add_subparsers(dest="codebooks_command", required=True)
    cs.add_parser("list", help="saved codebooks: name, latest version, codes, date")
    ce = cs.add_parser("export", help="write a saved codebook to a file")
    ce.add_argument("codebook", metavar="NAME[@VERSION]", help="a saved codebook; its latest version by default")
    ce.add_argument("--output", "-o", required=True, help="FILE.csv, .json, .md or .qdc (REFI-QDA)")
    add_guard_option(ce)
    ci = cs.add_parser("import", help="save a codebook file as the next version of a saved codebook")
    ci.add_argument("file", metavar="FILE", help="a .csv, .json, .md or .qdc (REFI-QDA) codebook")
    ci.add_argument("--name", help="save it under this name (default: the codebook's own name)")
    ci.add_argument("--note", help="what changed in this version")


def add_codebook_options(p: argparse.ArgumentParser, *, required: bool) -> None:
    """--codebook and what the coder is asked beside the code."""
    p.add_argument(
        "--codebook",
        required=required,
        metavar="CODEBOOK",
        help="a .csv, .json, .md or .qdc file, or a saved codebook: NAME or NAME@VERSION",
    )
    p.add_argument("--no-rationale", action="store_true", help="do not ask for a rationale beside the code")
    p.add_argument("--no-evidence", action="store_true", help="do not ask for a supporting quote")
