"""``emerflow-kb``: EmerFlow on the raw features plus curated knowledge text.

The text of every item (old and new alike) is its raw features serialized (Eq. 2) followed by
what the ``knowledge`` provider knows about it from curated files only: synonyms from DisGeNET's
``disease_mappings.tsv`` and HPO phenotype names (``hpo/HPO&Orphanet_dis_symp.txt``), see
:func:`engine.augment.knowledge.knowledge_augmentations`. No interaction data is read to build
it, so no label leaks into the text.

The method is :class:`~engine.baselines.embedding.EmerFlow` with one change: its generator
inputs are the encoded ``raw+kb`` texts. Until ``engine.bench.TextVectors`` knows that variant,
:meth:`EmerFlowKB.inputs` encodes the texts itself with the bench's encoder (same cache); once
the bench offers it (``"raw+kb" in ctx.text_vectors.variants``) it is used as is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from engine.augment.knowledge import KB_TEXT_FEATURES, knowledge_augmentations
from engine.baselines.base import BenchContext, MethodNotAvailable
from engine.baselines.embedding import EmerFlow

KB_VARIANT = "raw+kb"


def kb_data_root() -> Path | None:
    """The data root holding the knowledge files (``$EMERFLOW_DATA``), or None."""
    from engine.settings import get_settings

    return get_settings().data


def kb_texts(dataset: Any, data_root: Path | str | None) -> list[str]:
    """Eq. 2 text per item of ``dataset`` (dataset order): raw features + curated knowledge.

    Raises:
        MethodNotAvailable: no knowledge file under the data root, or not a disease dataset.
    """
    from engine.training_data import item_texts

    aug = knowledge_augmentations(dataset, data_root)
    if aug.empty or not aug.drop(columns=["item_id"]).astype(bool).any().any():
        raise MethodNotAvailable(
            "emerflow-kb needs curated knowledge for a disease dataset: set EMERFLOW_DATA to "
            "the folder with disgenet/disease_mappings.tsv and hpo/")
    return item_texts(dataset, aug, KB_TEXT_FEATURES)


class EmerFlowKB(EmerFlow):
    """EmerFlow over raw + curated-knowledge text (no LLM)."""

    name: ClassVar[str] = "emerflow-kb"
    uses_llm: ClassVar[bool] = False
    uses_knowledge: ClassVar[bool] = True
    text_variant: ClassVar[str] = KB_VARIANT

    def inputs(self, ctx: BenchContext) -> tuple[torch.Tensor, torch.Tensor]:
        tv = ctx.text_vectors
        if KB_VARIANT in getattr(tv, "variants", ()):
            vecs = np.asarray(tv(KB_VARIANT), dtype=np.float32)
        else:
            vecs = kb_vectors(ctx)
        return (torch.from_numpy(vecs[ctx.old_item_rows]),
                torch.from_numpy(vecs[ctx.new_item_rows]))


def kb_vectors(ctx: BenchContext, data_root: Path | str | None = None) -> np.ndarray:
    """``[N_items, T]`` vectors of the ``raw+kb`` texts (rows of the split's items filled),
    encoded once per context with the bench's encoder when it exposes one."""
    if "kb_vectors" in ctx._cache:
        return ctx._cache["kb_vectors"]
    texts = kb_texts(ctx.dataset, data_root if data_root is not None else kb_data_root())
    tv = ctx.text_vectors
    if hasattr(tv, "encoder"):
        enc = tv.encoder()
    else:
        from engine.text.encoder import TextEncoder

        enc = TextEncoder(ctx.config.encoder)
    rows = np.unique(np.concatenate([ctx.old_item_rows, ctx.new_item_rows]))
    vecs = np.asarray(enc.encode([texts[i] for i in rows]), dtype=np.float32)
    full = np.zeros((len(texts), vecs.shape[1]), np.float32)
    full[rows] = vecs
    ctx._cache["kb_vectors"] = full
    return full


def phenotype_subset(doc: dict, data_root: Path | str | None,
                     keys: tuple[str, ...] = ("recall@100", "ndcg@100")) -> dict[str, Any]:
    """Ranking metrics of a bench result document on the new items that have HPO phenotypes
    (and on those without), from its ``per_item`` block (seed means per new item).

    Returns ``{"n_items", "n_with_phenotypes", "phases": {phase: {"<key>": mean over items
    with phenotypes, "<key> without phenotypes": ...}}}``.

    Raises:
        ValueError: the document has no ``per_item`` block.
    """
    from engine.knowledge import Knowledge, sources_from_env

    per = doc.get("per_item")
    if not per or "items" not in per:
        raise ValueError("the result document has no per_item block (re-run the bench)")
    src = sources_from_env(data_root) if data_root is not None else sources_from_env()
    annotated = Knowledge.load(src, genes=False).annotated if src is not None else set()
    items = [str(i) for i in per["items"]]
    mask = np.array([i in annotated for i in items], dtype=bool)
    out: dict[str, Any] = {"n_items": len(items), "n_with_phenotypes": int(mask.sum()),
                           "phases": {}}
    for key in keys:
        for phase, values in (per.get(key) or {}).items():
            v = np.array([np.nan if x is None else x for x in values], dtype=float)
            row = out["phases"].setdefault(phase, {})
            row[key] = float(np.nanmean(v[mask])) if mask.any() else float("nan")
            row[f"{key} without phenotypes"] = (float(np.nanmean(v[~mask])) if (~mask).any()
                                                else float("nan"))
    return out


__all__ = ["KB_VARIANT", "EmerFlowKB", "kb_data_root", "kb_texts", "kb_vectors",
           "phenotype_subset"]
