"""The LLM variants read committed augmentations (issue 16 item 5).

A benchmark run with no ``--augmented`` path reads ``$EMERFLOW_HOME/augment/<dataset>.csv``
when a local ``emerflow augment`` wrote one, else the repository's
``results/<dataset>/llm-augmentations.csv`` (+ ``.json`` provenance); the committed DisGeNET
file covers every item of the split and names the model and prompt version that produced it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from test_baselines import FAST_OVERRIDES, TINY_BACKBONE, HashEncoder

import engine.bench_setup as bench_setup
from engine.bench_setup import (
    BenchSettings,
    augment_output_path,
    committed_augment_path,
    default_augment_path,
    make_method,
    save_augmentations,
)
from engine.schema import ITEM_ID

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "augment"
#: A small learned ranker (emerflow-ltr-llm takes emerflow-ltr's settings, as in the bench).
FAST_LTR = {**FAST_OVERRIDES, "emerflow-ltr": {"folds": 2, "candidates": 30,
                                               "random_negatives": 20, "n_estimators": 10,
                                               "num_leaves": 7}}
ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def committed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository ``results/`` folder holding only the demo-movies fixture augmentation."""
    results = tmp_path / "repo" / "results"
    shutil.copytree(FIXTURE / "demo-movies", results / "demo-movies")
    monkeypatch.setattr(bench_setup, "REPO_RESULTS", results)
    return results


def test_bench_reads_the_committed_augmentation_when_nothing_else_is_configured(
        emerflow_home, committed):
    """Empty EMERFLOW_HOME, no --augmented: ``run_registered`` (what ``emerflow bench`` calls)
    runs the LLM ranker on the committed values and records their provenance."""
    from engine.bench import run_registered

    path = committed_augment_path("demo-movies")
    assert default_augment_path("demo-movies") == path
    meta = json.loads(path.with_suffix(".json").read_text())
    settings = BenchSettings(backbone=TINY_BACKBONE, method_overrides=FAST_LTR)
    docs = run_registered("demo-movies", ["emerflow-ltr", "emerflow-ltr-llm"], [0],
                          settings=settings, encoder=HashEncoder(), cache_dir=None,
                          progress=lambda _msg: None)
    llm_doc, raw_doc = docs["emerflow-ltr-llm"], docs["emerflow-ltr"]
    assert llm_doc["status"] == "ok" and raw_doc["status"] == "ok"
    info = llm_doc["llm"]
    assert info["source"] == "results/demo-movies/llm-augmentations.csv"  # repo-relative
    assert {k: info[k] for k in ("provider", "model", "prompt_version")} == {
        k: meta["llm"][k] for k in ("provider", "model", "prompt_version")}
    assert info["features"] == ["mood", "audience"]
    assert llm_doc["config"]["method"]["n_estimators"] == 10  # emerflow-ltr's settings
    assert info["items_augmented"] == meta["items"]
    assert raw_doc["llm"] is None
    # the LLM values reached the ranker's text: its per-item figures are not the raw run's
    assert llm_doc["per_item"]["ndcg@100"] != raw_doc["per_item"]["ndcg@100"]


def test_a_local_augmentation_wins_over_the_committed_one(emerflow_home, committed):
    """``emerflow augment``'s output in EMERFLOW_HOME (e.g. a larger model behind
    OPENAI_BASE_URL) is read before the committed file; nothing anywhere names the local
    path, so a missing augmentation is reported where it would be written."""
    local = augment_output_path("demo-movies")
    assert local == emerflow_home / "augment" / "demo-movies.csv"
    assert default_augment_path("demo-movies") == committed_augment_path("demo-movies")
    local.parent.mkdir(parents=True)
    shutil.copy(FIXTURE / "demo-movies" / "llm-augmentations.csv", local)
    assert default_augment_path("demo-movies") == local
    assert default_augment_path("demo-diseases") == augment_output_path("demo-diseases")


def test_an_explicit_augmented_path_wins(emerflow_home, committed, tmp_path):
    """``emerflow bench --augmented PATH`` passes PATH through to the run."""
    from engine import bench_cli

    seen: dict = {}

    def fake_run(name, methods, seeds, **kwargs):
        seen.update(kwargs)
        return {}

    explicit = tmp_path / "mine.csv"
    parser_args = ["bench", "--dataset", "demo-movies", "--methods", "emerflow-ltr-llm",
                   "--seeds", "1", "--augmented", str(explicit), "--validation"]
    import engine.bench as bench

    original = bench.run_registered
    bench.run_registered = fake_run
    try:
        assert bench_cli.main(parser_args) == 0
    finally:
        bench.run_registered = original
    assert seen["augment_path"] == explicit


def test_save_augmentations_keeps_ids_and_values_and_records_provenance(tmp_path):
    """What ``emerflow bench save-augmentations`` commits: item ids, feature values and the
    error column; provider, model by name (not a home path), prompt version, the command."""
    src = tmp_path / "home" / "augment" / "demo-movies.csv"
    src.parent.mkdir(parents=True)
    frame = pd.read_csv(FIXTURE / "demo-movies" / "llm-augmentations.csv", dtype=str,
                        keep_default_na=False)
    frame["augment_cached"] = True
    frame.loc[0, "mood"] = "Puppy Battle 1"  # the model copied the item's own title
    frame.to_csv(src, index=False)
    src.with_suffix(".json").write_text(json.dumps({
        "dataset": "demo-movies", "items": len(frame), "failed": 0, "seconds": 3.0,
        "llm": {"provider": "openai", "model": "big-model", "prompt_version": "v1",
                "base_url": "https://user:secret@llm.example/v1?api-key=abc",
                "api_key_set": True, "batch_size": 1},
        "features": ["mood", "audience"], "features_source": "given"}))
    dest = tmp_path / "results" / "demo-movies" / "llm-augmentations.csv"
    from engine.data.demo import demo_movies

    doc = save_augmentations("demo-movies", src, dest, demo_movies().items)
    saved = pd.read_csv(dest, dtype=str, keep_default_na=False)
    assert list(saved.columns) == [ITEM_ID, "mood", "audience", "augment_error"]
    assert len(saved) == len(frame)
    text = dest.with_suffix(".json").read_text()
    assert "secret" not in text and "abc" not in text and "api_key" not in text
    assert doc["llm"]["model"] == "big-model" and doc["llm"]["prompt_version"] == "v1"
    assert "--features mood,audience" in doc["command"]
    assert doc["values_copying_item_fields"] == 1
    assert doc["values_non_empty"] == int((frame[["mood", "audience"]] != "").to_numpy().sum())
    with pytest.raises(ValueError, match="emerflow augment"):
        save_augmentations("demo-movies", tmp_path / "absent.csv", dest)


def test_the_llm_ranker_runs_with_the_product_settings():
    """``emerflow-ltr-llm`` has no round of its own: it takes ``emerflow-ltr``'s validated
    settings from engine/tuned.py on both real datasets."""
    for dataset in ("disgenet-curated", "movielens-1m-partial"):
        settings = BenchSettings.for_dataset(dataset)
        llm = make_method("emerflow-ltr-llm", settings)
        raw = make_method("emerflow-ltr", settings)
        assert llm.config == raw.config and llm.settings == raw.settings
        assert llm.text_variant == "raw+aug" and raw.text_variant == "raw"


def test_title_variants_cover_the_spellings_a_model_writes():
    """movies.dat's title, without its year, with the article moved to the front, and each
    alternative title in parentheses; matched as whole words, case-insensitively."""
    from engine.augment.titles import blank_title, title_pattern, title_variants

    assert set(title_variants("Matrix, The (1999)")) == {
        "Matrix, The (1999)", "Matrix, The", "The Matrix", "The Matrix (1999)"}
    alt = title_variants("City of Lost Children, The (Cité des enfants perdus, La) (1995)")
    assert {"The City of Lost Children", "La Cité des enfants perdus"} <= set(alt)
    assert {"Seven", "Se7en"} <= set(title_variants("Seven (Se7en) (1995)"))
    assert "L'Homme" in title_variants("Homme, L' (1990)")
    matrix = title_pattern(title_variants("Matrix, The (1999)"))
    assert blank_title("The movie (DATA, not instructions): THE MATRIX (1999)",
                       matrix) == "The movie (DATA, not instructions)"
    assert blank_title('"the matrix"|Sci-Fi', matrix) == "Sci-Fi"
    assert blank_title("matrixes and mathematics", matrix) == "matrixes and mathematics"
    heat = title_pattern(title_variants("Heat (1995)"))
    assert blank_title("Heat at the theater", heat) == "at the theater"


def test_save_augmentations_blanks_movie_titles(tmp_path, fixtures_dir):
    """``emerflow bench save-augmentations`` on a movie dataset (here the movies.dat fixture
    as ``movielens-1m-partial``): no item's own title survives in the committed values or
    errors, another item's title is kept, and the sidecar counts the blanked values."""
    from engine.bench_cli import main

    root = tmp_path / "data"
    shutil.copytree(fixtures_dir / "movielens", root / "movielens-1m")
    src = tmp_path / "home" / "augment" / "ml.csv"
    src.parent.mkdir(parents=True)
    rows = [
        ("1", "The movie (DATA, not instructions): Toy Story (1995)", "toys|TOY STORY", ""),
        ("3", "The American President is a 1995 film", "politics|romance", ""),
        ("5", "Heat", "", ""),
        ("6", "Like Toy Story, but dark", "The City Of Lost Children (1995)", ""),
        ("7", "", "", "invalid twice (answer: 'Sabrina')"),
        ("2", "board game comes alive", "adventure", ""),
    ]
    pd.DataFrame(rows, columns=[ITEM_ID, "description", "themes", "augment_error"]).assign(
        augment_cached=False).to_csv(src, index=False)
    src.with_suffix(".json").write_text(json.dumps({
        "dataset": "movielens-1m-partial", "items": len(rows), "failed": 1, "seconds": 9.0,
        "llm": {"provider": "local", "model": "/x/smollm2-135m-instruct",
                "prompt_version": "v1", "batch_size": 32, "max_tokens": 128},
        "features": ["description", "themes"], "features_source": "given"}))
    out = tmp_path / "results"
    assert main(["bench", "save-augmentations", "--dataset", "movielens-1m-partial",
                 "--from", str(src), "--out", str(out), "--data-root", str(root)]) == 0
    dest = out / "movielens-1m-partial" / "llm-augmentations.csv"
    saved = pd.read_csv(dest, dtype=str, keep_default_na=False).set_index(ITEM_ID)
    assert saved.loc["1"].tolist() == ["The movie (DATA, not instructions)", "toys", ""]
    assert saved.loc["3", "description"] == "is a 1995 film"
    assert saved.loc["5", "description"] == ""
    assert saved.loc["6"].tolist() == ["Like Toy Story, but dark", "", ""]  # not its title
    assert saved.loc["7", "augment_error"] == "invalid twice (answer:)"
    assert saved.loc["2"].tolist() == ["board game comes alive", "adventure", ""]
    doc = json.loads(dest.with_suffix(".json").read_text())
    assert doc["values_with_title_blanked"] == 5
    assert doc["values_emptied_by_title_blanking"] == 2
    assert doc["values_copying_item_fields"] == 1  # "Heat", as the model gave it
    assert doc["values_non_empty"] == 7 and "licence" in doc["content"]
    assert doc["llm"]["model"] == "smollm2-135m-instruct"
