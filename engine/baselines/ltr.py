"""``emerflow-ltr``: the product's learned ranker (:mod:`engine.ltr`) run through the phases.

``fit`` trains THE SAME :func:`engine.ltr.train_ltr` a workspace build calls (old items only,
every channel leave-fold-out), on the raw serialized-text vectors; each phase's state is the
new items' confirmed / rejected targets seen so far, and ``score_all`` is
:meth:`engine.ltr.LtrRanker.score_many` over the full catalog (the dashboard's
:meth:`~engine.ltr.LtrRanker.score` calls the same function for one item). Scores are
LambdaRank scores, not probabilities: F1 is null.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from engine.baselines.base import BenchContext, Method, Rows
from engine.ltr import LtrConfig, train_ltr
from engine.ltr.model import item_category_keys
from engine.training_data import TrainingData


@dataclass
class LtrState:
    """Decision rows ``[M, N]`` seen so far, and the scores of this state once computed."""

    confirmed: np.ndarray
    rejected: np.ndarray
    scores: np.ndarray | None = field(default=None, repr=False)


class EmerFlowLtr(Method):
    name: ClassVar[str] = "emerflow-ltr"
    backbone: ClassVar[str | None] = None
    probabilistic: ClassVar[bool] = False
    cost: ClassVar[float] = 50.0
    text_variant: ClassVar[str] = "raw"
    defaults: ClassVar[dict[str, Any]] = LtrConfig().to_dict()
    #: Round L4b (results/README.md): the training lists' composition, on the small-item
    #: validation set, with L3's LightGBM settings fixed (engine/tuned.py): how many top
    #: candidates of the simple sum and how many uniform negatives each simulated list holds.
    #: L4 (candidates {100, 300, 500} x negatives {100, 300, 1000}) chose 100 negatives on
    #: both datasets and 500 candidates on DisGeNET, edges, so L4b widens the negatives down
    #: to 30; candidates stop at 500, the most a build affords (ranker's build <= 30 s).
    #: Records: results/<dataset>/emerflow-ltr-tuning-l3.json / -l4.json. Earlier rounds:
    #: L1/L2 on held-out old items (LightGBM settings), L3 on the small-item set (learning
    #: rate, trees, leaves, min leaf, monotone constraints).
    #: L6 (the grid below; L4b's record: emerflow-ltr-tuning-l4b.json), with L3's LightGBM
    #: and L4b's list settings fixed: the item-category channel off, one key per category
    #: (film genre, MeSH class) or the item's whole combination as one key.
    #: L7 (record: emerflow-ltr-tuning-l7.json), every other setting fixed at L3 / L4b / L6's:
    #: learning rate {.02, .04, .1, .2} x trees {50, 100, 200}, the ridge at and beside L3's
    #: choices. LambdaRank's pair loop makes the fit's cost proportional to the trees, so the
    #: choice respects a build budget (``tune --budget n_estimators=50``: the ranker's build
    #: <= 30 s, issue 16); every trial still runs and is recorded. Within it both datasets
    #: chose 50 trees, the grid's lower edge (MovieLens at the rate's upper edge too), so L7b
    #: (the grid below) widens both edges: rates {.1, .2, .4} x trees {25, 50}.
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {
        "learning_rate": (0.1, 0.2, 0.4),
        "n_estimators": (25, 50),
    }

    def __init__(self, **overrides: Any):
        # engine/tuned.py keeps the settings under "ltr" (WorkspaceConfig.ltr); flat keys win
        nested = overrides.pop("ltr", None) or {}
        super().__init__(**{**nested, **overrides})
        self.settings = LtrConfig.from_dict(self.config)

    def fit(self, ctx: BenchContext) -> None:
        super().fit(ctx)
        vecs = np.asarray(ctx.text_vectors(self.text_variant), dtype=np.float32)
        data = TrainingData(ctx.dataset, ctx.split)
        self.ranker = train_ltr(data, vecs[ctx.old_item_rows], self.settings, ctx.seed,
                                lists_cache=ctx._cache)
        self.ranker.ref.precompute_cooc()  # every new item is scored against it, 4 phases
        self.new_text = vecs[ctx.new_item_rows]
        #: the new items' category keys (the dashboard reads them from the item's features)
        self.new_categories = (item_category_keys(ctx.dataset, ctx.new_items, self.settings)
                               if self.settings.categories else None)

    def start(self) -> LtrState:
        ctx = self.ctx
        assert ctx is not None
        empty = np.zeros((ctx.n_new, ctx.n_targets), np.float32)
        return LtrState(empty, empty.copy())

    def update(self, state: LtrState, batch: Rows, seen: Rows) -> LtrState:
        ctx = self.ctx
        assert ctx is not None and seen.label is not None
        confirmed = ctx.positive_matrix(seen).astype(np.float32)
        negatives = Rows(seen.item, seen.target, (seen.label <= 0).astype(np.float32))
        rejected = ctx.positive_matrix(negatives).astype(np.float32)
        rejected[confirmed > 0] = 0.0
        return LtrState(confirmed, rejected)

    def score_all(self, state: LtrState) -> np.ndarray:
        if state.scores is None:
            state.scores = self.ranker.score_many(self.new_text, state.confirmed,
                                                  state.rejected,
                                                  categories=self.new_categories)
        return state.scores

    def score(self, state: LtrState, rows: Rows) -> np.ndarray:
        return self.score_all(state)[rows.item, rows.target]

    def describe(self) -> dict[str, Any]:
        out = dict(self.config)
        ranker = getattr(self, "ranker", None)
        if ranker is not None:
            out["training"] = dict(ranker.meta)
        return out


class EmerFlowLtrLLM(EmerFlowLtr):
    """``emerflow-ltr-llm``: the learned ranker on the item text with the LLM's feature values
    appended (``raw+aug``, the text ``emerflow`` and ``emerflow-tt`` read), an ablation of
    ``emerflow-ltr``.

    It runs with the product's validated settings, ``emerflow-ltr``'s in ``engine/tuned.py``
    (:attr:`settings_of`), not with a tuning round of its own: the comparison with
    ``emerflow-ltr`` changes the text only. Not run when the benchmark finds no LLM
    augmentation (``--augmented``, ``$EMERFLOW_HOME/augment/<dataset>.csv`` or the committed
    ``results/<dataset>/llm-augmentations.csv``).
    """

    name: ClassVar[str] = "emerflow-ltr-llm"
    uses_llm: ClassVar[bool] = True
    text_variant: ClassVar[str] = "raw+aug"
    #: whose settings the benchmark uses when engine/tuned.py names none for this method
    settings_of: ClassVar[str] = "emerflow-ltr"
