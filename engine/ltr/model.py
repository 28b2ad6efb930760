"""The learned ranker: LightGBM LambdaRank over every channel's per-target features.

Training (:func:`train_ltr`): the old items are split into ``folds`` folds; for the items of a
fold every channel (text neighbours, EASE, co-occurrence, popularity) is computed against the
OTHER folds' old items only, so no training item sees itself. Each old item gives one ranking
list per simulated phase (0..III as in the protocol: ``k`` rows per phase batch, confirmed =
the batch positives, rejected = its negatives); its relevant targets are its positives not yet
seen, up to the protocol's new-item maximum rank (as the validation split caps held-out old
items; a round with only the test window's positives as relevant scored lower on validation).
Confirmed targets are in every list as relevant, marked by the feature ``confirmed``: the
model learns that what the analyst confirmed is the item's (its own rank of a confirmed
target is then at the top; the benchmark never ranks them). Each list holds the top
``candidates`` targets by ``vote_norm + ease_norm`` and ``random_negatives`` uniformly drawn
others, whatever their labels (adding the relevant targets outside them would teach "far
from every channel -> relevant"). Serving ranks the FULL catalog against all old items (no
candidate stage).

The same :class:`LtrRanker` is the product's ranker (``ranker = "ltr"``) and the benchmark's
``emerflow-ltr``. Saved as LightGBM's text model file plus JSON and a ``.npy`` of the old
items' unit text vectors (read with ``allow_pickle=False``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from engine.ltr.features import (
    BEST_K,
    CATEGORY_MODES,
    NEAR,
    Reference,
    TargetKnowledge,
    category_keys,
    cooc_parts,
    feature_names,
    item_features,
    target_recency,
    unit_rows,
)
from engine.ltr.serving import FeatureMemo, SplitPatterns, decision_key, one_blas_thread
from engine.ranking.base import Decisions, Reason, Scored

ProgressFn = Callable[[str, float, str], None]


#: LightGBM ranking objectives :class:`LtrConfig` accepts.
OBJECTIVES: tuple[str, ...] = ("lambdarank", "rank_xendcg")
#: LightGBM's ways of enforcing monotone constraints, cheapest first.
MONOTONE_METHODS: tuple[str, ...] = ("basic", "intermediate", "advanced")


@dataclass(frozen=True)
class LtrConfig:
    """Settings of the learned ranker (``WorkspaceConfig.ltr`` holds them as a dict).

    Attributes:
        k, temperature: the softmax neighbour vote; ``wide_k``: the plain share.
        ease_lam: L2 of the EASE index (the ``ease`` baseline's validated lambda).
        folds: leave-fold-out folds over old items for the training lists.
        candidates, random_negatives: targets per training list besides the relevant ones.
        n_estimators, learning_rate, num_leaves, min_data_in_leaf, feature_fraction:
            LightGBM LambdaRank.
        knowledge: use target-side knowledge (HGNC gene groups, locus type) when available.
        attributes: gene attribute kinds with ``<kind>_vote`` / ``<kind>_shared`` features
            (:data:`engine.ltr.knowledge.ATTRIBUTE_KINDS`; used with ``knowledge``).
        item_level: the item-level features ``sim1`` / ``simk`` (text prior confidence).
        sum_beta: > 0 adds the feature ``simple_sum = vote_norm + sum_beta * ease_norm`` (the
            text-ease baseline's validated beta).
        monotone: LightGBM monotone constraints (:data:`MONOTONE`): more evidence of a channel
            never lowers a target's score, so what is learned on old items carries to new ones.
        ridge_lam: > 0 adds the learned text-to-target map ``ridge`` / ``ridge_norm`` (ridge
            regression of the reference items' positives on their text, this L2).
        base_scale, base_beta: ``base_scale > 0`` boosts from the text-ease sum: every score
            starts at ``base_scale * (vote_norm + base_beta * ease_norm)`` (LightGBM's
            ``init_score`` while training, added back when scoring) and the trees learn only
            corrections to it, so the ranker starts where the strongest simple sum is.
        test_window: the training lists' relevant targets are those of the simulated test set
            only (:func:`simulate_tasks`), not also later phases' batch positives.
        objective: LightGBM's ranking objective, ``lambdarank`` (LambdaRank, truncated at
            100) or ``rank_xendcg`` (XE-NDCG, Bruch 2019: a convex bound, often steadier).
        truncation: LambdaRank's truncation level: the pairs of each list whose higher-ranked
            member is in the current top ``truncation`` carry gradients (its cost per tree
            grows with it; 100 matches NDCG@100).
        categories: the item-category channel (``cat_share`` / ``cat_norm``): "" off,
            ``set`` (one key per category) or ``combination`` (the item's sorted categories
            as one key); :data:`engine.schema.ITEM_CATEGORY` names each domain's column.
        recency: the recency channel (``first_year`` / ``mean_year``): per target, the
            earliest and the mean time of its reference items' positives (DisGeNET's
            YearInitial, MovieLens' rating time), leave-fold-out like every channel.
        monotone_method: LightGBM's ``monotone_constraints_method`` when ``monotone``:
            ``basic``, ``intermediate`` or ``advanced`` (the most precise constraints and the
            slowest fit).
        threads: LightGBM threads.
    """

    k: int = 20
    temperature: float = 0.05
    wide_k: int = 100
    ease_lam: float = 50.0
    folds: int = 5
    candidates: int = 100
    random_negatives: int = 100
    n_estimators: int = 100
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_data_in_leaf: int = 100
    feature_fraction: float = 0.9
    knowledge: bool = True
    attributes: tuple[str, ...] = ()
    item_level: bool = False
    monotone: bool = False
    confirmed_in_lists: bool = True
    sum_beta: float = 0.0
    ridge_lam: float = 0.0
    base_scale: float = 0.0
    base_beta: float = 1.0
    test_window: bool = False
    objective: str = "lambdarank"
    truncation: int = 100
    categories: str = ""
    recency: bool = False
    monotone_method: str = "advanced"
    threads: int = 2

    def __post_init__(self) -> None:
        for name in ("k", "wide_k", "folds", "n_estimators", "num_leaves", "min_data_in_leaf",
                     "truncation", "threads"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"LtrConfig.{name} must be >= 1")
        if self.folds < 2:
            raise ValueError("LtrConfig.folds must be >= 2 (leave-fold-out channels)")
        for name in ("temperature", "ease_lam", "learning_rate"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"LtrConfig.{name} must be > 0")
        if self.sum_beta < 0:
            raise ValueError("LtrConfig.sum_beta must be >= 0")
        if self.categories not in CATEGORY_MODES:
            raise ValueError(f"LtrConfig.categories must be one of {CATEGORY_MODES}, "
                             f"got {self.categories!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"LtrConfig.objective must be one of {OBJECTIVES}, "
                             f"got {self.objective!r}")
        if self.monotone_method not in MONOTONE_METHODS:
            raise ValueError(f"LtrConfig.monotone_method must be one of {MONOTONE_METHODS}, "
                             f"got {self.monotone_method!r}")
        for name in ("ridge_lam", "base_scale", "base_beta"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"LtrConfig.{name} must be >= 0")
        if self.candidates < 0 or self.random_negatives < 0:
            raise ValueError("LtrConfig.candidates and random_negatives must be >= 0")
        if not 0 < self.feature_fraction <= 1:
            raise ValueError("LtrConfig.feature_fraction must be in (0, 1]")
        from engine.ltr.knowledge import ATTRIBUTE_KINDS

        object.__setattr__(self, "attributes", tuple(self.attributes))
        bad = set(self.attributes) - set(ATTRIBUTE_KINDS)
        if bad:
            raise ValueError(f"LtrConfig.attributes: unknown kinds {sorted(bad)}; "
                             f"known: {list(ATTRIBUTE_KINDS)}")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> LtrConfig:
        data = dict(data or {})
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown ltr settings: {sorted(unknown)}")
        return cls(**data)

    def feature_names(self, knowledge: TargetKnowledge | None) -> tuple[str, ...]:
        """The ranker's features under these settings."""
        return feature_names(knowledge, self.item_level, self.sum_beta > 0, self.ridge_lam > 0,
                             bool(self.categories), self.recency)

    def base(self, fx: np.ndarray, names: tuple[str, ...]) -> np.ndarray | None:
        """The score rows ``fx [R, F]`` start from (``[R]``; None when ``base_scale == 0``)."""
        if self.base_scale == 0:
            return None
        return self.base_scale * (fx[:, names.index("vote_norm")].astype(np.float64)
                                  + self.base_beta * fx[:, names.index("ease_norm")])

    def reference(self, x, text: np.ndarray,
                  categories: list[tuple[str, ...]] | None = None,
                  recency: np.ndarray | None = None) -> Reference:
        """The channels' :class:`Reference` over positives ``x [R, N]`` / text ``[R, T]``;
        ``categories``: the reference items' category keys, ``recency``: the targets' ``[2,
        N]`` times (:func:`engine.ltr.features.target_recency`), each needed when its channel
        is on."""
        if self.categories and categories is None:
            raise ValueError("LtrConfig.categories is on: the reference items' category "
                             "keys are needed")
        if self.recency and recency is None:
            raise ValueError("LtrConfig.recency is on: the targets' times are needed")
        return Reference(x, text, self.ease_lam, self.ridge_lam,
                         categories if self.categories else None,
                         recency if self.recency else None)

    def keys(self, values) -> tuple[str, ...]:
        """One item's category keys under :attr:`categories` (values: a list or a
        ``|``-joined string; () when the channel is off)."""
        return category_keys(values, self.categories)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["attributes"] = list(self.attributes)
        return out


# ---- simulated phases on old items ------------------------------------------------------------
@dataclass
class Tasks:
    """Simulated phase lists of items: per list the item row, confirmed / rejected / relevant
    target rows."""

    item: list[int]
    confirmed: list[np.ndarray]
    rejected: list[np.ndarray]
    relevant: list[np.ndarray]
    hidden: list[np.ndarray] = dataclass_field(default_factory=list)


def simulate_tasks(train: pd.DataFrame, item_pos: pd.Series, target_pos: pd.Series, k: int,
                   n_phases: int, cap: int | None, test_window: bool = False) -> Tasks:
    """Phase 0..``n_phases`` lists of the items in ``train`` (split rows with ``rank``):
    phase p has seen the rows of rank < p*k.

    ``test_window``: the relevant targets of every phase are the positives a new item's test
    set would hold (rank >= ``n_phases * k``), as the protocol scores them; the positives of
    later phase batches stay in the list as not relevant, as they are in the evaluation."""
    from engine.data.protocol import RANK
    from engine.schema import ITEM_ID, LABEL, TARGET_ID

    item = item_pos.loc[train[ITEM_ID].astype(str)].to_numpy()
    target = target_pos.loc[train[TARGET_ID].astype(str)].to_numpy()
    label = train[LABEL].to_numpy() > 0
    rank = train[RANK].to_numpy()
    order = np.argsort(item, kind="stable")
    item, target, label, rank = item[order], target[order], label[order], rank[order]
    bounds = np.flatnonzero(np.diff(item)) + 1
    out = Tasks([], [], [], [], [])
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(item)], strict=True):
        if hi <= lo:
            continue
        t, y, r = target[lo:hi], label[lo:hi], rank[lo:hi]
        window = r < cap if cap is not None else np.ones(len(r), bool)
        for p in range(n_phases + 1):
            seen = r < p * k
            rel = ~seen & window & y
            if test_window:
                rel &= r >= n_phases * k
            if not rel.any():
                continue
            out.item.append(int(item[lo]))
            out.confirmed.append(np.unique(t[seen & y]))
            out.rejected.append(np.setdiff1d(np.unique(t[seen & ~y]), t[seen & y]))
            out.relevant.append(np.unique(t[rel]))
            out.hidden.append(np.unique(t[~seen & ~window & y]))
    return out


@dataclass
class ExtraTasks:
    """Simulated phase lists of items that are neither old nor new (below the new-item
    minimum; protocol.md allows them as training tasks, never as reference items): their
    channels are computed against ALL old items. ``text [E, T]``: their text vectors, the rows
    that ``tasks.item`` indexes."""

    tasks: Tasks
    text: np.ndarray


def extra_tasks(rows: pd.DataFrame, text_of: Callable[[list[str]], np.ndarray],
                target_pos: pd.Series, k: int, n_phases: int) -> ExtraTasks:
    """:class:`ExtraTasks` of the items in ``rows`` (split rows with ``rank``: every row of
    each item, negatives included); ``text_of(item_ids) -> [E, T]``."""
    from engine.schema import ITEM_ID

    ids = sorted(rows[ITEM_ID].astype(str).unique().tolist())
    pos = pd.Series(np.arange(len(ids)), index=ids)
    tasks = simulate_tasks(rows, pos, target_pos, k, n_phases, None)
    return ExtraTasks(tasks, np.asarray(text_of(ids), np.float64))


def _decision_rows(n: int, rows: list[np.ndarray]) -> np.ndarray:
    out = np.zeros((len(rows), n), np.float32)
    for i, r in enumerate(rows):
        out[i, r] = 1.0
    return out


def training_lists(x, text: np.ndarray, tasks: Tasks, config: LtrConfig, seed: int,
                   knowledge: TargetKnowledge | None, progress: ProgressFn | None = None,
                   extra: ExtraTasks | None = None,
                   categories: list[tuple[str, ...]] | None = None,
                   times: sparse.spmatrix | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features ``[rows, F]``, labels ``[rows]``, list sizes ``[lists]``) with every channel
    computed leave-fold-out over old items (rows of ``x [K, N]`` / ``text [K, T]``; their
    category keys ``categories`` and their positives' times ``times [K, N]`` when those
    channels are on), then the ``extra`` items' lists against all old items (their
    categories unknown: the channel is 0 there).

    The folds are built on ``config.threads`` threads (numpy and scipy release the GIL in
    their products); every list's uniform negatives are drawn up front, in fold order, from
    one generator seeded with ``seed``, so the lists do not depend on the thread count."""
    x = sparse.csr_matrix(x, dtype=np.float32)
    n_items, n = x.shape
    rng = np.random.default_rng(seed)
    fold = rng.permutation(n_items) % config.folds
    task_item = np.asarray(tasks.item)
    fold_lists = [np.flatnonzero(fold[task_item] == f) for f in range(config.folds)]
    draws = [_negative_draws(rng, n, config.random_negatives, len(lists))
             for lists in fold_lists]
    extra_lists = (np.arange(len(extra.tasks.item)) if extra is not None and extra.tasks.item
                   else None)
    extra_draws = (_negative_draws(rng, n, config.random_negatives, len(extra_lists))
                   if extra_lists is not None else [])
    chunk = 16
    with one_blas_thread():
        feats, labels, sizes = _fold_lists(x, text, tasks, config, knowledge, fold,
                                           fold_lists, draws, chunk, progress, categories,
                                           times)
        if extra_lists is not None:
            ref = config.reference(x, text, categories,
                                   None if times is None else target_recency(times))
            ref.precompute_cooc()
            _lists_against(ref, unit_rows(extra.text), extra.tasks, extra_lists, config,
                           knowledge, extra_draws, chunk, feats, labels, sizes, None)
    return np.concatenate(feats), np.concatenate(labels), np.asarray(sizes, np.int64)


def _negative_draws(rng: np.random.Generator, n: int, size: int, count: int
                    ) -> list[np.ndarray]:
    """``count`` uniform draws of ``min(size, n)`` distinct targets out of ``n``."""
    return [rng.choice(n, size=min(size, n), replace=False) for _ in range(count)]


def _fold_lists(x, text, tasks, config, knowledge, fold, fold_lists, draws, chunk, progress,
                categories: list[tuple[str, ...]] | None = None,
                times: sparse.spmatrix | None = None) -> tuple[list, list, list]:
    """The training lists of every fold (``fold_lists[f]``: indices into ``tasks``; ``draws[f]``
    their uniform negatives), in fold order, built on up to ``config.threads`` threads."""
    from concurrent.futures import ThreadPoolExecutor

    def one(f: int) -> tuple[list, list, list]:
        ref_rows = np.flatnonzero(fold != f)
        ref = config.reference(x[ref_rows], text[ref_rows],
                               None if categories is None else [categories[r] for r in ref_rows],
                               None if times is None else target_recency(times[ref_rows]))
        ref.precompute_cooc()
        out: tuple[list, list, list] = ([], [], [])
        _lists_against(ref, text, tasks, fold_lists[f], config, knowledge, draws[f], chunk,
                       *out, categories)
        return out

    feats, labels, sizes = [], [], []
    with ThreadPoolExecutor(max_workers=max(1, min(config.threads, config.folds))) as pool:
        for f, (fx, y, size) in enumerate(pool.map(one, range(config.folds))):
            feats += fx
            labels += y
            sizes += size
            if progress is not None:  # on the caller's thread (a Streamlit page's, say)
                progress("ltr", (f + 1) / (config.folds + 1),
                         f"learned ranker: training lists of fold {f + 1}/{config.folds}")
    return feats, labels, sizes


def _lists_against(ref: Reference, text: np.ndarray, tasks: Tasks, lists: np.ndarray,
                   config: LtrConfig, knowledge, negatives: list[np.ndarray], chunk: int,
                   feats: list, labels: list, sizes: list,
                   categories: list[tuple[str, ...]] | None = None) -> None:
    """The training lists ``lists`` (indices into ``tasks``; items are rows of ``text`` and of
    ``categories``; ``negatives[p]``: the uniform negatives of ``lists[p]``) with every channel
    computed against ``ref``, appended to ``feats``, ``labels``, ``sizes``."""
    n = ref.n_targets
    task_item = np.asarray(tasks.item)
    names = config.feature_names(knowledge)
    vn, en = names.index("vote_norm"), names.index("ease_norm")
    for s in range(0, len(lists), chunk):
        part = lists[s : s + chunk]
        conf = _decision_rows(n, [tasks.confirmed[i] for i in part])
        rej = _decision_rows(n, [tasks.rejected[i] for i in part])
        sims = ref.similarities(text[task_item[part]])
        fx = item_features(ref, sims, conf, rej, k=config.k,
                           temperature=config.temperature, wide_k=config.wide_k,
                           knowledge=knowledge, item_level=config.item_level,
                           sum_beta=config.sum_beta,
                           categories=None if categories is None
                           else [categories[task_item[i]] for i in part])
        for j, i in enumerate(part):
            # rows are drawn without looking at labels (top candidates + a uniform
            # sample), so a list's label rate per feature value is the catalog's;
            # confirmed targets are in every list as relevant, marked by the feature
            # ``confirmed`` (the model learns that a confirmed target is the item's)
            keep = tasks.confirmed[i] if config.confirmed_in_lists else np.zeros(0, np.int64)
            rel = np.union1d(tasks.relevant[i], keep)
            simple = fx[j, :, vn] + fx[j, :, en]
            c = min(config.candidates, n)
            top = (np.argpartition(-simple, c - 1)[:c] if c > 0
                   else np.zeros(0, np.int64))
            rand = negatives[s + j]
            rows = np.unique(np.concatenate([top, rand, keep]))
            if not config.confirmed_in_lists:
                rows = np.setdiff1d(rows, tasks.confirmed[i])
            if tasks.hidden:  # positives beyond the cap: neither relevant nor not
                rows = np.setdiff1d(rows, tasks.hidden[i])
            y = np.isin(rows, rel).astype(np.float32)
            if not y.any():
                continue
            feats.append(fx[j, rows])
            labels.append(y)
            sizes.append(len(rows))


#: Direction of each channel's evidence (+1: more is better, -1: a larger value is worse);
#: features not listed are unconstrained.
MONOTONE: dict[str, int] = {
    "vote": 1, "vote_norm": 1, "vote_wide": 1, "near5": 1, "best_sim": 1, "best_rank": -1,
    "ease": 1, "ease_norm": 1, "ease_rank_log": -1, "cooc_mean": 1, "cooc_max": 1,
    "cooc_count": 1, "pop_share": 1, "pop_rank_log": -1, "rejected": -1, "confirmed": 1,
    "family_shared": 1, "family_vote": 1, "tissue_vote": 1, "tissue_shared": 1,
    "band_vote": 1, "band_shared": 1, "simple_sum": 1, "ridge": 1, "ridge_norm": 1,
    "cat_share": 1, "cat_norm": 1,
}


def fit_booster(features: np.ndarray, labels: np.ndarray, sizes: np.ndarray,
                names: tuple[str, ...], config: LtrConfig, seed: int):
    """LightGBM LambdaRank (NDCG@100) on the training lists."""
    import lightgbm as lgb

    cats = [n for n in names if n == "locus_type"]
    ds = lgb.Dataset(features, labels, group=sizes, feature_name=list(names),
                     categorical_feature=cats or "auto", init_score=config.base(features, names),
                     free_raw_data=True)
    params = {
        "objective": config.objective, "metric": "ndcg", "eval_at": [100],
        "lambdarank_truncation_level": config.truncation, "learning_rate": config.learning_rate,
        "num_leaves": config.num_leaves, "min_data_in_leaf": config.min_data_in_leaf,
        "feature_fraction": config.feature_fraction, "bagging_fraction": 0.8,
        "bagging_freq": 1, "max_bin": 63, "seed": seed, "num_threads": config.threads,
        "verbose": -1,
        "deterministic": True, "force_row_wise": True,
    }
    if config.monotone:
        params["monotone_constraints"] = [MONOTONE.get(n, 0) for n in names]
        params["monotone_constraints_method"] = config.monotone_method
    return lgb.train(params, ds, num_boost_round=config.n_estimators)


# ---- the ranker -------------------------------------------------------------------------------
_NOUNS = {"disease": ("disease", "diseases"), "movie": ("film", "films")}


class LtrRanker:
    """The learned ranker as the product's :class:`engine.ranking.base.Ranker`.

    The item embedding is its unit text vector (``D = T``): ``align`` normalises, ``refine``
    returns the prior unchanged (decisions reach the score through the features), and the
    nearest-item index holds the old items' unit text vectors.
    """

    kind = "ltr"

    def __init__(self, booster, config: LtrConfig, reference: Reference,
                 knowledge: TargetKnowledge | None, domain: str, meta: dict | None = None):
        self.booster = booster
        self.config = config
        self.ref = reference
        self.knowledge = knowledge
        self.domain = domain
        self.names = config.feature_names(knowledge)
        self.meta = dict(meta or {})
        self.memo = FeatureMemo()
        #: full-catalog feature computations for one item (memo misses of :meth:`score`)
        self.catalog_scorings = 0
        self._patterns: SplitPatterns | None = None

    @property
    def patterns(self) -> SplitPatterns:
        """The booster's split thresholds (read once)."""
        if self._patterns is None:
            self._patterns = SplitPatterns(self.booster, len(self.names))
        return self._patterns

    @property
    def n_targets(self) -> int:
        return self.ref.n_targets

    def align(self, text: np.ndarray) -> np.ndarray:
        return unit_rows(np.asarray(text, np.float64).reshape(len(text), -1)).astype(np.float32)

    def refine(self, prior: np.ndarray, decisions: Decisions) -> np.ndarray:
        return np.asarray(prior, np.float32)

    def features(self, text: np.ndarray, confirmed: np.ndarray, rejected: np.ndarray,
                 categories: list[tuple[str, ...]] | None = None) -> np.ndarray:
        """``[M, N, F]`` of text vectors ``[M, T]``, decision rows ``[M, N]`` and category keys
        (one tuple per item; used when the category channel is on)."""
        c = self.config
        return item_features(self.ref, self.ref.similarities(np.atleast_2d(text)), confirmed,
                             rejected, k=c.k, temperature=c.temperature, wide_k=c.wide_k,
                             knowledge=self.knowledge, item_level=c.item_level,
                             sum_beta=c.sum_beta, categories=categories)

    def score_many(self, text: np.ndarray, confirmed: np.ndarray, rejected: np.ndarray,
                   chunk: int = 32, categories: list[tuple[str, ...]] | None = None
                   ) -> np.ndarray:
        """Scores ``[M, N]`` of every target for text vectors ``[M, T]`` with decision rows
        ``[M, N]`` (0/1) and category keys (one tuple per item): the benchmark and
        :meth:`score` call this one function."""
        text = np.atleast_2d(np.asarray(text, np.float32))
        m, n = len(text), self.n_targets
        out = np.zeros((m, n), np.float64)
        for s in range(0, m, chunk):
            with one_blas_thread():
                fx = self.features(text[s : s + chunk], confirmed[s : s + chunk],
                                   rejected[s : s + chunk],
                                   None if categories is None else categories[s : s + chunk])
            out[s : s + chunk] = self.predict_rows(fx.reshape(-1, fx.shape[2])).reshape(
                len(fx), n)
        return out

    def predict_rows(self, fx: np.ndarray) -> np.ndarray:
        """``booster.predict`` of feature rows ``[R, F]`` -> ``[R]`` float64, bit-identical,
        one tree walk per distinct split pattern (:class:`engine.ltr.serving.SplitPatterns`).
        """
        out = self.patterns.predict(self.booster, fx, self.config.threads)
        base = self.config.base(fx, self.names)
        return out if base is None else out + base

    def _rows(self, decisions: Decisions) -> tuple[np.ndarray, np.ndarray]:
        pos = np.zeros((1, self.n_targets), np.float32)
        neg = np.zeros((1, self.n_targets), np.float32)
        pos[0, decisions.confirmed] = 1.0
        neg[0, decisions.rejected] = 1.0
        return pos, neg

    def scored_features(self, text: np.ndarray, decisions: Decisions,
                        categories: Sequence[str] = ()) -> tuple[np.ndarray, np.ndarray]:
        """(features ``[N, F]``, scores ``[N]``) of one item, read-only: computed once per
        (text vector, decisions, category keys) and kept in :attr:`memo` (one analyst action
        reads them from the refinement, the page's rerun, the phase history and "why this
        rank"). ``categories``: the item's category values (genres, MeSH classes)."""
        text = np.asarray(text, np.float32).reshape(-1)
        keys = self.config.keys(list(categories))
        key = decision_key(text, decisions.confirmed, decisions.rejected)
        if keys:
            key += "\x1f".join(keys).encode()
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        pos, neg = self._rows(decisions)
        with one_blas_thread():
            fx = self.features(text[None], pos, neg, [keys])[0]
        scores = self.predict_rows(fx)
        self.catalog_scorings += 1
        self.memo.put(key, fx, scores)
        return fx, scores

    def score(self, text: np.ndarray, embedding: np.ndarray, decisions: Decisions,
              categories: Sequence[str] = ()) -> Scored:
        return Scored(self.scored_features(text, decisions, categories)[1].copy(), None)

    def explain(self, text: np.ndarray, embedding: np.ndarray, decisions: Decisions,
                rows: np.ndarray, target_names: Callable[[np.ndarray], list[str]],
                categories: Sequence[str] = ()) -> list[list[Reason]]:
        """LightGBM's per-feature contributions (``pred_contrib``) of each target row, summed
        per channel and put in words, largest first."""
        rows = np.asarray(rows, np.int64)
        fx = self.scored_features(text, decisions, categories)[0][rows]  # [M, F]
        # one thread: a few dozen rows are less work than waking a thread pool (measured
        # 8.8 vs 16.5 ms for 25 rows x 200 trees on the 2-core machine under load)
        contrib = np.asarray(self.booster.predict(fx, pred_contrib=True, num_threads=1))
        if self.config.base_scale > 0:  # the base sum's own share, per channel
            c = self.config
            contrib[:, self.names.index("vote_norm")] += (
                c.base_scale * fx[:, self.names.index("vote_norm")])
            contrib[:, self.names.index("ease_norm")] += (
                c.base_scale * c.base_beta * fx[:, self.names.index("ease_norm")])
        col = {name: i for i, name in enumerate(self.names)}
        keys = self.config.keys(list(categories)) if self.config.categories else ()
        one, many = _NOUNS.get(self.domain, ("item", "items"))
        conf = decisions.confirmed
        cos = cooc_parts(self.ref, conf)[0][:, rows] if conf.size else None  # [C, M]
        conf_names = target_names(conf) if conf.size else []
        groups = {
            "neighbours": ("vote", "vote_norm", "vote_wide", "near5", "best_sim", "best_rank",
                           "sim1", "simk", "simple_sum", "ridge", "ridge_norm"),
            "cooc": ("cooc_mean", "cooc_max", "cooc_count"),
            "ease": ("ease", "ease_norm", "ease_rank_log"),
            "popularity": ("pop_share", "pop_rank_log"),
            "decisions": ("n_confirmed", "n_rejected", "rejected", "confirmed",
                          "ease_rejected"),
            "knowledge": ("family_shared", "locus_type", "family_vote", "tissue_vote",
                          "tissue_shared", "band_vote", "band_shared"),
            "categories": ("cat_share", "cat_norm"),
        }
        out = []
        for i in range(len(rows)):
            v = {name: float(fx[i, j]) for name, j in col.items()}
            parts = []
            for group, names in groups.items():
                idx = [col[nm] for nm in names if nm in col]
                if not idx:
                    continue
                w = float(contrib[i, idx].sum())
                text_ = self._words(group, v, one, many, conf, conf_names,
                                    None if cos is None else cos[:, i], bool(keys))
                if text_:
                    parts.append(Reason(text_, w))
            out.append(sorted(parts, key=lambda p: -abs(p.weight)))
        return out

    def _words(self, group: str, v: dict[str, float], one: str, many: str, conf: np.ndarray,
               conf_names: list[str], cos: np.ndarray | None, has_categories: bool = True
               ) -> str:
        if group == "neighbours":
            near = int(round(v["near5"]))
            s = f"{near} of its {NEAR} nearest {many} have it"
            if v["best_rank"] <= BEST_K:
                s += (f"; the nearest {one} having it is #{int(v['best_rank'])} "
                      f"(text similarity {v['best_sim']:.2f})")
            else:
                s += f"; none of its {BEST_K} nearest {many} has it"
            return s
        if group == "cooc":
            if not conf.size:
                return ""
            if cos is None or not (cos > 0).any():
                return "never co-occurs with a confirmed target in the established " + many
            top = [conf_names[j] for j in np.argsort(-cos, kind="stable")[:3] if cos[j] > 0]
            verb = "co-associated with" if self.domain == "disease" else "shares " + many + \
                " rated highly with"
            return f"{verb} {', '.join(top)}"
        if group == "ease":
            if not conf.size:
                return ""
            rank = int(round(2 ** v["ease_rank_log"]))
            return (f"EASE propagation from the {conf.size} confirmed target"
                    f"{'s' if conf.size != 1 else ''} ranks it #{rank}")
        if group == "popularity":
            return (f"has {v['pop_share']:.1%} of the established {many} (popularity rank "
                    f"#{int(round(2 ** v['pop_rank_log']))})")
        if group == "decisions":
            if v["rejected"] > 0:
                return "you rejected it"
            if v["confirmed"] > 0:
                return "you confirmed it"
            if v["n_confirmed"] == 0 and v["n_rejected"] == 0:
                return ""  # the same for every target of an item without decisions
            return (f"{int(v['n_confirmed'])} confirmed and {int(v['n_rejected'])} rejected "
                    "so far")
        if group == "categories":
            if "cat_share" not in v:
                return ""
            if not has_categories:  # the channel reads 0: say why, so the analyst can add them
                what = "genres" if self.domain == "movie" else "MeSH classes"
                return f"its {what} are not given (the {what} channel reads 0)"
            if self.config.categories == "combination":
                what = "genre combination" if self.domain == "movie" else "MeSH class combination"
                return f"{v['cat_share']:.0%} of the established {many} of its {what} have it"
            what = "genres" if self.domain == "movie" else "MeSH classes"
            return (f"{v['cat_share']:.0%} of the established {many} of each of its {what} "
                    "have it, on average")
        if group == "knowledge":
            parts = []
            if v["family_shared"] > 0:
                parts.append(f"shares a gene group with {int(v['family_shared'])} confirmed "
                             "gene" + ("s" if v["family_shared"] != 1 else ""))
            for kind, noun in (("tissue", "an enriched tissue"), ("band", "a chromosome band")):
                if v.get(f"{kind}_shared", 0) > 0:
                    n_ = int(v[f"{kind}_shared"])
                    parts.append(f"shares {noun} with {n_} confirmed gene"
                                 + ("s" if n_ != 1 else ""))
            code = int(v["locus_type"])
            if self.knowledge is not None and 0 <= code < len(self.knowledge.category_names):
                parts.append(f"locus type: {self.knowledge.category_names[code]}")
            return "; ".join(parts)
        return ""

    def item_vectors(self) -> np.ndarray:
        return self.ref.text.astype(np.float32)

    def save(self, directory: Path) -> dict[str, Any]:
        """``ltr_model.txt`` (LightGBM text model), ``ltr_item_text.npy`` (old items' unit
        text vectors), ``ltr_knowledge.json`` (gene groups / locus types, when used)."""
        directory = Path(directory)
        self.booster.save_model(str(directory / "ltr_model.txt"))
        np.save(directory / "ltr_item_text.npy", self.ref.text.astype(np.float32),
                allow_pickle=False)
        if self.knowledge is not None:
            (directory / "ltr_knowledge.json").write_text(json.dumps(self.knowledge.to_json()))
        if self.ref.categories is not None:
            (directory / "ltr_categories.json").write_text(
                json.dumps([list(k) for k in self.ref.categories]))
        if self.ref.recency is not None:
            np.save(directory / "ltr_recency.npy", self.ref.recency, allow_pickle=False)
        return {"config": self.config.to_dict(), "features": list(self.names),
                "domain": self.domain, "knowledge": self.knowledge is not None,
                "n_targets": self.n_targets, "meta": self.meta}

    @classmethod
    def load(cls, directory: Path, info: dict[str, Any], old_positives) -> LtrRanker:
        import lightgbm as lgb

        from engine.ltr.knowledge import knowledge_from_lists

        directory = Path(directory)
        config = LtrConfig.from_dict(info["config"])
        booster = lgb.Booster(model_file=str(directory / "ltr_model.txt"))
        text = np.load(directory / "ltr_item_text.npy", allow_pickle=False)
        knowledge = None
        if info.get("knowledge"):
            doc = json.loads((directory / "ltr_knowledge.json").read_text())
            knowledge = knowledge_from_lists(doc["families"], doc["loci"],
                                             doc.get("attributes"))
        categories = None
        if config.categories:
            doc = json.loads((directory / "ltr_categories.json").read_text())
            categories = [tuple(str(k) for k in keys) for keys in doc]
        recency = (np.load(directory / "ltr_recency.npy", allow_pickle=False)
                   if config.recency else None)
        ranker = cls(booster, config,
                     config.reference(old_positives, text, categories, recency),
                     knowledge, info.get("domain", ""), info.get("meta"))
        if tuple(info.get("features", ranker.names)) != ranker.names:
            raise ValueError("saved learned ranker: feature list differs from this version")
        return ranker


#: The settings the training lists depend on (the rest are LightGBM's).
LIST_SETTINGS: tuple[str, ...] = ("k", "temperature", "wide_k", "ease_lam", "folds",
                                  "candidates", "random_negatives", "knowledge", "attributes",
                                  "item_level", "confirmed_in_lists", "sum_beta",
                                  "ridge_lam", "test_window", "categories", "recency")


def train_ltr(data, old_text: np.ndarray, config: LtrConfig, seed: int = 0,
              progress: ProgressFn | None = None, knowledge_path: Path | None = None,
              lists_cache: dict | None = None, extra: ExtraTasks | None = None
              ) -> LtrRanker:
    """Train the learned ranker on ``data``'s old items (``TrainingData``) with their text
    vectors ``old_text [K, T]`` (``split.old_items`` order). ``lists_cache``: a dict kept
    across calls on the same data (the benchmark's context) that reuses the training lists
    when only LightGBM settings change."""
    from engine.ltr.knowledge import gene_knowledge, hgnc_path

    t0 = time.perf_counter()
    split = data.split
    proto = split.config
    knowledge = None
    if config.knowledge and data.dataset.domain == "disease":
        knowledge = gene_knowledge(data.dataset.targets,
                                   knowledge_path if knowledge_path is not None
                                   else hgnc_path(), config.attributes)
    text = unit_rows(np.asarray(old_text, np.float64))
    x = data.old_positives_sparse
    categories = (item_category_keys(data.dataset, split.old_items, config)
                  if config.categories else None)
    times = data.old_times_sparse if config.recency else None
    tasks = simulate_tasks(split.train, data.old_pos, data.target_pos,
                           int(proto.k) if proto else 4, int(proto.n_phases) if proto else 3,
                           int(proto.new_max) if proto else None, config.test_window)
    # the lists depend on the text too: methods that differ only in their text variant
    # (emerflow-ltr, emerflow-ltr-llm) share one benchmark context
    text_digest = hashlib.sha1(np.ascontiguousarray(text).tobytes()).hexdigest()
    key = ("ltr-lists", seed, text_digest, tuple(getattr(config, f) for f in LIST_SETTINGS),
           None if extra is None else len(extra.tasks.item))
    if lists_cache is not None and key in lists_cache:  # tuning: LightGBM settings only vary
        feats, labels, sizes = lists_cache[key]
    else:
        feats, labels, sizes = training_lists(x, text, tasks, config, seed, knowledge,
                                              progress, extra, categories, times)
        if lists_cache is not None:
            lists_cache[key] = (feats, labels, sizes)
    t1 = time.perf_counter()
    names = config.feature_names(knowledge)
    booster = fit_booster(feats, labels, sizes, names, config, seed)
    if progress is not None:
        progress("ltr", 1.0, f"learned ranker: {len(sizes)} lists, {len(labels)} rows")
    meta = {"lists": int(len(sizes)), "rows": int(len(labels)),
            "seconds_lists": round(t1 - t0, 2),
            "seconds_fit": round(time.perf_counter() - t1, 2)}
    recency = None if times is None else target_recency(times)
    return LtrRanker(booster, config, config.reference(x, text, categories, recency), knowledge,
                     data.dataset.domain, meta)


def item_category_keys(dataset, item_ids, config: LtrConfig) -> list[tuple[str, ...]]:
    """Category keys of ``item_ids`` (in that order) from the dataset's item table
    (:data:`engine.schema.ITEM_CATEGORY` of its domain; () for an item without values)."""
    from engine.schema import ITEM_CATEGORY, ITEM_ID

    column = ITEM_CATEGORY.get(dataset.domain)
    items = dataset.items
    if column is None or column not in items.columns:
        raise ValueError(f"LtrConfig.categories: the {dataset.domain!r} item table has no "
                         f"category column ({column!r})")
    values = dict(zip(items[ITEM_ID].astype(str), items[column], strict=True))
    return [config.keys(values.get(str(i))) for i in item_ids]
