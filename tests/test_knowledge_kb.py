"""``emerflow-kb``'s text: raw features + curated knowledge, no interaction data."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.baselines.base import MethodNotAvailable
from engine.baselines.embedding import EmerFlow
from engine.baselines.kb import KB_VARIANT, EmerFlowKB, kb_texts

FIX = Path(__file__).resolve().parent / "fixtures" / "knowledge"


def test_kb_texts_raw_plus_curated(fixtures_dir):
    from engine.data.registry import DATASETS
    from engine.training_data import item_texts

    ds = DATASETS["disgenet-curated"].load(fixtures_dir / "disgenet")
    texts = kb_texts(ds, FIX)
    raw = item_texts(ds)
    pos = {i: k for k, i in enumerate(ds.items["item_id"])}
    alz = texts[pos["C0002395"]]
    assert alz.startswith(raw[pos["C0002395"]])
    assert "Phenotypes (HPO):" in alz and "Synonyms:" in alz
    assert "OMIM" not in alz.split(raw[pos["C0002395"]])[1]  # ids stay out of the text
    assert texts[pos["C0019209"]].startswith(raw[pos["C0019209"]])
    # the interactions play no part: the same text with every association dropped
    empty = type(ds)(**{**ds.__dict__, "interactions": ds.interactions.iloc[:0]})
    assert kb_texts(empty, FIX) == texts


def test_kb_needs_knowledge(fixtures_dir, tmp_path, movies):
    from engine.data.registry import DATASETS

    ds = DATASETS["disgenet-curated"].load(fixtures_dir / "disgenet")
    with pytest.raises(MethodNotAvailable, match="EMERFLOW_DATA"):
        kb_texts(ds, tmp_path)
    with pytest.raises(MethodNotAvailable):
        kb_texts(movies.dataset, FIX)


def test_method_is_emerflow_with_the_kb_variant():
    assert issubclass(EmerFlowKB, EmerFlow) and EmerFlowKB.name == "emerflow-kb"
    assert EmerFlowKB.text_variant == KB_VARIANT and not EmerFlowKB.uses_llm
    assert EmerFlowKB.defaults == EmerFlow.defaults and EmerFlowKB.grid == EmerFlow.grid


def test_phenotype_subset_of_a_result_document():
    from engine.baselines.kb import phenotype_subset

    doc = {"per_item": {"items": ["C0002395", "C0019209", "C0036341"],
                        "ndcg@100": {"0": [0.5, 0.1, None]},
                        "recall@100": {"0": [1.0, 0.0, 0.5]}}}
    out = phenotype_subset(doc, FIX)
    assert out["n_items"] == 3 and out["n_with_phenotypes"] == 2
    assert out["phases"]["0"]["recall@100"] == pytest.approx(0.75)
    assert out["phases"]["0"]["ndcg@100"] == pytest.approx(0.5)
    assert out["phases"]["0"]["recall@100 without phenotypes"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="per_item"):
        phenotype_subset({}, FIX)
