"""Column and ID names shared by every module, and the feature specification type.

Every DataFrame the engine passes around uses these constants, never string literals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Domains -------------------------------------------------------------------------------------
MOVIE = "movie"
DISEASE = "disease"
DOMAINS: tuple[str, ...] = (MOVIE, DISEASE)

#: What the "target" of an item is called in each domain (the thing we rank for an item).
TARGET_NOUN = {MOVIE: "user", DISEASE: "gene"}
#: The item-table column holding an item's categories (``|``-joined) in each domain: film
#: genres, a disease's MeSH classes (the learned ranker's category channel reads it).
ITEM_CATEGORY = {MOVIE: "genres", DISEASE: "disease_class"}

# Interaction table columns ---------------------------------------------------------------------
ITEM_ID = "item_id"  #: str: MovieLens movie id, UMLS CUI, or demo id
TARGET_ID = "target_id"  #: str: MovieLens user id, NCBI Gene id, or demo id
LABEL = "label"  #: int 0/1
ORDER = "order"  #: sortable value giving arrival order within an item (timestamp, year, rank)
PHASE = "phase"  #: str: "train" (old items), "I", "II", "III", "test"

# Entity table columns ------------------------------------------------------------------------
NAME = "name"  #: display name of an item or a target
DESCRIPTION = "description"  #: optional free text

#: Phase labels in the order they arrive. Phase "0" has no interactions.
PHASES: tuple[str, ...] = ("0", "I", "II", "III")
UPDATE_PHASES: tuple[str, ...] = ("I", "II", "III")

FeatureKind = Literal["categorical", "multi", "numeric", "text"]


@dataclass(frozen=True)
class FeatureSpec:
    """One feature of an item or a target.

    Attributes:
        name: column name in the entity table.
        kind: ``categorical`` (one value), ``multi`` (a ``|``-separated list), ``numeric``
            (bucketed for the backbone) or ``text`` (only serialized for the text encoder).
        descriptor: human-readable name used in the ``<Descriptor>: value`` serialization.
        backbone: whether the backbone recommender uses this feature as an input field.
        text: whether the feature is serialized into the item text (items only).
    """

    name: str
    kind: FeatureKind
    descriptor: str
    backbone: bool = True
    text: bool = True

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("FeatureSpec.name must be non-empty")
        if self.kind not in ("categorical", "multi", "numeric", "text"):
            raise ValueError(f"FeatureSpec {self.name!r}: unknown kind {self.kind!r}")
        if self.kind == "text" and self.backbone:
            raise ValueError(f"FeatureSpec {self.name!r}: text features cannot feed the backbone")


#: Separator for multi-valued fields inside entity tables.
MULTI_SEP = "|"
