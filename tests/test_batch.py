"""Batch ranking (``engine.batch``, ``emerflow rank``): the same table as the dashboard for the
same item (phase 0 and refined, disease and movie), file formats, resuming, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from app import evidence, flows, items, lookup, predictions
from app import features as feats
from engine.batch import BATCH_COLUMNS, BatchItem, rank_items, read_items
from engine.knowledge import Knowledge, KnowledgeSources

FIX = Path(__file__).resolve().parent / "fixtures" / "knowledge"
TOP = 100


@pytest.fixture()
def fix_data(monkeypatch):
    monkeypatch.setenv("EMERFLOW_DATA", str(FIX))
    return Knowledge.load(KnowledgeSources(FIX))


def _dashboard_table(db, ws, item_id: int) -> pd.DataFrame:
    """What the Predictions page shows (and exports) for the item, Top N = 100."""
    state = flows.predict_item(db, ws, item_id)
    table = predictions.ranked_targets(ws, state, top_n=TOP)
    return evidence.with_evidence(
        ws, state, table, phenotypes=evidence.item_phenotypes(feats.current_features(db,
                                                                                    item_id)))


def _create_resolved(db, ws, query: str):
    """The New item page: resolve, pre-fill, create (nothing edited)."""
    res = lookup.resolve_disease(query, ws)
    known = res.known
    data = items.disease_input(
        name=res.record.name, cui=res.record.cui, disease_type=known.get("disease_type", ""),
        mesh_classes=[c for c in known.get("disease_class", "").split("|") if c],
        semantic_type=known.get("semantic_type", ""), synonyms=res.synonyms_text,
        phenotypes=res.phenotype_labels, resolution=res)
    return items.create(db, ws, data)


def _batch_part(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=BATCH_COLUMNS).reset_index(drop=True)


def test_batch_equals_dashboard_for_a_resolved_disease(db, diseases, fix_data):
    item = _create_resolved(db, diseases, "OMIM:154700")
    dash = _dashboard_table(db, diseases, item.id)
    got = rank_items(diseases, ["OMIM:154700"], top=TOP, knowledge=fix_data)
    assert not got.errors
    assert set(got.table["item_id"]) == {"C0024796"}
    assert (got.table["query"] == "OMIM:154700").all()
    pd.testing.assert_frame_equal(_batch_part(got.table), dash.reset_index(drop=True))
    assert dash["phenotype overlap"].str.endswith("HPO terms").all()  # phenotypes were read


def test_batch_equals_dashboard_after_refinement(db, diseases, fix_data):
    item = _create_resolved(db, diseases, "Marfan syndrome")
    s0 = flows.predict_item(db, diseases, item.id)
    top = s0.prediction.targets
    confirm = [str(top.iloc[5]["target_id"]), str(top.iloc[40]["target_id"])]
    reject = str(top.iloc[0]["target_id"])
    flows.confirm_and_refine(db, diseases, item.id, [(confirm[0], 1), (confirm[1], 1),
                                                     (reject, 0)])
    dash = _dashboard_table(db, diseases, item.id)
    symbols = dict(zip(top["target_id"].astype(str), top["name"].astype(str), strict=True))
    spec = BatchItem("Marfan syndrome", confirmed=(symbols[confirm[0]], confirm[1]),
                     rejected=(symbols[reject],))
    got = rank_items(diseases, [spec], top=TOP, knowledge=fix_data)
    assert not got.errors
    part = _batch_part(got.table)
    pd.testing.assert_frame_equal(part, dash.reset_index(drop=True))
    assert list(part["decision"][:2]) == ["confirmed", "confirmed"]


def test_batch_equals_dashboard_for_a_catalogue_movie(db, movies):
    row = movies.dataset.items.iloc[3]
    title = str(row["title"])
    data = items.movie_input(title=title, year=int(row["year"]),
                             genres=str(row["genres"]).split("|"),
                             description=str(row.get("description", "") or ""))
    item = items.create(db, movies, data)
    dash = _dashboard_table(db, movies, item.id)
    got = rank_items(movies, [title.upper()], top=TOP)
    assert not got.errors
    pd.testing.assert_frame_equal(_batch_part(got.table), dash.reset_index(drop=True))
    assert "user" in got.table.columns and "symbol" not in got.table.columns


@pytest.mark.slow
def test_batch_equals_dashboard_with_the_learned_ranker(db, fix_data, encoder, tmp_path):
    """The product's ranker on DisGeNET and MovieLens is the learned one: a batch row equals
    the dashboard's there too, its "why this rank" (LightGBM contributions) included, at
    phase 0 and after a refinement with confirmed and rejected genes."""
    from engine.build import build_dataset_workspace
    from engine.config import WorkspaceConfig

    cfg = WorkspaceConfig(dataset="demo-diseases", ranker="ltr",
                          ltr={"folds": 3, "n_estimators": 20, "candidates": 50,
                               "random_negatives": 50})
    ws = build_dataset_workspace("demo-diseases", config=cfg, encoder=encoder, home=tmp_path)
    assert ws.ranker.kind == "ltr"
    item = _create_resolved(db, ws, "OMIM:154700")
    got = rank_items(ws, ["OMIM:154700"], top=TOP, knowledge=fix_data)
    assert not got.errors
    pd.testing.assert_frame_equal(_batch_part(got.table),
                                  _dashboard_table(db, ws, item.id).reset_index(drop=True))
    top = flows.predict_item(db, ws, item.id).prediction.targets
    yes, no = str(top.iloc[7]["target_id"]), str(top.iloc[0]["target_id"])
    flows.confirm_and_refine(db, ws, item.id, [(yes, 1), (no, 0)])
    got = rank_items(ws, [BatchItem("OMIM:154700", confirmed=(yes,), rejected=(no,))],
                     top=TOP, knowledge=fix_data)
    assert not got.errors
    part = _batch_part(got.table)
    pd.testing.assert_frame_equal(part, _dashboard_table(db, ws, item.id).reset_index(drop=True))
    assert part["decision"].iloc[0] == "confirmed" and part["why this rank"].str.len().min() > 10


def test_unknown_items_and_targets_are_listed_not_fatal(diseases, fix_data):
    got = rank_items(diseases, ["no such disease xyz", BatchItem("OMIM:154700",
                                                                 confirmed=("NOTAGENE9",)),
                               "C0024796"], top=5, knowledge=fix_data)
    assert set(got.errors) == {"no such disease xyz", "OMIM:154700"}
    assert "NOTAGENE9" in got.errors["OMIM:154700"]
    assert len(got.table) == 5 and set(got.table["item_id"]) == {"C0024796"}
    with pytest.raises(ValueError, match="top must be"):
        rank_items(diseases, ["C0024796"], top=0)


def test_formats_resume_and_links_survive_pandas(diseases, fix_data, tmp_path):
    queries = ["OMIM:154700", "C0002395", "Maple Syrup Urine Disease"]
    full = rank_items(diseases, queries, top=20, knowledge=fix_data).table
    calls = []

    def stop_after_one(done, total):
        calls.append(done)
        if done == 1:
            raise KeyboardInterrupt

    out = tmp_path / "ranked.tsv"
    with pytest.raises(KeyboardInterrupt):
        rank_items(diseases, queries, top=20, knowledge=fix_data, out=out,
                   progress=stop_after_one)
    assert not out.exists() and (tmp_path / "ranked.tsv.partial.jsonl").is_file()
    again = rank_items(diseases, queries, top=20, knowledge=fix_data, out=out)
    assert again.resumed == 1 and not (tmp_path / "ranked.tsv.partial.jsonl").exists()
    back = pd.read_csv(out, sep="\t", dtype={"gene id": str}, keep_default_na=False)
    assert len(back) == len(full) == 60
    for col in ("NCBI Gene", "HGNC", "OMIM gene", "Ensembl"):
        assert list(back[col]) == list(full[col])
    assert list(back["symbol"]) == list(full["symbol"])
    assert list(back["why this rank"]) == list(full["why this rank"])
    csv = tmp_path / "ranked.csv"
    rank_items(diseases, queries, top=20, knowledge=fix_data, out=csv)
    assert pd.read_csv(csv, dtype={"gene id": str}).shape == full.shape
    js = tmp_path / "ranked.json"
    rank_items(diseases, queries, top=20, knowledge=fix_data, out=js)
    doc = json.loads(js.read_text())
    assert doc["stamp"]["workspace"] == diseases.name and len(doc["rows"]) == 60
    with pytest.raises(ValueError, match="unknown output type"):
        rank_items(diseases, queries, out=tmp_path / "x.xlsx")


def test_read_items_formats(tmp_path):
    (tmp_path / "a.txt").write_text("Marfan syndrome\n\n# comment\nC0002395\n")
    assert [i.query for i in read_items(tmp_path / "a.txt")] == ["Marfan syndrome", "C0002395"]
    (tmp_path / "b.tsv").write_text("item\tconfirmed\trejected\nOMIM:154700\tFBN1; TGFBR2\t\n"
                                    "Alzheimer's disease\t\tAPP\n")
    b = read_items(tmp_path / "b.tsv")
    assert b[0].confirmed == ("FBN1", "TGFBR2") and b[1].rejected == ("APP",)
    (tmp_path / "c.json").write_text(json.dumps(["X", {"item": "Y", "confirmed": ["G1"]}]))
    c = read_items(tmp_path / "c.json")
    assert c[1] == BatchItem("Y", confirmed=("G1",))
    with pytest.raises(ValueError, match="no items"):
        (tmp_path / "d.txt").write_text("\n")
        read_items(tmp_path / "d.txt")
    with pytest.raises(ValueError, match="BatchItem.query"):
        BatchItem("  ")


def test_cli_rank_on_the_demo_catalogue(demo_env, diseases, tmp_path, monkeypatch, capsys):
    from engine.cli import main

    monkeypatch.delenv("EMERFLOW_DATA", raising=False)
    names = diseases.dataset.items["name"].astype(str).tolist()[:3]
    src = tmp_path / "items.txt"
    src.write_text("\n".join([*names, "nothing like this"]) + "\n")
    out = tmp_path / "out.tsv"
    rc = main(["rank", "--workspace", diseases.name, "--items", str(src), "--top", "7",
               "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "ranked 3 of 4 items" in captured.out and "nothing like this" in captured.err
    back = pd.read_csv(out, sep="\t")
    assert len(back) == 21 and list(back["item"].unique()) == names
