"""Provider-specific wording for classified errors: the provider's name and, for a rejected key,
what its format says. `handai_errors` stays a leaf that knows no provider."""

from __future__ import annotations

from dataclasses import replace

from handai_errors import ClassifiedError, ErrorKind, classify, mask_key

from .keys import check_key_format
from .registry import PROVIDERS, Connection


def describe_error(exc: BaseException, conn: Connection, *, key: str | None = None) -> ClassifiedError:
    """Classify an exception from a call on `conn` and word it for that provider."""
    key = conn.api_key if key is None else key
    err = classify(exc, key=key, base_url=conn.effective_base_url())
    if err.kind != ErrorKind.INVALID_KEY:
        return err
    config = PROVIDERS.get(conn.provider)
    said = [mask_key(key)] if key else []
    if err.status:
        said.append(f"HTTP {err.status}")
    message = f"{config.name if config else conn.provider} did not accept this API key"
    message += f" ({', '.join(said)})" if said else ""
    action = err.action
    hint = check_key_format(conn.provider, key) if key else None
    if hint is not None and hint.level != "ok":
        action = f"{hint.message} {action}"
    return replace(err, message=message, action=action)
