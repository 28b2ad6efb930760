"""Issue 19 in a real headless Chromium (Playwright, Debian chromium): what to test next ->
export the plan -> confirm/reject the suggested genes -> refine; a candidate list -> the list
ranked -> the CSV export read back with pandas as its first line documents.

Skipped when chromium is not installed (the test never downloads a browser).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from app.exports import read_export
from tests.test_browser import SHOTS, browser_page, click, goto, idle, see, select, streamlit_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]
KNOWLEDGE = Path(__file__).resolve().parent / "fixtures" / "knowledge"
REPO = Path(__file__).resolve().parents[1]
#: Per chart on the page: legend labels, those drawn inside the chart's box, the distinct
#: colours of the legend's symbols, and the chart's height (px).
LEGENDS_JS = """() => [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')]
  .filter(c => c.querySelector('svg')).map(c => {
    const box = c.getBoundingClientRect();
    const labels = [...c.querySelectorAll('.role-legend-label text')];
    const inside = labels.filter(t => { const b = t.getBoundingClientRect();
      return b.height > 0 && b.top >= box.top - 1 && b.bottom <= box.bottom + 1; });
    const fills = [...c.querySelectorAll('.role-legend-symbol path')]
      .map(p => p.getAttribute('fill') || getComputedStyle(p).fill);
    return {labels: new Set(labels.map(t => t.textContent)).size,
            inside: new Set(inside.map(t => t.textContent)).size,
            colours: new Set(fills).size, height: box.height};
  })"""


@pytest.fixture(scope="module")
def analyst_page(demo_home, tmp_path_factory):
    home = tmp_path_factory.mktemp("browser_analyst_home")
    (home / "workspaces").symlink_to(demo_home / "workspaces")
    (home / "results").symlink_to(REPO / "results")  # the committed benchmark results
    with streamlit_app(home, EMERFLOW_DATA=str(KNOWLEDGE)) as url, browser_page(url) as pg:
        yield pg


def _download(pg, button: str, tmp_path: Path) -> bytes:
    """Click a download button and read the file; a click landing while the page reruns is
    lost (the button is re-rendered), so it is clicked again, at most three times."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(3):
        try:
            with pg.expect_download(timeout=40_000) as info:
                pg.get_by_role("button", name=button, exact=True).first.click()
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            idle(pg)
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(str(path))
    return path.read_bytes()


def test_suggest_confirm_refine_and_candidate_list_export(analyst_page, demo_home, tmp_path):
    pg = analyst_page
    pg.get_by_role("heading", name="Workspaces").first.wait_for(state="visible")
    idle(pg)
    try:
        select(pg, "Workspace", "demo-diseases (synthetic)")
        click(pg, "Use this workspace")
        see(pg, "Now working in demo-diseases")
        goto(pg, "New item", "New item")
        pg.get_by_label("Disease name (required)", exact=True).first.fill(
            "Browser next-test dysplasia")
        click(pg, "Create item")
        see(pg, "Review its features next")

        # ---- what to test next -> plan -> confirm / reject -> refine ----
        goto(pg, "Feedback", "Feedback and phases")
        see(pg, "What to test next")
        stamp, plan = read_export(_download(pg, "Plan as CSV", tmp_path), dtype={"gene id": str})
        assert len(plan) == 4 and stamp["item"] == "Browser next-test dysplasia"
        assert plan["why test it"].str.len().min() > 10
        first, second = plan.iloc[0], plan.iloc[1]
        for label, row in (("Confirm genes", first), ("Reject genes", second)):
            pg.get_by_role("combobox", name=label, exact=True).first.click()
            pg.get_by_role("option", name=f"#{row['rank']} {row['gene']} ({row['gene id']})",
                           exact=True).first.click()
            pg.keyboard.press("Escape")
            idle(pg)
        click(pg, "Refine → Phase I")
        see(pg, "Refined to Phase I with 2 decision(s)")
        _, after = read_export(_download(pg, "Plan as CSV", tmp_path), dtype={"gene id": str})
        assert not {first["gene id"], second["gene id"]} & set(after["gene id"])
        pg.screenshot(path=str(SHOTS / "analyst_1_suggest_refined.png"))
        # the phase-history charts keep their 280 px plot and their whole legend
        see(pg, "Phase history")
        pg.locator('[data-testid="stVegaLiteChart"] svg').first.wait_for(state="attached")
        history = [c for c in pg.evaluate(LEGENDS_JS) if c["labels"]][:2]
        assert len(history) == 2, history
        for chart in history:
            assert chart["inside"] == chart["labels"] and chart["height"] > 330, chart

        # ---- a candidate list -> ranked within the list -> CSV read back ----
        targets = pd.read_parquet(demo_home / "workspaces" / "demo-diseases" / "targets.parquet")
        symbols = targets["symbol"].astype(str).tolist()[100:103]
        goto(pg, "Predictions", "Predictions")
        pg.get_by_text("Rank within a candidate list", exact=False).first.click()
        idle(pg)
        box = pg.get_by_label("Symbols, aliases or ids (NCBI, HGNC, Ensembl)", exact=True).first
        box.fill("\n".join([*symbols, "NOTAGENE1"]))
        box.press("Control+Enter")
        idle(pg)
        see(pg, "Your 3 candidate genes ranked for")
        see(pg, "NOTAGENE1: not a gene of this workspace")
        data = _download(pg, "Download CSV", tmp_path)
        first_line = data.decode().split("\n", 1)[0]
        n_skip = int(first_line.split("after ")[1].split(" ")[0])
        import io

        table = pd.read_csv(io.BytesIO(data), skiprows=n_skip)  # as documented
        assert table["rank in list"].tolist() == [1, 2, 3]
        assert set(table["symbol"]) == set(symbols)
        assert table["rank"].is_monotonic_increasing
        pg.screenshot(path=str(SHOTS / "analyst_2_candidates.png"))
    except Exception:
        SHOTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(SHOTS / "analyst_failure.png"), full_page=True)
        raise


def test_benchmark_legends_name_every_method_in_its_own_colour(analyst_page):
    """The committed DisGeNET results (21 methods): each method chart's legend is drawn whole
    inside the chart (it was cut at the plot's height: 9 of 18 shown) with one colour per
    method (the theme's 10 colours repeated)."""
    pg = analyst_page
    goto(pg, "Benchmark", "Benchmark")
    select(pg, "Dataset", "disgenet-curated")
    see(pg, "Recall@20 by phase")
    pg.locator('[data-testid="stVegaLiteChart"] svg').first.wait_for(state="attached")
    pg.wait_for_timeout(1500)
    charts = pg.evaluate(LEGENDS_JS)
    method_charts = [c for c in charts if c["labels"] > 12]
    assert method_charts, charts
    for chart in method_charts:
        assert chart["inside"] == chart["labels"], chart
        assert chart["colours"] == chart["labels"], chart
    pg.locator('[data-testid="stVegaLiteChart"]').first.screenshot(
        path=str(SHOTS / "analyst_3_benchmark_legend.png"))
