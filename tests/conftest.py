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
