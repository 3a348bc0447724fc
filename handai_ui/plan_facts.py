"""Short facts about a run of several models or steps, read from its recorded plan: how many
input rows it has (the ledger counts cells), and its models and steps as History lists them."""

from __future__ import annotations

from handai_db import Run
from handai_engine import Plan

from .sidebar import provider_name


def cells_per_row(run: Run) -> int:
    return len(Plan.of(run).cells()) if run.plan else 1


def input_rows(run: Run) -> int:
    """Rows of the input (a run of several models holds one ledger cell per row, step, model and sample)."""
    return run.total_rows // max(cells_per_row(run), 1)


def models_of(run: Run) -> str:
    """ "custom:fake-small, custom:fake-alt"; a one-model run's model."""
    if not run.plan:
        return run.model
    return ", ".join(f"{a['provider']}:{a['model']}" for a in run.plan["arms"])


def providers_of(run: Run) -> str:
    names = [run.provider] if not run.plan else [a["provider"] for a in run.plan["arms"]]
    return ", ".join(provider_name(p) for p in dict.fromkeys(names))


def steps_of(run: Run) -> str:
    """ "relevant → code" for a pipeline; the one step of any other run."""
    if not run.plan:
        return ""
    return " → ".join(s["name"] for s in run.plan["steps"])
