"""Target-side knowledge for the learned ranker: HGNC gene groups and locus types of genes,
and attribute kinds for ``<kind>_vote`` / ``<kind>_shared`` features.

Read from ``$EMERFLOW_DATA/hgnc/hgnc_complete_set.txt.gz`` (``entrez_id``, ``gene_family_id``
pipe-separated, ``locus_type``, ``ensembl_gene_id``), joined to the catalog's targets by NCBI
gene id; ``tissue``: the tissues of HPA's ``RNA TS TPM`` (genes whose RNA tissue category is
enriched, group enriched or enhanced; ``hpa/proteinatlas.tsv.zip``, joined through HGNC's
Ensembl id); ``band``: NCBI's cytogenetic ``map_location`` (``ncbi-gene/
Homo_sapiens.gene_info.gz``). Nothing here is derived from disease annotations (no HPA
protein classes at all, so none of its disease/cancer/drug classes; no DisGeNET DSI/DPI).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from engine.ltr.features import TargetKnowledge, memberships
from engine.schema import TARGET_ID


def hgnc_path(root: Path | None = None) -> Path | None:
    from engine.data.registry import data_root

    try:
        path = data_root(root) / "hgnc" / "hgnc_complete_set.txt.gz"
    except (OSError, ValueError):
        return None
    return path if path.is_file() else None


#: Attribute kinds :func:`gene_knowledge` can read.
ATTRIBUTE_KINDS: tuple[str, ...] = ("family", "tissue", "band")


def _tissues(hgnc: pd.DataFrame, ids: np.ndarray, root: Path) -> list[list[str]]:
    """Per target the HPA tissues of enriched/enhanced RNA expression ([] unknown)."""
    import zipfile

    path = root / "hpa" / "proteinatlas.tsv.zip"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: needed for the 'tissue' attribute")
    with zipfile.ZipFile(path) as z, z.open("proteinatlas.tsv") as f:
        hpa = pd.read_csv(f, sep="\t", dtype=str, usecols=["Ensembl", "RNA TS TPM"]).fillna("")
    tissues = hpa.drop_duplicates("Ensembl").set_index("Ensembl")["RNA TS TPM"]
    ens = hgnc["ensembl_gene_id"].reindex(ids).fillna("").to_numpy()
    out = []
    for e in ens:
        value = tissues.get(e, "") if e else ""
        out.append(sorted({part.split(":")[0].strip() for part in value.split(";")
                           if ":" in part}))
    return out


def _bands(ids: np.ndarray, root: Path) -> list[list[str]]:
    """Per target its NCBI cytogenetic band (the first of a range; [] unknown)."""
    path = root / "ncbi-gene" / "Homo_sapiens.gene_info.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: needed for the 'band' attribute")
    info = pd.read_csv(path, sep="\t", dtype=str, usecols=["GeneID", "map_location"])
    band = info.drop_duplicates("GeneID").set_index("GeneID")["map_location"]
    out = []
    for i in ids:
        value = str(band.get(i, "-") or "-")
        value = value.split("-")[0].split("|")[0].strip() if value != "-" else ""
        out.append([value] if value else [])
    return out


def gene_knowledge(targets: pd.DataFrame, path: Path | None,
                   kinds: tuple[str, ...] = ()) -> TargetKnowledge | None:
    """Gene groups ``[N, G]``, locus-type codes ``[N]`` and the attribute ``kinds``
    (:data:`ATTRIBUTE_KINDS`) of the catalog's targets (rows of ``targets``); None when the
    HGNC file is absent or no target is an HGNC gene.

    Raises:
        ValueError: an unknown attribute kind.
        FileNotFoundError: a kind's file is absent beside the HGNC file.
    """
    unknown = set(kinds) - set(ATTRIBUTE_KINDS)
    if unknown:
        raise ValueError(f"unknown gene attribute kinds {sorted(unknown)}; "
                         f"known: {list(ATTRIBUTE_KINDS)}")
    if path is None:
        return None
    hgnc = pd.read_csv(path, sep="\t", dtype=str, usecols=["entrez_id", "gene_family_id",
                                                           "locus_type", "ensembl_gene_id"]
                       ).fillna("")
    hgnc = hgnc[hgnc["entrez_id"] != ""].drop_duplicates("entrez_id").set_index("entrez_id")
    ids = targets[TARGET_ID].astype(str).str.strip().to_numpy()
    known = pd.Index(ids).isin(hgnc.index)
    if not known.any():
        return None
    families = [[g for g in f.split("|") if g]
                for f in hgnc["gene_family_id"].reindex(ids).fillna("").to_numpy()]
    loci = hgnc["locus_type"].reindex(ids).fillna("").to_numpy()
    root = Path(path).parent.parent
    attributes: dict[str, list[list[str]]] = {}
    for kind in kinds:
        if kind == "family":
            attributes[kind] = families
        elif kind == "tissue":
            attributes[kind] = _tissues(hgnc, ids, root)
        else:
            attributes[kind] = _bands(ids, root)
    return knowledge_from_lists(families, [str(x) for x in loci], attributes)


def knowledge_from_lists(families: list[list[str]], loci: list[str],
                         attributes: dict[str, list[list[str]]] | None = None
                         ) -> TargetKnowledge:
    """:class:`TargetKnowledge` from per-target group lists, locus-type names ('' unknown) and
    attribute lists per kind."""
    groups, group_ids = memberships(families)
    names = sorted({x for x in loci if x})
    code = {x: i for i, x in enumerate(names)}
    category = np.array([code.get(x, -1) for x in loci], np.float32)
    return TargetKnowledge(groups, category, names, group_ids=group_ids, families=families,
                           loci=loci, attribute_lists=dict(attributes or {}))
