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
progress       a run's bar, counters and errors (a batch run's batches too)
batch_panel    Real time / Batch for the next run; a batch run's batches, Cancel batches
reattach       batch runs found again after a restart; a run waiting for a session's key
controls       start a run (asking first while one runs); Pause/Stop while active; Resume,
               budget, Retry failed after
run_edit       a past run's settings edited before Resume/Retry, or loaded back into a page
announce       a started run scrolled into view; a long run's end announced
results        the answers first: table, filters, the newest answers while it runs
shown_columns  the input columns a run sent; missing text shown blank; tick and pinned columns
run_charts     what came back: value counts, latency, throughput and errors over time
downloads      one download button per export format
inspector      one row as recorded, input beside answer; what was sent, the raw reply
provenance     what a run sent, from its record
bundle_rerun   a run repeated from its methods bundle (History), and how many answers differ
run_section    the run a page shows, with its controls and results (a multi-model run's too)

For runs of several models or steps (Compare, Consensus, Pipeline):
data_source    the Data section: upload, sample or this session's file, and a preview
task_form      one instruction, how rows are sent, output fields
consensus_form Consensus's coders and judge
model_picker   provider + model rows from the sidebar's lists; endpoints and key checks
plan_run       cost controls, rows, estimate, Test run / Run all for a plan
pipeline_editor  ordered steps edited as widgets; the spec loaded, saved and exported as JSON
arm_progress   per-model and per-step figures
plan_facts     input rows, models and steps of a recorded plan (History)
wide_table     the wide table's columns and how it is drawn
multi_charts   Compare's charts: agreement per pair, answers per model
tool_summaries Compare's agreement, Consensus's decisions, Pipeline's flow, and their row filters
row_filters    toggles that narrow a results table to some rows, drawn beside the table
cell_inspector one row's cells as recorded
multi_results  table, summary, filters, downloads and inspector of such a run
plan_load      such a run's plan loaded back into its page
codebook_editor     saved codebooks and their versions, a file imported, the working copy edited and saved
codebook_generator  a draft codebook generated from data in two runs (themes per chunk, then codes)

For qualitative coding (Qualitative coder, Reliability, Adjudicate):
codebook_pick  a saved codebook version and the coder's options (rationale, evidence)
coded_runs     a coded run picked and read as units x raters
coding_export  the coded table and its reliability report, together in one ZIP
human_codes    human coders imported from a file or coding by hand, in the run's ledger
reliability_settings  coders, level, label order and set, gold, bootstrap; the cached report
adjudication_card     one disagreement: the row, every coder's answer and reason, the decision

Nothing here speaks SQL or HTTP, or holds business rules; the engine, handai_db and providers do.
"""

from .adjudication_card import adjudication_card
from .batch_panel import no_batch_reason, send_mode
from .bundle_rerun import bundle_rerun
from .codebook_editor import CODEBOOK_SOURCES, codebook_editor, codebook_import, codebook_picker, codebook_start
from .codebook_generator import codebook_generator
from .codebook_pick import ChosenCodebook, codebook_keys, codebook_pick, codebook_ref_text
from .coded_runs import coded_run_pick
from .coding_export import coded_downloads
from .columns import column_label, labelled_template
from .connections import (
    base_url_box,
    connection,
    connections,
    key_box,
    key_for,
    local_servers,
    synced_text,
    test_provider,
)
from .consensus_form import coders_form, consensus_keys, judge_form
from .controls import clone_run, models_text, run_controls, start_request, submit_run
from .data_source import Data, data_keys, data_section
from .downloads import downloads
from .estimates import estimate_caption, generate_estimate_caption
from .frame import frame
from .human_codes import human_coders
from .instructions import examples_editor, instruction_library
from .model_picker import connection_problem, endpoints_for, model_picker, model_row, picker_keys, row_keys
from .pipeline_editor import pipeline_editor, spec_json, spec_loader
from .plan_facts import input_rows, models_of, providers_of, steps_of
from .plan_run import run_form, run_keys
from .provenance import what_was_sent
from .reattach import reattach_waiting
from .reliability_settings import reliability_report, reliability_settings
from .reliability_view import show_report
from .results import numbered, results_view
from .row_select import preflight_check, row_selection
from .run_edit import load_into_page
from .run_section import page_run_section, run_results
from .schema_editor import schema_editor
from .services import db, engine, session_id
from .sidebar import provider_name, run_page
from .state import follow_table_columns, keep, kept, remember
from .task_form import CODE_TASK, Task, task_form, task_keys
from .text import md
from .upload import Upload, earlier_upload, forget_upload, read_upload, reading_options, sheet_picker

__all__ = [
    "coded_downloads",
    "downloads",
    "CODE_TASK",
    "CODEBOOK_SOURCES",
    "codebook_editor",
    "codebook_generator",
    "codebook_import",
    "codebook_picker",
    "codebook_start",
    "adjudication_card",
    "ChosenCodebook",
    "codebook_keys",
    "codebook_pick",
    "codebook_ref_text",
    "coded_run_pick",
    "human_coders",
    "reliability_report",
    "reliability_settings",
    "row_keys",
    "show_report",
    "base_url_box",
    "bundle_rerun",
    "clone_run",
    "coders_form",
    "column_label",
    "connection",
    "connection_problem",
    "connections",
    "consensus_keys",
    "Data",
    "data_keys",
    "data_section",
    "db",
    "earlier_upload",
    "endpoints_for",
    "engine",
    "estimate_caption",
    "examples_editor",
    "forget_upload",
    "frame",
    "generate_estimate_caption",
    "input_rows",
    "instruction_library",
    "judge_form",
    "follow_table_columns",
    "keep",
    "kept",
    "key_box",
    "key_for",
    "labelled_template",
    "load_into_page",
    "local_servers",
    "md",
    "model_picker",
    "model_row",
    "models_of",
    "models_text",
    "no_batch_reason",
    "numbered",
    "page_run_section",
    "picker_keys",
    "pipeline_editor",
    "preflight_check",
    "provider_name",
    "providers_of",
    "reattach_waiting",
    "read_upload",
    "reading_options",
    "remember",
    "results_view",
    "row_selection",
    "run_controls",
    "run_form",
    "run_keys",
    "run_page",
    "run_results",
    "schema_editor",
    "send_mode",
    "session_id",
    "sheet_picker",
    "spec_json",
    "spec_loader",
    "start_request",
    "steps_of",
    "submit_run",
    "synced_text",
    "Task",
    "task_form",
    "task_keys",
    "test_provider",
    "Upload",
    "what_was_sent",
]
