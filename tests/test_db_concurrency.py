"""Two analysts at once: separate engines (as separate processes would have) writing together.

Runs on a SQLite file and, when EMERFLOW_TEST_POSTGRES_URL is set, on PostgreSQL
(start one with ``source .ci/postgres.sh``).
"""

from __future__ import annotations

import os
import threading
from array import array
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from db import repository as repo
from db.database import (
    create_database,
    current_revision,
    drop_database,
    head_revision,
    init_db,
    make_engine,
)
from db.errors import DuplicateError
from db.models import TABLE_NAMES
from db.validators import normalize_name

POSTGRES_ENV = "EMERFLOW_TEST_POSTGRES_URL"
SKIP_PG = f"PostgreSQL tests need {POSTGRES_ENV} (start a server with `source .ci/postgres.sh`)"
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
WORKERS = 2  #: concurrent "analysts"
TARGETS = [f"g{i}" for i in range(25)]
DIM = 4


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, empty database (not migrated)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'emerflow.db'}"
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(SKIP_PG)
    url = create_database(base)
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture()
def engines(db_url: str) -> Iterator[list[Engine]]:
    """One migrated database, seen through ``WORKERS`` independent engines."""
    engs = [make_engine(db_url) for _ in range(WORKERS)]
    init_db(engs[0])
    try:
        yield engs
    finally:
        for eng in engs:
            eng.dispose()


@pytest.fixture()
def item_id(engines: list[Engine]) -> int:
    repo.upsert_workspace(
        engines[0], name="w", domain="disease", dataset="d", inputs={}, model_versions={}
    )
    return repo.create_item(
        engines[0], workspace="w", domain="disease", name="X", raw_features={}
    ).id


def run_together(engines: list[Engine], work: Callable[[Engine, int], Any]) -> list[Any]:
    """Run ``work(engine, worker_index)`` on every engine at the same moment."""
    barrier = threading.Barrier(len(engines))

    def task(index: int) -> Any:
        barrier.wait()
        return work(engines[index], index)

    with ThreadPoolExecutor(len(engines)) as pool:
        return list(pool.map(task, range(len(engines))))


def count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_concurrent_identical_confirmations_leave_one_row(
    engines: list[Engine], item_id: int
) -> None:
    def confirm(engine: Engine, index: int) -> int:
        total = 0
        for target in TARGETS:  # one transaction per click, interleaved with the other analyst
            total += repo.record_decisions(
                engine,
                item_id,
                phase=1,
                decisions=[{"target_id": target, "label": 1}],
                analyst=f"analyst{index}",
                source="analyst",
            )
        return total

    changed = run_together(engines, confirm)
    assert sum(changed) == len(TARGETS)  # each association created exactly once
    rows = repo.interactions(engines[0], item_id)
    assert sorted(r.target_id for r in rows) == sorted(TARGETS)
    assert all(r.revision == 1 and r.label == 1 for r in rows)
    assert count(engines[0], "interaction") == len(TARGETS)
    assert count(engines[0], "interaction_event") == len(TARGETS)


def test_concurrent_conflicting_decisions_keep_consistent_history(
    engines: list[Engine], item_id: int
) -> None:
    def decide(engine: Engine, index: int) -> int:
        return repo.record_decisions(
            engine,
            item_id,
            phase=1,
            decisions=[{"target_id": t, "label": index % 2} for t in TARGETS],
            analyst=f"analyst{index}",
            source="analyst",
        )

    run_together(engines, decide)
    rows = repo.interactions(engines[0], item_id)
    assert len(rows) == len(TARGETS)
    history = repo.interaction_history(engines[0], item_id)
    for row in rows:
        revs = [h for h in history if h.target_id == row.target_id]
        assert [h.revision for h in revs] == list(range(1, row.revision + 1))
        assert revs[-1].label == row.label  # the current row is the last decision


def test_concurrent_refinements_of_one_item(engines: list[Engine], item_id: int) -> None:
    def refine(engine: Engine, index: int) -> None:
        repo.record_refinement(
            engine,
            item_id,
            phase=1,
            decisions=[{"target_id": "g1", "label": 1}, {"target_id": f"own{index}", "label": 1}],
            analyst=f"analyst{index}",
            source="analyst",
            vector=array("f", [float(index)] * DIM).tobytes(),
            dim=DIM,
            feature_version=0,
            model_version="m",
            snapshot=[{"rank": 1, "target_id": f"own{index}", "score": 1.0}],
        )

    run_together(engines, refine)
    eng = engines[0]
    assert repo.current_phase(eng, item_id) == 1
    (emb,) = repo.embeddings(eng, item_id)
    (snap,) = repo.snapshots(eng, item_id)
    # Embedding and snapshot come from the same (last) refinement: never a mix.
    winner = int(array("f", emb.vector)[0])
    assert snap.topk[0]["target_id"] == f"own{winner}"
    assert sorted(r.target_id for r in repo.interactions(eng, item_id)) == ["g1", "own0", "own1"]


def test_concurrent_feature_versions_are_numbered_uniquely(
    engines: list[Engine], item_id: int
) -> None:
    feature = [{"name": "a", "value": "x", "source": "analyst"}]

    def save(engine: Engine, index: int) -> list[int]:
        return [
            repo.save_feature_version(engine, item_id, feature, f"analyst{index}").version
            for _ in range(5)
        ]

    versions = sorted(v for vs in run_together(engines, save) for v in vs)
    assert versions == list(range(1, 5 * WORKERS + 1))


def test_concurrent_creates_of_one_name_spelled_differently_give_one_item(
    engines: list[Engine], item_id: int
) -> None:
    """"Marfan syndrome", "marfan-syndrome", "MARFAN  SYNDROME", ... at the same moment: one
    item; every other create is refused as a duplicate naming the item that exists."""
    spellings = ["Marfan syndrome", "marfan-syndrome", "MARFAN  SYNDROME", "Marfan Syndrome!",
                 "marfan_syndrome", "Márfan syndrome", "marfan syndrome ", "Marfan-Syndrome"]

    def create(engine: Engine, index: int) -> str:
        try:
            repo.create_item(engine, workspace="w", domain="disease",
                             name=spellings[index % len(spellings)], raw_features={})
            return "created"
        except DuplicateError as exc:
            assert "same item" in str(exc)
            return "duplicate"

    outcomes = run_together(engines, create)
    assert outcomes.count("created") == 1
    names = [i.name for i in repo.list_items(engines[0], "w")]
    assert len([n for n in names if normalize_name(n) == "marfansyndrome"]) == 1


def test_concurrent_llm_cache_puts(engines: list[Engine]) -> None:
    def put(engine: Engine, index: int) -> None:
        for i in range(10):
            repo.llm_cache_put(
                engine,
                key=f"k{i}",
                provider="p",
                model="m",
                prompt_version="v1",
                input_hash=f"h{i}",
                response=f"from {index}",
            )

    run_together(engines, put)
    assert count(engines[0], "llm_cache") == 10


def test_concurrent_init_db_on_empty_database(db_url: str) -> None:
    engs = [make_engine(db_url) for _ in range(WORKERS)]
    try:
        run_together(engs, lambda engine, _index: init_db(engine))
        assert current_revision(engs[0]) == head_revision()
        assert set(TABLE_NAMES) <= set(inspect(engs[0]).get_table_names())
    finally:
        for eng in engs:
            eng.dispose()
