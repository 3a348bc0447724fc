"""Survey platforms' exports, recognised from their structure: the extra header rows some of them
write under the header are not responses, and the question texts they hold become column
descriptions ("Q7" means nothing to a model; "How satisfied are you with ...?" does).

- Qualtrics (CSV; TSV in UTF-16; Excel): row 1 the column names (``StartDate``, ``Q7``), row 2
  each column's label or question text, row 3 ``{"ImportId":"QID7"}`` cells. The legacy export has
  no ImportId row and names its metadata ``V1``...``V10`` (row 2: ``ResponseID``, ``ResponseSet``...).
  Without the ImportId row, the pairs of metadata names and labels in rows 1-2 are the evidence.
- SurveyMonkey: row 1 the question texts, blank over the further columns of a question that has
  several; row 2 each column's option ("Apple"), or "Response" / "Open-Ended Response" /
  "Other (please specify)"; blank under the respondent metadata (``Respondent ID``...).
- LimeSurvey: one header row of question codes (``G01Q01``, ``G01Q02[SQ001]``), of full question
  texts, or of both ("G01Q01. What ...?", the separator being the export's choice), with its
  metadata columns (``id``/"Response ID", ``submitdate``, ``lastpage``, ``startlanguage``, ``seed``).
- REDCap: one header row: variable names in the raw export (``record_id``, ``redcap_event_name``,
  ``<form>_complete`` holding 0/1/2), field labels in the labels export ("Record ID", "Complete?").
  A raw export holds no question texts: they are in the project's data dictionary.

English exports only: the metadata labels these rely on are the platforms' English ones.
"""

import html
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from handai_io.frames import Row

EVIDENCE_ROWS = 50  # rows under the header looked at
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_BREAKING_TAG = re.compile(r"</?(br|p|div|li|ul|ol|tr|td|h[1-6])\b[^<>]*>", re.IGNORECASE)  # a tag that breaks a line


@dataclass
class Survey:
    platform: str  # "Qualtrics", "SurveyMonkey", "LimeSurvey", "REDCap"
    extra_rows: int  # header rows under the header that are not responses
    names: Row  # each column's name
    descriptions: list[str | None]  # each column's human text (aligned with names), None where there is none
    note: str


def recognise(header: Row, below: list[Row]) -> Survey | None:
    """The survey export whose header this is (``below``: the rows under it), or None."""
    recognisers: tuple[Callable[[Row, list[Row]], Survey | None], ...] = (
        _qualtrics,
        _surveymonkey,
        _limesurvey,
        _redcap,
    )
    for recogniser in recognisers:
        survey = recogniser(header, below)
        if survey is not None:
            return survey
    return None


def _plain(text: str | None) -> str:
    """Text for a person: HTML tags dropped, entities decoded, runs of whitespace one space."""
    text = text or ""
    if "<" in text:
        text = _BREAKING_TAG.sub(" ", text)
        text = _TAG.sub("", text)
    if "&" in text:
        text = html.unescape(text)
    return " ".join(text.split())


def _cell(row: Row, position: int) -> str:
    return (row[position] or "").strip() if position < len(row) else ""


def _width(*rows: Row) -> int:
    return max(len(row) for row in rows)


# -- Qualtrics

# A metadata column's name (row 1) and its label (row 2), in the current and the legacy export.
_QUALTRICS_METADATA = {
    "StartDate": "Start Date",
    "EndDate": "End Date",
    "Status": "Response Type",
    "IPAddress": "IP Address",
    "RecordedDate": "Recorded Date",
    "ResponseId": "Response ID",
    "RecipientLastName": "Recipient Last Name",
    "RecipientFirstName": "Recipient First Name",
    "RecipientEmail": "Recipient Email",
    "ExternalReference": "External Data Reference",
    "LocationLatitude": "Location Latitude",
    "LocationLongitude": "Location Longitude",
    "DistributionChannel": "Distribution Channel",
    "UserLanguage": "User Language",
    "V1": "ResponseID",
    "V2": "ResponseSet",
    "V3": "Name",
    "V4": "ExternalDataReference",
    "V5": "EmailAddress",
    "V6": "IPAddress",
    "V7": "Status",
    "V8": "StartDate",
    "V9": "EndDate",
    "V10": "Finished",
}


def _qualtrics(header: Row, below: list[Row]) -> Survey | None:
    if not below:
        return None
    texts = below[0]
    if _is_import_ids(texts):  # the question texts were deleted, the import ids kept
        note = "Recognised a Qualtrics export: 1 extra header row (import ids) is not data and was left out."
        return Survey("Qualtrics", 1, header, [None] * len(header), note)
    pairs = sum(
        _QUALTRICS_METADATA.get(_cell(header, position)) == _cell(texts, position)
        for position in range(_width(header, texts))
    )
    if len(below) > 1 and _is_import_ids(below[1]):
        extra, what = 2, "2 extra header rows (question text, import ids) are"
    elif pairs >= 2:
        extra, what = 1, "1 extra header row (question text) is"
    else:
        return None
    form = " (legacy format)" if _cell(header, 0) == "V1" else ""
    descriptions = [_plain(_cell(texts, position)) or None for position in range(_width(header, texts))]
    note = f"Recognised a Qualtrics export{form}: {what} not data; the question texts are kept as column descriptions."
    return Survey("Qualtrics", extra, header, descriptions, note)


def _is_import_ids(row: Row) -> bool:
    """Whether most filled cells are Qualtrics' ``{"ImportId": "QID7"}``."""
    cells = [cell.strip() for cell in row if cell and cell.strip()]
    return bool(cells) and sum(_is_import_id(cell) for cell in cells) * 2 > len(cells)


def _is_import_id(cell: str) -> bool:
    if not (cell.startswith("{") and "ImportId" in cell):
        return False
    try:
        value = json.loads(cell)
    except ValueError:
        return False
    return isinstance(value, dict) and "ImportId" in value


# -- SurveyMonkey

_ANSWER_LABELS = ("Response", "Open-Ended Response")  # row 2 under a question with one answer column
_NAME_QUESTION_CHARS = 60  # a question's text in a column's name is cut to about this; descriptions keep it all
_VALUE = re.compile(r"[\d.,:/ +-]+")


def _surveymonkey(header: Row, below: list[Row]) -> Survey | None:
    if not below:
        return None
    options = below[0]
    width = _width(header, options)
    questions = [_cell(header, position) for position in range(width)]
    labels = [_cell(options, position) for position in range(width)]
    answers = sum(label in _ANSWER_LABELS for label in labels)
    continued = [position for position, question in enumerate(questions) if not question]
    shaped = (
        answers >= 1
        and questions[0] != ""
        and all(labels[position] for position in continued)  # a further column of a question names its option
        and not any(_VALUE.fullmatch(label) for label in labels)  # numbers, dates: a response, not a label
        and (continued or questions[0] == "Respondent ID" or (answers >= 2 and answers * 2 >= sum(map(bool, labels))))
    )
    if not shaped:
        return None
    names: Row = []
    descriptions: list[str | None] = []
    question = ""
    for text, label in zip(questions, labels, strict=True):
        question = _plain(text) or question
        option = _plain(label)
        if option and label not in _ANSWER_LABELS:
            names.append(f"{_shortened(question)} - {option}")
            descriptions.append(f"{question} - {option}")
        else:
            names.append(_shortened(question))
            descriptions.append(question)
    note = (
        "Recognised a SurveyMonkey export: its second header row (answer options) is not data; each column is "
        "named from its question and option, and the full question texts are kept as column descriptions."
    )
    return Survey("SurveyMonkey", 1, names, descriptions, note)


def _shortened(text: str) -> str:
    """The text, or its first words up to about _NAME_QUESTION_CHARS characters and an ellipsis."""
    if len(text) <= _NAME_QUESTION_CHARS:
        return text
    cut = text[: _NAME_QUESTION_CHARS + 1].rsplit(" ", 1)[0] or text[:_NAME_QUESTION_CHARS]
    return cut.rstrip(" ,;:-–") + "…"


# -- LimeSurvey

# Metadata columns as code and as text; the first of each is the export's first column.
_LIME_CODES = ("id", "submitdate", "lastpage", "startlanguage", "seed", "startdate", "datestamp")
_LIME_TEXTS = (
    "Response ID",
    "Date submitted",
    "Last page",
    "Start language",
    "Seed",
    "Date started",
    "Date last action",
)
_LIME_CODE_TEXT = re.compile(r"id(\W+)Response ID")  # the first column in the code & text form: its separator
_LIME_CODE = r"[A-Za-z][A-Za-z0-9_]*(?:\[[^\]]*\])*"  # G01Q01, G01Q02[SQ001], Q3[SQ001][1]


def _limesurvey(header: Row, below: list[Row]) -> Survey | None:
    first = _cell(header, 0)
    names = [_cell(header, position) for position in range(len(header))]
    if first == _LIME_CODES[0] and _count_in(names, _LIME_CODES[1:]) >= 2:
        note = (
            "Recognised a LimeSurvey export with question codes as column names. It holds no question texts: "
            'export with the headings "Question code & question text" to have them as column descriptions.'
        )
        return Survey("LimeSurvey", 0, header, [None] * len(header), note)
    if first == _LIME_TEXTS[0] and _count_in(names, _LIME_TEXTS[1:]) >= 2:
        note = "Recognised a LimeSurvey export with the question texts as column names."
        return Survey("LimeSurvey", 0, header, [None] * len(header), note)
    separator = _LIME_CODE_TEXT.fullmatch(first)
    if separator is None:
        return None
    split = re.compile(f"({_LIME_CODE}){re.escape(separator.group(1))}(.*)", re.DOTALL)
    pairs = [split.fullmatch(name) for name in names]
    metadata = [f"{code}{separator.group(1)}{text}" for code, text in zip(_LIME_CODES, _LIME_TEXTS, strict=True)]
    if _count_in(names, metadata[1:]) < 2:
        return None
    note = (
        "Recognised a LimeSurvey export with question codes and texts as headings: the codes are the column "
        "names, the question texts their descriptions."
    )
    return Survey(
        "LimeSurvey",
        0,
        [pair.group(1) if pair else name for pair, name in zip(pairs, names, strict=True)],
        [_plain(pair.group(2)) if pair else None for pair in pairs],
        note,
    )


def _count_in(names: Sequence[str], wanted: Sequence[str]) -> int:
    present = set(names)
    return sum(name in present for name in wanted)


# -- REDCap

_REDCAP_FIELDS = (
    "redcap_event_name",
    "redcap_repeat_instrument",
    "redcap_repeat_instance",
    "redcap_data_access_group",
    "redcap_survey_identifier",
)
_REDCAP_LABELS = (
    "Event Name",
    "Repeat Instrument",
    "Repeat Instance",
    "Data Access Group",
    "Survey Identifier",
    "Survey Timestamp",
    "Complete?",
)
_COMPLETION_CODES = {"0", "1", "2"}  # a form's status: incomplete, unverified, complete


def _redcap(header: Row, below: list[Row]) -> Survey | None:
    names = [_cell(header, position) for position in range(len(header))]
    first = _cell(header, 0)
    if _count_in(names, _REDCAP_FIELDS) or (first == "record_id" and _has_completion_column(names, below)):
        note = (
            "Recognised a REDCap export with variable names as column names. It holds no question texts: "
            "they are in the project's data dictionary."
        )
    elif first == "Record ID" and _count_in(names, _REDCAP_LABELS):
        note = "Recognised a REDCap export with the field labels as column names."
    else:
        return None
    return Survey("REDCap", 0, header, [None] * len(header), note)


def _has_completion_column(names: list[str], below: list[Row]) -> bool:
    """A ``<form>_complete`` column holding only 0, 1 and 2."""
    for position, name in enumerate(names):
        if name.endswith("_complete"):
            values = {_cell(row, position) for row in below} - {""}
            if values and values <= _COMPLETION_CODES:
                return True
    return False
