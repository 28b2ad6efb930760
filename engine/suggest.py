"""What to test next: a batch of targets to validate, from "most likely" to "most informative".

The analyst can test a few targets per round (default :data:`DEFAULT_K` = 4). Testing the
``k`` best-ranked targets (greedy top-k) maximizes the expected number of hits *this* round,
but the best-ranked targets are often co-associated with each other (they come from the same
nearest diseases, the same gene module), so their outcomes are correlated: when the first is
confirmed the others rise anyway (the ranking propagates confirmations to co-associated
targets), and when it is rejected they were probably wrong together. A batch spread over
different modules tells the next refinement more.

:func:`suggest` selects by maximal marginal relevance over the top of the current ranking::

    value(t | S) = relevance(t) - dial * max_{s in S} coassoc(t, s)

``relevance`` is 1 for the best-ranked untested target, falling linearly to 0 at the end of the
candidate pool; ``coassoc`` is the Jaccard overlap of the two targets' established items
(the old diseases that have both genes / the old movies both users rated); ``S`` the targets
already picked for this batch. ``dial = 0`` is exactly greedy top-k ("most likely"); ``dial = 1``
lets a target that duplicates a picked one lose a whole rank-pool's worth of relevance ("most
informative"). Each suggestion comes with its reason in plain words.

``bench/suggest.py`` simulates an analyst who tests each suggested batch (the oracle is the new
item's true targets) and chose :data:`DEFAULT_DIAL` on the old-item validation split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.schema import DISEASE, LABEL, MOVIE, TARGET_ID, TARGET_NOUN
from engine.workspace import Prediction, Workspace

DEFAULT_K = 4
#: The dial per domain with the most true targets in hand on the old-item validation split
#: (``bench/suggest.py`` with the product's ranker, ``results/suggest/<dataset>.json``:
#: ``validation.chosen_dial``; ``tests/test_suggest.py`` checks they agree).
DEFAULT_DIALS: dict[str, float] = {DISEASE: 0.5, MOVIE: 0.75}
DEFAULT_DIAL = DEFAULT_DIALS[DISEASE]
#: Untested targets from the top of the ranking that a batch is chosen from.
DEFAULT_POOL = 40
DIAL_LABELS = {0.0: "most likely", 1.0: "most informative"}


@dataclass(frozen=True)
class SuggestConfig:
    """How a batch is chosen.

    Attributes:
        k: targets per batch (>= 1).
        dial: 0 = most likely (greedy top-k) .. 1 = most informative (spread over modules).
        pool: untested targets from the top of the ranking considered (>= k).
    """

    k: int = DEFAULT_K
    dial: float = DEFAULT_DIAL
    pool: int = DEFAULT_POOL

    def __post_init__(self) -> None:
        if not isinstance(self.k, (int, np.integer)) or self.k < 1:
            raise ValueError(f"SuggestConfig.k must be an integer >= 1, got {self.k!r}")
        if not 0.0 <= float(self.dial) <= 1.0:
            raise ValueError(f"SuggestConfig.dial must be in [0, 1], got {self.dial!r}")
        if not isinstance(self.pool, (int, np.integer)) or self.pool < self.k:
            raise ValueError(f"SuggestConfig.pool must be an integer >= k ({self.k}), got "
                             f"{self.pool!r}")


@dataclass(frozen=True)
class Suggestion:
    """One target to test next.

    Attributes:
        target_id: the target.
        name: its display name (gene symbol / user id).
        rank: its rank in the current ranking (1 = best).
        score: its score in the current ranking.
        reason: why it is suggested, in plain words.
    """

    target_id: str
    name: str
    rank: int
    score: float
    reason: str


class CoAssociation:
    """Which established items each target has (old-item positives of the workspace), for the
    Jaccard overlap of two targets. Build once per workspace."""

    def __init__(self, ws: Workspace) -> None:
        train = ws.split.train
        pos = train[train[LABEL] > 0]
        self.items_of: dict[str, frozenset[str]] = {
            str(t): frozenset(g.astype(str))
            for t, g in pos.groupby(TARGET_ID, observed=True)[pos.columns[0]]
        }

    def overlap(self, a: str, b: str) -> tuple[float, int]:
        """(Jaccard overlap, shared established items) of two targets."""
        x, y = self.items_of.get(a, frozenset()), self.items_of.get(b, frozenset())
        if not x or not y:
            return 0.0, 0
        shared = len(x & y)
        return shared / len(x | y), shared


def suggest(ws: Workspace, prediction: Prediction, decisions: Mapping[str, int] | None = None,
            config: SuggestConfig | None = None, *, coassoc: CoAssociation | None = None,
            candidates: Sequence[str] | None = None) -> list[Suggestion]:
    """The next batch of targets to test for an item, best first.

    Args:
        ws: the workspace.
        prediction: the item's current ranking (``Workspace.predict``).
        decisions: ``{target_id: 1 / 0}`` already tested (never suggested again).
        config: batch size, dial and pool.
        coassoc: the workspace's :class:`CoAssociation` (built here when None; build it once
            when suggesting for many items).
        candidates: restrict the suggestions to these target ids (a candidate list).

    Returns:
        Up to ``k`` suggestions (fewer when fewer untested targets remain).
    """
    cfg = config or SuggestConfig()
    decided = {str(t) for t in (decisions or {})}
    co = coassoc or CoAssociation(ws)
    t = prediction.targets
    id_series = t[TARGET_ID].astype(str)
    ids = id_series.to_numpy()
    keep = ~id_series.isin(decided).to_numpy()  # hash lookups (np.isin sorts strings)
    if candidates is not None:
        keep &= id_series.isin({str(c) for c in candidates}).to_numpy()
    rows = np.flatnonzero(keep)[: cfg.pool]
    if not len(rows):
        return []
    pool_ids = ids[rows]
    n = len(rows)
    relevance = 1.0 - np.arange(n) / max(n, 1)
    names = t["name"].astype(str).to_numpy()[rows] if "name" in t.columns else pool_ids
    ranks = t["rank"].to_numpy()[rows]
    scores = t["score"].to_numpy()[rows]
    noun = TARGET_NOUN.get(ws.domain, "target")
    picked: list[int] = []
    reasons: list[str] = []
    redundancy = np.zeros(n)
    partner = np.full(n, -1)
    shared_n = np.zeros(n, int)
    for _ in range(min(cfg.k, n)):
        value = relevance - float(cfg.dial) * redundancy
        value[picked] = -np.inf
        best = int(np.argmax(value))
        greedy_next = next(i for i in range(n) if i not in picked)
        reasons.append(_reason(best, greedy_next, ranks, names, partner, shared_n, redundancy,
                               picked, noun, float(cfg.dial)))
        picked.append(best)
        for i in range(n):
            if i in picked:
                continue
            jac, shared = co.overlap(pool_ids[i], pool_ids[best])
            if jac > redundancy[i]:
                redundancy[i], partner[i], shared_n[i] = jac, best, shared
    return [Suggestion(target_id=str(pool_ids[i]), name=str(names[i]), rank=int(ranks[i]),
                       score=float(scores[i]), reason=r) for i, r in zip(picked, reasons,
                                                                           strict=True)]


def _reason(i: int, greedy_next: int, ranks: np.ndarray, names: np.ndarray,
            partner: np.ndarray, shared_n: np.ndarray, redundancy: np.ndarray,
            picked: list[int], noun: str, dial: float) -> str:
    head = f"#{int(ranks[i])} in the ranking"
    if i == greedy_next:
        if not picked:
            return f"{head}: the most likely untested {noun}"
        if redundancy[i] > 0 and partner[i] >= 0:
            return (f"{head}: the most likely {noun} left, although it shares "
                    f"{int(shared_n[i])} established item(s) with {names[partner[i]]}")
        return (f"{head}: the most likely {noun} left, and it shares no established item "
                "with the ones above")
    skipped = [names[j] for j in range(greedy_next, i) if j not in picked]
    why = ", ".join(str(s) for s in skipped[:3]) + (" …" if len(skipped) > 3 else "")
    return (f"{head}: picked over {why} (they overlap the {noun}s above: testing them tells "
            f"little more); it shares {'no' if redundancy[i] == 0 else 'little'} established "
            "item(s) with the batch, so its answer tests another group")


def plan_table(suggestions: Sequence[Suggestion], *, item: str = "", phase: str = "",
               noun: str = "target") -> pd.DataFrame:
    """An exportable plan: order, target, id, rank, score, reason (and the item and phase)."""
    rows = [{"order": n, noun: s.name, f"{noun} id": s.target_id, "rank": s.rank,
             "score": round(s.score, 4), "why test it": s.reason}
            for n, s in enumerate(suggestions, start=1)]
    out = pd.DataFrame(rows, columns=["order", noun, f"{noun} id", "rank", "score",
                                      "why test it"])
    if item:
        out.insert(0, "item", item)
    if phase:
        out.insert(1 if item else 0, "phase", phase)
    return out


def default_dial(domain: str) -> float:
    """The validated default dial of a domain (:data:`DEFAULT_DIALS`)."""
    return DEFAULT_DIALS.get(domain, DEFAULT_DIAL)


def dial_label(dial: float) -> str:
    """``most likely`` / ``most informative`` / ``balanced (0.5)``."""
    return DIAL_LABELS.get(float(dial), f"balanced ({float(dial):.2f})")


__all__ = ["DEFAULT_DIAL", "DEFAULT_DIALS", "DEFAULT_K", "DEFAULT_POOL", "CoAssociation",
           "SuggestConfig", "Suggestion", "default_dial", "dial_label", "plan_table", "suggest"]
