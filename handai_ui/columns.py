"""Columns with a description (a survey question's full text): their label in the column picker,
and the row template that sends each value labelled with its question."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from handai_prompts import TemplateError, template_fields, validate_template

from .text import clip

LABEL_CHARS = 70


def column_label(column: str, descriptions: Mapping[str, str]) -> str:
    """ "Q7 — How satisfied are you with…" for a described column, else the name (plain text)."""
    description = " ".join(descriptions.get(column, "").split())
    return f"{column} — {clip(description, LABEL_CHARS)}" if description and description != column else column


def labelled_template(columns: Sequence[str], descriptions: Mapping[str, str]) -> str:
    """A row template with one line per column, "question text (column): {column}", so the model
    reads each value with its question. Raises TemplateError for a column name a template
    placeholder cannot hold."""
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
