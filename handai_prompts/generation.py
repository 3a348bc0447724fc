"""Generating a dataset: the ready-made templates, the cycling variables, the prompts and duplicates."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .schemas import make_schema


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
