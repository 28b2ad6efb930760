"""Workspace page: which workspaces exist, their counts and model versions; build missing ones."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.lookup import data_root_set
from app.safe_text import md
from app.state import WORKSPACE_KEY, build_with_status, get_workspace, is_built, set_workspace
from engine.data.registry import DATASETS

st.title("Workspaces")
st.caption("A workspace is one dataset with its trained backbone, aligner and FAISS index.")

if "ws_message" in st.session_state:
    st.success(st.session_state.pop("ws_message"))

rows = []
for name, entry in DATASETS.items():
    built = is_built(name)
    row = {"workspace": name, "domain": entry.domain,
           "data": "synthetic demo" if entry.synthetic else "real", "built": built}
    if built:
        try:
            ws = get_workspace(name)
            split = ws.meta.get("split", {})
            row["established items"] = split.get("old_items")
            row["new items"] = split.get("new_items")
            row["targets"] = len(ws.dataset.targets)
            row["training rows"] = split.get("train_rows")
            row["model version"] = ws.model_version
            row["encoder"] = ws.config.encoder.model.split("/")[-1]
            row["ranker"] = ws.ranker_kind
            row["trained at"] = str(ws.meta.get("created_at", ""))[:16].replace("T", " ")
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            row["problem"] = f"cannot load: {exc}"
    rows.append(row)
table = pd.DataFrame(rows)
st.dataframe(table, hide_index=True, width="stretch",
             column_config={
                 "built": st.column_config.CheckboxColumn("built"),
                 "established items": st.column_config.NumberColumn(
                     "established items", help="old items the model was trained on"),
                 "new items": st.column_config.NumberColumn(
                     "new items", help="emerging items held out by the protocol split"),
                 "problem": st.column_config.TextColumn("problem", width="large"),
             })

names = list(DATASETS)
current = st.session_state.get(WORKSPACE_KEY)
name = st.selectbox("Workspace", names, index=names.index(current) if current in names else 0,
                    format_func=lambda n: f"{n} (synthetic)" if DATASETS[n].synthetic else n,
                    key="ws_page_choice")
if is_built(name):
    if st.button("Use this workspace", type="primary"):
        set_workspace(name)
        st.session_state["ws_message"] = f"Now working in {name}."
        st.rerun()  # the sidebar (drawn before this page) shows the new workspace
    if st.session_state.get(WORKSPACE_KEY) == name:
        st.caption(f"Current workspace: **{name}**")
else:
    real_without_data = not DATASETS[name].synthetic and not data_root_set()
    st.info(f"{name} is not built yet. Building trains the backbone and aligner "
            "(minutes for the demo catalogs, longer for the real datasets).")
    if real_without_data:
        st.warning("The real datasets are read from EMERFLOW_DATA, which is not set: set it to "
                   "the folder holding movielens-1m/, disgenet/, ncbi-gene/, hgnc/, hpa/ and "
                   f"restart, or run `emerflow build --dataset {name} --data-root DIR`.")
    if st.button(f"Build {name}", key="ws_build", disabled=real_without_data):
        try:
            build_with_status(name)
            set_workspace(name)
            st.session_state["ws_message"] = f"{name} is built and selected."
            st.rerun()
        except (FileNotFoundError, ValueError, OSError) as exc:
            st.error(md(f"Could not build {name}: {exc}"))
