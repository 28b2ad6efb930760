"""One training-data object: a dataset and its split -> the old-item tables every trainer uses.

The workspace build, the benchmark and the speed bench all read the old items' positives, row
positions and texts from :class:`TrainingData`, so "which rows are old-item positives" is
written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import sparse

from engine.data.base import Dataset
from engine.data.protocol import Split
from engine.schema import DISEASE, ITEM_ID, LABEL, MOVIE, ORDER, TARGET_ID
from engine.text.serialize import serialize_item


def positions(ids: pd.Series | list) -> pd.Series:
    """id (as str) -> row position."""
    keys = pd.Index([str(i) for i in ids])
    return pd.Series(np.arange(len(keys)), index=keys)


@dataclass
class TrainingData:
    """A dataset and its protocol split, with the old-item tables derived from them.

    Attributes:
        dataset, split: the data (old items = ``split.old_items``).
    """

    dataset: Dataset
    split: Split
    _texts: dict = field(default_factory=dict, repr=False)

    @cached_property
    def old_ids(self) -> list[str]:
        return [str(i) for i in self.split.old_items]

    @cached_property
    def target_pos(self) -> pd.Series:
        """target id -> row in ``dataset.targets``."""
        return positions(self.dataset.targets[TARGET_ID])

    @cached_property
    def item_pos(self) -> pd.Series:
        """item id -> row in ``dataset.items``."""
        return positions(self.dataset.items[ITEM_ID])

    @cached_property
    def old_pos(self) -> pd.Series:
        """old item id -> row in every old-item table (``split.old_items`` order)."""
        return positions(self.old_ids)

    @property
    def n_targets(self) -> int:
        return len(self.dataset.targets)

    @cached_property
    def train_rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``split.train`` as (old-item row, target row, label float32) arrays."""
        train = self.split.train
        return (self.old_pos.loc[train[ITEM_ID].astype(str)].to_numpy(),
                self.target_pos.loc[train[TARGET_ID].astype(str)].to_numpy(),
                train[LABEL].to_numpy(dtype=np.float32))

    @cached_property
    def old_positives_sparse(self) -> sparse.csr_matrix:
        """``[K_old, N_targets]`` float32 CSR, 1 where an old item's row is a positive."""
        o, t, y = self.train_rows
        pos = y > 0
        x = sparse.csr_matrix((np.ones(int(pos.sum()), np.float32), (o[pos], t[pos])),
                              shape=(len(self.old_ids), self.n_targets))
        x.sum_duplicates()
        x.data[:] = 1.0
        return x

    @cached_property
    def old_times_sparse(self) -> sparse.csr_matrix:
        """``[K_old, N_targets]`` float64 CSR: the time of each old-item positive in years
        (:func:`order_years`; NaN where the dataset does not know it), the same pattern as
        :attr:`old_positives_sparse` (a duplicated pair keeps its earliest time)."""
        train = self.split.train
        o, t, y = self.train_rows
        pos = y > 0
        when = order_years(self.dataset.domain, train[ORDER].to_numpy()[pos])
        frame = pd.DataFrame({"o": o[pos], "t": t[pos], "w": when})
        frame = frame.groupby(["o", "t"], as_index=False, sort=True)["w"].min()
        return sparse.csr_matrix((frame["w"].to_numpy(np.float64),
                                  (frame["o"].to_numpy(), frame["t"].to_numpy())),
                                 shape=(len(self.old_ids), self.n_targets))

    def old_positives(self) -> np.ndarray:
        """``[K_old, N_targets]`` float32 dense (a fresh copy)."""
        return self.old_positives_sparse.toarray()

    def popularity(self) -> np.ndarray:
        """``[N_targets]`` float64: each target's number of old-item positives."""
        return np.asarray(self.old_positives_sparse.sum(0), np.float64).ravel()

    def old_item_rows(self) -> np.ndarray:
        """Rows of the old items in ``dataset.items`` ``[K_old]``."""
        return self.item_pos.loc[self.old_ids].to_numpy(copy=True)

    def texts(self, augmented: pd.DataFrame | None = None,
              descriptors: Mapping[str, str] | None = None) -> list[str]:
        """Eq. 2 for every item of the dataset, in dataset order (optionally augmented)."""
        return item_texts(self.dataset, augmented, descriptors)

    def old_texts(self) -> list[str]:
        """Eq. 2 of the old items' raw features, in ``split.old_items`` order."""
        if "old" not in self._texts:
            records = self.dataset.items.to_dict("records")
            self._texts["old"] = [serialize_item(records[i], self.dataset.item_features)
                                  for i in self.old_item_rows()]
        return self._texts["old"]


def order_years(domain: str, order: np.ndarray) -> np.ndarray:
    """An interaction's ``order`` as a time in years (float64): DisGeNET's ``YearInitial``
    (NaN for an association without one), MovieLens' rating timestamp as a fractional year;
    other domains keep the order value."""
    order = np.asarray(order)
    if domain == DISEASE:
        from engine.data.disgenet import MISSING_YEAR_KEY, ORDER_GENE_FACTOR

        year = (order // ORDER_GENE_FACTOR).astype(np.float64)
        return np.where(year >= MISSING_YEAR_KEY, np.nan, year)
    if domain == MOVIE:
        return 1970.0 + order.astype(np.float64) / (365.25 * 86400)
    return order.astype(np.float64)


def item_texts(
    dataset: Dataset,
    augmented: pd.DataFrame | None = None,
    descriptors: Mapping[str, str] | None = None,
) -> list[str]:
    """Eq. 2 for every item of the dataset, in dataset order (optionally with augmentations)."""
    aug = augmented.set_index(ITEM_ID) if augmented is not None else None
    out = []
    for rec in dataset.items.to_dict("records"):
        extra = None
        if aug is not None and rec[ITEM_ID] in aug.index:
            extra = {k: v for k, v in aug.loc[rec[ITEM_ID]].items() if isinstance(v, str) and v}
        out.append(serialize_item(rec, dataset.item_features, extra, descriptors))
    return out
