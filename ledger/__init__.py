"""The run ledger's parts; `handai_db` composes them and is what everyone imports."""
