"""Gene resolver (symbol, alias, NCBI id, HGNC id, previous/alias symbols) and gene links.

Sources: NCBI ``Homo_sapiens.gene_info`` (``GeneID``, ``Symbol``, ``Synonyms``, ``dbXrefs`` with
``MIM:``, ``HGNC:HGNC:`` and ``Ensembl:``) and optionally HGNC's complete set (``hgnc_id``,
``symbol``, ``alias_symbol``, ``prev_symbol``, ``entrez_id``, ``ensembl_gene_id``, ``omim_id``).
A resolver can also be built from a workspace's own target table (``target_id`` + symbol), so the
demo catalog resolves symbols without any file.

Resolution order: NCBI id (digits), HGNC id (``HGNC:1100``), Ensembl id, official symbol
(case-insensitive), then aliases and previous symbols. An alias shared by several genes raises
:class:`AmbiguousGeneError` listing the candidates.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import pandas as pd

NCBI_GENE_URL = "https://www.ncbi.nlm.nih.gov/gene/{}"
HGNC_URL = "https://www.genenames.org/data/gene-symbol-report/#!/hgnc_id/{}"
OMIM_URL = "https://omim.org/entry/{}"
ENSEMBL_URL = "https://www.ensembl.org/Homo_sapiens/Gene/Summary?g={}"
UMLS_URL = "https://uts.nlm.nih.gov/uts/umls/concept/{}"
ORPHANET_URL = "https://www.orpha.net/en/disease/detail/{}"
MESH_URL = "https://meshb.nlm.nih.gov/record/ui?ui={}"
HPO_URL = "https://hpo.jax.org/browse/term/{}"


class GeneLookupError(LookupError):
    """A gene query that does not resolve to exactly one gene."""


class UnknownGeneError(GeneLookupError):
    """No gene has this symbol, alias or id."""


class AmbiguousGeneError(GeneLookupError):
    """An alias shared by several genes; ``candidates`` lists them."""

    def __init__(self, query: str, candidates: list[GeneRecord]):
        self.query = query
        self.candidates = candidates
        names = ", ".join(f"{g.symbol} (NCBI {g.gene_id})" for g in candidates[:8])
        more = f" and {len(candidates) - 8} more" if len(candidates) > 8 else ""
        super().__init__(f"{query!r} is an alias of several genes: {names}{more}. "
                         "Use the official symbol or the NCBI id.")


@dataclass(frozen=True)
class GeneRecord:
    """One gene with its ids.

    Attributes:
        gene_id: NCBI Gene id (the DisGeNET ``geneId`` and the workspace ``target_id``).
        symbol: official symbol.
        aliases: NCBI synonyms, HGNC alias and previous symbols.
        hgnc_id: ``HGNC:1100`` or "".
        mim: OMIM gene MIM number or "".
        ensembl: Ensembl gene id or "".
        name: full name / description.
    """

    gene_id: str
    symbol: str
    aliases: tuple[str, ...] = ()
    hgnc_id: str = ""
    mim: str = ""
    ensembl: str = ""
    name: str = ""

    def links(self) -> dict[str, str]:
        """NCBI Gene, HGNC (the id page), OMIM gene and Ensembl URLs; empty when unknown."""
        return gene_links(self.gene_id, self.hgnc_id, self.mim, self.ensembl)


def gene_links(gene_id: str = "", hgnc_id: str = "", mim: str = "",
               ensembl: str = "") -> dict[str, str]:
    """Link columns for a gene (``""`` where the id is unknown)."""
    return {
        "NCBI Gene": NCBI_GENE_URL.format(gene_id) if gene_id else "",
        "HGNC": HGNC_URL.format(hgnc_id) if hgnc_id else "",
        "OMIM gene": OMIM_URL.format(mim) if mim else "",
        "Ensembl": ENSEMBL_URL.format(ensembl) if ensembl else "",
    }


def _split(value: object, sep: str = "|") -> list[str]:
    text = "" if value is None else str(value).strip()
    if not text or text == "-" or text.lower() == "nan":
        return []
    return [p.strip() for p in text.split(sep) if p.strip() and p.strip() != "-"]


def _xref(xrefs: list[str], prefix: str) -> str:
    for x in xrefs:
        if x.startswith(prefix):
            return x[len(prefix):]
    return ""


class GeneResolver:
    """Resolves a symbol, alias or id to one :class:`GeneRecord`."""

    def __init__(self, genes: Iterable[GeneRecord]) -> None:
        self.genes: dict[str, GeneRecord] = {}
        for g in genes:
            self.genes[str(g.gene_id)] = g
        self._symbol: dict[str, str] = {}
        self._alias: dict[str, set[str]] = defaultdict(set)
        self._hgnc: dict[str, str] = {}
        self._ensembl: dict[str, str] = {}
        for gid, g in self.genes.items():
            if g.symbol:
                self._symbol.setdefault(g.symbol.upper(), gid)
            for a in g.aliases:
                self._alias[a.upper()].add(gid)
            if g.hgnc_id:
                self._hgnc[g.hgnc_id.upper()] = gid
            if g.ensembl:
                self._ensembl[g.ensembl.upper()] = gid

    def __len__(self) -> int:
        return len(self.genes)

    def restrict(self, gene_ids: Iterable[str]) -> GeneResolver:
        """A resolver over the given genes only (e.g. a workspace's targets)."""
        keep = {str(g) for g in gene_ids}
        return GeneResolver(g for gid, g in self.genes.items() if gid in keep)

    def get(self, gene_id: str) -> GeneRecord | None:
        return self.genes.get(str(gene_id).strip())

    def candidates(self, query: str) -> list[GeneRecord]:
        """Every gene the query could mean (official symbol/ids first)."""
        text = (query or "").strip()
        if not text:
            return []
        up = text.upper()
        if re.fullmatch(r"\d+", text):
            return [self.genes[text]] if text in self.genes else []
        m = re.fullmatch(r"(?:NCBI|GENEID|ENTREZ)[:_ ]*(\d+)", up)
        if m:
            return [self.genes[m.group(1)]] if m.group(1) in self.genes else []
        m = re.fullmatch(r"(?:HGNC:)?HGNC:(\d+)", up)
        if m:
            gid = self._hgnc.get(f"HGNC:{m.group(1)}")
            return [self.genes[gid]] if gid else []
        if up.startswith("ENSG"):
            gid = self._ensembl.get(up)
            return [self.genes[gid]] if gid else []
        if up in self._symbol:
            return [self.genes[self._symbol[up]]]
        return sorted((self.genes[g] for g in self._alias.get(up, ())),
                      key=lambda g: (g.symbol, int(g.gene_id) if g.gene_id.isdigit() else 0))

    def resolve(self, query: str) -> GeneRecord:
        """The one gene ``query`` names.

        Raises:
            ValueError: empty query.
            UnknownGeneError: nothing matches.
            AmbiguousGeneError: an alias of several genes (the message lists them).
        """
        text = (query or "").strip()
        if not text:
            raise ValueError("Type a gene symbol, alias or id.")
        found = self.candidates(text)
        if not found:
            raise UnknownGeneError(f"unknown gene {text!r} (not a symbol, alias or id of a "
                                   "gene in this workspace)")
        if len(found) > 1:
            raise AmbiguousGeneError(text, found)
        return found[0]

    def search(self, prefix: str, limit: int = 20) -> list[GeneRecord]:
        """Genes whose symbol (then an alias) starts with ``prefix``; an exact id first."""
        text = (prefix or "").strip().upper()
        if not text or limit <= 0:
            return []
        out: list[str] = []
        for g in self.candidates(text):
            out.append(g.gene_id)
        for sym in sorted(s for s in self._symbol if s.startswith(text)):
            if self._symbol[sym] not in out:
                out.append(self._symbol[sym])
            if len(out) >= limit:
                break
        if len(out) < limit:
            for alias in sorted(a for a in self._alias if a.startswith(text)):
                for gid in sorted(self._alias[alias]):
                    if gid not in out:
                        out.append(gid)
                if len(out) >= limit:
                    break
        return [self.genes[g] for g in out[:limit]]

    @classmethod
    def from_targets(cls, targets: pd.DataFrame, id_col: str = "target_id",
                     symbol_col: str = "name") -> GeneResolver:
        """A resolver from a workspace target table (symbol only, no aliases)."""
        return cls(GeneRecord(gene_id=str(t), symbol=str(s))
                   for t, s in zip(targets[id_col], targets[symbol_col], strict=True))

    @classmethod
    def from_files(cls, gene_info: Path, hgnc: Path | None = None,
                   restrict_to: Iterable[str] | None = None) -> GeneResolver:
        """From NCBI gene_info (required) and the HGNC complete set (optional), read once per
        path.

        Raises:
            FileNotFoundError: gene_info is missing.
            ValueError: a file is not in its expected format.
        """
        gene_info = Path(gene_info)
        if not gene_info.is_file():
            raise FileNotFoundError(f"NCBI gene_info not found at {gene_info}")
        hgnc_key = ("", 0)
        if hgnc is not None and Path(hgnc).is_file():
            hgnc_key = (str(hgnc), Path(hgnc).stat().st_mtime_ns)
        res = _resolver_at(str(gene_info), gene_info.stat().st_mtime_ns, *hgnc_key)
        return res.restrict(restrict_to) if restrict_to is not None else res


GENE_INFO_COLUMNS = ["GeneID", "Symbol", "Synonyms", "dbXrefs", "description"]
HGNC_COLUMNS = ["hgnc_id", "symbol", "alias_symbol", "prev_symbol", "entrez_id",
                "ensembl_gene_id"]


def read_gene_info(path: str) -> list[GeneRecord]:
    """Records from NCBI gene_info (gzip or plain).

    Raises:
        ValueError: required columns missing.
    """
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    frame.columns = [c.lstrip("#") for c in frame.columns]
    missing = [c for c in GENE_INFO_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: not an NCBI gene_info file (missing columns {missing})")
    out = []
    for gid, sym, syn, xrefs, desc in frame[GENE_INFO_COLUMNS].itertuples(index=False, name=None):
        xr = _split(xrefs)
        out.append(GeneRecord(gene_id=gid.strip(), symbol=sym.strip(), aliases=tuple(_split(syn)),
                              hgnc_id=_xref(xr, "HGNC:"), mim=_xref(xr, "MIM:"),
                              ensembl=_xref(xr, "Ensembl:"),
                              name="" if desc == "-" else desc))
    return out


def merge_hgnc(records: list[GeneRecord], path: str) -> list[GeneRecord]:
    """Add HGNC alias/previous symbols, HGNC id, Ensembl and OMIM ids by ``entrez_id``.

    Raises:
        ValueError: required columns missing.
    """
    wanted = {*HGNC_COLUMNS, "omim_id"}  # of the set's ~50 columns (to_dict of all: 4-7 s)
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False,
                        usecols=lambda c: c in wanted)
    missing = [c for c in HGNC_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: not an HGNC complete set (missing columns {missing})")
    columns = {c: frame[c].tolist() for c in frame.columns}
    by_entrez: dict[str, Mapping[str, str]] = {}
    for row in (dict(zip(columns, values, strict=True))
                for values in zip(*columns.values(), strict=True)):
        eid = str(row.get("entrez_id") or "").strip()
        if eid:
            by_entrez[eid] = row
    out = []
    for g in records:
        row = by_entrez.get(g.gene_id)
        if row is None:
            out.append(g)
            continue
        extra = [*_split(row.get("alias_symbol")), *_split(row.get("prev_symbol"))]
        aliases = tuple(dict.fromkeys([*g.aliases, *[a for a in extra if a != g.symbol]]))
        omim = _split(row.get("omim_id"))
        out.append(replace(g, aliases=aliases, hgnc_id=g.hgnc_id or str(row["hgnc_id"]).strip(),
                           ensembl=g.ensembl or str(row.get("ensembl_gene_id") or "").strip(),
                           mim=g.mim or (omim[0] if omim else "")))
    return out


@lru_cache(maxsize=2)
def _resolver_at(gene_info: str, mtime: int, hgnc: str, hgnc_mtime: int) -> GeneResolver:
    records = read_gene_info(gene_info)
    if hgnc:
        records = merge_hgnc(records, hgnc)
    return GeneResolver(records)


__all__ = ["AmbiguousGeneError", "GeneLookupError", "GeneRecord", "GeneResolver",
           "UnknownGeneError", "gene_links", "merge_hgnc", "read_gene_info"]
