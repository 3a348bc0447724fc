"""What the fake LLM server's models answer: pure functions of the request (model, system prompt,
last user message, response format), so a test can compute the expected answer itself.

The rules are documented for users in tests/fake_llm_server.py's docstring (the server's --help);
this module is them in code: the per-request markers' pattern, [[pick:…]], the baseline reply, and
how *-alt* and *contrarian* models depart from it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from typing import Any

DEFAULT_MODELS = ["fake-small", "fake-large", "gpt-4o-mini", "o3-mini", "fake-alt", "fake-contrarian"]

MARKER = re.compile(r"\[\[(\w+)(?::([\w.]+))?\]\]")
PICK = re.compile(r"\[\[pick:(?:([^\]=\s]+)=)?([^\]]+)\]\]")


def markers_in(user: str) -> dict[str, str | None]:
    """The [[name]] / [[name:value]] markers of a user message, by name."""
    return {m.group(1): m.group(2) for m in MARKER.finditer(user)}


def tokens(text: str) -> int:
    """A token count close enough for usage figures: four characters a token, at least one."""
    return max(1, len(text) // 4)


def digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def odd_third(user: str) -> bool:
    """The rows (about a third, fixed by the message text) on which *-alt* models disagree."""
    return int(hashlib.sha1(user.encode()).hexdigest()[:8], 16) % 3 == 0


def disagrees(model: str, user: str) -> bool:
    """Whether this model's enum value and text reply depart from the baseline for this message."""
    return "contrarian" in model or ("-alt" in model and odd_third(user))


def picked(model: str, user: str) -> str | None:
    """The answer a [[pick:model=value]] (or [[pick:value]]) marker forces on this model, if any."""
    for match in PICK.finditer(user):
        if match.group(1) in (None, model):
            return match.group(2)
    return None


def text_reply(model: str, user: str) -> str:
    if "contrarian" in model:
        return f"Contrary reply to: {user}"
    return f"Alt reply to: {user}" if disagrees(model, user) else f"Reply to: {user}"


def json_reply(system: str, user: str, response_format: dict[str, Any] | None, model: str = "") -> dict[str, Any]:
    """A JSON reply shaped by the schema in the request: json_schema properties, or the first JSON
    object shown in the system prompt (Handai shows the expected shape there). Enum values and
    string fields depend on the model (see the server's docstring)."""
    forced = picked(model, user)
    schema: dict[str, Any] | None = None
    if response_format and response_format.get("type") == "json_schema":
        props = response_format.get("json_schema", {}).get("schema", {}).get("properties", {})
        enums = {k: v["enum"] for k, v in props.items() if v.get("enum")}
        lists = {k: v["items"]["enum"] for k, v in props.items() if (v.get("items") or {}).get("enum")}
        schema = {k: v.get("type", "string") for k, v in props.items()}
        if enums or lists:  # a schema that lists the allowed values gets them, as a real provider's does
            reply = {key: _value_for(kind, key, user, i, model) for i, (key, kind) in enumerate(schema.items())}
            shift = 1 if disagrees(model, user) else 0
            reply |= {k: forced or v[(len(user) + shift) % len(v)] for k, v in enums.items()}
            return reply | {k: _forced_list(forced) or _enum_list(v, user, shift) for k, v in lists.items()}
    if not schema:
        schema = _first_json_object(system)
    if not schema:
        return {"answer": forced or text_reply(model, user), "length": len(user)}
    reply = {key: _value_for(kind, key, user, i, model) for i, (key, kind) in enumerate(schema.items())}
    if forced:
        reply = {
            k: forced if isinstance(v, str) else _forced_list(forced) if isinstance(v, list) else v
            for k, v in reply.items()
        }
    return reply


def _first_json_object(text: str) -> dict[str, Any] | None:
    """The first balanced {...} in text that parses as a JSON object (the schema the prompt shows)."""
    start = text.find("{")
    while start != -1:
        depth = 0
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    with contextlib.suppress(ValueError):
                        value = json.loads(text[start : i + 1])
                        if isinstance(value, dict):
                            return value
                    break
        start = text.find("{", start + 1)
    return None


def _value_for(kind: Any, key: str, user: str, index: int, model: str = "") -> Any:
    kind = str(kind).lower()
    if "int" in kind:
        return len(user) + index
    if "number" in kind or "float" in kind:
        return round(len(user) / 7 + index, 2)
    if "bool" in kind:
        return len(user) % 2 == 0
    if "array" in kind or "list" in kind:
        return [f"{key}-{digest(user)}"]
    if "contrarian" in model:
        return f"{key} (contrary) of {user[:60]}"
    return f"{key} (alt) of {user[:60]}" if disagrees(model, user) else f"{key} of {user[:60]}"


def _enum_list(labels: list[str], user: str, shift: int) -> list[str]:
    """A multi-label answer: one allowed value, two when the message's length is even."""
    first = (len(user) + shift) % len(labels)
    if len(labels) > 1 and len(user) % 2 == 0:
        return [labels[first], labels[(first + 1) % len(labels)]]
    return [labels[first]]


def _forced_list(forced: str | None) -> list[str] | None:
    return [part.strip() for part in forced.split(";") if part.strip()] if forced else None
