"""Target-side knowledge for the learned ranker: HGNC gene groups and locus types of genes.

Read from ``$EMERFLOW_DATA/hgnc/hgnc_complete_set.txt.gz`` (``entrez_id``, ``gene_family_id``
pipe-separated, ``locus_type``), joined to the catalog's targets by NCBI gene id. Nothing here
is derived from disease annotations (no HPA disease/cancer/drug classes, no DisGeNET DSI/DPI).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from engine.ltr.features import TargetKnowledge
from engine.schema import TARGET_ID


def hgnc_path(root: Path | None = None) -> Path | None:
    from engine.data.registry import data_root

    try:
        path = data_root(root) / "hgnc" / "hgnc_complete_set.txt.gz"
    except (OSError, ValueError):
        return None
    return path if path.is_file() else None


def gene_knowledge(targets: pd.DataFrame, path: Path | None) -> TargetKnowledge | None:
    """Gene groups ``[N, G]`` and locus-type codes ``[N]`` of the catalog's targets (rows of
    ``targets``); None when the file is absent or no target is an HGNC gene."""
    if path is None:
        return None
    hgnc = pd.read_csv(path, sep="\t", dtype=str, usecols=["entrez_id", "gene_family_id",
                                                           "locus_type"]).fillna("")
    hgnc = hgnc[hgnc["entrez_id"] != ""].drop_duplicates("entrez_id").set_index("entrez_id")
    ids = targets[TARGET_ID].astype(str).str.strip().to_numpy()
    known = pd.Index(ids).isin(hgnc.index)
    if not known.any():
        return None
    families = hgnc["gene_family_id"].reindex(ids).fillna("").to_numpy()
    loci = hgnc["locus_type"].reindex(ids).fillna("").to_numpy()
    return knowledge_from_lists([[g for g in f.split("|") if g] for f in families],
                                [str(x) for x in loci])


def knowledge_from_lists(families: list[list[str]], loci: list[str]) -> TargetKnowledge:
    """:class:`TargetKnowledge` from per-target group lists and locus-type names ('' unknown)."""
    group_ids = sorted({g for fam in families for g in fam})
    pos = {g: i for i, g in enumerate(group_ids)}
    rows = [r for r, fam in enumerate(families) for _ in fam]
    cols = [pos[g] for fam in families for g in fam]
    groups = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                               shape=(len(families), max(len(group_ids), 1)))
    names = sorted({x for x in loci if x})
    code = {x: i for i, x in enumerate(names)}
    category = np.array([code.get(x, -1) for x in loci], np.float32)
    return TargetKnowledge(groups, category, names, group_ids=group_ids, families=families,
                           loci=loci)
