"""Output schemas: fields as the user lists them, as the model is told them, as JSON Schema, and
answers off a field's labels."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from handai_errors import TemplateError

FIELD_TYPES = ("string", "integer", "number", "boolean", "array", "object", "category", "categories")
LABELLED = ("category", "categories")  # one label, or a list of labels (multi-label coding)


# -- output schemas ----------------------------------------------------------------------------
def make_schema(fields: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Schema from UI rows like {"name": "score", "type": "integer", "description": "..."}; a
    "category" field (one label) or a "categories" field (a list of labels) takes its allowed
    values from "labels" (a list, or text split on commas)."""
    out: dict[str, dict[str, Any]] = {}
    for f in fields:
        name = str(f.get("name") or "").strip()
        if not name:
            continue
        kind = str(f.get("type") or "string").strip().lower()
        spec: dict[str, Any] = {
            "type": kind if kind in FIELD_TYPES else "string",
            "description": str(f.get("description") or ""),
        }
        if spec["type"] in LABELLED:
            labels = f.get("labels") or []
            if isinstance(labels, str):
                labels = labels.split(",")
            spec["labels"] = list(dict.fromkeys(str(x).strip() for x in labels if str(x).strip()))
            if not spec["labels"]:
                raise TemplateError(f"The {spec['type']} field '{name}' needs its labels (comma-separated).")
        out[name] = spec
    return {"fields": out}


def schema_instruction(schema: Mapping[str, Any]) -> str:
    fields: Mapping[str, Mapping[str, Any]] = schema.get("fields", {})
    shape = json.dumps({k: _shown_type(v) for k, v in fields.items()}, ensure_ascii=False)
    lines = [f"Reply with only a JSON object of this shape: {shape}"]
    described = []
    for k, v in fields.items():
        text = v.get("description") or ""
        if v.get("type") in LABELLED:
            allowed = ", ".join(json.dumps(label, ensure_ascii=False) for label in v.get("labels") or [])
            rule = "Exactly one of" if v["type"] == "category" else "A list of one or more of"
            text = f"{text} {rule}: {allowed}.".strip()
        if text:
            described.append(f"- {k}: {text}")
    if described:
        lines += ["Fields:", *described]
    return "\n".join(lines)


def _shown_type(spec: Mapping[str, Any]) -> str:
    return str(_JSON_TYPES.get(spec.get("type", "string"), spec.get("type", "string")))


_JSON_TYPES = {"category": "string", "categories": "array"}


def json_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The output schema as JSON Schema, for providers that enforce one (a category as an enum,
    a multi-label field as an array of that enum)."""
    properties: dict[str, Any] = {}
    for name, spec in schema.get("fields", {}).items():
        kind = spec.get("type", "string")
        prop: dict[str, Any] = {"type": _JSON_TYPES.get(kind, kind)}
        if kind == "category":
            prop["enum"] = list(spec["labels"])
        elif kind == "categories":
            prop["items"] = {"type": "string", "enum": list(spec["labels"])}
        if spec.get("description"):
            prop["description"] = spec["description"]
        properties[name] = prop
    return {"type": "object", "properties": properties, "required": list(properties)}


def off_list(parsed: Mapping[str, Any], schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """Category fields whose value is not one of the labels: kept in the row, and flagged. For a
    multi-label field the flag is the list of its answers that are not labels."""
    flags: dict[str, Any] = {}
    for name, spec in ((schema or {}).get("fields") or {}).items():
        value = parsed.get(name)
        labels = spec.get("labels") or []
        if spec.get("type") == "category" and value is not None and value not in labels:
            flags[name] = value
        elif spec.get("type") == "categories" and value is not None:
            off = [v for v in value if v not in labels] if isinstance(value, list) else [value]
            if off:
                flags[name] = off
    return flags


def describe_flags(flags: Mapping[str, Any] | None, schema: Mapping[str, Any] | None) -> str | None:
    """One line for a row's flags, e.g. `sentiment: "meh" is not one of positive, negative`."""
    if not flags:
        return None
    fields = (schema or {}).get("fields") or {}
    parts = []
    for name, value in flags.items():
        labels = ", ".join(fields.get(name, {}).get("labels", []))
        if isinstance(value, list):
            shown = ", ".join(json.dumps(v, ensure_ascii=False) for v in value)
            parts.append(f"{name}: {shown} {'is' if len(value) == 1 else 'are'} not among {labels}")
        else:
            parts.append(f"{name}: {json.dumps(value, ensure_ascii=False)} is not one of {labels}")
    return "; ".join(parts)
