"""The research wing: one planner per multi-model tool (it turns a person's choices into a run's
plan and the ledger's cells back into the table they read), and the figures they report.

tools       the registry of tools by kind (title, page, table), looked up by History and the CLI
arms        "provider:model" specs and unique arm names
tables      the wide table of any plan's run, streamed from the ledger
agreement   per-row agreement and percent agreement between arms
compare     Compare models: one instruction, several models side by side
consensus   Consensus: coders (models or samples) and an optional judge
pipeline    Pipeline: ordered steps with their own model, instruction, fields and run_if
codebook    codebooks: codes with definitions, criteria, examples; their schema and instruction
codebook_io codebooks as CSV, JSON, Markdown and REFI-QDA (.qdc)
coder       Qualitative coder: a codebook applied to every row; answers checked against it
codebook_gen  the codebook generator: themes per chunk of texts, consolidated into codes
raters      a run as units x raters: models, consensus, human coders, decisions
adjudication  the disagreement queue a person settles
stats/      reliability and gold-label statistics, each with its n, definition and missing data
"""
