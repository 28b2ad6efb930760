"""Every dashboard page through Streamlit's AppTest: widgets present, main action works,
user errors are readable messages (never exceptions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import app as app_pkg
from app.state import ITEM_KEY, LLM_KEY, WORKSPACE_KEY

st_testing = pytest.importorskip("streamlit.testing.v1")
AppTest = st_testing.AppTest
MAIN = str(Path(app_pkg.__file__).resolve().parent / "main.py")
TIMEOUT = 120  #: seconds per script run (a loaded 2-core CI machine)


def open_page(page: str | None = None, **state) -> AppTest:
    """Run the app (st.navigation in main.py), then the page with ``state`` preset."""
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    if page:
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


@pytest.fixture(autouse=True)
def _no_llm(monkeypatch):
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "EMERFLOW_LLM_PROVIDER",
                "EMERFLOW_LLM_BASE_URL", "EMERFLOW_LLM_MODEL", "EMERFLOW_RESULTS"):
        monkeypatch.delenv(var, raising=False)


def _new_disease(at: AppTest, name: str) -> AppTest:
    at.text_input(key="nd_name").input(name)
    at.text_area(key="nd_desc").input("A disorder of Wnt signaling affecting bone density.")
    at.selectbox(key="nd_type").select("disease")
    at.button[0]  # noqa: B018 - the form exists
    return at.form_submit_button[0].click().run()


def test_workspace_page(demo_env):
    at = open_page()  # the default page
    assert at.title[0].value == "Workspaces"
    df = at.dataframe[0].value
    assert {"demo-movies", "demo-diseases"} <= set(df["workspace"])
    assert df.set_index("workspace").loc["demo-diseases", "model version"]
    at.selectbox(key="ws_page_choice").select("demo-movies")
    at.run()
    at.button[0].click().run()
    assert at.session_state[WORKSPACE_KEY] == "demo-movies"
    assert "Now working in demo-movies" in texts(at.success)
    at.selectbox(key="ws_page_choice").select("disgenet-curated").run()
    assert "not built yet" in texts(at.info)


def test_new_item_errors_duplicates_and_reopen(demo_env):
    at = open_page("new_item", **{WORKSPACE_KEY: "demo-diseases"})
    assert at.title[0].value == "New item"
    at.form_submit_button[0].click().run()
    assert "Disease name is required." in texts(at.error)
    at.text_input(key="nd_name").input("Bone thing")
    at.text_input(key="nd_cui").input("X123")
    at.form_submit_button[0].click().run()
    assert "UMLS CUI must be" in texts(at.error)
    assert at.text_input(key="nd_name").value == "Bone thing", "input must survive an error"
    at.text_input(key="nd_cui").input("C0000042")
    at.form_submit_button[0].click().run()
    assert not at.error and at.session_state[ITEM_KEY]
    first = at.session_state[ITEM_KEY]
    # the same name again: the existing item is offered instead of a copy
    at.text_input(key="nd_name").input("bone-thing").run()
    at.form_submit_button[0].click().run()
    assert "already exists" in texts(at.warning)
    at.button(key=f"open_dup_{first}").click().run()
    assert at.session_state[ITEM_KEY] == first
    assert "Bone thing" in at.dataframe[0].value["name"].tolist()
    at.button(key="reopen_btn").click().run()
    assert at.session_state[ITEM_KEY] == first


def test_movie_form_and_features_page_by_hand(demo_env):
    at = open_page("new_item", **{WORKSPACE_KEY: "demo-movies"})
    assert [w.label for w in at.multiselect][0] == "Genres"
    at.text_input(key="nm_title").input("Nebula Heist")
    at.number_input(key="nm_year").set_value(1998)
    at.multiselect(key="nm_genres").select("Sci-Fi").select("Crime")
    at.text_area(key="nm_desc").input("A bank heist on an orbital station.")
    at.form_submit_button[0].click().run()
    assert not at.error
    item_id = at.session_state[ITEM_KEY]

    at.switch_page("views/features.py").run()
    assert not at.exception
    assert "Provider **none**" in texts(at.info)
    assert "Genres: Sci-Fi, Crime" in at.code[0].value or "Genres:" in at.code[0].value
    editor = at.data_editor(key=f"review_{item_id}_1").value
    assert {"title", "year", "genres", "description"} <= set(editor["name"])
    # the quick form: an empty value is a readable error, then a real feature
    at.text_input(key="sf_descriptor").input("Tone")
    at.form_submit_button[0].click().run()
    assert "Give the feature a value." in texts(at.error)
    at.text_input(key="sf_value").input("tense and witty")
    at.form_submit_button[0].click().run()
    assert "Saved feature version 2" in texts(at.success)
    assert "Tone: tense and witty" in at.code[0].value
    # an edit in the table: edited_rows state on the keyed editor
    at.session_state[f"review_{item_id}_2"] = {
        "edited_rows": {"0": {"value": "Nebula Heist (director's cut)"}},
        "added_rows": [], "deleted_rows": []}
    at.button(key="save_review").click().run()
    assert not at.exception
    assert "director's cut" in at.code[0].value


def test_features_page_unreachable_llm_is_readable(demo_env, monkeypatch):
    from app.llm import LLMChoice

    monkeypatch.setenv("EMERFLOW_LLM_MAX_RETRIES", "0")
    monkeypatch.setenv("EMERFLOW_LLM_TIMEOUT", "2")
    at = open_page("new_item", **{WORKSPACE_KEY: "demo-diseases"})
    _new_disease(at, "Unreachable LLM disease")
    at.session_state[LLM_KEY] = LLMChoice(provider="openai", base_url="http://127.0.0.1:9/v1",
                                          model="m")
    at.switch_page("views/features.py").run()
    at.button(key="suggest_btn").click().run()
    assert not at.exception
    assert "could not connect to the LLM server" in texts(at.error)
    # the analyst's feature list is stored; filling it fails readably too
    from app.features import save_suggested
    from app.state import get_db

    save_suggested(get_db(), "disease", [{"name": "mechanism", "descriptor": "Mechanism"}])
    at.run()
    at.button(key="fill_btn").click().run()
    assert not at.exception
    assert "Augmentation failed: could not connect" in texts(at.error)


def test_predictions_page_disease(demo_env):
    at = open_page("new_item", **{WORKSPACE_KEY: "demo-diseases"})
    _new_disease(at, "Prediction page disease")
    at.switch_page("views/predictions.py").run()
    assert not at.exception and at.title[0].value == "Predictions"
    table = at.dataframe[0].value
    assert len(table) == 25 and table["NCBI Gene"][0].startswith(
        "https://www.ncbi.nlm.nih.gov/gene/")
    at.selectbox(key="pred_top_n").select(10).run()
    assert len(at.dataframe[0].value) == 10
    cls = at.multiselect(key="pred_classes").options[0]
    at.multiselect(key="pred_classes").select(cls).run()
    assert at.dataframe[0].value["protein class"].str.contains(cls).all()
    slider = at.slider(key="pred_min_score")
    slider.set_value(slider.max).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "No target passes the filters" in texts(at.info)
    assert len(at.dataframe[1].value) == 5  # FAISS neighbours
    assert [b.label for b in at.get("download_button")] == [
        "Download CSV", "Download TSV", "Download JSON"]


def test_predictions_page_movie_chart(demo_env):
    at = open_page("new_item", **{WORKSPACE_KEY: "demo-movies"})
    at.text_input(key="nm_title").input("Haunted Grave 7")
    at.text_area(key="nm_desc").input("A haunted house that traps its visitors.")
    at.form_submit_button[0].click().run()
    at.switch_page("views/predictions.py").run()
    assert not at.exception
    assert {"user", "gender", "age", "occupation"} <= set(at.dataframe[0].value.columns)
    charts = at.get("vega_lite_chart") or at.get("arrow_vega_lite_chart")
    assert charts
    assert "Predicted appeal by user group, vs. this group's usual" in texts(at.subheader)
    spec = json.loads(charts[0].proto.spec)
    y = spec["spec"]["encoding"]["y"]  # faceted: the bars are each group's lift over its usual
    assert y["field"] == "vs usual"
    assert y["title"] == "appeal vs. this group's usual (percentile points)"


def test_pages_without_item_show_hint(demo_env):
    for page in ("features", "predictions", "feedback"):
        at = open_page(page, **{WORKSPACE_KEY: "demo-diseases"})
        assert "No item open" in texts(at.info), page


def test_feedback_confirm_refine_upload_and_history(demo_env):
    at = open_page("new_item", **{WORKSPACE_KEY: "demo-diseases"})
    _new_disease(at, "Feedback disease")
    item_id = at.session_state[ITEM_KEY]
    at.switch_page("views/feedback.py").run()
    assert not at.exception
    # refining with nothing decided is not offered
    assert at.button(key="refine_btn").disabled
    options = at.multiselect(key=f"fb_confirm_{item_id}_0").options
    assert len(options) == 25
    chosen = [o.rsplit("(", 1)[1].rstrip(")") for o in options[5:8]]
    for target in chosen:
        at.multiselect(key=f"fb_confirm_{item_id}_0").select(target)
    at.run()
    at.button(key="refine_btn").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Refined to Phase I with 3 decision(s)" in texts(at.success)
    assert "Phase **I**" in texts(at.caption)
    assert len(at.get("vega_lite_chart") or at.get("arrow_vega_lite_chart")) >= 2
    # a bad upload: line-numbered errors, nothing refined
    up = at.file_uploader(key="fb_upload")
    up.set_value([("bad.csv", b"target_id,label\n100001,1\nnope,1\n100002,maybe\n",
                   "text/csv")]).run()
    err = texts(at.error)
    assert "Line 3: unknown target_id 'nope'" in err and "Line 4: label must be" in err
    # the refinement's message (with its rank moves) stays through later reruns of the phase
    assert "Refined to Phase I with 3 decision(s)" in texts(at.success)
    # a good upload refines to Phase II with source "upload"
    at.file_uploader(key="fb_upload").set_value(
        [("ok.csv", b"target_id,label,note\n100001,1,lab result\n100002,0,\n", "text/csv")]
    ).run()
    at.button(key="refine_upload").click().run()
    assert not at.exception
    assert "Refined to Phase II" in texts(at.success)
    assert "Refined to Phase I with" not in texts(at.success)
    from app.state import get_db
    from db import repository as repo

    inter = {i.target_id: i for i in repo.interactions(get_db(), item_id)}
    assert inter["100001"].source == "upload" and inter["100001"].note == "lab result"
    # reopen Phase 0's ranking
    at.selectbox(key="fb_reopen_phase").select(0).run()
    assert not at.exception


def test_benchmark_page_empty_and_with_results(demo_env, tmp_path, monkeypatch):
    monkeypatch.setenv("EMERFLOW_RESULTS", str(tmp_path))
    at = open_page("benchmark")
    assert "No benchmark results yet" in texts(at.info)
    (tmp_path / "demo-movies").mkdir()
    per = {"mean": 0.7, "std": 0.02, "per_seed": [0.68, 0.72]}
    null = {"mean": None, "std": None, "per_seed": [None, None]}
    for method in ("emerflow", "dropoutnet", "cooc-knn"):
        doc = {"dataset": "demo-movies", "method": method, "seeds": [0, 1],
               "phases": {p: {"auc": per, "f1": null if method == "cooc-knn" else per}
                          for p in ("0", "I", "II", "III")},
               "ranking": {p: {"recall@20": per, "recall@100": per, "ndcg@100": per}
                           for p in ("0", "I", "II", "III")},
               "backbone": None if method == "cooc-knn" else "deepfm",
               "config": {"command": f"emerflow bench --method {method}"}, "machine": {},
               "created_at": "2025-01-01"}
        (tmp_path / "demo-movies" / f"{method}.json").write_text(json.dumps(doc))
    # not result files: neither read nor warned about
    (tmp_path / "demo-movies" / "tuning.json").write_text(json.dumps({"methods": {}}))
    (tmp_path / "speed").mkdir()
    (tmp_path / "speed" / "latest.json").write_text(json.dumps({"timings": {}}))
    at = open_page("benchmark")
    assert not at.exception
    assert not at.warning, texts(at.warning)
    charts = at.get("vega_lite_chart") or at.get("arrow_vega_lite_chart")
    assert len(charts) == 5  # Recall@20, Recall@100, NDCG@100, AUC, F1
    specs = [json.loads(c.proto.spec) for c in charts]
    titles = [spec["layer"][1]["encoding"]["y"]["title"] for spec in specs]
    assert titles == ["Recall@20", "Recall@100", "NDCG@100", "AUC", "F1"]
    for spec in specs:  # every method in every legend
        assert set(spec["layer"][1]["encoding"]["color"]["scale"]["domain"]) == {
            "emerflow", "dropoutnet", "cooc-knn"}
    tables = [t.value for t in at.dataframe]
    f1 = next(t for t in tables if "Phase-III" in t.columns and (t == "—").any().any())
    assert list(f1.columns) == ["method", "Phase-0", "Phase-I", "Phase-II", "Phase-III"]
    assert (f1.set_index("method").loc["cooc-knn"] == "—").all()
    assert "emerflow bench --method dropoutnet" in texts(at.code)


def test_settings_page_hides_key_and_tests_connection(demo_env, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-abcdefghijklmnopqrstuvwxyz123456")
    monkeypatch.setenv("EMERFLOW_LLM_MAX_RETRIES", "0")
    monkeypatch.setenv("EMERFLOW_LLM_TIMEOUT", "2")
    at = open_page("settings")
    page = texts(at.table) + texts(at.markdown) + texts(at.caption)
    assert "sk-test" not in page
    assert any("set" in str(t.value) for t in at.table)
    at.selectbox(key="set_provider").select("openai")
    at.text_input(key="set_base_url").input("http://127.0.0.1:9/v1")
    at.form_submit_button[0].click().run()
    assert "applied" in texts(at.success)
    at.button(key="test_llm").click().run()
    assert not at.exception
    assert "Connection failed: could not connect" in texts(at.error)
    at.text_input(key="set_base_url").input("ftp://nope")
    at.form_submit_button[0].click().run()
    assert "Not applied: base_url must start with http" in texts(at.error)
    at.selectbox(key="set_provider").select("none")
    at.text_input(key="set_base_url").input("")
    at.form_submit_button[0].click().run()
    at.button(key="test_llm").click().run()
    assert "Provider 'none'" in texts(at.success)


def test_a_database_from_a_newer_version_gets_one_clear_line(demo_env):
    """A database migrated by a newer EmerFlow Studio: the page says so in one sentence (no
    generic "failed unexpectedly"), and nothing in it is changed."""
    from sqlalchemy import text

    from db.database import init_db, make_engine, write_engine
    from engine.settings import get_settings

    eng = make_engine(get_settings().database_url_resolved())
    init_db(eng)
    with write_engine(eng).begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    at = open_page("new_item")
    errors = " ".join(e.value for e in at.error)
    assert "written by a newer version of EmerFlow Studio" in errors, errors
    with eng.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "9999"
    eng.dispose()
