"""Loader for DisGeNET v7 gene–disease associations, enriched with NCBI Gene, HGNC and HPA.

Items are diseases (UMLS CUIs), targets are genes (NCBI Gene ids). The GDA file lists positives
only; :mod:`engine.data.protocol` samples the negatives.

Arrival order (``ORDER``) of a disease's associations follows the protocol: ``YearInitial``
ascending, empty years last, ties by gene id (numeric). It is encoded as one sortable integer,
``year_key * ORDER_GENE_FACTOR + gene_id`` with ``year_key = YearInitial`` or
:data:`MISSING_YEAR_KEY` when empty; the raw year is kept in the ``year_initial`` column.

The file's ``DSI`` and ``DPI`` columns are never read (protocol.md): DisGeNET computes them over
its whole database, the new diseases' test associations included, so as gene features they
leak the label (a gene's -DSI alone reached pooled AUC .74 on the test rows). A gene's
specificity could only be recomputed from the OLD diseases of a split; the loader has no
split, so genes simply carry no such feature. :data:`UNREAD_GDA_COLUMNS` lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.data.base import Dataset
from engine.data.errors import DataFormatError, MissingDataFileError, read_table, require_file
from engine.schema import (
    DESCRIPTION,
    DISEASE,
    ITEM_ID,
    LABEL,
    MULTI_SEP,
    NAME,
    ORDER,
    TARGET_ID,
    FeatureSpec,
)

DEFAULT_NAME = "disgenet-curated"

#: Columns of the DisGeNET v7 GDA files (curated and "all" share this schema).
GDA_COLUMNS: tuple[str, ...] = (
    "geneId", "geneSymbol", "DSI", "DPI", "diseaseId", "diseaseName", "diseaseType",
    "diseaseClass", "diseaseSemanticType", "score", "EI", "YearInitial", "YearFinal",
    "NofPmids", "NofSnps", "source",
)  # fmt: skip

#: GDA columns the loader never reads (computed over the whole database: label leak).
UNREAD_GDA_COLUMNS: frozenset[str] = frozenset({"DSI", "DPI"})

#: Sort key of an association with an empty ``YearInitial`` (after every real year).
MISSING_YEAR_KEY = 9999
#: ``ORDER = year_key * ORDER_GENE_FACTOR + gene_id``; NCBI gene ids stay below 10**10.
ORDER_GENE_FACTOR = 10**10

#: HPA protein classes dropped because HPA derives them from disease annotations (they leak
#: gene–disease labels into gene features):
#:
#: - "Disease related genes": genes with a disease association in UniProt/OMIM.
#: - "Cancer-related genes": genes from cancer gene censuses (COSMIC, mutated cancer genes).
#: - "Candidate cardiovascular disease genes": genes curated for cardiovascular disease.
#:
#: Kept: "Potential drug targets" and "FDA approved drug targets" (from DrugBank drug–target
#: records, not disease annotations); "RAS pathway related proteins" (a pathway membership);
#: the structural/functional classes (enzymes, transporters, receptors, predicted
#: membrane/secreted/intracellular, plasma proteins, ...). HPA v18 (2017) has 21 classes.
DROPPED_PROTEIN_CLASSES: frozenset[str] = frozenset(
    {"Disease related genes", "Cancer-related genes", "Candidate cardiovascular disease genes"}
)

#: Item (disease) features.
#: The disease name is serialized first; MeSH class codes feed the backbone and their names
#: (``disease_class_name``) the text.
ITEM_FEATURES: list[FeatureSpec] = [
    FeatureSpec(NAME, "text", "Disease name", backbone=False),
    FeatureSpec("disease_type", "categorical", "Disease type"),
    FeatureSpec("disease_class", "multi", "MeSH disease class code", text=False),
    FeatureSpec("disease_class_name", "text", "MeSH disease class", backbone=False),
    FeatureSpec("semantic_type", "categorical", "Semantic type"),
]

#: Readable names of the MeSH disease-class codes used in DisGeNET (tree "C" and "F03").
MESH_CLASS_NAMES: dict[str, str] = {
    "C01": "Infections", "C04": "Neoplasms", "C05": "Musculoskeletal Diseases",
    "C06": "Digestive System Diseases", "C07": "Stomatognathic Diseases",
    "C08": "Respiratory Tract Diseases", "C09": "Otorhinolaryngologic Diseases",
    "C10": "Nervous System Diseases", "C11": "Eye Diseases",
    "C12": "Urogenital Diseases", "C13": "Female Urogenital Diseases and Pregnancy Complications",
    "C14": "Cardiovascular Diseases", "C15": "Hemic and Lymphatic Diseases",
    "C16": "Congenital, Hereditary, and Neonatal Diseases and Abnormalities",
    "C17": "Skin and Connective Tissue Diseases", "C18": "Nutritional and Metabolic Diseases",
    "C19": "Endocrine System Diseases", "C20": "Immune System Diseases",
    "C21": "Disorders of Environmental Origin", "C22": "Animal Diseases",
    "C23": "Pathological Conditions, Signs and Symptoms", "C24": "Occupational Diseases",
    "C25": "Chemically-Induced Disorders", "C26": "Wounds and Injuries",
    "F01": "Behavior and Behavior Mechanisms", "F02": "Psychological Phenomena",
    "F03": "Mental Disorders",
}  # fmt: skip



def mesh_class_names(codes: object) -> str:
    """``"C04|C17"`` -> ``"Neoplasms|Skin and Connective Tissue Diseases"`` (unknown kept)."""
    if not isinstance(codes, str):
        return ""
    return MULTI_SEP.join(MESH_CLASS_NAMES.get(c, c) for c in codes.split(MULTI_SEP) if c)


_GDA_WHAT = "DisGeNET v7 gene-disease associations (tab-separated, 16 columns with header)"
_GENE_INFO_WHAT = "NCBI Homo_sapiens.gene_info (tab-separated, header starting with #tax_id)"
_HGNC_WHAT = "HGNC complete set (tab-separated, header with entrez_id and ensembl_gene_id)"
_HPA_WHAT = "Human Protein Atlas proteinatlas.tsv (zip or tsv, with Ensembl and Protein class)"


@dataclass(frozen=True)
class DisgenetFiles:
    """Paths of the DisGeNET inputs in the shared-data layout (optional ones may be None)."""

    gda: Path
    gene_info: Path | None
    hgnc: Path | None
    hpa: Path | None


def _first_existing(*candidates: Path) -> Path | None:
    return next((c for c in candidates if c.is_file()), None)


def find_disgenet_files(root: Path) -> DisgenetFiles:
    """Locate the inputs under ``root`` (``disgenet/``, ``ncbi-gene/``, ``hgnc/``, ``hpa/``).

    Prefers the curated GDA file; falls back to the "all" file when only that is present.

    Raises:
        MissingDataFileError: no GDA file under ``root/disgenet``.
    """
    root = Path(root)
    gda = _first_existing(
        *(
            root / "disgenet" / f"{kind}_gene_disease_associations.tsv{ext}"
            for kind in ("curated", "all")
            for ext in (".gz", "")
        )
    )
    if gda is None:
        raise MissingDataFileError(
            root / "disgenet" / "curated_gene_disease_associations.tsv.gz", _GDA_WHAT
        )
    return DisgenetFiles(
        gda=gda,
        gene_info=_first_existing(
            root / "ncbi-gene" / "Homo_sapiens.gene_info.gz",
            root / "ncbi-gene" / "Homo_sapiens.gene_info",
        ),
        hgnc=_first_existing(
            root / "hgnc" / "hgnc_complete_set.txt.gz", root / "hgnc" / "hgnc_complete_set.txt"
        ),
        hpa=_first_existing(
            root / "hpa" / "proteinatlas.tsv.zip", root / "hpa" / "proteinatlas.tsv"
        ),
    )


def _read_gda(path: Path) -> tuple[pd.DataFrame, str]:
    """The GDA rows with stripped/parsed columns and the file's sha256."""
    raw = read_table(path, what=_GDA_WHAT, required=GDA_COLUMNS)
    frame = raw.frame
    gene = raw.ints("geneId", "geneId (NCBI gene id)")
    if (gene <= 0).any() or (gene >= ORDER_GENE_FACTOR).any():
        row = int(np.flatnonzero(((gene <= 0) | (gene >= ORDER_GENE_FACTOR)).to_numpy())[0])
        raise raw.fail(row, f"geneId must be a positive NCBI gene id, got {int(gene.iloc[row])}")
    disease = frame["diseaseId"].str.strip()
    if (disease == "").any():
        row = int(np.flatnonzero((disease == "").to_numpy())[0])
        raise raw.fail(row, "diseaseId (UMLS CUI) must not be empty")
    year = raw.ints("YearInitial", "YearInitial", allow_empty=True)
    raw.ints("NofPmids", "NofPmids")
    raw.ints("NofSnps", "NofSnps")
    score = raw.floats("score", "score", allow_empty=False)
    year_key = year.fillna(MISSING_YEAR_KEY).astype("int64")
    out = pd.DataFrame(
        {
            ITEM_ID: disease,
            TARGET_ID: gene.astype(str),
            LABEL: np.ones(len(frame), dtype="int8"),
            ORDER: year_key * ORDER_GENE_FACTOR + gene,
            "year_initial": year.astype("float64"),
            "score": score,
            "gene_int": gene,
            "symbol": frame["geneSymbol"].str.strip(),
            "disease_name": frame["diseaseName"].str.strip(),
            "disease_type": frame["diseaseType"].str.strip(),
            "disease_class": frame["diseaseClass"].str.strip().str.replace(";", MULTI_SEP),
            "semantic_type": frame["diseaseSemanticType"].str.strip(),
        }
    )
    dup = out.duplicated([ITEM_ID, TARGET_ID])
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise raw.fail(
            row, f"association {out[ITEM_ID].iloc[row]}-{out[TARGET_ID].iloc[row]} repeated"
        )
    return out, raw.sha256


def _read_gene_info(path: Path) -> tuple[pd.DataFrame, str]:
    """gene id -> gene_type, description (NCBI full name)."""
    raw = read_table(
        path,
        what=_GENE_INFO_WHAT,
        required=("GeneID", "type_of_gene", "description"),
        comment_header=True,
    )
    ids = raw.ints("GeneID", "GeneID")
    description = raw.frame["description"].str.strip()
    full_name = raw.frame.get("Full_name_from_nomenclature_authority")
    if full_name is not None:
        full_name = full_name.str.strip()
        description = full_name.where(full_name != "-", description)
    out = pd.DataFrame(
        {
            TARGET_ID: ids.astype(str),
            "gene_type": raw.frame["type_of_gene"].str.strip(),
            DESCRIPTION: description.replace("-", ""),
        }
    ).drop_duplicates(TARGET_ID)
    return out, raw.sha256


def _read_hgnc(path: Path) -> tuple[pd.DataFrame, str]:
    """HGNC ensembl_gene_id -> entrez_id pairs (rows with both set)."""
    raw = read_table(path, what=_HGNC_WHAT, required=("entrez_id", "ensembl_gene_id", "name"))
    entrez = raw.ints("entrez_id", "entrez_id", allow_empty=True)
    ensembl = raw.frame["ensembl_gene_id"].str.strip()
    out = pd.DataFrame(
        {"ensembl": ensembl, TARGET_ID: entrez, "hgnc_name": raw.frame["name"].str.strip()}
    )
    out = out[out[TARGET_ID].notna()].copy()
    out[TARGET_ID] = out[TARGET_ID].astype("int64").astype(str)
    return out, raw.sha256


def _read_hpa(path: Path) -> tuple[pd.DataFrame, str]:
    """Ensembl id -> protein classes (``, ``-separated in the file)."""
    raw = read_table(path, what=_HPA_WHAT, required=("Ensembl", "Protein class"), zip_member=None)
    return (
        pd.DataFrame(
            {"ensembl": raw.frame["Ensembl"].str.strip(), "classes": raw.frame["Protein class"]}
        ),
        raw.sha256,
    )


def _protein_classes(hgnc: pd.DataFrame, hpa: pd.DataFrame) -> pd.Series:
    """target_id -> MULTI_SEP-joined protein classes, without :data:`DROPPED_PROTEIN_CLASSES`."""
    joined = hpa.merge(hgnc[["ensembl", TARGET_ID]], on="ensembl", how="inner")
    exploded = (
        joined[[TARGET_ID, "classes"]].assign(cls=joined["classes"].str.split(",")).explode("cls")
    )
    exploded["cls"] = exploded["cls"].str.strip()
    exploded = exploded[(exploded["cls"] != "") & exploded["cls"].notna()]
    exploded = exploded[~exploded["cls"].isin(DROPPED_PROTEIN_CLASSES)]
    exploded = exploded.drop_duplicates([TARGET_ID, "cls"]).sort_values([TARGET_ID, "cls"])
    return exploded.groupby(TARGET_ID)["cls"].agg(MULTI_SEP.join)


def load_disgenet(
    gda_path: Path,
    gene_info_path: Path | None = None,
    hgnc_path: Path | None = None,
    hpa_path: Path | None = None,
    name: str = DEFAULT_NAME,
) -> Dataset:
    """Load DisGeNET GDAs (curated or "all" file, same schema) as a positives-only Dataset.

    Args:
        gda_path: ``curated_gene_disease_associations.tsv(.gz)`` or the "all" file.
        gene_info_path: NCBI ``Homo_sapiens.gene_info(.gz)``: gene type and full name.
        hgnc_path: HGNC complete set: joins HPA Ensembl ids to NCBI gene ids.
        hpa_path: HPA ``proteinatlas.tsv.zip``: protein classes (needs ``hgnc_path``).
        name: dataset name used in every output.

    Returns:
        Items = diseases of the file; targets = genes of the file; interactions = one positive
        per association, ``ORDER`` as described in the module docstring, plus the columns
        ``year_initial`` and ``score``.

    Raises:
        MissingDataFileError: a given path does not exist.
        DataFormatError: a malformed line (message names file and line).
    """
    if hpa_path is not None and hgnc_path is None:
        raise ValueError("hpa_path needs hgnc_path (HPA is joined to NCBI ids through HGNC)")
    gda, gda_sha = _read_gda(require_file(gda_path, _GDA_WHAT))
    inputs = {Path(gda_path).name: gda_sha}

    items = (
        gda.drop_duplicates(ITEM_ID)
        .loc[:, [ITEM_ID, "disease_name", "disease_type", "disease_class", "semantic_type"]]
        .rename(columns={"disease_name": NAME})
        .sort_values(ITEM_ID)
        .reset_index(drop=True)
    )
    items["disease_class_name"] = items["disease_class"].map(mesh_class_names)
    genes = gda.drop_duplicates(TARGET_ID).sort_values("gene_int")
    targets = pd.DataFrame(
        {
            TARGET_ID: genes[TARGET_ID],
            NAME: genes["symbol"],
            "symbol": genes["symbol"],
            "gene_key": genes[TARGET_ID],
        }
    ).reset_index(drop=True)
    target_features = [
        FeatureSpec("gene_key", "categorical", "Gene ID", text=False),
        FeatureSpec("symbol", "categorical", "Gene symbol", backbone=False),
    ]

    if gene_info_path is not None:
        info, sha = _read_gene_info(require_file(gene_info_path, _GENE_INFO_WHAT))
        inputs[Path(gene_info_path).name] = sha
        targets = targets.merge(info, on=TARGET_ID, how="left")
        targets["gene_type"] = targets["gene_type"].fillna("unknown")
        targets[DESCRIPTION] = targets[DESCRIPTION].fillna("")
        target_features += [
            FeatureSpec("gene_type", "categorical", "Gene type"),
            FeatureSpec(DESCRIPTION, "text", "Full name", backbone=False),
        ]
    hgnc = None
    if hgnc_path is not None:
        hgnc, sha = _read_hgnc(require_file(hgnc_path, _HGNC_WHAT))
        inputs[Path(hgnc_path).name] = sha
        if DESCRIPTION not in targets.columns:
            names = hgnc.drop_duplicates(TARGET_ID).set_index(TARGET_ID)["hgnc_name"]
            targets[DESCRIPTION] = targets[TARGET_ID].map(names).fillna("")
            target_features.append(FeatureSpec(DESCRIPTION, "text", "Full name", backbone=False))
    if hpa_path is not None and hgnc is not None:
        hpa, sha = _read_hpa(require_file(hpa_path, _HPA_WHAT))
        inputs[Path(hpa_path).name] = sha
        classes = _protein_classes(hgnc, hpa)
        targets["protein_class"] = targets[TARGET_ID].map(classes).fillna("")
        target_features.append(FeatureSpec("protein_class", "multi", "Protein class"))

    interactions = gda[[ITEM_ID, TARGET_ID, LABEL, ORDER, "year_initial", "score"]].reset_index(
        drop=True
    )
    return Dataset(
        name=name,
        domain=DISEASE,
        items=items,
        targets=targets,
        interactions=interactions,
        item_features=list(ITEM_FEATURES),
        target_features=target_features,
        inputs=inputs,
        positives_only=True,
    )


def load_disgenet_dir(root: Path, name: str | None = None) -> Dataset:
    """Load DisGeNET from the shared-data layout under ``root`` (see :func:`find_disgenet_files`).

    The optional gene files (NCBI, HGNC, HPA) are used when present. The default name is
    ``disgenet-curated`` for the curated file and ``disgenet-all`` for the "all" file.
    """
    files = find_disgenet_files(root)
    if name is None:
        name = DEFAULT_NAME if files.gda.name.startswith("curated") else "disgenet-all"
    return load_disgenet(
        files.gda,
        files.gene_info,
        files.hgnc,
        files.hpa if files.hgnc is not None else None,
        name=name,
    )


__all__ = [
    "DROPPED_PROTEIN_CLASSES",
    "DataFormatError",
    "DisgenetFiles",
    "MESH_CLASS_NAMES",
    "mesh_class_names",
    "find_disgenet_files",
    "load_disgenet",
    "load_disgenet_dir",
]
