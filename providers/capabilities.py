"""Which request parameters a model accepts, by provider and model family.

A wrong parameter is a 400 on every row (reasoning models reject `temperature` and `max_tokens`;
LM Studio rejects `json_object`), so the engine asks here instead of sending and hoping. Families
are matched on the model name's leading token, never by substring: "gpt-4o" is not an o-series
model and "llama-3-o1-foo" is not o1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# OpenAI o-series (o1, o3-mini, o4-mini, o3-pro...) and the gpt-5 family (gpt-5, gpt-5-mini, gpt-5.1...).
_REASONING = re.compile(r"^(?:o\d+|gpt-5(?:\.\d+)?)(?:-|$)")
# The first reasoning models accepted no response_format at all.
_NO_JSON_MODE = re.compile(r"^o1-(?:mini|preview)(?:-|$)")
# Anthropic's OpenAI-compatible endpoint ignores response_format; LM Studio answers 400 to json_object
# (it takes only json_schema). Both still get JSON by instruction, parsed by handai_prompts.
_PROVIDERS_WITHOUT_JSON_MODE = frozenset({"anthropic", "lmstudio"})
# Providers that enforce a JSON Schema in `response_format` (OpenAI's structured outputs).
_PROVIDERS_WITH_JSON_SCHEMA = frozenset({"openai", "azure"})
# Anthropic's Messages API requires a token limit on every request.
_REQUIRED_MAX_TOKENS = {"anthropic": 4096}


@dataclass(frozen=True)
class ModelCapabilities:
    reasoning: bool
    supports_temperature: bool
    supports_json_mode: bool
    supports_json_schema: bool
    token_param: str  # "max_tokens" or "max_completion_tokens"


def _bare_name(model: str) -> str:
    """The bare model name: without vendor prefixes ("openai/o3-mini"), OpenRouter variants
    (":free") or Ollama tags (":7b"), lower-cased."""
    return model.strip().rsplit("/", 1)[-1].split(":", 1)[0].lower()


def capabilities(provider_id: str, model: str) -> ModelCapabilities:
    name = _bare_name(model)
    reasoning = bool(_REASONING.match(name))
    json_mode = provider_id not in _PROVIDERS_WITHOUT_JSON_MODE and not _NO_JSON_MODE.match(name)
    return ModelCapabilities(
        reasoning=reasoning,
        supports_temperature=not reasoning,
        supports_json_mode=json_mode,
        supports_json_schema=json_mode and provider_id in _PROVIDERS_WITH_JSON_SCHEMA,
        token_param="max_completion_tokens" if reasoning else "max_tokens",
    )


def request_params(
    provider_id: str,
    model: str,
    *,
    temperature: float | None = None,
    max_tokens: int | None = None,
    json_mode: bool = False,
    response_schema: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for `chat.completions.create` beyond model and messages.

    None means "the provider's default" and leaves the parameter out. Settings the model cannot
    take are dropped, so the returned dict is exactly what is sent (and what a run records).
    `response_schema` (JSON Schema of the reply) is enforced where the provider supports it, else
    JSON mode asks for any object. `extra` is passed through as given, except None values.
    """
    caps = capabilities(provider_id, model)
    params: dict[str, Any] = {}
    if temperature is not None and caps.supports_temperature:
        params["temperature"] = temperature
    if max_tokens is None:
        max_tokens = _REQUIRED_MAX_TOKENS.get(provider_id)
    if max_tokens is not None:
        params[caps.token_param] = max_tokens
    if json_mode and response_schema and caps.supports_json_schema:
        params["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "reply", "schema": dict(response_schema)},
        }
    elif json_mode and caps.supports_json_mode:
        params["response_format"] = {"type": "json_object"}
    params.update({key: value for key, value in (extra or {}).items() if value is not None})
    return params


# Providers whose Batch API Handai drives: OpenAI's Files and Batches endpoints, Azure OpenAI's copy
# of them, and Anthropic's Message Batches. The others are sent in real time.
_PROVIDERS_WITH_BATCH_API = frozenset({"openai", "azure", "anthropic"})  # limits: handai_engine/batch/limits.py


def supports_batch(provider_id: str) -> bool:
    """Whether a run on this provider can go through its Batch API (about half the price, results
    within 24 h): pages ask here instead of naming providers."""
    return provider_id in _PROVIDERS_WITH_BATCH_API
