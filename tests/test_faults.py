"""Reliability regressions of issue 13: concurrent analysts, half-written items, stale pages,
killed saves, damaged files, full disks and read-only homes.

Database tests run on a SQLite file and, when EMERFLOW_TEST_POSTGRES_URL is set, on PostgreSQL
(start one with ``source .ci/postgres.sh``). Each "analyst" has its own SQLAlchemy engine, as
separate dashboard processes would.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from app import flows
from db import repository as repo
from db.database import create_database, drop_database, init_db, make_engine

POSTGRES_ENV = "EMERFLOW_TEST_POSTGRES_URL"
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
ANALYSTS = 4


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, empty database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'emerflow.db'}"
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (source .ci/postgres.sh)")
    url = create_database(base)
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture()
def engines(db_url: str) -> Iterator[list[Engine]]:
    """One migrated database seen through one engine per analyst."""
    engs = [make_engine(db_url) for _ in range(ANALYSTS)]
    init_db(engs[0])
    try:
        yield engs
    finally:
        for eng in engs:
            eng.dispose()


def run_together(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` for ``i < n`` in threads released at the same moment; exceptions are
    returned, not raised."""
    barrier = threading.Barrier(n)

    def task(i: int) -> Any:
        barrier.wait()
        try:
            return work(i)
        except Exception as exc:  # noqa: BLE001 - the test inspects them
            return exc

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(task, range(n)))


def _disease(engines: list[Engine], ws, name: str = "Concurrent dysplasia"):
    return flows.new_item(engines[0], ws, name=name, features={
        "disease_type": "disease", "disease_class": "Musculoskeletal Diseases",
        "semantic_type": "Disease or Syndrome"})


# ---- 2. concurrent refinements keep every analyst's decisions -------------------------------
def test_concurrent_refinements_keep_every_analysts_decisions(engines, diseases) -> None:
    item = _disease(engines, diseases)
    s0 = flows.predict_item(engines[0], diseases, item.id)
    targets = s0.prediction.targets["target_id"].tolist()
    picks = {i: [(targets[20 + 10 * i], 1), (targets[25 + 10 * i], 0)] for i in range(ANALYSTS)}

    results = run_together(ANALYSTS, lambda i: flows.confirm_and_refine(
        engines[i], diseases, item.id, picks[i], analyst=f"analyst{i}", expected_phase=0))
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    assert {r.phase for r in results} == {1}
    assert repo.current_phase(engines[0], item.id) == 1
    stored = {i.target_id: i.label for i in repo.interactions(engines[0], item.id)}
    wanted = {t: y for p in picks.values() for t, y in p}
    assert stored == wanted
    # the stored Phase I embedding is the refinement of Phase 0 with all four analysts' decisions
    (emb1,) = [e for e in repo.embeddings(engines[0], item.id) if e.phase == 1]
    expected = diseases.refine(s0.prediction.embedding, dict(item.raw_features),
                               sorted(wanted.items()))
    np.testing.assert_allclose(np.frombuffer(emb1.vector, dtype=np.float32), expected,
                               rtol=1e-5, atol=1e-6)


def test_refinement_overtaken_in_the_database_is_refused(engines, diseases) -> None:
    item = _disease(engines, diseases)
    flows.predict_item(engines[0], diseases, item.id)
    phase, version = repo.item_version(engines[0], item.id)
    first = str(diseases.target_pos.index[0])
    flows.confirm_and_refine(engines[1], diseases, item.id, [(first, 1)])  # another analyst
    from db.errors import ConcurrentUpdateError

    with pytest.raises(ConcurrentUpdateError):
        repo.record_refinement(
            engines[0], item.id, phase=1, decisions=[], analyst="a", source="analyst",
            vector=np.zeros(4, np.float32).tobytes(), dim=4, feature_version=1,
            model_version="m", snapshot=[], expected_version=version)
    assert phase == 0 and repo.item_version(engines[0], item.id)[1] == version + 1


# ---- 10. stale pages never record decisions at a later phase ---------------------------------
def test_stale_page_refinement_is_refused_and_records_nothing(engines, diseases) -> None:
    item = _disease(engines, diseases)
    s0 = flows.predict_item(engines[0], diseases, item.id)
    targets = s0.prediction.targets["target_id"].tolist()
    flows.confirm_and_refine(engines[0], diseases, item.id, [(targets[30], 1)])
    flows.confirm_and_refine(engines[0], diseases, item.id, [(targets[31], 1)])
    before = repo.interaction_history(engines[0], item.id)
    # a page still showing Phase 0 uploads decisions: the item is in Phase II now
    with pytest.raises(flows.StaleItemError, match="moved to Phase II; your decisions are kept"):
        flows.confirm_and_refine(engines[1], diseases, item.id, [(targets[40], 1)],
                                 source="upload", notes={targets[40]: "from the lab"},
                                 expected_phase=0)
    assert repo.interaction_history(engines[0], item.id) == before
    assert repo.current_phase(engines[0], item.id) == 2


def test_page_one_phase_behind_applies_on_top_with_both_decisions(engines, diseases) -> None:
    item = _disease(engines, diseases)
    s0 = flows.predict_item(engines[0], diseases, item.id)
    t = s0.prediction.targets["target_id"].tolist()
    flows.confirm_and_refine(engines[0], diseases, item.id, [(t[30], 1)], analyst="ann")
    late = flows.confirm_and_refine(engines[1], diseases, item.id, [(t[50], 1)],
                                    analyst="bob", notes={t[50]: "seen in a screen"},
                                    expected_phase=0)
    assert late.phase == 1 and late.decisions == {t[30]: 1, t[50]: 1}
    notes = {i.target_id: i.note for i in repo.interactions(engines[0], item.id)}
    assert notes[t[50]] == "seen in a screen"


def test_decisions_notes_and_refinement_are_one_transaction(engines, diseases) -> None:
    item = _disease(engines, diseases)
    s0 = flows.predict_item(engines[0], diseases, item.id)
    t = s0.prediction.targets["target_id"].tolist()
    too_long = "n" * (repo.MAX_TEXT_LEN + 1)
    with pytest.raises(ValueError):
        flows.confirm_and_refine(engines[0], diseases, item.id, [(t[3], 1)],
                                 notes={t[3]: too_long}, source="upload")
    assert repo.interactions(engines[0], item.id) == []
    assert repo.current_phase(engines[0], item.id) == 0


# ---- 9/10. items: one transaction with their features; names unique under races --------------
def test_too_long_synonym_leaves_no_half_created_item(engines, diseases) -> None:
    syn = {"name": "synonym", "descriptor": "Synonym", "value": "s" * (repo.MAX_TEXT_LEN + 1),
           "source": "analyst"}
    with pytest.raises(ValueError):
        flows.new_item(engines[0], diseases, name="Half disease", features={},
                       extra_features=[syn])
    assert repo.list_items(engines[0], diseases.name) == []
    ok = flows.new_item(engines[0], diseases, name="Half disease", features={},
                        extra_features=[{**syn, "value": "short"}])  # resubmitting works
    assert repo.latest_feature_version(engines[0], ok.id).version == 1


def test_concurrent_creates_of_one_name_give_one_item(engines, diseases) -> None:
    flows.ensure_workspace(engines[0], diseases)
    results = run_together(ANALYSTS, lambda i: flows.new_item(
        engines[i], diseases, name="Race disease", features={}, analyst=f"a{i}"))
    created = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(created) == 1
    assert all(isinstance(r, flows.DuplicateItemError) for r in refused), refused
    assert [i.name for i in repo.list_items(engines[0], diseases.name)] == ["Race disease"]
    # even "create a copy anyway" cannot make a second item of the identical name
    with pytest.raises(ValueError, match="already exists"):
        flows.new_item(engines[0], diseases, name="Race disease", features={},
                       allow_duplicate=True)
