"""What to test next (engine.suggest, app.analyst) and the candidate-list ranking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app import analyst, flows, items
from engine.suggest import (
    DEFAULT_DIALS,
    CoAssociation,
    SuggestConfig,
    plan_table,
    suggest,
)


def _disease(db, ws):
    data = items.disease_input(name="Wnt bone disorder X", disease_type="disease",
                               description="A disorder of Wnt signaling affecting bone.")
    return items.create(db, ws, data)


def test_config_validates():
    for bad in ({"k": 0}, {"dial": 1.5}, {"dial": -0.1}, {"k": 5, "pool": 4}):
        with pytest.raises(ValueError, match="SuggestConfig"):
            SuggestConfig(**bad)
    assert set(DEFAULT_DIALS) == {"disease", "movie"}


def test_dial_zero_is_greedy_top_k_and_skips_decided(diseases):
    pred = diseases.predict({"name": "Wnt bone disorder", "disease_type": "disease"})
    top = pred.targets["target_id"].astype(str).tolist()
    got = suggest(diseases, pred, {top[1]: 0}, SuggestConfig(k=4, dial=0.0))
    assert [s.target_id for s in got] == [top[0], top[2], top[3], top[4]]
    assert [s.rank for s in got] == [1, 3, 4, 5]
    assert got[0].reason.startswith("#1 in the ranking: the most likely untested gene")
    assert all(s.reason for s in got)


def test_informative_dial_spreads_over_co_associated_targets(diseases):
    pred = diseases.predict({"name": "Wnt bone disorder", "disease_type": "disease"})
    co = CoAssociation(diseases)
    greedy = suggest(diseases, pred, {}, SuggestConfig(k=4, dial=0.0), coassoc=co)
    spread = suggest(diseases, pred, {}, SuggestConfig(k=4, dial=1.0), coassoc=co)

    def redundancy(batch):
        ids = [s.target_id for s in batch]
        return np.mean([co.overlap(a, b)[0] for i, a in enumerate(ids) for b in ids[i + 1:]])

    assert redundancy(spread) <= redundancy(greedy)
    assert spread[0].target_id == greedy[0].target_id  # the most likely one always first
    if [s.target_id for s in spread] != [s.target_id for s in greedy]:
        assert any("picked over" in s.reason for s in spread)


def test_candidates_restrict_and_plan_table(diseases):
    pred = diseases.predict({"name": "Wnt bone disorder", "disease_type": "disease"})
    ids = pred.targets["target_id"].astype(str).tolist()
    allowed = [ids[50], ids[7], ids[300]]
    got = suggest(diseases, pred, {}, SuggestConfig(k=4, dial=0.0), candidates=allowed)
    assert [s.target_id for s in got] == [ids[7], ids[50], ids[300]]
    plan = plan_table(got, item="X", phase="0", noun="gene")
    assert list(plan.columns) == ["item", "phase", "order", "gene", "gene id", "rank", "score",
                                  "why test it"]
    assert plan["order"].tolist() == [1, 2, 3]


def test_suggest_next_confirm_refine_flow(db, diseases):
    item = _disease(db, diseases)
    state = flows.predict_item(db, diseases, item.id)
    batch = analyst.suggest_next(diseases, state, k=4)
    assert len(batch) == 4
    plan = analyst.suggestion_plan(diseases, state, batch)
    assert plan["gene id"].tolist() == analyst.suggestion_ids(batch)
    decisions = [(batch[0].target_id, 1), (batch[1].target_id, 0)]
    new = flows.confirm_and_refine(db, diseases, item.id, decisions)
    nxt = analyst.suggest_next(diseases, new, k=4)
    assert not {s.target_id for s in nxt} & {t for t, _ in decisions}


def test_movie_suggestions_are_rated_users(db, movies):
    item = items.create(db, movies, items.movie_input(title="Space heist", year=1999,
                                                      genres=["Action"]))
    state = flows.predict_item(db, movies, item.id)
    from app.predictions import rated_targets

    batch = analyst.suggest_next(movies, state, k=3, dial=1.0)
    assert len(batch) == 3 and {s.target_id for s in batch} <= set(rated_targets(movies))
    assert "user" in batch[0].reason


def test_candidate_list_ranked_within_the_catalog(db, diseases):
    item = _disease(db, diseases)
    state = flows.predict_item(db, diseases, item.id)
    t = state.prediction.targets
    a, b = t.iloc[120], t.iloc[3]
    text = f"{a['name']}, NOT_A_GENE\n{b['target_id']}; {a['name']}"
    cands = analyst.read_candidates(diseases, text)
    assert set(cands.target_ids) == {str(a["target_id"]), str(b["target_id"])}
    assert cands.unknown == ("NOT_A_GENE",)
    assert cands.problems("gene") == ["NOT_A_GENE: not a gene of this workspace"]
    table = analyst.candidate_ranking(diseases, state, cands)
    assert table["rank in list"].tolist() == [1, 2]
    assert table["rank"].tolist() == [4, 121]  # catalog ranks kept
    assert table["gene id"].tolist() == [str(b["target_id"]), str(a["target_id"])]
    assert table["why this rank"].iloc[1].startswith(f"#121 of {len(t)}")
    assert float(table["percentile"].iloc[0]) > float(table["percentile"].iloc[1])
    with pytest.raises(ValueError, match="Paste or upload"):
        analyst.read_candidates(diseases, " ,; ")
    up = analyst.read_candidates(diseases, data=b"gene\n" + str(a["name"]).encode() + b"\n")
    assert up.target_ids == (str(a["target_id"]),)
    with pytest.raises(ValueError, match="None of the entries"):
        analyst.candidate_ranking(diseases, state, analyst.CandidateList((), ("x",)))
    assert isinstance(table, pd.DataFrame)


def test_default_dials_are_the_committed_validation_choice():
    """The product's default dial per domain is the one the committed simulated-analyst run
    (``bench/suggest.py``) chose on the old-item validation split, run with the ranker the
    product ships for that dataset."""
    import json
    from pathlib import Path

    from engine.tuned import emerflow_workspace_config

    results = Path(__file__).resolve().parents[1] / "results" / "suggest"
    for dataset, domain in (("disgenet-curated", "disease"), ("movielens-1m-partial", "movie")):
        doc = json.loads((results / f"{dataset}.json").read_text(encoding="utf-8"))
        assert DEFAULT_DIALS[domain] == doc["validation"]["chosen_dial"] == doc["dial"], dataset
        assert doc["ranker"] == emerflow_workspace_config(dataset).ranker, dataset
