"""The biomedical analyst's page elements through AppTest: disease lookup and phenotypes on New
item, curated values on Features, evidence on Predictions, confirming genes by symbol on
Feedback, the Workspace page's readable table. Knowledge comes from tests/fixtures/knowledge."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.state import ITEM_KEY, WORKSPACE_KEY
from tests.test_app_pages import AppTest, open_page, texts

KNOWLEDGE = Path(__file__).resolve().parent / "fixtures" / "knowledge"


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "EMERFLOW_LLM_PROVIDER",
                "EMERFLOW_LLM_BASE_URL", "EMERFLOW_LLM_MODEL", "EMERFLOW_RESULTS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("EMERFLOW_DATA", str(KNOWLEDGE))


def _curated(at: AppTest):
    """The Features page's curated-values table."""
    return next(d.value for d in at.dataframe if "in text" in d.value.columns)


def _features(item_id: int) -> dict[str, dict]:
    from app.state import get_db
    from db import repository as repo

    fv = repo.latest_feature_version(get_db(), item_id)
    return {f["name"]: f for f in fv.features}


def test_new_item_omim_fills_synonyms_and_phenotypes_in_one_step(demo_env):
    at = open_page("new_item", **{WORKSPACE_KEY: "demo-diseases"})
    at.text_input(key="nd_lookup").input("OMIM:154700").run()
    at.button(key="nd_resolve").click().run()
    assert not at.exception and not at.error
    assert at.text_input(key="nd_name").value == "Marfan Syndrome"
    assert at.text_input(key="nd_cui").value == "C0024796"
    assert "Marfan syndrome type 1" in at.text_input(key="nd_syn").value
    assert at.multiselect(key="nd_pheno").value[0] == "Micrognathia (HP:0000347)"
    assert len(at.multiselect(key="nd_pheno").value) == 6
    assert "Resolved: Marfan Syndrome (C0024796)" in texts(at.text)
    links = at.dataframe[0].value
    assert {"UMLS", "OMIM", "Orphanet", "MeSH"} <= set(links["vocabulary"])
    assert "https://omim.org/entry/154700" in set(links["link"])
    # the analyst removes one phenotype and adds one by id, writes a description
    at.multiselect(key="nd_pheno").unselect("Esotropia (HP:0000565)")
    at.multiselect(key="nd_pheno").select("Cataract (HP:0000518)")
    at.text_area(key="nd_desc").input("Connective tissue disorder.")
    at.form_submit_button[0].click().run()
    assert not at.exception and not at.error, texts(at.error)
    feats = _features(at.session_state[ITEM_KEY])
    assert feats["description"]["value"] == "Connective tissue disorder."
    ph = feats["phenotypes"]
    assert ph["source"] == "analyst" and "Cataract" in ph["value"] and "Esotropia" not in ph[
        "value"]
    assert ph["curated_value"].startswith("Micrognathia; Esotropia")
    assert feats["synonyms"]["curated"].startswith("curated: disease_mappings.tsv")
    assert feats["omim_ids"]["value"] == "OMIM:154700" and not feats["omim_ids"]["keep"]
    assert "HP:0000518" in feats["phenotype_ids"]["value"]


def test_new_item_lookup_autocomplete_and_errors(demo_env):
    at = open_page("new_item", **{WORKSPACE_KEY: "demo-diseases"})
    at.text_input(key="nd_lookup").input("marf").run()
    assert at.selectbox(key="nd_lookup_pick").options[0] == "Marfan Syndrome (C0024796)"
    at.selectbox(key="nd_lookup_pick").select("Marfan Syndrome (C0024796)").run()
    at.button(key="nd_resolve").click().run()
    assert at.text_input(key="nd_cui").value == "C0024796"
    at.text_input(key="nd_lookup").input("ORPHA:999999999").run()
    at.button(key="nd_resolve").click().run()
    assert "ORPHA:999999999 is not in the disease mappings" in texts(at.error)
    # a typed HPO id that is not a term is a readable error on create
    at.multiselect(key="nd_pheno").select("wobbly knees")
    at.form_submit_button[0].click().run()
    assert "Unknown HPO term 'wobbly knees'" in texts(at.error)


def test_new_item_without_data_root_explains(demo_env, monkeypatch):
    monkeypatch.delenv("EMERFLOW_DATA")
    at = open_page("new_item", **{WORKSPACE_KEY: "demo-diseases"})
    assert "Disease lookup and HPO phenotypes need EMERFLOW_DATA" in texts(at.caption)


def test_movie_year_from_catalogue_title(demo_env):
    at = open_page("new_item", **{WORKSPACE_KEY: "demo-movies"})
    at.text_input(key="nm_title").input("Heat (1995)")
    at.form_submit_button[0].click().run()
    assert not at.error
    assert _features(at.session_state[ITEM_KEY])["year"]["value"] == "1995"


def test_features_page_curated_values_apart(demo_env):
    at = open_page("new_item", **{WORKSPACE_KEY: "demo-diseases"})
    at.text_input(key="nd_name").input("Marfan's Syndrome")  # typed, not looked up
    at.form_submit_button[0].click().run()
    item_id = at.session_state[ITEM_KEY]
    at.switch_page("views/features.py").run()
    assert not at.exception
    assert "No curated values yet" in texts(at.info)
    at.button(key="fill_curated_btn").click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert "with curated values" in texts(at.success)
    cur = _curated(at)
    assert "Phenotypes (HPO)" in set(cur["feature"])
    assert cur["source"].str.startswith("curated: ").all()
    review = at.data_editor(key=f"review_{item_id}_2").value
    src = dict(zip(review["name"], review["source"], strict=True))
    assert src["phenotypes"].startswith("curated: HPO&Orphanet") and src["name"] == "dataset"
    assert "Phenotypes (HPO): Micrognathia" in at.code[0].value
    assert "OMIM:154700" not in at.code[0].value  # ids are features and links, not text
    # the analyst overrides the curated phenotypes: the curated original stays listed apart
    row = review.index[review["name"] == "phenotypes"][0]
    at.session_state[f"review_{item_id}_2"] = {
        "edited_rows": {str(row): {"value": "Tall stature"}}, "added_rows": [],
        "deleted_rows": []}
    at.button(key="save_review").click().run()
    assert not at.exception
    cur = _curated(at)
    assert cur["source"].str.contains("overridden by the analyst").any()


def test_features_page_no_knowledge_is_readable(demo_env, monkeypatch):
    monkeypatch.delenv("EMERFLOW_DATA")
    at = open_page("new_item", **{WORKSPACE_KEY: "demo-diseases"})
    at.text_input(key="nd_name").input("Some unknown disease")
    at.form_submit_button[0].click().run()
    at.switch_page("views/features.py").run()
    at.button(key="fill_curated_btn").click().run()
    assert not at.exception
    assert "No curated knowledge for this item" in texts(at.error)


def test_predictions_page_evidence(demo_env):
    at = open_page("new_item", **{WORKSPACE_KEY: "demo-diseases"})
    at.text_input(key="nd_lookup").input("OMIM:154700").run()
    at.button(key="nd_resolve").click().run()
    at.form_submit_button[0].click().run()
    at.switch_page("views/predictions.py").run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    for col in ("nearest diseases with the gene", "co-association with confirmed",
                "phenotype overlap", "why this rank", "HGNC", "OMIM gene", "Ensembl"):
        assert col in table.columns, col
    assert table["why this rank"].iloc[0].startswith("#1 of")
    assert table["phenotype overlap"].iloc[0].endswith("of 6 HPO terms")
    assert "evidence in" in texts(at.caption)
    pick = at.selectbox(key="pred_evidence_gene")
    pick.select_index(1).run()
    assert "why this rank: #2 of" in texts(at.text)
    assert "best-known targets" in at.dataframe[1].value.columns


def _feedback_item(at: AppTest, name: str) -> int:
    at.text_input(key="nd_name").input(name)
    at.text_area(key="nd_desc").input("A disorder of photoreceptors.")
    at.form_submit_button[0].click().run()
    item_id = at.session_state[ITEM_KEY]
    at.switch_page("views/feedback.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return item_id


def _targets_by_rank(item_id: int):
    from app import flows
    from app.state import get_db, get_workspace

    ws = get_workspace("demo-diseases")
    return flows.predict_item(get_db(), ws, item_id).prediction.targets


def test_feedback_confirm_by_symbol_outside_top_list_and_refine(demo_env):
    at = open_page("new_item", **{WORKSPACE_KEY: "demo-diseases"})
    item_id = _feedback_item(at, "Search feedback disease")
    assert at.button(key="refine_btn").disabled, "nothing selected: refine is disabled"
    assert "Confirm or reject at least one gene to refine." in texts(at.caption)
    t = _targets_by_rank(item_id)
    far = t[t["rank"].isin([150, 300, 400, 500])]
    symbols = far["symbol"].tolist()
    at.text_input(key=f"fb_gene_query_{item_id}_0").input(
        ", ".join([symbols[0].lower(), *symbols[1:3]])).run()
    at.button(key="fb_gene_confirm").click().run()
    at.text_input(key=f"fb_gene_query_{item_id}_0").input(str(far["target_id"].iloc[3])).run()
    at.button(key="fb_gene_confirm").click().run()
    at.text_input(key=f"fb_gene_query_{item_id}_0").input("NOSUCHGENE").run()
    at.button(key="fb_gene_reject").click().run()
    assert "unknown gene 'NOSUCHGENE'" in texts(at.error)
    found = texts(at.text)
    assert all(f"{s} (" in found for s in symbols) and "(rank 150)" in found
    assert not at.button(key="refine_btn").disabled
    at.button(key="refine_btn").click().run()
    assert not at.exception, [e.value for e in at.exception]
    msg = texts(at.success)
    assert "Refined to Phase I with 4 decision(s)" in msg and f"{symbols[0]} \\(" in msg
    # the reopen selector follows the current phase
    assert at.selectbox(key="fb_reopen_phase").value == 1
    at.selectbox(key="fb_reopen_phase").select(0).run()
    # the search box of the new phase starts empty (issue 19)
    assert at.text_input(key=f"fb_gene_query_{item_id}_1").value == ""
    at.text_input(key=f"fb_gene_query_{item_id}_1").input(symbols[0]).run()
    at.button(key="fb_gene_reject").click().run()
    at.button(key="refine_btn").click().run()
    assert at.selectbox(key="fb_reopen_phase").value == 2


def test_feedback_upload_by_symbol_is_cleared_after_apply(demo_env):
    at = open_page("new_item", **{WORKSPACE_KEY: "demo-diseases"})
    item_id = _feedback_item(at, "Upload feedback disease")
    t = _targets_by_rank(item_id)
    s1, s2 = t["symbol"].iloc[40], t["symbol"].iloc[41]
    data = f"gene,label,note\n{s1},1,assay\n{s2},0,\n".encode()
    at.file_uploader(key="fb_upload").set_value([("genes.csv", data, "text/csv")]).run()
    assert not at.error, texts(at.error)
    at.button(key="refine_upload").click().run()
    assert "Refined to Phase I with 2 decision(s)" in texts(at.success)
    assert f"{s1} \\(" in texts(at.success)  # symbols named (markdown-escaped)
    # the applied upload is gone: a fresh uploader, no button to re-apply it
    assert at.file_uploader(key="fb_upload_1").value is None
    assert not [b for b in at.button if b.key == "refine_upload"]


def test_workspace_page_readable_table_sidebar_and_build_gate(demo_env, monkeypatch):
    monkeypatch.delenv("EMERFLOW_DATA")
    at = open_page()
    df = at.dataframe[0].value
    assert {"workspace", "data", "established items", "new items", "targets",
            "model version"} <= set(df.columns)
    assert not [c for c in df.columns if "_" in c], "no internal column names"
    at.selectbox(key="ws_page_choice").select("demo-movies").run()
    at.button[0].click().run()
    assert "Now working in demo-movies" in texts(at.success)
    assert at.session_state[WORKSPACE_KEY] == "demo-movies"
    at.selectbox(key="ws_page_choice").select("disgenet-curated").run()
    assert "EMERFLOW_DATA, which is not set" in texts(at.warning)
    assert at.button(key="ws_build").disabled


def test_workspace_page_names_a_catalog_without_established_items(demo_env, monkeypatch,
                                                                   fixtures_dir):
    """The small real-format fixture has no disease above the old-item threshold: the build
    says so in one line (no hidden second model, no traceback) and selects nothing."""
    monkeypatch.setenv("EMERFLOW_DATA", str(fixtures_dir / "disgenet"))
    at = open_page()
    at.selectbox(key="ws_page_choice").select("disgenet-curated").run()
    assert not at.button(key="ws_build").disabled
    at.button(key="ws_build").click().run(timeout=600)
    assert not at.exception, [e.value for e in at.exception]
    assert "no established items" in texts(at.error)
    chosen = at.session_state[WORKSPACE_KEY] if WORKSPACE_KEY in at.session_state else None
    assert chosen != "disgenet-curated"


@pytest.mark.needs_data
def test_new_item_real_files_omim_in_one_step(demo_env, shared_data, monkeypatch):
    monkeypatch.setenv("EMERFLOW_DATA", str(shared_data))
    at = open_page("new_item", **{WORKSPACE_KEY: "demo-diseases"})
    at.text_input(key="nd_lookup").input("OMIM:154700").run()
    at.button(key="nd_resolve").click().run()
    assert at.text_input(key="nd_cui").value == "C0024796"
    assert len(at.multiselect(key="nd_pheno").value) > 50
    assert len(at.multiselect(key="nd_pheno").options) > 5000
    at.form_submit_button[0].click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert _features(at.session_state[ITEM_KEY])["phenotypes"]["curated"].startswith(
        "curated: HPO&Orphanet")
