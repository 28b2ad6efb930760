"""The learned ranker (LightGBM LambdaRank over every channel's per-target features)."""

from engine.ltr.features import BASE_FEATURES, GENE_FEATURES, Reference, TargetKnowledge
from engine.ltr.model import LtrConfig, LtrRanker, train_ltr

__all__ = ["BASE_FEATURES", "GENE_FEATURES", "LtrConfig", "LtrRanker", "Reference",
           "TargetKnowledge", "train_ltr"]
