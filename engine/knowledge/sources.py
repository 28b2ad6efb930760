"""Where the curated knowledge files live under a data root, and how values from them are tagged.

Every value taken from one of these files carries the tag ``"curated: <file, version>"`` (see
:func:`curated_tag`) so the dashboard can show curated values apart from LLM and analyst ones.
The files are the ones described in each data folder's ``SOURCE.md``; none is committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Short key -> (path under the data root, human-readable version used in provenance tags).
KNOWLEDGE_FILES: dict[str, tuple[str, str]] = {
    "disease_mappings": ("disgenet/disease_mappings.tsv", "DisGeNET pre-v7 (2018)"),
    "hpo": ("hpo/HPO&Orphanet_dis_symp.txt", "HPO + Orphanet CUI pairs (2018)"),
    "gene_info": ("ncbi-gene/Homo_sapiens.gene_info.gz", "NCBI Gene 2020-01"),
    "hgnc": ("hgnc/hgnc_complete_set.txt.gz", "HGNC complete set 2019-01"),
    "gda": ("disgenet/curated_gene_disease_associations.tsv.gz", "DisGeNET v7.0 curated"),
}

CURATED_PREFIX = "curated: "


def curated_tag(key: str) -> str:
    """``"curated: disease_mappings.tsv, DisGeNET pre-v7 (2018)"`` for a :data:`KNOWLEDGE_FILES`
    key.

    Raises:
        ValueError: unknown key.
    """
    if key not in KNOWLEDGE_FILES:
        raise ValueError(f"unknown knowledge file {key!r}; use one of {sorted(KNOWLEDGE_FILES)}")
    path, version = KNOWLEDGE_FILES[key]
    return f"{CURATED_PREFIX}{Path(path).name}, {version}"


def is_curated(source: object) -> bool:
    """Whether a feature's ``source`` is a curated tag."""
    return isinstance(source, str) and source.startswith(CURATED_PREFIX)


@dataclass(frozen=True)
class KnowledgeSources:
    """The knowledge files under one data root (each may be absent).

    Attributes:
        root: the data root (the folder holding ``disgenet/``, ``hpo/``, ``ncbi-gene/``, ``hgnc/``).
    """

    root: Path

    def __post_init__(self) -> None:
        if not str(self.root).strip():
            raise ValueError("KnowledgeSources.root must be a folder path")

    def path(self, key: str) -> Path:
        """Path of a knowledge file (whether or not it exists).

        Raises:
            ValueError: unknown key.
        """
        if key not in KNOWLEDGE_FILES:
            raise ValueError(f"unknown knowledge file {key!r}")
        return Path(self.root) / KNOWLEDGE_FILES[key][0]

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def available(self) -> list[str]:
        """Keys of the files present under the root."""
        return [k for k in KNOWLEDGE_FILES if self.has(k)]


def sources_from_env(root: str | Path | None = None) -> KnowledgeSources | None:
    """The knowledge under ``root``, else ``$EMERFLOW_DATA``; None when neither is set or the
    folder does not exist."""
    from engine.settings import get_settings

    data = get_settings().data
    value = str(root) if root is not None else str(data) if data is not None else ""
    if not value.strip():
        return None
    path = Path(value).expanduser()
    return KnowledgeSources(path) if path.is_dir() else None
