"""The one Dataset type every loader returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from engine.schema import DOMAINS, ITEM_ID, LABEL, NAME, ORDER, TARGET_ID, FeatureSpec


@dataclass
class Dataset:
    """A catalog of items, the targets they interact with, and the observed interactions.

    Attributes:
        name: dataset name used in every output (e.g. ``movielens-1m-partial``).
        domain: ``movie`` or ``disease``.
        items: one row per item; columns ``item_id`` (str), ``name`` and every item feature.
        targets: one row per target (user or gene); columns ``target_id`` (str), ``name`` and
            every target feature.
        interactions: columns ``item_id``, ``target_id``, ``label`` (0/1) and ``order``
            (arrival order within an item). DisGeNET holds positives only; the protocol samples
            negatives.
        item_features: feature specs of the item table (raw features, no LLM augmentation).
        target_features: feature specs of the target table.
        inputs: file name -> sha256 of every input file read.
        synthetic: True for the generated demo catalogs.
        positives_only: True when ``interactions`` lists positives only (negatives sampled).
    """

    name: str
    domain: str
    items: pd.DataFrame
    targets: pd.DataFrame
    interactions: pd.DataFrame
    item_features: list[FeatureSpec]
    target_features: list[FeatureSpec]
    inputs: dict[str, str] = field(default_factory=dict)
    synthetic: bool = False
    positives_only: bool = False

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ValueError(f"Dataset {self.name!r}: domain must be one of {DOMAINS}")
        for frame, cols, what in (
            (self.items, (ITEM_ID, NAME), "items"),
            (self.targets, ("target_id", NAME), "targets"),
            (self.interactions, (ITEM_ID, TARGET_ID, LABEL, ORDER), "interactions"),
        ):
            missing = [c for c in cols if c not in frame.columns]
            if missing:
                raise ValueError(f"Dataset {self.name!r}: {what} table lacks columns {missing}")
        for spec in self.item_features:
            if spec.name not in self.items.columns:
                raise ValueError(f"Dataset {self.name!r}: item feature {spec.name!r} not in items")
        for spec in self.target_features:
            if spec.name not in self.targets.columns:
                raise ValueError(
                    f"Dataset {self.name!r}: target feature {spec.name!r} not in targets"
                )

    @property
    def label(self) -> str:
        """Name shown in the UI, marking synthetic data as such."""
        return f"{self.name} (synthetic)" if self.synthetic else self.name
