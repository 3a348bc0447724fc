"""Context windows (tokens a request may hold, prompt and reply together), for the pre-flight
check: a row that does not fit fails on every attempt, and is better shortened before it is paid
for. Published figures at the time of writing; live lists (OpenRouter) win where they say."""

from __future__ import annotations

from .models import cached_model_info

# By model family: the longest matching prefix of the bare model name wins.
CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-4o": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-5": 400_000,
    "o1": 200_000,
    "o3": 200_000,
    "o4-mini": 200_000,
    "claude": 200_000,
    "gemini-2": 1_048_576,
    "gemini-1.5": 1_048_576,
    "llama-3.1": 128_000,
    "llama-3.3": 128_000,
    "meta-llama/llama-3": 128_000,
    "gpt-oss": 131_072,
    "deepseek": 128_000,
    "qwen2.5": 32_768,
    "mistral": 32_768,
    "gemma3": 128_000,
}


def context_window(model: str) -> int | None:
    """The model's context window in tokens, or None when unknown (local and custom models)."""
    info = cached_model_info(model)
    if info is not None and info.context_length:
        return info.context_length
    name = model.strip().lower()
    bare = name.rsplit("/", 1)[-1]
    matches = [p for p in CONTEXT_WINDOWS if name.startswith(p) or bare.startswith(p)]
    return CONTEXT_WINDOWS[max(matches, key=len)] if matches else None
