"""Creating runs, mixed into `Engine`: everything that would stop a run from starting is checked
first, then the run and a pending cell per (row, step, arm, sample) are written before any call,
with exactly what each call will send (DESIGN decisions 2 and 6)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import pandas as pd

from handai_db import Database, Run
from handai_errors import RunStartError
from handai_prompts import clean_record, generation_prompts, generation_rows, validate_template
from providers import Connection, check_connection

from .batch import check_batchable
from .plan import Plan
from .settings import RunSettings

# A connection per provider (the key is looked up by the caller); one Connection for a one-model run.
Connections = Connection | Mapping[str, Connection]

# Copied when a run is re-run with the same settings.
_CLONED_FIELDS = (
    "kind",
    "provider",
    "model",
    "params",
    "system_prompt",
    "row_template",
    "columns",
    "output_schema",
    "input_name",
    "input_hash",
    "input_columns",
    "concurrency",
    "max_retries",
    "session_id",
    "plan",
)


def records(df: pd.DataFrame, chunk: int = 10_000) -> Iterator[dict[str, Any]]:
    """A table's rows as clean records, a chunk at a time: a million-row table is written to the
    ledger without a second copy of it in memory as dicts."""
    for start in range(0, len(df), chunk):
        yield from (clean_record(r) for r in df.iloc[start : start + chunk].to_dict(orient="records"))


class RunCreation:
    """Run creation for `Engine` (which provides the ledger, the batch-mode checks and start)."""

    db: Database
    batch_params: Callable[..., dict[str, Any]]
    _run: Callable[[int], Run]
    _connections: Callable[[Run, Any], list[Connection]]
    update_settings: Callable[..., None]
    start: Callable[..., None]

    def create_transform_run(
        self,
        df: pd.DataFrame,
        settings: RunSettings,
        conn: Connection,
        *,
        input_name: str = "",
        input_hash: str = "",
        session_id: int | None = None,
        name: str = "",
        limit_rows: int | None = None,
        selection: str = "",
        batch: bool = False,
    ) -> int:
        """Write the run and a pending row for every input row (or the first `limit_rows`);
        `selection` says which rows of the file these are, for the record; `batch` sends them
        through the provider's Batch API.
        Everything that would stop it from starting is checked first, so nothing is left queued."""
        check_connection(conn)
        columns = [str(c) for c in df.columns]
        if settings.row_template:
            validate_template(settings.row_template, columns)
        elif not settings.columns:
            settings.columns = columns
        missing = [c for c in settings.columns if c not in columns]
        if missing:
            raise ValueError(f"Columns not in the data: {', '.join(missing)}")
        rows = records(df if limit_rows is None else df.head(limit_rows))
        return self._create_run(
            "transform",
            rows,
            settings,
            conn,
            input_name=input_name,
            input_hash=input_hash,
            input_columns=columns,
            session_id=session_id,
            name=name,
            selection=selection,
            batch=batch,
        )

    def create_generate_run(
        self,
        description: str,
        count: int,
        settings: RunSettings,
        conn: Connection,
        *,
        variables: dict[str, list[str]] | None = None,
        template: str | None = None,
        session_id: int | None = None,
        name: str = "",
        batch: bool = False,
    ) -> int:
        """Write a Generate run: `count` rows, each with the next value of every cycling variable.
        The form's settings are recorded whole (params `description`, `variables`, `template`: the
        template's name, or None) so they can be loaded back into the page."""
        check_connection(conn)
        rows = generation_rows(count, variables)
        names = [k for k in (variables or {}) if rows and k in rows[0]]
        settings.system_prompt, settings.row_template = generation_prompts(description, count, names)
        settings.columns = ["row", *names]
        return self._create_run(
            "generate",
            rows,
            settings,
            conn,
            input_name=description[:200],
            input_hash="",
            input_columns=[],
            session_id=session_id,
            name=name,
            batch=batch,
            recorded={
                "description": description,
                "variables": {str(k): [str(v) for v in values] for k, values in (variables or {}).items()},
                "template": template or None,
            },
        )

    def create_plan_run(
        self,
        rows: pd.DataFrame | Iterable[dict[str, Any]],
        plan: Plan,
        conns: Connections,
        settings: RunSettings,
        *,
        input_columns: Sequence[str] | None = None,
        input_name: str = "",
        input_hash: str = "",
        session_id: int | None = None,
        name: str = "",
        selection: str = "",
        batch: bool = False,
    ) -> int:
        """Write a multi-model run (Compare, Consensus, Pipeline): its plan, with exactly what each
        (step, arm) sends, and a pending cell per (row, step, arm, sample). `settings` gives the
        run's limits (concurrency per arm, retries, timeout, cache, budget); the plan gives the rest."""
        if isinstance(rows, pd.DataFrame):
            input_columns = [str(c) for c in rows.columns]
            rows = records(rows)
        columns = list(input_columns or [])
        plan.validate(columns)
        for conn in self._arm_connections(plan, conns):
            check_connection(conn)
        plan = plan.with_sent()
        mode = self.batch_params([a.provider for a in plan.arms], batch=batch, budget_usd=settings.budget_usd)
        if batch:
            check_batchable(plan)
        first, step = plan.arms[0], plan.steps[0]
        return self.db.create_run(
            rows,
            cells=plan.cells(),
            kind=plan.tool,
            provider=first.provider,
            model=", ".join(dict.fromkeys(a.model for a in plan.arms))[:200],
            connection={"provider": first.provider, **first.endpoint},
            params={
                **settings.params(),
                "sent": plan.sent_for(0, plan.arm_index(step.arms[0])).params,
                **({"selection": selection} if selection else {}),
                **mode,
            },
            system_prompt=step.instruction,
            row_template=step.row_template,
            columns=list(step.columns) or columns,
            output_schema=step.output_schema,
            concurrency=settings.concurrency,
            max_retries=settings.max_retries,
            plan=plan.record(),
            input_name=input_name,
            input_hash=input_hash,
            input_columns=columns,
            session_id=session_id,
            name=name,
        )

    @staticmethod
    def _arm_connections(plan: Plan, conns: Connections) -> list[Connection]:
        """Each arm's connection: its provider's (with the key the caller looked up), sent to the
        arm's own endpoint when it has one."""
        if isinstance(conns, Connection):
            conns = {conns.provider: conns}
        out = []
        for arm in plan.arms:
            conn = conns.get(arm.provider)
            if conn is None:
                raise RunStartError(f"No connection for {arm.provider} (model '{arm.name}'): add its key in Settings.")
            out.append(conn.at(arm.endpoint))
        return out

    def _create_run(
        self,
        kind: str,
        rows: Iterable[dict[str, Any]],
        settings: RunSettings,
        conn: Connection,
        selection: str = "",
        batch: bool = False,
        recorded: dict[str, Any] | None = None,
        **fields: Any,
    ) -> int:
        """Write a one-model run; `recorded` adds the tool's own settings to its params."""
        mode = self.batch_params([settings.provider], batch=batch, budget_usd=settings.budget_usd)
        return self.db.create_run(
            rows,
            kind=kind,
            provider=settings.provider,
            model=settings.model,
            connection=conn.safe_dict(),
            params={**settings.params(), **(recorded or {}), **({"selection": selection} if selection else {}), **mode},
            system_prompt=settings.system_prompt,
            row_template=settings.row_template,
            columns=settings.columns,
            output_schema=settings.output_schema,
            concurrency=settings.concurrency,
            max_retries=settings.max_retries,
            **fields,
        )

    def clone_run(self, run_id: int, conn: Connections, **changes: Any) -> int:
        """A new run with the same settings and input rows (and `changes`, as `update_settings`
        takes them), sent to `conn` and recorded so."""
        old = self._run(run_id)
        plan = Plan.of(old)
        for arm_conn in self._connections(old, conn):
            check_connection(arm_conn)
        rows = [r.input for r in self.db.results(run_id) if (r.step, r.arm, r.sample) == plan.cells()[0]]
        fields = {c: getattr(old, c) for c in _CLONED_FIELDS}
        connection = conn.safe_dict() if isinstance(conn, Connection) else old.connection
        new_id = self.db.create_run(
            rows, plan.cells(), name=f"Same settings as run #{run_id}", connection=connection, **fields
        )
        if changes:
            self.update_settings(new_id, **changes)
        self.start(new_id, conn)
        return new_id
