"""Long-lived resources (``st.cache_resource``) and the session state shared by the pages.

Session state carries the current workspace (``workspace``), item (``item_id``), the analyst's
name and the LLM choice across pages. Everything else lives in plain modules under ``app/``.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import hashlib
import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import streamlit as st
from sqlalchemy.engine import Engine

from app import flows
from app.auth import (
    AUTH_KEYS,
    Identity,
    auth_configured,
    clean_analyst_name,
    identity_from_user,
    may_change_settings,
)
from app.errors import user_message
from app.llm import LLMChoice, resolve_settings
from app.llm_cache import DBResponseCache
from app.safe_text import md
from engine.augment import AugmentationError, LLMProvider, LLMSettings, make_provider
from engine.build import build_dataset_workspace, workspace_dir
from engine.config import EncoderConfig
from engine.data.registry import DATASETS
from engine.settings import get_settings
from engine.text.encoder import TextEncoder
from engine.workspace import Workspace
from engine.workspace_store import load_workspace, workspace_exists

log = logging.getLogger("emerflow")

ITEM_KEY = "item_id"  #: session-state key of the item being worked on
WORKSPACE_KEY = "workspace"  #: session-state key of the chosen workspace name
ANALYST_KEY = "analyst"  #: session-state key of the analyst's name
LLM_KEY = "llm_choice"  #: session-state key of the LLMChoice picked on the Settings page
ENCODER_KEY = "encoder_model"  #: session-state key of the encoder model name

PAGE_FILES = {
    "workspace": "views/workspace.py", "new_item": "views/new_item.py",
    "features": "views/features.py", "predictions": "views/predictions.py",
    "feedback": "views/feedback.py", "benchmark": "views/benchmark.py",
    "settings": "views/settings.py",
}


@st.cache_resource(show_spinner="Loading the text encoder…")
def get_encoder(model: str = EncoderConfig().model) -> TextEncoder:
    return TextEncoder(EncoderConfig(model=model))


@st.cache_resource(show_spinner="Opening the database…")
def _opened(url: str) -> flows.OpenedDatabase:
    return flows.open_database(url)


def _db_for(url: str) -> Engine:
    return _opened(url).engine


def get_db() -> Engine:
    """The database of the current settings (``DATABASE_URL`` or ``EMERFLOW_HOME``), opened
    and migrated once per distinct address. When it can only be read (read-only home, full
    disk) the page says so once and browsing goes on."""
    try:
        opened = _opened(get_settings().database_url_resolved())
    except Exception as exc:  # noqa: BLE001 - a sentence for the user, details in the log
        st.error(user_message(exc, "Opening the database"))
        st.stop()
    if opened.read_only:
        st.warning(md(opened.read_only))
    return opened.engine


def read_only_reason() -> str | None:
    """Why the database can only be read (read-only home or full disk: the opening's own
    reason), or None when it can be written. Pages check it before a write, so a refused
    save names the real fault instead of failing on the read-only connection."""
    with contextlib.suppress(Exception):  # not openable at all: get_db reports it
        return _opened(get_settings().database_url_resolved()).read_only
    return None


@st.cache_resource(show_spinner="Loading the workspace…")
def _workspace_at(directory: str) -> Workspace:
    ws = load_workspace(Path(directory), get_encoder())
    warm_evidence(ws)
    return ws


def freeze_long_lived() -> None:
    """Move everything alive now (workspace, encoder, evidence caches: millions of Python
    objects) out of the garbage collector's reach (``gc.freeze``), after one collection so no
    garbage is frozen with it. A full collection otherwise walks those caches again and again:
    under 10 concurrent sessions it was the server's largest CPU cost (``bench/load.py``)."""
    gc.collect()
    gc.freeze()


WARM_UP_EXIT_WAIT_S = 60.0  #: how long the process's exit waits for a running warm-up
_WARM_UPS: list[threading.Thread] = []


def _start_warm_up(target, name: str) -> threading.Thread:
    """A background warm-up thread, started; the process's exit waits for it (see
    :func:`_join_warm_ups`)."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    _WARM_UPS[:] = [t for t in _WARM_UPS if t.is_alive()]
    _WARM_UPS.append(thread)
    thread.start()
    return thread


@atexit.register
def _join_warm_ups() -> None:
    """At exit, let running warm-ups finish (at most :data:`WARM_UP_EXIT_WAIT_S` in all): a
    daemon thread stopped by the interpreter's shutdown in the middle of native code (torch,
    LightGBM, pyarrow thread pools) aborts the process ("terminate called without an active
    exception")."""
    deadline = time.monotonic() + WARM_UP_EXIT_WAIT_S
    for thread in _WARM_UPS:
        thread.join(max(0.0, deadline - time.monotonic()))


def warm_evidence(ws: Workspace) -> threading.Thread:
    """Build the workspace's evidence caches (association index, gene resolver, phenotype
    annotations: seconds of file reading) in the background as soon as the workspace is
    loaded, so the analyst's first Predictions view finds them ready (the builders hold a lock:
    a page arriving mid-build waits for that build instead of starting its own)."""
    from app import evidence, lookup
    from app import predictions as preds

    def build() -> None:
        try:
            evidence.association_index(ws)
            evidence.hpo_annotations()
            if ws.domain == "disease":
                lookup.gene_resolver(ws)
            else:
                preds.usual_appeal(ws)
        except Exception:  # noqa: BLE001 - the page builds (and reports) it again when viewed
            log.exception("warming the evidence caches of %s failed", ws.name)
        freeze_long_lived()

    return _start_warm_up(build, f"warm-{ws.name}")


@st.cache_resource(show_spinner=False)
def _data_root_warm_up(root: str) -> threading.Thread:
    from app import lookup

    def read() -> None:
        try:
            lookup.warm_data_root(root or None)
        except Exception:  # noqa: BLE001 - the pages read (and report) the files again
            log.exception("reading the data root %s in the background failed", root)

    return _start_warm_up(read, "warm-data-root")


def warm_data_root() -> threading.Thread:
    """Start reading the data root's knowledge files (diseases, HPO, NCBI + HGNC genes, GDA
    scores: seconds) in the background, once per server process and data root: ``app/main.py``
    calls it on the server's first script run, before any workspace is chosen, so the first
    session's evidence warm-up and Predictions view do not wait for the files."""
    data = get_settings().data
    return _data_root_warm_up(str(data) if data is not None else "")


def get_workspace(name: str) -> Workspace:
    """The saved workspace ``name`` under the current ``EMERFLOW_HOME``, loaded once."""
    return _workspace_at(str(workspace_dir(name)))


@st.cache_resource
def _cache_for(url: str) -> DBResponseCache:
    return DBResponseCache(_db_for(url))


def get_cache() -> DBResponseCache:
    return _cache_for(get_settings().database_url_resolved())


@st.cache_resource(show_spinner="Setting up the LLM provider…")
def _provider(provider: str, model: str, base_url: str | None, key_id: str) -> LLMProvider:
    # ``key_id`` is a hash of the key, so two sessions that typed the same base URL never share
    # a client (and a key); the key itself is re-read here and never part of the cache key.
    return make_provider(current_llm_settings())


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
    _workspace_at.clear()


# ---- secrets and LLM ---------------------------------------------------------------------------
def read_secrets() -> Mapping[str, Any]:
    """``st.secrets`` as a dict; empty when there is no secrets.toml (never an error)."""
    try:
        return {k: v for k, v in st.secrets.to_dict().items()}
    except Exception:  # noqa: BLE001 - no or unreadable secrets file: env only
        return {}


def llm_choice() -> LLMChoice:
    choice = st.session_state.get(LLM_KEY)
    return choice if isinstance(choice, LLMChoice) else LLMChoice()


def current_llm_settings() -> LLMSettings:
    """Resolved settings; ``ValueError`` on an invalid environment value."""
    return resolve_settings(llm_choice(), read_secrets())


def get_provider() -> LLMProvider:
    """The configured provider (cached). Raises AugmentationError / ValueError (readable)."""
    s = current_llm_settings()
    key_id = hashlib.sha256((s.api_key or "").encode()).hexdigest() if s.api_key else ""
    return _provider(s.provider, s.model, s.base_url, key_id)


# ---- who is working ----------------------------------------------------------------------------
def _user() -> dict[str, Any]:
    try:
        return dict(st.user.to_dict())
    except Exception:  # noqa: BLE001 - no user information outside a session
        return {}


def login_enabled() -> bool:
    """Whether ``[auth]`` in secrets turns the OIDC login on."""
    return auth_configured(read_secrets())


def current_identity() -> Identity | None:
    """The logged-in user when login is on; None in local single-user mode or logged out."""
    if not login_enabled():
        return None
    return identity_from_user(_user())


def login_gate() -> Identity | None:
    """With login configured: the logged-in identity, or a "Log in" page and a stop. Local
    single-user mode: None (nothing changes)."""
    secrets = read_secrets()
    if not auth_configured(secrets):
        return None
    ident = identity_from_user(_user())
    if ident is None:
        st.title("EmerFlow Studio")
        st.info("Log in with your organisation's account to use EmerFlow Studio.")
        auth = secrets.get("auth") or {}
        provider = None if all(auth.get(k) for k in AUTH_KEYS) else next(
            (k for k, v in auth.items() if isinstance(v, Mapping)), None)
        if st.button("Log in", type="primary", key="login_btn"):
            st.login(provider) if provider else st.login()
        st.stop()
    return ident


def may_change_settings_now() -> bool:
    """Local mode: yes; with login: only ``[emerflow] admins``."""
    return may_change_settings(current_identity(), read_secrets())


def analyst_name() -> str:
    """Who is recorded with decisions, feature versions and items: the logged-in identity,
    else (local mode) the sidebar's free-text name without markup."""
    ident = current_identity()
    if ident is not None:
        return ident.label
    return clean_analyst_name(st.session_state.get(ANALYST_KEY))


# ---- session: workspace and item ---------------------------------------------------------------

def available_workspaces() -> list[str]:
    return [n for n in DATASETS if is_built(n)]


def current_workspace() -> Workspace | None:
    """The session's workspace (the first built one by default), loaded once per process.

    Shows a readable message and returns None when nothing is built or loading fails.
    """
    built = available_workspaces()
    name = st.session_state.get(WORKSPACE_KEY)
    if name not in built:
        if not built:
            st.warning("No workspace is built yet: build one on the Workspace page.")
            return None
        name = built[0]
        st.session_state[WORKSPACE_KEY] = name
    try:
        return get_workspace(name)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        st.error(md(f"Could not load workspace {name}: {exc}"))
        return None


def set_workspace(name: str) -> None:
    if st.session_state.get(WORKSPACE_KEY) != name:
        st.session_state[WORKSPACE_KEY] = name
        st.session_state.pop(ITEM_KEY, None)


def current_item(db: Engine, ws: Workspace) -> flows.ItemRecord | None:
    """The session's item when it belongs to the current workspace, else None (+ a hint)."""
    item_id = st.session_state.get(ITEM_KEY)
    if item_id is not None:
        try:
            item = flows.get_item(db, int(item_id))
            if item.workspace == ws.name:
                return item
        except (ValueError, LookupError):
            pass
        st.session_state.pop(ITEM_KEY, None)
    st.info("No item open: create one or reopen an existing one on the **New item** page.")
    page_link("new_item", "Go to New item", icon=":material/add_circle:")
    return None


def page_link(page: str, label: str, icon: str | None = None) -> None:
    """``st.page_link`` to one of our pages; silently nothing where pages are not registered."""
    try:
        st.page_link(PAGE_FILES[page], label=label, icon=icon)
    except Exception:  # noqa: BLE001 - e.g. a page run on its own in a test
        pass


def require_item(title: str) -> tuple[Workspace, Engine, flows.ItemRecord]:
    """A page's preamble: its title, then the current workspace, database and item; the page
    stops (after the helper's message) when no workspace or item is chosen yet."""
    st.title(title)
    ws = current_workspace()
    if ws is None:
        st.stop()
    db = get_db()
    item = current_item(db, ws)
    if item is None:
        st.stop()
    return ws, db, item


def header(ws: Workspace, item: flows.ItemRecord | None = None, phase: int | None = None) -> None:
    bits = [f"Workspace **{ws.name}**" + (" (synthetic)" if DATASETS.get(ws.name) and
                                           DATASETS[ws.name].synthetic else ""),
            f"model `{ws.model_version}`"]
    if item is not None:
        bits.append(f"item **{md(item.name)}** (#{item.id})")
    if phase is not None:
        bits.append(f"Phase **{flows.phase_label(phase)}**")
    st.caption(" · ".join(bits))


__all__ = ["ANALYST_KEY", "AugmentationError", "ITEM_KEY", "LLM_KEY", "WORKSPACE_KEY",
           "analyst_name", "build_with_status", "current_item", "current_workspace",
           "get_cache", "get_db", "get_encoder", "get_provider", "get_workspace", "header",
           "is_built", "page_link", "read_only_reason", "read_secrets", "require_item",
           "set_workspace", "warm_data_root"]
