"""Workspace page: which workspaces exist, their counts and model versions; build missing ones."""

from __future__ import annotations

import streamlit as st

from app.state import WORKSPACE_KEY, build_with_status, get_workspace, is_built
from engine.data.registry import DATASETS

st.title("Workspaces")
rows = []
for name, entry in DATASETS.items():
    built = is_built(name)
    row = {"workspace": name + (" (synthetic)" if entry.synthetic else ""),
           "domain": entry.domain, "built": built}
    if built:
        ws = get_workspace(name)
        row.update(ws.meta.get("split", {}))
        row["model version"] = ws.model_version
        row["trained at"] = ws.meta.get("created_at", "")
    rows.append(row)
st.dataframe(rows, hide_index=True, width="stretch")

name = st.selectbox("Workspace", list(DATASETS), key="ws_page_choice")
if st.button("Use this workspace", disabled=not is_built(name)):
    st.session_state[WORKSPACE_KEY] = name
    st.success(f"Now working in {name}.")
if not is_built(name) and st.button(f"Build {name}"):
    try:
        build_with_status(name)
    except (FileNotFoundError, ValueError) as exc:
        st.error(f"Could not build {name}: {exc}")
