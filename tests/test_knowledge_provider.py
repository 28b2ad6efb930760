"""The ``knowledge`` augmentation provider and the benchmark's curated text, on fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.augment import LLMSettings, make_provider
from engine.augment.knowledge import (
    KB_TEXT_FEATURES,
    KnowledgeProvider,
    hpo_coverage,
    knowledge_augmentations,
)
from engine.augment.providers import AugmentationError, LLMProvider
from engine.knowledge import Knowledge, KnowledgeSources, curated_tag

FIX = Path(__file__).resolve().parent / "fixtures" / "knowledge"


class FakeLLM(LLMProvider):
    name = "fake"
    model = "fake-1"

    def __init__(self) -> None:
        self.calls = 0

    def complete_json(self, system: str, user: str) -> str:
        self.calls += 1
        return json.dumps({"values": {"mechanism": "fibrillin-1 deficiency"}})


@pytest.fixture()
def kn() -> Knowledge:
    return Knowledge.load(KnowledgeSources(FIX))


def test_registered_beside_the_others(monkeypatch):
    monkeypatch.setenv("EMERFLOW_DATA", str(FIX))
    prov = make_provider(LLMSettings(provider="knowledge", model="m"))
    assert isinstance(prov, KnowledgeProvider) and prov.fallback is None
    assert prov.describe() == {"provider": "knowledge", "model": "curated"}
    with pytest.raises(AugmentationError, match="curated features only"):
        prov.complete_json("s", "u")
    with_llm = make_provider(LLMSettings(provider="knowledge", model="m",
                                         base_url="http://127.0.0.1:9/v1"))
    assert with_llm.fallback is not None and with_llm.model == "curated + openai/m"


def test_fill_curated_first_by_cui_or_name(kn):
    prov = KnowledgeProvider(knowledge=kn)
    got = prov.fill("disease", {"name": "x"}, [("synonyms", "Synonyms"),
                                               ("phenotypes", "Phenotypes")],
                    external_id="C0024796")
    assert got.record.cui == "C0024796"
    assert got.values["phenotypes"].startswith("Micrognathia")
    assert {f["curated"] for f in got.features} == {curated_tag("disease_mappings"),
                                                    curated_tag("hpo")}
    by_name = prov.fill("disease", {"name": "Marfan's Syndrome"}, [])
    assert by_name.record.cui == "C0024796" and by_name.values == {}
    assert prov.fill("disease", {"name": "no such thing"}, [("synonyms", "S")]).missing == [
        "synonyms"]
    assert prov.fill("movie", {"name": "Marfan Syndrome"}, []).record is None


def test_fill_asks_the_llm_only_for_what_is_missing(kn):
    llm = FakeLLM()
    prov = KnowledgeProvider(knowledge=kn, fallback=llm)
    got = prov.fill("disease", {"name": "Marfan Syndrome"},
                    [("synonyms", "Synonyms"), ("mechanism", "Mechanism")])
    assert llm.calls == 1
    assert got.values["mechanism"] == "fibrillin-1 deficiency"
    assert "Marfan syndrome type 1" in got.values["synonyms"]
    assert got.llm["provider"] == "fake"
    llm.calls = 0
    prov.fill("disease", {"name": "Marfan Syndrome"}, [("synonyms", "Synonyms")])
    assert llm.calls == 0


def test_knowledge_augmentations_for_the_bench(fixtures_dir, tmp_path):
    from engine.data.registry import DATASETS

    ds = DATASETS["disgenet-curated"].load(fixtures_dir / "disgenet")
    aug = knowledge_augmentations(ds, FIX)
    assert list(aug.columns) == ["item_id", *KB_TEXT_FEATURES]
    assert list(aug["item_id"]) == list(ds.items["item_id"])
    row = aug.set_index("item_id").loc["C0002395"]
    assert row["phenotypes"] and row["synonyms"]
    assert aug.set_index("item_id").loc["C0019209", "phenotypes"] == ""
    cov = hpo_coverage(ds.items["item_id"], FIX)
    assert cov == {"items": len(ds.items), "with_phenotypes": 3}
    assert knowledge_augmentations(ds, tmp_path / "absent").empty
