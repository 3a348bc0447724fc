"""Codebooks as data: labels, problems, the stored record, the output schema and instruction the
coder gets, the table editor's frame; and the multi-label field type in handai_prompts."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from handai_prompts import (
    describe_flags,
    json_schema,
    make_schema,
    off_list,
    parse_reply,
    schema_instruction,
    system_message,
)
from research.codebook import (
    CODE_FIELD,
    CODES_FIELD,
    Code,
    Codebook,
    CodebookError,
    code_field,
    split_examples,
)

PRICE = Code(
    "price",
    "Mentions of cost, fees or value for money.",
    "The text names a price, a fee or says it is (not) worth it.",
    "Delivery charges alone: use delivery.",
    ("Way too expensive for what it is", "£30, really?"),
)
QUALITY = Code("quality", "The product breaks, works badly or is well made.", examples=("It broke after a week",))
SCREEN = Code("screen", "The display.", parent="quality")
CB = Codebook("Complaints", (PRICE, QUALITY, SCREEN), description="Customer complaints, 2024.")


# -- labels and problems --------------------------------------------------------------------------
def test_labels_are_the_codes_then_the_none_option():
    assert CB.labels() == ["price", "quality", "screen", "none"]
    assert Codebook("x", (PRICE,), none_code=None).labels() == ["price"]
    assert code_field(CB) == CODE_FIELD == "code"
    assert code_field(Codebook("x", (PRICE,), multi_label=True)) == CODES_FIELD == "codes"


def test_a_good_codebook_has_no_problems():
    assert CB.problems() == []
    assert CB.check() is CB


@pytest.mark.parametrize(
    ("codes", "none_code", "expected"),
    [
        ((), "none", "no codes"),
        ((Code(""),), "none", "Code 1 has no name"),
        ((Code("Price"), Code(" price ")), "none", "same name"),
        ((Code("a", parent="ghost"),), "none", "parent 'ghost', which is not a code"),
        ((Code("a", parent="b"), Code("b", parent="a")), "none", "round in a circle: a → b → a"),
        ((Code("a", parent="a"),), "none", "round in a circle: a → a"),
        ((Code("None"),), "none", "also a code's name"),
        ((Code("a"),), " ", "has no name"),
    ],
)
def test_problems_say_what_to_fix(codes, none_code, expected):
    codebook = Codebook("x", codes, none_code=none_code)
    problems = codebook.problems()
    assert any(expected in p for p in problems), problems
    with pytest.raises(CodebookError, match=expected.split(":")[0]):
        codebook.check()


def test_a_parent_cycle_is_reported_once():
    codebook = Codebook("x", (Code("a", parent="b"), Code("b", parent="c"), Code("c", parent="a")))
    assert [p for p in codebook.problems() if "circle" in p] == ["Parents go round in a circle: a → b → c → a."]


# -- the record -------------------------------------------------------------------------------
def test_the_record_is_json_and_reads_back_equal():
    codebook = Codebook('Ünï, "quoted"', (PRICE, SCREEN), multi_label=True, none_code=None, description="d\ne")
    record = json.loads(json.dumps(codebook.record()))
    assert Codebook.from_record(record) == codebook
    assert record["codes"][0]["examples"] == list(PRICE.examples)


def test_a_record_is_read_tolerantly_and_rejected_clearly():
    loose = Codebook.from_record({"codes": ["a", {"name": " b ", "examples": "x | y"}]})
    assert loose == Codebook("Codebook", (Code("a"), Code("b", examples=("x", "y"))))
    with pytest.raises(CodebookError, match="list of codes"):
        Codebook.from_record({"codes": "a, b"})
    with pytest.raises(CodebookError, match="Code 2"):
        Codebook.from_record({"codes": ["a", 3]})


# -- what the coder gets ------------------------------------------------------------------------
def test_single_label_schema_is_a_category_of_the_labels():
    schema = CB.output_schema()
    assert list(schema["fields"]) == ["code", "rationale", "evidence"]
    assert schema["fields"]["code"]["type"] == "category"
    assert schema["fields"]["code"]["labels"] == CB.labels()
    assert schema["fields"]["evidence"]["type"] == "string"
    sent = json_schema(schema)
    assert sent["properties"]["code"]["enum"] == ["price", "quality", "screen", "none"]
    assert list(CB.output_schema(rationale=False, evidence=False)["fields"]) == ["code"]


def test_multi_label_schema_is_a_list_of_the_labels():
    schema = Codebook("x", (PRICE, QUALITY), multi_label=True).output_schema()
    assert list(schema["fields"]) == ["codes", "rationale", "evidence"]
    assert schema["fields"]["codes"]["type"] == "categories"
    assert schema["fields"]["evidence"]["type"] == "object"
    prop = json_schema(schema)["properties"]["codes"]
    assert prop["type"] == "array" and prop["items"] == {"type": "string", "enum": ["price", "quality", "none"]}


def test_the_instruction_renders_the_codebook_and_the_rules():
    text = CB.instruction("Code each complaint.")
    assert text.startswith("Code each complaint.")
    for part in (
        "Complaints",
        "Customer complaints, 2024.",
        "- price\n  Definition: Mentions of cost, fees or value for money.",
        "Include when: The text names a price",
        "Exclude when: Delivery charges alone",
        'Examples: "Way too expensive for what it is"; "£30, really?"',
        "- screen (a kind of quality)",
        'answer "none"',
        "Choose the one code",
        'Use only these codes, spelled exactly as given: "price", "quality", "screen", "none".',
    ):
        assert part in text, part
    multi = Codebook("x", (PRICE,), multi_label=True, none_code=None).instruction()
    assert "every code that applies" in multi and '"none"' not in multi


# -- the table editor -------------------------------------------------------------------------
def test_frame_round_trip_and_blank_rows_skipped():
    frame = CB.to_frame()
    assert list(frame.columns) == ["name", "definition", "inclusion", "exclusion", "examples", "parent"]
    assert frame.loc[0, "examples"] == "Way too expensive for what it is\n£30, really?"
    assert Codebook.from_frame(frame, like=CB) == CB
    edited = pd.concat([frame, pd.DataFrame([{"name": None, "definition": "orphan"}])], ignore_index=True)
    edited.loc[1, "examples"] = "one | two"
    back = Codebook.from_frame(edited, name="Edited")
    assert back.name == "Edited" and [c.name for c in back.codes] == ["price", "quality", "screen"]
    assert back.codes[1].examples == ("one", "two")
    assert back.codes[2].parent == "quality"


def test_split_examples():
    assert split_examples("a\n b \n\n") == ["a", "b"]
    assert split_examples("a | b|c") == ["a", "b|c"]


# -- the multi-label field type ------------------------------------------------------------------
MULTI = make_schema([{"name": "codes", "type": "categories", "labels": "price, Quality issue, none"}])


def test_multi_label_fields_need_labels_and_are_described():
    assert MULTI["fields"]["codes"] == {
        "type": "categories",
        "description": "",
        "labels": ["price", "Quality issue", "none"],
    }
    assert 'A list of one or more of: "price", "Quality issue", "none".' in schema_instruction(MULTI)
    assert '{"codes": "array"}' in system_message("Code it.", MULTI, False)
    with pytest.raises(ValueError, match="needs its labels"):
        make_schema([{"name": "codes", "type": "categories", "labels": ""}])


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ({"codes": ["price", "quality issue"]}, ["price", "Quality issue"]),
        ({"codes": "Price; quality  ISSUE"}, ["price", "Quality issue"]),
        ({"codes": "price, none"}, ["price", "none"]),
        ({"codes": "price\nnone"}, ["price", "none"]),
        ({"codes": " PRICE "}, ["price"]),
        ({"codes": ["price", "Price", ""]}, ["price"]),
        ({"codes": ["banana", "price"]}, ["banana", "price"]),
        ({"codes": []}, []),
    ],
)
def test_multi_label_replies_become_lists_of_labels(reply, expected):
    assert parse_reply(json.dumps(reply), structured=True, schema=MULTI)["codes"] == expected


def test_a_label_with_a_comma_is_one_label():
    schema = make_schema([{"name": "codes", "type": "categories", "labels": ["cost, value", "other"]}])
    assert parse_reply('{"codes": "Cost, Value"}', structured=True, schema=schema)["codes"] == ["cost, value"]


def test_off_list_items_are_kept_and_flagged():
    parsed = parse_reply('{"codes": ["banana", "price", "kiwi"]}', structured=True, schema=MULTI)
    assert parsed["codes"] == ["banana", "price", "kiwi"]
    flags = off_list(parsed, MULTI)
    assert flags == {"codes": ["banana", "kiwi"]}
    assert describe_flags(flags, MULTI) == 'codes: "banana", "kiwi" are not among price, Quality issue, none'
    assert off_list({"codes": ["price"]}, MULTI) == {}
    assert off_list({"codes": None}, MULTI) == {}


def test_single_category_behaviour_is_unchanged():
    schema = make_schema([{"name": "sentiment", "type": "category", "labels": "positive, negative"}])
    assert parse_reply('{"sentiment": " Positive "}', structured=True, schema=schema) == {"sentiment": "positive"}
    assert off_list({"sentiment": "meh"}, schema) == {"sentiment": "meh"}
    assert describe_flags({"sentiment": "meh"}, schema) == 'sentiment: "meh" is not one of positive, negative'
