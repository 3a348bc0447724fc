"""What a run sends, and the record of it: the exact parameters and system message are stored on
the run, and resume and retry send what was recorded (DESIGN decision 6), not what today's code
would build from the same settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from handai_db import Run
from handai_prompts import is_structured, json_schema, system_message
from providers import request_params

DEFAULT_TIMEOUT = 120.0


@dataclass
class RunSettings:
    """A run's settings. `None` for temperature/max_tokens means the provider's default."""

    provider: str
    model: str
    system_prompt: str = ""
    columns: list[str] = field(default_factory=list)
    row_template: str | None = None
    output_schema: dict[str, Any] | None = None
    json_mode: bool = False
    temperature: float | None = None
    max_tokens: int | None = None
    concurrency: int = 16
    max_retries: int = 3
    timeout: float = DEFAULT_TIMEOUT
    use_cache: bool = True
    budget_usd: float | None = None
    examples: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def from_run(cls, run: Run) -> RunSettings:
        """The settings a recorded run was created with."""
        params = run.params
        return cls(
            provider=run.provider,
            model=run.model,
            system_prompt=run.system_prompt,
            columns=list(run.columns),
            row_template=run.row_template,
            output_schema=run.output_schema,
            json_mode=bool(params.get("json_mode")),
            temperature=params.get("temperature"),
            max_tokens=params.get("max_tokens"),
            concurrency=run.concurrency,
            max_retries=run.max_retries,
            timeout=float(params.get("timeout") or DEFAULT_TIMEOUT),
            use_cache=bool(params.get("use_cache", True)),
            budget_usd=params.get("budget_usd"),
            examples=list(params.get("examples") or []),
        )

    @property
    def structured(self) -> bool:
        return is_structured(self.output_schema, self.json_mode)

    def sent_params(self) -> dict[str, Any]:
        """Exactly the request parameters sent beside model and messages."""
        return request_params(
            self.provider,
            self.model,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            json_mode=self.structured,
            response_schema=json_schema(self.output_schema) if self.output_schema else None,
        )

    def sent_system(self) -> str:
        """Exactly the system message sent."""
        return system_message(self.system_prompt, self.output_schema, self.json_mode)

    def params(self) -> dict[str, Any]:
        """The parameters as recorded on the run, with what is sent (`sent`, `system_message`)."""
        return {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "json_mode": self.json_mode,
            "timeout": self.timeout,
            "use_cache": self.use_cache,
            "budget_usd": self.budget_usd,
            "examples": self.examples,
            "sent": self.sent_params(),
            "system_message": self.sent_system(),
        }


@dataclass(frozen=True)
class SentRequest:
    """What every call of a run sends besides its own user message, read from the run's record."""

    model: str
    system: str
    params: dict[str, Any]
    structured: bool
    schema: dict[str, Any] | None
    examples: tuple[dict[str, str], ...] = ()

    @classmethod
    def of(cls, run: Run) -> SentRequest:
        settings = RunSettings.from_run(run)
        recorded = run.params
        # Runs recorded before the system message was stored fall back to building it.
        system = recorded.get("system_message")
        return cls(
            model=run.model,
            system=settings.sent_system() if system is None else system,
            params=dict(recorded["sent"]) if "sent" in recorded else settings.sent_params(),
            structured=settings.structured,
            schema=run.output_schema,
            examples=tuple(settings.examples),
        )
