"""The run_if condition language (handai_engine/conditions.py): what it accepts, what it rejects,
and how forgiving it is on real rows."""

from __future__ import annotations

import math

import pytest

from handai_engine.conditions import ConditionError, check_condition, evaluate

SCOPE = {
    "text": "The battery died",
    "score": 4,
    "rating": "3.5",
    "blank": "  ",
    "missing": None,
    "nan": math.nan,
    "tags": ["Refund", "battery"],
    "flag": True,
    "free text": "hello world",
    "classify": {"label": "Negative", "confidence": 0.8, "urgent": True, "notes": ""},
    "summary": "A short summary",  # a free-text step
}

CASES = [
    # literals, names and bare truth
    ("True", True),
    ("None", False),
    ("flag", True),
    ("missing", False),
    ("nan", False),
    ("blank", False),
    ("text", True),
    ("not missing", True),
    ("unknown_name", False),
    # equality is exact
    ('classify.label == "Negative"', True),
    ('classify.label == "negative"', False),
    ('lower(classify.label) == "negative"', True),
    ('upper(classify.label) == "NEGATIVE"', True),
    ("score == 4", True),
    ('score == "4"', False),
    ("rating == 3.5", False),
    ("number(rating) == 3.5", True),
    ('classify.urgent == "true"', False),
    ("classify.urgent == True", True),
    ("classify.urgent", True),
    ("missing == None", True),
    ("missing != 1", True),
    ('classify.label != "Positive"', True),
    # ordering: numbers with numbers, text with text, anything else False
    ("score >= 3 and score < 5", True),
    ("3 < score <= 4", True),
    ("3 < score < 4", False),
    ("classify.confidence > 0.5", True),
    ("rating > 3", False),
    ("number(rating) > 3", True),
    ("missing > 3", False),
    ("missing < 3", False),
    ('text > "A"', True),
    ("-score < 0", True),
    ("-text < 0", False),
    # in / not in
    ('"battery" in text', True),
    ('"Battery" in text', False),
    ('contains(text, "BATTERY")', True),
    ('contains(tags, "refund")', True),
    ('contains(missing, "x")', False),
    ('"Refund" in tags', True),
    ('"refund" in tags', False),
    ('classify.label in ["Negative", "Neutral"]', True),
    ('classify.label not in ["Negative", "Neutral"]', False),
    ('"x" in missing', False),
    ('"x" not in missing', False),
    ("4 in text", False),
    ('"label" in classify', True),
    # attribute / subscript access
    ('row["free text"] == "hello world"', True),
    ('contains(row["free text"], "WORLD")', True),
    ('classify["label"] == "Negative"', True),
    ("classify.nope == None", True),
    ("summary.label == None", True),
    ("summary.label", False),
    ("missing.label", False),
    ('tags[0] == "Refund"', True),
    ('tags[-1] == "battery"', True),
    ("tags[5] == None", True),
    ('row["no such column"]', False),
    # functions
    ("len(tags) == 2", True),
    ("len(text) > 5", True),
    ("len(missing) == 0", True),
    ("len(score) > 0", False),
    ("empty(classify.notes)", True),
    ("empty(missing) and empty(nan) and empty(blank)", True),
    ("empty(text)", False),
    ('number("n/a") == None', True),
    ("number(flag) == None", True),
    ('number(" 7 ") == 7', True),
    # and / or / not
    ('classify.label == "Negative" and classify.urgent', True),
    ('classify.label == "Positive" or score > 3', True),
    ("not (score > 3)", False),
    ("missing or nan or blank", False),
]


@pytest.mark.parametrize(("expr", "expected"), CASES)
def test_expressions_on_a_row(expr, expected):
    assert evaluate(expr, SCOPE) is expected


def test_row_names_the_whole_input_unless_the_scope_gives_one():
    assert evaluate('row["a b"] == 1', {"a b": 1})
    assert evaluate('row["a b"] == 2', {"a b": 1, "row": {"a b": 2}})


@pytest.mark.parametrize(
    ("expr", "said"),
    [
        ('__import__("os")', "'__import__'"),
        ('open("x")', "'open'"),
        ('text.lower() == "x"', "method call"),
        ("lambda: 1", "Lambda"),
        ("[x for x in tags]", "Comprehensions"),
        ("(x for x in tags)", "Comprehensions"),
        ("classify.__class__", "starting with '_'"),
        ("__builtins__", "starting with '_'"),
        ("score + 1 > 2", "Arithmetic"),
        ("1 if flag else 0", "if"),
        ("(y := 1)", "':='"),
        ('{"a": 1}', "Dict literals"),
        ('f"{text}"', "F-strings"),
        ("tags[0:1]", "Slice"),
        ('contains(text, y="x")', "'contains'"),
        ("b'x' == text", "literal"),
        ("score is None", "Is"),
    ],
)
def test_constructs_outside_the_language_are_rejected(expr, said):
    for call in (lambda: evaluate(expr, SCOPE), lambda: check_condition(expr, SCOPE)):
        with pytest.raises(ConditionError) as caught:
            call()
        assert said in str(caught.value)
        assert "Allowed:" in str(caught.value) and "contains" in str(caught.value)


@pytest.mark.parametrize("expr", ["", "   ", "score ==", "score = 1", "and", "a b"])
def test_syntax_errors_are_condition_errors(expr):
    with pytest.raises(ConditionError):
        check_condition(expr, ["score"])


def test_function_arity_is_checked_at_spec_time():
    with pytest.raises(ConditionError, match=r"contains\(\) takes 2"):
        check_condition("contains(text)", ["text"])
    with pytest.raises(ConditionError, match=r"lower\(\) takes 1"):
        check_condition('lower(text, "x")', ["text"])


def test_check_condition_names_the_unknown_name_and_lists_the_known_ones():
    known = ["text", "score", "classify"]
    check_condition('classify.label == "x" and number(score) > 1 and row["any thing"]', known)
    check_condition("len(text) > 2", known)  # function names are not row names
    with pytest.raises(ConditionError) as caught:
        check_condition('clasify.label == "x"', known)
    message = str(caught.value)
    assert "'clasify'" in message and "did you mean classify" in message
    assert "Known names: classify, row, score, text" in message
    assert 'row["column name"]' in message
    with pytest.raises(ConditionError, match=r"'true'.*write True"):
        check_condition("classify.urgent == true", known)


def test_a_name_used_as_a_column_may_share_a_function_name():
    check_condition("len > 3", ["len"])
    assert evaluate("len > 3 and len(len) == 0", {"len": 5}) is False
    assert evaluate("len > 3", {"len": 5}) is True


def test_runtime_problems_are_false_never_errors():
    weird = {"x": object(), "d": {"k": [1, 2]}, "deep": {"a": {"b": {"c": "yes"}}}}
    assert evaluate("x > 1", weird) is False
    assert evaluate("d.k > 1", weird) is False
    assert evaluate("[1] in d", weird) is False  # unhashable key
    assert evaluate('deep.a.b.c == "yes"', weird) is True
    assert evaluate("not " * 50 + "True", {}) is True
