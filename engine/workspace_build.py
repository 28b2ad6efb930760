"""Building a :class:`engine.workspace.Workspace`: encode the established items, train the
configured product ranker on them, index them."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import torch

from engine.config import WorkspaceConfig
from engine.data.base import Dataset
from engine.data.protocol import Split
from engine.index import ItemIndex
from engine.ranking.registry import build_ranker
from engine.text.encoder import TextEncoder
from engine.training_data import TrainingData
from engine.workspace import Workspace

#: progress(stage, fraction 0..1, message)
ProgressFn = Callable[[str, float, str], None]


def _noop(stage: str, frac: float, message: str) -> None:
    return None


def state_digest(*modules: torch.nn.Module) -> str:
    """A short digest of ``state_dict``s (the workspace's model version)."""
    h = hashlib.sha256()
    for m in modules:
        buf = io.BytesIO()
        torch.save(m.state_dict(), buf)
        h.update(buf.getvalue())
    return h.hexdigest()[:12]


def build_workspace(
    dataset: Dataset,
    split: Split,
    config: WorkspaceConfig,
    encoder: TextEncoder,
    progress: ProgressFn | None = None,
) -> Workspace:
    """Encode the established items' texts, train ``config.ranker`` on them, index them.

    Raises:
        engine.ranking.registry.NoEstablishedItemsError: the split has no old items.
    """
    progress = progress or _noop
    timings: dict[str, float] = {}
    torch.manual_seed(config.seed)
    data = TrainingData(dataset, split)
    t0 = time.perf_counter()
    texts = data.old_texts()
    # Only the established items' texts are used (training and the index): new items are
    # entered by the analyst, the rest of the catalog never reaches the model.
    progress("encode", 0.0, f"encoding {len(texts)} established item texts")
    old_vecs = encoder.encode(
        texts, lambda i, n: progress("encode", i / max(n, 1), f"encoded {i}/{n} texts"))
    timings["encode"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ranker = build_ranker(config.ranker, data, np.asarray(old_vecs, np.float32), config,
                          progress)
    timings["ranker"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    index = ItemIndex.build(ranker.item_vectors(), data.old_ids)
    timings["index"] = time.perf_counter() - t0
    progress("index", 1.0, f"indexed {len(data.old_ids)} established items")
    modules = [m for m in vars(ranker).values() if isinstance(m, torch.nn.Module)]
    digest = hashlib.sha256(state_digest(*modules).encode())
    digest.update(repr(sorted(config.to_dict().items())).encode())
    meta = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "split": split.summary(),
        "model_version": digest.hexdigest()[:12],
        "ranker": ranker.kind,
        "encoder": encoder.name,
    }
    return Workspace(config=config, dataset=dataset, split=split, encoder=encoder,
                     ranker=ranker, index=index, meta=meta)
