"""Output fields as an editable table (name, type, description)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from handai_prompts import FIELD_TYPES, make_schema


def schema_editor(key: str, rows: list[dict[str, str]]) -> dict[str, Any] | None:
    """The schema the table describes; None when no field is named."""
    start = pd.DataFrame(rows or [{"name": None, "type": None, "description": None}], dtype="str")
    edited = st.data_editor(
        start,
        num_rows="dynamic",
        key=key,
        width="stretch",
        column_config={"type": st.column_config.SelectboxColumn("type", options=list(FIELD_TYPES), default="string")},
    )
    schema = make_schema(edited.fillna("").to_dict(orient="records"))
    return schema if schema["fields"] else None
