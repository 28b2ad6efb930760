"""The one registry of backbone recommenders.

Every backbone takes ``(target_layout, item_layout, n_items, config)`` and exposes
``forward``, ``item_vectors``, ``precompute_targets`` and ``score_all`` like ``DeepFM``.
"""

from __future__ import annotations

from engine.config import BackboneConfig
from engine.paper.deepfm import DeepFM, FieldLayout

BACKBONES: dict[str, type[DeepFM]] = {"deepfm": DeepFM}


def build_backbone(
    config: BackboneConfig, target_layout: FieldLayout, item_layout: FieldLayout, n_items: int
) -> DeepFM:
    """Instantiate the backbone named in ``config`` (ValueError if unknown)."""
    try:
        cls = BACKBONES[config.name]
    except KeyError:
        raise ValueError(
            f"unknown backbone {config.name!r}; registered: {sorted(BACKBONES)}"
        ) from None
    return cls(target_layout, item_layout, n_items, config)
