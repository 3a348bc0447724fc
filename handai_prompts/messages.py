"""What a row sends: its payload or `{column}` template, the system message and the turns."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from handai_errors import TemplateError

from .schemas import schema_instruction

# One pass over a template: `{{` and `}}` are literal braces, `{name}` is a column's value.
TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}\"'\n:]+)\}")


# -- what a row sends --------------------------------------------------------------------------
def _missing(value: Any) -> bool:
    """NaN, NaT and pd.NA (whose comparisons raise) are all "no value"."""
    try:
        return bool(value != value)
    except (TypeError, ValueError):
        return True


def _plain(value: Any) -> Any:
    """JSON-friendly cell value: ISO dates, None for NaN/NaT/NA, plain numbers."""
    if value is None or (not isinstance(value, str | bytes | list | dict | tuple) and _missing(value)):
        return None
    if isinstance(value, float) and math.isinf(value):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "isoformat") and callable(value.isoformat):
        try:
            return value.isoformat()
        except ValueError:
            return None
    if hasattr(value, "item") and callable(value.item):
        return _plain(value.item())
    return value


def clean_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A row as JSON-safe values, the form in which rows are stored in the ledger."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        try:
            out[str(key)] = _plain(value)
        except (TypeError, ValueError):
            out[str(key)] = str(value)
    return out


def row_payload(row: Mapping[str, Any], columns: Sequence[str]) -> str:
    """The chosen columns as JSON, non-ASCII kept as is (models read it, and it costs fewer tokens)."""
    return json.dumps({c: _plain(row.get(c)) for c in columns}, ensure_ascii=False, default=str)


def template_fields(template: str) -> list[str]:
    """Column names used as `{column}` placeholders; `{{` and `}}` are literal braces."""
    return list(dict.fromkeys(m.group(1).strip() for m in TEMPLATE_TOKEN.finditer(template) if m.group(1)))


def validate_template(template: str, columns: Sequence[str]) -> None:
    missing = [f for f in template_fields(template) if f not in columns]
    if missing:
        names = ", ".join(f"{{{m}}}" for m in missing)
        have = ", ".join(columns[:20]) + (" …" if len(columns) > 20 else "")
        raise TemplateError(f"The template uses {names}, but the data has no such column. Columns: {have}.")


def render_template(template: str, row: Mapping[str, Any]) -> str:
    def value(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return match.group(0)[0]
        cell = _plain(row.get(match.group(1).strip()))
        return "" if cell is None else str(cell)

    return TEMPLATE_TOKEN.sub(value, template)


def user_message(row: Mapping[str, Any], *, template: str | None, columns: Sequence[str]) -> str:
    return render_template(template, row) if template else row_payload(row, columns)


def labelled_template(columns: Sequence[str], descriptions: Mapping[str, str]) -> str:
    """A row template with one line per column, "question text (column): {column}", so the model
    reads each value with its question ("Q7" alone means nothing to it). Raises TemplateError for
    a column name a template placeholder cannot hold."""
    lines = []
    for column in columns:
        if template_fields("{" + column + "}") != [column]:
            raise TemplateError(
                f"The column '{column}' cannot be labelled: a template placeholder cannot hold its name "
                "(it has a colon, a quote, a brace, a line break or spaces at either end). Send the "
                "columns as JSON instead, or rename the column."
            )
        description = " ".join(descriptions.get(column, "").split())
        label = f"{description} ({column})" if description and description != column else column
        lines.append(label.replace("{", "{{").replace("}", "}}") + ": {" + column + "}")
    template = "\n".join(lines)
    validate_template(template, list(columns))
    return template


def is_structured(schema: Mapping[str, Any] | None, json_mode: bool) -> bool:
    """The one rule: a reply is parsed as JSON when JSON mode is on or the schema has fields."""
    return json_mode or bool(schema and schema.get("fields"))


def system_message(system_prompt: str, schema: Mapping[str, Any] | None, json_mode: bool) -> str:
    """The instruction, plus the exact JSON shape expected when the output is structured."""
    text = system_prompt.strip()
    if schema and schema.get("fields"):
        text += "\n\n" + schema_instruction(schema)
    elif json_mode and "json" not in text.lower():
        text += "\n\nReply with a single JSON object."
    return text


def build_messages(system: str, user: str, examples: Sequence[Mapping[str, str]] = ()) -> list[dict[str, str]]:
    """The messages of one call: the instruction, the few-shot examples as earlier turns of the
    conversation (each input, then its expected output), then the row."""
    messages = [{"role": "system", "content": system}] if system else []
    for example in examples:
        messages.append({"role": "user", "content": str(example.get("input", ""))})
        messages.append({"role": "assistant", "content": str(example.get("output", ""))})
    return [*messages, {"role": "user", "content": user}]


def clean_examples(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Few-shot pairs from an editable table: rows with an input and an output, as text."""
    pairs = []
    for row in rows:
        given, wanted = str(row.get("input") or "").strip(), str(row.get("output") or "").strip()
        if given and wanted:
            pairs.append({"input": given, "output": wanted})
    return pairs


def estimate_tokens(text: str) -> int:
    """Rough count (about four characters per token) for estimates before a run, not billing."""
    return max(1, math.ceil(len(text) / 4))
