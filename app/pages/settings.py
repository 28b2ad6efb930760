"""Settings page: LLM provider, base URL, model, encoder, workspace directory, test connection.

The API key only comes from the environment or .streamlit/secrets.toml and is shown as
"set" / "not set", never as text.
"""

from __future__ import annotations

import streamlit as st

from app.llm import (
    PROVIDER_HELP,
    PROVIDER_NAMES,
    LLMChoice,
    resolve_settings,
    settings_summary,
    test_connection,
)
from app.state import (
    LLM_KEY,
    AugmentationError,
    current_llm_settings,
    llm_choice,
    read_secrets,
)
from db.database import redacted, resolve_url
from engine.config import EncoderConfig, emerflow_home
from engine.workspace import workspaces_dir

st.title("Settings")

st.subheader("LLM")
try:
    active = current_llm_settings()
except ValueError as exc:
    active = None
    st.error(f"The LLM settings from the environment are invalid: {exc}")
choice = llm_choice()
with st.form("llm_form"):
    current_provider = choice.provider or (active.provider if active else "none")
    provider = st.selectbox("Provider", PROVIDER_NAMES,
                            index=PROVIDER_NAMES.index(current_provider)
                            if current_provider in PROVIDER_NAMES else 0,
                            format_func=lambda p: f"{p} — {PROVIDER_HELP.get(p, '')}",
                            key="set_provider")
    base_url = st.text_input("Base URL (OpenAI-compatible servers)",
                             value=choice.base_url or (active.base_url or "" if active else ""),
                             placeholder="http://127.0.0.1:8000/v1", key="set_base_url")
    model = st.text_input("Model", value=choice.model or "", key="set_model",
                          placeholder=(active.model if active else ""),
                          help="Empty: the default for the provider (or EMERFLOW_LLM_MODEL).")
    if st.form_submit_button("Apply", type="primary"):
        new = LLMChoice(provider=provider, model=model.strip() or None,
                        base_url=base_url.strip() or None)
        try:
            resolve_settings(new, read_secrets())
            st.session_state[LLM_KEY] = new
            st.success("LLM settings applied to this session.")
            active = current_llm_settings()
        except ValueError as exc:
            st.error(f"Not applied: {exc}")

if active is not None:
    st.table(settings_summary(active))
    st.caption("The API key is read only from the environment (OPENAI_API_KEY) or "
               ".streamlit/secrets.toml; it is never shown or stored.")
if st.button("Test connection", key="test_llm"):
    with st.spinner("Contacting the LLM…"):
        try:
            st.success(test_connection(current_llm_settings()))
        except (AugmentationError, ValueError) as exc:
            st.error(f"Connection failed: {exc}")

st.subheader("Encoder and storage")
st.table({
    "text encoder": EncoderConfig().model,
    "workspace directory": str(workspaces_dir()),
    "EMERFLOW_HOME": str(emerflow_home()),
    "database": redacted(resolve_url()),
})
st.caption("Set EMERFLOW_HOME (workspaces, SQLite database) and DATABASE_URL before starting "
           "the app to change where data lives; a workspace remembers the encoder it was "
           "trained with.")
