"""Widgets shared by the pages; pages `import handai_ui as ui` and call `ui.<name>`.

services       the process's database and engine (cached), this browser session's row
state          choices saved in the ledger's settings; widget values kept across pages
text           `md()` (untrusted text made literal for Markdown), clipping, durations
connections    key sources, the key and endpoint boxes, a provider's or a recorded run's Connection
sidebar        provider, model, key and parameters for the next run (`Choice`)
frame          page config and the sidebar, at the top of every page
upload         an uploaded table read once and kept for the session
columns        described columns: picker labels and the labelled row template
estimates      tokens, cost and time before a run
schema_editor  output fields as an editable table
instructions   few-shot examples under an instruction; saved instructions
row_select     which rows a run sends; the pre-flight check against the context window
progress       a run's bar, counters and errors
controls       start a run (asking first while one runs); Pause/Stop while active; Resume,
               budget, Retry failed after
run_edit       a past run's settings edited before Resume/Retry, or loaded back into a page
announce       a started run scrolled into view; a long run's end announced
results        the answers first: table, filters, the newest answers while it runs
run_charts     what came back: value counts, latency, throughput and errors over time
downloads      one download button per export format
inspector      one row as recorded, input beside answer; what was sent, the raw reply
provenance     what a run sent, from its record
run_section    the run a page shows, with its controls and results

Nothing here speaks SQL or HTTP, or holds business rules; the engine, handai_db and providers do.
"""

from .columns import column_label, labelled_template
from .connections import base_url_box, connection, key_box, key_for, local_servers, synced_text, test_provider
from .controls import clone_run, run_controls, start_request, submit_run
from .estimates import estimate_caption, generate_estimate_caption
from .frame import frame
from .instructions import examples_editor, instruction_library
from .provenance import what_was_sent
from .results import numbered, results_view
from .row_select import preflight_check, row_selection
from .run_edit import load_into_page
from .run_section import page_run_section
from .schema_editor import schema_editor
from .services import db, engine, session_id
from .sidebar import provider_name
from .state import keep, kept, remember
from .text import md
from .upload import Upload, earlier_upload, forget_upload, read_upload, reading_options, sheet_picker

__all__ = [
    "Upload",
    "base_url_box",
    "clone_run",
    "column_label",
    "connection",
    "db",
    "earlier_upload",
    "engine",
    "estimate_caption",
    "examples_editor",
    "forget_upload",
    "frame",
    "generate_estimate_caption",
    "instruction_library",
    "keep",
    "kept",
    "key_box",
    "key_for",
    "labelled_template",
    "load_into_page",
    "local_servers",
    "md",
    "page_run_section",
    "preflight_check",
    "provider_name",
    "read_upload",
    "reading_options",
    "sheet_picker",
    "remember",
    "numbered",
    "results_view",
    "row_selection",
    "run_controls",
    "schema_editor",
    "session_id",
    "start_request",
    "submit_run",
    "synced_text",
    "test_provider",
    "what_was_sent",
]
