"""Output fields as an editable table (name, type, description, and a category's labels)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from handai_prompts import FIELD_TYPES, LABELLED, TemplateError, make_schema

COLUMNS = ("name", "type", "description", "labels")


def editor_frame(rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> pd.DataFrame:
    """The rows as text, empty cells as "" (not a grey None), one empty row when there is none."""
    rows = rows or [dict.fromkeys(columns, "")]
    frame = pd.DataFrame([{c: str(r.get(c) or "") for c in columns} for r in rows], columns=list(columns))
    if "type" in frame:
        frame["type"] = frame["type"].replace("", "string")
    return frame.astype("str")


def schema_editor(key: str, rows: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, str | None]:
    """The schema the table describes (None when no field is named), and what is wrong with it."""
    edited = st.data_editor(
        editor_frame(rows),
        num_rows="dynamic",
        key=key,
        width="stretch",
        column_config={
            "type": st.column_config.SelectboxColumn("type", options=list(FIELD_TYPES), default="string"),
            "description": st.column_config.TextColumn("description", default=""),
            "name": st.column_config.TextColumn("name", default=""),
            "labels": st.column_config.TextColumn(
                "labels",
                default="",
                help="For a category: the allowed values, comma-separated. Replies off the list are kept and "
                "flagged (the ai_flags column).",
            ),
        },
    )
    records = edited.fillna("").to_dict(orient="records")
    for r in records:
        r["type"] = r.get("type") or "string"
    try:
        schema = make_schema(records)
    except TemplateError as exc:
        return None, str(exc)
    return (schema if schema["fields"] else None), None


def schema_rows(schema: dict[str, Any] | None) -> list[dict[str, str]]:
    """An output schema back as the editor's rows."""
    rows = []
    for name, spec in ((schema or {}).get("fields") or {}).items():
        spec = spec if isinstance(spec, dict) else {}
        labels = spec.get("enum") or spec.get("labels") or []
        rows.append(
            {
                "name": str(name),
                "type": (spec.get("type") if spec.get("type") in LABELLED else "category")
                if labels
                else str(spec.get("type") or "string"),
                "description": str(spec.get("description") or ""),
                "labels": ", ".join(map(str, labels)),
            }
        )
    return rows
