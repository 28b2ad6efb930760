"""Evidence per predicted gene for the pages: the dashboard's caches around
:mod:`engine.evidence` (no streamlit here).

The wording and the columns live in :mod:`engine.evidence`, shared with ``emerflow rank``; this
module binds them to the data root's knowledge (HPO annotations, DisGeNET GDA scores, NCBI/HGNC
gene records) and to an :class:`app.flows.ItemState`, and caches the association index per
workspace model.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import pandas as pd

from app import lookup
from app.flows import ItemState
from engine import evidence as ev
from engine.evidence import (
    BEST_KNOWN,
    EVIDENCE_COLUMNS,
    LINK_COLUMNS,
    MISSING_YEAR,
    N_NEIGHBOURS,
    ORDER_GENE_FACTOR,
    SHOW_NEIGHBOURS,
    AssociationIndex,
    order_year,
    read_gda_scores,
)
from engine.schema import ITEM_ID
from engine.workspace import Workspace

_INDEX: dict[tuple[str, str, str], AssociationIndex] = {}
_INDEX_LOCK = threading.Lock()


def gda_scores(root: str | None = None) -> dict[tuple[str, str], float]:
    """(CUI, gene id) -> score from DisGeNET's curated GDA file under the data root; empty
    when absent. Read once per file."""
    src = lookup.knowledge(root).sources
    if src is None or not src.has("gda"):
        return {}
    return read_gda_scores(src.path("gda"))


def association_index(ws: Workspace, root: str | None = None) -> AssociationIndex:
    """The workspace's :class:`AssociationIndex`, built once per workspace model and root."""
    src = lookup.knowledge(root).sources
    key = (ws.name, ws.model_version, str(src.root) if src is not None else "")
    with _INDEX_LOCK:  # one build per key, also when a background warm-up is under way
        if key not in _INDEX:
            _INDEX[key] = AssociationIndex.build(ws, gda_scores(root) if ws.domain == "disease"
                                                 else None)
        return _INDEX[key]


def hpo_annotations(root: str | None = None) -> Mapping[str, Sequence[str]] | None:
    """CUI -> HP ids under the data root, or None without the HPO file."""
    kn = lookup.knowledge(root)
    return kn.hpo.annotations if kn.hpo is not None else None


def item_phenotypes(features: Sequence[Mapping[str, object]]) -> list[str]:
    """The HPO ids of an item's kept ``phenotype_ids`` feature (``[]`` when none)."""
    for f in features:
        if f.get("name") == lookup.PHENOTYPE_IDS and f.get("value"):
            return [p for p in str(f["value"]).split("|") if p.startswith("HP:")]
    return []


def evidence_table(ws: Workspace, state: ItemState, gene_ids: Sequence[str], *,
                   phenotypes: Sequence[str] = (), root: str | None = None,
                   n_neighbours: int = N_NEIGHBOURS) -> pd.DataFrame:
    """:func:`engine.evidence.evidence_table` for the item's current ranking."""
    return ev.evidence_table(ws, state.prediction, state.decisions, gene_ids,
                             index=association_index(ws, root),
                             hpo_annotations=hpo_annotations(root), phenotypes=phenotypes,
                             genes=lookup.gene_resolver(ws, root), n_neighbours=n_neighbours)


def with_evidence(ws: Workspace, state: ItemState, table: pd.DataFrame, *,
                  phenotypes: Sequence[str] = (), root: str | None = None) -> pd.DataFrame:
    """A ranked table (``app.predictions.ranked_targets``, disease) with the evidence and link
    columns added, for the page and every export; movie tables get the ranker's own "why this
    rank" only."""
    if table.empty:
        return table
    if ws.domain != "disease":
        return ev.with_evidence(ws, state.prediction, state.decisions, table, index=None)
    return ev.with_evidence(ws, state.prediction, state.decisions, table,
                            index=association_index(ws, root),
                            hpo_annotations=hpo_annotations(root), phenotypes=phenotypes,
                            genes=lookup.gene_resolver(ws, root))


def neighbour_evidence(ws: Workspace, state: ItemState, root: str | None = None
                       ) -> pd.DataFrame:
    """Nearest established items with their best-known targets = highest-scoring genes."""
    n = state.prediction.neighbours.copy()
    idx = association_index(ws, root)
    n["best-known targets"] = [", ".join(idx.best_known(str(i))) for i in n[ITEM_ID]]
    n["similarity"] = n["similarity"].astype(float).round(4)
    n = n.drop(columns=[c for c in ("evidence",) if c in n.columns])
    return n.rename(columns={ITEM_ID: "item"})


__all__ = ["BEST_KNOWN", "EVIDENCE_COLUMNS", "LINK_COLUMNS", "MISSING_YEAR",
           "ORDER_GENE_FACTOR", "SHOW_NEIGHBOURS", "AssociationIndex", "association_index",
           "evidence_table", "gda_scores", "hpo_annotations", "item_phenotypes",
           "neighbour_evidence", "order_year", "with_evidence"]
