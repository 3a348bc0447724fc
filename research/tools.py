"""The tools that run on the engine, as data (DESIGN "Runs are small graphs of calls"): History
and the command line look a run's tool up by its kind to lay out its table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from handai_db import Run
from handai_engine import Plan

from .coder import coder_table
from .compare import compare_table
from .consensus import consensus_table
from .pipeline import pipeline_table
from .tables import WideTable


@dataclass(frozen=True)
class Tool:
    kind: str
    title: str
    page: str
    table: Callable[[Plan, Sequence[str]], WideTable]


TOOLS: dict[str, Tool] = {
    t.kind: t
    for t in (
        Tool("compare", "Compare models", "pages/compare.py", compare_table),
        Tool("coder", "Qualitative coder", "pages/coder.py", coder_table),
        Tool("consensus", "Consensus", "pages/consensus.py", consensus_table),
        Tool("pipeline", "Pipeline", "pages/pipeline.py", pipeline_table),
        Tool("codebook_themes", "Codebook generator: themes", "pages/codebooks.py", pipeline_table),
        Tool("codebook_consolidate", "Codebook generator: codes", "pages/codebooks.py", pipeline_table),
    )
}


def is_multi(run: Run) -> bool:
    """A run with a recorded plan (several models or steps), read through its tool's table."""
    return bool(run.plan)


def table_for(run: Run) -> WideTable:
    plan = Plan.of(run)
    tool = TOOLS.get(run.kind)
    make = tool.table if tool else pipeline_table
    return make(plan, list(run.input_columns))
