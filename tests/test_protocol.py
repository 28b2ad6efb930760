"""Phase protocol: config validation, split on tiny fixtures, negatives, validation split."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.data.base import Dataset
from engine.data.check import check_data, format_report
from engine.data.disgenet import load_disgenet_dir
from engine.data.movielens import load_movielens
from engine.data.protocol import (
    DISGENET_PROTOCOL,
    MOVIELENS_PROTOCOL,
    RANK,
    SPLIT_COLUMNS,
    TEST_PHASE,
    TRAIN_PHASE,
    ProtocolConfig,
    sample_negatives,
    small_item_split,
    split_dataset,
    validation_split,
)
from engine.schema import ITEM_ID, LABEL, ORDER, PHASE, TARGET_ID, UPDATE_PHASES

#: Tiny protocol for the fixtures: old > 6, new 3..6 with K = 1 (movies) / min 1 test positive.
ML_TINY = ProtocolConfig(old_min_exclusive=6, new_min=3, new_max=6, k=1)
DG_TINY = ProtocolConfig(old_min_exclusive=6, new_min=4, new_max=6, k=1, min_test_positives=1)


@pytest.fixture(scope="module")
def ml(fixtures_dir: Path) -> Dataset:
    return load_movielens(fixtures_dir / "movielens")


@pytest.fixture(scope="module")
def dg(fixtures_dir: Path) -> Dataset:
    return load_disgenet_dir(fixtures_dir / "disgenet")


def _keys(frame: pd.DataFrame) -> set[tuple[str, str, int]]:
    return set(zip(frame[ITEM_ID], frame[TARGET_ID], frame[LABEL], strict=True))


def test_presets_match_spec() -> None:
    assert (
        MOVIELENS_PROTOCOL.old_min_exclusive,
        MOVIELENS_PROTOCOL.new_min,
        MOVIELENS_PROTOCOL.new_max,
    ) == (200, 60, 200)
    assert MOVIELENS_PROTOCOL.k == 20 and MOVIELENS_PROTOCOL.n_phases == 3
    assert (
        DISGENET_PROTOCOL.old_min_exclusive,
        DISGENET_PROTOCOL.new_min,
        DISGENET_PROTOCOL.new_max,
    ) == (40, 16, 40)
    assert DISGENET_PROTOCOL.k == 4 and DISGENET_PROTOCOL.min_test_positives == 4
    assert DISGENET_PROTOCOL.phase_names == UPDATE_PHASES
    with pytest.raises(dataclasses.FrozenInstanceError):
        DISGENET_PROTOCOL.k = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"k": 0},
        {"n_phases": 4},
        {"new_min": 10},  # < 3 * 4 + 4
        {"new_max": 15},  # < new_min
        {"new_max": 50},  # > old_min_exclusive
        {"val_share": 0.0},
        {"val_share": 1.0},
        {"seed": -1},
        {"k": 2.5},
        {"min_test_positives": -1},
    ],
)
def test_bad_config_raises(kwargs: dict) -> None:
    base = {"old_min_exclusive": 40, "new_min": 16, "new_max": 40, "k": 4, "min_test_positives": 4}
    with pytest.raises(ValueError):
        ProtocolConfig(**{**base, **kwargs})


def test_movielens_fixture_split(ml: Dataset) -> None:
    split = split_dataset(ml, ML_TINY)
    assert split.old_items == ["1", "2"] and split.new_items == ["3", "4", "5"]
    summary = split.summary()
    assert summary["old_items"] == 2 and summary["train_rows"] == 15
    assert summary["new_items"] == 3 and summary["new_rows"] == 12 and summary["test_rows"] == 3
    assert set(split.phases) == set(UPDATE_PHASES)
    for phase, frame in split.phases.items():
        assert tuple(frame.columns) == SPLIT_COLUMNS and (frame[PHASE] == phase).all()
        assert sorted(frame[ITEM_ID]) == ["3", "4", "5"]  # K = 1 row per item per phase
    assert (split.train[PHASE] == TRAIN_PHASE).all() and (split.test[PHASE] == TEST_PHASE).all()
    # phases follow the timestamp order within each item
    rows = split.new_rows()
    for _, group in rows.groupby(ITEM_ID):
        ordered = group.sort_values(RANK)
        assert ordered[ORDER].is_monotonic_increasing
        assert ordered[PHASE].tolist()[:3] == list(UPDATE_PHASES)
    # the rows of the dataset are preserved, labels included
    original = ml.interactions[ml.interactions[ITEM_ID].isin(["3", "4", "5"])]
    assert sorted(_keys(rows)) == sorted(_keys(original))


def test_disgenet_fixture_split_and_negatives(dg: Dataset) -> None:
    split = split_dataset(dg, DG_TINY)
    assert split.old_items == ["C0002395", "C0006142"]
    assert split.new_items == ["C0019209", "C0036341", "C0751651"]
    positives = _keys(dg.interactions.assign(**{LABEL: 1}))
    frames = [split.train, *split.phases.values(), split.test]
    everything = pd.concat(frames, ignore_index=True)
    negatives = everything[everything[LABEL] == 0]
    # one negative per positive, never a positive of that disease anywhere in the file
    assert len(negatives) == (everything[LABEL] == 1).sum()
    assert not {(i, t, 1) for i, t, _ in _keys(negatives)} & positives
    assert not negatives.duplicated([ITEM_ID, TARGET_ID]).any()
    assert set(negatives[TARGET_ID]) <= set(dg.targets[TARGET_ID])
    # each phase: K positives + their negatives, per new disease
    for frame in split.phases.values():
        counts = frame.groupby([ITEM_ID, LABEL]).size()
        assert (counts == 1).all() and len(counts) == 2 * len(split.new_items)
    assert split.summary()["test_positives"] == (4 + 5 + 6) - 3 * 3
    # a negative shares the phase and rank of its positive
    for frame in frames:
        pairs = frame.groupby([ITEM_ID, RANK])[LABEL].agg(["sum", "size"])
        assert (pairs["sum"] == 1).all() and (pairs["size"] == 2).all()


def test_no_phase_overlap_and_test_disjoint(dg: Dataset, ml: Dataset) -> None:
    for ds, cfg in ((dg, DG_TINY), (ml, ML_TINY)):
        split = split_dataset(ds, cfg)
        seen: set = set()
        for frame in [*split.phases.values(), split.test]:
            keys = _keys(frame)
            assert not keys & seen
            seen |= keys
        assert not set(split.train[ITEM_ID]) & set(split.new_items)
        assert set(split.test[ITEM_ID]) <= set(split.new_items)
        last_phase_rank = split.phases["III"].groupby(ITEM_ID)[RANK].max()
        first_test_rank = split.test.groupby(ITEM_ID)[RANK].min()
        assert (first_test_rank > last_phase_rank.reindex(first_test_rank.index)).all()


def test_negatives_deterministic_under_seed(dg: Dataset) -> None:
    a = split_dataset(dg, DG_TINY)
    b = split_dataset(dg, DG_TINY)
    c = split_dataset(dg, DG_TINY.with_seed(1))
    pd.testing.assert_frame_equal(a.test, b.test)
    pd.testing.assert_frame_equal(a.train, b.train)
    assert not a.train.equals(c.train) or not a.test.equals(c.test)
    # negatives do not depend on N/K: the same positive keeps the same negative
    other = split_dataset(
        dg, ProtocolConfig(old_min_exclusive=4, new_min=2, new_max=4, k=1, n_phases=1)
    )

    def pairs(split) -> dict:
        rows = pd.concat([split.train, *split.phases.values(), split.test])
        return {
            (i, r, lab): t
            for i, r, lab, t in zip(
                rows[ITEM_ID], rows[RANK], rows[LABEL], rows[TARGET_ID], strict=True
            )
        }

    pa, po = pairs(a), pairs(other)
    common = set(pa) & set(po)
    assert common and all(pa[k] == po[k] for k in common)


def test_sample_negatives_vectorized_properties() -> None:
    rng = np.random.default_rng(0)
    items = np.repeat(np.arange(50), 20)
    targets = np.concatenate([rng.choice(40, 20, replace=False) for _ in range(50)])
    neg = sample_negatives(items, targets, 40, np.random.default_rng(3))
    pos_keys = set(zip(items.tolist(), targets.tolist(), strict=True))
    neg_keys = list(zip(items.tolist(), neg.tolist(), strict=True))
    assert not set(neg_keys) & pos_keys and len(set(neg_keys)) == len(neg_keys)
    assert np.array_equal(neg, sample_negatives(items, targets, 40, np.random.default_rng(3)))
    with pytest.raises(ValueError, match="targets left"):
        sample_negatives(np.zeros(3, dtype=int), np.arange(3), 5, np.random.default_rng(0))


def test_positives_only_rejects_zero_labels(dg: Dataset) -> None:
    bad = Dataset(
        name="bad",
        domain="disease",
        items=dg.items,
        targets=dg.targets,
        interactions=dg.interactions.assign(**{LABEL: 0}),
        item_features=[],
        target_features=[],
        positives_only=True,
    )
    with pytest.raises(ValueError, match="positives_only"):
        split_dataset(bad, DG_TINY)


def test_validation_split_uses_old_items_only(dg: Dataset, ml: Dataset) -> None:
    for ds, cfg in ((dg, DG_TINY), (ml, ML_TINY)):
        cfg = ProtocolConfig(**{**cfg.__dict__, "val_share": 0.5})
        split = split_dataset(ds, cfg)
        val = validation_split(split, cfg)
        assert len(val.new_items) == 1 and len(val.old_items) == 1
        assert set(val.new_items) | set(val.old_items) == set(split.old_items)
        used = pd.concat([val.train, *val.phases.values(), val.test])
        assert set(used[ITEM_ID]) <= set(split.old_items)
        assert not set(val.train[ITEM_ID]) & set(val.new_items)
        assert (val.test[RANK] < cfg.new_max).all()
        assert val.dataset.endswith("/validation")
        for frame in val.phases.values():
            assert len(frame) == (2 if ds.positives_only else 1)
        with pytest.raises(ValueError):
            validation_split(val.__class__(["x"], [], val.train, val.phases, val.test), cfg)


@pytest.mark.needs_data
def test_real_validation_split(shared_data: Path) -> None:
    ds = load_disgenet_dir(shared_data)
    split = split_dataset(ds, DISGENET_PROTOCOL)
    val = validation_split(split, DISGENET_PROTOCOL)
    assert len(val.new_items) == round(0.2 * 414) and len(val.old_items) == 414 - len(val.new_items)
    assert not set(val.new_items) & set(split.new_items)
    neg = split.test[split.test[LABEL] == 0]
    pos = set(zip(ds.interactions[ITEM_ID], ds.interactions[TARGET_ID], strict=True))
    assert not set(zip(neg[ITEM_ID], neg[TARGET_ID], strict=True)) & pos


def test_check_data_on_fixture_layout(fixtures_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(fixtures_dir / "movielens", root / "movielens-1m")
    shutil.copytree(fixtures_dir / "disgenet", root, dirs_exist_ok=True)
    rows = check_data(root)
    assert [r["dataset"] for r in rows] == ["movielens-1m", "disgenet-curated"]
    assert all(r["ok"] for r in rows)
    assert rows[0]["rows"]["interactions"] == 29 and rows[1]["rows"]["targets"] == 18
    assert set(rows[1]["files"]) >= {"curated_gene_disease_associations.tsv.gz"}
    assert {"old_items", "new_items", "train_rows", "test_rows"} <= set(rows[0]["split"])
    report = format_report(rows)
    assert "movielens-1m" in report and rows[0]["files"]["movies.dat"] in report
    (root / "movielens-1m" / "users.dat").write_text("1::F::1\n")
    broken = check_data(root)
    assert not broken[0]["ok"] and "users.dat, line 1" in broken[0]["error"]
    assert "ERROR" in format_report(broken)
    assert check_data(tmp_path / "absent") == [] and "No datasets" in format_report([])


@pytest.mark.needs_data
def test_real_small_item_split(shared_data: Path) -> None:
    """The second tuning split: DisGeNET diseases with 12-15 associations play the new items
    (phases I and II of 4 positives, at least 4 test positives) against all 414 old diseases;
    no new disease's row is used, and the split carries the dataset's own protocol."""
    ds = load_disgenet_dir(shared_data)
    split = split_dataset(ds, DISGENET_PROTOCOL)
    small = small_item_split(ds, DISGENET_PROTOCOL)
    assert small.old_items == split.old_items
    assert small.train.equals(split.train)
    assert not set(small.new_items) & (set(split.new_items) | set(split.old_items))
    counts = ds.interactions.groupby(ITEM_ID).size()
    assert set(counts.loc[small.new_items]) <= set(range(12, 16))
    assert len(small.new_items) == int(((counts >= 12) & (counts <= 15)).sum()) == 278
    assert sorted(small.phases) == ["I", "II"]
    test_pos = small.test[small.test[LABEL] == 1].groupby(ITEM_ID).size()
    assert test_pos.min() >= 4 and len(test_pos) == len(small.new_items)
    assert small.config == DISGENET_PROTOCOL
    assert small.dataset.endswith("/small-items")
    with pytest.raises(ValueError, match="at least 2 update phases"):
        small_item_split(ds, ProtocolConfig(**{**DISGENET_PROTOCOL.__dict__, "n_phases": 1}))
