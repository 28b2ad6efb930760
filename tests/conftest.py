"""Shared pytest fixtures: where the real datasets live, and a throw-away EMERFLOW_HOME."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _shared_data_dir() -> Path:
    """``EMERFLOW_SHARED_DATA`` if set, else ``../shared/data`` beside the repository."""
    env = os.environ.get("EMERFLOW_SHARED_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


SHARED_DATA = _shared_data_dir()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the real datasets; skips the test with a reason when they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real datasets not found at {SHARED_DATA} (set EMERFLOW_SHARED_DATA or place "
            "../shared/data beside the repository)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture()
def emerflow_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty EMERFLOW_HOME for one test."""
    home = tmp_path / "emerflow_home"
    home.mkdir()
    monkeypatch.setenv("EMERFLOW_HOME", str(home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return home


@pytest.fixture(scope="session")
def encoder():
    """The real default text encoder (MiniLM shipped in a PyPI package), loaded once."""
    from engine.text.encoder import TextEncoder

    return TextEncoder()


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory, encoder) -> Path:
    """An EMERFLOW_HOME with both demo workspaces built once per test session.

    Built with the engine defaults (the product's shared-space ranker).
    """
    from engine.build import build_dataset_workspace
    from engine.config import WorkspaceConfig
    from engine.data.demo import DEMO_DATASETS

    home = tmp_path_factory.mktemp("demo_home")
    for name in DEMO_DATASETS:
        cfg = WorkspaceConfig(dataset=name)
        build_dataset_workspace(name, config=cfg, encoder=encoder, home=home)
    return home


@pytest.fixture()
def demo_env(demo_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """EMERFLOW_HOME pointing at the built demo workspaces, with a fresh SQLite database."""
    import shutil

    home = tmp_path / "home"
    home.mkdir()
    (home / "workspaces").symlink_to(demo_home / "workspaces")
    monkeypatch.setenv("EMERFLOW_HOME", str(home))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert shutil.disk_usage(home).free > 0
    return home


@pytest.fixture()
def db(demo_env):
    """A migrated SQLite database in the test's EMERFLOW_HOME (demo workspaces built)."""
    from db.database import init_db, make_engine
    from engine.settings import get_settings

    engine = make_engine(get_settings().database_url_resolved())
    init_db(engine)
    return engine


@pytest.fixture(scope="module")
def movies(demo_home, encoder):
    """The demo movie workspace, loaded once per module."""
    from engine.build import workspace_dir
    from engine.workspace_store import load_workspace

    return load_workspace(workspace_dir("demo-movies", demo_home), encoder)


@pytest.fixture(scope="module")
def diseases(demo_home, encoder):
    """The demo disease workspace, loaded once per module."""
    from engine.build import workspace_dir
    from engine.workspace_store import load_workspace

    return load_workspace(workspace_dir("demo-diseases", demo_home), encoder)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: one torch thread avoids OpenMP spin-waiting on a shared 2-core machine
    (modules use it with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
