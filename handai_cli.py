"""Handai without a browser: the same engine and database, for large or scripted jobs.

    python handai_cli.py transform reviews.csv --prompt "Sentiment?" --provider openai \\
        --model gpt-4o-mini --output out.csv
    python handai_cli.py generate --description "Support tickets" --rows 100 --provider openai \\
        --model gpt-4o-mini --template support_tickets --output tickets.jsonl
    python handai_cli.py compare reviews.csv --prompt "Sentiment?" --model openai:gpt-4o-mini \
        --model anthropic:claude-3-5-haiku-latest --output out.csv
    python handai_cli.py consensus reviews.csv --prompt "Sentiment?" --model openai:gpt-4o-mini \
        --model groq:llama-3.1-8b-instant --judge openai:gpt-4o --output out.csv
    python handai_cli.py code reviews.csv --codebook reasons.csv --model openai:gpt-4o-mini \
        --prompt "Why did the reviewer give this rating?" --columns text --output coded.csv
    python handai_cli.py compare reviews.csv --codebook "Reasons@2" --model openai:gpt-4o-mini \
        --model anthropic:claude-3-5-haiku-latest --output out.csv
    python handai_cli.py pipeline spec.json reviews.csv --output out.csv
    python handai_cli.py transform survey.csv --prompt "Code it" --where-contains Q7=price --sample 200 \
        --seed 7 --skip-rows 2 --truncate --provider openai --model gpt-4o-mini --output sample.csv
    python handai_cli.py runs list | runs resume RUN_ID | runs retry-failed RUN_ID | runs export RUN_ID -o OUT
    python handai_cli.py codebooks list | codebooks import reasons.qdc --name Reasons \\
        | codebooks export Reasons@2 --output reasons.qdc
    python handai_cli.py agreement coded.csv --raters coder_a coder_b gpt4o --level ordinal \
        --order "low,mid,high" [--gold expert --labels "low,mid,high"] [--json]

`PROVIDER:MODEL` names a model (a colon: OpenRouter's `openrouter:openai/gpt-4o-mini` holds a
slash); `custom:MODEL` is sent to `--base-url`. A `--codebook` is a .csv, .json, .md or .qdc
(REFI-QDA) file, or a codebook saved in the app by name: `Reasons` (its latest version) or `Reasons@2`.

Exit code 0 when every row succeeded, 1 when some failed or the run stopped, 2 for bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from cli import agreement, codebooks, multi, runs, single
from cli.common import CliError
from handai_db import DatabaseUnavailable, get_db
from handai_engine import PlanError, get_engine
from handai_errors import RunStartError, redact
from handai_io import FileReadError
from handai_prompts import TemplateError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="handai_cli.py", description="Apply an LLM to every row of a table.")
    sub = parser.add_subparsers(dest="command", required=True)
    single.add_parsers(sub)
    multi.add_parsers(sub)
    runs.add_parser(sub)
    codebooks.add_parser(sub)
    agreement.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "agreement":
            return agreement.cmd_agreement(args)
        db = get_db()
        db.mark_interrupted_runs()
        if args.command == "codebooks":
            return codebooks.cmd_codebooks(args, db)
        engine = get_engine(db)
        handler = {
            "transform": single.cmd_transform,
            "generate": single.cmd_generate,
            "compare": multi.cmd_compare,
            "consensus": multi.cmd_consensus,
            "code": multi.cmd_code,
            "pipeline": multi.cmd_pipeline,
            "runs": runs.cmd_runs,
        }[args.command]
        return handler(args, db, engine)
    except (
        CliError,
        DatabaseUnavailable,
        FileReadError,
        TemplateError,
        RunStartError,
        PlanError,
        ValueError,
        KeyError,
    ) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"error: {redact(str(message))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    sys.exit(main())
