"""HPO phenotypes: term ids and names, the CUI -> HPO annotations, and terms found in text.

Term names come from the HPO rows of DisGeNET's ``disease_mappings.tsv``
(:meth:`engine.knowledge.diseases.DiseaseIndex.hpo_terms`; ``hp.obo`` is not available); the
annotation file ``HPO&Orphanet_dis_symp.txt`` (no header: ``diseaseId``, ``hpoId``) lists the
phenotypes of a CUI. Re-exported by :mod:`engine.knowledge.diseases`.
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from engine.knowledge.diseases import DiseaseIndex

HP_RE = re.compile(r"^HP[:_ ]?(\d{7})$", re.IGNORECASE)


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
