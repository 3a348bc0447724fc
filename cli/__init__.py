"""The command line's commands, one module per family; `handai_cli.py` builds the parser and routes."""
