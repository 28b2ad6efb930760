"""Repository behaviour on SQLite and (when EMERFLOW_TEST_POSTGRES_URL is set) PostgreSQL.

Start a PostgreSQL server for these tests with ``source .ci/postgres.sh``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from array import array
from collections.abc import Iterator
from dataclasses import FrozenInstanceError
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from db import repository as repo
from db.database import create_database, drop_database, init_db, make_engine, redacted
from db.errors import (
    DuplicateError,
    NotFoundError,
    PhaseError,
    SecretRefusedError,
    ValidationError,
)
from db.models import TABLE_NAMES
from db.repo import phases as repo_phases

POSTGRES_ENV = "EMERFLOW_TEST_POSTGRES_URL"
SKIP_PG = f"PostgreSQL tests need {POSTGRES_ENV} (start a server with `source .ci/postgres.sh`)"
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
DIM = 8
FAKE_KEY = "sk-" + "A1b2C3d4E5f6G7h8J9k0"  # shaped like an OpenAI key; never a real one


@pytest.fixture(scope="module", params=BACKENDS)
def migrated_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """A database migrated to head once per module: ``("sqlite", file)`` or ``("postgres", url)``.

    Each test then gets a fresh copy (SQLite: copied file; PostgreSQL: all tables truncated).
    """
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "template.db"
        eng = make_engine(f"sqlite:///{path}")
        init_db(eng)
        with eng.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        eng.dispose()
        yield "sqlite", str(path)
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(SKIP_PG)
    url = create_database(base)  # a uniquely named database for this module
    try:
        eng = make_engine(url)
        init_db(eng)
        eng.dispose()
        yield "postgres", url
    finally:
        drop_database(url)


@pytest.fixture()
def engine(migrated_db: tuple[str, str], tmp_path: Path) -> Iterator[Engine]:
    """An engine on a fresh, empty database at head revision."""
    kind, where = migrated_db
    if kind == "sqlite":
        path = tmp_path / "emerflow.db"
        shutil.copyfile(where, path)
        eng = make_engine(f"sqlite:///{path}")
    else:
        eng = make_engine(where)
        with eng.begin() as conn:
            for table in reversed(TABLE_NAMES):  # children first; faster than TRUNCATE
                conn.exec_driver_sql(f"DELETE FROM {table}")
    try:
        yield eng
    finally:
        eng.dispose()


def vec(seed: float, dim: int = DIM) -> bytes:
    """Deterministic float32 vector bytes."""
    return array("f", [seed + i / 10 for i in range(dim)]).tobytes()


def topk(prefix: str = "g", n: int = 3) -> list[dict[str, Any]]:
    return [{"rank": i + 1, "target_id": f"{prefix}{i}", "score": 1.0 - i / 10} for i in range(n)]


FEATURES = [
    {"name": "symptoms", "descriptor": "Symptoms", "value": "fever|cough", "source": "dataset"},
    {
        "name": "organ",
        "descriptor": "Affected organ",
        "value": "lung",
        "keep": True,
        "source": "llm",
        "provider": "local",
        "model": "qwen-0.5b",
        "prompt_version": "v1",
    },
]


@pytest.fixture()
def ws(engine: Engine) -> repo.WorkspaceRecord:
    return repo.upsert_workspace(
        engine,
        name="diseases",
        domain="disease",
        dataset="demo",
        inputs={"items.csv": "sha256:abc"},
        model_versions={"backbone": "1"},
    )


@pytest.fixture()
def item(engine: Engine, ws: repo.WorkspaceRecord) -> repo.ItemRecord:
    return repo.create_item(
        engine,
        workspace=ws.name,
        domain="disease",
        name="Mystery Fever",
        external_id="C0000001",
        raw_features={"symptoms": "fever|cough"},
    )


def refine(engine: Engine, item_id: int, phase: int, decisions: list[dict], **kw: Any) -> None:
    args: dict[str, Any] = {
        "phase": phase,
        "decisions": decisions,
        "analyst": "ana",
        "source": "analyst",
        "vector": vec(phase),
        "dim": DIM,
        "feature_version": 0,
        "model_version": "m1",
        "snapshot": topk(f"p{phase}-"),
    }
    args.update(kw)
    repo.record_refinement(engine, item_id, **args)


def state(engine: Engine, item_id: int) -> tuple:
    """Everything about an item that a failed write must leave unchanged."""
    return (
        repo.current_phase(engine, item_id),
        repo.interactions(engine, item_id),
        repo.interaction_history(engine, item_id),
        repo.embeddings(engine, item_id),
        repo.snapshots(engine, item_id),
        repo.feature_versions(engine, item_id),
    )


# Engine configuration ---------------------------------------------------------------------------
def test_default_engine_is_wal_sqlite_in_emerflow_home(emerflow_home: Path) -> None:
    from engine.settings import get_settings

    eng = make_engine(get_settings().database_url_resolved())
    try:
        assert Path(eng.url.database or "") == emerflow_home / "emerflow.db"
        init_db(eng)
        with eng.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
        assert set(TABLE_NAMES) <= set(inspect(eng).get_table_names())
    finally:
        eng.dispose()


def test_settings_url_env_beats_home_and_db_reads_no_environment(
    emerflow_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    assert make_engine(get_settings().database_url_resolved()).url.database == str(
        tmp_path / "env.db"
    )
    assert make_engine(f"sqlite:///{tmp_path / 'arg.db'}").url.database == str(tmp_path / "arg.db")
    # db/ reads no environment: the home argument is used even with DATABASE_URL set
    assert make_engine(home=tmp_path / "h").url.database == str(tmp_path / "h" / "emerflow.db")
    with pytest.raises(ValueError, match="no database URL"):
        make_engine()
    monkeypatch.delenv("DATABASE_URL")
    assert get_settings().database_url_resolved() == f"sqlite:///{emerflow_home / 'emerflow.db'}"


def test_password_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    url = "postgresql+psycopg://emer:hunter2secret@127.0.0.1:1/x"
    with caplog.at_level(logging.DEBUG):
        eng = make_engine(url)  # creating an engine does not connect
    eng.dispose()
    assert "hunter2secret" not in caplog.text
    assert "hunter2secret" not in redacted(url)
    assert "***" in redacted(url)


# Workspaces and items ---------------------------------------------------------------------------
def test_upsert_workspace_updates_and_keeps_domain(engine: Engine) -> None:
    first = repo.upsert_workspace(
        engine, name="w", domain="movie", dataset="ml-1m", inputs={"a": "1"}, model_versions={}
    )
    second = repo.upsert_workspace(
        engine, name="w", domain="movie", dataset="ml-1m", inputs={"a": "2"}, model_versions={}
    )
    assert second.id == first.id and second.inputs == {"a": "2"}
    assert second.created_at == first.created_at and second.updated_at >= first.updated_at
    assert second.created_at.tzinfo is not None
    with pytest.raises(ValidationError) as err:
        repo.upsert_workspace(
            engine, name="w", domain="disease", dataset="x", inputs={}, model_versions={}
        )
    assert err.value.field == "domain"
    assert repo.get_workspace(engine, "w") == second
    assert [w.name for w in repo.list_workspaces(engine)] == ["w"]


def test_create_get_list_items(engine: Engine, ws: repo.WorkspaceRecord) -> None:
    a = repo.create_item(
        engine, workspace=ws.name, domain="disease", name="A", external_id=7, raw_features={}
    )
    b = repo.create_item(
        engine, workspace=ws.name, domain="disease", name="B", raw_features={"x": "y"}
    )
    c = repo.create_item(
        engine, workspace=ws.name, domain="disease", name="C", raw_features={}, status="established"
    )
    assert a.external_id == "7" and b.external_id is None
    assert repo.get_item(engine, b.id) == b
    assert [i.id for i in repo.list_items(engine, ws.name)] == [a.id, b.id, c.id]
    assert [i.id for i in repo.list_items(engine, ws.name, status="established")] == [c.id]
    assert repo.list_items(engine, "nope") == []
    updated = repo.set_item_status(engine, a.id, "established")
    assert updated.status == "established"
    with pytest.raises(NotFoundError) as err:
        repo.get_item(engine, 10_000)
    assert err.value.field == "item_id"


def test_external_id_unique_per_workspace(engine: Engine, item: repo.ItemRecord) -> None:
    with pytest.raises(DuplicateError) as err:
        repo.create_item(
            engine,
            workspace="diseases",
            domain="disease",
            name="Other",
            external_id="C0000001",
            raw_features={},
        )
    assert err.value.field == "external_id"
    repo.upsert_workspace(
        engine, name="other", domain="disease", dataset="d", inputs={}, model_versions={}
    )
    repo.create_item(
        engine,
        workspace="other",
        domain="disease",
        name="X",
        external_id="C0000001",
        raw_features={},
    )
    for i in range(2):  # many items without external id are fine
        repo.create_item(engine, workspace="diseases", domain="disease", name=f"N{i}",
                         raw_features={})
    with pytest.raises(DuplicateError) as err:  # names are unique per workspace (0004)
        repo.create_item(engine, workspace="diseases", domain="disease", name="N0",
                         raw_features={})
    assert err.value.field == "name"


def test_find_duplicates(engine: Engine, item: repo.ItemRecord) -> None:
    for name in ("mystery fever", "  MYSTERY-FEVER! ", "Mystery\tFéver"):
        assert [d.id for d in repo.find_duplicates(engine, workspace="diseases", name=name)] == [
            item.id
        ]
    assert repo.find_duplicates(engine, workspace="diseases", name="Other") == []
    by_id = repo.find_duplicates(engine, workspace="diseases", name="Other", external_id="C0000001")
    assert [d.id for d in by_id] == [item.id]
    assert repo.find_duplicates(engine, workspace="elsewhere", name="mystery fever") == []


# Feature versions -------------------------------------------------------------------------------
def test_feature_versions(engine: Engine, item: repo.ItemRecord) -> None:
    assert repo.latest_feature_version(engine, item.id) is None
    v1 = repo.save_feature_version(engine, item.id, FEATURES, "ana")
    v2 = repo.save_feature_version(engine, item.id, FEATURES[:1], "bob")
    assert (v1.version, v2.version) == (1, 2)
    assert repo.latest_feature_version(engine, item.id) == v2
    assert [v.version for v in repo.feature_versions(engine, item.id)] == [1, 2]
    stored = v1.features[0]
    assert list(stored)[: len(repo.FEATURE_KEYS)] == list(repo.FEATURE_KEYS)
    assert stored["keep"] is True and stored["provider"] is None
    assert v1.features[1]["model"] == "qwen-0.5b"


# Phases -----------------------------------------------------------------------------------------
def test_phase0_rerun_replaces_only_while_in_phase0(engine: Engine, item: repo.ItemRecord) -> None:
    fv = repo.save_feature_version(engine, item.id, FEATURES, "ana")
    repo.save_phase0(
        engine,
        item.id,
        feature_version=1,
        model_version="m1",
        vector=vec(0),
        dim=DIM,
        snapshot=topk("a"),
    )
    repo.save_phase0(
        engine,
        item.id,
        feature_version=fv.version,
        model_version="m2",
        vector=vec(0.5),
        dim=DIM,
        snapshot=topk("b"),
    )
    embs = repo.embeddings(engine, item.id)
    assert [(e.phase, e.model_version, e.vector) for e in embs] == [(0, "m2", vec(0.5))]
    assert [s.topk[0]["target_id"] for s in repo.snapshots(engine, item.id)] == ["b0"]
    assert repo.current_phase(engine, item.id) == 0

    refine(engine, item.id, 1, [{"target_id": "g1", "label": 1}])
    assert repo.current_phase(engine, item.id) == 1
    before = state(engine, item.id)
    with pytest.raises(PhaseError):
        repo.save_phase0(
            engine,
            item.id,
            feature_version=1,
            model_version="m3",
            vector=vec(9),
            dim=DIM,
            snapshot=topk("c"),
        )
    assert state(engine, item.id) == before


def test_refinement_phases(engine: Engine, item: repo.ItemRecord) -> None:
    repo.save_phase0(
        engine,
        item.id,
        feature_version=0,
        model_version="m1",
        vector=vec(0),
        dim=DIM,
        snapshot=topk("p0-"),
    )
    refine(engine, item.id, 1, [{"target_id": "g1", "label": 1}, {"target_id": 42, "label": 0}])
    refine(engine, item.id, 2, [{"target_id": "g2", "label": 1, "note": "paper X"}])
    assert repo.current_phase(engine, item.id) == 2
    inter = repo.interactions(engine, item.id)
    assert [(i.target_id, i.label, i.phase) for i in inter] == [
        ("g1", 1, 1),
        ("42", 0, 1),
        ("g2", 1, 2),
    ]
    assert inter[2].note == "paper X" and inter[2].analyst == "ana"
    embs = repo.embeddings(engine, item.id)
    assert [e.phase for e in embs] == [0, 1, 2]
    assert embs[2].vector == vec(2) and embs[2].dim == DIM
    snaps = repo.snapshots(engine, item.id)
    assert [s.phase for s in snaps] == [0, 1, 2]
    assert snaps[1].topk == topk("p1-")

    # Re-running the current phase replaces its embedding and snapshot.
    refine(engine, item.id, 2, [], vector=vec(7), snapshot=topk("redo"))
    assert repo.embeddings(engine, item.id)[2].vector == vec(7)
    assert [s.topk[0]["target_id"] for s in repo.snapshots(engine, item.id)] == [
        "p0-0",
        "p1-0",
        "redo0",
    ]
    # Going back is refused and changes nothing.
    before = state(engine, item.id)
    with pytest.raises(PhaseError) as err:
        refine(engine, item.id, 1, [{"target_id": "g9", "label": 1}])
    assert err.value.field == "phase"
    assert state(engine, item.id) == before


def test_confirming_twice_keeps_one_row_and_changes_are_history(
    engine: Engine, item: repo.ItemRecord
) -> None:
    d = [{"target_id": "g1", "label": 1, "note": "seen in paper"}]
    assert (
        repo.record_decisions(
            engine, item.id, phase=1, decisions=d, analyst="ana", source="analyst"
        )
        == 1
    )
    assert (
        repo.record_decisions(
            engine, item.id, phase=1, decisions=d, analyst="bob", source="analyst"
        )
        == 0
    )
    (row,) = repo.interactions(engine, item.id)
    assert (row.label, row.revision, row.analyst) == (1, 1, "ana")

    assert (
        repo.record_decisions(
            engine,
            item.id,
            phase=2,
            decisions=[{"target_id": "g1", "label": 0}],
            analyst="bob",
            source="analyst",
        )
        == 1
    )
    (row,) = repo.interactions(engine, item.id)
    assert (row.label, row.revision, row.phase, row.analyst) == (0, 2, 1, "bob")
    assert row.note == "seen in paper"  # note None keeps the previous note
    hist = repo.interaction_history(engine, item.id, "g1")
    assert [(h.revision, h.label, h.phase, h.analyst) for h in hist] == [
        (1, 1, 1, "ana"),
        (2, 0, 2, "bob"),
    ]


# Atomicity --------------------------------------------------------------------------------------
def _refined_to_phase1(engine: Engine, item: repo.ItemRecord) -> tuple:
    repo.save_phase0(
        engine,
        item.id,
        feature_version=0,
        model_version="m1",
        vector=vec(0),
        dim=DIM,
        snapshot=topk("p0-"),
    )
    refine(engine, item.id, 1, [{"target_id": "g1", "label": 1}])
    return state(engine, item.id)


def test_refinement_failure_midway_leaves_previous_phase(
    engine: Engine, item: repo.ItemRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _refined_to_phase1(engine, item)

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("crash after decisions and embedding were written")

    monkeypatch.setattr(repo_phases, "_insert_snapshot", boom)
    with pytest.raises(RuntimeError):
        refine(
            engine, item.id, 2, [{"target_id": "g1", "label": 0}, {"target_id": "g2", "label": 1}]
        )
    assert state(engine, item.id) == before
    assert repo.current_phase(engine, item.id) == 1


def test_refinement_failing_at_flush_leaves_previous_phase(
    engine: Engine, item: repo.ItemRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _refined_to_phase1(engine, item)
    # Bypass validation so that the snapshot only fails when the database serializes it.
    monkeypatch.setattr(
        repo_phases,
        "_check_snapshot",
        lambda field, snap: [{"rank": 1, "target_id": "g", "score": object()}],
    )
    with pytest.raises(Exception) as err:
        refine(engine, item.id, 2, [{"target_id": "g3", "label": 1}])
    assert not isinstance(err.value, ValidationError)
    assert state(engine, item.id) == before


# Validation before writes -----------------------------------------------------------------------
REFINE_REJECTS = [
    ({"decisions": [{"target_id": "g", "label": 2}]}, "decisions[0].label"),
    ({"decisions": [{"target_id": "g", "label": "1"}]}, "decisions[0].label"),
    ({"decisions": [{"target_id": 1.5, "label": 1}]}, "decisions[0].target_id"),
    ({"decisions": [{"target_id": "", "label": 1}]}, "decisions[0].target_id"),
    ({"decisions": [{"target_id": "g", "label": 1, "note": "x" * 20_001}]}, "decisions[0].note"),
    (
        {"decisions": [{"target_id": "g", "label": 1, "note": f"key {FAKE_KEY}"}]},
        "decisions[0].note",
    ),
    ({"decisions": [{"target_id": "g", "label": 1, "api_key": "x"}]}, "decisions[0]"),
    ({"phase": 4}, "phase"),
    ({"phase": -1}, "phase"),
    ({"phase": 0}, "phase"),
    ({"analyst": ""}, "analyst"),
    ({"source": "llm"}, "source"),
    ({"vector": b"\x00" * 3}, "vector"),
    ({"vector": array("f", [float("nan")] * DIM).tobytes()}, "vector"),
    ({"dim": 0}, "dim"),
    ({"feature_version": 5}, "feature_version"),
    ({"model_version": ""}, "model_version"),
    ({"snapshot": [{"rank": 1, "target_id": "g", "score": float("inf")}]}, "snapshot[0].score"),
    ({"snapshot": [{"rank": 0, "target_id": "g", "score": 1.0}]}, "snapshot[0].rank"),
]


@pytest.mark.parametrize(("override", "field"), REFINE_REJECTS)
def test_refinement_rejected_before_any_write(
    engine: Engine, item: repo.ItemRecord, override: dict[str, Any], field: str
) -> None:
    before = _refined_to_phase1(engine, item)
    args = {"decisions": [{"target_id": "ok", "label": 1}], **override}
    decisions = args.pop("decisions")
    phase = args.pop("phase", 2)
    with pytest.raises(ValidationError) as err:
        refine(engine, item.id, phase, decisions, **args)
    assert err.value.field == field
    assert FAKE_KEY not in str(err.value)
    assert state(engine, item.id) == before


def test_unknown_item_rejected(engine: Engine, ws: repo.WorkspaceRecord) -> None:
    with pytest.raises(NotFoundError) as err:
        refine(engine, 999, 1, [{"target_id": "g", "label": 1}])
    assert err.value.field == "item_id"
    with pytest.raises(NotFoundError):
        repo.record_decisions(engine, 999, phase=1, decisions=[], analyst="a", source="analyst")
    with pytest.raises(NotFoundError):
        repo.save_feature_version(engine, 999, FEATURES, "a")
    with pytest.raises(ValidationError):
        repo.current_phase(engine, "1")  # type: ignore[arg-type]


ITEM_REJECTS = [
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 501}, "name"),
    ({"name": "bad\x00name"}, "name"),
    ({"external_id": 1.5}, "external_id"),
    ({"external_id": True}, "external_id"),
    ({"external_id": ["C1"]}, "external_id"),
    ({"external_id": "has space"}, "external_id"),
    ({"raw_features": {"api_key": "abc"}}, "raw_features.api_key"),
    ({"raw_features": {"OpenAI-API-Key": "abc"}}, "raw_features.OpenAI-API-Key"),
    ({"raw_features": {"notes": f"use {FAKE_KEY}"}}, "raw_features.notes"),
    ({"raw_features": {"notes": "x" * 20_001}}, "raw_features.notes"),
    ({"raw_features": {"nested": {"a": 1}}}, "raw_features.nested"),
    ({"status": "old"}, "status"),
    ({"domain": "movie"}, "domain"),
    ({"workspace": "missing"}, "workspace"),
    ({"created_by": ""}, "created_by"),
]


@pytest.mark.parametrize(("override", "field"), ITEM_REJECTS)
def test_create_item_rejected(
    engine: Engine, ws: repo.WorkspaceRecord, override: dict[str, Any], field: str
) -> None:
    args: dict[str, Any] = {
        "workspace": ws.name,
        "domain": "disease",
        "name": "X",
        "external_id": "C1",
        "raw_features": {},
        **override,
    }
    with pytest.raises(ValidationError) as err:
        repo.create_item(engine, **args)
    assert err.value.field == field
    assert repo.list_items(engine, ws.name) == []


FEATURE_REJECTS = [
    ([{"name": "password", "value": "x", "source": "analyst"}], "features[0].name"),
    ([{"name": "a", "value": FAKE_KEY, "source": "llm"}], "features[0].value"),
    ([{"name": "a", "value": "x", "source": "llm", "token": "t"}], "features[0].token"),
    ([{"name": "a", "value": "x", "source": "web"}], "features[0].source"),
    ([{"name": "a", "source": "llm"}], "features[0].value"),
    ([{"name": "", "value": "x", "source": "llm"}], "features[0].name"),
    ([{"name": "a", "value": "x", "source": "llm", "keep": "yes"}], "features[0].keep"),
    ([{"name": "a", "value": "x" * 20_001, "source": "llm"}], "features[0].value"),
    ([{"name": "a", "value": "x", "source": "llm"}] * 2, "features[1].name"),
    ({"name": "a"}, "features"),
]


@pytest.mark.parametrize(("features", "field"), FEATURE_REJECTS)
def test_feature_version_rejected(
    engine: Engine, item: repo.ItemRecord, features: Any, field: str
) -> None:
    with pytest.raises(ValidationError) as err:
        repo.save_feature_version(engine, item.id, features, "ana")
    assert err.value.field == field
    assert repo.feature_versions(engine, item.id) == []


# LLM cache, benchmarks, secrets -----------------------------------------------------------------
def test_llm_cache_is_idempotent(engine: Engine) -> None:
    key = repo.llm_cache_key("openai", "gpt-x", "v1", "abc123")
    assert repo.llm_cache_get(engine, key) is None
    args = {"key": key, "provider": "openai", "model": "gpt-x", "prompt_version": "v1"}
    repo.llm_cache_put(engine, input_hash="abc123", response="first", **args)
    repo.llm_cache_put(engine, input_hash="abc123", response="second", **args)
    assert repo.llm_cache_get(engine, key) == "first"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM llm_cache")).scalar() == 1


def test_benchmark_runs(engine: Engine) -> None:
    run_id = repo.save_benchmark_run(
        engine,
        dataset="ml-1m",
        method="emerflow",
        config={"k": 10, "lr": 1e-3},
        result={"auc": 0.81, "per_phase": [0.7, 0.8]},
    )
    assert isinstance(run_id, int)
    (run,) = repo.benchmark_runs(engine, dataset="ml-1m")
    assert run.id == run_id and run.result["per_phase"] == [0.7, 0.8] and run.config["k"] == 10
    with pytest.raises(ValidationError) as err:
        repo.save_benchmark_run(
            engine, dataset="d", method="m", config={"lr": float("nan")}, result={}
        )
    assert err.value.field == "config.lr"


def test_no_secrets_are_ever_stored(engine: Engine, item: repo.ItemRecord) -> None:
    attempts = [
        lambda: repo.llm_cache_put(
            engine,
            key="k",
            provider="openai",
            model="m",
            prompt_version="v1",
            input_hash="h",
            response=f"Your key is {FAKE_KEY}",
        ),
        lambda: repo.llm_cache_put(
            engine,
            key=f"openai:{FAKE_KEY}",
            provider="openai",
            model="m",
            prompt_version="v1",
            input_hash="h",
            response="ok",
        ),
        lambda: repo.save_benchmark_run(
            engine, dataset="d", method="m", config={"llm": {"api_key": "abc"}}, result={}
        ),
        lambda: repo.upsert_workspace(
            engine,
            name="w2",
            domain="movie",
            dataset="d",
            inputs={},
            model_versions={"hf": "hf_" + "a" * 34},
        ),
        lambda: repo.upsert_workspace(
            engine,
            name="w3",
            domain="movie",
            dataset="d",
            inputs={"db_password": "pw"},
            model_versions={},
        ),
        lambda: repo.record_decisions(
            engine,
            item.id,
            phase=1,
            decisions=[{"target_id": "g", "label": 1, "note": f"Authorization: Bearer {'x' * 30}"}],
            analyst="a",
            source="analyst",
        ),
        lambda: repo.create_item(
            engine,
            workspace="diseases",
            domain="disease",
            name=f"key {FAKE_KEY}",
            raw_features={},
        ),
    ]
    for attempt in attempts:
        with pytest.raises(SecretRefusedError):
            attempt()
    # Legitimate look-alikes are accepted.
    repo.record_decisions(
        engine,
        item.id,
        phase=1,
        decisions=[
            {
                "target_id": "g",
                "label": 1,
                "note": "risk-factor-associated-with-smoking; task-specific tokens; max_tokens=5",
            }
        ],
        analyst="a",
        source="analyst",
    )
    repo.save_benchmark_run(engine, dataset="d", method="m", config={"max_tokens": 5}, result={})
    # Nothing credential-like anywhere in the database.
    pattern = re.compile(r"sk-[A-Za-z0-9]{16,}|hf_a{30}|Bearer x{20}|api_key|db_password")
    with engine.connect() as conn:
        for table in TABLE_NAMES:
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                assert not pattern.search(repr(tuple(row))), (table, row)


# Export / import --------------------------------------------------------------------------------
def _rich_item(engine: Engine, item: repo.ItemRecord) -> None:
    repo.save_feature_version(engine, item.id, FEATURES, "ana")
    repo.save_feature_version(engine, item.id, [{**FEATURES[0], "keep": False, "extra": 3}], "bob")
    repo.save_phase0(
        engine,
        item.id,
        feature_version=2,
        model_version="m1",
        vector=vec(0),
        dim=DIM,
        snapshot=topk("p0-", 5),
    )
    refine(
        engine,
        item.id,
        1,
        [{"target_id": "g1", "label": 1, "note": "n1"}, {"target_id": "g2", "label": 0}],
        feature_version=2,
    )
    repo.record_decisions(
        engine,
        item.id,
        phase=2,
        decisions=[{"target_id": "g2", "label": 1, "note": "oops"}],
        analyst="carol",
        source="upload",
    )
    refine(engine, item.id, 2, [{"target_id": "g3", "label": 1}], feature_version=1)


def test_export_import_round_trip(engine: Engine, item: repo.ItemRecord) -> None:
    _rich_item(engine, item)
    doc = repo.export_item(engine, item.id)
    doc = json.loads(json.dumps(doc))  # JSON-serializable, survives a file round trip
    assert doc["item"]["external_id"] == "C0000001"
    assert len(doc["interaction_events"]) == 4 and len(doc["embeddings"]) == 3

    repo.upsert_workspace(
        engine, name="copy", domain="disease", dataset="demo", inputs={}, model_versions={}
    )
    copy = repo.import_item(engine, doc, workspace="copy")
    assert copy.id != item.id and copy.workspace == "copy"
    assert repo.export_item(engine, copy.id) == doc
    assert repo.current_phase(engine, copy.id) == 2
    assert repo.embeddings(engine, copy.id)[1].vector == vec(1)
    # A second import into the same workspace clashes on the external id and writes nothing.
    with pytest.raises(DuplicateError):
        repo.import_item(engine, doc, workspace="copy")
    assert len(repo.list_items(engine, "copy")) == 1


def test_import_rejects_bad_documents_before_writing(engine: Engine, item: repo.ItemRecord) -> None:
    _rich_item(engine, item)
    doc = repo.export_item(engine, item.id)
    bad_docs = {
        "interactions[0].note": lambda d: d["interactions"][0].update(note=FAKE_KEY),
        "interactions[1].label": lambda d: d["interactions"][1].update(label=3),
        "embeddings[0].vector_b64": lambda d: d["embeddings"][0].update(vector_b64="@@"),
        "embeddings[1].phase": lambda d: d["embeddings"][1].update(phase=7),
        "format": lambda d: d.update(format="other"),
        "item.name": lambda d: d["item"].update(name=""),
        "snapshots[0].created_at": lambda d: d["snapshots"][0].update(created_at="yesterday"),
    }
    for field, mutate in bad_docs.items():
        bad = json.loads(json.dumps(doc))
        mutate(bad)
        with pytest.raises(ValidationError) as err:
            repo.import_item(engine, bad, workspace="diseases")
        assert err.value.field == field
    assert [i.id for i in repo.list_items(engine, "diseases")] == [item.id]


def test_timestamps_are_utc(engine: Engine, item: repo.ItemRecord) -> None:
    assert item.created_at.tzinfo is not None
    assert item.created_at.utcoffset() == UTC.utcoffset(None)


# Suggested features per domain ------------------------------------------------------------------
SUGGESTED = [
    {"name": "mechanism", "descriptor": "Mechanism", "why": "drives the genes involved"},
    {"name": "onset_age", "descriptor": "Age of onset"},
]
PROVENANCE = {"provider": "openai", "model": "gpt-4o-mini", "prompt_version": "v1"}


def test_domain_features_save_get_upsert(engine: Engine) -> None:
    assert repo.get_domain_features(engine, "disease") is None
    first = repo.save_domain_features(
        engine, domain="disease", features=SUGGESTED, provenance=PROVENANCE, updated_by="ana"
    )
    assert first.features == [SUGGESTED[0], {**SUGGESTED[1], "why": ""}]
    assert (first.domain, first.provenance, first.updated_by) == ("disease", PROVENANCE, "ana")
    assert first.updated_at.utcoffset() == UTC.utcoffset(None)
    assert repo.get_domain_features(engine, "disease") == first
    assert repo.get_domain_features(engine, "movie") is None

    second = repo.save_domain_features(
        engine,
        domain="disease",
        features=SUGGESTED[:1],
        provenance={},
        updated_by="bob",
    )
    assert second.id == first.id  # upserted, not a second row
    assert (second.features, second.provenance, second.updated_by) == (SUGGESTED[:1], {}, "bob")
    assert second.updated_at >= first.updated_at
    assert repo.get_domain_features(engine, "disease") == second
    movie = repo.save_domain_features(
        engine, domain="movie", features=[], provenance=PROVENANCE, updated_by="ana"
    )
    assert movie.features == [] and movie.id != second.id
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM domain_feature_set")).scalar() == 2
    with pytest.raises(FrozenInstanceError):
        second.updated_by = "eve"  # type: ignore[misc]


DOMAIN_FEATURE_REJECTS: list[tuple[dict[str, Any], str]] = [
    ({"domain": "music"}, "domain"),
    ({"domain": None}, "domain"),
    ({"features": {"name": "a"}}, "features"),
    ({"features": ["mechanism"]}, "features[0]"),
    ({"features": [{"name": "", "descriptor": "D"}]}, "features[0].name"),
    ({"features": [{"name": "a"}]}, "features[0].descriptor"),
    ({"features": [{"name": "a", "descriptor": "A", "value": "x"}]}, "features[0]"),
    ({"features": [{"name": "a", "descriptor": "A", "why": 3}]}, "features[0].why"),
    ({"features": [{"name": "a", "descriptor": "A"}] * 2}, "features[1].name"),
    ({"features": [{"name": "a", "descriptor": "x" * 201}]}, "features[0].descriptor"),
    ({"provenance": ["openai"]}, "provenance"),
    ({"provenance": {"score": float("nan")}}, "provenance.score"),
    ({"updated_by": ""}, "updated_by"),
    ({"updated_by": "x" * 201}, "updated_by"),
]


@pytest.mark.parametrize(("override", "field"), DOMAIN_FEATURE_REJECTS)
def test_domain_features_rejected(engine: Engine, override: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {
        "domain": "disease",
        "features": SUGGESTED,
        "provenance": PROVENANCE,
        "updated_by": "ana",
        **override,
    }
    with pytest.raises(ValidationError) as err:
        repo.save_domain_features(engine, **args)
    assert err.value.field == field
    assert repo.get_domain_features(engine, "disease") is None


def test_domain_features_refuse_secrets(engine: Engine) -> None:
    kept = repo.save_domain_features(
        engine, domain="movie", features=SUGGESTED, provenance=PROVENANCE, updated_by="ana"
    )
    attempts: list[tuple[dict[str, Any], str]] = [
        ({"provenance": {**PROVENANCE, "api_key": "abc"}}, "provenance.api_key"),
        ({"provenance": {"llm": {"openai_api_key": "abc"}}}, "provenance.llm.openai_api_key"),
        ({"provenance": {**PROVENANCE, "model": FAKE_KEY}}, "provenance.model"),
        ({"provenance": {"base_url": f"http://x/?key={FAKE_KEY}"}}, "provenance.base_url"),
        ({"features": [{"name": "password", "descriptor": "P"}]}, "features[0].name"),
        ({"features": [{"name": "a", "descriptor": FAKE_KEY}]}, "features[0].descriptor"),
        (
            {"features": [{"name": "a", "descriptor": "A", "why": f"Bearer {'x' * 30}"}]},
            "features[0].why",
        ),
        ({"updated_by": FAKE_KEY}, "updated_by"),
    ]
    for override, field in attempts:
        args: dict[str, Any] = {
            "domain": "movie",
            "features": SUGGESTED,
            "provenance": PROVENANCE,
            "updated_by": "ana",
            **override,
        }
        with pytest.raises(SecretRefusedError) as err:
            repo.save_domain_features(engine, **args)
        assert err.value.field == field
    assert repo.get_domain_features(engine, "movie") == kept  # nothing was overwritten
    # Legitimate look-alikes are accepted.
    repo.save_domain_features(
        engine,
        domain="movie",
        features=[{"name": "max_tokens", "descriptor": "Token budget", "why": "task-specific"}],
        provenance={**PROVENANCE, "max_tokens": 5},
        updated_by="ana",
    )
    pattern = re.compile(r"sk-[A-Za-z0-9]{16,}|Bearer x{20}|api_key|password")
    with engine.connect() as conn:
        for row in conn.execute(text("SELECT * FROM domain_feature_set")):
            assert not pattern.search(repr(tuple(row))), row
