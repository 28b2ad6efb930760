"""Methods compared by ``emerflow bench`` (protocol.md): one registry, one small interface.

``METHODS[name](**settings)`` builds a method; see :class:`engine.baselines.base.Method` for
``fit(ctx) / start() / update(state, batch, seen) / score(state, rows) / score_all(state)`` and
the class attributes ``grid``, ``backbone``, ``probabilistic``.

A new method registers by subclassing ``Method`` (or ``EmbeddingMethod``) with a unique
``name``, ``defaults`` and a ``grid`` of tunable settings, and adding its class to the tuple
below: ``emerflow bench --methods all`` then runs it and ``emerflow bench tune`` tunes it with
the same trial budget as every other method.
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
from engine.baselines.counting import ItemMean, Popularity, PopularityRate
from engine.baselines.cvar import CVAR
from engine.baselines.embedding import (
    Backbone,
    EmerFlow,
    EmerFlowAugOnly,
    EmerFlowNoLLM,
    EmerFlowNoWarm,
    MetaEmb,
)
from engine.baselines.kb import EmerFlowKB
from engine.baselines.ltr import EmerFlowLtr, EmerFlowLtrLLM
from engine.baselines.mwuf import MWUF
from engine.baselines.neighbourhood import CoocKnn, Ease, TextCooc, TextEase, TextKnn
from engine.baselines.shared_space import EmerFlowShared, EmerFlowSharedKB, EmerFlowSharedNoLLM

#: name -> method class, in the order results are tabulated.
METHODS: dict[str, type[Method]] = {
    cls.name: cls
    for cls in (Popularity, PopularityRate, ItemMean, CoocKnn, Ease, TextKnn, TextCooc, TextEase,
                Backbone, MetaEmb, CVAR, MWUF, EmerFlowNoLLM, EmerFlowNoWarm, EmerFlow,
                EmerFlowAugOnly, EmerFlowKB, EmerFlowSharedNoLLM, EmerFlowShared, EmerFlowSharedKB)
}
#: the product's learned ranker (engine.ltr), tabulated after the EmerFlow variants
METHODS[EmerFlowLtr.name] = EmerFlowLtr
#: ... and on the text with the LLM's values (emerflow-ltr's settings, engine/tuned.py)
METHODS[EmerFlowLtrLLM.name] = EmerFlowLtrLLM

__all__ = ["METHODS", "BenchContext", "EmbeddingMethod", "Method", "MethodNotAvailable", "Rows",
           "refine_through"]
