"""Settings (one JSON value per key) and the saved instructions kept among them.

On a team's shared database a setting is either one person's or the project's:
- per person (`UserSetting`, by `Database.user`): every `ui.*` key, i.e. what the sidebar and pages
  remember, such as the provider, its base URL and the model chosen; one person's choice never
  changes another's;
- shared (`Setting`): everything else, i.e. price overrides (`prices`) and saved instructions
  (`instructions`), which describe the project rather than a person's screen.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from ledger.models import Setting, UserSetting
from ledger.store import Store, lock_for_update
from ledger.upserts import insert_ignoring, upsert

INSTRUCTIONS_KEY = "instructions"
PERSONAL_PREFIXES = ("ui.",)


def current_user() -> str:
    """Whose settings these are: HANDAI_USER, else the operating system's login name."""
    if name := os.environ.get("HANDAI_USER", "").strip():
        return name
    try:
        return getpass.getuser() or "default"
    except (KeyError, OSError):  # no login name (a container with an unnamed uid)
        return "default"


def personal(key: str) -> bool:
    """Whether a setting is one person's (scoped by user) rather than the project's."""
    return key.startswith(PERSONAL_PREFIXES)


class SettingsMixin(Store):
    """Read and write settings and saved instructions."""

    user: str

    def get_setting(self, key: str, default: Any = None) -> Any:
        with self.session() as s:
            row = s.get(UserSetting, (self.user, key)) if personal(key) else s.get(Setting, key)
            return default if row is None or row.value is None else row.value.get("v", default)

    def set_setting(self, key: str, value: Any) -> None:
        self.change_setting(key, lambda _old: value)

    def change_setting(self, key: str, change: Callable[[Any], Any], default: Any = None) -> Any:
        """Read a setting, `change` it and write it back in one locked transaction, so two people
        saving at once both keep their change. Returns the new value."""
        model, where = (UserSetting, {"user_name": self.user, "key": key}) if personal(key) else (Setting, {"key": key})
        read = select(model.value).filter_by(**where).with_for_update()
        with self._write_lock, self.engine.begin() as conn:
            lock_for_update(conn)
            conn.execute(insert_ignoring(conn, model), {**where, "value": None})  # a row to lock, even the first time
            stored = conn.scalar(read)
            new = change(default if stored is None else stored.get("v", default))
            conn.execute(upsert(conn, model, list(where)), {**where, "value": {"v": new}})
        return new

    def instructions(self) -> dict[str, dict[str, Any]]:
        """Saved instructions by name: {"text": …, "examples": [{"input": …, "output": …}]}."""
        return dict(self.get_setting(INSTRUCTIONS_KEY, {}))

    def save_instruction(self, name: str, text: str, examples: list[dict[str, str]] | None = None) -> None:
        name = name.strip()
        if not name or not text.strip():
            raise ValueError("An instruction needs a name and some text.")
        entry = {"text": text, "examples": list(examples or [])}
        self.change_setting(INSTRUCTIONS_KEY, lambda saved: {**saved, name: entry}, {})

    def delete_instruction(self, name: str) -> None:
        self.change_setting(INSTRUCTIONS_KEY, lambda saved: {k: v for k, v in saved.items() if k != name}, {})
