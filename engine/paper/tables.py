"""Index tensors of the paper's DeepFM path, derived from :class:`engine.training_data.
TrainingData` (one source of the old-item rows)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from engine.paper.deepfm import FieldLayout
from engine.paper.fields import FieldEncoder
from engine.schema import ITEM_ID, LABEL, TARGET_ID
from engine.training_data import TrainingData


@dataclass
class TrainingTables:
    """Index tensors shared by DeepFM pretraining, meta-training and the paper's baselines.

    Attributes:
        target_table: ``[N_targets, S_t]`` field indices of every target.
        item_table: ``[N_items, S_i]`` non-ID field indices of every item (dataset order).
        item_pos: item id -> row in ``item_table`` / ``texts``.
        target_pos: target id -> row in ``target_table``.
        old_pos: old item id -> row in the backbone's ``item_id`` table.
    """

    target_table: torch.Tensor
    item_table: torch.Tensor
    item_pos: pd.Series
    target_pos: pd.Series
    old_pos: pd.Series

    def rows(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(item row, target row, label) arrays for an interaction frame."""
        return (
            self.item_pos.loc[frame[ITEM_ID].astype(str)].to_numpy(),
            self.target_pos.loc[frame[TARGET_ID].astype(str)].to_numpy(),
            frame[LABEL].to_numpy(dtype=np.float32),
        )


def make_tables(data: TrainingData, item_fields: FieldEncoder,
                target_fields: FieldEncoder) -> TrainingTables:
    """The DeepFM index tensors of ``data`` (positions from the one training-data object)."""
    return TrainingTables(
        target_table=target_fields.transform(data.dataset.targets),
        item_table=item_fields.transform(data.dataset.items),
        item_pos=data.item_pos,
        target_pos=data.target_pos,
        old_pos=data.old_pos,
    )


def layout(enc: FieldEncoder) -> FieldLayout:
    """The backbone layout of a fitted field encoder."""
    return FieldLayout(tuple(enc.vocab_sizes()), tuple(enc.field_slots()))
