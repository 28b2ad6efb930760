"""Disease lookup over DisGeNET's ``disease_mappings.tsv`` and the CUI -> HPO annotations.

``disease_mappings.tsv`` (tab-separated, header ``diseaseId, name, vocabulary, code,
vocabularyName``) maps UMLS CUIs to DO, NCI, MeSH (``MSH``), OMIM, Orphanet (``ORDO``), EFO,
ICD-9-CM and HPO codes. Its HPO rows also name HPO terms (``HP:nnnnnnn`` -> name), which
:class:`HpoTerms` uses because ``hp.obo`` is not available. The annotation file
``HPO&Orphanet_dis_symp.txt`` (no header: ``diseaseId``, ``hpoId``) lists the phenotypes of a
CUI; the HPO part (:class:`HpoTerms`, :func:`normalize_hpo_id`, ...) lives in
:mod:`engine.knowledge.phenotypes` and is re-exported here.

A query is resolved as an id first (``C0024796``, ``OMIM:154700``, ``MIM 154700``,
``ORPHA:558``, ``Orphanet_558``, ``MESH:D008382``, ``D008382``, ``DOID:14323``,
``HP:0001166``), then as an exact name or synonym (case-insensitive).

``disease_mappings.tsv`` is older than the association file: about a quarter of the curated
GDA file's diseases are absent from it, and some have another name there. The index therefore
also reads the GDA file's own ``diseaseId``/``diseaseName`` (:func:`association_names`): a CUI
the mappings lack becomes a record of its own (name only, ``source="gda"``), and an
association-file name that differs from the mappings' one resolves to its CUI too.
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd

from engine.knowledge.phenotypes import HP_RE as HP_RE
from engine.knowledge.phenotypes import HpoTerm as HpoTerm
from engine.knowledge.phenotypes import HpoTerms as HpoTerms
from engine.knowledge.phenotypes import TextPhenotype as TextPhenotype
from engine.knowledge.phenotypes import _annotations_at as _annotations_at
from engine.knowledge.phenotypes import _phrase_key as _phrase_key
from engine.knowledge.phenotypes import _stem as _stem
from engine.knowledge.phenotypes import normalize_hpo_id as normalize_hpo_id
from engine.knowledge.phenotypes import phenotype_ids as phenotype_ids
from engine.knowledge.phenotypes import serialize_phenotypes as serialize_phenotypes

#: Vocabulary column values -> the prefix the dashboard shows and accepts.
VOCAB_PREFIX: dict[str, str] = {
    "OMIM": "OMIM", "ORDO": "ORPHA", "MSH": "MESH", "DO": "DOID", "HPO": "HP", "NCI": "NCI",
    "EFO": "EFO", "ICD9CM": "ICD9CM",
}
#: Vocabularies whose names are trusted as synonyms (DO rows of this release map codes to
#: unrelated CUIs, e.g. "tuberous sclerosis" under Marfan syndrome, so DO names are only used
#: when the code maps to this CUI alone).
SYNONYM_VOCABS = ("MSH", "NCI", "ORDO", "OMIM", "EFO", "HPO", "ICD9CM", "DO")
MAPPING_COLUMNS = ["diseaseId", "name", "vocabulary", "code", "vocabularyName"]
#: Columns of the curated GDA file read for the lookup fallback.
GDA_NAME_COLUMNS = ["diseaseId", "diseaseName"]
#: ``DiseaseRecord.source`` of records from each file (keys of ``KNOWLEDGE_FILES``).
MAPPINGS_SOURCE, GDA_SOURCE = "disease_mappings", "gda"
CUI_RE = re.compile(r"^C\d{7}$", re.IGNORECASE)

_ID_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(?:OMIM|MIM)[:_ #]*(\d{6})$", re.I), "OMIM"),
    (re.compile(r"^(?:ORPHA|ORPHANET|ORDO)[:_ ]*(\d+)$", re.I), "ORDO"),
    (re.compile(r"^(?:MESH|MSH)[:_ ]*([CD]\d{6,9})$", re.I), "MSH"),
    (re.compile(r"^([D]\d{6})$", re.I), "MSH"),
    (re.compile(r"^(?:DOID|DO)[:_ ]*(\d+)$", re.I), "DO"),
    (re.compile(r"^HP[:_ ]?(\d{7})$", re.I), "HPO"),
    (re.compile(r"^(?:EFO)[:_ ]*(\d+)$", re.I), "EFO"),
    (re.compile(r"^(?:NCI|NCIT)[:_ ]*(C\d+)$", re.I), "NCI"),
]


class DiseaseNotFoundError(LookupError):
    """Nothing in the mappings matches the query."""


@dataclass(frozen=True)
class DiseaseRecord:
    """One UMLS concept as the mappings know it.

    Attributes:
        cui: UMLS CUI.
        name: DisGeNET's name of the concept.
        synonyms: other names (vocabulary names of codes specific to this CUI), sorted.
        ids: vocabulary (``OMIM``, ``ORDO``, ``MSH``, ``DO``, ``HPO``, ...) -> codes, as in the
            file (OMIM ``154700``, ORDO ``558``, MSH ``D008382``, DO ``14323``).
        source: the file the record comes from: ``"disease_mappings"``, or ``"gda"`` for a
            CUI only the association file knows (no synonyms, no vocabulary ids).
    """

    cui: str
    name: str
    synonyms: tuple[str, ...] = ()
    ids: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = MAPPINGS_SOURCE

    def __post_init__(self) -> None:
        if not str(self.cui).strip():
            raise ValueError("DiseaseRecord.cui must be non-empty")
        if self.source not in (MAPPINGS_SOURCE, GDA_SOURCE):
            raise ValueError(f"DiseaseRecord.source must be {MAPPINGS_SOURCE!r} or "
                             f"{GDA_SOURCE!r}, got {self.source!r}")

    def curie(self, vocabulary: str) -> list[str]:
        """Codes of one vocabulary as prefixed ids (``OMIM:154700``, ``ORPHA:558``)."""
        prefix = VOCAB_PREFIX.get(vocabulary, vocabulary)
        out = []
        for code in self.ids.get(vocabulary, ()):
            out.append(code if code.upper().startswith(prefix + ":") else f"{prefix}:{code}")
        return out

    @property
    def label(self) -> str:
        return f"{self.name} ({self.cui})"


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", str(text).strip().lower())


def _words(text: str) -> set[str]:
    return {w for w in re.split(r"[^a-z0-9]+", text.lower()) if len(w) > 2}


class DiseaseIndex:
    """Lookup and prefix autocomplete over ``disease_mappings.tsv``, with the association
    file's own disease names and CUIs as a fallback.

    Build with :meth:`from_file` (cached per path) or from a DataFrame with
    :data:`MAPPING_COLUMNS` (and optionally one with :data:`GDA_NAME_COLUMNS`).
    """

    def __init__(self, frame: pd.DataFrame, associations: pd.DataFrame | None = None) -> None:
        missing = [c for c in MAPPING_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"disease mappings lack columns {missing}")
        if associations is not None:
            lack = [c for c in GDA_NAME_COLUMNS if c not in associations.columns]
            if lack:
                raise ValueError(f"association names lack columns {lack}")
        df = frame[MAPPING_COLUMNS].fillna("").astype(str)
        df = df.apply(lambda s: s.str.strip())
        df = df[df["diseaseId"] != ""]
        self._code_cuis: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._code_name: dict[tuple[str, str], str] = {}
        for vocab, code, cui, vname in zip(df["vocabulary"], df["code"], df["diseaseId"],
                                           df["vocabularyName"], strict=True):
            self._code_cuis[(vocab, code)].add(cui)
            if vname:
                self._code_name.setdefault((vocab, code), vname)
        names: dict[str, str] = {}
        ids: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        syns: dict[str, set[str]] = defaultdict(set)
        for cui, name, vocab, code, vname in df.itertuples(index=False, name=None):
            names.setdefault(cui, name)
            if code and code not in ids[cui][vocab]:
                ids[cui][vocab].append(code)
            if not vname or vname.lower().startswith("obsolete") or vocab not in SYNONYM_VOCABS:
                continue
            n_cuis = len(self._code_cuis[(vocab, code)])
            if vocab == "DO" and (n_cuis > 1 or not (_words(vname) & _words(name))):
                continue
            if n_cuis > 2:
                continue
            syns[cui].add(vname)
        self.records: dict[str, DiseaseRecord] = {}
        for cui, name in names.items():
            own = {_norm(name)}
            clean = sorted({s for s in syns.get(cui, set()) if _norm(s) not in own},
                           key=str.lower)
            self.records[cui] = DiseaseRecord(
                cui=cui, name=name, synonyms=tuple(clean),
                ids={v: tuple(c) for v, c in ids[cui].items()})
        self._by_name: dict[str, set[str]] = defaultdict(set)
        for rec in self.records.values():
            for text in (rec.name, *rec.synonyms):
                self._by_name[_norm(text)].add(rec.cui)
        self.fallback = 0  #: CUIs known from the association file alone
        self._gda_names: dict[str, set[str]] = defaultdict(set)  # CUI -> its GDA names (norm.)
        if associations is not None:
            self._add_associations(associations)
        self._keys = sorted(self._by_name)

    def _add_associations(self, associations: pd.DataFrame) -> None:
        """CUIs the mappings lack become name-only records; every association-file name
        resolves to its CUI (also where the mappings name the CUI differently)."""
        df = associations[GDA_NAME_COLUMNS].fillna("").astype(str)
        for cui, name in zip(df["diseaseId"].str.strip().str.upper(), df["diseaseName"].str.strip(),
                             strict=True):
            if not CUI_RE.match(cui):
                continue
            if cui not in self.records:
                self.records[cui] = DiseaseRecord(cui=cui, name=name or cui, source=GDA_SOURCE)
                self.fallback += 1
            if name:
                self._by_name[_norm(name)].add(cui)
                self._gda_names[cui].add(_norm(name))

    @classmethod
    def from_file(cls, path: Path | None, associations: Path | None = None) -> DiseaseIndex:
        """The index of one mappings file, plus the disease names and CUIs of the curated GDA
        file ``associations`` when given (read once per paths and modification times).
        ``path`` may be None when only the association file is present.

        Raises:
            FileNotFoundError: a given file does not exist, or neither is given.
            ValueError: not the mappings / GDA format (wrong header).
        """
        stamps: list[tuple[str, int]] = []
        for p, what in ((path, "disease mappings"), (associations, "gene-disease associations")):
            if p is None:
                stamps.append(("", 0))
                continue
            p = Path(p)
            if not p.is_file():
                raise FileNotFoundError(f"{what} not found at {p}")
            stamps.append((str(p), p.stat().st_mtime_ns))
        if not stamps[0][0] and not stamps[1][0]:
            raise FileNotFoundError("disease lookup needs disease_mappings.tsv or the curated "
                                    "gene-disease association file")
        return _index_at(*stamps[0], *stamps[1])

    def __len__(self) -> int:
        return len(self.records)

    def get(self, cui: str) -> DiseaseRecord | None:
        return self.records.get(str(cui).strip().upper())

    def by_code(self, vocabulary: str, code: str) -> list[DiseaseRecord]:
        """Records mapped to one vocabulary code (``("OMIM", "154700")``)."""
        cuis = self._code_cuis.get((vocabulary, code), set())
        return [self.records[c] for c in sorted(cuis) if c in self.records]

    def _rank(self, recs: list[DiseaseRecord], hint: str = "",
              annotated: set[str] | None = None) -> list[DiseaseRecord]:
        hint_norm = _norm(hint)
        annotated = annotated or set()

        def key(r: DiseaseRecord) -> tuple:
            # the association file's name (unique per CUI, the newer file) first, then the
            # mappings' own name, then a synonym
            gda = hint_norm in self._gda_names.get(r.cui, ())
            own = gda or _norm(r.name) == hint_norm
            exact = own or hint_norm in {_norm(s) for s in r.synonyms}
            return (not gda, not own, not exact, r.cui not in annotated, -len(r.ids), r.cui)

        return sorted(recs, key=key)

    def resolve(self, query: str, annotated: set[str] | None = None) -> list[DiseaseRecord]:
        """Candidates for ``query`` (an id or an exact name/synonym), best first.

        ``annotated`` (CUIs with HPO phenotypes) ranks annotated concepts first among several
        concepts sharing one code (an OMIM number maps to up to 7 CUIs).

        Raises:
            ValueError: empty query.
            DiseaseNotFoundError: nothing matches (the message suggests autocomplete).
        """
        text = (query or "").strip()
        if not text:
            raise ValueError("Type a disease name, synonym or id (CUI, OMIM, ORPHA, MeSH, DO).")
        if CUI_RE.match(text):
            rec = self.get(text)
            if rec is None:
                raise DiseaseNotFoundError(f"UMLS CUI {text.upper()} is not in the disease "
                                           "mappings.")
            return [rec]
        for pattern, vocab in _ID_PATTERNS:
            m = pattern.match(text)
            if not m:
                continue
            code = m.group(1).upper() if vocab in ("MSH", "NCI") else m.group(1)
            if vocab == "HPO":
                code = f"HP:{code}"
            if vocab == "EFO":
                code = f"EFO_{code}"
            recs = self.by_code(vocab, code)
            if recs:
                hint = next(iter(self._code_names(vocab, code)), "")
                return self._rank(recs, hint, annotated)
            raise DiseaseNotFoundError(
                f"{VOCAB_PREFIX.get(vocab, vocab)}:{code.split(':')[-1]} is not in the disease "
                "mappings.")
        recs = [self.records[c] for c in sorted(self._by_name.get(_norm(text), set()))]
        if recs:
            return self._rank(recs, text, annotated)
        hits = self.autocomplete(text, limit=3)
        hint = ("; did you mean " + ", ".join(r.label for r in hits) + "?") if hits else ""
        raise DiseaseNotFoundError(f"No disease named {text!r} in the disease mappings{hint}")

    def _code_names(self, vocab: str, code: str) -> list[str]:
        name = self._code_name.get((vocab, code))
        return [name] if name else [r.name for r in self.by_code(vocab, code)]

    def autocomplete(self, prefix: str, limit: int = 20) -> list[DiseaseRecord]:
        """Concepts whose name or synonym starts with ``prefix`` (then: contains a word starting
        with it), shortest names first; an id prefix (``C00247``, ``OMIM:1547``) matches ids."""
        text = _norm(prefix)
        if len(text) < 2 or limit <= 0:
            return []
        out: list[str] = []
        seen: set[str] = set()

        def add(cuis) -> bool:
            for c in sorted(cuis):
                if c not in seen:
                    seen.add(c)
                    out.append(c)
            return len(out) >= limit

        if re.match(r"^c\d{2,7}$", text):
            add(c for c in self.records if c.lower().startswith(text))
        for pattern, vocab in _ID_PATTERNS:
            m = re.match(pattern.pattern.replace(r"(\d{6})$", r"(\d+)$")
                         .replace(r"(\d{7})$", r"(\d+)$"), text, re.I)
            if m:
                code = m.group(1).upper()
                add(c for (v, k), cuis in self._code_cuis.items()
                    if v == vocab and k.upper().replace("HP:", "").startswith(code) for c in cuis)
        i = bisect.bisect_left(self._keys, text)
        starts: list[str] = []
        while i < len(self._keys) and self._keys[i].startswith(text) and len(starts) < 500:
            starts.append(self._keys[i])
            i += 1
        for key in sorted(starts, key=len):
            if add(self._by_name[key]):
                break
        if len(out) < limit:
            needle = " " + text
            for key in self._keys:
                if needle in " " + key.replace("-", " ").replace(",", " ") and add(
                        self._by_name[key]):
                    break
        return [self.records[c] for c in out[:limit]]

    def hpo_terms(self) -> dict[str, str]:
        """HPO term id -> name from the file's HPO rows (``vocabularyName``, else the CUI's
        name)."""
        out: dict[str, str] = {}
        for (vocab, code), cuis in self._code_cuis.items():
            if vocab != "HPO":
                continue
            name = self._code_name.get((vocab, code), "")
            if not name:
                rec = next((self.records[c] for c in sorted(cuis) if c in self.records), None)
                name = rec.name if rec is not None else ""
            if name:
                out[code] = name
        return out


    def hpo_synonyms(self) -> dict[str, set[str]]:
        """HPO term id -> other names: the names of the UMLS concepts its code maps to, and
        their synonyms when the code maps to one concept only."""
        out: dict[str, set[str]] = defaultdict(set)
        for (vocab, code), cuis in self._code_cuis.items():
            if vocab != "HPO":
                continue
            for c in cuis:
                rec = self.records.get(c)
                if rec is None:
                    continue
                out[code].update(n for n in (rec.name, *(rec.synonyms if len(cuis) == 1
                                                         else ())) if n)
        return dict(out)


@lru_cache(maxsize=4)
def _index_at(path: str, mtime: int, gda: str = "", gda_mtime: int = 0) -> DiseaseIndex:
    if path:
        try:
            frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=3)
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: not a tab-separated disease mappings file ({exc})"
                             ) from None
    else:
        frame = pd.DataFrame(columns=MAPPING_COLUMNS)
    return DiseaseIndex(frame, association_names(Path(gda)) if gda else None)


def association_names(path: Path) -> pd.DataFrame:
    """The distinct (``diseaseId``, ``diseaseName``) pairs of a DisGeNET GDA file (read once
    per path and modification time; only these two columns are read).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a tab-separated GDA file with these columns.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"gene-disease associations not found at {path}")
    return _association_names_at(str(path), path.stat().st_mtime_ns).copy()


@lru_cache(maxsize=4)
def _association_names_at(path: str, mtime: int) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, sep="\t", usecols=GDA_NAME_COLUMNS, dtype=str,
                         keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: not a tab-separated gene-disease association file with "
                         f"columns {GDA_NAME_COLUMNS} ({exc})") from None
    return df.drop_duplicates().reset_index(drop=True)
