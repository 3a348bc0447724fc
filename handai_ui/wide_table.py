"""The wide table of a multi-model run as shown on screen: which columns are answers, the tool's
verdict, input, statuses and errors, drawn with the verdict and the answers first."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from research.tables import WideTable

BOOLEAN_COLUMNS = ("all_agree", "agreed")  # True / False / None: shown as ticks, never as ""


@dataclass(frozen=True)
class Layout:
    """Which columns of the wide table are which: WideTable puts the input first, then the
    answers, then a status and an error column per cell, with the tool's extra columns before or
    after those."""

    inputs: list[str]
    outputs: list[str]
    extras: list[str]
    statuses: list[str]
    errors: list[str]

    @classmethod
    def of(cls, table: WideTable) -> Layout:
        inputs, extras = list(table.input_columns), list(table.extra_columns)
        rest = [c for c in table.columns() if c not in inputs and c not in extras]
        split = len(rest) - 2 * len(table.cells)
        return cls(inputs, rest[:split], extras, statuses=rest[split::2], errors=rest[split + 1 :: 2])

    def order(self) -> list[str]:
        """The tool's verdict and the answers first, then the input, then statuses and errors."""
        return [*self.extras, *self.outputs, *self.inputs, *self.statuses, *self.errors]


def wide_table(frame: pd.DataFrame, layout: Layout, *, height: int | str = "auto") -> None:
    shown = frame.copy()
    text = [c for c in shown.columns if c not in BOOLEAN_COLUMNS]
    shown[text] = shown[text].fillna("")
    config = {c: st.column_config.CheckboxColumn(c) for c in BOOLEAN_COLUMNS if c in shown.columns}
    st.dataframe(shown, width="stretch", height=height, column_order=layout.order(), column_config=config)


def with_status(frame: pd.DataFrame, layout: Layout, status: str) -> pd.Series:
    """Rows with at least one cell in `status`."""
    if not layout.statuses:
        return pd.Series(False, index=frame.index)
    return frame[layout.statuses].eq(status).any(axis=1)
