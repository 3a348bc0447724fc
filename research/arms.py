"""Models as people and scripts name them: "provider:model" (a colon, because model ids such as
`openai/gpt-4o-mini` on OpenRouter hold slashes), and arm names unique within a run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from handai_engine import Arm
from providers import PROVIDERS


class ModelSpecError(ValueError):
    """A model spec that cannot be used; the message says the expected form."""


def parse_model(spec: str) -> tuple[str, str]:
    """`openrouter:openai/gpt-4o-mini` -> ("openrouter", "openai/gpt-4o-mini")."""
    provider, sep, model = spec.strip().partition(":")
    if not sep or not provider or not model:
        raise ModelSpecError(f"'{spec}' is not PROVIDER:MODEL (for example openai:gpt-4o-mini or custom:my-model).")
    provider = provider.strip().lower()
    if provider not in PROVIDERS:
        raise ModelSpecError(f"Unknown provider '{provider}'. Known: {', '.join(PROVIDERS)}.")
    return provider, model.strip()


def arm_names(models: Sequence[str]) -> list[str]:
    """A name per model, the model id itself where it is unique (`gpt-4o`, `gpt-4o#2`)."""
    names: list[str] = []
    for model in models:
        name, n = model, 1
        while name in names:
            n += 1
            name = f"{model}#{n}"
        names.append(name)
    return names


def make_arms(
    choices: Sequence[tuple[str, str]],
    *,
    endpoints: dict[str, dict[str, Any]] | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    samples: int = 1,
) -> list[Arm]:
    """Arms for (provider, model) choices; `endpoints` gives a provider's recorded endpoint."""
    names = arm_names([m for _, m in choices])
    return [
        Arm(
            name,
            provider,
            model,
            endpoint=dict((endpoints or {}).get(provider) or {}),
            temperature=temperature,
            max_tokens=max_tokens,
            samples=samples,
        )
        for name, (provider, model) in zip(names, choices, strict=True)
    ]
