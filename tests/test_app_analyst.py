"""Issue 19 in the pages (AppTest, no browser): what to test next on the Feedback page,
candidate-list mode on the Predictions page, and the rough edges: duplicate copies, the
phase-history chart, the search box after a refinement, movie wording, exports read back
with pandas."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

import app as app_pkg
from app import exports, flows, history, items
from app import predictions as preds
from app.state import ITEM_KEY, WORKSPACE_KEY
from tests.test_app_pages import AppTest, open_page, texts

KNOWLEDGE = Path(__file__).resolve().parent / "fixtures" / "knowledge"


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "EMERFLOW_LLM_PROVIDER",
                "EMERFLOW_LLM_BASE_URL", "EMERFLOW_LLM_MODEL", "EMERFLOW_RESULTS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("EMERFLOW_DATA", str(KNOWLEDGE))


def _plan(at: AppTest) -> pd.DataFrame:
    """The Feedback page's "what to test next" plan table."""
    return next(d.value for d in at.dataframe if "why test it" in d.value.columns)


def _disease_item(at: AppTest, name: str) -> int:
    at.text_input(key="nd_name").input(name)
    at.text_area(key="nd_desc").input("A disorder of photoreceptors.")
    at.form_submit_button[0].click().run()
    assert not at.exception and not at.error, texts(at.error)
    return at.session_state[ITEM_KEY]


def test_duplicate_prompt_creates_a_named_copy(demo_env):
    at = open_page("new_item", **{WORKSPACE_KEY: "demo-diseases"})
    first = _disease_item(at, "Copy me")
    at.text_input(key="nd_name").input("copy-me").run()
    at.form_submit_button[0].click().run()
    assert "already exists" in texts(at.warning)
    proposed = at.text_input(key="dup_copy_name").value
    assert proposed.endswith(" (copy 2)")
    at.button(key="dup_anyway").click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert at.session_state[ITEM_KEY] != first
    names = at.dataframe[-1].value["name"].tolist()
    assert {"Copy me", proposed} <= set(names)
    # a copy name that is taken too is a readable error, nothing created
    at.text_input(key="nd_name").input("Copy me").run()
    at.form_submit_button[0].click().run()
    at.text_input(key="dup_copy_name").input("Copy me").run()
    at.button(key="dup_anyway").click().run()
    assert "give the copy another name" in texts(at.error)


def test_feedback_what_to_test_next_confirm_and_refine(demo_env):
    at = open_page("new_item", **{WORKSPACE_KEY: "demo-diseases"})
    item_id = _disease_item(at, "Suggest next disease")
    at.switch_page("views/feedback.py").run()
    assert not at.exception, [e.value for e in at.exception]
    plan = _plan(at)
    assert len(plan) == 4 and plan["why test it"].str.len().min() > 10
    assert plan["why test it"].iloc[0].startswith("#1 in the ranking")
    labels = [b.label for b in at.get("download_button")]
    assert {"Plan as CSV", "Plan as TSV", "Plan as JSON"} <= set(labels)
    at.number_input(key="fb_next_k").set_value(2).run()
    plan = _plan(at)
    assert len(plan) == 2
    # the analyst tested the plan: first confirmed, second rejected
    yes, no = plan["gene id"].astype(str).tolist()
    at.multiselect(key=f"fb_confirm_{item_id}_0").select(yes)
    at.multiselect(key=f"fb_reject_{item_id}_0").select(no).run()
    at.button(key="refine_btn").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Refined to Phase I with 2 decision(s)" in texts(at.success)
    after = _plan(at)["gene id"].astype(str).tolist()
    assert yes not in after and no not in after
    at.select_slider(key="fb_next_dial").set_value(1.0).run()
    assert not at.exception


def test_movie_feedback_speaks_of_users(demo_env):
    at = open_page("new_item", **{WORKSPACE_KEY: "demo-movies"})
    at.text_input(key="nm_title").input("Orbital Heist")
    at.form_submit_button[0].click().run()
    item_id = at.session_state[ITEM_KEY]
    at.switch_page("views/feedback.py").run()
    assert not at.exception
    box = at.text_input(key=f"fb_gene_query_{item_id}_0")
    assert box.label == "User id" and "PDE6B" not in (box.placeholder or "")
    find = next(m.value for m in at.markdown if "**Find any" in m.value)
    assert find.startswith("**Find any user** by id") and "HGNC" not in find
    assert not any("gene" in str(m.value) for m in at.markdown if "**" in str(m.value)
                   and "→" not in str(m.value))
    assert "user" in _plan(at).columns


def test_predictions_candidate_list_mode_and_export(demo_env):
    at = open_page("new_item", **{WORKSPACE_KEY: "demo-diseases"})
    item_id = _disease_item(at, "Candidate list disease")
    at.switch_page("views/predictions.py").run()
    from app.state import get_db, get_workspace

    ws = get_workspace("demo-diseases")
    t = flows.predict_item(get_db(), ws, item_id).prediction.targets
    picks = [str(t.iloc[i]["name"]) for i in (200, 3, 57)]
    at.toggle(key="pred_cand_mode").set_value(True).run()
    assert "Paste or upload" in texts(at.info)
    at.text_area(key="pred_cand_text").input("\n".join([*picks, "NOTAGENE1"])).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "NOTAGENE1: not a gene of this workspace" in texts(at.warning)
    table = next(d.value for d in at.dataframe if "rank in list" in d.value.columns)
    assert table["rank in list"].tolist() == [1, 2, 3]
    assert table["rank"].tolist() == [4, 58, 201]
    assert table["why this rank"].iloc[2].startswith(f"#201 of {len(t)}")
    assert {"Download CSV", "Download TSV", "Download JSON"} <= {
        b.label for b in at.get("download_button")}


def test_phase_history_ranks_match_the_table_and_legend_is_whole(db, diseases):
    item = items.create(db, diseases, items.disease_input(name="History disease",
                                                         disease_type="disease"))
    s0 = flows.predict_item(db, diseases, item.id)
    ids = s0.prediction.targets["target_id"].astype(str).tolist()
    confirm = [ids[i] for i in (3, 30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 330)]
    s1 = flows.confirm_and_refine(db, diseases, item.id, [(t, 1) for t in confirm])
    hist = history.rank_history(db, diseases, item.id)
    table = preds.ranked_targets(diseases, s1, top_n=50)
    shown = dict(zip(table["gene id"], table["rank"], strict=True))
    at1 = hist[hist["phase"] == 1].set_index("target_id")["rank"]
    assert all(at1[t] == shown[t] for t in confirm)  # the chart's rank is the table's
    at0 = hist[hist["phase"] == 0].set_index("target_id")["rank"]
    assert at0[confirm[1]] == 31
    ranks, scores, n = history.rank_charts(hist, "gene")
    spec = ranks.to_dict()
    color = spec["encoding"]["color"]
    assert n == 12 and color["legend"]["symbolLimit"] == 0
    # Streamlit's default "fit" squeezed the legend into the 280 px: the chart grows instead
    assert spec["autosize"]["type"] == "fit-x" and spec["height"] == 280
    assert color["scale"]["scheme"] == "category20" and len(set(color["scale"]["domain"])) == 12
    assert scores.to_dict()["encoding"]["y"]["title"] == "model score"


def test_exports_read_back_with_pandas_keep_hash_in_links(db, diseases):
    item = items.create(db, diseases, items.disease_input(name="Export disease",
                                                         disease_type="disease"))
    state = flows.predict_item(db, diseases, item.id)
    link = "https://www.genenames.org/data/gene-symbol-report/#!/hgnc_id/HGNC:8786"
    table = pd.DataFrame({"symbol": ["PDE6B", "RHO"], "HGNC": [link, link + "0"],
                          "score": [1.5, -0.25]})
    for fmt, sep in (("CSV", ","), ("TSV", "\t")):
        data, _, _ = exports.export_bytes(table, fmt, exports.stamp(diseases, state))
        first = data.decode().split("\n", 1)[0]
        n = int(first.split("after ")[1].split(" ")[0])
        back = pd.read_csv(io.BytesIO(data), sep=sep, skiprows=n)  # as the docstring says
        assert back["HGNC"].tolist() == table["HGNC"].tolist()
        assert back["score"].tolist() == [1.5, -0.25]
        stamp, again = exports.read_export(data)
        assert stamp["item"] == "Export disease" and again["HGNC"].tolist() == [link,
                                                                               link + "0"]
    with pytest.raises(ValueError, match="not an EmerFlow"):
        exports.read_export(b"a,b\n1,2\n")


def test_benchmark_page_charts_the_suggest_results(demo_env, tmp_path, monkeypatch):
    import json
    import shutil

    from app.benchmark import load_results, suggest_results, suggest_rounds, suggest_summary

    repo = Path(app_pkg.__file__).resolve().parents[1] / "results"
    shutil.copytree(repo / "disgenet-curated", tmp_path / "disgenet-curated")
    (tmp_path / "suggest").mkdir()
    doc = {"k": 4, "rounds": 3, "cutoff": 100, "dial": 0.25, "seeds": [0, 1],
           "test": {"0": {"greedy": {"found_total": 1.8, "recall@100_remaining": 0.2,
                                     "ndcg@100_remaining": 0.17}},
                    "1": {"greedy": {"found_total": 1.6, "recall@100_remaining": 0.3,
                                     "ndcg@100_remaining": 0.19}}},
           "test_mean": {"greedy": {"found_per_round": [0.7, 0.6, 0.4], "found_total": 1.7,
                                    "recall@100_remaining": 0.25,
                                    "ndcg@100_remaining": 0.18}}}
    (tmp_path / "suggest" / "disgenet-curated.json").write_text(json.dumps(doc))
    assert not load_results(tmp_path).problems  # the suggest folder is no method result
    got = suggest_results("disgenet-curated", tmp_path)
    rounds = suggest_rounds(got)
    assert rounds["cumulative"].tolist() == [0.7, 1.3, 1.7]
    summary = suggest_summary(got).set_index("strategy")
    assert summary.loc["greedy", "found in the rounds (seeds min..max)"] == "1.6000..1.8000"
    assert suggest_results("movielens-1m-partial", tmp_path) is None
    monkeypatch.setenv("EMERFLOW_RESULTS", str(tmp_path))
    at = open_page("benchmark")
    assert not at.exception, [e.value for e in at.exception]
    assert "What to test next: a simulated analyst" in texts(at.subheader)
    assert any("found in the rounds" in d.value.columns for d in at.dataframe)
    charts = [json.loads(c.proto.spec) for c in (at.get("vega_lite_chart")
                                                  or at.get("arrow_vega_lite_chart"))]
    methods = charts[0]["layer"][1]["encoding"]["color"]["scale"]["domain"]
    assert len(methods) > 12  # the committed DisGeNET results (21 methods)
    for spec in charts[:-1]:  # every method chart: its own colour and a whole legend
        color = spec["layer"][1]["encoding"]["color"]
        assert len(set(color["scale"]["range"])) == len(color["scale"]["domain"])
        assert color["legend"]["orient"] == "bottom" and color["legend"]["symbolLimit"] == 0
        assert spec["autosize"]["type"] == "fit-x"


def test_movie_appeal_is_a_readable_percentile(db, movies):
    item = items.create(db, movies, items.movie_input(title="Orbit Star 2", year=1999,
                                                      genres=["Sci-Fi"]))
    a = preds.appeal_by_group(movies, flows.predict_item(db, movies, item.id))
    assert a["appeal"].between(0, 100).all()
    assert a["appeal"].max() - a["appeal"].min() > 1.0  # groups differ visibly
