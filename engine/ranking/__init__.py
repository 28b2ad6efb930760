"""The product's rankers behind one seam (:class:`engine.ranking.base.Ranker`)."""

from engine.ranking.base import Decisions, Ranker, Reason, Scored

__all__ = ["Decisions", "Ranker", "Reason", "Scored"]
