"""FAISS index of established items' aligned embeddings (cosine = inner product on unit vectors)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

INDEX_KINDS = ("flat", "hnsw")


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


@dataclass
class ItemIndex:
    """Nearest-neighbour search over item vectors, keyed by item id.

    Args:
        index: the FAISS index (inner product metric).
        ids: item id per index row.
    """

    index: faiss.Index
    ids: list[str]

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        ids: list[str],
        kind: str = "flat",
        hnsw_m: int = 32,
        ef_search: int = 64,
    ) -> ItemIndex:
        """Index ``vectors [N, D]``; ``kind`` is ``flat`` (exact) or ``hnsw`` (approximate)."""
        if kind not in INDEX_KINDS:
            raise ValueError(f"index kind must be one of {INDEX_KINDS}, got {kind!r}")
        if len(vectors) != len(ids):
            raise ValueError("ItemIndex.build: vectors and ids differ in length")
        vecs = _unit(vectors)
        d = vecs.shape[1]
        if kind == "flat":
            index: faiss.Index = faiss.IndexFlatIP(d)
        else:
            index = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efSearch = ef_search
        index.add(vecs)
        return cls(index=index, ids=list(ids))

    def search(self, query: np.ndarray, k: int = 5) -> list[list[tuple[str, float]]]:
        """Top-k (item id, cosine similarity) for each query row of ``[Q, D]`` (or one ``[D]``)."""
        q = _unit(np.atleast_2d(query))
        k = min(k, len(self.ids))
        if k <= 0:
            return [[] for _ in range(len(q))]
        sims, rows = self.index.search(q, k)
        return [
            [(self.ids[r], float(s)) for r, s in zip(rr, ss, strict=True) if r >= 0]
            for rr, ss in zip(rows, sims, strict=True)
        ]

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, ids: list[str]) -> ItemIndex:
        index = faiss.read_index(str(path))
        if index.ntotal != len(ids):
            raise ValueError(f"{path}: index has {index.ntotal} rows but {len(ids)} ids given")
        return cls(index=index, ids=list(ids))
