"""Per-target features of one item for the learned ranker (:mod:`engine.ltr`).

Every channel the product has, computed against a *reference* set of established items (all
old items when serving; the other folds' old items while building training lists, so no
training item ever sees its own row):

- text neighbours: cosine of the item's text vector with every reference item's; the
  softmax-weighted share of the ``k`` nearest having the target (``vote``, and per item
  max-normalised ``vote_norm``), the plain share among the ``wide_k`` nearest (``vote_wide``),
  how many of the 5 nearest have it (``near5``), the best similarity and the rank of the
  nearest neighbour among the ``BEST_K`` nearest that has it (``best_sim``, ``best_rank``);
- EASE (Steck, WWW'19) evidence from the confirmed targets (``ease``, ``ease_norm``, its rank
  ``ease_rank_log``) and from the rejected ones (``ease_rejected``: on rated data a rejected
  target still watched the item);
- co-occurrence over reference items with the confirmed targets: mean and max cosine, and how
  many confirmed targets co-occur at all (``cooc_mean``, ``cooc_max``, ``cooc_count``);
- popularity over reference items (``pop_share``, ``pop_rank_log``), the numbers of confirmed
  and rejected targets, whether the target itself was rejected or confirmed;
- target-side knowledge when the catalog has it (genes: the number of confirmed genes sharing
  an HGNC gene group with it, ``family_shared``; its HGNC ``locus_type`` as a category), and
  per attribute kind of :attr:`TargetKnowledge.attributes` (HGNC gene group ``family``, HPA
  tissue of enriched expression ``tissue``, NCBI cytogenetic band ``band``): ``<kind>_vote``,
  the text-neighbour vote of the target's attribute mates (itself excluded), averaged over its
  attributes, which reaches targets no neighbour has; and ``<kind>_shared`` (``family`` has
  ``family_shared``), the confirmed targets sharing an attribute with it;
- ``simple_sum`` (``sum_beta > 0``): the strongest simple sum itself, ``vote_norm + sum_beta *
  ease_norm`` (the ``text-ease`` baseline's form, its validated beta), so the trees start from
  it instead of approximating a sum with splits;
- item level (``item_level``): the similarity of the nearest reference item (``sim1``) and the
  mean over the ``k`` nearest (``simk``): how far the text prior can be trusted;
- a learned text-to-target map (``ridge_lam > 0``): ridge regression of the reference items'
  positives on their unit text vectors, ``W = (TᵀT + λI)⁻¹ TᵀX``, scored as
  ``t W = (t Tᵀ)(TTᵀ + λI)⁻¹ X`` from the similarities (``ridge``, and per item max-normalised
  ``ridge_norm``). Unlike the neighbour vote it weighs every
  reference item jointly (near-duplicate neighbours do not count twice) and reaches targets
  through text directions rather than through single neighbours;
- item categories (``LtrConfig.categories``; film genres, a disease's MeSH classes): per
  target, the share of reference items of the item's category having it, averaged over the
  item's category keys (``cat_share``, and per item max-normalised ``cat_norm``). A key is one
  category (``set``) or the item's whole sorted combination (``combination``); reference items
  carry their own keys, so the channel is leave-fold-out like every other.

Shapes: ``M`` items, ``R`` reference items, ``N`` targets, ``F`` features.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field

import numpy as np
from scipy import sparse

from engine.emerflow.shared_space import EaseIndex
from engine.schema import MULTI_SEP

#: Neighbours searched for ``best_sim`` / ``best_rank`` (``best_rank`` = BEST_K + 1: none).
BEST_K = 50
#: Neighbours of ``near5``.
NEAR = 5

BASE_FEATURES: tuple[str, ...] = (
    "n_confirmed", "n_rejected", "pop_share", "pop_rank_log",
    "vote", "vote_norm", "vote_wide", "near5", "best_sim", "best_rank",
    "ease", "ease_norm", "ease_rank_log", "ease_rejected",
    "cooc_mean", "cooc_max", "cooc_count", "rejected", "confirmed",
)
GENE_FEATURES: tuple[str, ...] = ("family_shared", "locus_type")
ITEM_LEVEL_FEATURES: tuple[str, ...] = ("sim1", "simk")
RIDGE_FEATURES: tuple[str, ...] = ("ridge", "ridge_norm")
CATEGORY_FEATURES: tuple[str, ...] = ("cat_share", "cat_norm")
#: Per target, the earliest and the mean time (DisGeNET: YearInitial; MovieLens: the rating's
#: year) of its reference items' positives; NaN without one (LightGBM: missing).
RECENCY_FEATURES: tuple[str, ...] = ("first_year", "mean_year")
#: How an item's category values become keys (``LtrConfig.categories``; "" : not used).
CATEGORY_MODES: tuple[str, ...] = ("", "set", "combination")


def category_keys(values: Sequence[str] | str | None, mode: str) -> tuple[str, ...]:
    """An item's category keys: ``set`` one per distinct value, ``combination`` one for the
    sorted distinct values together; ``values`` a list or a ``|``-joined string."""
    if mode not in CATEGORY_MODES:
        raise ValueError(f"category mode must be one of {CATEGORY_MODES}, got {mode!r}")
    if values is None or (isinstance(values, float) and values != values):  # NaN
        return ()
    parts = values.split(MULTI_SEP) if isinstance(values, str) else list(values)
    distinct = sorted({str(v).strip() for v in parts if str(v).strip()})
    if not mode or not distinct:
        return ()
    return tuple(distinct) if mode == "set" else (MULTI_SEP.join(distinct),)


def unit_rows(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


@dataclass
class TargetKnowledge:
    """Target-side knowledge (no interaction data): ``groups [N, G]`` 0/1 CSR memberships
    (HGNC gene groups) and ``category [N]`` int codes (HGNC locus type; -1 unknown)."""

    groups: sparse.csr_matrix
    category: np.ndarray
    category_names: list[str]
    group_ids: list[str] | None = None
    families: list[list[str]] | None = None
    loci: list[str] | None = None
    #: attribute kind -> per-target attribute lists (``family``, ``tissue``, ``band``); the
    #: kinds whose ``<kind>_vote`` / ``<kind>_shared`` features the ranker computes
    attribute_lists: dict[str, list[list[str]]] = dataclass_field(default_factory=dict)

    def __post_init__(self) -> None:
        self.attributes: dict[str, sparse.csr_matrix] = {
            kind: self.groups if lists == self.families else memberships(lists)[0]
            for kind, lists in self.attribute_lists.items()}

    def to_json(self) -> dict:
        """Plain lists (what :func:`engine.ltr.knowledge.knowledge_from_lists` reads)."""
        return {"families": self.families, "loci": self.loci,
                "attributes": self.attribute_lists}


def memberships(lists: list[list[str]]) -> tuple[sparse.csr_matrix, list[str]]:
    """(0/1 ``[N, A]`` of per-target attribute lists, the ``A`` attribute ids in sorted
    order)."""
    ids = sorted({a for row in lists for a in row})
    pos = {a: i for i, a in enumerate(ids)}
    rows = [r for r, row in enumerate(lists) for _ in row]
    cols = [pos[a] for row in lists for a in row]
    matrix = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                               shape=(len(lists), max(len(ids), 1)))
    return matrix, ids


class Reference:
    """The established items a score is computed against: positives ``x [R, N]`` (0/1) and
    unit text vectors ``text [R, T]``, with the EASE index (``lam``) and co-occurrence degrees;
    ``categories``: each reference item's category keys (:func:`category_keys`), for the
    category channel (None: not used).
    """

    def __init__(self, x: sparse.spmatrix | np.ndarray, text: np.ndarray, lam: float,
                 ridge_lam: float = 0.0,
                 categories: Sequence[Sequence[str]] | None = None,
                 recency: np.ndarray | None = None):
        self.x = sparse.csr_matrix(x, dtype=np.float32)
        self.x.data[:] = 1.0
        self.xt = sparse.csr_matrix(self.x.T)  # [N, R]
        self.text = unit_rows(text)
        self.ease = EaseIndex(self.x, lam)
        self.deg = np.asarray(self.x.sum(0), np.float64).ravel()  # [N]
        n_ref = max(self.x.shape[0], 1)
        self.pop_share = self.deg / n_ref
        order = np.argsort(-self.deg, kind="stable")
        rank = np.empty(len(order), np.float64)
        rank[order] = np.arange(1, len(order) + 1)
        self.pop_rank_log = np.log2(rank)
        #: target co-occurrence counts ``XᵀX`` ``[N, N]`` (sparse), once
        #: :meth:`precompute_cooc` ran (many items scored against one reference); None:
        #: :func:`cooc_parts` multiplies per item
        self.cooc: sparse.csr_matrix | None = None
        #: ``(TTᵀ + λI)⁻¹`` ``[R, R]`` of the ridge map (None: ``ridge_lam == 0``)
        self.ridge_inv: np.ndarray | None = None
        if ridge_lam > 0:
            gram = self.text @ self.text.T  # [R, R]
            gram[np.diag_indices_from(gram)] += ridge_lam
            self.ridge_inv = np.linalg.inv(gram)
        #: ``[2, N]`` earliest / mean time of each target's reference positives
        #: (:func:`target_recency`); None: the recency channel is off
        self.recency = None if recency is None else np.asarray(recency, np.float64)
        if self.recency is not None and self.recency.shape != (2, self.x.shape[1]):
            raise ValueError(f"Reference: recency of shape {self.recency.shape}, expected "
                             f"(2, {self.x.shape[1]})")
        #: category key -> row of :attr:`category_profile` ``[G, N]`` (the share of the
        #: reference items with that key having each target); None: no category channel
        self.categories: list[tuple[str, ...]] | None = None
        self.category_ids: dict[str, int] = {}
        self.category_profile: np.ndarray | None = None
        if categories is not None:
            self.categories = [tuple(c) for c in categories]
            if len(self.categories) != self.x.shape[0]:
                raise ValueError(f"Reference: {len(self.categories)} category lists for "
                                 f"{self.x.shape[0]} reference items")
            self.category_ids = {k: i for i, k in enumerate(
                sorted({k for keys in self.categories for k in keys}))}
            member = self.category_rows(self.categories)  # [R, G]
            size = np.asarray(member.sum(0), np.float64).ravel()
            self.category_profile = (np.asarray((member.T @ self.x).todense(), np.float64)
                                     / np.maximum(size, 1)[:, None])

    def category_rows(self, keys: Sequence[Sequence[str]]) -> sparse.csr_matrix:
        """0/1 ``[M, G]`` of each item's category keys (keys no reference item has: dropped).
        """
        ids = self.category_ids
        rows = [i for i, ks in enumerate(keys) for k in ks if k in ids]
        cols = [ids[k] for ks in keys for k in ks if k in ids]
        return sparse.csr_matrix((np.ones(len(rows), np.float64), (rows, cols)),
                                 shape=(len(keys), max(len(ids), 1)))

    def precompute_cooc(self) -> None:
        """Keep ``XᵀX`` (``[N, N]`` sparse counts; 0.25–0.7 s and 70–100 MB on the real
        datasets) so :func:`cooc_parts` slices rows instead of multiplying per item; the counts
        are the same integers either way."""
        if self.cooc is None:
            self.cooc = sparse.csr_matrix(self.xt @ self.x)

    def ridge(self, sims: np.ndarray) -> np.ndarray:
        """Ridge scores ``[M, N]`` of items with similarities ``sims [M, R]``."""
        if self.ridge_inv is None:
            raise ValueError("Reference built without ridge_lam")
        return np.asarray(self.xt @ (sims @ self.ridge_inv).T).T

    @property
    def n_targets(self) -> int:
        return self.x.shape[1]

    def similarities(self, text: np.ndarray) -> np.ndarray:
        """Cosine of text vectors ``[M, T]`` with every reference item ``[M, R]``."""
        return unit_rows(text) @ self.text.T


def attribute_features(knowledge: TargetKnowledge | None) -> tuple[str, ...]:
    """``<kind>_vote`` and ``<kind>_shared`` per attribute kind (``family_shared`` is in
    :data:`GENE_FEATURES`)."""
    if knowledge is None:
        return ()
    out: list[str] = []
    for kind in knowledge.attribute_lists:
        out.append(f"{kind}_vote")
        if kind != "family":
            out.append(f"{kind}_shared")
    return tuple(out)


def feature_names(knowledge: TargetKnowledge | None, item_level: bool = False,
                  simple_sum: bool = False, ridge: bool = False,
                  categories: bool = False, recency: bool = False) -> tuple[str, ...]:
    return (BASE_FEATURES + (GENE_FEATURES if knowledge is not None else ())
            + attribute_features(knowledge) + (ITEM_LEVEL_FEATURES if item_level else ())
            + (("simple_sum",) if simple_sum else ()) + (RIDGE_FEATURES if ridge else ())
            + (CATEGORY_FEATURES if categories else ())
            + (RECENCY_FEATURES if recency else ()))


def target_recency(times: sparse.spmatrix) -> np.ndarray:
    """``[2, N]`` float64: per target, the earliest and the mean time of the positives in
    ``times [R, N]`` (one time per positive, NaN where unknown); NaN for a target without a
    known time."""
    coo = sparse.coo_matrix(times)
    n = coo.shape[1]
    out = np.full((2, n), np.nan)
    ok = np.isfinite(coo.data)
    col, t = coo.col[ok], coo.data[ok].astype(np.float64)
    if col.size:
        count = np.bincount(col, minlength=n)
        has = count > 0
        out[1, has] = (np.bincount(col, weights=t, minlength=n)[has] / count[has])
        first = np.full(n, np.inf)
        np.minimum.at(first, col, t)
        out[0, has] = first[has]
    return out


def mates_vote(a: sparse.csr_matrix, vote: np.ndarray) -> np.ndarray:
    """``[M, N]``: per target, the mean vote of its attribute mates (itself excluded),
    averaged over its attributes (0 without attributes).

    Args:
        a: ``[N, A]`` 0/1 memberships; vote: ``[M, N]`` per-target vote.
    """
    size = np.asarray(a.sum(0), np.float64).ravel()  # [A]
    w = np.where(size > 1, 1.0 / np.maximum(size - 1, 1), 0.0)  # mates per attribute
    prof = np.asarray((a.T @ vote.T).T) * w[None, :]  # [M, A] mean vote of the members
    own = vote * np.asarray(a @ w).ravel()[None, :]  # the target's own share of it
    n_attr = np.asarray(a.sum(1), np.float64).ravel()  # [N]
    total = np.asarray((a @ prof.T).T) - own  # [M, N]
    return np.where(n_attr[None, :] > 0, total / np.maximum(n_attr, 1)[None, :], 0.0)


def _rank_log(values: np.ndarray) -> np.ndarray:
    """Per row ``log2`` of the descending rank (ties: lower column first) ``[M, N]``."""
    order = np.argsort(-values, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(1, values.shape[1] + 1)[None, :], axis=1)
    return np.log2(rank.astype(np.float64))


def _max_norm(v: np.ndarray, over: np.ndarray | None = None) -> np.ndarray:
    top = (v if over is None else np.where(over, v, -np.inf)).max(1, keepdims=True)
    return np.where(top > 0, v / np.where(top > 0, top, 1.0), 0.0)


def cooc_parts(ref: Reference, confirmed_rows: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Cosine co-occurrence ``[C, N]`` of each confirmed target with every target over the
    reference items, and the raw counts ``[C, N]``."""
    if ref.cooc is not None:
        counts = ref.cooc[confirmed_rows].toarray().astype(np.float64)  # [C, N]
    else:
        counts = (ref.xt[confirmed_rows] @ ref.x).toarray().astype(np.float64)
    denom = np.sqrt(ref.deg[confirmed_rows][:, None] * ref.deg[None, :])
    cos = np.divide(counts, denom, out=np.zeros_like(counts), where=denom > 0)
    return cos, counts


def item_features(ref: Reference, sims: np.ndarray, confirmed: np.ndarray,
                  rejected: np.ndarray, *, k: int, temperature: float, wide_k: int,
                  knowledge: TargetKnowledge | None = None, item_level: bool = False,
                  sum_beta: float = 0.0, categories: Sequence[Sequence[str]] | None = None
                  ) -> np.ndarray:
    """Features ``[M, N, F]`` float32 (order: :func:`feature_names`).

    Args:
        ref: the reference items.
        sims: cosine of each item's text with the reference items ``[M, R]``.
        confirmed, rejected: ``[M, N]`` 0/1 decisions so far.
        k, temperature: the softmax vote over the ``k`` nearest.
        wide_k: the plain share over the ``wide_k`` nearest.
        categories: each item's category keys (used when ``ref`` has category profiles;
            None: no item's categories are known, the channel is 0).
    """
    m, n_ref = sims.shape
    n = ref.n_targets
    confirmed = np.asarray(confirmed, np.float64)
    rejected = np.asarray(rejected, np.float64)
    names = feature_names(knowledge, item_level, sum_beta > 0, ref.ridge_inv is not None,
                          ref.category_profile is not None, ref.recency is not None)
    out = np.zeros((m, n, len(names)), np.float32)
    col = {name: i for i, name in enumerate(names)}

    n_conf = confirmed.sum(1)
    out[:, :, col["n_confirmed"]] = n_conf[:, None]
    out[:, :, col["n_rejected"]] = rejected.sum(1)[:, None]
    out[:, :, col["pop_share"]] = ref.pop_share[None, :]
    out[:, :, col["pop_rank_log"]] = ref.pop_rank_log[None, :]
    out[:, :, col["rejected"]] = rejected
    out[:, :, col["confirmed"]] = confirmed

    # text neighbours (ties: lower reference row first)
    depth = min(max(k, wide_k, BEST_K, NEAR), n_ref)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :depth]  # [M, depth]
    top_sim = np.take_along_axis(sims, order, axis=1)
    kk = min(k, n_ref)
    s = top_sim[:, :kk] / temperature
    w = np.exp(s - s.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    weights = np.zeros((m, n_ref))
    np.put_along_axis(weights, order[:, :kk], w, axis=1)
    vote = np.asarray(ref.xt @ weights.T).T  # [M, N]
    out[:, :, col["vote"]] = vote
    out[:, :, col["vote_norm"]] = _max_norm(vote)
    wk = min(wide_k, n_ref)
    uni = np.zeros((m, n_ref))
    np.put_along_axis(uni, order[:, :wk], 1.0 / wk, axis=1)
    out[:, :, col["vote_wide"]] = np.asarray(ref.xt @ uni.T).T
    near = np.zeros((m, n_ref))
    np.put_along_axis(near, order[:, :min(NEAR, n_ref)], 1.0, axis=1)
    out[:, :, col["near5"]] = np.asarray(ref.xt @ near.T).T
    bk = min(BEST_K, n_ref)
    best_sim = np.zeros((m, n), np.float32)
    best_rank = np.full((m, n), BEST_K + 1, np.float32)
    indptr, indices = ref.x.indptr, ref.x.indices
    for i in range(m):
        for j in range(bk - 1, -1, -1):  # nearest last: it overwrites farther ones
            r = order[i, j]
            cols = indices[indptr[r]:indptr[r + 1]]
            best_sim[i, cols] = top_sim[i, j]
            best_rank[i, cols] = j + 1
    out[:, :, col["best_sim"]] = best_sim
    out[:, :, col["best_rank"]] = best_rank

    # evidence from decisions
    has = n_conf > 0
    out[:, :, col["ease_rank_log"]] = np.log2(n)
    if has.any():
        ease = ref.ease.scores(confirmed[has])
        out[has, :, col["ease"]] = ease
        out[has, :, col["ease_norm"]] = _max_norm(ease, confirmed[has] == 0)
        out[has, :, col["ease_rank_log"]] = _rank_log(ease)
        for i in np.flatnonzero(has):
            cos, counts = cooc_parts(ref, np.flatnonzero(confirmed[i]))
            out[i, :, col["cooc_mean"]] = cos.mean(0)
            out[i, :, col["cooc_max"]] = cos.max(0)
            out[i, :, col["cooc_count"]] = (counts > 0).sum(0)
    has_rej = rejected.sum(1) > 0
    if has_rej.any():
        out[has_rej, :, col["ease_rejected"]] = _max_norm(ref.ease.scores(rejected[has_rej]))

    if knowledge is not None:
        g = knowledge.groups
        conf_sparse = sparse.csr_matrix(confirmed)
        shared = (conf_sparse @ g @ g.T).toarray()  # [M, N]
        out[:, :, col["family_shared"]] = shared
        out[:, :, col["locus_type"]] = knowledge.category[None, :]
        for kind, a in knowledge.attributes.items():
            out[:, :, col[f"{kind}_vote"]] = mates_vote(a, vote)
            if kind != "family":
                out[:, :, col[f"{kind}_shared"]] = (conf_sparse @ a @ a.T).toarray()
    if sum_beta > 0:
        out[:, :, col["simple_sum"]] = (out[:, :, col["vote_norm"]]
                                        + sum_beta * out[:, :, col["ease_norm"]])
    if ref.ridge_inv is not None:
        ridge = ref.ridge(sims)
        out[:, :, col["ridge"]] = ridge
        out[:, :, col["ridge_norm"]] = _max_norm(ridge)
    if item_level:
        out[:, :, col["sim1"]] = top_sim[:, :1]
        out[:, :, col["simk"]] = top_sim[:, :kk].mean(1, keepdims=True)
    if ref.category_profile is not None:
        q = ref.category_rows(categories if categories is not None else [()] * m)  # [M, G]
        n_keys = np.asarray(q.sum(1), np.float64).ravel()
        share = np.asarray(q @ ref.category_profile) / np.maximum(n_keys, 1)[:, None]
        out[:, :, col["cat_share"]] = share
        out[:, :, col["cat_norm"]] = _max_norm(share)
    if ref.recency is not None:
        out[:, :, col["first_year"]] = ref.recency[0][None, :]
        out[:, :, col["mean_year"]] = ref.recency[1][None, :]
    return out
