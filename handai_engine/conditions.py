"""A small, safe condition language for per-row rules such as a pipeline step's ``run_if``.

Expressions are parsed with :mod:`ast` and interpreted here node by node (never ``eval``), so a
condition can only read the row: it has no access to Python objects, attributes or builtins.

    sentiment == "negative" and number(score) >= 3
    lower(classify.label) in ["yes", "maybe"] and not empty(row["free text"])

Allowed: literals (text, numbers, True/False/None, lists), names (input columns and earlier
steps), ``step.field`` and ``step["field"]`` (a field of a step's JSON output; None when the step
answered free text or lacks the field), ``row["column with spaces"]`` (``row`` is the whole
input row unless the scope gives one), comparisons ``== != < <= > >= in, not in``,
``and or not``, unary minus and the functions lower, upper, len, contains, number, empty.

Comparisons are exact and forgiving: ``"Yes" == "yes"`` is False (use ``lower(x) == "yes"``),
``3 == "3"`` is False (use ``number(x) == 3``), and JSON ``true`` is not the text ``"true"``.
Ordering or ``in`` across mismatched types or with None is False, never an error; any problem at
run time makes the condition False. A bare value is true unless empty (None, NaN, blank text,
empty list), False or 0. Only a malformed expression raises :class:`ConditionError`. The scope
maps names to plain values (None for a missing cell; a step's output as a dict or a str).
"""

from __future__ import annotations

import ast
import difflib
import functools
import math
import numbers
from collections.abc import Callable, Collection, Mapping
from typing import Any

ALLOWED = (
    'literals, names, step.field, row["column"], comparisons (== != < <= > >= in, not in), '
    "and/or/not, unary minus and the functions "
)
_NODES = (ast.Expression, ast.Constant, ast.Name, ast.Load, ast.Attribute, ast.Subscript, ast.List, ast.Tuple)
_NODES += (ast.Compare, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.Call)
_NODES += (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn)
_NAMED = {ast.Lambda: "lambda", ast.BinOp: "arithmetic", ast.IfExp: "'x if y else z'", ast.Dict: "dict literals"}
_NAMED |= {ast.ListComp: "comprehensions", ast.GeneratorExp: "comprehensions", ast.NamedExpr: "':='"}
_NAMED |= {ast.JoinedStr: "f-strings", ast.Set: "set literals", ast.Starred: "'*' unpacking"}


class ConditionError(ValueError):
    """A condition that is not valid in the language; the message says what is allowed."""


def _is_empty(x: Any) -> bool:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return True
    return (isinstance(x, str) and not x.strip()) or (isinstance(x, list | tuple | dict) and not x)


def _number(x: Any) -> float | None:
    try:
        value = float(x.strip() if isinstance(x, str) else x)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and not isinstance(x, bool) else None


def _contains(x: Any, y: Any) -> bool:
    """Case-insensitive: y within text x, or y equal to an item of list x."""
    if x is None or y is None:
        return False
    if isinstance(x, list | tuple):
        return str(y).lower() in (str(item).lower() for item in x)
    return str(y).lower() in str(x).lower()


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "lower": lambda x: None if x is None else str(x).lower(),
    "upper": lambda x: None if x is None else str(x).upper(),
    "len": lambda x: 0 if x is None else len(x) if isinstance(x, str | list | tuple | dict) else None,
    "contains": _contains,
    "number": _number,
    "empty": _is_empty,
}
ARITY = {"contains": 2}  # the others take one argument
ALLOWED += ", ".join(FUNCTIONS)


def _fail(expr: str, node: ast.AST, what: str) -> ConditionError:
    snippet = ast.get_source_segment(expr, node) or ""
    return ConditionError(
        f"{what[:1].upper()}{what[1:]} is not allowed in a condition ({snippet}). Allowed: {ALLOWED}."
    )


@functools.lru_cache(maxsize=512)
def _parse(expr: str) -> ast.Expression:
    """Parse and check the structure once per distinct expression (it runs on every row)."""
    if not expr or not expr.strip():
        raise ConditionError("The condition is empty.")
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except (SyntaxError, RecursionError, MemoryError, ValueError) as exc:
        raise ConditionError(f"The condition is not a valid expression: {exc}. Allowed: {ALLOWED}.") from None
    for node in ast.walk(tree):
        if not isinstance(node, _NODES):
            raise _fail(expr.strip(), node, _NAMED.get(type(node), type(node).__name__))
        if isinstance(node, ast.Constant) and not isinstance(node.value, str | int | float | type(None)):
            raise _fail(expr.strip(), node, "this literal")
        if (node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else "x")[0] == "_":
            raise _fail(expr.strip(), node, "a name starting with '_'")
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if name not in FUNCTIONS or node.keywords:
                raise _fail(expr.strip(), node, f"the function {name!r}" if name else "a method call")
            if len(node.args) != ARITY.get(name, 1):
                raise ConditionError(f"{name}() takes {ARITY.get(name, 1)} argument(s): {expr.strip()!r}")
    return tree


def _names(tree: ast.AST) -> set[str]:
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called}


def check_condition(expr: str, names: Collection[str]) -> None:
    """Validate at spec time, so a typo fails before any row is sent rather than skipping every row."""
    known = set(names) | {"row"}
    for name in sorted(_names(_parse(expr)) - known):
        hint = {"true": " (write True)", "false": " (write False)", "null": " (write None)", "none": " (write None)"}
        close = difflib.get_close_matches(name, known, n=1)
        extra = hint.get(name.lower()) or (f" (did you mean {close[0]}?)" if close else "")
        raise ConditionError(
            f"Unknown name {name!r} in condition {expr.strip()!r}{extra}. Known names: {', '.join(sorted(known))}; "
            'reach a column with spaces or symbols as row["column name"].'
        )


def _compare(op: ast.cmpop, a: Any, b: Any) -> bool:
    if isinstance(op, ast.Eq | ast.NotEq):
        return (a == b) == isinstance(op, ast.Eq)
    if isinstance(op, ast.In | ast.NotIn):
        if isinstance(b, str) and isinstance(a, str) or isinstance(b, list | tuple | dict):
            return (a in b) == isinstance(op, ast.In)
        return False
    both_numbers = isinstance(a, numbers.Real) and isinstance(b, numbers.Real)
    if not (both_numbers or (isinstance(a, str) and isinstance(b, str))):
        return False
    return {ast.Lt: a < b, ast.LtE: a <= b, ast.Gt: a > b, ast.GtE: a >= b}[type(op)]


def _truthy(x: Any) -> bool:
    return not _is_empty(x) and bool(x)


def _value(node: ast.AST, scope: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return scope.get(node.id, scope if node.id == "row" else None)
    if isinstance(node, ast.List | ast.Tuple):
        return [_value(item, scope) for item in node.elts]
    if isinstance(node, ast.Attribute | ast.Subscript):
        base = _value(node.value, scope)
        key = node.attr if isinstance(node, ast.Attribute) else _value(node.slice, scope)
        if isinstance(base, Mapping):
            return base.get(key) if isinstance(key, str | int | float) else None
        ok = isinstance(base, list | tuple) and isinstance(key, int) and -len(base) <= key < len(base)
        return base[key] if ok else None
    if isinstance(node, ast.BoolOp):
        parts = (_truthy(_value(v, scope)) for v in node.values)
        return all(parts) if isinstance(node.op, ast.And) else any(parts)
    if isinstance(node, ast.UnaryOp):
        operand = _value(node.operand, scope)
        if isinstance(node.op, ast.Not):
            return not _truthy(operand)
        return -operand if isinstance(operand, numbers.Real) else None
    if isinstance(node, ast.Compare):
        left = _value(node.left, scope)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _value(right_node, scope)
            if not _compare(op, left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Call):
        return FUNCTIONS[node.func.id](*(_value(a, scope) for a in node.args))  # type: ignore[attr-defined]
    raise ConditionError(f"Unexpected {type(node).__name__}")  # _parse let through a node it should not


def evaluate(expr: str, scope: Mapping[str, Any]) -> bool:
    """The condition's truth for one row; a malformed expression raises, anything else at run time
    (a missing field, a wrong type, a bad function argument) makes it False."""
    tree = _parse(expr)
    try:
        return _truthy(_value(tree.body, scope))
    except Exception:
        return False
