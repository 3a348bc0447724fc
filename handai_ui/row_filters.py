"""Toggles that narrow a results table to some of its rows ("Only rows where the models
disagree"), drawn beside the table they filter."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator


@dataclass(frozen=True)
class RowFilter:
    mask: pd.Series  # True for the rows the filter keeps, indexed like the table
    label: str
    key: str


def apply_filters(filters: list[RowFilter], frame: pd.DataFrame, where: DeltaGenerator | None = None) -> pd.DataFrame:
    """One toggle per filter that matches some row, with its count; the rows every ticked one keeps."""
    shown = frame
    for f in filters:
        count = int(f.mask.sum())
        if count and (where or st).toggle(f"{f.label} ({count:,})", key=f.key):
            shown = shown[f.mask.loc[shown.index]]
    return shown
