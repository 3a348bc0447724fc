"""handai_io and survey platforms' exports: exactly the responses are loaded, and each question's
text is kept as its column's description.

The fixtures are built here, in code, in the shapes the platforms export (see handai_io/surveys.py).
"""

import csv
import io

import openpyxl
import pandas as pd
import pytest

from handai_io import ReadOptions, read_table


def values(df: pd.DataFrame) -> list[list[str | None]]:
    """Cells as plain Python values, NaN as None, for exact comparisons."""
    return df.astype(object).where(df.notna(), None).values.tolist()


def delimited(rows: list[list[str]], delimiter: str = ",") -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


def xlsx(rows: list[list[str]]) -> bytes:
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append([cell or None for cell in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def as_read(rows: list[list[str]]) -> list[list[str | None]]:
    return [[cell or None for cell in row] for row in rows]


# ---------------------------------------------------------------------------------------------
# Qualtrics

Q_NAMES = ["StartDate", "EndDate", "Status", "IPAddress", "Progress", "Duration (in seconds)", "Finished"]
Q_NAMES += ["RecordedDate", "ResponseId", "Q1", "Q7", "Q8_1", "Q8_2", "Q9_TEXT"]
Q_TEXTS = ["Start Date", "End Date", "Response Type", "IP Address", "Progress", "Duration (in seconds)", "Finished"]
Q_TEXTS += ["Recorded Date", "Response ID", "How old are you?", "How satisfied are you with\nour service, overall?"]
Q_TEXTS += ["Which fruits do you like? - Apple", "Which fruits do you like? - Banana"]
Q_TEXTS += ["Anything else? <b>Tell us</b>,&nbsp;please."]
Q_IDS = [
    '{"ImportId":"startDate","timeZone":"America/Denver"}',
    '{"ImportId":"endDate","timeZone":"America/Denver"}',
    '{"ImportId":"status"}',
    '{"ImportId":"ipAddress"}',
    '{"ImportId":"progress"}',
    '{"ImportId":"duration"}',
    '{"ImportId":"finished"}',
    '{"ImportId":"recordedDate","timeZone":"America/Denver"}',
    '{"ImportId":"_recordId"}',
    '{"ImportId":"QID1"}',
    '{"ImportId":"QID7"}',
    '{"ImportId":"QID8_1"}',
    '{"ImportId":"QID8_2"}',
    '{"ImportId":"QID9_TEXT"}',
]
Q_RESPONSES = [
    ["2024-03-01 10:00:00", "2024-03-01 10:05:00", "0", "192.0.2.1", "100", "300", "1", "2024-03-01 10:05:01"]
    + ["R_1abc", "34", "Very satisfied", "1", "", "Great, thanks"],
    ["2024-03-02 09:00:00", "2024-03-02 09:01:10", "0", "192.0.2.2", "100", "70", "1", "2024-03-02 09:01:11"]
    + ["R_2def", "61", "Dissatisfied", "", "1", 'The "app" crashes\non start'],
]
Q_DESCRIPTIONS = {
    "StartDate": "Start Date",
    "EndDate": "End Date",
    "Status": "Response Type",
    "IPAddress": "IP Address",
    "RecordedDate": "Recorded Date",
    "ResponseId": "Response ID",
    "Q1": "How old are you?",
    "Q7": "How satisfied are you with our service, overall?",
    "Q8_1": "Which fruits do you like? - Apple",
    "Q8_2": "Which fruits do you like? - Banana",
    "Q9_TEXT": "Anything else? Tell us, please.",
}
Q_NOTE = (
    "Recognised a Qualtrics export: 2 extra header rows (question text, import ids) are not data; "
    "the question texts are kept as column descriptions."
)


def check_qualtrics(data: bytes, name: str) -> None:
    table = read_table(data, name)
    assert list(table.df.columns) == Q_NAMES
    assert values(table.df) == as_read(Q_RESPONSES)  # the question texts and import ids are not responses
    assert (table.survey, table.descriptions) == ("Qualtrics", Q_DESCRIPTIONS)
    assert (table.header_row, table.skipped_rows) == (1, 0)
    assert Q_NOTE in table.notes


def test_qualtrics_csv_loads_exactly_the_responses():
    check_qualtrics(delimited([Q_NAMES, Q_TEXTS, Q_IDS, *Q_RESPONSES]).encode("utf-8-sig"), "survey.csv")


def test_qualtrics_tsv_in_utf16_loads_exactly_the_responses():
    data = delimited([Q_NAMES, Q_TEXTS, Q_IDS, *Q_RESPONSES], "\t").encode("utf-16")
    check_qualtrics(data, "survey.tsv")
    check_qualtrics(data, "survey.csv")  # the same export renamed: the tab is sniffed


def test_qualtrics_excel_loads_exactly_the_responses():
    check_qualtrics(xlsx([Q_NAMES, Q_TEXTS, Q_IDS, *Q_RESPONSES]), "survey.xlsx")


def test_qualtrics_without_the_import_id_row_is_recognised_by_its_metadata_columns():
    table = read_table(delimited([Q_NAMES, Q_TEXTS, *Q_RESPONSES]).encode(), "no_ids.csv")
    assert values(table.df) == as_read(Q_RESPONSES)
    assert (table.survey, table.descriptions) == ("Qualtrics", Q_DESCRIPTIONS)
    assert (
        "Recognised a Qualtrics export: 1 extra header row (question text) is not data; "
        "the question texts are kept as column descriptions." in table.notes
    )


def test_qualtrics_legacy_export_with_v_columns():
    names = ["V1", "V2", "V3", "V4", "V5", "V6", "V7", "V8", "V9", "V10", "Q1", "Q2"]
    texts = ["ResponseID", "ResponseSet", "Name", "ExternalDataReference", "EmailAddress", "IPAddress", "Status"]
    texts += ["StartDate", "EndDate", "Finished", "How old are you?", "Why did you choose us?"]
    responses = [["R_1", "Default Response Set", "Anonymous", "", "", "192.0.2.1", "0", "2015-01-05 10:00:00"]]
    responses[0] += ["2015-01-05 10:03:00", "1", "34", "Price, mostly"]
    table = read_table(delimited([names, texts, *responses]).encode(), "legacy.csv")
    assert values(table.df) == as_read(responses)
    assert table.survey == "Qualtrics"
    assert table.descriptions["V1"] == "ResponseID"
    assert table.descriptions["Q2"] == "Why did you choose us?"
    assert any(
        note.startswith("Recognised a Qualtrics export (legacy format): 1 extra header row") for note in table.notes
    )


def test_skip_rows_turns_survey_recognition_off():
    table = read_table(delimited([Q_NAMES, Q_TEXTS, Q_IDS, *Q_RESPONSES]).encode(), "s.csv", ReadOptions(skip_rows=0))
    assert (table.survey, table.descriptions) == (None, {})
    assert len(table.df) == 2 + len(Q_RESPONSES)


# ---------------------------------------------------------------------------------------------
# SurveyMonkey

LONG_QUESTION = "What would make our service better? Please tell us as much as you like, in your own words."
SM_QUESTIONS = ["Respondent ID", "Collector ID", "Start Date", "End Date", "IP Address", "Email Address"]
SM_QUESTIONS += ["Which fruits do you like?", "", "", "How old are you?", LONG_QUESTION, ""]
SM_OPTIONS = ["", "", "", "", "", "", "Apple", "Banana", "Other (please specify)", "Response"]
SM_OPTIONS += ["Open-Ended Response", "Anything else?"]
SM_RESPONSES = [
    ["114000001", "2400001", "03/01/2024 10:00:00 AM", "03/01/2024 10:05:00 AM", "192.0.2.1", ""]
    + ["Apple", "", "mango", "25-34", "Faster delivery, please", ""],
    ["114000002", "2400001", "03/02/2024 09:00:00 AM", "03/02/2024 09:03:00 AM", "192.0.2.2", ""]
    + ["Apple", "Banana", "", "55-64", "", "No"],
]
SHORT = "What would make our service better? Please tell us as much…"
SM_NAMES = ["Respondent ID", "Collector ID", "Start Date", "End Date", "IP Address", "Email Address"]
SM_NAMES += ["Which fruits do you like? - Apple", "Which fruits do you like? - Banana"]
SM_NAMES += ["Which fruits do you like? - Other (please specify)", "How old are you?", SHORT]
SM_NAMES += [f"{SHORT} - Anything else?"]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_surveymonkey_two_row_header_becomes_readable_names_and_descriptions(fmt):
    rows = [SM_QUESTIONS, SM_OPTIONS, *SM_RESPONSES]
    data = delimited(rows).encode() if fmt == "csv" else xlsx(rows)
    table = read_table(data, f"monkey.{fmt}")
    assert list(table.df.columns) == SM_NAMES
    assert values(table.df) == as_read(SM_RESPONSES)  # the option labels are not a response
    assert table.survey == "SurveyMonkey"
    assert table.descriptions == {
        SHORT: LONG_QUESTION,
        f"{SHORT} - Anything else?": f"{LONG_QUESTION} - Anything else?",
    }
    assert any(note.startswith("Recognised a SurveyMonkey export: its second header row") for note in table.notes)


# ---------------------------------------------------------------------------------------------
# LimeSurvey

LIME_RESPONSES = [
    ["1", "2024-03-01 10:05:00", "2", "en", "123456", "Ann", "Y", ""],
    ["2", "2024-03-02 09:03:00", "2", "de", "654321", "Jörg", "", "Y"],
]


def test_limesurvey_with_codes_and_texts_keeps_the_texts_as_descriptions():
    header = ["id. Response ID", "submitdate. Date submitted", "lastpage. Last page", "startlanguage. Start language"]
    header += ["seed. Seed", "G01Q01. What is your name?", "G01Q02[SQ001]. Which fruits do you like? [Apple]"]
    header += ["G01Q02[SQ002]. Which fruits do you like? [Banana]"]
    table = read_table(delimited([header, *LIME_RESPONSES]).encode("utf-8-sig"), "results-survey123.csv")
    assert list(table.df.columns) == [
        "id",
        "submitdate",
        "lastpage",
        "startlanguage",
        "seed",
        "G01Q01",
        "G01Q02[SQ001]",
        "G01Q02[SQ002]",
    ]
    assert values(table.df) == as_read(LIME_RESPONSES)
    assert table.survey == "LimeSurvey"
    assert table.descriptions["G01Q01"] == "What is your name?"
    assert table.descriptions["G01Q02[SQ002]"] == "Which fruits do you like? [Banana]"
    assert table.descriptions["submitdate"] == "Date submitted"


@pytest.mark.parametrize(
    ("header", "said"),
    [
        (
            ["id", "submitdate", "lastpage", "startlanguage", "seed", "G01Q01", "G01Q02[SQ001]", "G01Q02[SQ002]"],
            "codes",
        ),
        (
            ["Response ID", "Date submitted", "Last page", "Start language", "Seed", "What is your name?"]
            + ["Which fruits do you like? [Apple]", "Which fruits do you like? [Banana]"],
            "texts",
        ),
    ],
)
def test_limesurvey_with_one_kind_of_heading_is_recognised(header, said):
    table = read_table(delimited([header, *LIME_RESPONSES]).encode(), "results.csv")
    assert (list(table.df.columns), values(table.df)) == (header, as_read(LIME_RESPONSES))
    assert (table.survey, table.descriptions) == ("LimeSurvey", {})
    assert any(note.startswith("Recognised a LimeSurvey export") and said in note for note in table.notes)


# ---------------------------------------------------------------------------------------------
# REDCap

REDCAP_RESPONSES = [["1", "baseline_arm_1", "", "2024-03-01 10:05", "34", "1", "0", "2"]]


def test_redcap_raw_export_is_recognised():
    header = ["record_id", "redcap_event_name", "redcap_survey_identifier", "demographics_timestamp", "age"]
    header += ["fruits___1", "fruits___2", "demographics_complete"]
    table = read_table(delimited([header, *REDCAP_RESPONSES]).encode(), "PROJECT_DATA_2024-03-01.csv")
    assert (list(table.df.columns), values(table.df)) == (header, as_read(REDCAP_RESPONSES))
    assert (table.survey, table.descriptions) == ("REDCap", {})
    assert any("data dictionary" in note for note in table.notes)


def test_redcap_raw_export_without_redcap_columns_is_known_by_its_completion_column():
    table = read_table(b"record_id,age,demographics_complete\n1,34,2\n2,61,0\n", "raw.csv")
    assert table.survey == "REDCap"


def test_redcap_labels_export_is_recognised():
    header = ["Record ID", "Event Name", "Survey Identifier", "Survey Timestamp", "How old are you?"]
    header += ["Which fruits? (choice=Apple)", "Which fruits? (choice=Banana)", "Complete?"]
    rows = [["1", "Baseline", "", "2024-03-01 10:05", "34", "Checked", "Unchecked", "Complete"]]
    table = read_table(delimited([header, *rows]).encode(), "PROJECT_DATA_LABELS.csv")
    assert (list(table.df.columns), values(table.df)) == (header, as_read(rows))
    assert table.survey == "REDCap"


# ---------------------------------------------------------------------------------------------
# Not surveys: nothing is taken from the data


ORDINARY = {
    # A second row of long text is a response, not a question's wording.
    "long-text-in-row-2": (
        "id,question,answer\n1,How satisfied are you with our service overall?,Very much so - it was great\n"
        "2,Short,Fine\n",
        2,
    ),
    "question-like-row-2": (
        "Q1,Q2,Q3\nHow old are you?,Where do you live?,Why did you choose us?\n34,Berlin,Price\n",
        2,
    ),
    "response-in-a-record": ("id,,kind\n1,x,Response\n2,y,Open-Ended Response\n", 2),
    "response-under-a-blank-name": ("id,,kind\n1,note,Response\n", 1),
    "repeated-header": ("Progress,Finished,Status\nProgress,Finished,Status\n100,1,0\n", 2),
    "one-limesurvey-like-column": ("id,submitdate,answer\n1,2024-01-01,yes\n", 1),
    "complete-column-of-words": ("record_id,x_complete\nA,done\n", 1),
}


@pytest.mark.parametrize(("text", "rows"), list(ORDINARY.values()), ids=list(ORDINARY))
def test_an_ordinary_table_is_not_taken_for_a_survey_export(text, rows):
    table = read_table(text.encode(), "ordinary.csv")
    assert (table.survey, table.descriptions, len(table.df)) == (None, {}, rows)
    assert not any("Recognised" in note for note in table.notes)
