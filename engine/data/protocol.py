"""The phase protocol: old/new item split, negative sampling, phase batches and test sets.

See ``shared/specs/protocol.md``. An item with more than ``old_min_exclusive`` interactions is
*old* (backbone pretraining rows, phase ``train``); an item with ``new_min..new_max``
interactions is *new*: its interactions sorted by ``ORDER`` give ``k`` rows per update phase
(I, II, III) and the rest is its test set. Items with fewer than ``new_min`` interactions are
not used. For positives-only data (DisGeNET) the counts, the order and the phase batches are
over positives, and each positive brings one sampled negative into the same frame.

Every frame carries the columns ``item_id, target_id, label, order, phase`` and :data:`RANK`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from engine.data.base import Dataset
from engine.schema import ITEM_ID, LABEL, ORDER, PHASE, TARGET_ID, UPDATE_PHASES

#: 0-based position of the row's positive (or, for rated data, of the row itself) in its
#: item's arrival order; a sampled negative carries the rank of the positive it belongs to.
RANK = "rank"
#: Phase label of the old items' backbone rows.
TRAIN_PHASE = "train"
#: Phase label of the held-out rows of new items.
TEST_PHASE = "test"

#: Columns of every frame a :class:`Split` holds, in this order.
SPLIT_COLUMNS: tuple[str, ...] = (ITEM_ID, TARGET_ID, LABEL, ORDER, RANK, PHASE)


@dataclass(frozen=True)
class ProtocolConfig:
    """Parameters of the old/new split and the phases.

    Attributes:
        old_min_exclusive: N; an item with strictly more than N interactions (positives for
            positives-only data) is old.
        new_min: fewest interactions of a new item.
        new_max: most interactions of a new item (at most N).
        k: interactions (positives) per phase batch.
        n_phases: number of update phases (at most 3: I, II, III).
        min_test_positives: fewest test interactions (positives) a new item keeps; the config
            is rejected unless ``new_min >= n_phases * k + min_test_positives``.
        seed: seed of negative sampling and of the validation carve-out.
        val_share: share of old items held out by :func:`validation_split`.
    """

    old_min_exclusive: int
    new_min: int
    new_max: int
    k: int
    n_phases: int = 3
    min_test_positives: int = 0
    seed: int = 0
    val_share: float = 0.2

    def __post_init__(self) -> None:
        for name in (
            "old_min_exclusive",
            "new_min",
            "new_max",
            "k",
            "n_phases",
            "min_test_positives",
            "seed",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise ValueError(f"ProtocolConfig.{name} must be an integer, got {value!r}")
        if self.k < 1:
            raise ValueError(f"ProtocolConfig.k must be >= 1, got {self.k}")
        if not 1 <= self.n_phases <= len(UPDATE_PHASES):
            raise ValueError(
                f"ProtocolConfig.n_phases must be 1..{len(UPDATE_PHASES)}, got {self.n_phases}"
            )
        if self.min_test_positives < 0 or self.seed < 0:
            raise ValueError("ProtocolConfig.min_test_positives and seed must be >= 0")
        if self.new_min < self.n_phases * self.k + self.min_test_positives:
            raise ValueError(
                f"ProtocolConfig.new_min ({self.new_min}) must be >= n_phases * k + "
                f"min_test_positives ({self.n_phases * self.k + self.min_test_positives})"
            )
        if not self.new_min <= self.new_max <= self.old_min_exclusive:
            raise ValueError(
                "ProtocolConfig needs new_min <= new_max <= old_min_exclusive, got "
                f"{self.new_min}, {self.new_max}, {self.old_min_exclusive}"
            )
        if not 0.0 < float(self.val_share) < 1.0:
            raise ValueError(f"ProtocolConfig.val_share must be in (0, 1), got {self.val_share}")

    @property
    def phase_names(self) -> tuple[str, ...]:
        """The update phases used, e.g. ``("I", "II", "III")``."""
        return UPDATE_PHASES[: self.n_phases]

    def with_seed(self, seed: int) -> ProtocolConfig:
        """A copy with another seed."""
        return replace(self, seed=seed)


#: CVAR's MovieLens split: old > 200 ratings, new 60..200, K = 20 per phase.
MOVIELENS_PROTOCOL = ProtocolConfig(old_min_exclusive=200, new_min=60, new_max=200, k=20)
#: DisGeNET split: old > 40 associations, new 16..40, K = 4 positives per phase, test >= 4.
DISGENET_PROTOCOL = ProtocolConfig(
    old_min_exclusive=40, new_min=16, new_max=40, k=4, min_test_positives=4
)


@dataclass
class Split:
    """The result of :func:`split_dataset` (or :func:`validation_split`).

    Attributes:
        old_items: old item ids (sorted).
        new_items: new item ids (sorted).
        train: rows of old items (with sampled negatives for positives-only data), phase ``train``.
        phases: ``"I"``/``"II"``/``"III"`` -> the new items' batch of that phase.
        test: the new items' held-out rows (phase ``test``).
        config: the protocol parameters used.
        dataset: name of the dataset split.
    """

    old_items: list[str]
    new_items: list[str]
    train: pd.DataFrame
    phases: dict[str, pd.DataFrame]
    test: pd.DataFrame
    config: ProtocolConfig | None = None
    dataset: str = ""

    def new_rows(self) -> pd.DataFrame:
        """Every row of the new items: the phase batches followed by the test rows."""
        return pd.concat([*self.phases.values(), self.test], ignore_index=True)

    def summary(self) -> dict[str, int]:
        """Counts for result files: old_items, new_items, train_rows, test_rows and a few more.

        ``*_positives`` count label-1 rows; ``new_rows`` counts phase and test rows together.
        """
        phase_rows = sum(len(frame) for frame in self.phases.values())
        return {
            "old_items": len(self.old_items),
            "new_items": len(self.new_items),
            "train_rows": len(self.train),
            "test_rows": len(self.test),
            "phase_rows": phase_rows,
            "new_rows": phase_rows + len(self.test),
            "train_positives": int(self.train[LABEL].sum()),
            "new_positives": int(
                sum(f[LABEL].sum() for f in self.phases.values()) + self.test[LABEL].sum()
            ),
            "test_positives": int(self.test[LABEL].sum()),
        }


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sort-based; faster than hashing for large int64 arrays)."""
    ordered = np.sort(values)
    if ordered.size == 0:
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def _contains(sorted_values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Whether each query occurs in ``sorted_values`` (binary search)."""
    if sorted_values.size == 0:
        return np.zeros(queries.shape, dtype=bool)
    index = np.minimum(np.searchsorted(sorted_values, queries), sorted_values.size - 1)
    return sorted_values[index] == queries


def sample_negatives(
    item_codes: np.ndarray, target_codes: np.ndarray, n_targets: int, rng: np.random.Generator
) -> np.ndarray:
    """One negative target per positive row, drawn uniformly without replacement per item.

    A negative of item ``i`` is never a target of any positive of ``i`` (in the whole input),
    and the negatives of one item are distinct. Vectorized rejection sampling: all pending rows
    draw at once, rejected draws retry.

    Args:
        item_codes: integer item code of each positive row.
        target_codes: integer target code (``0..n_targets-1``) of each positive row.
        n_targets: size of the target universe.
        rng: the random generator (its state decides every draw).

    Raises:
        ValueError: an item has more positives than non-associated targets.
    """
    item_codes = np.asarray(item_codes, dtype=np.int64)
    target_codes = np.asarray(target_codes, dtype=np.int64)
    if item_codes.shape != target_codes.shape:
        raise ValueError("item_codes and target_codes must have the same shape")
    if item_codes.size == 0:
        return np.empty(0, dtype=np.int64)
    pos_keys = _sorted_unique(item_codes * n_targets + target_codes)
    n_pos_distinct = np.bincount(pos_keys // n_targets)
    n_rows = np.bincount(item_codes, minlength=n_pos_distinct.size)
    if np.any(n_rows[: n_pos_distinct.size] > n_targets - n_pos_distinct):
        worst = int(np.argmax(n_rows[: n_pos_distinct.size] - (n_targets - n_pos_distinct)))
        raise ValueError(
            f"item code {worst} has {int(n_rows[worst])} positives but only "
            f"{n_targets - int(n_pos_distinct[worst])} targets left to sample negatives from"
        )
    negatives = np.full(item_codes.size, -1, dtype=np.int64)
    forbidden = pos_keys  # sorted keys of positives and of negatives accepted so far
    pending = np.arange(item_codes.size)
    while pending.size:
        cand = rng.integers(0, n_targets, size=pending.size)
        keys = item_codes[pending] * n_targets + cand
        order = np.argsort(keys, kind="stable")
        first = np.ones(keys.size, dtype=bool)
        first[order[1:]] = keys[order[1:]] != keys[order[:-1]]
        ok = first & ~_contains(forbidden, keys)
        negatives[pending[ok]] = cand[ok]
        forbidden = np.sort(np.concatenate([forbidden, keys[ok]]))
        pending = pending[~ok]
    return negatives


def _ordered(interactions: pd.DataFrame) -> pd.DataFrame:
    """Core columns sorted by item, then ORDER, then file position; with :data:`RANK`."""
    frame = interactions[[ITEM_ID, TARGET_ID, LABEL, ORDER]].copy()
    frame["_pos"] = np.arange(len(frame))
    frame = frame.sort_values([ITEM_ID, ORDER, "_pos"], kind="stable").drop(columns="_pos")
    frame[RANK] = frame.groupby(ITEM_ID, sort=False).cumcount().astype("int64")
    return frame.reset_index(drop=True)


def _with_negatives(frame: pd.DataFrame, targets: pd.Series, seed: int) -> pd.DataFrame:
    """Positives plus one sampled negative each, sorted by item, rank, positive first."""
    universe = pd.Index(pd.unique(targets.astype(str)))
    target_codes = universe.get_indexer(frame[TARGET_ID])
    if (target_codes < 0).any():
        missing = frame[TARGET_ID].iloc[int(np.flatnonzero(target_codes < 0)[0])]
        raise ValueError(f"interaction target {missing!r} is not in the targets table")
    item_codes, _ = pd.factorize(frame[ITEM_ID])
    rng = np.random.default_rng(seed)
    neg_codes = sample_negatives(item_codes, target_codes, len(universe), rng)
    negatives = frame.copy()
    negatives[TARGET_ID] = universe[neg_codes].to_numpy()
    negatives[LABEL] = 0
    both = pd.concat([frame, negatives], ignore_index=True)
    both[LABEL] = both[LABEL].astype("int8")
    both = both.sort_values([ITEM_ID, RANK, LABEL], ascending=[True, True, False], kind="stable")
    return both.reset_index(drop=True)


def _finish(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the :data:`SPLIT_COLUMNS` in order and a fresh index."""
    return frame.loc[:, list(SPLIT_COLUMNS)].reset_index(drop=True)


def _phase_frames(
    rows: pd.DataFrame, cfg: ProtocolConfig, cap: int | None = None
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Phase batches and test rows of ``rows`` by :data:`RANK` (test ranks below ``cap``)."""
    rank = rows[RANK].to_numpy()
    phases: dict[str, pd.DataFrame] = {}
    for index, phase in enumerate(cfg.phase_names):
        mask = (rank >= index * cfg.k) & (rank < (index + 1) * cfg.k)
        phases[phase] = _finish(rows[mask].assign(**{PHASE: phase}))
    test_mask = rank >= cfg.n_phases * cfg.k
    if cap is not None:
        test_mask &= rank < cap
    return phases, _finish(rows[test_mask].assign(**{PHASE: TEST_PHASE}))


def split_dataset(ds: Dataset, cfg: ProtocolConfig) -> Split:
    """Split ``ds`` into old items (train), new items' phase batches and test sets.

    Items are counted by interactions, or by positives when ``ds.positives_only``; ties in
    ``ORDER`` keep the file order. For positives-only data every positive of the whole file
    gets one negative (see :func:`sample_negatives`, seeded by ``cfg.seed``), drawn in a
    canonical order so that negatives do not depend on N, K or the methods compared.

    Raises:
        ValueError: positives-only data holding a label 0, or an unknown target.
    """
    interactions = ds.interactions
    if ds.positives_only and len(interactions) and (interactions[LABEL] != 1).any():
        raise ValueError(f"Dataset {ds.name!r} is positives_only but holds label-0 rows")
    rows = _ordered(interactions)
    counts = rows.groupby(ITEM_ID, sort=True).size()
    old_items = counts.index[counts > cfg.old_min_exclusive].astype(str).tolist()
    new_items = counts.index[(counts >= cfg.new_min) & (counts <= cfg.new_max)].astype(str).tolist()
    if ds.positives_only:
        rows = _with_negatives(rows, ds.targets[TARGET_ID], cfg.seed)
    is_old = rows[ITEM_ID].isin(old_items).to_numpy()
    is_new = rows[ITEM_ID].isin(new_items).to_numpy()
    train = _finish(rows[is_old].assign(**{PHASE: TRAIN_PHASE}))
    phases, test = _phase_frames(rows[is_new], cfg)
    return Split(
        old_items=old_items,
        new_items=new_items,
        train=train,
        phases=phases,
        test=test,
        config=cfg,
        dataset=ds.name,
    )


def small_item_split(ds: Dataset, cfg: ProtocolConfig) -> Split:
    """A second tuning split: items that are neither old nor new play the new items.

    protocol.md allows items below the new-item minimum as validation tasks (never as items a
    new item is scored against): they resemble new items more than held-out old items do.
    Items with ``lo .. cfg.new_min - 1`` interactions get ``cfg.n_phases - 1`` phase batches of
    ``cfg.k`` and at least ``t = max(min_test_positives, k // 4, 1)`` test rows, where
    ``lo = (n_phases - 1) * k + t``; the old items, their rows and the negatives are those of
    :func:`split_dataset` (the same seed). New items' rows are never touched. The returned
    split carries ``cfg`` itself (methods that simulate phases on old items read it).

    Raises:
        ValueError: a protocol with a single phase (no smaller items fit a phase batch).
    """
    if cfg.n_phases < 2:
        raise ValueError("small_item_split needs a protocol with at least 2 update phases")
    t = max(cfg.min_test_positives, cfg.k // 4, 1)
    phases = cfg.n_phases - 1
    lo = phases * cfg.k + t
    if lo > cfg.new_min - 1:
        raise ValueError(f"small_item_split: no item size fits {phases} phases of {cfg.k} and "
                         f"{t} test rows below new_min = {cfg.new_min}")
    small = replace(cfg, new_min=lo, new_max=cfg.new_min - 1, n_phases=phases,
                    min_test_positives=t)
    out = split_dataset(ds, small)
    return replace(out, config=cfg,
                   dataset=f"{out.dataset}/small-items" if out.dataset else "small-items")


def validation_split(split: Split, cfg: ProtocolConfig) -> Split:
    """A tuning split carved from OLD items only; new items' rows are never touched.

    A share ``cfg.val_share`` of the old items (chosen with ``cfg.seed``) plays the new items:
    their first ``k`` positives per phase become phase batches and the following ones, up to
    rank ``new_max`` (so that held-out items look like new items, not like popular old ones),
    their test set; later rows are dropped. The remaining old items form the training rows.

    Raises:
        ValueError: fewer than two old items.
    """
    old = sorted(split.old_items)
    if len(old) < 2:
        raise ValueError(f"validation_split needs at least 2 old items, got {len(old)}")
    n_val = min(len(old) - 1, max(1, int(round(cfg.val_share * len(old)))))
    rng = np.random.default_rng(cfg.seed)
    held = sorted(rng.choice(np.array(old, dtype=object), size=n_val, replace=False).tolist())
    is_held = split.train[ITEM_ID].isin(held).to_numpy()
    train = _finish(split.train[~is_held].assign(**{PHASE: TRAIN_PHASE}))
    phases, test = _phase_frames(split.train[is_held], cfg, cap=cfg.new_max)
    return Split(
        old_items=[item for item in old if item not in set(held)],
        new_items=held,
        train=train,
        phases=phases,
        test=test,
        config=cfg,
        dataset=f"{split.dataset}/validation" if split.dataset else "validation",
    )
