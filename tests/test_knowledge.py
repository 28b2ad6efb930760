"""engine.knowledge on small fixtures in the real file formats (tests/fixtures/knowledge), and
a few checks on the real files when they are present (``needs_data``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.knowledge import (
    AmbiguousGeneError,
    DiseaseNotFoundError,
    Knowledge,
    KnowledgeSources,
    UnknownGeneError,
    curated_features,
    curated_tag,
    disease_links,
    is_curated,
    normalize_hpo_id,
    sources_from_env,
)

FIX = Path(__file__).resolve().parent / "fixtures" / "knowledge"


@pytest.fixture(scope="module")
def kn() -> Knowledge:
    return Knowledge.load(KnowledgeSources(FIX))


def test_sources_and_tags(tmp_path, monkeypatch):
    src = KnowledgeSources(FIX)
    assert set(src.available()) == {"disease_mappings", "hpo", "gene_info", "hgnc", "gda"}
    assert curated_tag("hpo") == ("curated: HPO&Orphanet_dis_symp.txt, "
                                  "HPO + Orphanet CUI pairs (2018)")
    assert is_curated(curated_tag("disease_mappings")) and not is_curated("llm")
    with pytest.raises(ValueError, match="unknown knowledge file"):
        curated_tag("nope")
    monkeypatch.delenv("EMERFLOW_DATA", raising=False)
    assert sources_from_env() is None
    monkeypatch.setenv("EMERFLOW_DATA", str(tmp_path / "missing"))
    assert sources_from_env() is None
    monkeypatch.setenv("EMERFLOW_DATA", str(FIX))
    assert sources_from_env().root == FIX
    assert Knowledge.load(KnowledgeSources(tmp_path)).diseases is None


@pytest.mark.parametrize("query", ["OMIM:154700", "MIM 154700", "ORPHA:558", "Orphanet_558",
                                   "MESH:D008382", "D008382", "c0024796", "marfan syndrome",
                                   "Marfan's Syndrome", "MFS"])
def test_disease_resolves_every_id_kind(kn, query):
    assert kn.resolve_disease(query)[0].cui == "C0024796"


def test_disease_record_synonyms_ids_links(kn):
    rec = kn.resolve_disease("OMIM:154700")[0]
    assert rec.name == "Marfan Syndrome"
    assert "Marfan syndrome type 1" in rec.synonyms
    assert "tuberous sclerosis" not in rec.synonyms  # DO code mapped to other CUIs
    assert rec.curie("OMIM") == ["OMIM:154700"] and "ORPHA:558" in rec.curie("ORDO")
    links = disease_links(rec)
    assert links["UMLS"].endswith("C0024796") and links["OMIM"].endswith("/154700")
    assert links["Orphanet"].endswith("/558") and links["MeSH"].endswith("D008382")


def test_disease_shared_code_and_errors(kn):
    recs = kn.resolve_disease("OMIM:248600")
    assert len(recs) == 3 and recs[0].cui == "C0024776"  # the file's own name first
    with pytest.raises(DiseaseNotFoundError, match="OMIM:999999"):
        kn.resolve_disease("OMIM:999999")
    with pytest.raises(DiseaseNotFoundError, match="did you mean Marfan"):
        kn.resolve_disease("marfa")
    with pytest.raises(ValueError, match="Type a disease"):
        kn.resolve_disease("  ")


def test_disease_autocomplete(kn):
    assert kn.diseases.autocomplete("marf")[0].cui == "C0024796"
    assert kn.diseases.autocomplete("syrup")[0].cui in {"C0024776", "C0268568", "C0268569"}
    assert [r.cui for r in kn.diseases.autocomplete("C00247")][:1] == ["C0024776"]
    assert kn.diseases.autocomplete("OMIM:1547")[0].cui == "C0024796"
    assert kn.diseases.autocomplete("m") == []


def test_hpo_terms_search_parse_and_annotations(kn):
    terms = kn.phenotypes_of("C0024796")
    assert terms[0].id == "HP:0000347" and terms[0].name == "Micrognathia"
    assert kn.hpo.search("HP:0000347")[0].name == "Micrognathia"
    assert kn.hpo.search("0000347")[0].id == "HP:0000347"
    assert kn.hpo.search("micro")[0].id == "HP:0000347"
    assert any(t.id == "HP:0000494" for t in kn.hpo.search("palpebral"))
    parsed = kn.hpo.parse(["Micrognathia (HP:0000347)", "esotropia", "HP:0000347"])
    assert [t.id for t in parsed] == ["HP:0000347", "HP:0000565"]
    with pytest.raises(ValueError, match="Unknown HPO term 'wobbly'"):
        kn.hpo.parse(["wobbly"])
    assert normalize_hpo_id("hp_0000347") == "HP:0000347"
    with pytest.raises(ValueError):
        normalize_hpo_id("HP:12")
    assert kn.phenotypes_of("C0019209") == []


def test_curated_features_tagged(kn):
    rec = kn.resolve_disease("OMIM:154700")[0]
    feats = {f["name"]: f for f in curated_features(rec, kn.phenotypes_of(rec.cui))}
    assert feats["phenotypes"]["value"].startswith("Micrognathia; Esotropia")
    assert feats["phenotypes"]["curated"] == curated_tag("hpo") and feats["phenotypes"]["keep"]
    assert feats["phenotypes"]["source"] == "dataset"
    assert feats["omim_ids"]["value"] == "OMIM:154700" and not feats["omim_ids"]["keep"]
    assert feats["synonyms"]["curated"] == curated_tag("disease_mappings")
    assert "phenotypes" not in {f["name"] for f in curated_features(rec, [])}


@pytest.mark.parametrize("query,gene_id", [("PDE6B", "5158"), ("pde6b", "5158"), ("5158", "5158"),
                                           ("HGNC:8786", "5158"), ("RP40", "5158"),
                                           ("ENSG00000133256", "5158"), ("p53", "7157"),
                                           ("NCBI:7157", "7157")])
def test_gene_resolver(kn, query, gene_id):
    assert kn.genes.resolve(query).gene_id == gene_id


def test_gene_resolver_errors_and_links(kn):
    with pytest.raises(AmbiguousGeneError) as err:
        kn.genes.resolve("A1B")
    assert {g.symbol for g in err.value.candidates} == {"A1BG", "SNTB1"}
    assert "A1BG (NCBI 1)" in str(err.value) and "SNTB1 (NCBI 6641)" in str(err.value)
    with pytest.raises(UnknownGeneError, match="unknown gene 'NOPE1'"):
        kn.genes.resolve("NOPE1")
    with pytest.raises(ValueError):
        kn.genes.resolve("")
    links = kn.genes.resolve("PDE6B").links()
    assert links["NCBI Gene"].endswith("/gene/5158")
    assert links["HGNC"].endswith("hgnc_id/HGNC:8786")
    assert links["OMIM gene"].endswith("/180072") and links["Ensembl"].endswith("ENSG00000133256")
    only = kn.genes.restrict(["7157"])
    with pytest.raises(UnknownGeneError):
        only.resolve("PDE6B")
    assert [g.symbol for g in kn.genes.search("PDE")] == ["PDE6B"]


@pytest.mark.needs_data
def test_real_files_omim_fills_synonyms_and_phenotypes(shared_data):
    kn = Knowledge.load(KnowledgeSources(shared_data))
    rec = kn.resolve_disease("OMIM:154700")[0]
    assert rec.cui == "C0024796" and len(kn.phenotypes_of(rec.cui)) > 50
    assert kn.genes.resolve("PDE6B").gene_id == "5158"
    assert kn.genes.resolve("PDE6B").mim == "180072"
