"""The biomedical analyst's walk in a real headless Chromium (Playwright, Debian chromium):
resolve a disease by its OMIM id -> review the curated features -> predict -> read the evidence
-> confirm four genes by symbol (outside the top list) -> refine. Knowledge comes from
``tests/fixtures/knowledge`` (EMERFLOW_DATA); every step's wall-clock time is written to
``artifacts/browser_bio_timings.json`` (the target is 2 s per step on 2 cores; the test only
fails above :data:`STEP_LIMIT_S`, since the CPU is shared).

Skipped when chromium is not installed (the test never downloads a browser).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.test_browser import (
    ARTIFACTS,
    SHOTS,
    browser_page,
    click,
    goto,
    idle,
    see,
    select,
    shot,
    streamlit_app,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
KNOWLEDGE = Path(__file__).resolve().parent / "fixtures" / "knowledge"
STEP_LIMIT_S = 20.0


@pytest.fixture(scope="module")
def bio_server(demo_home, tmp_path_factory):
    home = tmp_path_factory.mktemp("browser_bio_home")
    (home / "workspaces").symlink_to(demo_home / "workspaces")
    with streamlit_app(home, EMERFLOW_DATA=str(KNOWLEDGE)) as url:
        yield url


@pytest.fixture(scope="module")
def bio_page(bio_server):
    with browser_page(bio_server) as pg:
        yield pg


def _type(pg, label: str, value: str) -> None:
    box = pg.get_by_label(label, exact=True).first
    box.fill(value)
    box.press("Enter")
    idle(pg)


def _timed(timings: dict, step: str, fn) -> None:
    t0 = time.perf_counter()
    fn()
    timings[step] = round(time.perf_counter() - t0, 3)


def test_resolve_review_predict_evidence_confirm_by_symbol_refine(bio_page, demo_home):
    pg = bio_page
    pg.get_by_role("heading", name="Workspaces").first.wait_for(state="visible")
    idle(pg)
    targets = pd.read_parquet(demo_home / "workspaces" / "demo-diseases" / "targets.parquet")
    four = targets["symbol"].astype(str).tolist()[-4:]
    timings: dict = {}
    try:
        select(pg, "Workspace", "demo-diseases (synthetic)")
        click(pg, "Use this workspace")
        see(pg, "Now working in demo-diseases")

        goto(pg, "New item", "New item")
        _type(pg, "Name, synonym or id (UMLS CUI, OMIM:, ORPHA:, MeSH, DOID:)", "OMIM:154700")

        def resolve() -> None:
            click(pg, "Resolve and fill the form")
            see(pg, "Resolved: Marfan Syndrome (C0024796)")
        _timed(timings, "resolve_s", resolve)
        assert pg.get_by_label("Disease name (required)", exact=True).first.input_value() == \
            "Marfan Syndrome"
        see(pg, "Micrognathia (HP:0000347)")
        shot(pg, "bio_1_resolved")

        def create() -> None:
            click(pg, "Create item")
            see(pg, "Review its features next")
        _timed(timings, "create_s", create)

        def features() -> None:
            goto(pg, "Features", "Features")
            see(pg, "Curated knowledge")
            see(pg, "Phenotypes (HPO): Micrognathia")
        _timed(timings, "review_features_s", features)
        shot(pg, "bio_2_features")

        def predict() -> None:
            goto(pg, "Predictions", "Predictions")
            see(pg, "Evidence for one gene")
            see(pg, "why this rank: #1 of")
        _timed(timings, "predict_and_evidence_s", predict)
        shot(pg, "bio_3_evidence")

        goto(pg, "Feedback", "Feedback and phases")
        box = pg.get_by_placeholder("e.g. PDE6B, RHO, 6010").first

        def confirm() -> None:
            box.fill(", ".join(four))
            box.press("Enter")
            idle(pg)
            click(pg, "Add as confirmed")
            see(pg, "Found by search:")
        _timed(timings, "confirm_four_by_symbol_s", confirm)
        found = pg.get_by_text("Found by search:").first.inner_text()
        assert all(f"{s} (" in found for s in four), found

        def refine() -> None:
            click(pg, "Refine → Phase I")
            see(pg, "Refined to Phase I with 4 decision(s)")
        _timed(timings, "refine_s", refine)
        shot(pg, "bio_4_refined")
    except Exception:
        pg.screenshot(path=str(SHOTS / "bio_failure.png"), full_page=True)
        raise
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        timings["note"] = ("wall-clock per step, click to answer visible and the script run "
                           "finished; demo-diseases, fixture knowledge, headless Chromium")
        (ARTIFACTS / "browser_bio_timings.json").write_text(json.dumps(timings, indent=1))
        print("\nbio browser timings:", json.dumps(timings, indent=1))
    slow = {k: v for k, v in timings.items() if isinstance(v, float) and v > STEP_LIMIT_S}
    assert not slow, slow
