"""The codebook generator's planning and parsing: the engine runs two small runs, this module
says what they send and reads back what they answered.

1. themes       one row per chunk of texts: the themes each chunk expresses (inductive), where
                given themes show up (deductive), or both (hybrid), with quotes as examples
2. consolidate  one row holding every chunk's themes: merged into a draft codebook of codes
                with definitions, inclusion/exclusion criteria and examples

Modes: `inductive` discovers themes and keeps up to N codes; `deductive` keeps exactly the given
themes and writes their definitions, criteria and examples from the texts; `hybrid` keeps the
given themes and adds new ones, up to N codes in all. The draft is a starting point a person
edits; nothing here decides what the codes are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from handai_engine import Plan, PlanError, Step

from .arms import make_arms
from .codebook import Code, Codebook, CodebookError, split_examples

MODES = ("inductive", "deductive", "hybrid")
THEMES_STEP, CONSOLIDATE_STEP = "themes", "consolidate"
THEMES_FIELD, CODES_FIELD = "themes", "codes"
CUT = "[… cut: {n} more characters]"
MAX_NAME = 80

THEMES_TASK = {
    "inductive": "Read the numbered texts below and identify the themes they express: recurring ideas, "
    "experiences, concerns or reasons. Give each theme a short name, a one-sentence description, and up "
    "to three short quotes copied word for word from the texts.",
    "deductive": "Read the numbered texts below and find where each of these given themes is expressed: "
    "{seeds}. For each given theme that appears, give its name exactly as given, a one-sentence "
    "description of how it shows up in these texts, and up to three short quotes copied word for word "
    "from the texts. Do not add other themes.",
    "hybrid": "Read the numbered texts below. Find where each of these given themes is expressed: "
    "{seeds}; and identify any other themes the texts express that the given ones miss. For each theme "
    "give a short name (given themes exactly as given), a one-sentence description, and up to three "
    "short quotes copied word for word from the texts.",
}
CONSOLIDATE_TASK = {
    "inductive": "Below are themes found in separate chunks of the same collection of texts. Merge "
    "themes that mean the same thing and write a codebook of at most {n} codes that together cover "
    "the texts.",
    "deductive": "Below are the given themes as they were found in separate chunks of the same "
    "collection of texts. Write a codebook with exactly these codes, in this order and named exactly "
    "so: {seeds}. Add no other code.",
    "hybrid": "Below are themes found in separate chunks of the same collection of texts. Write a "
    "codebook that keeps every one of these given codes, named exactly so: {seeds}; and adds the new "
    "themes worth coding, merging those that mean the same thing, up to {n} codes in all.",
}
CODE_RULES = (
    "For every code give: a short name; a definition (one or two sentences); inclusion criteria (when "
    "to apply it); exclusion criteria (when not to, especially against similar codes); and two or "
    "three examples, quoted word for word from the themes' quotes. Codes must be distinct from each "
    "other. {label_rule}"
)


def chunk_rows(texts: Sequence[str], *, max_chars: int = 8000, max_texts: int = 40) -> list[dict[str, Any]]:
    """The texts as numbered chunks of at most `max_chars` characters and `max_texts` texts (one
    row each); a text longer than `max_chars` is cut, and says so. Blank texts are left out but
    keep their number, so a quote can be traced to its text."""
    if max_chars < 200 or max_texts < 1:
        raise PlanError("A chunk needs at least 200 characters and one text.")
    rows: list[dict[str, Any]] = []
    current: list[str] = []
    size = 0
    for number, text in enumerate(texts, 1):
        text = "" if text is None else str(text).strip()
        if not text:
            continue
        label = f"[{number}] "
        entry = label + _cut(text, max_chars - len(label))
        if current and (size + len(entry) + 2 > max_chars or len(current) >= max_texts):
            rows.append(_chunk(len(rows) + 1, current))
            current, size = [], 0
        current.append(entry)
        size += len(entry) + 2
    if current:
        rows.append(_chunk(len(rows) + 1, current))
    return rows


def _cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    keep = max_chars - len(CUT.format(n=len(text))) - 1
    return f"{text[:keep]} {CUT.format(n=len(text) - keep)}"


def _chunk(number: int, entries: list[str]) -> dict[str, Any]:
    return {"chunk": number, "texts": "\n\n".join(entries), "n_texts": len(entries)}


def _seeds(mode: str, seeds: Sequence[str]) -> list[str]:
    if mode not in MODES:
        raise PlanError(f"Unknown mode '{mode}'; use one of {', '.join(MODES)}.")
    clean = list(dict.fromkeys(s.strip() for s in seeds if s and s.strip()))
    if mode in ("deductive", "hybrid") and not clean:
        raise PlanError(f"The {mode} mode starts from given themes; list at least one.")
    return clean


def _focus(focus: str) -> str:
    return f"\n\nResearch focus: {focus.strip()}" if focus.strip() else ""


def themes_plan(
    model: tuple[str, str],
    *,
    mode: str,
    seeds: Sequence[str] = (),
    focus: str = "",
    temperature: float | None = None,
    max_tokens: int | None = None,
    endpoints: dict[str, dict[str, Any]] | None = None,
) -> Plan:
    """Run 1: one call per chunk row (`chunk_rows`), answering {"themes": [...]}."""
    given = _seeds(mode, seeds)
    instruction = THEMES_TASK[mode].format(seeds=_quoted(given)) + _focus(focus)
    schema = {
        "fields": {
            THEMES_FIELD: {
                "type": "array",
                "description": 'A list of objects: {"name": "...", "description": "...", "examples": ["quote", ...]}.',
            }
        }
    }
    arms = make_arms([model], endpoints=endpoints, temperature=temperature, max_tokens=max_tokens)
    step = Step(THEMES_STEP, instruction, (arms[0].name,), row_template="Texts:\n\n{texts}", output_schema=schema)
    return Plan("codebook_themes", tuple(arms), (step,))


def consolidation_rows(theme_outputs: Sequence[Mapping[str, Any] | None]) -> list[dict[str, Any]]:
    """Run 2's one row: every chunk's themes as text (chunks that failed are left out)."""
    blocks = []
    for number, parsed in enumerate(theme_outputs, 1):
        themes = [_theme_line(t) for t in _items(parsed, THEMES_FIELD, CODES_FIELD)]
        themes = [t for t in themes if t]
        if themes:
            blocks.append(f"Chunk {number}:\n" + "\n".join(themes))
    if not blocks:
        raise CodebookError(
            "No chunk returned any themes, so there is nothing to consolidate; check the first run's errors "
            "and run it again (or with another model)."
        )
    return [{"themes": "\n\n".join(blocks), "n_chunks": len(blocks)}]


def _theme_line(theme: Any) -> str:
    if isinstance(theme, str):
        return f"- {theme.strip()}" if theme.strip() else ""
    if not isinstance(theme, Mapping):
        return ""
    name = _first(theme, "name", "theme", "code", "label", "title")
    if not name:
        return ""
    line = f"- {name}"
    if description := _first(theme, "description", "definition", "meaning"):
        line += f": {description}"
    quotes = _examples(theme)
    if quotes:
        line += " (quotes: " + "; ".join(json.dumps(q, ensure_ascii=False) for q in quotes) + ")"
    return line


def consolidate_plan(
    model: tuple[str, str],
    *,
    mode: str,
    n_codes: int = 8,
    seeds: Sequence[str] = (),
    multi_label: bool = False,
    focus: str = "",
    temperature: float | None = None,
    max_tokens: int | None = None,
    endpoints: dict[str, dict[str, Any]] | None = None,
) -> Plan:
    """Run 2: the one consolidation row (`consolidation_rows`), answering {"codes": [...]}."""
    given = _seeds(mode, seeds)
    if not 1 <= n_codes <= 50:
        raise PlanError("Ask for 1 to 50 codes.")
    label_rule = (
        "A text may get several codes, so codes may overlap in scope."
        if multi_label
        else "Each text gets exactly one code, so the codes must not overlap."
    )
    instruction = (
        CONSOLIDATE_TASK[mode].format(n=max(n_codes, len(given)), seeds=_quoted(given))
        + "\n\n"
        + CODE_RULES.format(label_rule=label_rule)
        + _focus(focus)
    )
    schema = {
        "fields": {
            CODES_FIELD: {
                "type": "array",
                "description": 'A list of objects: {"name": "...", "definition": "...", "inclusion": "...", '
                '"exclusion": "...", "examples": ["quote", ...]}.',
            }
        }
    }
    arms = make_arms([model], endpoints=endpoints, temperature=temperature, max_tokens=max_tokens)
    step = Step(
        CONSOLIDATE_STEP, instruction, (arms[0].name,), row_template="Themes:\n\n{themes}", output_schema=schema
    )
    return Plan("codebook_consolidate", tuple(arms), (step,))


def draft_codebook(
    parsed: Mapping[str, Any] | None,
    *,
    name: str,
    multi_label: bool,
    mode: str = "inductive",
    seeds: Sequence[str] = (),
) -> Codebook:
    """The consolidation's answer as a draft codebook, read tolerantly (codes under "codes",
    "themes" or "codebook"; strings for names or examples; missing fields left empty). Deductive
    keeps exactly the seeds (those the model left out are added, to be defined by a person);
    hybrid keeps every seed plus the model's new codes."""
    given = _seeds(mode, seeds)
    codes: list[Code] = []
    seen: set[str] = set()
    for item in _items(parsed, CODES_FIELD, THEMES_FIELD):
        code = _code(item)
        if code is not None and _key(code.name) not in seen:
            seen.add(_key(code.name))
            codes.append(code)
    if given:
        by_key = {_key(c.name): c for c in codes}
        kept = [by_key.get(_key(s)) or Code(s) for s in given]
        kept = [Code(s, c.definition, c.inclusion, c.exclusion, c.examples) for s, c in zip(given, kept, strict=True)]
        extra = [c for c in codes if _key(c.name) not in {_key(s) for s in given}]
        codes = kept if mode == "deductive" else [*kept, *extra]
    if not codes:
        raise CodebookError(
            "The model's reply holds no codes (expected a list of codes with a name each); run the "
            "consolidation again, try another model, or write the codes yourself."
        )
    return Codebook(name or "Draft codebook", tuple(codes), multi_label=multi_label)


def _items(parsed: Any, *keys: str) -> list[Any]:
    """The list of themes or codes in an answer, wherever the model put it."""
    if isinstance(parsed, list):
        return parsed
    if not isinstance(parsed, Mapping):
        return []
    for key in (*keys, "codebook", "items"):
        value = parsed.get(key)
        if isinstance(value, Mapping):
            value = _items(value, *keys)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = [value]
        if isinstance(value, list) and value:
            return value
    return []


def _code(item: Any) -> Code | None:
    if isinstance(item, str):
        return Code(item.strip()[:MAX_NAME]) if item.strip() else None
    if not isinstance(item, Mapping):
        return None
    name = _first(item, "name", "code", "theme", "label", "title")
    if not name:
        return None
    return Code(
        name[:MAX_NAME],
        definition=_first(item, "definition", "description", "meaning"),
        inclusion=_first(item, "inclusion", "include", "inclusion_criteria", "when_to_use"),
        exclusion=_first(item, "exclusion", "exclude", "exclusion_criteria", "when_not_to_use"),
        examples=tuple(_examples(item)),
    )


def _first(item: Mapping[str, Any], *keys: str) -> str:
    for key in keys:
        value = item.get(key)
        if isinstance(value, list):
            value = "; ".join(str(v) for v in value if v is not None)
        if value is not None and str(value).strip():
            return str(value).strip()
    return ""


def _examples(item: Mapping[str, Any]) -> list[str]:
    value = next((item[k] for k in ("examples", "example", "quotes", "quote") if item.get(k)), [])
    if isinstance(value, str):
        return split_examples(value)
    if isinstance(value, list):
        return [str(v).strip() for v in value if v is not None and str(v).strip()]
    return [str(value)]


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(json.dumps(n, ensure_ascii=False) for n in names)


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()
