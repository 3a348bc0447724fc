"""The wide table of a multi-model run as shown on screen: which columns are answers, the tool's
verdict, input, statuses and errors, drawn with the verdict, the answers and the statuses first
and pinned, the input after them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from research.tables import WideTable

from .shown_columns import blank_text, column_config


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

    @property
    def pinned(self) -> list[str]:
        """What a reader comes for, held at the left: the tool's verdict, the answers, the statuses."""
        return [*self.extras, *self.outputs, *self.statuses]

    def order(self, inputs: Sequence[str] | None = None) -> list[str]:
        """The pinned columns, then the input (all of it, or only `inputs`), then the errors."""
        shown = self.inputs if inputs is None else [c for c in self.inputs if c in set(inputs)]
        return [*self.pinned, *shown, *self.errors]


def wide_table(
    frame: pd.DataFrame, layout: Layout, *, inputs: Sequence[str] | None = None, height: int | str = "auto"
) -> None:
    """The table, its answers pinned; `inputs` keeps only those input columns (None: all)."""
    st.dataframe(
        blank_text(frame),
        width="stretch",
        height=height,
        column_order=layout.order(inputs),
        column_config=column_config(frame, layout.pinned),
    )


def with_status(frame: pd.DataFrame, layout: Layout, status: str) -> pd.Series:
    """Rows with at least one cell in `status`."""
    if not layout.statuses:
        return pd.Series(False, index=frame.index)
    return frame[layout.statuses].eq(status).any(axis=1)
