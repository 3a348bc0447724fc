"""Columns with a description (a survey question's full text): their label in the column picker.
The row template that sends each value labelled with its question is `handai_prompts.labelled_template`
(the command line uses it too); it is named here as well for the pages."""

from __future__ import annotations

from collections.abc import Mapping

from handai_prompts import labelled_template

from .text import clip

__all__ = ["column_label", "labelled_template"]

LABEL_CHARS = 70


def column_label(column: str, descriptions: Mapping[str, str]) -> str:
    """ "Q7 — How satisfied are you with…" for a described column, else the name (plain text)."""
    description = " ".join(descriptions.get(column, "").split())
    return f"{column} — {clip(description, LABEL_CHARS)}" if description and description != column else column
