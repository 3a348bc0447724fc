"""Pure functions between a row and the model: what a row sends, and what a reply means.

No I/O here, so every rule (payloads, `{column}` templates, JSON extraction, schema coercion) can be
tested on its own and reused by the engine, the pages and the command line alike.

    messages    a row's payload or template, the system message, few-shot turns, token estimates
    schemas     output fields: as the user lists them, as the model is told, as JSON Schema; off-list answers
    replies     JSON found in a reply, values coerced to their field's type, labels matched
    generation  Generate's templates, cycling variables, prompts and duplicate flags
"""

from handai_errors import TemplateError

from .generation import (
    GENERATE_TEMPLATES,
    GenerateTemplate,
    flag_duplicates,
    generation_description,
    generation_prompts,
    generation_rows,
)
from .messages import (
    build_messages,
    clean_examples,
    clean_record,
    estimate_tokens,
    is_structured,
    labelled_template,
    render_template,
    row_payload,
    system_message,
    template_fields,
    user_message,
    validate_template,
)
from .replies import coerce, extract_json, is_blank, label_for, parse_reply, split_labels
from .schemas import FIELD_TYPES, LABELLED, describe_flags, json_schema, make_schema, off_list, schema_instruction

__all__ = [
    "FIELD_TYPES",
    "GENERATE_TEMPLATES",
    "LABELLED",
    "GenerateTemplate",
    "TemplateError",
    "build_messages",
    "clean_examples",
    "clean_record",
    "coerce",
    "describe_flags",
    "estimate_tokens",
    "extract_json",
    "flag_duplicates",
    "generation_description",
    "generation_prompts",
    "generation_rows",
    "is_blank",
    "is_structured",
    "json_schema",
    "label_for",
    "labelled_template",
    "make_schema",
    "off_list",
    "parse_reply",
    "render_template",
    "row_payload",
    "schema_instruction",
    "split_labels",
    "system_message",
    "template_fields",
    "user_message",
    "validate_template",
]
