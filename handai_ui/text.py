"""Text shown to the user: untrusted text made literal for Markdown, and short number formats.

Streamlit renders Markdown (and its own `:directive[...]`, `:material/…:`, `:emoji:` and `$…$`
extensions) in titles, captions, alerts, toasts and every widget, expander and metric label. A
file name, a column name, a cell, a run name, a model's reply or a provider's error is never
Markdown, so it goes through `md()` before it reaches one of those. Only what would be read as
markup is escaped, with CommonMark backslash escapes, so ordinary text (brackets and colons
included) stays as it is. Shortcodes (`:smile:`, `:material/home:`) are matched in the text after
escapes are read, so an invisible word joiner breaks them instead. A bare URL or email address
still becomes a link (GFM finds those in the text too); its text shows as written.
"""

from __future__ import annotations

import re
from typing import Any

WORD_JOINER = "\u2060"  # zero-width, invisible: keeps ":name:" from being read as a shortcode
# Inline markup, each escaped only where it would be read as markup: emphasis, code,
# strikethrough and math always; a backslash before what it would escape; "](", "][" and "]:"
# (links, references, their definitions); "<" opening a tag or an autolink; an entity; a
# directive (":name[…]"). The "://", "www." and "@" of a bare URL or email are escaped too: GFM
# would otherwise take the link from the raw text, backslashes and all; escaped, it is linked
# from the text as shown.
_INLINE = re.compile(
    r"[*_`~$]|\\(?=[!-/:-@\[-`{-~]|\n)|\](?=[(\[:])|<(?=[A-Za-z/!?])|&(?=#|\w+;)|:(?=[A-Za-z]|//)"
    r"|(?<=[\w.+-])@(?=\w)|(?<=www)\.",
    re.IGNORECASE,
)
_SHORTCODE = re.compile(r"(?<=:)(?=[A-Za-z+-][\w+-]*(?:/[\w+-]+)?:)")
# Block markup at the start of a line: headings, quotes, lists, setext underlines, tables.
_LINE_START = re.compile(r"^([ \t]*)([#>+\-=|:]|\d+[.)])", re.MULTILINE)


def md(text: Any) -> str:
    """`text` as Markdown that renders as exactly `text`."""
    text = _SHORTCODE.sub(WORD_JOINER, str(text))
    escaped = _INLINE.sub(lambda m: "\\" + m.group(0), text)
    return _LINE_START.sub(lambda m: f"{m.group(1)}{m.group(2)[:-1]}\\{m.group(2)[-1]}", escaped)


def clip(text: str, limit: int) -> str:
    """One line of at most `limit` characters, with "…" when cut."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
