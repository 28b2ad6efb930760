"""The server's background warm-up (issue 19: the first Predictions view of the first session
after a server start waited seconds for the knowledge files).

``app/main.py`` starts reading the data root (disease and HPO files, NCBI + HGNC genes, GDA
scores) on the server's first script run, once per process, before any workspace is chosen;
the workspace's evidence warm-up and the pages then find the files read. Fixture data root
in the real file formats (``tests/fixtures/knowledge``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import lookup, state
from engine.evidence import _gda_scores_at
from engine.knowledge import GeneResolver

KNOWLEDGE = Path(__file__).resolve().parent / "fixtures" / "knowledge"
MAIN = str(Path(__file__).resolve().parents[1] / "app" / "main.py")


@pytest.fixture()
def fresh_root(demo_env, monkeypatch: pytest.MonkeyPatch) -> str:
    """EMERFLOW_DATA = the fixture root, with nothing of it read yet in this process."""
    monkeypatch.setenv("EMERFLOW_DATA", str(KNOWLEDGE))
    key = str(KNOWLEDGE.resolve())
    lookup._KNOWLEDGE.pop(key, None)
    _gda_scores_at.cache_clear()
    state._data_root_warm_up.clear()
    yield key
    lookup._KNOWLEDGE.pop(key, None)
    state._data_root_warm_up.clear()


def test_first_script_run_reads_the_data_root_in_the_background(fresh_root, monkeypatch):
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.run()  # the server's first script run: the Workspace page, no workspace chosen
    assert not at.exception, [e.value for e in at.exception]
    thread = state.warm_data_root()  # the thread main.py started (once per process and root)
    thread.join(timeout=120)
    assert not thread.is_alive()
    kn = lookup._KNOWLEDGE[fresh_root]
    assert kn.genes is not None and len(kn.genes)  # NCBI gene_info + HGNC read
    assert _gda_scores_at.cache_info().currsize == 1  # DisGeNET GDA scores read
    at.run()  # a rerun (or a second session) starts nothing new
    assert state.warm_data_root() is thread

    def no_second_read(*args, **kwargs):
        raise AssertionError("the gene files were read a second time")

    monkeypatch.setattr(GeneResolver, "from_files", no_second_read)
    assert lookup._gene_knowledge() is kn.genes  # the pages' reads find the files read


def test_warm_up_without_a_data_root(demo_env, monkeypatch):
    monkeypatch.delenv("EMERFLOW_DATA", raising=False)
    state._data_root_warm_up.clear()
    try:
        lookup.warm_data_root()  # nothing to read: no error
        thread = state.warm_data_root()
        thread.join(timeout=30)
        assert not thread.is_alive()
    finally:
        state._data_root_warm_up.clear()
