"""EmerFlow Studio entry point: ``emerflow app`` (or ``streamlit run app/main.py``).

Routing goes only through ``st.navigation``: the pages live in ``app/views/``, a folder
Streamlit does not auto-discover, so every URL runs this script, and its login check, first.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.errors import user_message
from app.safe_text import md
from app.state import ANALYST_KEY, ITEM_KEY, WORKSPACE_KEY, login_gate, warm_data_root
from engine.settings import get_settings

VIEWS = Path(__file__).resolve().parent / "views"

# an emoji favicon is an inline data: URL; a ":material/…:" one is fetched from fonts.gstatic.com
st.set_page_config(page_title="EmerFlow Studio", page_icon="🧬", layout="wide")
try:  # an invalid EMERFLOW_* value: one line naming the variable, no traceback, no page
    get_settings()
except ValueError as settings_error:
    st.error(md(str(settings_error)))
    st.stop()

warm_data_root()  # once per server process: the knowledge files, read in the background
identity = login_gate()  # stops on a "Log in" page when OIDC is configured and nobody is in
navigation = st.navigation(
    [
        st.Page(VIEWS / "workspace.py", title="Workspace", icon=":material/folder_open:",
                default=True),
        st.Page(VIEWS / "new_item.py", title="New item", icon=":material/add_circle:"),
        st.Page(VIEWS / "features.py", title="Features", icon=":material/tune:"),
        st.Page(VIEWS / "predictions.py", title="Predictions", icon=":material/target:"),
        st.Page(VIEWS / "feedback.py", title="Feedback", icon=":material/fact_check:"),
        st.Page(VIEWS / "benchmark.py", title="Benchmark", icon=":material/monitoring:"),
        st.Page(VIEWS / "settings.py", title="Settings", icon=":material/settings:"),
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
