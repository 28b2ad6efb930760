"""Encoding of entity features into padded index tensors for the backbone's embedding tables.

Each backbone field (a ``FeatureSpec`` with ``backbone=True``) becomes ``L`` index slots:
1 for categorical and bucketed numeric features, ``max_multi`` for multi-valued ones.
Index 0 is padding / unknown and embeds to zero; a field's values are mean-pooled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from engine.schema import MULTI_SEP, FeatureSpec


@dataclass
class FieldEncoder:
    """Vocabularies for the backbone fields of one entity type (items or targets).

    Attributes:
        specs: the backbone feature specs, in field order.
        vocabs: per field, value -> index in ``1..len(vocab)`` (0 = pad/unknown).
        edges: per numeric field, the quantile bucket edges.
        max_multi: slots per multi-valued field.
    """

    specs: list[FeatureSpec]
    vocabs: dict[str, dict[str, int]]
    edges: dict[str, list[float]]
    max_multi: int

    @classmethod
    def fit(
        cls, frame: pd.DataFrame, specs: Sequence[FeatureSpec], buckets: int, max_multi: int
    ) -> FieldEncoder:
        """Learn vocabularies (and numeric bucket edges) from ``frame``."""
        specs = [s for s in specs if s.backbone]
        vocabs: dict[str, dict[str, int]] = {}
        edges: dict[str, list[float]] = {}
        for s in specs:
            col = frame[s.name]
            if s.kind == "numeric":
                vals = pd.to_numeric(col, errors="coerce").dropna().to_numpy(dtype=float)
                qs = (
                    np.unique(np.quantile(vals, np.linspace(0, 1, buckets + 1)[1:-1]))
                    if len(vals)
                    else np.array([])
                )
                edges[s.name] = qs.tolist()
                vocabs[s.name] = {str(i): i + 1 for i in range(len(qs) + 1)}
            elif s.kind == "multi":
                values = sorted(
                    {v for cell in col.dropna().astype(str) for v in _split_multi(cell)}
                )
                vocabs[s.name] = {v: i + 1 for i, v in enumerate(values)}
            else:
                values = sorted(set(col.dropna().astype(str)) - {""})
                vocabs[s.name] = {v: i + 1 for i, v in enumerate(values)}
        return cls(specs=specs, vocabs=vocabs, edges=edges, max_multi=max_multi)

    def field_slots(self) -> list[int]:
        """Number of index slots per field."""
        return [self.max_multi if s.kind == "multi" else 1 for s in self.specs]

    def vocab_sizes(self) -> list[int]:
        """Embedding rows per field, the padding row included."""
        return [len(self.vocabs[s.name]) + 1 for s in self.specs]

    def transform(self, frame: pd.DataFrame | Sequence[Mapping[str, object]]) -> torch.Tensor:
        """Encode rows to a LongTensor ``[N, sum(field_slots)]`` of per-field local indices."""
        if not isinstance(frame, pd.DataFrame):
            frame = pd.DataFrame(list(frame))
        n = len(frame)
        blocks: list[np.ndarray] = []
        for s, slots in zip(self.specs, self.field_slots(), strict=True):
            vocab = self.vocabs[s.name]
            col = frame[s.name] if s.name in frame.columns else pd.Series([None] * n)
            if s.kind == "numeric":
                vals = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
                idx = np.searchsorted(np.asarray(self.edges[s.name]), vals, side="right") + 1
                idx = np.where(np.isnan(vals), 0, idx)
                blocks.append(idx.reshape(n, 1))
            elif s.kind == "multi":
                block = np.zeros((n, slots), dtype=np.int64)
                for r, cell in enumerate(col.tolist()):
                    ids = [vocab[v] for v in _split_multi(cell) if v in vocab][:slots]
                    block[r, : len(ids)] = ids
                blocks.append(block)
            else:
                mapped = col.astype("string").map(vocab).astype("Float64").fillna(0)
                blocks.append(mapped.to_numpy(dtype=np.int64).reshape(n, 1))
        if not blocks:
            return torch.zeros((n, 0), dtype=torch.long)
        return torch.from_numpy(np.concatenate(blocks, axis=1).astype(np.int64))

    def to_dict(self) -> dict:
        return {
            "specs": [
                {"name": s.name, "kind": s.kind, "descriptor": s.descriptor} for s in self.specs
            ],
            "vocabs": self.vocabs,
            "edges": self.edges,
            "max_multi": self.max_multi,
        }

    @classmethod
    def from_dict(cls, data: dict) -> FieldEncoder:
        specs = [
            FeatureSpec(name=s["name"], kind=s["kind"], descriptor=s["descriptor"])
            for s in data["specs"]
        ]
        return cls(
            specs=specs,
            vocabs=data["vocabs"],
            edges=data["edges"],
            max_multi=int(data["max_multi"]),
        )


def _split_multi(cell: object) -> list[str]:
    if cell is None or (isinstance(cell, float) and cell != cell):
        return []
    if isinstance(cell, (list, tuple)):
        return [str(v).strip() for v in cell if str(v).strip()]
    return [v.strip() for v in str(cell).split(MULTI_SEP) if v.strip()]
