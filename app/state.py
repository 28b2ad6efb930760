"""Long-lived resources, loaded once per server process with ``st.cache_resource``."""

from __future__ import annotations

import streamlit as st
from sqlalchemy.engine import Engine

from db.database import init_db, make_engine
from engine.build import build_dataset_workspace, workspace_dir
from engine.config import EncoderConfig
from engine.text.encoder import TextEncoder
from engine.workspace import Workspace, load_workspace, workspace_exists

ITEM_KEY = "item_id"  #: session-state key of the item being worked on
WORKSPACE_KEY = "workspace"  #: session-state key of the chosen workspace name


@st.cache_resource(show_spinner="Loading the text encoder…")
def get_encoder(model: str = EncoderConfig().model) -> TextEncoder:
    return TextEncoder(EncoderConfig(model=model))


@st.cache_resource(show_spinner="Opening the database…")
def get_db() -> Engine:
    engine = make_engine()
    init_db(engine)
    return engine


@st.cache_resource(show_spinner="Loading the workspace…")
def get_workspace(name: str) -> Workspace:
    return load_workspace(workspace_dir(name), get_encoder())


def is_built(name: str) -> bool:
    return workspace_exists(workspace_dir(name))


def build_with_status(name: str) -> None:
    """Train the workspace with a live progress display, then drop the cached copy."""
    with st.status(f"Building workspace {name}…", expanded=True) as status:
        bar = st.progress(0.0)
        line = st.empty()
        stages = ("load", "backbone", "encode", "meta", "index")

        def progress(stage: str, frac: float, message: str) -> None:
            i = stages.index(stage) if stage in stages else 0
            bar.progress(min(1.0, (i + frac) / len(stages)))
            line.write(message)

        build_dataset_workspace(name, encoder=get_encoder(), progress=progress)
        status.update(label=f"Workspace {name} is ready", state="complete", expanded=False)
    get_workspace.clear()
