"""A codebook as data (DESIGN "The research wing"): codes with definitions, inclusion and
exclusion criteria and examples, turned by pure functions into the coder's output schema (an
enum, or a list of enums for multi-label) and into the coder's instruction. A version is stored
as `Codebook.record()`; the same codebook travels as CSV, JSON, Markdown or REFI-QDA
(`codebook_io`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from handai_prompts import make_schema

CODE_FIELD = "code"  # single-label: the one code chosen
CODES_FIELD = "codes"  # multi-label: every code that applies
RATIONALE_FIELD = "rationale"
EVIDENCE_FIELD = "evidence"
FRAME_COLUMNS = ("name", "definition", "inclusion", "exclusion", "examples", "parent")


class CodebookError(ValueError):
    """A codebook that cannot be used or read; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class Code:
    name: str
    definition: str = ""
    inclusion: str = ""
    exclusion: str = ""
    examples: tuple[str, ...] = ()
    parent: str | None = None

    def record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "definition": self.definition,
            "inclusion": self.inclusion,
            "exclusion": self.exclusion,
            "examples": list(self.examples),
            "parent": self.parent,
        }

    @classmethod
    def from_record(cls, d: Mapping[str, Any]) -> Code:
        examples = d.get("examples") or ()
        if isinstance(examples, str):
            examples = split_examples(examples)
        return cls(
            name=_text(d.get("name")),
            definition=_text(d.get("definition")),
            inclusion=_text(d.get("inclusion")),
            exclusion=_text(d.get("exclusion")),
            examples=tuple(_text(e) for e in examples if _text(e)),
            parent=_text(d.get("parent")) or None,
        )


@dataclass(frozen=True)
class Codebook:
    name: str
    codes: tuple[Code, ...]
    multi_label: bool = False
    none_code: str | None = "none"  # a label for "no code applies"; None = the coder must pick a code
    description: str = ""

    def labels(self) -> list[str]:
        """The answers a coder may give: every code's name, then the none code."""
        names = [c.name for c in self.codes]
        return [*names, self.none_code] if self.none_code else names

    def code(self, name: str) -> Code | None:
        return next((c for c in self.codes if c.name == name), None)

    def problems(self) -> list[str]:
        """Everything that makes the codebook unusable, each said so a person can fix it."""
        found: list[str] = []
        if not self.codes:
            found.append("The codebook has no codes; add at least one.")
        seen: dict[str, str] = {}
        for i, c in enumerate(self.codes, 1):
            if not c.name.strip():
                found.append(f"Code {i} has no name.")
                continue
            key = _key(c.name)
            if key in seen:
                found.append(f"'{c.name}' and '{seen[key]}' are the same name (case and spaces aside); rename one.")
            seen.setdefault(key, c.name)
        for c in self.codes:
            if c.parent and _key(c.parent) not in seen:
                found.append(f"'{c.name}' has parent '{c.parent}', which is not a code in this codebook.")
        found += [f"Parents go round in a circle: {' → '.join(loop)}." for loop in _cycles(self.codes)]
        if self.none_code is not None:
            if not self.none_code.strip():
                found.append("The 'none' option has no name; name it (e.g. none) or turn it off.")
            elif _key(self.none_code) in seen:
                found.append(
                    f"The 'none' option '{self.none_code}' is also a code's name; rename one or turn the option off."
                )
        return found

    def check(self) -> Codebook:
        """The codebook itself, or CodebookError listing every problem."""
        found = self.problems()
        if found:
            raise CodebookError(" ".join(found))
        return self

    # -- the stored record ----------------------------------------------------------------------
    def record(self) -> dict[str, Any]:
        """JSON-safe: what the database stores for a version and a run's plan records."""
        return {
            "name": self.name,
            "description": self.description,
            "multi_label": self.multi_label,
            "none_code": self.none_code,
            "codes": [c.record() for c in self.codes],
        }

    @classmethod
    def from_record(cls, d: Mapping[str, Any]) -> Codebook:
        if not isinstance(d, Mapping) or not isinstance(d.get("codes", []), list):
            raise CodebookError("A codebook record is an object with a list of codes under 'codes'.")
        codes = []
        for i, c in enumerate(d.get("codes") or [], 1):
            if isinstance(c, str):
                c = {"name": c}
            if not isinstance(c, Mapping):
                raise CodebookError(f"Code {i} is not an object with a name; give each code as {{'name': ...}}.")
            codes.append(Code.from_record(c))
        none_code = d.get("none_code", "none")
        return cls(
            name=_text(d.get("name")) or "Codebook",
            codes=tuple(codes),
            multi_label=bool(d.get("multi_label", False)),
            none_code=None if none_code is None else _text(none_code),
            description=_text(d.get("description")),
        )

    # -- what the coder is asked --------------------------------------------------------------
    def output_schema(self, *, rationale: bool = True, evidence: bool = True) -> dict[str, Any]:
        """The coder's answer in handai_prompts' schema form: the code (an enum of the labels) or
        the codes (a list of them), then optionally a rationale and the evidence quoted."""
        labels = self.labels()
        if self.multi_label:
            rows = [
                {
                    "name": CODES_FIELD,
                    "type": "categories",
                    "labels": labels,
                    "description": "Every code that applies to the text.",
                }
            ]
        else:
            rows = [
                {"name": CODE_FIELD, "type": "category", "labels": labels, "description": "The one code that applies."}
            ]
        if rationale:
            rows.append({"name": RATIONALE_FIELD, "type": "string", "description": "Why, in one or two sentences."})
        if evidence:
            if self.multi_label:
                rows.append(
                    {
                        "name": EVIDENCE_FIELD,
                        "type": "object",
                        "description": "For each chosen code, a short quote copied word for word from the text.",
                    }
                )
            else:
                rows.append(
                    {
                        "name": EVIDENCE_FIELD,
                        "type": "string",
                        "description": "A short quote copied word for word from the text that supports the code.",
                    }
                )
        return make_schema(rows)

    def instruction(self, task: str = "") -> str:
        """The coder's instruction: the task, the codebook, the rules."""
        parts = [task.strip()] if task.strip() else []
        parts.append(
            f'Code the text using the codebook "{self.name}".' if self.name else "Code the text using this codebook."
        )
        if self.description.strip():
            parts.append(self.description.strip())
        parts.append("Codes:\n\n" + "\n\n".join(_render_code(c) for c in self.codes))
        rules = []
        if self.multi_label:
            rules.append("Choose every code that applies to the text (one or more).")
        else:
            rules.append("Choose the one code that fits the text best.")
        if self.none_code:
            rules.append(f'If no code applies, answer "{self.none_code}" and nothing else.')
        names = ", ".join(json.dumps(label, ensure_ascii=False) for label in self.labels())
        rules.append(f"Use only these codes, spelled exactly as given: {names}. Do not invent new codes.")
        parts.append("Rules:\n" + "\n".join(f"- {r}" for r in rules))
        return "\n\n".join(parts)

    # -- the table editor ---------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """One row per code, examples one per line, for an editable table."""
        rows = [{**c.record(), "examples": "\n".join(c.examples), "parent": c.parent or ""} for c in self.codes]
        return pd.DataFrame(rows, columns=list(FRAME_COLUMNS))

    @classmethod
    def from_frame(cls, df: pd.DataFrame, *, like: Codebook | None = None, name: str = "Codebook") -> Codebook:
        """The table editor's rows back as a codebook (rows without a name are skipped); `like`
        keeps another codebook's name and settings."""
        codes = []
        for row in df.to_dict("records"):
            cells = {k: _text(row.get(k)) for k in FRAME_COLUMNS}
            if not cells["name"]:
                continue
            codes.append(Code.from_record(cells))
        base = like or cls(name, ())
        return replace(base, codes=tuple(codes))


def code_field(codebook: Codebook) -> str:
    """The answer's field name: `codes` for a multi-label codebook, else `code`."""
    return CODES_FIELD if codebook.multi_label else CODE_FIELD


def split_examples(text: str) -> list[str]:
    """Examples typed in one cell: one per line, or separated by " | "."""
    lines = text.splitlines() if "\n" in text else text.split(" | ")
    return [line.strip() for line in lines if line.strip()]


def _render_code(c: Code) -> str:
    lines = [f"- {c.name}" + (f" (a kind of {c.parent})" if c.parent else "")]
    for label, text in (("Definition", c.definition), ("Include when", c.inclusion), ("Exclude when", c.exclusion)):
        if text.strip():
            lines.append(f"  {label}: {_one_block(text)}")
    if c.examples:
        lines.append("  Examples: " + "; ".join(json.dumps(e, ensure_ascii=False) for e in c.examples))
    return "\n".join(lines)


def _one_block(text: str) -> str:
    return "\n    ".join(line.strip() for line in text.strip().splitlines() if line.strip())


def _cycles(codes: Sequence[Code]) -> list[list[str]]:
    parent = {_key(c.name): c.parent for c in codes if c.name.strip()}
    name = {_key(c.name): c.name for c in codes if c.name.strip()}
    loops: list[list[str]] = []
    reported: set[str] = set()
    for start in parent:
        path: list[str] = []
        node: str | None = start
        while node is not None and node in parent and node not in path:
            path.append(node)
            up = parent[node]
            node = _key(up) if up else None
        if node is not None and node in path:
            loop = path[path.index(node) :]
            if not reported & set(loop):
                reported.update(loop)
                loops.append([name[k] for k in [*loop, node]])
    return loops


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


def _text(value: Any) -> str:
    if value is None:
        return ""
    try:
        if value != value:  # NaN from a table
            return ""
    except (TypeError, ValueError):
        pass
    return str(value).strip()
