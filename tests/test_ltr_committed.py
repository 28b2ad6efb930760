"""The learned ranker's committed figures: ``results/<dataset>/tuning-small.json`` (its
tuning round L7 on the small-item validation set, learning rate x trees under the build
budget, beside the baselines' rounds there), ``results/<dataset>/emerflow-ltr-tuning-l3.json``
/ ``-l4.json`` / ``-l4b.json`` / ``-l6.json`` (rounds L3 there, LightGBM's settings, L4, the
training lists' composition, whose edges L4b widened, and L6, the item-category channel),
``results/<dataset>/emerflow-ltr-tuning.json`` (rounds L1/L2 on held-out old items, where it
was chosen as the product), ``engine/tuned.py`` (the settings chosen in L3, L4b, L6 and L7),
``results/<dataset>/emerflow-ltr.json`` (the 3-seed test run with them) and the README rows
quoting that run. Each check reads the real
files, so a stale setting, a result file run with other settings or a README figure that no
longer matches its JSON fails here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.baselines import METHODS
from engine.bench import DEFAULT_TRIALS, grid_trials
from engine.bench_tune import best_trial
from engine.tuned import DATASET_SETTINGS, PRODUCT_METHOD

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
REAL = ("disgenet-curated", "movielens-1m-partial")
PHASES = ("0", "I", "II", "III")
NAME = "emerflow-ltr"


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _best(trials: list[dict], budget: dict | None = None) -> dict:
    return dict(best_trial(trials, budget))


#: Round L7's settings: they replace L3's choice of these two.
L7_KEYS = ("learning_rate", "n_estimators")


@pytest.mark.parametrize("dataset", REAL)
def test_ltr_settings_are_the_best_trial_of_its_round_on_the_current_grid(dataset):
    """The round drew the same budget as every other method from ``EmerFlowLtr.grid`` (the
    grid in the code is the grid that ran), engine/tuned.py holds its best validation trial
    and the channels' settings of the text-knn and ease rounds, and the committed 3-seed
    result ran with exactly those settings. The round's budget (the ranker's trees, which
    its build time grows with) is recorded with it; its best trial is the best within it."""
    doc = _json(RESULTS / dataset / "tuning-small.json")
    rec = doc["methods"][NAME]
    assert doc["dataset"] == dataset and doc["trials_per_method"] == DEFAULT_TRIALS
    assert "--validation-set small" in doc["command"]
    assert [t["settings"] for t in rec["trials"]] == grid_trials(
        METHODS[NAME].grid, doc["trials_per_method"], doc["seed"])
    assert set(rec["budget"]) == {"n_estimators"} and "--budget" in doc["command"]
    best = _best(rec["trials"], rec["budget"])
    assert rec["best"] == best["settings"]
    unconstrained = _best(rec["trials"])
    assert rec.get("best_without_budget", best["settings"]) == unconstrained["settings"]
    tuned = DATASET_SETTINGS[dataset]["methods"]
    ltr = tuned[NAME]["ltr"]
    assert {k: ltr[k] for k in best["settings"]} == best["settings"]
    assert (ltr["k"], ltr["temperature"]) == (tuned["text-knn"]["k"],
                                              tuned["text-knn"]["temperature"])
    assert ltr["ease_lam"] == tuned["ease"]["lam"]
    committed = _json(RESULTS / dataset / f"{NAME}.json")
    assert committed["seeds"] == [0, 1, 2] and committed["method"] == NAME
    ran = committed["config"]["method"]
    assert {k: ran[k] for k in ltr} == ltr


def _history(dataset: str, name: str) -> tuple[dict, dict]:
    """(the record of an earlier small-item round, its best trial's settings), after checking
    that it drew the budget from the grid it names."""
    doc = _json(RESULTS / dataset / f"{NAME}-tuning-{name.lower()}.json")
    rec = doc["methods"][NAME]
    assert doc["round"] == name and doc["trials_per_method"] == DEFAULT_TRIALS
    grid = {k: tuple(v) for k, v in doc["grid"].items()}
    assert [t["settings"] for t in rec["trials"]] == grid_trials(grid, DEFAULT_TRIALS,
                                                                 doc["seed"])
    best = _best(rec["trials"], rec.get("budget"))["settings"]
    assert rec["best"] == best
    return doc, best


@pytest.mark.parametrize("dataset", REAL)
def test_lightgbm_settings_are_the_best_trial_of_round_l3(dataset):
    """Round L3 (LightGBM's settings on the small-item set, before L4/L4b varied the training
    lists with them fixed): engine/tuned.py and the committed 3-seed result hold its best,
    except the learning rate and trees, which round L7 chose again."""
    _, best = _history(dataset, "L3")
    best = {k: v for k, v in best.items() if k not in L7_KEYS}
    ltr = DATASET_SETTINGS[dataset]["methods"][NAME]["ltr"]
    assert {k: ltr[k] for k in best} == best
    ran = _json(RESULTS / dataset / f"{NAME}.json")["config"]["method"]
    assert {k: ran[k] for k in best} == best


@pytest.mark.parametrize("dataset", REAL)
def test_round_l4b_widened_the_edges_l4_chose(dataset):
    """L4's best list settings lie on its grid's edges for the negatives (and, on DisGeNET,
    the candidates); L4b's grid goes past the negatives' edge and holds L4's best point, whose
    validation score it reproduces exactly; engine/tuned.py and the committed result hold
    L4b's best."""
    doc, best = _history(dataset, "L4")
    l4b_doc, l4b_best = _history(dataset, "L4b")
    grid = l4b_doc["grid"]
    assert best["random_negatives"] == min(doc["grid"]["random_negatives"])
    assert min(grid["random_negatives"]) < best["random_negatives"]
    assert best["candidates"] in grid["candidates"]
    l4 = _best(doc["methods"][NAME]["trials"])
    l4b = l4b_doc["methods"][NAME]["trials"]
    same = [t for t in l4b if t["settings"] == best]
    assert len(same) == 1 and same[0]["score"] == l4["score"]
    ltr = DATASET_SETTINGS[dataset]["methods"][NAME]["ltr"]
    assert {k: ltr[k] for k in l4b_best} == l4b_best
    ran = _json(RESULTS / dataset / f"{NAME}.json")["config"]["method"]
    assert {k: ran[k] for k in l4b_best} == l4b_best


@pytest.mark.parametrize("dataset", REAL)
def test_round_l6_ran_with_l4b_best_and_reproduces_it(dataset):
    """Round L6 (the category channel) varied only ``categories``: its 'off' trial is L4b's
    best point and scores exactly what L4b recorded for it."""
    l4b_doc, _ = _history(dataset, "L4b")
    l4b = _best(l4b_doc["methods"][NAME]["trials"])
    l6_doc, l6_best = _history(dataset, "L6")
    off = [t for t in l6_doc["methods"][NAME]["trials"] if t["settings"] == {"categories": ""}]
    assert len(off) == 1 and off[0]["score"] == l4b["score"]
    ltr = DATASET_SETTINGS[dataset]["methods"][NAME]["ltr"]
    assert {k: ltr[k] for k in l6_best} == l6_best


@pytest.mark.parametrize("dataset", REAL)
def test_round_l7_ran_with_l6_best_and_l7b_widened_its_edges(dataset):
    """Round L7 varied only the learning rate and trees: its trial at L3's choice of them is
    L6's best point and scores exactly what L6 recorded for it (the lists are the same). Within
    the budget L7 chose the trees' lower edge (on MovieLens the rate's upper edge too); L7b's
    grid (the one in the code) goes past those edges, holds L7's choice and reproduces it."""
    l6_doc, _ = _history(dataset, "L6")
    l6 = _best(l6_doc["methods"][NAME]["trials"])
    _, l3_best = _history(dataset, "L3")
    l7_doc, l7_best = _history(dataset, "L7")
    l7 = l7_doc["methods"][NAME]["trials"]
    at_l3 = [t for t in l7 if t["settings"] == {k: l3_best[k] for k in L7_KEYS}]
    assert len(at_l3) == 1 and at_l3[0]["score"] == l6["score"]
    grid, l7_grid = METHODS[NAME].grid, l7_doc["grid"]
    assert set(grid) == set(L7_KEYS) == set(l7_grid)
    assert l7_best["n_estimators"] == min(l7_grid["n_estimators"]) > min(grid["n_estimators"])
    if l7_best["learning_rate"] == max(l7_grid["learning_rate"]):
        assert max(grid["learning_rate"]) > l7_best["learning_rate"]
    l7b = _json(RESULTS / dataset / "tuning-small.json")["methods"][NAME]
    assert l7b["budget"] == l7_doc["methods"][NAME]["budget"]
    scores = {json.dumps(t["settings"], sort_keys=True): t["score"] for t in l7}
    shared = [t for t in l7b["trials"] if json.dumps(t["settings"], sort_keys=True) in scores]
    assert any(t["settings"] == l7_best for t in shared)
    assert all(t["score"] == scores[json.dumps(t["settings"], sort_keys=True)] for t in shared)


@pytest.mark.parametrize("dataset", REAL)
def test_ltr_is_the_product_because_it_wins_validation(dataset):
    """PRODUCT_METHOD names the learned ranker because its best validation NDCG@100 (mean of
    phases) is above the best of text-ease (the strongest simple sum) and of the shared-space
    EmerFlow on held-out old items (tuning.json, round L2), and above every simple baseline's
    on the small-item validation set (tuning-small.json, round L4b)."""
    assert PRODUCT_METHOD[dataset] == NAME
    mine = _best(_json(RESULTS / dataset / f"{NAME}-tuning.json")["methods"][NAME]["trials"])
    others = _json(RESULTS / dataset / "tuning.json")["methods"]
    for other in ("text-ease", "emerflow-tt-nollm"):
        assert mine["score"] > _best(others[other]["trials"])["score"], other
    small = _json(RESULTS / dataset / "tuning-small.json")["methods"]
    mine = _best(small[NAME]["trials"], small[NAME].get("budget"))
    assert set(small) >= {"text-knn", "ease", "cooc-knn", "text-ease", "text-cooc"}
    for other, rec in small.items():
        if other != NAME:
            assert mine["score"] > _best(rec["trials"])["score"], other


@pytest.mark.parametrize("dataset", REAL)
def test_baselines_take_their_small_item_round(dataset):
    """Every baseline tuned on the small-item set runs with that round's best settings (the
    parts' settings of text-ease / text-cooc included) in engine/tuned.py and in its committed
    3-seed result."""
    small = _json(RESULTS / dataset / "tuning-small.json")["methods"]
    tuned = DATASET_SETTINGS[dataset]["methods"]
    for name, rec in small.items():
        if name == NAME:
            continue
        best = _best(rec["trials"])["settings"]
        assert {k: tuned[name][k] for k in best} == best, name
        ran = _json(RESULTS / dataset / f"{name}.json")["config"]["method"]
        assert {k: ran[k] for k in tuned[name]} == tuned[name], name
    for combo, part, keys in (("text-ease", "text-knn", ("k", "temperature")),
                              ("text-ease", "ease", ("lam",)),
                              ("text-cooc", "text-knn", ("k", "temperature")),
                              ("text-cooc", "cooc-knn", ("alpha",))):
        for k in keys:
            assert tuned[combo][k] == tuned[part][k], (combo, part, k)


def _cell(doc: dict, phase: str) -> str:
    """README's 'NDCG@100 / Recall@100' cell of a phase: 4 digits, no leading zero."""
    r = doc["ranking"][phase]
    return " / ".join(f"{r[m]['mean']:.4f}".removeprefix("0") for m in ("ndcg@100", "recall@100"))


def test_readme_rows_are_the_committed_ltr_figures():
    """The README's test table quotes the committed 3-seed means of emerflow-ltr."""
    readme = (ROOT / "README.md").read_text()
    for dataset in REAL:
        doc = _json(RESULTS / dataset / f"{NAME}.json")
        row = f"| {dataset} | {NAME} | " + " | ".join(_cell(doc, p) for p in PHASES) + " |"
        assert row in readme, row
