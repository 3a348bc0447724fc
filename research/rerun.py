"""Repeating a run from its methods bundle, shared by the app (History) and `runs rerun`: the bundle
read and checked, what to create (the recorded plan or settings, on the bundle's own rows or a
given input), what will differ from the record before anything is sent, and how many answers
differ once the repeat has run. Keys never come from the bundle: callers pass today's connections."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, fields, replace
from typing import Any

import pandas as pd

from handai_db import Database
from handai_engine import Engine, Plan, RunSettings
from handai_engine.runner import Connections
from handai_io import FileReadError, content_hash, export_bytes, read_table
from handai_io.bundle import unzip_bundle
from providers import Connection
from providers.registry import recorded_endpoint

from .methods import PROVENANCE, RESULTS, ROWS, answers_differ, differences, results_table
from .provenance import FORMAT, NOT_RECORDED, arm_endpoint, collect, rows_hash, software

RECORD_PARTS = ("run", "input", "settings", "arms", "steps", "outcome")
REPEATABLE = "transform, or a run of several models or steps (Compare, Consensus, Pipeline, the coders)"


class NotABundle(ValueError):
    """The file is not a methods bundle Handai wrote; the message names the file and what is wrong."""


class CannotRepeat(ValueError):
    """The bundle's run cannot be repeated on this input; the message says why."""


@dataclass(frozen=True)
class Bundle:
    """A methods bundle as read: its provenance record and its results table (with that table's bytes,
    whose hash names the rows when a repeat runs on them)."""

    name: str
    provenance: dict[str, Any]
    results: pd.DataFrame
    results_bytes: bytes
    sent: pd.DataFrame | None = None  # rows.jsonl: the input rows exactly as sent (older bundles lack it)
    sent_bytes: bytes = b""

    @property
    def run_id(self) -> Any:
        return self.provenance["run"]["id"]

    @property
    def kind(self) -> str:
        return str(self.provenance["run"]["kind"])

    @property
    def input_columns(self) -> list[str]:
        return [str(c) for c in self.provenance["input"]["columns"]]

    @property
    def rows(self) -> int:
        return int(self.provenance["outcome"]["rows"])


@dataclass(frozen=True)
class Repeat:
    """What a repeat creates: the rows to send, the input's name and hash for the record, and the
    recorded plan (a run of several models or steps) or settings (a transform). `endpoint` is a
    transform's recorded endpoint (base URL, API version, deployment), applied over today's connection."""

    rows: pd.DataFrame
    input_name: str
    input_hash: str
    settings: RunSettings
    plan: Plan | None
    endpoint: dict[str, Any]

    @property
    def providers(self) -> list[str]:
        """Whose keys the repeat needs, in the order the run names them."""
        if self.plan is None:
            return [self.settings.provider]
        return list(dict.fromkeys(a.provider for a in self.plan.arms))


def read_bundle(data: bytes, name: str) -> Bundle:
    """The bundle in `data` (a file called `name`); raises NotABundle for anything else."""
    try:
        files = unzip_bundle(data)
    except ValueError as exc:
        raise NotABundle(f"{name} is not a methods bundle: it is not a ZIP file.") from exc
    if PROVENANCE not in files or RESULTS not in files:
        raise NotABundle(f"{name} is not a methods bundle: it needs {PROVENANCE} and {RESULTS}.")
    try:
        prov = json.loads(files[PROVENANCE])
    except ValueError as exc:
        raise NotABundle(f"{name} is not a methods bundle: its {PROVENANCE} is not valid JSON ({exc}).") from exc
    if not (
        isinstance(prov, dict)
        and str(prov.get("format", "")).split("/")[0] == FORMAT.split("/")[0]
        and all(isinstance(prov.get(part), dict | list) for part in RECORD_PARTS)
    ):
        raise NotABundle(f"{name} is not a methods bundle: its {PROVENANCE} is not a Handai provenance record.")
    try:
        results = read_table(files[RESULTS], RESULTS).df
    except FileReadError as exc:
        raise NotABundle(f"{name} is not a methods bundle: its {RESULTS} cannot be read ({exc}).") from exc
    sent = None
    if ROWS in files:
        try:
            sent = read_table(files[ROWS], ROWS).df
        except FileReadError as exc:
            raise NotABundle(f"{name} is not a methods bundle: its {ROWS} cannot be read ({exc}).") from exc
    return Bundle(name, prov, results, files[RESULTS], sent, files.get(ROWS, b""))


def plan_repeat(
    bundle: Bundle,
    table: pd.DataFrame | None = None,
    *,
    name: str = "",
    digest: str = "",
    use_cache: bool = False,
) -> Repeat:
    """The repeat of `bundle`'s run on `table` (named `name`, its file hashing to `digest`), or by
    default on the bundle's own rows (rows.jsonl, exact; an older bundle's results table). Raises CannotRepeat when
    the rows lack the run's columns or the run's kind cannot be repeated."""
    prov = bundle.provenance
    if not prov.get("plan") and bundle.kind != "transform":
        raise CannotRepeat(f"A {bundle.kind} run cannot be repeated from its bundle yet (only {REPEATABLE}).")
    if table is None and bundle.sent is not None:
        table, name, digest = bundle.sent, f"{bundle.name}/{ROWS}", content_hash(bundle.sent_bytes)
    elif table is None:
        table, name, digest = bundle.results, f"{bundle.name}/{RESULTS}", content_hash(bundle.results_bytes)
    columns = bundle.input_columns
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise CannotRepeat(f"The input lacks the run's columns: {', '.join(map(str, missing))}.")
    known = {f.name for f in fields(RunSettings)} - {"use_cache"}
    try:
        settings = RunSettings(**{k: v for k, v in prov["settings"].items() if k in known}, use_cache=use_cache)
        plan = Plan.from_record(prov["plan"]) if prov.get("plan") else None
    except (TypeError, KeyError, ValueError) as exc:
        raise CannotRepeat(f"{bundle.name}: this version of Handai cannot read its recorded settings ({exc}).") from exc
    recorded = prov["arms"][0]["endpoint"] if plan is None else {}
    endpoint = recorded_endpoint(recorded) if isinstance(recorded, dict) else {}
    return Repeat(table[columns], name, digest, settings, plan, endpoint)


def input_file_change(bundle: Bundle, digest: str) -> str | None:
    """ "input file: SHA-256 OLD -> NEW" when a given input file is not the recorded one."""
    recorded = bundle.provenance["input"].get("sha256")
    if digest == recorded:
        return None
    return f"input file: SHA-256 {recorded or NOT_RECORDED} -> {digest}"


def transform_connection(repeat: Repeat, today: Connection) -> Connection:
    """Today's connection (its key) sent to the endpoint the transform recorded."""
    return today.at(repeat.endpoint)


def create_repeat(engine: Engine, repeat: Repeat, conns: Connections, *, session_id: int | None = None) -> int:
    """Write the repeat's run to the ledger (not started): the recorded plan or settings, these rows."""
    where = {"input_name": repeat.input_name, "input_hash": repeat.input_hash, "session_id": session_id}
    settings = replace(repeat.settings, columns=list(repeat.settings.columns))  # the engine may fill them in
    if repeat.plan is not None:
        return engine.create_plan_run(repeat.rows, repeat.plan, conns, settings, **where)
    if not isinstance(conns, Connection):
        conns = conns[settings.provider]
    return engine.create_transform_run(repeat.rows, settings, conns, **where)


def expected_record(bundle: Bundle, repeat: Repeat, conns: Connections) -> dict[str, Any]:
    """The provenance the repeat's run will have before it sends anything, predicted without
    writing it: the bundle's record with these rows, this software, what today's code sends for
    the recorded settings and, for a transform, the endpoint `conns` reach."""
    prov = copy.deepcopy(bundle.provenance)
    prov["outcome"]["rows"] = len(repeat.rows)
    prov["input"].update(
        name=repeat.input_name,
        sha256=repeat.input_hash,
        columns=[str(c) for c in repeat.rows.columns],
        rows_sha256=rows_hash(repeat.rows) if len(repeat.rows.columns) else None,
    )
    prov["software"] = software()
    if repeat.plan is not None:
        sent = repeat.plan.with_sent().sent
        for step in prov["steps"]:
            for arm in step["sent"]:
                now = sent.get(f"{step['name']}/{arm}")
                step["sent"][arm] = (
                    {"model": now.model, "system_message": now.system, "parameters": now.params}
                    if now
                    else NOT_RECORDED
                )
        return prov
    settings = repeat.settings
    conn = conns if isinstance(conns, Connection) else conns.get(settings.provider)
    if conn is not None:
        reached = {k: v for k, v in conn.safe_dict().items() if k != "provider" and v}
        prov["arms"][0]["endpoint"] = arm_endpoint(settings.provider, reached)
    for step in prov["steps"]:
        for arm in step["sent"]:
            step["sent"][arm] = {
                "model": settings.model,
                "system_message": settings.sent_system(),
                "parameters": settings.sent_params(),
            }
    return prov


def expected_differences(bundle: Bundle, repeat: Repeat, conns: Connections) -> list[str]:
    """What will differ from the record (one line per fact), known before the run is created."""
    return differences(bundle.provenance, expected_record(bundle, repeat, conns))


def recorded_differences(db: Database, bundle: Bundle, run_id: int, repeat: Repeat) -> list[str]:
    """What differs between the bundle's record and the repeat's, read from the ledger. A model
    that has not answered yet has named no model id: until it does, the bundle's are assumed, so
    before the run sends only settings and input can differ, and after it, also what the provider
    reported."""
    new = collect(db, run_id, table=repeat.rows)
    for old_arm, new_arm in zip(bundle.provenance["arms"], new["arms"], strict=False):
        if not new_arm.get("model_reported") and "model_reported" in old_arm:
            new_arm["model_reported"] = old_arm["model_reported"]
    return differences(bundle.provenance, new)


def compare_answers(db: Database, bundle: Bundle, run_id: int) -> tuple[int, int]:
    """(rows whose answers differ from the bundle's, rows compared): the repeat's results table
    written and read back as the bundle's was (same CSV formula guard), then compared row by row."""
    guard = bool(bundle.provenance.get("results_file", {}).get("csv_formula_guard", True))
    repeated = read_table(export_bytes(results_table(db, run_id), "csv", guard=guard), RESULTS).df
    return answers_differ(bundle.results, repeated, bundle.input_columns)


def arms_table(bundle: Bundle) -> list[dict[str, Any]]:
    """The recorded models, one row each: provider, model, endpoint and the parameters sent."""
    sent = {arm: s for step in bundle.provenance["steps"] for arm, s in step["sent"].items()}
    out = []
    for arm in bundle.provenance["arms"]:
        endpoint = arm["endpoint"]
        params = sent.get(arm["name"])
        out.append(
            {
                "model": arm["name"],
                "provider": arm["provider"],
                "model id": arm["model"],
                "endpoint": (endpoint.get("base_url") or NOT_RECORDED) if isinstance(endpoint, dict) else endpoint,
                "parameters sent": json.dumps(params["parameters"]) if isinstance(params, dict) else NOT_RECORDED,
                "samples per row": arm["samples_per_row"],
            }
        )
    return out
