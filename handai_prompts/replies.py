"""What a reply means: JSON found in it, values coerced to their field's type, labels matched."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from handai_errors import ErrorKind, ReplyError

MAX_JSON_STARTS = 32


# -- what a reply means ------------------------------------------------------------------------
def is_blank(text: str | None) -> bool:
    """Only a truly empty reply is empty: "No", "4" and "OK" are answers."""
    return text is None or not text.strip()


FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


def _balanced(text: str, start: int) -> str | None:
    opener = text[start]
    closer = "}" if opener == "{" else "]"
    depth = 0
    in_string = False
    escaped = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == opener:
            depth += 1
        elif ch == closer:
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    return None


def extract_json(text: str) -> Any:
    """Strict, then forgiving: the whole text, a fenced block, then the first balanced object."""
    candidates = [text.strip(), *(m.group(1).strip() for m in FENCE.finditer(text))]
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except (ValueError, RecursionError):
            continue
    # Objects first, then arrays; a bounded number of starts keeps a degenerate reply (a model
    # stuck repeating "[") linear instead of quadratic.
    starts = [m.start() for m in itertools.islice(re.finditer(r"\{", text), MAX_JSON_STARTS)]
    starts += [m.start() for m in itertools.islice(re.finditer(r"\[", text), MAX_JSON_STARTS)]
    for start in starts:
        chunk = _balanced(text, start)
        if chunk is None:
            continue
        try:
            return json.loads(chunk)
        except (ValueError, RecursionError):
            continue
    raise ValueError("no JSON object found in the reply")


def coerce(value: Any, kind: str) -> Any:
    """Bring a value to its schema type where that is unambiguous; otherwise keep it."""
    if value is None:
        return None
    try:
        if kind == "integer":
            if isinstance(value, bool):
                return int(value)
            number = float(str(value).strip().replace(",", "")) if isinstance(value, str) else float(value)
            return int(number) if number.is_integer() else value
        if kind == "number":
            return float(str(value).strip().replace(",", "")) if isinstance(value, str) else float(value)
        if kind == "boolean":
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered in ("true", "yes", "1"):
                    return True
                if lowered in ("false", "no", "0"):
                    return False
                return value
            return bool(value)
        if kind == "string":
            return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if kind == "category":
            return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if kind == "array" and not isinstance(value, list):
            return [value]
    except (TypeError, ValueError, OverflowError):
        return value
    return value


def parse_reply(text: str | None, *, structured: bool, schema: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Reply text → values. Plain output → {"output": text}; structured → the JSON object's
    fields, coerced to the schema. Raises ReplyError (keeping the raw text) when unusable."""
    if is_blank(text):
        raise ReplyError(ErrorKind.EMPTY_REPLY, "The model returned an empty reply", raw=text)
    assert text is not None
    if not structured:
        return {"output": text.strip()}
    try:
        value = extract_json(text)
    except ValueError as exc:
        raise ReplyError(ErrorKind.UNPARSEABLE, "The reply is not valid JSON", raw=text) from exc
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        value = value[0]
    if not isinstance(value, dict):
        raise ReplyError(ErrorKind.UNPARSEABLE, "The reply is JSON but not an object", raw=text)
    fields: Mapping[str, Mapping[str, str]] = (schema or {}).get("fields", {})
    if not fields:
        return value
    parsed = {name: _field_value(value.get(name), spec) for name, spec in fields.items()}
    missing = [name for name in fields if name not in value]
    if len(missing) == len(fields):
        raise ReplyError(ErrorKind.UNPARSEABLE, "The reply has none of the expected fields", raw=text)
    extra = {k: v for k, v in value.items() if k not in fields}
    return parsed | extra


def _field_value(value: Any, spec: Mapping[str, Any]) -> Any:
    """Coerced to the field's type; a category answered in another case or with spaces around it
    is the label itself ("Positive " is "positive"), anything else stays as the model said it.
    A multi-label field is a list: a text reply ("a; b", "a, b") or a single label becomes one,
    each item brought to its label the same way, repeats dropped."""
    kind = spec.get("type", "string")
    value = coerce(value, kind)
    labels = spec.get("labels") or []
    if kind == "category" and isinstance(value, str):
        return label_for(value, labels)
    if kind == "categories" and value is not None:
        items = split_labels(value, labels) if isinstance(value, str) else value if isinstance(value, list) else [value]
        chosen = [label_for(v, labels) if isinstance(v, str) else v for v in items]
        unique = [v for i, v in enumerate(chosen) if v not in chosen[:i]]
        return [v for v in unique if not (isinstance(v, str) and not v.strip())]
    return value


def _label_key(text: str) -> str:
    return " ".join(text.split()).casefold()


def label_for(value: str, labels: Sequence[str]) -> str:
    """The label a reply means ("Positive " is "positive"), or the reply as the model said it."""
    wanted = _label_key(value)
    return next((label for label in labels if _label_key(label) == wanted), value)


def split_labels(text: str, labels: Sequence[str] = ()) -> list[str]:
    """A multi-label answer given as text: one label as is, else split on ";", newlines or ","."""
    if _label_key(text) in {_label_key(label) for label in labels}:
        return [text]
    separator = ";" if ";" in text else "\n" if "\n" in text else ","
    return [part.strip() for part in text.split(separator) if part.strip()]
