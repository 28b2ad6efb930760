"""EmerFlow Studio entry point: ``streamlit run app/main.py`` (or ``emerflow app``)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.errors import user_message
from app.state import ANALYST_KEY, ITEM_KEY, WORKSPACE_KEY, login_gate

PAGES = Path(__file__).resolve().parent / "pages"

st.set_page_config(page_title="EmerFlow Studio", page_icon=":material/genetics:", layout="wide")

identity = login_gate()  # stops on a "Log in" page when OIDC is configured and nobody is in
navigation = st.navigation(
    [
        st.Page(PAGES / "workspace.py", title="Workspace", icon=":material/folder_open:",
                default=True),
        st.Page(PAGES / "new_item.py", title="New item", icon=":material/add_circle:"),
        st.Page(PAGES / "features.py", title="Features", icon=":material/tune:"),
        st.Page(PAGES / "predictions.py", title="Predictions", icon=":material/target:"),
        st.Page(PAGES / "feedback.py", title="Feedback", icon=":material/fact_check:"),
        st.Page(PAGES / "benchmark.py", title="Benchmark", icon=":material/monitoring:"),
        st.Page(PAGES / "settings.py", title="Settings", icon=":material/settings:"),
    ]
)
with st.sidebar:
    st.markdown("**EmerFlow Studio**")
    st.caption("Emerging diseases → genes · emerging movies → users")
    if identity is None:  # local single-user mode
        st.text_input("Analyst", key=ANALYST_KEY, placeholder="your name",
                      help="Recorded with every feature edit and decision.")
    else:
        st.text(f"Signed in as {identity.label}")
        if st.button("Log out", key="logout_btn"):
            st.logout()
    ws_name = st.session_state.get(WORKSPACE_KEY)
    st.text(f"Workspace: {ws_name or '—'} · item: #{st.session_state.get(ITEM_KEY) or '—'}")
try:
    navigation.run()
except Exception as exc:  # noqa: BLE001 - users get a sentence, the log gets the traceback
    # (st.stop / st.rerun raise BaseException subclasses, which pass through untouched)
    st.error(user_message(exc, "This page"))
