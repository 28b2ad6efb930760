"""Analyst page: enter an emerging item, see its ranking, confirm targets, refine by phase."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import flows
from app.state import ITEM_KEY, WORKSPACE_KEY, build_with_status, get_db, get_workspace, is_built
from engine.data.demo import DEMO_DATASETS
from engine.data.registry import DATASETS
from engine.schema import NAME, TARGET_ID, TARGET_NOUN

st.title("EmerFlow Studio")
st.caption("Recommendations for emerging items: new diseases → genes, new movies → users.")

names = [n for n in DATASETS if is_built(n) or n in DEMO_DATASETS]
current = st.session_state.get(WORKSPACE_KEY, names[0])
choice = st.selectbox("Workspace", names, index=names.index(current) if current in names else 0,
                      format_func=lambda n: f"{n} (synthetic)" if DATASETS[n].synthetic else n)
if choice != st.session_state.get(WORKSPACE_KEY):
    st.session_state[WORKSPACE_KEY] = choice
    st.session_state.pop(ITEM_KEY, None)
if not is_built(choice):
    st.info(f"The workspace {choice} has not been built yet; building it now (first launch).")
    build_with_status(choice)
ws = get_workspace(choice)
db = get_db()
noun = TARGET_NOUN[ws.domain]

# ---- 1. the item form ------------------------------------------------------------------------
text_specs = [s for s in ws.dataset.item_features if s.kind == "text"]
name_spec = text_specs[0]
with st.form("new_item"):
    st.subheader(f"New {ws.domain}")
    values: dict[str, object] = {}
    name = st.text_input(f"{name_spec.descriptor} (required)", key="f_name")
    external_id = st.text_input("External id (optional)", key="f_external_id")
    for spec in ws.dataset.item_features:
        if spec is name_spec:
            continue
        key = f"f_{spec.name}"
        vocab = sorted(ws.item_fields.vocabs.get(spec.name, {}))
        if spec.kind == "multi":
            values[spec.name] = "|".join(st.multiselect(spec.descriptor, vocab, key=key))
        elif spec.kind == "categorical":
            values[spec.name] = st.selectbox(spec.descriptor, ["", *vocab], key=key)
        elif spec.kind == "numeric":
            values[spec.name] = st.number_input(spec.descriptor, value=None, step=1, key=key)
        else:
            values[spec.name] = st.text_area(spec.descriptor, key=key, height=80)
    submitted = st.form_submit_button("Create and predict", type="primary")
if submitted:
    values[name_spec.name] = name
    try:
        item = flows.new_item(db, ws, name=name, features=values, external_id=external_id or None)
        st.session_state[ITEM_KEY] = item.id
    except flows.DuplicateItemError as exc:
        st.warning(f"{exc}. Opening the existing item instead of a new copy.")
        st.session_state[ITEM_KEY] = exc.duplicates[0].id
    except ValueError as exc:
        st.error(str(exc))

item_id = st.session_state.get(ITEM_KEY)
if item_id is None:
    st.stop()

# ---- 2. prediction ---------------------------------------------------------------------------
try:
    state = flows.predict_item(db, ws, item_id)
except ValueError as exc:
    st.error(str(exc))
    st.stop()
st.subheader(f"{state.item.name} · Phase {state.phase_label}")
st.markdown("**Serialized features** (what the text encoder sees)")
st.code(state.prediction.text, language=None)
with st.expander("Aligned embedding"):
    st.write([round(float(v), 4) for v in state.prediction.embedding])

left, right = st.columns([3, 2])
with left:
    st.markdown(f"**Top {noun}s**")
    top = flows.top_targets_table(ws, state, 10)
    shown = pd.DataFrame({
        "rank": top["rank"], noun: top[NAME], "id": top[TARGET_ID].astype(str),
        "score": top["score"].round(4), "decision": top["decision"],
        "confirm": False, "reject": False,
    })
    edited = st.data_editor(shown, hide_index=True, key=f"decide_{item_id}_{state.phase}",
                            disabled=["rank", noun, "id", "score", "decision"])
with right:
    st.markdown("**Nearest established items**")
    st.dataframe(state.prediction.neighbours.drop(columns=[]), hide_index=True)

if st.button(f"Refine → Phase {flows.phase_label(min(state.phase + 1, flows.MAX_PHASE))}",
             type="primary", disabled=state.phase >= flows.MAX_PHASE):
    decisions = [(t, 1) for t in edited.loc[edited["confirm"], "id"]]
    decisions += [(t, 0) for t in edited.loc[edited["reject"] & ~edited["confirm"], "id"]]
    try:
        flows.confirm_and_refine(db, ws, item_id, decisions)
        st.rerun()
    except ValueError as exc:
        st.error(str(exc))
