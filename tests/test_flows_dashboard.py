"""The dashboard's plain-Python modules (no streamlit): forms, features, predictions, history,
exports, uploads, LLM settings and cache, benchmark results."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from app import exports, features, flows, history, items, predictions
from app.benchmark import load_results, wide_table
from app.llm import LLMChoice, default_provider, resolve_settings, settings_summary
from app.llm import test_connection as llm_test_connection
from app.llm_cache import DBResponseCache
from app.uploads import parse_interactions_csv
from db import repository as repo
from db.database import init_db, make_engine
from engine.augment import (
    PROMPT_VERSION,
    AugmentationError,
    CacheRecord,
    LLMProvider,
    NoneProvider,
)
from engine.settings import get_settings


class FakeLLM(LLMProvider):
    """Answers every fill prompt with fixed values; counts calls."""

    name = "fake"
    model = "fake-1"

    def __init__(self, values: dict[str, str]):
        self.values = values
        self.calls = 0

    def complete_json(self, system: str, user: str) -> str:
        self.calls += 1
        if "designing features" in system:
            return json.dumps({"features": [{"name": "mechanism", "descriptor": "Mechanism",
                                             "why": "drives genes"}]})
        return json.dumps(self.values)




def _disease(db, ws, name="Wnt bone disorder X"):
    data = items.disease_input(name=name, cui="c0000001", disease_type="disease",
                               mesh_classes=["Musculoskeletal Diseases"],
                               description="A disorder of Wnt signaling affecting bone density.",
                               synonyms="WBDX; bone Wnt disease", analyst="ana")
    return items.create(db, ws, data, analyst="ana")


def test_forms_validate():
    assert items.validate_cui(" c0002395") == "C0002395"
    assert items.validate_cui("") is None
    with pytest.raises(ValueError, match="7 digits"):
        items.validate_cui("C12")
    with pytest.raises(ValueError, match="required"):
        items.disease_input(name=" ")
    with pytest.raises(ValueError, match="required"):
        items.movie_input(title="")
    with pytest.raises(ValueError, match="between"):
        items.movie_input(title="x", year=1200)
    with pytest.raises(ValueError, match="Unknown genre"):
        items.movie_input(title="x", genres=["Space Opera"])
    m = items.movie_input(title="Heat", year=1995.0, genres=["Thriller", "Action"])
    assert m.features["genres"] == "Action|Thriller" and m.features["year"] == 1995


def test_item_features_review_and_augmentation(db, diseases):
    item = _disease(db, diseases)
    assert item.external_id == "C0000001"
    with pytest.raises(flows.DuplicateItemError):
        _disease(db, diseases, name="WNT bone-disorder x")
    fv1 = repo.latest_feature_version(db, item.id)
    syn = next(f for f in fv1.features if f["name"] == "synonyms")
    assert syn["source"] == "analyst" and "WBDX" in syn["value"]
    assert "Synonyms: WBDX" in features.serialized_text(db, diseases, item.id)

    # provider none: nothing to fill, a readable refusal
    with pytest.raises(ValueError, match="none"):
        features.augment_item(db, diseases, item.id, NoneProvider(),
                              [{"name": "mechanism", "descriptor": "Mechanism"}],
                              DBResponseCache(db))
    # a (fake) LLM fills values; the DB cache answers the second time
    llm = FakeLLM({"mechanism": "loss of LRP5 function", "inheritance": "unknown"})
    feats = [{"name": "mechanism", "descriptor": "Mechanism"},
             {"name": "inheritance", "descriptor": "Inheritance"}]
    cache = DBResponseCache(db)
    fv2 = features.augment_item(db, diseases, item.id, llm, feats, cache, analyst="ana")
    mech = next(f for f in fv2.features if f["name"] == "mechanism")
    assert mech["source"] == "llm" and mech["model"] == "fake-1" and mech["prompt_version"]
    inh = next(f for f in fv2.features if f["name"] == "inheritance")
    assert inh["value"] == "" and inh["keep"] is False
    calls = llm.calls
    features.augment_item(db, diseases, item.id, llm, feats, cache, analyst="ana")
    assert llm.calls == calls, "second augmentation should come from the DB cache"

    # the analyst edits the LLM value: new version, source analyst, LLM original kept
    s0 = flows.predict_item(db, diseases, item.id)
    table = features.review_frame(repo.latest_feature_version(db, item.id).features)
    assert list(table.columns) == features.REVIEW_COLUMNS
    table.loc[table["name"] == "mechanism", "value"] = "gain of SOST function"
    table.loc[len(table)] = {"name": "", "descriptor": "Onset", "value": "childhood",
                             "source": "", "llm original": "", "keep": True}
    fv = features.save_review(db, diseases, item.id, table, analyst="bob")
    mech = next(f for f in fv.features if f["name"] == "mechanism")
    assert mech["source"] == "analyst" and mech["analyst"] == "bob"
    assert mech["llm_value"] == "loss of LRP5 function" and mech["edited_at"]
    assert any(f["name"] == "onset" for f in fv.features)
    assert features.save_review(db, diseases, item.id,
                                features.review_frame(fv.features), analyst="bob") is None
    s1 = flows.predict_item(db, diseases, item.id)
    assert "Mechanism: gain of SOST function" in s1.prediction.text
    assert not np.allclose(s0.prediction.embedding, s1.prediction.embedding)
    assert s1.feature_version == fv.version
    # untick keep: left out of the text
    t2 = features.review_frame(fv.features)
    t2.loc[t2["name"] == "onset", "keep"] = False
    features.save_review(db, diseases, item.id, t2, analyst="bob")
    assert "Onset" not in features.serialized_text(db, diseases, item.id)
    bad = features.review_frame(fv.features)
    bad.loc[len(bad)] = {"name": "", "descriptor": "", "value": "orphan", "source": "",
                         "llm original": "", "keep": True}
    with pytest.raises(ValueError, match="descriptor"):
        features.apply_review(fv.features, bad, analyst="bob")
    with pytest.raises(ValueError, match="value"):
        features.set_feature(db, diseases, item.id, descriptor="Onset", value=" ",
                             analyst="bob")
    assert features.set_feature(db, diseases, item.id, descriptor="Tissue", value="bone",
                                analyst="bob") is not None
    assert len(features.version_history(db, item.id)) == repo.latest_feature_version(
        db, item.id).version


def test_suggested_feature_list_is_stored_and_editable(db, diseases):
    assert features.load_suggested(db, "disease") == []
    got = features.suggest_for_domain(db, FakeLLM({}), diseases, DBResponseCache(db),
                                      analyst="ana")
    assert [f["name"] for f in got] == ["mechanism"]
    stored = repo.get_domain_features(db, "disease")
    assert stored is not None and stored.updated_by == "ana"
    assert stored.provenance == {**FakeLLM({}).describe(), "prompt_version": PROMPT_VERSION}
    saved = features.save_suggested(db, "disease",
                                    [*got, {"name": "", "descriptor": "Age of onset"}],
                                    updated_by="bob")
    assert [f["name"] for f in saved] == ["mechanism", "age_of_onset"]
    assert features.load_suggested(db, "disease") == saved
    assert repo.get_domain_features(db, "disease").updated_by == "bob"
    assert features.load_suggested(db, "movie") == []  # one list per domain
    with pytest.raises(ValueError, match="duplicate"):
        features.save_suggested(db, "disease", [{"name": "a"}, {"name": "A"}])
    with pytest.raises(ValueError, match="credential"):
        features.save_suggested(db, "disease", saved, provenance={"api_key": "x"})
    assert features.load_suggested(db, "disease") == saved  # refusals wrote nothing
    assert features.suggest_for_domain(db, NoneProvider(), diseases, None) == saved


def test_predictions_history_exports(db, diseases):
    item = _disease(db, diseases, "Another Wnt disorder")
    s0 = flows.predict_item(db, diseases, item.id)
    t = predictions.ranked_targets(diseases, s0, top_n=10)
    assert list(t.columns) == ["rank", "symbol", "gene id", "NCBI Gene", "HGNC",
                               "protein class", "score", "percentile", "lift over popularity",
                               "decision"]
    assert t["percentile"].is_monotonic_decreasing and (t["lift over popularity"] > 0).all()
    assert t["NCBI Gene"][0] == f"https://www.ncbi.nlm.nih.gov/gene/{t['gene id'][0]}"
    cls = predictions.target_classes(diseases)[0]
    tc = predictions.ranked_targets(diseases, s0, top_n=500, classes=[cls], min_score=0.01)
    assert tc["protein class"].str.contains(cls).all() and (tc["score"] >= 0.01).all()
    chosen = s0.prediction.targets["target_id"].iloc[[40, 80, 120]].tolist()
    s1 = flows.confirm_and_refine(db, diseases, item.id, [(c, 1) for c in chosen])
    assert set(predictions.ranked_targets(diseases, s1, top_n=5000)
               .query("decision == 'confirmed'")["gene id"]) == set(chosen)
    h = history.rank_history(db, diseases, item.id)
    assert len(h) == 6 and set(h["phase"]) == {0, 1}
    r0 = h[h["phase"] == 0].set_index("target_id")["rank"]
    r1 = h[h["phase"] == 1].set_index("target_id")["rank"]
    assert (r0.loc[chosen] != r1.loc[chosen]).any()
    # the rescored phase-0 ranks equal the live Phase-0 ranking
    assert r0.loc[chosen].tolist() == s0.prediction.targets.set_index("target_id")["rank"].loc[
        chosen].tolist()
    d = history.drift(db, item.id)
    assert d["cosine_to_phase0"].iloc[0] == pytest.approx(1.0)
    assert d["l2_to_phase0"].iloc[1] > 0
    past = history.ranking_at_phase(db, diseases, item.id, 0)
    np.testing.assert_allclose(past.embedding, s0.prediction.embedding, rtol=1e-6)
    with pytest.raises(ValueError, match="Phase II"):
        history.ranking_at_phase(db, diseases, item.id, 2)
    assert set(history.snapshot_table(db, item.id)["phase"]) == {"0", "I"}
    assert len(history.decision_log(db, item.id)) == 3
    nb = predictions.neighbour_table(s1)
    assert {"similarity", "best-known targets"} <= set(nb.columns) and len(nb) == 5

    meta = exports.stamp(diseases, s1)
    assert meta["phase"] == "I" and meta["model_version"] == diseases.model_version
    for fmt in exports.FORMATS:
        data, fname, mime = exports.export_bytes(t, fmt, meta)
        assert "phase-I" in fname and data
    csv, _, _ = exports.export_bytes(t, "CSV", meta)
    back = pd.read_csv(__import__("io").BytesIO(csv), comment="#", dtype={"gene id": str})
    assert back["gene id"].tolist() == t["gene id"].tolist()
    assert b"# model_version: " in csv and b"# feature_version: " in csv
    doc = json.loads(exports.export_bytes(t, "JSON", meta)[0])
    assert doc["stamp"]["workspace"] == "demo-diseases" and len(doc["rows"]) == len(t)
    with pytest.raises(ValueError):
        exports.export_bytes(t, "XLSX", meta)


def test_movie_appeal_by_group(db, movies):
    data = items.movie_input(title="Orbit Star 1", year=1999, genres=["Sci-Fi"],
                             description="A starship crew stranded beyond the galaxy.")
    item = items.create(db, movies, data)
    s0 = flows.predict_item(db, movies, item.id)
    a = predictions.appeal_by_group(movies, s0)
    assert set(a["attribute"]) == {"age", "gender", "occupation"}
    assert a.groupby("attribute")["users"].sum().eq(len(movies.dataset.targets)).all()
    t = predictions.ranked_targets(movies, s0, top_n=7)
    assert list(t.columns) == ["rank", "user", "gender", "age", "occupation", "score",
                               "percentile", "lift over popularity", "decision"] and len(t) == 7
    table = items.items_table(db, "demo-movies")
    assert table["name"].tolist() == ["Orbit Star 1"] and table["phase"].tolist() == ["0"]


def test_upload_validation():
    known = {"1", "2", "3"}
    ok = parse_interactions_csv(b"target_id,label,note\n1,1,seen in clinic\n2,0,\n\n", known)
    assert ok.ok and ok.decisions == [("1", 1, "seen in clinic"), ("2", 0, None)]
    tsv = parse_interactions_csv(b"target_id\tlabel\n3\tyes\n", known)
    assert tsv.decisions == [("3", 1, None)]
    bad = parse_interactions_csv(
        b"target_id,label\n1,1\n9,1\n2,maybe\n,1\n1,0\n3,1,extra\n", known)
    assert bad.errors == [
        "Line 3: unknown target_id '9' (not in this workspace)",
        "Line 4: label must be 1 or 0 (confirmed/rejected), got 'maybe'",
        "Line 5: target_id is empty",
        "Line 6: target_id '1' contradicts line 2",
        "Line 7: expected 2 fields, got 3",
    ]
    assert "missing: label" in parse_interactions_csv(b"target_id,score\n1,1\n", known).errors[0]
    assert "UTF-8" in parse_interactions_csv(b"\xff\xfe\x00", known).errors[0]
    assert "empty" in parse_interactions_csv(b"", known).errors[0]
    assert "no rows" in parse_interactions_csv(b"target_id,label\n", known).errors[0]


def test_llm_settings_never_expose_the_key():
    env = {"OPENAI_API_KEY": "sk-test-abcdefghijklmnopqrstuvwxyz123456"}
    assert default_provider(env={}) == "none"
    assert default_provider(env=env) == "none"  # one default everywhere: set the provider
    env["EMERFLOW_LLM_PROVIDER"] = "openai"
    assert default_provider(env=env) == "openai"
    s = resolve_settings(env=env)
    summary = settings_summary(s)
    assert summary["API key"] == "set" and "sk-" not in json.dumps(summary)
    s2 = resolve_settings(LLMChoice(provider="openai", base_url="http://127.0.0.1:9/v1",
                                    model="m"), env={"EMERFLOW_LLM_MAX_RETRIES": "0",
                                                     "EMERFLOW_LLM_TIMEOUT": "2"})
    assert s2.base_url == "http://127.0.0.1:9/v1" and s2.model == "m"
    with pytest.raises(AugmentationError, match="could not connect"):
        llm_test_connection(s2)
    with pytest.raises(AugmentationError, match="OPENAI_API_KEY is not set"):
        llm_test_connection(resolve_settings(LLMChoice(provider="openai"), env={}))
    assert "none" in llm_test_connection(resolve_settings(env={}))
    with pytest.raises(ValueError, match="EMERFLOW_LLM_TIMEOUT"):
        resolve_settings(env={"EMERFLOW_LLM_TIMEOUT": "soon"})


def test_db_cache_roundtrip_and_refusal(emerflow_home):
    db = make_engine(get_settings().database_url_resolved())
    init_db(db)
    cache = DBResponseCache(db)
    rec = CacheRecord(value='{"a": "b"}', task="fill_values", provider="openai", model="m",
                      prompt_version="v1")
    assert cache.get("k" * 64) is None
    cache.put("k" * 64, rec)
    cache.put("k" * 64, rec)
    assert cache.get("k" * 64) == '{"a": "b"}'
    secret = CacheRecord(value='{"k": "sk-abcdefghijklmnopqrstuvwxyz0123"}', task="t",
                         provider="openai", model="m", prompt_version="v1")
    cache.put("s" * 64, secret)
    assert cache.get("s" * 64) is None and cache.refused == 1


def test_benchmark_results(tmp_path):
    assert load_results(tmp_path).empty
    (tmp_path / "demo-movies").mkdir()
    per = {"mean": 0.7, "std": 0.01, "per_seed": [0.69, 0.71]}
    doc = {"dataset": "demo-movies", "method": "emerflow", "seeds": [0, 1],
           "phases": {p: {"auc": per, "f1": per, "item_auc": per} for p in ("0", "I", "II",
                                                                              "III")},
           "config": {}, "machine": {"cpu": "x"}, "created_at": "2025-01-01T00:00:00"}
    (tmp_path / "demo-movies" / "emerflow.json").write_text(json.dumps(doc))
    (tmp_path / "demo-movies" / "broken.json").write_text("{")
    res = load_results(tmp_path)
    assert len(res.table) == 12 and len(res.runs) == 1 and len(res.problems) == 1
    assert res.runs[0]["status"] == "ok"
    w = wide_table(res.table, "demo-movies", "auc")
    assert list(w.columns) == ["method", "Phase-0", "Phase-I", "Phase-II", "Phase-III"]
    assert w.iloc[0]["Phase-I"] == "0.7000 ± 0.0100"


def test_the_rerun_after_a_refinement_reuses_its_ranking(db, diseases):
    """The Feedback page's rerun takes the refinement's own ranking when the item is still
    there (no second catalog scoring) and recomputes when someone moved it on."""
    item = flows.new_item(db, diseases, name="Reuse check disease",
                          features={"description": "A disorder of Wnt signaling."})
    s0 = flows.predict_item(db, diseases, item.id)
    genes = s0.prediction.targets["target_id"].astype(str).head(2).tolist()
    s1 = flows.confirm_and_refine(db, diseases, item.id, [(genes[0], 1)])
    assert flows.reuse_or_predict(db, diseases, item.id, s1) is s1
    s2 = flows.confirm_and_refine(db, diseases, item.id, [(genes[1], 1)])  # moved on
    again = flows.reuse_or_predict(db, diseases, item.id, s1)
    assert again is not s1 and again.phase == s2.phase == 2
    assert flows.reuse_or_predict(db, diseases, item.id, None).phase == 2


def test_movie_appeal_against_each_groups_usual(db, movies):
    """The appeal bars subtract each group's usual mean percentile over established movies
    (computed from old items only), so two different movies order the groups differently."""
    usual = predictions.usual_appeal(movies)
    assert usual is predictions.usual_appeal(movies)  # cached per workspace model
    n_old = len(movies.split.old_items)
    assert usual["items"].eq(min(n_old, predictions.APPEAL_SAMPLE)).all()
    assert set(usual["attribute"]) == {"age", "gender", "occupation"}
    assert usual["usual"].between(0, 100).all()
    orders = []
    for title, genres, desc in (
            ("Orbit Star 9", ["Sci-Fi", "Thriller"], "A starship crew hunted beyond the galaxy."),
            ("Puppy Parade 2", ["Children's", "Animation"], "Cartoon puppies sing at a fair.")):
        item = items.create(db, movies, items.movie_input(title=title, year=1998,
                                                          genres=genres, description=desc))
        a = predictions.appeal_by_group(movies, flows.predict_item(db, movies, item.id))
        assert list(a.columns) == ["attribute", "group", "appeal", "usual", "vs usual", "users"]
        assert a["usual"].notna().all()
        assert np.allclose(a["vs usual"], a["appeal"] - a["usual"])
        merged = a.merge(usual, on=["attribute", "group"], suffixes=("", "_ws"))
        assert np.allclose(merged["usual"], merged["usual_ws"]) and len(merged) == len(a)
        orders.append({att: g.sort_values("vs usual")["group"].tolist()
                       for att, g in a.groupby("attribute")})
    assert orders[0] != orders[1]
