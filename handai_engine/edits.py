"""Editing a run before it is resumed, retried or re-run, mixed into `Engine`: what the remaining
cells will send is recomputed and recorded on the run (or in its plan, per model), and the change
is logged. A run another live process is running is not ours to edit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from handai_db import Database, Run
from providers.registry import ENDPOINT_FIELDS

from .batch import check_no_budget, is_batch
from .plan import Plan
from .settings import RunSettings


class RunEdits:
    """Settings changes for `Engine` (which provides the ledger)."""

    db: Database

    def update_settings(self, run_id: int, **changes: Any) -> None:
        """Change what the remaining rows will be sent (model, instruction, endpoint, budget…):
        what is sent from now on is recomputed and recorded on the run, and the change is logged.
        A run another live process is running is refused (RunStartError): its settings are that
        process's."""
        run = self.db.check_editable(run_id)
        if is_batch(run) and changes.get("budget_usd") is not None:
            check_no_budget(changes["budget_usd"])
        endpoint = {k: changes.pop(k) for k in ENDPOINT_FIELDS if k in changes}
        arm_changes = changes.pop("arms", None) or {}
        if run.plan:
            self._update_plan(run, arm_changes, endpoint, changes)
        elif arm_changes:
            raise ValueError("This run has one model; change it with model=…")
        settings = RunSettings.from_run(run)
        unknown = [k for k in changes if not hasattr(settings, k)]
        if unknown:
            raise ValueError(f"Unknown settings: {', '.join(unknown)}")
        for key, value in changes.items():
            setattr(settings, key, value)
        values: dict[str, Any] = {
            "provider": settings.provider,
            "model": settings.model,
            "system_prompt": settings.system_prompt,
            "params": {**run.params, **settings.params()},
            "concurrency": settings.concurrency,
            "max_retries": settings.max_retries,
        }
        if run.plan:  # what each model sends is in the plan; the run's columns keep their record
            values = {
                "params": {**run.params, **{k: getattr(settings, k) for k in changes if k in run.params}},
                "concurrency": settings.concurrency,
                "max_retries": settings.max_retries,
            }
        if endpoint and not run.plan:
            values["connection"] = {**run.connection, **{k: v or None for k, v in endpoint.items()}}
        self.db.update_run(run_id, **values)
        described = ", ".join(f"{k}={v!r}" for k, v in {**changes, **endpoint, **arm_changes}.items())
        self.db.log(run_id, "info", f"Settings changed: {described}")

    def _update_plan(
        self, run: Run, arm_changes: Mapping[str, Mapping[str, Any]], endpoint: dict[str, Any], changes: dict[str, Any]
    ) -> None:
        """A multi-model run changes per arm (`arms={name: {model, temperature, max_tokens,
        base_url…}}`; an endpoint given alone applies to every arm); what each (step, arm) sends
        is recomputed and recorded in the plan."""
        per_run = {"concurrency", "max_retries", "budget_usd", "timeout", "use_cache"}
        if set(changes) - per_run:
            raise ValueError(
                f"A run of several models changes {', '.join(sorted(set(changes) - per_run))} per model: "
                "arms={model name: {...}}."
            )
        plan = Plan.of(run)
        unknown = set(arm_changes) - {a.name for a in plan.arms}
        if unknown:
            raise ValueError(f"No model named {', '.join(sorted(unknown))} in run {run.id}.")
        arms = []
        for arm in plan.arms:
            change = {**endpoint, **dict(arm_changes.get(arm.name) or {})}
            moved = {k: change.pop(k) for k in ENDPOINT_FIELDS if k in change}
            bad = set(change) - {"model", "temperature", "max_tokens"}
            if bad:
                raise ValueError(f"Cannot change {', '.join(sorted(bad))} of model '{arm.name}'.")
            arms.append(replace(arm, endpoint={**arm.endpoint, **moved}, **change))
        updated = replace(plan, arms=tuple(arms)).with_sent()
        self.db.update_run(run.id, plan=updated.record())
