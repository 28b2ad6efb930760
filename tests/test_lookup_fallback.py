"""Disease lookup falls back to the association file's own names and CUIs (issue 19): a CUI
absent from ``disease_mappings.tsv`` still resolves by name and by CUI, and every disease of the
real curated GDA file resolves to itself (``needs_data``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from app import lookup
from engine.knowledge import (
    DiseaseIndex,
    Knowledge,
    KnowledgeSources,
    curated_features,
    curated_tag,
)
from engine.knowledge.diseases import MAPPING_COLUMNS, association_names

FIX = Path(__file__).resolve().parent / "fixtures" / "knowledge"


@pytest.fixture(scope="module")
def kn() -> Knowledge:
    return Knowledge.load(KnowledgeSources(FIX))


def test_cui_only_in_association_file_resolves_by_name_and_cui(kn):
    # C3887947 is in the GDA fixture, not in the mappings
    name = "HUMAN PAPILLOMAVIRUS TYPE 18 INTEGRATION SITE 1"
    assert kn.diseases.fallback >= 1
    rec = kn.resolve_disease("C3887947")[0]
    assert (rec.cui, rec.name, rec.source) == ("C3887947", name, "gda")
    assert kn.resolve_disease(name.lower())[0].cui == "C3887947"
    assert lookup.DiseaseResolution(rec).links_frame()["vocabulary"].tolist() == ["UMLS"]
    assert kn.diseases.autocomplete("human papillomavirus type 18")[0].cui == "C3887947"
    feats = {f["name"]: f for f in curated_features(rec)}
    assert feats["umls_cui"]["curated"] == curated_tag("gda")
    assert "synonyms" not in feats  # nothing invented


def test_association_name_wins_over_a_synonym_of_another_concept():
    maps = pd.DataFrame([
        ["C0022660", "Kidney Failure, Acute", "MSH", "D058186", "Acute Kidney Injury"],
        ["C0022660", "Kidney Failure, Acute", "OMIM", "000001", "Acute kidney failure"],
        ["C2609414", "Acute kidney injury", "NCI", "C00001", "AKI"],
    ], columns=MAPPING_COLUMNS)
    gda = pd.DataFrame({"diseaseId": ["C0022660", "C2609414", "C9999999"],
                        "diseaseName": ["Kidney Failure, Acute", "Acute kidney injury",
                                        "Brand-new syndrome"]})
    idx = DiseaseIndex(maps, gda)
    assert [r.cui for r in idx.resolve("acute kidney injury")][0] == "C2609414"
    assert idx.resolve("Brand-new syndrome")[0].cui == "C9999999"
    assert idx.resolve("C9999999")[0].source == "gda"
    with pytest.raises(ValueError, match="association names lack"):
        DiseaseIndex(maps, gda.rename(columns={"diseaseName": "name"}))


def test_association_file_alone_is_enough(tmp_path):
    (tmp_path / "disgenet").mkdir()
    src = FIX / "disgenet" / "curated_gene_disease_associations.tsv.gz"
    (tmp_path / "disgenet" / src.name).write_bytes(src.read_bytes())
    kn = Knowledge.load(KnowledgeSources(tmp_path), genes=False)
    assert kn.resolve_disease("Schizophrenia")[0].cui == "C0036341"


@pytest.mark.needs_data
def test_every_association_file_disease_resolves_by_name_and_cui(shared_data):
    root = str(shared_data)
    kn = lookup.knowledge(root)
    pairs = association_names(kn.sources.path("gda"))
    assert len(pairs) > 10_000
    missing_from_mappings = 0
    failures = []
    for cui, name in zip(pairs["diseaseId"], pairs["diseaseName"], strict=True):
        by_cui = lookup.resolve_disease(cui, root=root).record
        by_name = lookup.resolve_disease(name, root=root).record
        missing_from_mappings += by_cui.source == "gda"
        if by_cui.cui != cui or by_name.cui != cui:
            failures.append((cui, name, by_cui.cui, by_name.cui))
    assert not failures, f"{len(failures)} diseases do not resolve to themselves: {failures[:5]}"
    assert missing_from_mappings > 1000  # the fallback is what makes these resolve
