"""Settings page: LLM provider, base URL, model, encoder, workspace directory, test connection.

The operator's API key only comes from the environment or .streamlit/secrets.toml, is shown as
"set" / "not set", and is only ever sent to the operator's endpoint. A base URL typed here is
sent only the key typed with it (kept in this session's memory, never stored). URLs are shown
with their credentials masked.
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
from app.safe_text import md
from app.state import (
    LLM_KEY,
    AugmentationError,
    current_llm_settings,
    llm_choice,
    may_change_settings_now,
    read_secrets,
)
from db.database import redacted
from engine.augment.providers import redact_text, redact_url
from engine.config import EncoderConfig
from engine.settings import get_settings
from engine.workspace_store import workspaces_dir

st.title("Settings")
can_change = may_change_settings_now()
if not can_change:
    st.info("Only administrators ([emerflow] admins in secrets) can change these settings; "
            "you can view them and test the connection.")

st.subheader("LLM")
try:
    active = current_llm_settings()
except ValueError as exc:
    active = None
    st.error(md(redact_text(f"The LLM settings from the environment are invalid: {exc}")))
choice = llm_choice()
with st.form("llm_form"):
    current_provider = choice.provider or (active.provider if active else "none")
    provider = st.selectbox("Provider", PROVIDER_NAMES,
                            index=PROVIDER_NAMES.index(current_provider)
                            if current_provider in PROVIDER_NAMES else 0,
                            format_func=lambda p: f"{p} — {PROVIDER_HELP.get(p, '')}",
                            key="set_provider")
    base_url = st.text_input("Base URL (OpenAI-compatible servers)",
                             value=choice.base_url or "",
                             placeholder=redact_url(active.base_url if active else None)
                             or "http://127.0.0.1:8000/v1", key="set_base_url",
                             help="Empty: the operator's endpoint (OPENAI_BASE_URL) with the "
                                  "operator's key. Another URL never receives that key.")
    typed_key = st.text_input("API key for this base URL", type="password", value="",
                              key="set_api_key",
                              help="Only for a base URL typed above; kept in this session's "
                                   "memory only, never stored or shown.")
    model = st.text_input("Model", value=choice.model or "", key="set_model",
                          placeholder=(active.model if active else ""),
                          help="Empty: the default for the provider (or EMERFLOW_LLM_MODEL).")
    if st.form_submit_button("Apply", type="primary", disabled=not can_change) and can_change:
        new = LLMChoice(provider=provider, model=model.strip() or None,
                        base_url=base_url.strip() or None,
                        api_key=typed_key.strip() or (choice.api_key if base_url.strip()
                                                      == (choice.base_url or "") else None))
        try:
            resolve_settings(new, read_secrets())
            st.session_state[LLM_KEY] = new
            st.success("LLM settings applied to this session.")
            active = current_llm_settings()
        except ValueError as exc:
            st.error(md(redact_text(f"Not applied: {exc}")))

if active is not None:
    st.table(settings_summary(active))
    st.caption("The operator's API key is read only from the environment (OPENAI_API_KEY) or "
               ".streamlit/secrets.toml, is never shown or stored, and is only sent to the "
               "operator's base URL (OPENAI_BASE_URL).")
if st.button("Test connection", key="test_llm"):
    with st.spinner("Contacting the LLM…"):
        try:
            st.success(md(test_connection(current_llm_settings())))
        except (AugmentationError, ValueError) as exc:
            st.error(md(redact_text(f"Connection failed: {exc}")))

st.subheader("Encoder and storage")
st.table({
    "text encoder": EncoderConfig().model,
    "workspace directory": str(workspaces_dir()),
    "EMERFLOW_HOME": str(get_settings().home),
    "database": redact_url(redacted(get_settings().database_url_resolved())),
})
st.caption("Set EMERFLOW_HOME (workspaces, SQLite database) and DATABASE_URL before starting "
           "the app to change where data lives; a workspace remembers the encoder it was "
           "trained with.")
