"""Untrusted text never reaches Markdown, read from the source: every f-string (or string built with
`+`) that pages/ and handai_ui/ pass to a call Streamlit renders as Markdown (a body, a label, a
tooltip, a toast, a tab's name, a radio's options) interpolates only `md(...)`, a number, our own
constants, or an expression on the explicit allow-list below, each with why it is safe.

The AppTests in test_ui_markdown.py show the escaping works where they look; this scan covers the
lines no AppTest reaches."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import pytest

from tests.conftest import ROOT

SCANNED = ("pages", "handai_ui")
# Streamlit calls whose first argument (a body or a label) is rendered as Markdown.
MARKDOWN_CALLS = {
    "markdown", "write", "caption", "info", "warning", "error", "success", "toast", "title", "header",
    "subheader", "button", "download_button", "link_button", "page_link", "form_submit_button", "radio",
    "selectbox", "multiselect", "checkbox", "toggle", "expander", "popover", "status", "spinner", "tabs",
    "text_input", "text_area", "number_input", "slider", "select_slider", "file_uploader", "metric",
    "pills", "segmented_control", "date_input", "time_input", "color_picker", "feedback",
}  # fmt: skip
MARKDOWN_KEYWORDS = ("body", "label", "help")
# Widgets whose options are rendered as Markdown too (a selectbox's and a multiselect's are not).
MARKDOWN_OPTIONS = {"radio", "pills", "segmented_control"}
# Calls whose result is a number, or text already made literal.
SAFE_CALLS = {"md", "len", "int", "float", "round", "sum", "abs", "format_seconds"}
NUMERIC_SPEC = re.compile(r"[,_]|[bdeEfFgGnoxX%]$")
CONSTANT = re.compile(r"^_?[A-Z][A-Z0-9_]*$")  # a module constant: our own words

# Attributes that hold a number wherever the code reads them (a run's id, a codebook's version…).
NUMBER_ATTRIBUTES = {
    "id", "version", "attempts", "tokens_in", "tokens_out", "n_units", "missing", "concurrency", "max_retries",
    "rate_limited",
}  # fmt: skip
# (file, expression) -> why what it holds is safe in Markdown.
ALLOWED = {
    ("handai_ui/adjudication_card.py", "missing"): "one of two sentences of ours",
    ("handai_ui/batch_panel.py", "reason"): "RunStartError's sentence naming provider ids",
    ("handai_ui/bundle_rerun.py", "when"): "a formatted timestamp",
    ("handai_ui/bundle_rerun.py", "cache"): "one of two phrases of ours",
    ("handai_ui/codebook_generator.py", "job['n_codes']"): "a number",
    ("handai_ui/codebook_generator.py", "seen"): "counts of chunks",
    ("handai_ui/codebook_generator.py", "themes.status"): "a run status",
    ("handai_ui/codebook_generator.py", "failed"): "a count",
    ("handai_ui/coder_summary.py", "off"): "off-codebook answers, each through md()",
    ("handai_ui/coder_summary.py", "shown"): "off-codebook answers, each through md()",
    ("handai_ui/connections.py", "config.name"): "a provider's name from our registry",
    ("handai_ui/connections.py", "key.label"): "where the key came from, in our words",
    ("handai_ui/consensus_form.py", "said"): "a phrase of ours",
    ("handai_ui/inspector.py", "number"): "a row number",
    ("handai_ui/model_picker.py", "label"): "a caller's constant label",
    ("handai_ui/model_picker.py", "low"): "a number",
    ("handai_ui/model_picker.py", "high"): "a number",
    ("handai_ui/pipeline_editor.py", "what"): '"up" or "down"',
    ("handai_ui/provenance.py", "run.params.get('budget_usd') or 'none'"): "a number or 'none'",
    ("handai_ui/provenance.py", "not_recorded('the system message')"): "a sentence of ours",
    ("handai_ui/reattach.py", "run_id"): "a number",
    ("handai_ui/row_select.py", "window"): "a token count in a phrase of ours",
    ("handai_ui/row_select.py", "whose"): "the step and model, through md()",
    ("handai_ui/row_select.py", "rows_text(pf.over)"): "row numbers",
    ("handai_ui/run_charts.py", "unit"): '"rows" or "cells"',
    ("handai_ui/run_edit.py", "', '.join(changes)"): "names of the run's settings",
    ("handai_ui/run_edit.py", "provider_name(provider)"): "a provider's name from our registry, or its id",
    ("handai_ui/sidebar.py", "label"): "a caller's constant label",
    ("handai_ui/row_filters.py", "f.label"): "a filter's name of ours (tool_summaries, coder_summary)",
    ("handai_ui/tool_summaries.py", "how"): "a key of DECIDED_BY",
    ("pages/history.py", "page_title"): "a tool's title from our registry",
    ("pages/history.py", "per"): '"hour" or "day"',
    ("pages/history.py", "run_id"): "a number",
    ("pages/reliability.py", "counts[MODEL]"): "a number",
    ("pages/reliability.py", "counts[HUMAN]"): "a number",
    ("pages/settings.py", "status[0]"): "a status phrase of ours",
    ("pages/settings.py", "config.name"): "a provider's name from our registry",
    ("pages/settings.py", "config.key_url"): "a provider's key page from our registry",
    ("pages/settings.py", "config.key_env"): "a provider's variable name from our registry",
}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    call: str
    expression: str


def _name(func: ast.expr) -> str:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _root(node: ast.expr) -> ast.expr:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node


class Scan:
    """The interpolations in one file's Markdown-rendering calls that are not known to be safe."""

    def __init__(self, path: str, source: str) -> None:
        self.path = path
        self.tree = ast.parse(source)
        self.used: set[tuple[str, str]] = set()

    def findings(self) -> Iterator[Finding]:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call) and _name(node.func) in MARKDOWN_CALLS:
                parts = [p for arg in self._rendered(node) for p in self._unsafe(arg)]
                parts += [p for option in self._options(node) for p in self._unsafe_operand(option)]
                for part in parts:
                    yield Finding(self.path, node.lineno, _name(node.func), ast.unparse(part))

    def _rendered(self, call: ast.Call) -> Iterator[ast.expr]:
        """The arguments shown as Markdown: a body, a label, a tooltip, tabs' names."""
        name = _name(call.func)
        keywords = {k.arg: k.value for k in call.keywords}
        if name == "write":
            yield from call.args
        elif call.args:
            first = call.args[0]
            yield from first.elts if name == "tabs" and isinstance(first, (ast.List, ast.Tuple)) else [first]
        yield from (keywords[k] for k in MARKDOWN_KEYWORDS if k in keywords)

    def _options(self, call: ast.Call) -> Iterator[ast.expr]:
        """A radio's (pills', a segmented control's) options shown as they are: each must be ours,
        unless `format_func=md` makes them literal."""
        keywords = {k.arg: k.value for k in call.keywords}
        formatted = keywords.get("format_func")
        if _name(call.func) not in MARKDOWN_OPTIONS or (formatted is not None and _name(formatted) == "md"):
            return
        options = keywords.get("options", call.args[1] if len(call.args) > 1 else None)
        if isinstance(options, (ast.List, ast.Tuple)):
            yield from (o.value if isinstance(o, ast.Starred) else o for o in options.elts)
        elif options is not None and formatted is None:
            yield options

    def _unsafe(self, node: ast.expr) -> list[ast.expr]:
        """The parts of a string expression interpolated without being safe."""
        if isinstance(node, ast.JoinedStr):
            return [v.value for v in node.values if isinstance(v, ast.FormattedValue) and not self._safe_value(v)]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return [p for side in (node.left, node.right) for p in self._unsafe_operand(side)]
        if isinstance(node, ast.IfExp):
            return self._unsafe(node.body) + self._unsafe(node.orelse)
        return []  # not built here: a constant, or a value passed as it is

    def _unsafe_operand(self, node: ast.expr) -> list[ast.expr]:
        if isinstance(node, (ast.JoinedStr, ast.BinOp, ast.IfExp)):
            return self._unsafe(node)
        return [] if self._safe(node) else [node]

    def _safe_value(self, value: ast.FormattedValue) -> bool:
        spec = value.format_spec
        if spec is not None and value.conversion == -1:
            text = "".join(str(p.value) for p in spec.values if isinstance(p, ast.Constant))
            if NUMERIC_SPEC.search(text):
                return True  # a number: a string with this spec would raise
        return self._safe(value.value)

    def _safe(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Constant):
            return True
        if isinstance(node, ast.JoinedStr):
            return not self._unsafe(node)
        if isinstance(node, ast.IfExp):
            return self._safe(node.body) and self._safe(node.orelse)
        if isinstance(node, ast.BinOp):
            numeric = any(
                isinstance(s, ast.Constant) and isinstance(s.value, (int, float)) for s in (node.left, node.right)
            )
            return numeric or (self._safe(node.left) and self._safe(node.right))
        if isinstance(node, ast.Call):
            return self._safe_call(node)
        if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript)):
            root = _root(node)
            if isinstance(root, ast.Name) and (CONSTANT.match(root.id) or root.id[:1].isupper()):
                return True  # a module constant, or a class's (an enum's) member
            if isinstance(node, ast.Attribute) and CONSTANT.match(node.attr):
                return True  # a constant read through its module: ui.CODEBOOK_SOURCES
            if isinstance(node, ast.Attribute) and node.attr in NUMBER_ATTRIBUTES:
                return True
        return self._allowed(node)

    def _allowed(self, node: ast.expr) -> bool:
        key = (self.path, ast.unparse(node))
        if key in ALLOWED:
            self.used.add(key)
            return True
        return False

    def _safe_call(self, node: ast.Call) -> bool:
        name = _name(node.func)
        if name in SAFE_CALLS:
            return True
        if name == "join" and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Constant):
            items = node.args[0] if node.args else None
            if isinstance(items, (ast.GeneratorExp, ast.ListComp)) and self._safe(items.elt):
                return True
        if name in ("upper", "lower") and isinstance(node.func, ast.Attribute):
            return self._safe(node.func.value)
        return self._allowed(node)


def scan(path: str, source: str) -> tuple[list[Finding], set[tuple[str, str]]]:
    s = Scan(path, source)
    return list(s.findings()), s.used


@cache
def scan_repo() -> tuple[list[Finding], set[tuple[str, str]]]:
    findings: list[Finding] = []
    used: set[tuple[str, str]] = set()
    for folder in SCANNED:
        for file in sorted((ROOT / folder).glob("*.py")):
            found, seen = scan(file.relative_to(ROOT).as_posix(), file.read_text(encoding="utf-8"))
            findings += found
            used |= seen
    return findings, used


def test_no_markdown_call_interpolates_untrusted_text():
    findings, _ = scan_repo()
    assert not findings, "\n".join(f"{f.path}:{f.line}: st.{f.call}(…{{{f.expression}}}…)" for f in findings)


def test_every_allowed_expression_is_still_there():
    """An entry the code no longer uses is removed, so the list says what it covers."""
    _, used = scan_repo()
    assert set(ALLOWED) - used == set()


@pytest.mark.parametrize(
    ("line", "flagged"),
    [
        ('st.caption(f"Using {name}")', ["name"]),
        ('c[0].button(f"Save {coder}\'s codes", key="k")', ["coder"]),
        ('st.toast("Saved " + who)', ["who"]),
        ('st.tabs(["A", f"{tab}"])', ["tab"]),
        ('st.radio("Pick", [f"{answer}", "other"])', ["answer"]),
        ('st.radio("Decision", [*answers, OTHER], key="k")', ["answers"]),
        ('st.radio("Decision", [*answers, OTHER], format_func=md)', []),
        ('st.pills("Codes", labels)', ["labels"]),
        ('st.segmented_control("Show", ["all", RowStatus.FAILED, ui.SOURCES], format_func=str.title)', []),
        ('st.info("x", help=f"{why}")', ["why"]),
        ('st.write(f"{a}", f"{md(b)}")', ["a"]),
        ('st.caption(f"{len(rows):,} rows from {md(name)} · {count:,} · {n + 1} · {MAX} · {PROVIDERS[p].name}")', []),
        ('st.markdown("\\n".join(f"- {md(x)}" for x in xs))', []),
        ('st.caption(f"{x if ok else y}")', ["x if ok else y"]),
        ('st.caption(md(f"{anything}"))', []),
        ('st.selectbox("Run", ids, format_func=lambda i: f"#{i}")', []),
    ],
)
def test_the_scan_flags_what_it_should(line, flagged):
    found, _ = scan("example.py", line)
    assert [f.expression for f in found] == flagged
