"""Pure functions between a row and the model: what a row sends, and what a reply means.

No I/O here, so every rule (payloads, `{column}` templates, JSON extraction, schema coercion) can be
tested on its own and reused by the engine, the pages and the command line alike.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from handai_errors import ErrorKind, ReplyError

MAX_JSON_STARTS = 32
FIELD_TYPES = ("string", "integer", "number", "boolean", "array", "object", "category", "categories")
LABELLED = ("category", "categories")  # one label, or a list of labels (multi-label coding)
# One pass over a template: `{{` and `}}` are literal braces, `{name}` is a column's value.
TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}\"'\n:]+)\}")


class TemplateError(ValueError):
    """A `{column}` template names a column the data does not have."""


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


# -- generation --------------------------------------------------------------------------------
@dataclass(frozen=True)
class GenerateTemplate:
    title: str
    description: str
    fields: tuple[tuple[str, str, str], ...]  # (name, type, description)

    def schema(self) -> dict[str, Any]:
        return make_schema([{"name": n, "type": t, "description": d} for n, t, d in self.fields])


GENERATE_TEMPLATES: dict[str, GenerateTemplate] = {
    "qa_pairs": GenerateTemplate(
        "Q&A pairs",
        "Question and answer pairs for a knowledge-base or tutoring dataset.",
        (
            ("question", "string", "a clear, self-contained question"),
            ("answer", "string", "a correct, concise answer"),
        ),
    ),
    "product_reviews": GenerateTemplate(
        "Product reviews",
        "Realistic customer reviews of consumer products, with varied tone and length.",
        (
            ("product", "string", "the product reviewed"),
            ("rating", "integer", "stars from 1 to 5"),
            ("review", "string", "the review text"),
        ),
    ),
    "support_tickets": GenerateTemplate(
        "Support tickets",
        "Customer support tickets for a software company.",
        (
            ("subject", "string", "ticket subject line"),
            ("body", "string", "the customer's message"),
            ("category", "string", "billing, bug, account, or feature request"),
            ("priority", "string", "low, medium or high"),
        ),
    ),
    "text_classification": GenerateTemplate(
        "Text classification",
        "Short texts with a label, for training or testing a classifier.",
        (("text", "string", "a short text"), ("label", "string", "its category")),
    ),
    "instruction_response": GenerateTemplate(
        "Instruction–response",
        "Instruction-following examples for fine-tuning an assistant.",
        (
            ("instruction", "string", "a task for an assistant"),
            ("response", "string", "a high-quality response"),
        ),
    ),
    "code_snippets": GenerateTemplate(
        "Code snippets",
        "Small, correct code snippets with a description of what they do.",
        (
            ("language", "string", "programming language"),
            ("description", "string", "what the code does"),
            ("code", "string", "the code"),
        ),
    ),
    "survey_responses": GenerateTemplate(
        "Survey responses",
        "Open-ended answers to a customer satisfaction survey from varied respondents.",
        (
            ("respondent_age", "integer", "age in years"),
            ("satisfaction", "integer", "1 (very unhappy) to 5 (very happy)"),
            ("comment", "string", "the open-ended answer"),
        ),
    ),
    "interview_excerpts": GenerateTemplate(
        "Interview excerpts",
        "Excerpts from qualitative research interviews.",
        (
            ("speaker_role", "string", "the interviewee's role"),
            ("question", "string", "the interviewer's question"),
            ("excerpt", "string", "the interviewee's answer, in their own words"),
        ),
    ),
}


def generation_rows(count: int, variables: Mapping[str, Sequence[str]] | None = None) -> list[dict[str, Any]]:
    """One ledger row per generated record; each variable's values cycle row by row."""
    variables = {k: [v for v in vs if str(v).strip()] for k, vs in (variables or {}).items()}
    variables = {k: vs for k, vs in variables.items() if vs}
    cycles = {k: itertools.cycle(vs) for k, vs in variables.items()}
    return [{"row": i + 1, **{k: next(c) for k, c in cycles.items()}} for i in range(count)]


GENERATE_HEAD = "You generate synthetic data records for a dataset.\nDataset description: "
GENERATE_TAIL = "\nEach reply is exactly one new record, different from the others; be varied and realistic."


def generation_prompts(description: str, count: int, variables: Sequence[str] = ()) -> tuple[str, str]:
    """(system prompt, per-row user template) for generating `count` records."""
    system = GENERATE_HEAD + description.strip() + GENERATE_TAIL
    user = f"Write record {{row}} of {count}."
    if variables:
        user += " " + " ".join(f"{name}: {{{name}}}." for name in variables)
    return system, user


def generation_description(system_prompt: str) -> str | None:
    """The description a Generate system prompt was made from (`generation_prompts` inverted), so
    a run's description is read from what it sent, edits included; None for any other prompt."""
    if system_prompt.startswith(GENERATE_HEAD) and system_prompt.endswith(GENERATE_TAIL):
        return system_prompt[len(GENERATE_HEAD) : -len(GENERATE_TAIL)]
    return None


def flag_duplicates(records: Sequence[Mapping[str, Any]]) -> list[bool]:
    """True for every record whose values repeat an earlier record (case and spacing ignored)."""
    seen: set[str] = set()
    flags = []
    for record in records:
        key = json.dumps({k: str(v).strip().lower() for k, v in record.items()}, sort_keys=True)
        flags.append(key in seen)
        seen.add(key)
    return flags
