"""Phenotypes from free text (issue 19): HPO term candidates named in a clinical description
(names and the UMLS names of their codes, from the files), accepted or dropped on the New item
page."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import lookup
from app.state import WORKSPACE_KEY
from engine.knowledge import Knowledge, KnowledgeSources

FIX = Path(__file__).resolve().parent / "fixtures" / "knowledge"
st_testing = pytest.importorskip("streamlit.testing.v1")


@pytest.fixture(scope="module")
def kn() -> Knowledge:
    return Knowledge.load(KnowledgeSources(FIX), genes=False)


def test_terms_found_by_name_synonym_plural_and_negation(kn):
    text = ("Micrognathia and ESOTROPIA since birth. Recurrent seizures; an enlarged liver. "
            "No vomiting, and the patient denies hallucinations.")
    hits = {h.term.id: h for h in kn.hpo.from_text(text)}
    assert hits["HP:0000347"].phrase == "Micrognathia" and not hits["HP:0000347"].negated
    assert hits["HP:0000565"].phrase == "ESOTROPIA"
    assert hits["HP:0001250"].phrase == "seizures"  # plural of a UMLS name of the code
    assert hits["HP:0002240"].phrase == "enlarged liver"
    assert hits["HP:0002013"].negated and hits["HP:0000738"].negated
    assert text[hits["HP:0002240"].start:].startswith("enlarged liver")
    order = [h.start for h in kn.hpo.from_text(text)]
    assert order == sorted(order)
    assert kn.hpo.from_text("") == [] and kn.hpo.from_text("nothing relevant here") == []


def test_longest_phrase_wins(kn):
    hits = kn.hpo.from_text("Downslanted palpebral fissures were noted.")
    assert [h.term.id for h in hits] == ["HP:0000494"]


def test_lookup_labels_leave_out_negated(monkeypatch):
    monkeypatch.setenv("EMERFLOW_DATA", str(FIX))
    got = lookup.phenotypes_from_text("Esotropia; no vomiting.", root=str(FIX))
    assert got == [("Esotropia (HP:0000565)", '"Esotropia"')]
    both = lookup.phenotypes_from_text("Esotropia; no vomiting.", root=str(FIX),
                                       keep_negated=True)
    assert both[1][1] == '"vomiting" (negated in the text)'


def test_new_item_page_adds_found_terms(demo_env, monkeypatch):
    import app as app_pkg

    monkeypatch.setenv("EMERFLOW_DATA", str(FIX))
    main = str(Path(app_pkg.__file__).resolve().parent / "main.py")
    at = st_testing.AppTest.from_file(main, default_timeout=120)
    at.session_state[WORKSPACE_KEY] = "demo-diseases"
    at.run()
    at.switch_page("views/new_item.py").run()
    at.text_area(key="nd_note").input("Micrognathia with esotropia; no vomiting.").run()
    at.button(key="nd_note_find").click().run()
    keep = at.multiselect(key="nd_note_keep")
    assert keep.value == ["Micrognathia (HP:0000347)", "Esotropia (HP:0000565)"]
    keep.unselect("Esotropia (HP:0000565)").run()
    at.button(key="nd_note_add").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.multiselect(key="nd_pheno").value == ["Micrognathia (HP:0000347)"]
