"""Which rows a run sends, as the app chooses them: filters on columns (`--where`,
`--where-contains`), then a seeded random sample (`--sample`, `--seed`) or the first N (`--limit`).
The app's own `handai_io.select_rows` does the choosing, so the run records the same sentence."""

from __future__ import annotations

import argparse

import pandas as pd

from handai_io import RowSelection, select_rows

from .common import CliError


def add_row_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=int, metavar="N", help="only the first N rows (a test run)")
    p.add_argument("--sample", type=int, metavar="N", help="a random sample of N rows (reproducible with --seed)")
    p.add_argument("--seed", type=int, metavar="S", help="the random sample's seed (default: 0)")
    p.add_argument(
        "--where",
        action="append",
        metavar="COL=V1|V2",
        help="only rows whose COL is exactly one of the values (repeat: every filter must hold)",
    )
    p.add_argument(
        "--where-contains",
        action="append",
        metavar="COL=TEXT",
        help="only rows whose COL contains TEXT, ignoring case (repeat: every filter must hold)",
    )


def choose_rows(args: argparse.Namespace, df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The rows the flags choose (original order and index kept) and the sentence the run records
    ("" for every row, as the app records it)."""
    if args.sample is not None and args.limit is not None:
        raise CliError("Choose --limit N (the first N rows) or --sample N (a random sample), not both.")
    if args.seed is not None and args.sample is None:
        raise CliError("--seed sets the seed of --sample; add --sample N.")
    for flag, n in (("--limit", args.limit), ("--sample", args.sample)):
        if n is not None and n < 1:
            raise CliError(f"{flag} must be at least 1.")
    said: list[str] = []
    for flag, specs in (("--where", args.where), ("--where-contains", args.where_contains)):
        for spec in specs or []:
            df, description = _filtered(df, flag, spec)
            said.append(description)
    if args.sample is not None:
        df, description = select_rows(df, RowSelection(mode="sample", n=args.sample, seed=args.seed or 0))
        said.append(description)
    elif args.limit is not None:
        df, description = select_rows(df, RowSelection(mode="first", n=args.limit))
        said.append(description)
    return df, "; then ".join(said)


def _filtered(df: pd.DataFrame, flag: str, spec: str) -> tuple[pd.DataFrame, str]:
    column, sep, wanted = spec.partition("=")
    column = column.strip()
    if not sep or not column or not wanted:
        raise CliError(f"{flag} takes COL={'V1|V2' if flag == '--where' else 'TEXT'} (got {spec!r}).")
    if column not in df.columns:
        names = ", ".join(str(c) for c in df.columns[:40]) + (" …" if len(df.columns) > 40 else "")
        raise CliError(f"{flag}: no column named {column!r}. Columns: {names}.")
    if flag == "--where":
        selection = RowSelection(mode="filter", column=column, values=wanted.split("|"))
    else:
        selection = RowSelection(mode="filter", column=column, contains=wanted)
    chosen, description = select_rows(df, selection)
    if chosen.empty:
        raise CliError(f"No row is left: none of the {len(df):,} rows matches {flag} {spec}.")
    return chosen, description
