"""Codebooks: codes with definitions, criteria and examples, written here, imported from a file or
generated from data by a model; every save is a new version, none is ever overwritten."""

import streamlit as st

import handai_ui as ui

choice = ui.frame()
st.title("Codebooks", anchor=False)
st.caption(
    "A codebook lists the codes a coder (a model or a person) may give, each with its definition, when to use it "
    "and when not, and examples. Saving makes a new version; runs record the version they applied."
)

ui.codebook_start()
start = st.segmented_control("Start from", ui.CODEBOOK_SOURCES, key="cb_start", required=True)
if start == ui.CODEBOOK_SOURCES[0]:
    ui.codebook_picker()
elif start == ui.CODEBOOK_SOURCES[1]:
    ui.codebook_import()
else:
    ui.codebook_generator(choice)

st.divider()
st.subheader("Editor", anchor=False)
ui.codebook_editor()
