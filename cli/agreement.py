"""`agreement`: reliability statistics over rater columns of a file; no database, no model."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from research.stats import reliability
from research.stats.writers import report_text

from .common import CliError
from .reading import add_table_options, read_input


def _split(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def _groups(specs: Sequence[str] | None) -> dict[str, str]:
    groups = {}
    for spec in specs or []:
        rater, sep, group = spec.partition("=")
        if not sep or not rater.strip() or not group.strip():
            raise CliError(f"--group takes RATER=GROUP, e.g. gpt4o=model; got '{spec}'.")
        groups[rater.strip()] = group.strip()
    return groups


def cmd_agreement(args: argparse.Namespace) -> int:
    """Reliability statistics over rater columns of a file; reads no database and calls no model."""
    if args.gold and not args.labels:
        raise CliError('--gold needs the label set: add --labels "a,b,c" (every value the gold column may hold).')
    _, _, loaded = read_input(args)
    report = reliability(
        loaded.df,
        raters=args.raters,
        level=args.level,
        order=_split(args.order),
        labels=_split(args.labels),
        multi_label=args.multi_label,
        separator=args.separator,
        gold=args.gold,
        groups=_groups(args.group),
        resamples=args.resamples,
        seed=args.seed,
    )
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        print(report_text(report), end="")
    return 0


def add_parser(sub: Any) -> None:
    a = sub.add_parser("agreement", help="reliability statistics over rater columns of a file")
    a.add_argument("input", metavar="FILE")
    a.add_argument("--raters", nargs="+", required=True, metavar="COL", help="the rater columns")
    a.add_argument("--level", choices=("nominal", "ordinal", "interval", "ratio"), default="nominal")
    a.add_argument("--order", help='ordinal: the labels lowest first, e.g. "low,mid,high"')
    a.add_argument("--multi-label", action="store_true", help="each cell holds several labels")
    a.add_argument("--separator", default="; ", help='between labels in a multi-label cell (default "; ")')
    a.add_argument("--gold", metavar="COL", help="a column of gold labels to score each rater against")
    a.add_argument("--labels", help='the label set, e.g. "a,b,c" (needed with --gold)')
    a.add_argument("--group", action="append", metavar="RATER=GROUP", help="e.g. gpt4o=model; repeat")
    a.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for alpha's CI")
    a.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    a.add_argument("--json", action="store_true", help="print one JSON object")
    add_table_options(a)
