"""Blocks of a document → segments: the whole document, its paragraphs, its pages or its speaker
turns; then segments longer than the stated size are cut at paragraph, then sentence boundaries.

A segment keeps its position (page, paragraph or line) so a quote can be found in its source.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from handai_io.documents.readers import Block

SPLITS = ("document", "paragraph", "page", "turn")

# A turn opens a line: an optional timestamp ("[00:01:02]", "00:01", "(1:02:03)"), then a speaker
# ("Interviewer", "Speaker 1", "Dr. Ann Lee", "P3", "ANN") and a colon. Names are one to four
# capitalised words, so "Note that: ..." or "see http://..." do not open a turn.
_TIMESTAMP = r"(?:[\[(]?\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?[\])]?\s*[-–]?\s*)?"
_NAME = r"(?:Speaker\s+\d+|[A-Z][\w.'’-]{0,30}(?:\s+(?:[A-Z][\w.'’-]{0,30}|\d+)){0,3})"
_TURN = re.compile(
    rf"^\s*{_TIMESTAMP}(?:\*\*)?(?P<speaker>{_NAME})(?:\*\*)?\s*(?:\[[^\]]{{1,20}}\]\s*)?:(?:\*\*)?(?:\s+|$)(?P<rest>.*)$"
)
# Labels that name a speaker by role, and the keys of a transcript's header block (casefolded).
_ROLE = re.compile(
    r"(?:speaker|interviewer|interviewee|respondent|participant|moderator|facilitator|researcher|"
    r"int|resp|[iprq]|a)\s*\d*"
)
_HEADER_KEYS = frozenset(
    (
        *("date", "time", "start time", "duration", "length", "location", "place", "venue", "setting"),
        *("title", "subject", "topic", "project", "study", "site", "session", "language", "source"),
        *("file", "filename", "recording", "audio", "transcript", "transcriber", "transcribed by"),
        *("note", "notes", "comment", "comments", "summary", "keywords", "interview date", "recording date"),
        *("attendees", "participants", "present", "participant id", "id", "age", "gender", "occupation"),
    )
)
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)]*\s+")


@dataclass(frozen=True)
class Segment:
    position: str
    text: str
    speaker: str | None = None


def segments(blocks: list[Block], split: str) -> list[Segment]:
    """The document's blocks as segments of the chosen kind (``split`` in ``SPLITS``)."""
    if split == "document":
        return [Segment(_span(blocks), "\n\n".join(b.text for b in blocks))]
    if split == "page":
        return [Segment(f"page {b.number}", b.text) for b in blocks]
    if split == "paragraph":
        return [seg for b in blocks for seg in _paragraphs(b)]
    if split == "turn":
        return turns(blocks)
    raise ValueError(f"split must be one of {SPLITS}, not {split!r}")


def turns(blocks: list[Block]) -> list[Segment]:
    """Speaker turns: a line that opens with a speaker's "Name:" starts one, and the lines after it
    belong to it until the next. Text before the first turn is a segment without a speaker."""
    opening = _turn_openings(blocks)
    found: list[tuple[str, str | None, list[str]]] = []
    for b, block in enumerate(blocks):
        for offset, line in enumerate(block.text.split("\n")):
            match = opening.get((b, offset))
            if match:
                found.append((_line_position(block, offset), match["speaker"].strip(), [match["rest"].strip()]))
            elif not found:
                found.append((_line_position(block, offset), None, [line]))
            else:
                found[-1][2].append(line)
    result = []
    for position, speaker, lines in found:
        text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
        if text or speaker:
            result.append(Segment(position, text, speaker))
    return result


def has_turns(blocks: list[Block]) -> bool:
    return bool(_turn_openings(blocks))


def _turn_openings(blocks: list[Block]) -> dict[tuple[int, int], re.Match[str]]:
    """The lines (block index, line offset) that open a turn. "Date: 3 May 2021" looks like a turn
    too, so a label opens one only if it is a speaker's: it recurs in the document (people in a
    conversation speak more than once), or names a role ("Interviewer", "Speaker 2", "P3"), or
    comes once the conversation has begun (after such a turn). Header keys ("Date", "Location",
    "Notes"…) never do, even when a file of several interviews repeats them."""
    found = [
        ((b, offset), match)
        for b, block in enumerate(blocks)
        for offset, line in enumerate(block.text.split("\n"))
        if (match := _TURN.match(line))
    ]
    counts = Counter(_label(match) for _, match in found)
    openings: dict[tuple[int, int], re.Match[str]] = {}
    for where, match in found:
        label = _label(match)
        if label in _HEADER_KEYS:
            continue
        if openings or counts[label] > 1 or _ROLE.fullmatch(label):
            openings[where] = match
    return openings


def _label(match: re.Match[str]) -> str:
    return " ".join(match["speaker"].split()).casefold()


def split_long(text: str, max_chars: int) -> list[str]:
    """``text`` in pieces of at most ``max_chars``: whole paragraphs where they fit, else whole
    sentences, else whole words; a single word longer than the limit is cut."""
    if len(text) <= max_chars:
        return [text]
    pieces: list[str] = []
    for unit, joiner in _units(text, max_chars):
        if pieces and len(pieces[-1]) + len(joiner) + len(unit) <= max_chars:
            pieces[-1] += joiner + unit
        else:
            pieces.append(unit)
    return pieces


def _units(text: str, max_chars: int) -> list[tuple[str, str]]:
    """The smallest pieces to pack (paragraphs that fit, else sentences, else words), each with
    the joiner that glues it to the one before, so packed pieces keep their paragraph breaks."""
    units: list[tuple[str, str]] = []
    for paragraph in (p.strip() for p in _PARAGRAPH_BREAK.split(text)):
        if not paragraph:
            continue
        if len(paragraph) <= max_chars:
            units.append((paragraph, "\n\n"))
            continue
        for i, sentence in enumerate(s.strip() for s in _SENTENCE_END.split(paragraph)):
            for j, word_piece in enumerate(_words(sentence, max_chars)):
                units.append((word_piece, "\n\n" if i == j == 0 else " "))
    return units


def _words(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    pieces = [""]
    for word in sentence.split():
        while len(word) > max_chars:
            pieces.append(word[:max_chars])
            word = word[max_chars:]
        if pieces[-1] and len(pieces[-1]) + 1 + len(word) <= max_chars:
            pieces[-1] += " " + word
        else:
            pieces.append(word)
    return [p for p in pieces if p]


def _paragraphs(block: Block) -> list[Segment]:
    if block.unit == "paragraph":
        return [Segment(_block_position(block), block.text)]
    parts = [p.strip() for p in _PARAGRAPH_BREAK.split(block.text) if p.strip()]
    return [Segment(f"page {block.number}, paragraph {i}", p) for i, p in enumerate(parts, start=1)]


def _line_position(block: Block, offset: int) -> str:
    if block.unit == "page":
        return f"page {block.number}, line {offset + 1}"
    if block.first_line is not None:
        return f"line {block.first_line + offset}"
    return f"paragraph {block.number}"


def _block_position(block: Block) -> str:
    if block.first_line is not None:
        return f"paragraph {block.number} (line {block.first_line})"
    return f"{block.unit} {block.number}"


def _span(blocks: list[Block]) -> str:
    unit = blocks[0].unit
    first, last = blocks[0].number, blocks[-1].number
    return f"{unit} {first}" if first == last else f"{unit}s {first}-{last}"
