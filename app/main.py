"""EmerFlow Studio entry point: ``streamlit run app/main.py`` (or ``emerflow app``)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

PAGES = Path(__file__).resolve().parent / "pages"

st.set_page_config(page_title="EmerFlow Studio", page_icon="🧬", layout="wide")

navigation = st.navigation(
    [
        st.Page(PAGES / "analyst.py", title="Analyst", icon="🔬", default=True),
        st.Page(PAGES / "workspace.py", title="Workspace", icon="🗂️"),
    ]
)
navigation.run()
