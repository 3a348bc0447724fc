"""What a cell answered, as text a person and a judge read, and as a key two answers can be
compared by: agreement is decided on the answer's content, not on spacing or letter case."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any


def answer_value(parsed: Mapping[str, Any] | None) -> Any:
    """A free-text answer's text, or a structured answer's fields."""
    if not parsed:
        return None
    if set(parsed) == {"output"}:
        return parsed["output"]
    return dict(parsed)


def answer_text(parsed: Mapping[str, Any] | None) -> str:
    value = answer_value(parsed)
    if value is None:
        return ""
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def answer_key(parsed: Mapping[str, Any] | None, fields: Sequence[str] = ()) -> str | None:
    """Two answers agree when their keys are equal: text stripped and case-folded; a structured
    answer by `fields` (all of its fields when none are named)."""
    value = answer_value(parsed)
    if value is None:
        return None
    if isinstance(value, dict):
        keys = list(fields) or sorted(value)
        return json.dumps([_norm(value.get(k)) for k in keys], ensure_ascii=False)
    return _norm(value)


def all_agree(answers: Sequence[Mapping[str, Any] | None], fields: Sequence[str] = ()) -> bool:
    keys = [answer_key(a, fields) for a in answers]
    return bool(keys) and None not in keys and len(set(keys)) == 1


def _norm(value: Any) -> Any:
    if isinstance(value, str):
        return " ".join(value.split()).casefold()
    if isinstance(value, list):
        return sorted(_norm(v) for v in value)
    return value
