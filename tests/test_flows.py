"""The analyst loop as plain Python: new item -> predict -> confirm -> refine -> Phase I."""

from __future__ import annotations

import numpy as np
import pytest

from app import flows
from db import repository as repo
from engine.ranking import Decisions


def test_disease_loop_refines_and_moves_confirmed_genes_up(db, diseases):
    item = flows.new_item(
        db,
        diseases,
        name="Novel skeletal dysplasia",
        features={
            "disease_type": "disease",
            "disease_class": "Musculoskeletal Diseases",
            "semantic_type": "Disease or Syndrome",
            "description": "A disorder of Wnt signaling affecting bone density.",
        },
    )
    s0 = flows.predict_item(db, diseases, item.id)
    assert s0.phase == 0 and len(s0.prediction.targets) == len(diseases.dataset.targets)
    assert "Description: A disorder of Wnt signaling" in s0.prediction.text
    assert len(s0.prediction.neighbours) == 5
    # confirm three genes from outside the top 10; their ranks must improve
    chosen = s0.prediction.targets.iloc[[30, 60, 90]]["target_id"].tolist()
    before = s0.prediction.targets.set_index("target_id")["rank"].loc[chosen]
    s1 = flows.confirm_and_refine(db, diseases, item.id, [(t, 1) for t in chosen])
    after = s1.prediction.targets.set_index("target_id")["rank"].loc[chosen]
    assert s1.phase == 1
    assert (after != before).any(), "refinement left the ranking unchanged"
    # the refined embedding separates the confirmed genes from the item's sampled negatives
    raw = {**item.raw_features}
    negs = s0.prediction.targets["target_id"].iloc[[500, 700, 900]].tolist()
    pos_rows = diseases.target_pos.loc[chosen].to_numpy()
    neg_rows = diseases.target_pos.loc[negs].to_numpy()
    _, vec = diseases.encode(raw)
    sc0 = diseases.ranker.channels(vec, s0.prediction.embedding, Decisions())["model"]
    sc1 = diseases.ranker.channels(vec, s1.prediction.embedding, Decisions())["model"]
    gap0 = sc0[pos_rows].mean() - sc0[neg_rows].mean()
    gap1 = sc1[pos_rows].mean() - sc1[neg_rows].mean()
    assert gap1 > gap0
    assert repo.current_phase(db, item.id) == 1
    assert {e.phase for e in repo.embeddings(db, item.id)} == {0, 1}
    assert [s.phase for s in repo.snapshots(db, item.id)] == [0, 1]
    # re-opening the item shows Phase I with the stored embedding
    again = flows.predict_item(db, diseases, item.id)
    assert again.phase == 1
    np.testing.assert_allclose(again.prediction.embedding, s1.prediction.embedding, rtol=1e-6)


def test_movie_loop_and_errors(db, movies):
    with pytest.raises(ValueError, match="Name is required"):
        flows.new_item(db, movies, name="  ", features={})
    item = flows.new_item(
        db,
        movies,
        name="Galaxy Orbit 9000",
        features={
            "title": "Galaxy Orbit 9000",
            "year": 1999,
            "genres": "Sci-Fi|Adventure",
            "description": "A film about a starship crew stranded beyond the galaxy.",
        },
    )
    with pytest.raises(flows.DuplicateItemError):
        flows.new_item(db, movies, name="galaxy orbit 9000", features={})
    s0 = flows.predict_item(db, movies, item.id)
    with pytest.raises(ValueError, match="at least one"):
        flows.confirm_and_refine(db, movies, item.id, [])
    users = s0.prediction.targets["target_id"].iloc[:3].tolist()
    s1 = flows.confirm_and_refine(db, movies, item.id, [(users[0], 1), (users[1], 0)])
    assert s1.decisions == {users[0]: 1, users[1]: 0}
    assert s1.phase == 1


def test_save_features_reembeds_phase0_in_the_same_transaction(db, diseases, monkeypatch):
    """A saved feature version and its phase-0 re-embedding land together or not at all."""
    item = flows.new_item(db, diseases, name="Atomic feature save",
                          features={"description": "A disorder of bone density."})
    s0 = flows.predict_item(db, diseases, item.id)
    rows = [dict(f) for f in flows.latest_feature_version(db, item.id).features]
    rows.append({"name": "mechanism", "descriptor": "Mechanism", "value": "Wnt signaling",
                 "source": "analyst", "keep": True})
    assert flows.save_features(db, diseases, item.id, rows, analyst="ana").version == 2
    assert [e.feature_version for e in repo.embeddings(db, item.id)] == [2]
    s0b = flows.predict_item(db, diseases, item.id)
    assert s0b.feature_version == 2 and "Wnt signaling" in s0b.prediction.text
    assert not np.allclose(s0b.prediction.embedding, s0.prediction.embedding)
    # without re-embedding (an LLM fill): the version is stored, the embedding stays
    assert flows.save_features(db, diseases, item.id, rows[:-1], reembed=False).version == 3
    assert [e.feature_version for e in repo.embeddings(db, item.id)] == [2]

    def encoder_down(*args, **kwargs):
        raise RuntimeError("encoder down")

    monkeypatch.setattr(diseases, "predict", encoder_down)
    with pytest.raises(RuntimeError, match="encoder down"):
        flows.save_features(db, diseases, item.id, rows, analyst="ana")
    monkeypatch.undo()
    assert flows.latest_feature_version(db, item.id).version == 3  # nothing of it was stored
    assert [e.feature_version for e in repo.embeddings(db, item.id)] == [2]
