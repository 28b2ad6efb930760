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


# ---- 4. workspace saves are atomic; damaged files give a clear message ------------------------
SAVE_LOOP = """
import sys
from pathlib import Path
from engine.workspace_store import load_workspace, save_workspace
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
ws = load_workspace(src)
print("ready", flush=True)
while True:
    save_workspace(ws, dst)
"""


def _copy_workspace(src: Path, dst: Path) -> None:
    import shutil

    shutil.copytree(src, dst, symlinks=False)


@pytest.mark.slow
def test_kill_9_during_saves_never_leaves_an_unloadable_workspace(
    demo_home: Path, tmp_path: Path, encoder
) -> None:
    import random
    import signal
    import subprocess
    import sys
    import time

    from engine.workspace_store import load_workspace

    src = demo_home / "workspaces" / "demo-diseases"
    dst = tmp_path / "workspaces" / "demo-diseases"
    _copy_workspace(src, dst)
    rng = random.Random(13)
    proc = subprocess.Popen([sys.executable, "-c", SAVE_LOOP, str(src), str(dst)],
                            stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parents[1])
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    kills = 5
    try:
        for _ in range(kills):
            time.sleep(rng.uniform(0.05, 0.6))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            ws = load_workspace(dst, encoder)  # must load after every kill
            assert ws.name == "demo-diseases"
            proc = subprocess.Popen([sys.executable, "-c", SAVE_LOOP, str(src), str(dst)],
                                    stdout=subprocess.PIPE,
                                    cwd=Path(__file__).resolve().parents[1])
            assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    finally:
        proc.kill()
        proc.wait()
    leftovers = [p.name for p in dst.parent.iterdir() if p.name != "demo-diseases"]
    load_workspace(dst, encoder)
    assert all(n.startswith(".demo-diseases.") for n in leftovers)


@pytest.mark.parametrize("damage", ["zero_pt", "truncated_parquet", "bad_json"])
def test_damaged_workspace_files_give_a_rebuild_message(
    demo_home: Path, tmp_path: Path, encoder, damage: str
) -> None:
    from engine.workspace_store import WorkspaceDamagedError, load_workspace

    dst = tmp_path / "demo-movies"
    _copy_workspace(demo_home / "workspaces" / "demo-movies", dst)
    if damage == "zero_pt":
        (dst / "shared_aligner.pt").write_bytes(b"")
    elif damage == "truncated_parquet":
        data = (dst / "targets.parquet").read_bytes()
        (dst / "targets.parquet").write_bytes(data[: len(data) // 2])
    else:
        (dst / "workspace.json").write_text('{"format_version": ')
    with pytest.raises(WorkspaceDamagedError,
                       match=r"damaged .*rebuild with `emerflow build --dataset demo-movies`"):
        load_workspace(dst, encoder)


def test_truncated_text_cache_is_discarded_and_rebuilt(tmp_path: Path, encoder) -> None:
    from engine.text.encoder import TextEncoder

    cache = tmp_path / "text_cache.npz"
    encoder.encode(["a sentence to cache"])
    encoder.save_cache(cache)
    data = cache.read_bytes()
    cache.write_bytes(data[: len(data) // 3])
    enc = TextEncoder(encoder.config, cache_path=cache)  # no exception: the cache is discarded
    assert not cache.exists()
    vec = enc.encode(["a sentence to cache"])
    enc.save_cache()
    assert cache.exists() and vec.shape == (1, enc.dim)


# ---- 5. full disk, read-only home, locked database: a clear message; browsing goes on --------
def _mount_tmpfs(path: Path, size: str = "2m") -> None:
    import subprocess

    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("needs permission to mount a tmpfs (root in a container or CI)")


def _umount(path: Path) -> None:
    import subprocess

    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _fill(folder: Path) -> None:
    """Fill the file system holding ``folder`` (a real full disk)."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 65536):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


def test_full_disk_gives_a_clear_message_and_reads_still_work(tmp_path: Path, diseases) -> None:
    from app.errors import DISK_FULL, user_message

    home = tmp_path / "small"
    _mount_tmpfs(home, "3m")
    try:
        url = f"sqlite:///{home / 'emerflow.db'}"
        db = flows.open_database(url).engine
        first = flows.new_item(db, diseases, name="Before the disk filled", features={})
        _fill(home)  # fill the disk for real
        with pytest.raises(Exception) as err:
            for i in range(200):  # until SQLite needs a new page
                flows.new_item(db, diseases, name=f"Disk full {i}", features={
                    "description": "x" * 4000})
        message = user_message(err.value, "Creating the item")
        assert message.startswith(DISK_FULL) and "Traceback" not in message
        assert repo.get_item(db, first.id).name == "Before the disk filled"  # browsing works
        db.dispose()
    finally:
        _umount(home)


def test_read_only_home_still_browses(tmp_path: Path, diseases) -> None:
    import subprocess

    from app.errors import READ_ONLY, user_message

    home = tmp_path / "ro"
    _mount_tmpfs(home, "8m")
    try:
        url = f"sqlite:///{home / 'emerflow.db'}"
        db = flows.open_database(url).engine
        item = flows.new_item(db, diseases, name="Written before", features={})
        db.dispose()
        done = subprocess.run(["mount", "-o", "remount,ro", str(home)], capture_output=True)
        assert done.returncode == 0, done.stderr
        opened = flows.open_database(url)
        assert opened.read_only == READ_ONLY
        assert [i.name for i in repo.list_items(opened.engine, diseases.name)] == [
            "Written before"]
        assert repo.get_item(opened.engine, item.id).name == "Written before"
        with pytest.raises(Exception) as err:
            flows.new_item(opened.engine, diseases, name="Cannot write", features={})
        assert user_message(err.value, "Creating the item").startswith(READ_ONLY)
        opened.engine.dispose()
    finally:
        _umount(home)


def test_locked_database_gives_a_clear_message(tmp_path: Path) -> None:
    import sqlite3

    from app.errors import LOCKED, user_message

    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError) as err:
        other.execute("BEGIN IMMEDIATE")
    assert user_message(err.value, "Saving").startswith(LOCKED)
    holder.execute("ROLLBACK")
    holder.close()
    other.close()


def test_a_kill_between_the_two_renames_still_reads_as_built(demo_home: Path,
                                                             tmp_path: Path, encoder) -> None:
    """The save renames the old copy aside, then the new one into place; killed in between,
    only ``.name.old-*`` exists: the workspace counts as built and loads (restored)."""
    from engine.workspace_store import load_workspace, workspace_exists

    dst = tmp_path / "ws" / "demo-movies"
    _copy_workspace(demo_home / "workspaces" / "demo-movies", dst)
    aside = dst.parent / ".demo-movies.old-deadbeef"
    os.replace(dst, aside)
    assert workspace_exists(dst)
    ws = load_workspace(dst, encoder)
    assert ws.name == "demo-movies" and (dst / "workspace.json").is_file()
    assert not aside.exists()


def test_a_full_disk_during_a_save_is_one_clear_error_and_keeps_the_old_copy(
        demo_home: Path, tmp_path: Path, encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch reports a failed write (full disk) as a RuntimeError: the save turns it into an
    ENOSPC OSError naming the folder, the CLI prints one line of it, the old copy still loads.
    (A mock: a real full disk can't be made on a CI machine without root mounts.)"""
    import errno

    import torch

    from engine.cli import _os_reason
    from engine.workspace_store import load_workspace, save_workspace

    dst = tmp_path / "ws" / "demo-movies"
    _copy_workspace(demo_home / "workspaces" / "demo-movies", dst)
    ws = load_workspace(dst, encoder)

    def full(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter "
                           "failed writing file data/0: file write failed")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError) as info:
        save_workspace(ws, dst)
    assert info.value.errno == errno.ENOSPC and "disk full" in str(info.value)
    assert "the disk is full" in _os_reason(info.value)
    monkeypatch.undo()
    assert load_workspace(dst, encoder).name == "demo-movies"
    assert [p.name for p in dst.parent.iterdir()] == ["demo-movies"]  # no leftovers


@pytest.mark.parametrize("fault", ["read-only", "full"])
def test_new_item_page_lists_items_to_reopen_on_a_faulty_home(
        fault: str, tmp_path: Path, demo_env: Path, diseases,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 18: a read-only home or a full disk stopped the New item page before its "Reopen
    an item" list. Now the page names the fault (read-only vs full), lists and reopens the
    items, and refusing a new item says why; the item written before is intact."""
    import subprocess

    from app.errors import DISK_FULL, READ_ONLY
    from app.state import ITEM_KEY, WORKSPACE_KEY
    from tests.test_app_pages import _new_disease, open_page, texts

    folder = tmp_path / "dbhome"
    _mount_tmpfs(folder, "8m")
    try:
        url = f"sqlite:///{folder / 'emerflow.db'}"
        db = flows.open_database(url).engine
        flows.ensure_workspace(db, diseases)
        written = flows.new_item(db, diseases, name="Written before the fault", features={}).id
        db.dispose()
        monkeypatch.setenv("DATABASE_URL", url)
        if fault == "read-only":
            done = subprocess.run(["mount", "-o", "remount,ro", str(folder)],
                                  capture_output=True)
            assert done.returncode == 0, done.stderr
            expected = READ_ONLY
        else:
            _fill(folder)
            expected = DISK_FULL

        page = open_page("new_item", **{WORKSPACE_KEY: "demo-diseases"})
        shown = (texts(page.warning) + texts(page.error)).replace("\\", "")  # md escapes
        assert expected.split(":")[0] in shown, shown
        if fault == "full":
            assert READ_ONLY.split(":")[0] not in shown, "a full disk is not a read-only home"
        assert page.subheader and "Reopen an item" in texts(page.subheader)
        choice = page.selectbox(key="reopen_choice")
        assert f"#{written} Written before the fault (Phase 0)" in choice.options
        page.button(key="reopen_btn").click().run()
        assert page.session_state[ITEM_KEY] == written
        assert "Written before the fault" in texts(page.success)

        # the reopened item's predictions and feedback pages browse too (nothing stored)
        for view, heading in (("predictions", "Top genes for"), ("feedback", "Phase")):
            seen = open_page(view, **{WORKSPACE_KEY: "demo-diseases", ITEM_KEY: written})
            body = texts(seen.markdown) + texts(seen.subheader) + texts(seen.caption)
            assert heading in body, (view, body[:400])
            assert not seen.error, (view, texts(seen.error))

        page = _new_disease(page, "Cannot be written")
        refused = texts(page.error).replace("\\", "")
        assert expected.split(":")[0] in refused, refused
        assert "Traceback" not in refused and not page.exception
    finally:
        _umount(folder)
