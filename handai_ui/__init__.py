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
progress       a run's bar, counters and errors
controls       start a run; Pause/Stop while active; Resume, budget, Retry failed after
results        the results table and its filters
downloads      one download button per export format
inspector      one row as recorded: what was sent, the raw reply, the parsed values
provenance     what a run sent, from its record
run_section    the run a page shows, with its controls and results

Nothing here speaks SQL or HTTP, or holds business rules; the engine, handai_db and providers do.
"""

from .columns import column_label, labelled_template
from .connections import base_url_box, connection, key_box, key_for, local_servers, synced_text, test_provider
from .controls import clone_run, run_controls, submit_run
from .estimates import estimate_caption
from .frame import frame
from .provenance import what_was_sent
from .results import results_view
from .run_section import page_run_section
from .schema_editor import schema_editor
from .services import db, engine, session_id
from .sidebar import provider_name
from .state import keep, kept, remember
from .text import md
from .upload import Upload, earlier_upload, forget_upload, read_upload

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
    "forget_upload",
    "frame",
    "keep",
    "kept",
    "key_box",
    "key_for",
    "labelled_template",
    "local_servers",
    "md",
    "page_run_section",
    "provider_name",
    "read_upload",
    "remember",
    "results_view",
    "run_controls",
    "schema_editor",
    "session_id",
    "submit_run",
    "synced_text",
    "test_provider",
    "what_was_sent",
]
