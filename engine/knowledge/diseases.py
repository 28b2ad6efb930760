"""Disease lookup over DisGeNET's ``disease_mappings.tsv`` and the CUI -> HPO annotations.

``disease_mappings.tsv`` (tab-separated, header ``diseaseId, name, vocabulary, code,
vocabularyName``) maps UMLS CUIs to DO, NCI, MeSH (``MSH``), OMIM, Orphanet (``ORDO``), EFO,
ICD-9-CM and HPO codes. Its HPO rows also name HPO terms (``HP:nnnnnnn`` -> name), which
:class:`HpoTerms` uses because ``hp.obo`` is not available. The annotation file
``HPO&Orphanet_dis_symp.txt`` (no header: ``diseaseId``, ``hpoId``) lists the phenotypes of a
CUI.

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
HP_RE = re.compile(r"^HP[:_ ]?(\d{7})$", re.IGNORECASE)

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


# ---- HPO -------------------------------------------------------------------------------------


def normalize_hpo_id(value: str) -> str:
    """``hp_0001166`` / ``0001166`` / ``HP:0001166`` -> ``HP:0001166``.

    Raises:
        ValueError: not an HPO id.
    """
    text = (value or "").strip()
    m = HP_RE.match(text) or re.match(r"^(\d{7})$", text)
    if not m:
        raise ValueError(f"not an HPO term id: {value!r} (expected HP:nnnnnnn)")
    return f"HP:{m.group(1)}"


@dataclass(frozen=True)
class HpoTerm:
    """An HPO term: id and name (the name is empty when the mappings don't name it)."""

    id: str
    name: str = ""

    @property
    def label(self) -> str:
        return f"{self.name} ({self.id})" if self.name else self.id


@dataclass(frozen=True)
class TextPhenotype:
    """An HPO term found in free text.

    Attributes:
        term: the term.
        phrase: the words of the text that name it.
        start: character offset of the phrase in the text.
        negated: the phrase follows "no", "without", "absent", ... (within 3 words).
    """

    term: HpoTerm
    phrase: str
    start: int
    negated: bool = False


_WORD_RE = re.compile(r"[a-z0-9]+")
_NEGATIONS = frozenset({"no", "not", "without", "absent", "absence", "denies", "denied",
                        "negative", "lacks", "never"})
_STOP = frozenset({"of", "the", "a", "an", "and", "in", "on", "with", "to", "for", "by"})


def _stem(word: str) -> str:
    """A light plural/inflection folding so "seizures" matches "Seizure"."""
    for suffix, repl in (("ies", "y"), ("es", ""), ("s", "")):
        if len(word) > 4 and word.endswith(suffix) and not word.endswith("ss"):
            return word[: -len(suffix)] + repl
    return word


def _phrase_key(text: str) -> tuple[str, ...]:
    return tuple(_stem(w) for w in _WORD_RE.findall(text.lower()) if w not in _STOP)


class HpoTerms:
    """HPO term names (from the mappings' HPO rows) and the CUI -> HPO annotations."""

    def __init__(self, names: dict[str, str], annotations: dict[str, tuple[str, ...]],
                 synonyms: dict[str, set[str]] | None = None) -> None:
        self.names = dict(names)
        self.annotations = dict(annotations)
        self.synonyms = {k: set(v) for k, v in (synonyms or {}).items()}
        self._keys = sorted((n.lower(), i) for i, n in self.names.items())
        self._phrases: dict[str, list[tuple[tuple[str, ...], str]]] | None = None

    def _phrase_index(self) -> dict[str, list[tuple[tuple[str, ...], str]]]:
        """First word -> (phrase words, HP id), longest phrases first (built on first use)."""
        if self._phrases is None:
            idx: dict[str, set[tuple[tuple[str, ...], str]]] = defaultdict(set)
            for tid, name in self.names.items():
                for text in (name, *self.synonyms.get(tid, ())):
                    key = _phrase_key(text)
                    # one-word names shorter than 5 letters ("Pain" aside) match too much
                    if key and (len(key) > 1 or len(key[0]) >= 5):
                        idx[key[0]].add((key, tid))
            self._phrases = {k: sorted(v, key=lambda p: (-len(p[0]), p[1]))
                             for k, v in idx.items()}
        return self._phrases

    def from_text(self, text: str, limit: int = 50) -> list[TextPhenotype]:
        """HPO term candidates named in a clinical description: every term whose name (or the
        name of its UMLS concept) appears as a phrase (case, plurals and small words ignored),
        longest phrase first where phrases overlap; in text order. A phrase after "no",
        "without", "absent" ... (within 3 words) is marked ``negated``.
        """
        if not text or not text.strip() or limit <= 0:
            return []
        words = [(m.group(0), m.start()) for m in _WORD_RE.finditer(text.lower())]
        kept = [(i, _stem(w), start) for i, (w, start) in enumerate(words) if w not in _STOP]
        stems = [k[1] for k in kept]
        index = self._phrase_index()
        used = [False] * len(kept)
        found: list[TextPhenotype] = []
        seen: set[str] = set()
        for pos in range(len(kept)):
            if used[pos]:
                continue
            for key, tid in index.get(stems[pos], ()):
                n = len(key)
                if tuple(stems[pos:pos + n]) != key or any(used[pos:pos + n]):
                    continue
                for j in range(pos, pos + n):
                    used[j] = True
                if tid in seen:
                    break
                seen.add(tid)
                first_word = kept[pos][0]
                start = kept[pos][2]
                end_word = kept[pos + n - 1][0]
                end = words[end_word][1] + len(words[end_word][0])
                clause = max(text.rfind(c, 0, start) for c in ".;:\n")
                before = {w for w, s0 in words[max(0, first_word - 3):first_word]
                          if s0 > clause}
                found.append(TextPhenotype(HpoTerm(tid, self.names.get(tid, "")),
                                           text[start:end], start,
                                           negated=bool(before & _NEGATIONS)))
                break
            if len(found) >= limit:
                break
        return found

    @classmethod
    def load(cls, annotations_path: Path | None, diseases: DiseaseIndex | None) -> HpoTerms:
        """Names from ``diseases`` (may be None) and annotations from the pairs file (may be
        None or absent: no annotations).

        Raises:
            ValueError: the annotation file is not two tab-separated columns CUI, HP id.
        """
        names = diseases.hpo_terms() if diseases is not None else {}
        syns = diseases.hpo_synonyms() if diseases is not None else {}
        ann: dict[str, tuple[str, ...]] = {}
        if annotations_path is not None and Path(annotations_path).is_file():
            ann = _annotations_at(str(annotations_path), Path(annotations_path).stat().st_mtime_ns)
        return cls(names, ann, syns)

    def term(self, term_id: str) -> HpoTerm:
        tid = normalize_hpo_id(term_id)
        return HpoTerm(tid, self.names.get(tid, ""))

    def of_disease(self, cui: str) -> list[HpoTerm]:
        """The HPO terms annotated to a CUI (file order)."""
        return [HpoTerm(t, self.names.get(t, "")) for t in self.annotations.get(cui, ())]

    def search(self, query: str, limit: int = 20) -> list[HpoTerm]:
        """Terms by HP id (or id prefix) or by name prefix, then by a word of the name."""
        text = (query or "").strip()
        if not text or limit <= 0:
            return []
        m = re.match(r"^(?:HP[:_ ]?)?(\d{1,7})$", text, re.I)
        if m:
            digits = m.group(1)
            ids = sorted(i for i in self.names if i[3:].startswith(digits))
            if len(digits) == 7:
                ids = [f"HP:{digits}"] + [i for i in ids if i != f"HP:{digits}"]
            return [HpoTerm(i, self.names.get(i, "")) for i in ids[:limit]]
        low = text.lower()
        i = bisect.bisect_left(self._keys, (low, ""))
        out: list[str] = []
        while i < len(self._keys) and self._keys[i][0].startswith(low) and len(out) < limit:
            out.append(self._keys[i][1])
            i += 1
        if len(out) < limit:
            for name, tid in self._keys:
                if tid not in out and (" " + low) in " " + name:
                    out.append(tid)
                    if len(out) >= limit:
                        break
        return [HpoTerm(t, self.names[t]) for t in out]

    def parse(self, values) -> list[HpoTerm]:
        """Terms from labels (``"Seizure (HP:0001250)"``), ids or exact names, order kept,
        duplicates dropped.

        Raises:
            ValueError: a value that is neither an HP id nor a known term name.
        """
        by_name = {n.lower(): i for i, n in self.names.items()}
        out: list[HpoTerm] = []
        seen: set[str] = set()
        for v in values:
            text = str(v).strip()
            if not text:
                continue
            m = re.search(r"HP[:_](\d{7})", text, re.I)
            if m:
                tid = f"HP:{m.group(1)}"
            elif text.lower() in by_name:
                tid = by_name[text.lower()]
            else:
                raise ValueError(f"Unknown HPO term {text!r}: give an HP id (HP:0001250) or a "
                                 "term name from the list.")
            if tid not in seen:
                seen.add(tid)
                out.append(HpoTerm(tid, self.names.get(tid, "")))
        return out


@lru_cache(maxsize=4)
def _annotations_at(path: str, mtime: int) -> dict[str, tuple[str, ...]]:
    try:
        frame = pd.read_csv(path, sep="\t", header=None, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a tab-separated CUI/HPO file ({exc})") from None
    if frame.shape[1] != 2:
        raise ValueError(f"{path}: expected 2 columns (CUI, HP id), found {frame.shape[1]}")
    out: dict[str, list[str]] = defaultdict(list)
    for cui, hp in zip(frame[0].str.strip(), frame[1].str.strip(), strict=True):
        if hp and hp not in out[cui]:
            out[cui].append(hp)
    return {k: tuple(v) for k, v in out.items()}


def serialize_phenotypes(terms: list[HpoTerm]) -> str:
    """The feature value the encoder reads: term names (ids when unnamed), ``; ``-separated."""
    return "; ".join(t.name or t.id for t in terms)


def phenotype_ids(terms: list[HpoTerm]) -> str:
    return "|".join(t.id for t in terms)
