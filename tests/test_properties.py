"""Properties that hold for every input, checked with hypothesis: readers and parsers fail only in
their own documented way, templates round trip, error classification always has an answer, and
an API key never leaks through masking or redaction."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import math
import string
import subprocess
import sys

import httpx2
import openai
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from handai_errors import KINDS, ErrorKind, ReplyError, classify, mask_key, redact
from handai_io import SUPPORTED_EXTENSIONS, FileReadError, read_table
from handai_prompts import (
    FIELD_TYPES,
    TemplateError,
    coerce,
    extract_json,
    make_schema,
    parse_reply,
    render_template,
    row_payload,
    template_fields,
    validate_template,
)
from providers.errors import describe_error
from providers.registry import PROVIDERS, Connection
from tests.conftest import ROOT

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# ---------------------------------------------------------------------------------------------
# read_table: arbitrary bytes under every name end in a table or a FileReadError

MAGIC = [b"", b"PK\x03\x04", b"PAR1", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"]
TEXTISH = st.text(alphabet=st.sampled_from(list(",;\t|\"'\r\n {}[]:=+-@#\x00") + list("abcé1.")), max_size=400)
ENCODINGS = st.sampled_from(["utf-8", "utf-16", "utf-16-le", "cp1252", "latin-1"])


@st.composite
def file_bytes(draw) -> bytes:
    kind = draw(st.sampled_from(["binary", "text", "json"]))
    if kind == "binary":
        body = draw(st.binary(max_size=2000))
    elif kind == "text":
        body = draw(TEXTISH).encode(draw(ENCODINGS), errors="replace")
    else:
        value = draw(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8), _containers))
        body = json.dumps(value).encode()
    return draw(st.sampled_from(MAGIC)) + body


def _containers(children):
    return st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)


NAMES = [f"upload.{ext}" for ext in SUPPORTED_EXTENSIONS] + ["upload", "upload.pdf"]


@pytest.mark.parametrize("name", NAMES)
@FAST
@given(data=file_bytes())
def test_read_table_raises_only_file_read_error(name, data):
    try:
        table = read_table(data, name)
    except FileReadError as exc:
        assert str(exc).strip()
        return
    df = table.df
    assert len(df) > 0 and len(df.columns) > 0
    assert all(isinstance(c, str) and c and c == c.strip() for c in df.columns)
    assert len(set(df.columns)) == len(df.columns)


SIMPLE_NAME = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,11}", fullmatch=True)
CELL = st.text(alphabet=st.sampled_from(list("abcdefxyz0129 .,\"'\n-éß")), max_size=12)


@st.composite
def csv_tables(draw):
    names = draw(st.lists(SIMPLE_NAME, min_size=2, max_size=6, unique=True))
    rows = draw(st.lists(st.lists(CELL, min_size=len(names), max_size=len(names)), min_size=1, max_size=12))
    return names, rows


@FAST
@given(table=csv_tables())
def test_a_table_written_by_the_csv_module_reads_back_exactly(table):
    names, rows = table
    buffer = io.StringIO()
    csv.writer(buffer).writerows([names, *rows])
    expected = [[cell or None for cell in row] for row in rows]
    expected = [row for row in expected if any(row)]
    try:
        loaded = read_table(buffer.getvalue().encode(), "table.csv")
    except FileReadError as exc:
        assert not expected, str(exc)  # only a table without data may be refused
        return
    assert list(loaded.df.columns) == names
    assert loaded.df.astype(object).where(loaded.df.notna(), None).values.tolist() == expected


# ---------------------------------------------------------------------------------------------
# extract_json and parse_reply

JSON_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUE = st.recursive(JSON_LEAF, _containers, max_leaves=20)
JSON_OBJECT = st.dictionaries(st.text(max_size=10), JSON_VALUE, max_size=6)
NO_FENCE = st.text(alphabet=st.characters(blacklist_characters="`"), max_size=80)
PLAIN_WORDS = st.text(alphabet=string.ascii_letters + " .,:;!?\n'\"-", max_size=80)


# Text made of JSON's own characters, so that replies holding (parts of) JSON are common.
JSONISH = st.text(alphabet=st.sampled_from(list('{}[]":,` \n\\0123456789.-eEtrufalsnNIy')), max_size=60)
JSON_STARTS, JSON_ENDS = set('{["-0123456789tfnNI'), set('}]"0123456789elNy')


def _read_from_a_slice(value, text: str) -> bool:
    """Is `value` what json.loads reads from some slice of `text`? (json.dumps compares NaN too.)"""
    wanted = json.dumps(value)
    starts = [i for i, ch in enumerate(text) if ch in JSON_STARTS]
    ends = [j + 1 for j, ch in enumerate(text) if ch in JSON_ENDS]
    for i in starts:
        for j in ends:
            if j > i:
                try:
                    if json.dumps(json.loads(text[i:j])) == wanted:
                        return True
                except (ValueError, RecursionError):
                    pass
    return False


@FAST
@given(
    text=st.text(max_size=300)
    | JSONISH
    | JSON_VALUE.map(json.dumps)
    | st.builds("{}{}{}".format, NO_FENCE, JSON_VALUE.map(json.dumps), NO_FENCE)
)
@example(text="```\n42\n```")
@example(text='{"a": [1, 2}  then [3, {"b": null}]')
@example(text="NaN")
def test_extract_json_returns_json_read_from_the_text_or_raises_value_error(text):
    try:
        value = extract_json(text)
    except ValueError:
        # Refused: then the text as a whole is not JSON either.
        with pytest.raises((ValueError, RecursionError)):
            json.loads(text)
        return
    # Found: the value is read from the text itself, never made up, and a text that is JSON as a
    # whole is read as a whole.
    assert _read_from_a_slice(value, text), (text, value)
    with contextlib.suppress(ValueError, RecursionError):
        assert json.dumps(value) == json.dumps(json.loads(text))


@FAST
@given(obj=JSON_OBJECT, before=NO_FENCE, after=NO_FENCE, tag=st.sampled_from(["", "json", "JSON"]))
def test_extract_json_finds_a_fenced_object_in_any_surrounding_text(obj, before, after, tag):
    if "```" in json.dumps(obj):
        obj = {"fence": "none"}
    text = f"{before}\n```{tag}\n{json.dumps(obj, ensure_ascii=False)}\n```\n{after}"
    assert extract_json(text) == obj


@FAST
@given(obj=JSON_OBJECT.filter(bool), before=PLAIN_WORDS, after=PLAIN_WORDS)
def test_extract_json_finds_a_bare_object_between_words(obj, before, after):
    text = f"{before} {json.dumps(obj)} {after}"
    assert extract_json(text) == obj


DEGENERATE_REPLIES = ["[" * 20_000, "{" * 20_000, '{"a": [' * 3_000]
CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
from handai_prompts import extract_json
for reply in json.loads(sys.stdin.read()):
    try:
        extract_json(reply)
    except ValueError:
        pass
    else:
        raise SystemExit("found JSON in a degenerate reply")
"""


def test_extract_json_gives_up_quickly_on_degenerate_replies():
    """20 KB of unclosed brackets (a model stuck repeating '[') must fail fast, not stall a worker."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT)],
        input=json.dumps(DEGENERATE_REPLIES),
        capture_output=True,
        text=True,
        timeout=4,  # the interpreter starts in ~1 s; three linear scans of 20 KB take milliseconds
    )
    assert done.returncode == 0, done.stderr[-500:]


FIELD = st.fixed_dictionaries(
    {
        "name": st.text(max_size=8),
        "type": st.sampled_from([*FIELD_TYPES, "", "weird"]),
        "description": st.text(max_size=8),
        "labels": st.lists(
            st.text(min_size=1, max_size=5).filter(lambda t: t.strip() and "," not in t), min_size=1, max_size=3
        ),
    }
)
SCHEMAS = st.none() | st.just({}) | st.lists(FIELD, max_size=4).map(make_schema)
REPLIES = (
    st.none()
    | st.text(max_size=200)
    | JSON_VALUE.map(json.dumps)
    | JSON_OBJECT.map(lambda o: f"```json\n{json.dumps(o)}\n```")
)


@FAST
@given(text=REPLIES, structured=st.booleans(), schema=SCHEMAS)
def test_parse_reply_raises_only_reply_error(text, structured, schema):
    try:
        result = parse_reply(text, structured=structured, schema=schema)
    except ReplyError as exc:
        assert exc.kind in (ErrorKind.EMPTY_REPLY, ErrorKind.UNPARSEABLE)
        assert exc.raw == text
        return
    assert isinstance(result, dict)
    if not structured:
        assert result == {"output": text.strip()}


COERCED_TYPES = {"integer": int, "number": float, "boolean": bool, "string": str, "category": str, "array": list}


def _as_number(value) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return float(value.strip().replace(",", ""))
    return None


def _unambiguous(value, kind: str) -> bool:
    """The values coerce's docstring promises to bring to `kind`'s type."""
    if kind in ("string", "category", "array"):
        return True
    if kind == "boolean":
        return not isinstance(value, str) or value.strip().lower() in ("true", "yes", "1", "false", "no", "0")
    number = _as_number(value)
    if kind == "number":
        return number is not None
    if kind == "integer":
        return number is not None and math.isfinite(number) and number.is_integer()
    return False


@FAST
@given(value=JSON_VALUE | st.floats() | st.text(max_size=30), kind=st.sampled_from([*FIELD_TYPES, "other"]))
@example(value="1,000", kind="integer")
@example(value="2.5", kind="integer")
@example(value=" Yes ", kind="boolean")
@example(value="maybe", kind="boolean")
@example(value=math.nan, kind="integer")
@example(value={"a": 1}, kind="object")
def test_coerce_gives_the_schema_type_or_keeps_the_value(value, kind):
    result = coerce(value, kind)
    if value is None:
        assert result is None  # missing stays missing, whatever the type
        return
    if _unambiguous(value, kind):
        assert type(result) is COERCED_TYPES[kind], (value, kind, result)
    else:
        assert result is value, (value, kind, result)
    if kind in ("integer", "number") and type(value) in (int, float) and not math.isnan(value):
        assert result == value  # a number keeps its value
    # Coercing a coerced value changes nothing.
    again = coerce(result, kind)
    assert again is result or repr(again) == repr(result), (value, kind, result, again)


# ---------------------------------------------------------------------------------------------
# Templates

CELL_VALUES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.dates()
    | st.datetimes()
    | st.just(math.nan)
    | st.just(pd.NaT)
)
ROWS = st.dictionaries(st.text(max_size=10), CELL_VALUES, max_size=6)


@FAST
@given(template=st.text(max_size=200), row=ROWS)
@example(template="{a}{{b}}{ c }{}{{}}{", row={"a": None, "c": math.inf})
def test_render_template_never_raises(template, row):
    assert isinstance(render_template(template, row), str)


@FAST
@given(template=st.text(max_size=200), columns=st.lists(st.text(max_size=10), max_size=30))
def test_validate_template_raises_only_template_error(template, columns):
    try:
        validate_template(template, columns)
    except TemplateError as exc:
        assert "{" in str(exc)
        return
    assert set(template_fields(template)) <= set(columns)


LITERAL = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=12)
BRACE_FREE = st.text(alphabet=st.characters(blacklist_characters="{}", blacklist_categories=("Cs",)), max_size=12)


@st.composite
def simple_templates(draw):
    names = draw(st.lists(SIMPLE_NAME, min_size=1, max_size=5))
    literals = draw(st.lists(LITERAL, min_size=len(names) + 1, max_size=len(names) + 1))
    parts = [literals[0]]
    for name, literal in zip(names, literals[1:], strict=True):
        parts += ["{" + name + "}", literal]
    return names, literals, "".join(parts)


@FAST
@given(spec=simple_templates(), data=st.data())
def test_template_fields_and_render_round_trip_for_simple_names(spec, data):
    names, literals, template = spec
    assert template_fields(template) == list(dict.fromkeys(names))
    # Filling each placeholder with itself gives the template back, and the same fields.
    itself = render_template(template, {name: "{" + name + "}" for name in names})
    assert itself == template
    assert template_fields(itself) == template_fields(template)
    # Filling with values puts each value exactly where its placeholder was.
    row = {name: data.draw(BRACE_FREE) for name in dict.fromkeys(names)}
    rendered = render_template(template, row)
    expected = literals[0] + "".join(row[name] + literal for name, literal in zip(names, literals[1:], strict=True))
    assert rendered == expected
    validate_template(template, list(row))


@pytest.mark.parametrize("value", ['{"a": {"b": 1}}', "use {{name}} here", "}}", "{{"])
def test_render_template_sends_cell_values_verbatim(value):
    assert render_template("Row: {col}", {"col": value}) == f"Row: {value}"


def test_a_pandas_na_cell_renders_empty_and_sends_null():
    assert render_template("[{a}]", {"a": pd.NA}) == "[]"
    assert row_payload({"a": pd.NA}, ["a"]) == '{"a": null}'


# ---------------------------------------------------------------------------------------------
# classify

REQUEST = httpx2.Request("POST", "http://x")
STATUS_ERRORS = [
    openai.APIStatusError,
    openai.BadRequestError,
    openai.AuthenticationError,
    openai.PermissionDeniedError,
    openai.NotFoundError,
    openai.ConflictError,
    openai.UnprocessableEntityError,
    openai.RateLimitError,
    openai.InternalServerError,
]
HEADER_TEXT = st.text(alphabet=string.ascii_letters + string.digits + " .-:,", max_size=20)
KEY_CHARS = string.ascii_letters + string.digits + "_-"
KEYS = st.builds(
    lambda prefix, body: prefix + body,
    st.sampled_from(["", "sk-", "sk-proj-", "sk-or-v1-", "sk-ant-api03-", "gsk_", "AIza", "tgp_v1_"]),
    st.text(alphabet=KEY_CHARS, min_size=12, max_size=60).filter(lambda k: any(c.isdigit() for c in k)),
)


@st.composite
def status_errors(draw, key: str):
    status = draw(st.integers(100, 599))
    with_key = draw(st.sampled_from([f"Incorrect API key provided: {key}.", f"key={key}", ""]))
    body = draw(
        JSON_VALUE
        | st.fixed_dictionaries({"error": st.fixed_dictionaries({"message": st.text(max_size=40) | JSON_LEAF})})
        | st.just({"error": {"message": with_key, "code": draw(st.text(max_size=20)), "type": "x"}})
        | st.just([{"error": {"message": with_key, "status": "INVALID_ARGUMENT"}}])
    )
    headers = draw(st.dictionaries(st.sampled_from(["retry-after", "retry-after-ms", "x-other"]), HEADER_TEXT))
    if draw(st.booleans()):
        response = httpx2.Response(status, json=body, request=REQUEST, headers=headers)
    else:
        content = draw(st.text(max_size=60)) + with_key
        kind = draw(st.sampled_from(["application/json", "text/plain", "text/html"]))
        response = httpx2.Response(
            status, content=content.encode(), request=REQUEST, headers={**headers, "content-type": kind}
        )
    cls = draw(st.sampled_from(STATUS_ERRORS))
    return cls(draw(st.text(max_size=40)) + with_key, response=response, body=draw(st.sampled_from([body, None])))


@st.composite
def any_exception(draw, key: str):
    text = draw(st.text(max_size=60)) + draw(st.sampled_from(["", f" {key} ", "timed out"]))
    makers = [
        lambda: draw(status_errors(key)),
        lambda: openai.APITimeoutError(REQUEST),
        lambda: openai.APIConnectionError(message=text, request=REQUEST),
        lambda: openai.APIResponseValidationError(httpx2.Response(200, request=REQUEST), body=text),
        lambda: TimeoutError(text),
        lambda: ConnectionResetError(104, text),
        lambda: OSError(text),
        lambda: ValueError(text),
        lambda: json.JSONDecodeError(text, "doc", 0),
        lambda: ReplyError(draw(st.sampled_from(list(ErrorKind))), text, raw=text),
        lambda: asyncio.CancelledError(),
        lambda: KeyError(draw(JSON_VALUE.map(repr) | st.binary(max_size=8))),
        lambda: RuntimeError(text),
        lambda: Exception(),
        lambda: Exception(*draw(st.lists(JSON_LEAF, max_size=3))),
    ]
    return draw(st.sampled_from(makers))()


@FAST
@given(data=st.data(), key=st.none() | KEYS)
def test_classify_always_answers_with_a_kind_and_a_message_and_never_shows_the_key(data, key):
    exc = data.draw(any_exception(key or "sk-placeholder-0000000000"))
    provider = data.draw(st.sampled_from(list(PROVIDERS)))
    base_url = data.draw(st.none() | st.just("http://localhost:1234/v1"))
    plain = classify(exc, key=key, base_url=base_url)
    # The same, worded for the provider (its name; for a rejected key, what its format says).
    worded = describe_error(exc, Connection(provider, api_key=key, base_url=base_url))
    assert (worded.kind, worded.status, worded.retry_after) == (plain.kind, plain.status, plain.retry_after)
    for result in (plain, worded):
        assert result.kind in KINDS
        assert isinstance(result.message, str) and result.message.strip()
        assert isinstance(result.action, str) and result.action.strip()
        assert result.user_text().strip()
        assert result.retryable == KINDS[result.kind].retryable
        assert result.retry_after is None or result.retry_after >= 0
        if isinstance(exc, openai.APIStatusError):
            assert result.status == exc.status_code
        if key:
            for text in (result.message, result.action, result.detail, result.user_text()):
                assert key not in text


def test_classify_survives_an_exception_whose_str_raises():
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no text")

    assert classify(Unprintable()).kind == ErrorKind.UNKNOWN


# ---------------------------------------------------------------------------------------------
# mask_key and redact


@FAST
@given(key=KEYS)
def test_mask_key_shows_at_most_a_prefix_and_the_last_four(key):
    masked = mask_key(key)
    assert key not in masked
    assert masked.endswith(key[-4:]) and "…" in masked
    assert len(masked) <= len("sk-proj-") + 1 + 4


@FAST
@given(key=KEYS, before=st.text(max_size=60), after=st.text(max_size=60), times=st.integers(1, 3))
@example(key="abcdefghijk1", before="abcdefghijk", after="1abcdefghijk1", times=2)
def test_redact_never_leaks_a_given_key(key, before, after, times):
    text = before + (key + after) * times
    redacted = redact(text, [key])
    assert key not in redacted


@FAST
@given(
    key=st.builds(
        lambda prefix, body: prefix + body,
        st.sampled_from(["sk-", "sk-proj-", "sk-or-v1-", "sk-ant-api03-", "gsk_", "tgp_v1_"]),
        st.text(alphabet=string.ascii_letters + string.digits, min_size=20, max_size=60),
    ),
    before=st.text(max_size=40),
    after=st.text(alphabet=" .,:;!?\n)('\"", max_size=40),
)
def test_redact_hides_keys_of_known_shape_even_when_not_given(key, before, after):
    assert key not in redact(f"{before}{key}{after}")
