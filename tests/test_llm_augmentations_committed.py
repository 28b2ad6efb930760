"""The committed LLM augmentations (``results/<dataset>/llm-augmentations.csv``, issue 16
item 5): every item of the split has its answer, and the sidecar names the provider, model and
prompt version that produced it; the MovieLens file carries no film title."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from engine.schema import ITEM_ID

ROOT = Path(__file__).resolve().parents[1]


def _committed(name: str, shared_data: Path) -> tuple[pd.DataFrame, dict, object, Path]:
    """(the committed frame indexed by item id, its sidecar, the dataset, the CSV path), after
    checking that it has one row for each old and new item of the split and names its LLM."""
    from engine.data.protocol import split_dataset
    from engine.data.registry import get_dataset_entry

    path = ROOT / "results" / name / "llm-augmentations.csv"
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["llm"]["model"] and meta["llm"]["prompt_version"] and meta["llm"]["provider"]
    assert meta["command"].startswith("EMERFLOW_LLM_PROVIDER=") and meta["dataset"] == name
    entry = get_dataset_entry(name)
    dataset = entry.load(shared_data)
    split = split_dataset(dataset, entry.protocol)
    wanted = {str(i) for i in (*split.old_items, *split.new_items)}
    frame = pd.read_csv(path, dtype=str, keep_default_na=False).set_index(ITEM_ID)
    assert set(frame.index) == wanted and frame.index.is_unique
    assert meta["items"] == len(frame) and path.stat().st_size < 500_000
    values = frame[meta["features"]]
    answered = frame["augment_error"] == ""
    assert (values[~answered] == "").all(axis=1).all()
    assert int((~answered).sum()) == meta["failed"] < len(frame) / 2
    assert int((values != "").to_numpy().sum()) == meta["values_non_empty"]
    return frame, meta, dataset, path


@pytest.mark.needs_data
def test_committed_disgenet_augmentation_covers_the_split(shared_data):
    """results/disgenet-curated/llm-augmentations.csv: one row for every old and new item of
    the split; every answered row has a non-empty value, every unanswered one its error and no
    value (the 135M model's answer was invalid twice for some items: the sidecar counts them);
    provider, model and prompt version recorded."""
    frame, meta, _, _ = _committed("disgenet-curated", shared_data)
    answered = frame["augment_error"] == ""
    assert (frame.loc[answered, meta["features"]] != "").any(axis=1).all()


@pytest.mark.needs_data
def test_committed_movielens_augmentation_covers_the_split_without_titles(shared_data):
    """results/movielens-1m-partial/llm-augmentations.csv: the same coverage and provenance,
    and no item's own title (as in movies.dat, without its year, with its article moved to the
    front) left in its values or error: MovieLens forbids redistribution, so
    ``save-augmentations`` blanked them (the sidecar counts the values); an answered row is
    empty only where that blanking emptied it."""
    from engine.augment.titles import title_pattern, title_variants

    frame, meta, dataset, _ = _committed("movielens-1m-partial", shared_data)
    assert meta["values_with_title_blanked"] >= meta["values_emptied_by_title_blanking"] >= 0
    answered = frame["augment_error"] == ""
    empty_answers = int((frame.loc[answered, meta["features"]] == "").all(axis=1).sum())
    assert empty_answers <= meta["values_emptied_by_title_blanking"]
    items = dataset.items.set_index(ITEM_ID).loc[list(frame.index)]
    columns = [*meta["features"], "augment_error"]
    for item_id, row in frame[columns].iterrows():
        title, name = items.at[item_id, "title"], items.at[item_id, "name"]
        pattern = title_pattern(title_variants(title, name))
        for value in row:
            assert title.lower() not in value.lower(), (item_id, value)
            assert not pattern.search(value), (item_id, value)


@pytest.mark.parametrize("dataset", ["disgenet-curated", "movielens-1m-partial"])
def test_committed_llm_ranker_ran_with_the_committed_ranker_settings(dataset):
    """emerflow-ltr-llm.json and emerflow-ltr.json differ only in the text: the LLM ranker's
    committed run used the settings of the committed emerflow-ltr run (test_ltr_committed ties
    those to engine/tuned.py), so rerun both whenever emerflow-ltr's settings change."""
    folder = ROOT / "results" / dataset
    llm = json.loads((folder / "emerflow-ltr-llm.json").read_text())
    raw = json.loads((folder / "emerflow-ltr.json").read_text())
    assert llm["status"] == "ok" and llm["seeds"] == raw["seeds"] == [0, 1, 2]
    ran, base = llm["config"]["method"], raw["config"]["method"]
    assert {k: ran[k] for k in base if k != "training"} == {
        k: v for k, v in base.items() if k != "training"}
    assert llm["llm"]["source"] == f"results/{dataset}/llm-augmentations.csv"
