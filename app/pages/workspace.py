"""Workspace page: which workspaces exist, their counts and model versions; build missing ones."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.safe_text import md
from app.state import WORKSPACE_KEY, build_with_status, get_workspace, is_built, set_workspace
from engine.data.registry import DATASETS

st.title("Workspaces")
st.caption("A workspace is one dataset with its trained backbone, aligner and FAISS index.")

rows = []
for name, entry in DATASETS.items():
    built = is_built(name)
    row = {"workspace": name, "domain": entry.domain, "synthetic": entry.synthetic,
           "built": built}
    if built:
        try:
            ws = get_workspace(name)
            row.update({k: v for k, v in ws.meta.get("split", {}).items()
                        if isinstance(v, (int, float, str))})
            row["targets"] = len(ws.dataset.targets)
            row["model version"] = ws.model_version
            row["encoder"] = ws.config.encoder.model.split("/")[-1]
            row["backbone"] = ws.config.backbone.name
            row["trained at"] = ws.meta.get("created_at", "")
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            row["problem"] = f"cannot load: {exc}"
    rows.append(row)
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")

names = list(DATASETS)
current = st.session_state.get(WORKSPACE_KEY)
name = st.selectbox("Workspace", names, index=names.index(current) if current in names else 0,
                    format_func=lambda n: f"{n} (synthetic)" if DATASETS[n].synthetic else n,
                    key="ws_page_choice")
if is_built(name):
    if st.button("Use this workspace", type="primary"):
        set_workspace(name)
        st.success(f"Now working in {name}.")
    if st.session_state.get(WORKSPACE_KEY) == name:
        st.caption(f"Current workspace: **{name}**")
else:
    st.info(f"{name} is not built yet. Building trains the backbone and aligner "
            "(minutes for the demo catalogs; the real datasets need EMERFLOW_DATA).")
    if st.button(f"Build {name}"):
        try:
            build_with_status(name)
            set_workspace(name)
            st.success(f"{name} is built and selected.")
        except (FileNotFoundError, ValueError, OSError) as exc:
            st.error(md(f"Could not build {name}: {exc}"))
