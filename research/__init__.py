"""The research wing: one planner per multi-model tool (it turns a person's choices into a run's
plan and the ledger's cells back into the table they read), and the figures they report.

tools       the registry of tools by kind (title, page, table), looked up by History and the CLI
arms        "provider:model" specs and unique arm names
tables      the wide table of any plan's run, streamed from the ledger
agreement   per-row agreement and percent agreement between arms
compare     Compare models: one instruction, several models side by side
consensus   Consensus: coders (models or samples) and an optional judge
pipeline    Pipeline: ordered steps with their own model, instruction, fields and run_if
"""
