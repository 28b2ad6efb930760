"""The load benchmark's harness still drives the app (``bench/load.py``, issue 18 item 6).

A small run of the real thing: one ``streamlit run app/main.py`` with login on (``[auth]``
for the test OIDC provider), 2 headless-chromium sessions signed in as 2 identities, ~30 s
of lookup -> create -> predict -> confirm 4 genes -> refine on SQLite, no warm-up flow. It
asserts what the benchmark counts (0 errors, 0 decisions lost, every session sees and stores
its own identity), never a timing: the figures come from the full run (``python -m
bench.load``), written to ``results/load/``. A second test checks that the harness's
database comparison does count a lost decision and one stored under another identity.

Skipped when chromium is not installed (the harness never downloads a browser).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.mark.browser
@pytest.mark.slow
def test_two_signed_in_sessions_for_thirty_seconds_lose_nothing(demo_home: Path,
                                                                tmp_path: Path) -> None:
    pytest.importorskip("playwright.async_api")
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    from bench.load import STEPS, run_once, summary

    doc = run_once(db="sqlite", auth=True, sessions=2, minutes=0.4,
                   workspaces=demo_home / "workspaces", step_timeout_s=120,
                   artifacts=tmp_path / "shots", warmup=False)
    print(summary(doc))
    assert doc["errors"] == 0, doc["error_details"]
    assert doc["iterations_completed"] >= 2
    assert doc["decisions_acknowledged"] == 4 * doc["iterations_completed"]
    assert doc["decisions_lost"] == 0, doc["lost"]
    assert doc["items_not_at_phase_I"] == 0
    assert all(doc["steps"][s]["n"] >= 2 for s in STEPS), doc["steps"]
    assert doc["identity"]["sessions_shown_own_identity"] == 2, doc["per_session"]
    assert doc["decisions_under_another_identity"] == 0
    assert doc["items_under_another_identity"] == 0
    # the browser's Decision history never shows another identity (reading the grid's
    # virtualised cells back is best effort: a table read empty counts as not read)
    ident = doc["identity"]
    assert (ident["decision_history_own_identity_only"]
            == ident["decision_history_tables_read"]), doc["per_session"]
    assert doc["identity"]["decision_history_rows_of_another_identity"] == 0
    assert doc["server_alive_at_end"]


@pytest.mark.slow
def test_the_database_check_counts_lost_and_misattributed_decisions(db, diseases) -> None:
    """``stored_decisions`` against a real SQLite database: a decision the session saw
    acknowledged but the database lacks is lost; one stored under another identity is
    counted as such."""
    from app import flows
    from bench.load import SessionLog, stored_decisions
    from engine.settings import get_settings

    item = flows.new_item(db, diseases, name="Load check", features={},
                          analyst="load-00@example.org")
    targets = flows.predict_item(db, diseases, item.id).prediction.targets["target_id"]
    a, b, c = (str(t) for t in targets.tolist()[:3])
    flows.confirm_and_refine(db, diseases, item.id, [(a, 1), (b, 1)],
                             analyst="load-00@example.org", expected_phase=0)
    mine = SessionLog(index=0, email="load-00@example.org", items={item.id: [a, b, c]})
    other = SessionLog(index=1, email="load-01@example.org", items={item.id: [a]})
    got = stored_decisions(get_settings().database_url_resolved(), [mine, other], auth=True)
    assert got["decisions_acknowledged"] == 4
    assert got["decisions_lost"] == 1 and got["lost"][0]["gene"] == c
    assert got["decisions_under_another_identity"] == 1
    assert got["items_under_another_identity"] == 1
    assert got["items_not_at_phase_I"] == 0
