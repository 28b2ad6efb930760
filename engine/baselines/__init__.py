"""Methods compared by ``emerflow bench`` (protocol.md): one registry, one small interface.

``METHODS[name](**settings)`` builds a method; see :class:`engine.baselines.base.Method` for
``fit(ctx) / start() / update(state, batch, seen) / score(state, rows)``.
"""

from __future__ import annotations

from engine.baselines.base import (
    BenchContext,
    EmbeddingMethod,
    Method,
    MethodNotAvailable,
    Rows,
    refine_through,
)
from engine.baselines.counting import ItemMean, Popularity
from engine.baselines.cvar import CVAR
from engine.baselines.embedding import (
    Backbone,
    EmerFlow,
    EmerFlowAugOnly,
    EmerFlowNoLLM,
    EmerFlowNoWarm,
    MetaEmb,
)
from engine.baselines.mwuf import MWUF

#: name -> method class, in the order results are tabulated.
METHODS: dict[str, type[Method]] = {
    cls.name: cls
    for cls in (Popularity, ItemMean, Backbone, MetaEmb, CVAR, MWUF, EmerFlowNoLLM,
                EmerFlowNoWarm, EmerFlow, EmerFlowAugOnly)
}

__all__ = ["METHODS", "BenchContext", "EmbeddingMethod", "Method", "MethodNotAvailable", "Rows",
           "refine_through"]
