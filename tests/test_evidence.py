"""app.evidence on the demo disease workspace: nearest diseases with the gene, co-association
with confirmed genes, phenotype overlap, why-this-rank, links, best-known targets, exports."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from app import evidence, exports, flows
from app import predictions as preds
from engine.schema import ITEM_ID, LABEL, TARGET_ID

KNOWLEDGE = Path(__file__).resolve().parent / "fixtures" / "knowledge"


def test_order_year():
    assert evidence.order_year(2005) == 2005
    assert evidence.order_year(2012 * 10**10 + 348) == 2012
    assert evidence.order_year(9999 * 10**10 + 348) is None
    assert evidence.order_year("x") is None


@pytest.fixture()
def state(db, diseases, monkeypatch):
    monkeypatch.setenv("EMERFLOW_DATA", str(KNOWLEDGE))
    item = flows.new_item(db, diseases, name="Evidence disease",
                          features={"disease_type": "disease", "description": "bone density"})
    return flows.predict_item(db, diseases, item.id)


def test_evidence_columns_and_neighbours(diseases, state):
    table = preds.ranked_targets(diseases, state, top_n=25)
    out = evidence.with_evidence(diseases, state, table, phenotypes=["HP:0000347"])
    assert list(out["gene id"]) == list(table["gene id"])
    for col in [*evidence.EVIDENCE_COLUMNS, *evidence.LINK_COLUMNS]:
        assert col in out.columns
    assert out["why this rank"].str.startswith("#1 of").iloc[0]
    assert out["NCBI Gene"].str.startswith("https://www.ncbi.nlm.nih.gov/gene/").all()
    assert (out["phenotype overlap"] == "0 of 1 HPO terms").all()
    assert (out["co-association with confirmed"] == "no gene confirmed yet").all()
    idx = evidence.association_index(diseases)
    near = diseases.neighbours(state.prediction.embedding, 50)
    g = str(out["gene id"].iloc[0])
    first = next((n for n in near[ITEM_ID] if g in idx.genes_of.get(n, ())), None)
    cell = out["nearest diseases with the gene"].iloc[0]
    if first is not None:
        assert cell.startswith(idx.names[first])
    assert out["old diseases with the gene"].iloc[0] == len(idx.diseases_of.get(g, ()))
    # every export carries the evidence
    data, _, _ = exports.export_bytes(out, "CSV", {"workspace": diseases.name})
    back = pd.read_csv(pd.io.common.StringIO(data.decode()), comment="#")
    assert "why this rank" in back.columns


def test_co_association_counts_old_diseases(db, diseases, state):
    idx = evidence.association_index(diseases)
    ranked = state.prediction.targets[TARGET_ID].astype(str).tolist()
    confirmed = ranked[:2]
    after = flows.confirm_and_refine(db, diseases, state.item.id,
                                     [(t, 1) for t in confirmed])
    g = ranked[5]
    ev = evidence.evidence_table(diseases, after, [g])
    want = idx.diseases_of.get(g, set()) & (idx.diseases_of.get(confirmed[0], set())
                                           | idx.diseases_of.get(confirmed[1], set()))
    cell = ev.loc[g, "co-association with confirmed"]
    if want:
        assert cell.startswith(f"{len(want)} old disease(s) with ")
    else:
        assert cell == "none"


def test_best_known_targets_are_highest_scoring(diseases):
    train = diseases.split.train
    pos = train[train[LABEL] == 1]
    d = str(pos[ITEM_ID].iloc[0])
    genes = pos[pos[ITEM_ID] == d][TARGET_ID].astype(str).tolist()
    scores = {(d, g): 0.1 * k for k, g in enumerate(genes)}
    idx = evidence.AssociationIndex.build(diseases, scores)
    best = idx.best_known(d, 2)
    assert best == [idx.symbols[genes[-1]], idx.symbols[genes[-2]]]
    no_scores = evidence.AssociationIndex.build(diseases)
    years = sorted(genes, key=lambda g: (no_scores.year.get((d, g), 9999), g))
    assert no_scores.best_known(d, 1) == [no_scores.symbols[years[0]]]


def test_gda_scores_from_the_data_root(monkeypatch):
    monkeypatch.setenv("EMERFLOW_DATA", str(KNOWLEDGE))
    assert evidence.gda_scores()[("C0002395", "348")] == pytest.approx(0.3)
    monkeypatch.delenv("EMERFLOW_DATA")
    assert evidence.gda_scores() == {}


def test_item_phenotypes():
    feats = [{"name": "phenotype_ids", "value": "HP:0000347|HP:0000565"}]
    assert evidence.item_phenotypes(feats) == ["HP:0000347", "HP:0000565"]
    assert evidence.item_phenotypes([]) == []


def test_movie_ranking_only_users_with_ratings(db, movies):
    item = flows.new_item(db, movies, name="Rated users movie",
                          features={"genres": "Drama", "year": 1999})
    state = flows.predict_item(db, movies, item.id)
    table = preds.ranked_targets(movies, state, top_n=10_000)
    rated = preds.rated_targets(movies)
    assert set(table["user"]) <= rated and len(table) == len(
        set(state.prediction.targets[TARGET_ID].astype(str)) & rated)
    assert list(table["rank"]) == list(range(1, len(table) + 1))


def test_loading_a_workspace_warms_the_evidence_caches(diseases):
    """The association index and gene resolver (seconds of file reading on the real data) are
    built in the background when the workspace loads, not on the first Predictions view."""
    from app import evidence, lookup
    from app.state import warm_evidence

    evidence._INDEX.clear()
    lookup._RESOLVERS.clear()
    warm_evidence(diseases).join(timeout=120)
    assert any(k[0] == diseases.name for k in evidence._INDEX)
    assert any(k[0] == diseases.name for k in lookup._RESOLVERS)
    before = dict(evidence._INDEX)
    evidence.association_index(diseases)  # the page's call: served from the cache
    assert evidence._INDEX == before
