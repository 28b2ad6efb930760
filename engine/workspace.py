"""A trained workspace: dataset + split + text encoder + one product ranker + nearest-item index.

Serving only: :meth:`Workspace.predict`, :meth:`Workspace.refine` and :meth:`Workspace.explain`
are the calls the dashboard and ``emerflow rank`` make. Building lives in
:mod:`engine.workspace_build`, saving and loading in :mod:`engine.workspace_store`. What ranks
is a :class:`engine.ranking.base.Ranker`; the workspace never looks inside it. The paper's
DeepFM path is benchmark-only (:mod:`engine.paper`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from engine.config import WorkspaceConfig
from engine.data.base import Dataset
from engine.data.protocol import Split
from engine.index import ItemIndex
from engine.ranking.base import Decisions, Ranker, Reason
from engine.schema import ITEM_CATEGORY, ITEM_ID, LABEL, MULTI_SEP, NAME, ORDER, TARGET_ID
from engine.text.encoder import TextEncoder
from engine.text.serialize import serialize_item


@dataclass(frozen=True)
class RankedCatalog:
    """A ranking of the whole catalog without its table: the target rows in rank order and
    their scores; the table's rows are gathered only when read (:meth:`table`).

    Attributes:
        order: target rows (of ``source``) by rank ``[N]`` int64.
        scores: the scores in rank order ``[N]`` float64.
        lift: lift over popularity in rank order ``[N]``, when the ranker knows it.
        source: the dataset's target table.
    """

    order: np.ndarray
    scores: np.ndarray
    lift: np.ndarray | None
    source: pd.DataFrame
    row_of: Mapping[str, int] | None = None

    def __len__(self) -> int:
        return len(self.order)

    def table(self, positions: np.ndarray | None = None) -> pd.DataFrame:
        """The ranked table (``rank``, ``score``, ``percentile``, ``lift``, then the target
        table's columns) at ``positions`` (0-based ranks, increasing; default: every row),
        indexed by position: ``table(p)`` equals ``table().iloc[p]``."""
        n = len(self.order)
        pos = np.arange(n) if positions is None else np.asarray(positions, np.int64)
        out = self.source.take(self.order[pos])
        out.index = pd.RangeIndex(n) if positions is None else pd.Index(pos)
        if self.lift is not None:
            out.insert(0, "lift", np.asarray(self.lift, np.float64)[pos])
        out.insert(0, "percentile", 100.0 * (n - (pos + 1)) / max(n - 1, 1))
        out.insert(0, "score", self.scores[pos])
        out.insert(0, "rank", pos + 1)
        return out

    def ranks_of(self, target_ids: Iterable[str]) -> dict[str, int]:
        """``{target_id: rank}`` of the given targets (unknown ids left out), no table."""
        rank = np.empty(len(self.order), np.int64)
        rank[self.order] = np.arange(1, len(self.order) + 1)
        if isinstance(self.row_of, dict):
            wanted = [t for t in dict.fromkeys(str(t) for t in target_ids) if t in self.row_of]
            return {t: int(rank[self.row_of[t]]) for t in wanted}
        ids = self.source[TARGET_ID].astype(str)
        rows = np.flatnonzero(ids.isin({str(t) for t in target_ids}).to_numpy())
        return dict(zip(ids.to_numpy()[rows].tolist(), rank[rows].tolist(), strict=True))


class Prediction:
    """What the dashboard shows for one item at one phase.

    Attributes:
        text: the serialized features the encoder saw (Eq. 2).
        embedding: the item embedding used for scoring ``[D]``.
        targets: every target ranked: ``rank``, ``score``, ``percentile``, ``lift`` (when the
            ranker knows it), ``target_id``, ``name`` and the target's display columns. Built
            on first read from :attr:`ranked` (a million-target catalog's string columns cost
            more than its scoring; the pages show the top rows, :meth:`top`).
        ranked: the ranking without its table (None when built from a table).
        neighbours: nearest established items: ``item_id``, ``name``, ``similarity`` and
            ``evidence`` (their best-known targets).
        model_rank: ``target_id -> rank`` in the model's own ranking (before decisions are
            pinned), for every decided target.
        categories: the item's category values the ranker saw (genres, MeSH classes).
    """

    def __init__(self, text: str, embedding: np.ndarray, targets: pd.DataFrame | None = None,
                 neighbours: pd.DataFrame | None = None,
                 model_rank: dict[str, int] | None = None, *,
                 ranked: RankedCatalog | None = None, categories: Sequence[str] = ()):
        if targets is None and ranked is None:
            raise ValueError("Prediction needs targets or a ranked catalog")
        self.text = text
        self.embedding = embedding
        self.ranked = ranked
        self._targets = targets
        self.neighbours = (neighbours if neighbours is not None
                           else pd.DataFrame(columns=[ITEM_ID, NAME, "similarity", "evidence"]))
        self.model_rank = dict(model_rank or {})
        self.categories = tuple(categories)

    @property
    def targets(self) -> pd.DataFrame:
        if self._targets is None:
            self._targets = self.ranked.table()
        return self._targets

    @property
    def n_targets(self) -> int:
        """Targets ranked (the rows of :attr:`targets`)."""
        return len(self.ranked) if self._targets is None else len(self._targets)

    @property
    def materialized(self) -> bool:
        """Whether :attr:`targets` was built (reading it then costs nothing)."""
        return self._targets is not None

    def top(self, k: int) -> pd.DataFrame:
        """The first ``k`` rows of :attr:`targets` (only they are gathered when the table was
        not read yet)."""
        if self._targets is None:
            return self.ranked.table(np.arange(min(max(int(k), 0), len(self.ranked))))
        return self.targets.head(k)

    def __repr__(self) -> str:
        n = len(self.ranked) if self._targets is None else len(self._targets)
        return f"Prediction(text={self.text!r}, targets={n} rows, model_rank={self.model_rank})"


@dataclass
class Workspace:
    """Everything trained for one dataset, ready to predict and refine.

    Composed by injection: the encoder, ranker and index are built outside and passed in.
    """

    config: WorkspaceConfig
    dataset: Dataset
    split: Split
    encoder: TextEncoder
    ranker: Ranker
    index: ItemIndex
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.target_pos = pd.Series(
            np.arange(len(self.dataset.targets)), index=self.dataset.targets[TARGET_ID].astype(str)
        )
        # plain dicts/arrays for the per-call hot paths (neighbours, refine): no pandas there
        self._item_names = dict(
            zip(self.dataset.items[ITEM_ID], self.dataset.items[NAME], strict=True)
        )
        self._target_names = dict(
            zip(self.dataset.targets[TARGET_ID], self.dataset.targets[NAME], strict=True)
        )
        self._target_ids = np.array(list(self.target_pos.index))
        #: target id -> row (a dict: per-call lookups of a few ids without pandas)
        self._row_of: Mapping[str, int] = (
            dict(zip(self._target_ids.tolist(), range(len(self._target_ids)), strict=True))
            if self.target_pos.index.is_unique else self.target_pos)
        train = self.split.train
        pos = train[train[LABEL] == 1].sort_values([ITEM_ID, ORDER])
        self.evidence: dict[str, list[str]] = (
            pos.groupby(ITEM_ID)[TARGET_ID].apply(lambda s: list(s.astype(str)[:3])).to_dict()
        )

    # ---- identity ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.dataset.name

    @property
    def domain(self) -> str:
        return self.dataset.domain

    @property
    def model_version(self) -> str:
        return str(self.meta.get("model_version", "untrained"))

    @property
    def ranker_kind(self) -> str:
        return self.ranker.kind

    def feature_vocab(self, feature: str) -> list[str]:
        """Known values of a categorical or multi-valued item feature (sorted)."""
        if feature not in self.dataset.items.columns:
            return []
        values: set[str] = set()
        for v in self.dataset.items[feature].dropna():
            parts = v if isinstance(v, (list, tuple, np.ndarray)) else str(v).split("|")
            values.update(str(p).strip() for p in parts if str(p).strip())
        return sorted(values)

    # ---- the prediction path ----------------------------------------------------------------
    def serialize(
        self,
        features: Mapping[str, object],
        augmented: Mapping[str, str] | None = None,
        descriptors: Mapping[str, str] | None = None,
    ) -> str:
        """Eq. 2 over the dataset's raw item features plus any augmented ones."""
        return serialize_item(features, self.dataset.item_features, augmented, descriptors)

    def align(self, text_vecs: np.ndarray) -> np.ndarray:
        """Eq. 4 for ``[B, T]`` text vectors -> ``[B, D]`` phase-0 embeddings."""
        return self.ranker.align(text_vecs)

    def embed_text(self, text: str) -> np.ndarray:
        """Encode (Eq. 3) and align (Eq. 4) one serialized text -> ``[D]``."""
        return self.ranker.align(self.encoder.encode([text]))[0]

    def item_categories(self, features: Mapping[str, object] | None) -> tuple[str, ...]:
        """The item's category values (:data:`engine.schema.ITEM_CATEGORY` of the domain: film
        genres, MeSH classes) from its features, ``|``-joined or a list; () when absent."""
        column = ITEM_CATEGORY.get(self.domain)
        value = (features or {}).get(column) if column else None
        if value is None or (isinstance(value, float) and value != value):
            return ()
        parts = value.split(MULTI_SEP) if isinstance(value, str) else list(value)
        return tuple(p for p in (str(v).strip() for v in parts) if p)

    def target_rows(self, target_ids: Sequence[str]) -> np.ndarray:
        """Rows of ``target_ids`` in the target table (ValueError naming unknown ids)."""
        ids = [str(t) for t in target_ids]
        row_of = self._row_of
        unknown = [t for t in ids if t not in row_of]
        if unknown:
            raise ValueError(f"unknown target ids: {unknown[:5]}")
        if row_of is self.target_pos:  # duplicate ids: pandas' own lookup
            return self.target_pos.loc[ids].to_numpy(dtype=np.int64, copy=True)
        return np.fromiter((row_of[t] for t in ids), np.int64, len(ids))

    def decisions(self, decisions: Mapping[str, int] | None) -> Decisions:
        """``{target_id: 1 confirmed / 0 rejected}`` -> :class:`Decisions` (target rows)."""
        decisions = decisions or {}
        bad = [y for y in decisions.values() if int(y) not in (0, 1)]
        if bad:
            raise ValueError(f"labels must be 0 or 1, got {bad[:5]}")
        return Decisions(self.target_rows([t for t, y in decisions.items() if int(y) == 1]),
                         self.target_rows([t for t, y in decisions.items() if int(y) == 0]))

    def neighbours(self, embedding: np.ndarray, k: int = 5) -> pd.DataFrame:
        """The k nearest established items by cosine similarity in the ranker's space."""
        hits = self.index.search(np.asarray(embedding, dtype=np.float32), k)[0]
        names = self._target_names
        rows = []
        for item_id, sim in hits:
            ev = [str(names.get(t, t)) for t in self.evidence.get(item_id, [])]
            rows.append(
                {
                    ITEM_ID: item_id,
                    NAME: self._item_names.get(item_id, item_id),
                    "similarity": sim,
                    "evidence": ", ".join(ev),
                }
            )
        return pd.DataFrame(rows, columns=[ITEM_ID, NAME, "similarity", "evidence"])

    def rank(self, scores: np.ndarray, lift: np.ndarray | None = None) -> pd.DataFrame:
        """All targets sorted by score (ties: lower target row first), with ``rank`` 1..N,
        ``percentile`` (share of the catalog ranked below, 0-100), ``lift`` over popularity
        when known, and the targets' display columns."""
        return self.ranked(scores, lift).table()

    def ranked(self, scores: np.ndarray, lift: np.ndarray | None = None) -> RankedCatalog:
        """The order of :meth:`rank` without gathering the table."""
        scores = np.asarray(scores)
        order = ranking_order(scores)
        return RankedCatalog(order, scores[order],
                             None if lift is None else np.asarray(lift, np.float64)[order],
                             self.dataset.targets, self._row_of)

    def encode(self, features: Mapping[str, object], augmented: Mapping[str, str] | None = None,
               descriptors: Mapping[str, str] | None = None) -> tuple[str, np.ndarray]:
        """(serialized text, its text vector ``[T]``); ValueError when there is nothing to
        serialize."""
        text = self.serialize(features, augmented, descriptors)
        if not text:
            raise ValueError("the item has no feature values to serialize")
        return text, self.encoder.encode([text])[0]

    def _inputs(self, features: Mapping[str, object], augmented: Mapping[str, str] | None,
                descriptors: Mapping[str, str] | None, embedding: np.ndarray | None,
                decisions: Mapping[str, int] | None
                ) -> tuple[str, np.ndarray, Decisions, np.ndarray]:
        """(text, text vector ``[T]``, decisions as rows, embedding ``[D]``: the given one, else
        the phase-0 alignment of the text) of one item."""
        text, vec = self.encode(features, augmented, descriptors)
        emb = (self.ranker.align(vec[None])[0] if embedding is None
               else np.asarray(embedding, np.float32))
        return text, vec, self.decisions(decisions), emb

    def predict(
        self,
        features: Mapping[str, object],
        *,
        augmented: Mapping[str, str] | None = None,
        descriptors: Mapping[str, str] | None = None,
        embedding: np.ndarray | None = None,
        decisions: Mapping[str, int] | None = None,
        n_neighbours: int = 5,
        pin_decisions: bool = True,
    ) -> Prediction:
        """Phase-0 prediction from features, or a later phase's from a refined ``embedding``.

        ``decisions`` (``{target_id: 1 confirmed / 0 rejected}``, every decision so far) are
        scored by the ranker (e.g. propagation to co-associated targets); confirmed targets
        are then listed first and rejected ones last unless ``pin_decisions`` is False. Their
        rank in the model's own ranking is in :attr:`Prediction.model_rank` either way.
        """
        text, vec, dec, emb = self._inputs(features, augmented, descriptors, embedding,
                                           decisions)
        cats = self.item_categories(features)
        scored = self.ranker.score(vec, emb, dec, cats)
        scores = np.asarray(scored.scores, np.float64)
        model_rank: dict[str, int] = {}
        if dec:
            own = ranks_of(scores)
            for r in np.concatenate([dec.confirmed, dec.rejected]):
                model_rank[str(self._target_ids[r])] = int(own[r])
        if pin_decisions and dec:
            scores = pinned(scores, dec)
        return Prediction(
            text=text,
            embedding=emb,
            ranked=self.ranked(scores, scored.lift),
            neighbours=self.neighbours(emb, n_neighbours),
            model_rank=model_rank,
            categories=cats,
        )

    def scores(
        self,
        features: Mapping[str, object],
        *,
        augmented: Mapping[str, str] | None = None,
        descriptors: Mapping[str, str] | None = None,
        embedding: np.ndarray | None = None,
        decisions: Mapping[str, int] | None = None,
    ) -> tuple[np.ndarray, Decisions]:
        """The ranker's own scores of every target ``[N]`` (nothing pinned, no table) and the
        decisions as target rows: one catalog scoring, for callers that need ranks only."""
        _, vec, dec, emb = self._inputs(features, augmented, descriptors, embedding, decisions)
        return np.asarray(self.ranker.score(vec, emb, dec, self.item_categories(features)).scores,
                          np.float64), dec

    def explain(
        self,
        features: Mapping[str, object],
        target_ids: Sequence[str],
        *,
        augmented: Mapping[str, str] | None = None,
        descriptors: Mapping[str, str] | None = None,
        embedding: np.ndarray | None = None,
        decisions: Mapping[str, int] | None = None,
    ) -> dict[str, list[Reason]]:
        """"Why this rank" for each of ``target_ids``: the ranker's own score parts, in plain
        words, largest first."""
        _, vec, dec, emb = self._inputs(features, augmented, descriptors, embedding, decisions)
        rows = self.target_rows(target_ids)
        reasons = self.ranker.explain(vec, emb, dec, rows, self.target_names,
                                      self.item_categories(features))
        return {str(t): r for t, r in zip(target_ids, reasons, strict=True)}

    def target_names(self, rows: np.ndarray) -> list[str]:
        """Display names of target rows."""
        return [str(self._target_names.get(t, t)) for t in self._target_ids[np.asarray(rows)]]

    def refine(
        self,
        embedding: np.ndarray,
        features: Mapping[str, object] | None,
        interactions: Sequence[tuple[str, int]],
    ) -> np.ndarray:
        """One phase update from (target_id, label) pairs: the ranker's posterior update of
        ``embedding`` (the item's phase-0 text embedding) with every decision so far.
        ``features`` are not read by the product rankers (kept for the call's shape)."""
        if not interactions:
            raise ValueError("refinement needs at least one interaction")
        pairs = {str(t): y for t, y in interactions}
        return self.ranker.refine(np.asarray(embedding, np.float32), self.decisions(pairs))

    @cached_property
    def popularity(self) -> np.ndarray:
        """``[N]`` each target's number of old-item positives."""
        train = self.split.train
        rows = self.target_pos.loc[train.loc[train[LABEL] > 0, TARGET_ID].astype(str)]
        return np.bincount(rows.to_numpy(), minlength=len(self.target_pos)).astype(np.float64)


_SIGN = np.uint64(1 << 63)


def ranks_of(scores: np.ndarray) -> np.ndarray:
    """Rank 1..N of every target row ``[N]`` (the order of :func:`ranking_order`)."""
    out = np.empty(len(scores), np.int64)
    out[ranking_order(scores)] = np.arange(1, len(scores) + 1)
    return out


def pinned(scores: np.ndarray, decisions: Decisions) -> np.ndarray:
    """The scores the analyst's tables rank by ``[N]``: confirmed targets above every other
    (a confirmed association is known), rejected ones below every other."""
    out = np.asarray(scores, np.float64).copy()
    if len(out) and decisions:
        top, bottom = float(out.max()), float(out.min())
        out[decisions.confirmed] = top + 1.0
        out[decisions.rejected] = bottom - 1.0
    return out


def ranking_order(scores: np.ndarray) -> np.ndarray:
    """Target rows by descending score, ties broken by lower row first: exactly
    ``np.argsort(-scores, kind="stable")`` (NaN scores last), about 8x faster on a million.

    Each ``-score`` becomes an order-preserving unsigned key whose low bits are replaced by
    the row, so one value sort (SIMD) orders by (score, row); only rows whose keys agree in
    the kept high bits (exact ties, or scores closer than the dropped bits) are re-sorted
    exactly by (full key, row).
    """
    s = np.asarray(scores, np.float64).ravel()
    n = s.size
    if n < 2:
        return np.arange(n, dtype=np.int64)
    neg = -s + 0.0  # descending; -0.0 and 0.0 one key
    bits = neg.view(np.uint64)
    key = np.where(bits & _SIGN, ~bits, bits | _SIGN)
    key[np.isnan(neg)] = np.iinfo(np.uint64).max  # NaN last, as the stable sort puts it
    shift = np.uint64((n - 1).bit_length())
    packed = np.sort(((key >> shift) << shift) | np.arange(n, dtype=np.uint64))
    order = (packed & ((np.uint64(1) << shift) - np.uint64(1))).astype(np.int64)
    hi = packed >> shift
    tie = hi[1:] == hi[:-1]
    if tie.any():
        near = np.zeros(n, bool)
        near[1:] |= tie
        near[:-1] |= tie
        pos = np.flatnonzero(near)
        sub = order[pos]
        order[pos] = sub[np.lexsort((sub, key[sub]))]
    return order


__all__ = ["Prediction", "RankedCatalog", "Workspace", "pinned", "ranking_order", "ranks_of"]
