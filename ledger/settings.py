"""Settings (one JSON value per key) and the saved instructions kept among them."""

from __future__ import annotations

from typing import Any

from ledger.models import Setting
from ledger.store import Store

INSTRUCTIONS_KEY = "instructions"


class SettingsMixin(Store):
    """Read and write settings and saved instructions."""

    def get_setting(self, key: str, default: Any = None) -> Any:
        with self.session() as s:
            row = s.get(Setting, key)
            return default if row is None or row.value is None else row.value.get("v", default)

    def set_setting(self, key: str, value: Any) -> None:
        with self._write_lock, self.session() as s, s.begin():
            s.merge(Setting(key=key, value={"v": value}))

    def instructions(self) -> dict[str, dict[str, Any]]:
        """Saved instructions by name: {"text": …, "examples": [{"input": …, "output": …}]}."""
        return dict(self.get_setting(INSTRUCTIONS_KEY, {}))

    def save_instruction(self, name: str, text: str, examples: list[dict[str, str]] | None = None) -> None:
        name = name.strip()
        if not name or not text.strip():
            raise ValueError("An instruction needs a name and some text.")
        saved = self.instructions()
        saved[name] = {"text": text, "examples": list(examples or [])}
        self.set_setting(INSTRUCTIONS_KEY, saved)

    def delete_instruction(self, name: str) -> None:
        saved = self.instructions()
        saved.pop(name, None)
        self.set_setting(INSTRUCTIONS_KEY, saved)
