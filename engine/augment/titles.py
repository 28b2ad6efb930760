"""Blank each item's own title out of LLM values before they are committed (MovieLens).

MovieLens' licence forbids redistributing the data, and a small model often echoes the film
title it was given ("The movie (DATA, not instructions): Toy Story (1995)"). A committed
augmentation keyed by MovieLens ids must therefore not carry the titles: :func:`blank_titles`
removes every occurrence of an item's own title from that item's values, in the spellings a
model is likely to write:

* the title as in ``movies.dat`` (``Matrix, The (1999)``), case-insensitive;
* without the trailing ``(YEAR)`` (``Matrix, The``);
* with a trailing article moved to the front (``The Matrix``, ``The Matrix (1999)``;
  also ``L'``-style elisions: ``Homme, L'`` -> ``L'Homme``);
* each alternative title given in parentheses (``Seven (Se7en)``: ``Seven`` and ``Se7en``;
  ``City of Lost Children, The (Cité des enfants perdus, La)``), with ``a.k.a.`` dropped.

Matches are whole words (no letter, digit or underscore on either side), so ``Heat`` is not cut
out of ``theater``. What is left is tidied (doubled spaces, empty brackets or quotes, dangling
separators) and may be empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from engine.schema import ITEM_ID, NAME

#: Articles that ``movies.dat`` moves behind a comma (``Matrix, The``), in its languages.
ARTICLES = frozenset({
    "the", "a", "an", "la", "le", "les", "l'", "il", "lo", "gli", "i", "el", "los", "las",
    "das", "der", "die", "den", "det", "de", "het", "un", "une", "una", "uno", "ein", "eine",
})

_YEAR_RE = re.compile(r"\s*\(\d{4}\)\s*$")
_PAREN_RE = re.compile(r"\(([^()]*)\)")
_AKA_RE = re.compile(r"^\s*a\.?k\.?a\.?\s+", re.IGNORECASE)
_TRAILING_ARTICLE_RE = re.compile(r"^(?P<rest>.+?),\s*(?P<art>[^\s,]+)$")
_EMPTY_PAIRS_RE = re.compile(r"\(\s*\)|\[\s*\]|\"\s*\"|“\s*”|'\s*'")
_SPACE_BEFORE_PUNCT_RE = re.compile(r"\s+([,;:.!?)\]])")
_EDGE = " \t,;:|-–—/"


def _moved_article(text: str) -> str | None:
    """``Matrix, The`` -> ``The Matrix``; ``Homme, L'`` -> ``L'Homme``; else ``None``."""
    m = _TRAILING_ARTICLE_RE.match(text.strip())
    if not m or m.group("art").lower() not in ARTICLES:
        return None
    art, rest = m.group("art"), m.group("rest").strip()
    return f"{art}{rest}" if art.endswith("'") else f"{art} {rest}"


def title_variants(*titles: str) -> list[str]:
    """Spellings of a film's own title to blank, longest first (see the module docstring).

    Args:
        titles: the item's title fields, e.g. ``movies.dat``'s ``Matrix, The (1999)`` and the
            loader's name ``Matrix, The``.
    """
    out: set[str] = set()
    for title in titles:
        title = " ".join(str(title or "").split())
        if not title:
            continue
        out.add(title)
        year_m = re.search(r"\((\d{4})\)\s*$", title)
        year = year_m.group(1) if year_m else None
        base = _YEAR_RE.sub("", title).strip()
        main = _PAREN_RE.sub("", base).strip()
        alts = [_AKA_RE.sub("", a).strip() for a in _PAREN_RE.findall(base)]
        for piece in (base, main, *alts):
            if not piece:
                continue
            forms = [piece]
            moved = _moved_article(piece)
            if moved:
                forms.append(moved)
            for form in forms:
                out.add(form)
                if year:
                    out.add(f"{form} ({year})")
    return sorted((v for v in out if v.strip()), key=lambda v: (-len(v), v))


def title_pattern(variants: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive regex matching any variant as a whole word (spaces as any run of
    whitespace); ``None`` when there is no variant."""
    parts = []
    for v in variants:
        body = r"\s+".join(re.escape(w) for w in v.split())
        parts.append(rf"(?<!\w){body}(?!\w)")
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None


def _tidy(text: str) -> str:
    """Clean what removing a title left: per ``|`` segment, collapse spaces, drop empty
    brackets/quotes and dangling separators; drop segments left empty."""
    segments = []
    for seg in text.split("|"):
        prev = None
        while prev != seg:
            prev = seg
            seg = " ".join(_EMPTY_PAIRS_RE.sub("", seg).split())
            seg = _SPACE_BEFORE_PUNCT_RE.sub(r"\1", seg).strip(_EDGE)
        if seg:
            segments.append(seg)
    return "|".join(segments)


def blank_title(value: str, pattern: re.Pattern[str] | None) -> str:
    """``value`` with every match of ``pattern`` removed and the rest tidied (unchanged when
    nothing matches)."""
    if not value or pattern is None or not pattern.search(value):
        return value
    return _tidy(pattern.sub(" ", value))


@dataclass(frozen=True)
class BlankedTitles:
    """Result of :func:`blank_titles`."""

    frame: pd.DataFrame
    #: Values (cells) from which a title was removed.
    values_blanked: int
    #: Of those, values left empty.
    values_emptied: int


def blank_titles(frame: pd.DataFrame, columns: Sequence[str],
                 items: pd.DataFrame) -> BlankedTitles:
    """Remove each row's own item title from ``columns`` of ``frame`` (string cells).

    Args:
        frame: an augmentation table with an ``item_id`` column.
        columns: the columns to clean (the LLM's values, and its error messages).
        items: the dataset's items; the title is read from ``title`` and ``name`` when present.

    Raises:
        ValueError: ``frame`` or ``items`` lacks ``item_id``, or ``items`` has no title column.
    """
    if ITEM_ID not in frame.columns or ITEM_ID not in items.columns:
        raise ValueError(f"blank_titles needs an {ITEM_ID} column in the frame and the items")
    fields = [c for c in ("title", NAME) if c in items.columns]
    if not fields:
        raise ValueError("blank_titles: the items have no 'title' or 'name' column")
    titles = {str(rec[ITEM_ID]): [str(rec[f]) for f in fields if isinstance(rec[f], str)]
              for rec in items[[ITEM_ID, *fields]].to_dict("records")}
    out = frame.copy()
    blanked = emptied = 0
    for idx, item_id in out[ITEM_ID].items():
        pattern = title_pattern(title_variants(*titles.get(str(item_id), [])))
        if pattern is None:
            continue
        for col in columns:
            value = out.at[idx, col]
            if not isinstance(value, str) or not value:
                continue
            new = blank_title(value, pattern)
            if new != value:
                out.at[idx, col] = new
                blanked += 1
                emptied += int(new == "")
    return BlankedTitles(out, blanked, emptied)


__all__ = ["ARTICLES", "BlankedTitles", "blank_title", "blank_titles", "title_pattern",
           "title_variants"]
