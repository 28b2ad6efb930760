"""EmerFlow Studio dashboard (Streamlit). Pages are thin; logic lives in ``app.flows``."""
