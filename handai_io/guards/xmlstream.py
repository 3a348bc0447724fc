"""XML read as a stream of bounded pieces: tags never split, a document type declaration refused."""

from collections.abc import Callable, Iterable, Iterator
from xml.parsers import expat

from handai_io.guards.common import Damaged

_MAX_TAG_BYTES = 1 << 20  # an XML tag longer than this is no spreadsheet's


def xml_tags(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The same bytes, re-cut so that no tag is split between two pieces."""
    tail = b""
    for chunk in chunks:
        buffer = tail + chunk if tail else chunk
        last = buffer.rfind(b"<")
        if last < 0 or buffer.find(b">", last) >= 0:
            tail = b""
            yield buffer
            continue
        tail = buffer[last:]
        if len(tail) > _MAX_TAG_BYTES:
            raise Damaged("an XML tag of more than 1 MB")
        yield buffer[:last]
    if tail:
        yield tail


def parse_xml(
    chunks: Iterable[bytes],
    start: Callable[[str, dict[str, str]], None],
    end: Callable[[str], None],
    parser: "expat.XMLParserType | None" = None,
) -> None:
    """Stream XML through expat; a document type declaration (entities) counts as damage."""

    def refuse(*_: object) -> None:
        raise Damaged("a document type declaration")

    parser = parser or expat.ParserCreate()
    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.StartDoctypeDeclHandler = refuse
    parser.buffer_text = True
    try:
        for chunk in chunks:
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except expat.ExpatError as e:
        raise Damaged("not well-formed XML") from e
