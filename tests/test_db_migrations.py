"""Alembic migrations: empty database to head, upgrade of a 0001 database with data, models in
sync with the migrations, refusal of unknown (newer) revisions.

Runs on SQLite and, when EMERFLOW_TEST_POSTGRES_URL is set, on PostgreSQL
(start one with ``source .ci/postgres.sh``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from db import repository as repo
from db.database import (
    MIGRATIONS_DIR,
    create_database,
    current_revision,
    drop_database,
    head_revision,
    init_db,
    make_engine,
    upgrade,
    write_engine,
)
from db.errors import DuplicateError, SchemaError
from db.models import TABLE_NAMES

POSTGRES_ENV = "EMERFLOW_TEST_POSTGRES_URL"
SKIP_PG = f"PostgreSQL tests need {POSTGRES_ENV} (start a server with `source .ci/postgres.sh`)"
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
TS = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HEAD = "0005"


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, empty database (no tables)."""
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
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    try:
        yield eng
    finally:
        eng.dispose()


def test_head_is_0004() -> None:
    assert head_revision() == HEAD


def test_empty_database_to_head(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # Alembic is configured in code: the CWD does not matter
    assert current_revision(engine) is None
    init_db(engine)
    assert current_revision(engine) == HEAD
    assert set(TABLE_NAMES) <= set(inspect(engine).get_table_names())
    init_db(engine)  # idempotent
    assert current_revision(engine) == HEAD


def test_models_match_migrations(engine: Engine) -> None:
    """Autogenerate finds nothing to change: db/models.py and the migrations agree."""

    def ours(
        obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
    ) -> bool:
        return type_ != "table" or name in TABLE_NAMES

    def diff() -> list:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"include_object": ours, "compare_type": True}
            )
            return compare_metadata(ctx, SQLModel.metadata)

    upgrade(engine, "0001")  # the comparison does see differences when there are some
    assert ("add_table", "interaction_event") in [
        (d[0], d[1].name) for d in diff() if d[0] == "add_table"
    ]
    upgrade(engine, "0002")
    assert [d[1].name for d in diff() if d[0] == "add_table"] == ["domain_feature_set"]
    init_db(engine)
    assert diff() == []


def _seed_0001(engine: Engine) -> None:
    """Rows written the way release 0001 wrote them (no revision/updated_at/history)."""
    with write_engine(engine).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO workspace (name, domain, dataset, inputs, model_versions, "
                "created_at, updated_at) VALUES ('w', 'disease', 'demo', '{}', '{}', :ts, :ts)"
            ),
            {"ts": TS},
        )
        conn.execute(
            text(
                "INSERT INTO item (workspace_id, domain, external_id, name, normalized_name, "
                "raw_features, status, created_by, created_at) VALUES "
                "(1, 'disease', 'C1', 'Old Item', 'olditem', '{\"a\": \"b\"}', 'emerging', "
                "'ana', :ts)"
            ),
            {"ts": TS},
        )
        for target, label in (("g1", 1), ("g2", 0)):
            conn.execute(
                text(
                    "INSERT INTO interaction (item_id, target_id, label, phase, source, analyst, "
                    "note, created_at) VALUES (1, :t, :l, 1, 'analyst', 'ana', 'old note', :ts)"
                ),
                {"t": target, "l": label, "ts": TS},
            )
        conn.execute(
            text(
                "INSERT INTO embedding_version (item_id, phase, feature_version, model_version, "
                "dim, vector, created_at) VALUES (1, 1, 0, 'm0', 1, :v, :ts)"
            ),
            {"v": b"\x00\x00\x80\x3f", "ts": TS},
        )


def test_upgrade_0001_database_keeps_data(engine: Engine) -> None:
    upgrade(engine, "0001")
    assert current_revision(engine) == "0001"
    assert "interaction_event" not in inspect(engine).get_table_names()
    _seed_0001(engine)

    init_db(engine)  # what the app does at start-up
    assert current_revision(engine) == HEAD
    (item,) = repo.list_items(engine, "w")
    assert (item.name, item.external_id, item.raw_features) == ("Old Item", "C1", {"a": "b"})
    assert item.created_at == TS
    rows = repo.interactions(engine, item.id)
    assert [(r.target_id, r.label, r.revision, r.note) for r in rows] == [
        ("g1", 1, 1, "old note"),
        ("g2", 0, 1, "old note"),
    ]
    assert all(r.updated_at == r.created_at == TS for r in rows)
    history = repo.interaction_history(engine, item.id)
    assert [(h.target_id, h.revision, h.label) for h in history] == [("g1", 1, 1), ("g2", 1, 0)]
    assert repo.current_phase(engine, item.id) == 1
    assert repo.embeddings(engine, item.id)[0].vector == b"\x00\x00\x80\x3f"
    assert repo.get_domain_features(engine, "disease") is None  # 0003: new, empty table

    # The upgraded database keeps working: a changed decision becomes revision 2.
    repo.record_decisions(
        engine,
        item.id,
        phase=2,
        decisions=[{"target_id": "g2", "label": 1}],
        analyst="bob",
        source="analyst",
    )
    g2 = [r for r in repo.interactions(engine, item.id) if r.target_id == "g2"][0]
    assert (g2.label, g2.revision) == (1, 2)


def test_downgrade_to_0001_keeps_current_decisions(engine: Engine) -> None:
    init_db(engine)
    repo.upsert_workspace(
        engine, name="w", domain="movie", dataset="d", inputs={}, model_versions={}
    )
    item = repo.create_item(engine, workspace="w", domain="movie", name="M", raw_features={})
    repo.record_decisions(
        engine,
        item.id,
        phase=1,
        decisions=[{"target_id": "u1", "label": 1}],
        analyst="a",
        source="analyst",
    )
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with write_engine(engine).begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    assert current_revision(engine) == "0001"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT target_id, label FROM interaction")).all() == [("u1", 1)]
    init_db(engine)
    assert [r.target_id for r in repo.interactions(engine, item.id)] == ["u1"]


def test_downgrade_to_0002_drops_only_feature_sets(engine: Engine) -> None:
    init_db(engine)
    repo.upsert_workspace(
        engine, name="w", domain="movie", dataset="d", inputs={}, model_versions={}
    )
    repo.save_domain_features(
        engine,
        domain="movie",
        features=[{"name": "mood", "descriptor": "Mood"}],
        provenance={"provider": "p", "model": "m", "prompt_version": "v1"},
        updated_by="ana",
    )
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with write_engine(engine).begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
    assert current_revision(engine) == "0002"
    assert "domain_feature_set" not in inspect(engine).get_table_names()
    assert [w.name for w in repo.list_workspaces(engine)] == ["w"]
    init_db(engine)  # and back up: an empty table again
    assert repo.get_domain_features(engine, "movie") is None


def test_newer_database_is_refused(engine: Engine) -> None:
    init_db(engine)
    with write_engine(engine).begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaError, match="newer"):
        init_db(engine)
    with engine.connect() as conn:  # nothing was dropped or recreated
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "9999"


def test_alembic_command_line(db_url: str, tmp_path: Path) -> None:
    """``alembic -c .../alembic.ini -x url=URL upgrade head`` works from any directory; without
    a URL it says how to give one (db/ reads no environment)."""
    cmd = [sys.executable, "-m", "alembic", "-c", str(MIGRATIONS_DIR / "alembic.ini")]
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    subprocess.run([*cmd, "-x", f"url={db_url}", "upgrade", "head"], cwd=tmp_path, env=env,
                   check=True, capture_output=True, timeout=120)
    eng = make_engine(db_url)
    try:
        assert current_revision(eng) == HEAD
    finally:
        eng.dispose()
    out = subprocess.run([*cmd, "upgrade", "head"], cwd=tmp_path, env={**env,
                         "DATABASE_URL": db_url}, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "-x url=" in out.stderr


def test_0004_renames_existing_duplicate_names_and_keeps_their_data(engine: Engine) -> None:
    """Before 0004 two items could share a name (concurrent creates); the upgrade keeps the
    oldest name, renames the later copies "<name> (#id)", keeps their decisions, and from then
    on a second item of one name is refused."""
    upgrade(engine, "0001")
    _seed_0001(engine)
    upgrade(engine, "0003")
    with write_engine(engine).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO item (workspace_id, domain, external_id, name, normalized_name, "
                "raw_features, status, created_by, created_at) VALUES "
                "(1, 'disease', NULL, 'Old Item', 'olditem', '{}', 'emerging', 'bob', :ts)"
            ),
            {"ts": TS},
        )
    init_db(engine)
    items = repo.list_items(engine, "w")
    assert [i.name for i in items] == ["Old Item", f"Old Item (#{items[1].id})"]
    assert len(repo.interactions(engine, items[0].id)) == 2
    assert repo.item_version(engine, items[0].id) == (1, 0)
    with pytest.raises(DuplicateError):
        repo.create_item(engine, workspace="w", domain="disease", name="Old Item",
                         raw_features={})


def test_0005_renames_normalized_name_collisions_and_keeps_their_data(engine: Engine) -> None:
    """Before 0005 "Marfan syndrome" and "marfan-syndrome" could both exist (the unique index
    was on the exact name); the upgrade keeps the oldest, renames the later one "<name> (#id)"
    with its data, and from then on a name equal after normalisation is refused."""
    upgrade(engine, "0001")
    _seed_0001(engine)
    upgrade(engine, "0004")
    with write_engine(engine).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO item (workspace_id, domain, external_id, name, normalized_name, "
                "raw_features, status, created_by, created_at, phase_version) VALUES "
                "(1, 'disease', NULL, 'OLD-item', 'olditem', '{}', 'emerging', 'bob', :ts, 0)"
            ),
            {"ts": TS},
        )
    init_db(engine)
    items = repo.list_items(engine, "w")
    assert [i.name for i in items] == ["Old Item", f"OLD-item (#{items[1].id})"]
    assert len(repo.interactions(engine, items[0].id)) == 2
    with pytest.raises(DuplicateError, match="same item"):
        repo.create_item(engine, workspace="w", domain="disease", name="old item!",
                         raw_features={})
