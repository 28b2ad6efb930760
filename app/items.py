"""The new-item forms as plain data: validation of what the analyst typed, per domain.

:func:`disease_input` / :func:`movie_input` turn form values into a :class:`NewItemInput`
(or raise ``ValueError`` with a readable message); :func:`create` stores it through
:func:`app.flows.new_item`. No streamlit import here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy.engine import Engine

from app import flows, lookup
from app.flows import ItemRecord
from db.validators import normalize_name
from engine.data.demo import ML_GENRES
from engine.data.disgenet import MESH_CLASS_NAMES, mesh_class_names
from engine.schema import DESCRIPTION, DISEASE, MOVIE, MULTI_SEP, NAME
from engine.workspace import Workspace

CUI_RE = re.compile(r"^C\d{7}$")
TITLE_YEAR_RE = re.compile(r"^(.*\S)\s*\((\d{4})\)\s*$")
MIN_YEAR, MAX_YEAR = 1870, 2100
SYNONYMS = "synonyms"


@dataclass(frozen=True)
class NewItemInput:
    """A validated new item: name, external id, raw features and extra analyst features."""

    name: str
    external_id: str | None
    features: dict[str, object]
    extra_features: list[dict] = field(default_factory=list)


def validate_cui(value: str | None) -> str | None:
    """``"c0002395 "`` -> ``"C0002395"``; empty -> None.

    Raises:
        ValueError: not ``C`` followed by exactly 7 digits.
    """
    text = (value or "").strip().upper()
    if not text:
        return None
    if not CUI_RE.match(text):
        raise ValueError(f"UMLS CUI must be 'C' followed by 7 digits (e.g. C0002395), "
                         f"got {value.strip()!r}.")
    return text


def _clean_list(values: Sequence[str] | str | None) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = values.split(MULTI_SEP)
    return [v.strip() for v in values if v and v.strip()]


def synonyms_feature(synonyms: str, analyst: str) -> list[dict]:
    """Synonyms typed by the analyst (comma, semicolon or newline separated) as one feature."""
    parts = [p.strip() for p in re.split(r"[,;\n]", synonyms or "") if p.strip()]
    if not parts:
        return []
    return [{"name": SYNONYMS, "descriptor": "Synonyms", "value": ", ".join(parts),
             "source": "analyst", "keep": True, "analyst": analyst,
             "edited_at": datetime.now(UTC).isoformat(timespec="seconds")}]


def mesh_label(value: str) -> str:
    """``C04`` -> ``C04 · Neoplasms`` for the form; names are shown as they are."""
    name = MESH_CLASS_NAMES.get(value)
    return f"{value} · {name}" if name else value


def _mesh_names(classes: Sequence[str]) -> str:
    """Readable names for MeSH class codes (``C04`` -> ``Neoplasms``); empty when the
    workspace already uses names (the demo)."""
    if not any(c in MESH_CLASS_NAMES for c in classes):
        return ""
    return mesh_class_names(MULTI_SEP.join(classes))


def disease_input(*, name: str, cui: str = "", disease_type: str = "",
                  mesh_classes: Sequence[str] | str = (), semantic_type: str = "",
                  description: str = "", synonyms: str = "",
                  analyst: str = "analyst", phenotypes: Sequence[str] = (),
                  resolution: lookup.DiseaseResolution | None = None) -> NewItemInput:
    """Validate the disease form.

    ``resolution`` (from :func:`app.lookup.resolve_disease`) adds the concept's curated ids
    (UMLS, OMIM, Orphanet, MeSH, DO) as features; ``phenotypes`` (HPO labels or ids) become the
    ``phenotypes`` feature the encoder reads (names) and ``phenotype_ids`` (ids); values equal
    to the curated ones keep their curated tag, edited ones are the analyst's.

    Raises:
        ValueError: empty name, a malformed UMLS CUI or an unknown HPO term.
    """
    name = (name or "").strip()
    if not name:
        raise ValueError("Disease name is required.")
    features: dict[str, object] = {
        NAME: name,
        "disease_type": (disease_type or "").strip(),
        "disease_class": MULTI_SEP.join(_clean_list(mesh_classes)),
        "disease_class_name": _mesh_names(_clean_list(mesh_classes)),
        "semantic_type": (semantic_type or "").strip(),
        DESCRIPTION: (description or "").strip(),
    }
    cui_value = validate_cui(cui)
    if resolution is not None and cui_value != resolution.record.cui:
        resolution = None  # the analyst typed another CUI: the lookup no longer applies
    extra = lookup.disease_features(resolution, phenotypes, synonyms, analyst)
    return NewItemInput(name=name, external_id=cui_value, features=features,
                        extra_features=extra)


def movie_input(*, title: str, year: int | float | str | None = None,
                genres: Sequence[str] | str = (), description: str = "") -> NewItemInput:
    """Validate the movie form.

    Raises:
        ValueError: empty title, a year outside 1870..2100, or an unknown genre.
    """
    title = (title or "").strip()
    if not title:
        raise ValueError("Movie title is required.")
    m = TITLE_YEAR_RE.match(title)
    if m and year in (None, ""):
        year = m.group(2)  # catalogue style "Heat (1995)": the year comes from the title
    year_value: int | None = None
    if year not in (None, ""):
        try:
            year_value = int(float(year))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"Year must be a number, got {year!r}.") from None
        if not MIN_YEAR <= year_value <= MAX_YEAR:
            raise ValueError(f"Year must be between {MIN_YEAR} and {MAX_YEAR}, got {year_value}.")
    genre_list = _clean_list(genres)
    unknown = [g for g in genre_list if g not in ML_GENRES]
    if unknown:
        raise ValueError(f"Unknown genre(s): {', '.join(unknown)}. Use the MovieLens genres.")
    features: dict[str, object] = {
        "title": title,
        "year": year_value,
        "genres": MULTI_SEP.join(g for g in ML_GENRES if g in genre_list),
        DESCRIPTION: (description or "").strip(),
    }
    return NewItemInput(name=title, external_id=None, features=features)


def create(db: Engine, ws: Workspace, data: NewItemInput, *, analyst: str = "analyst",
           allow_duplicate: bool = False) -> ItemRecord:
    """Store the item (feature version 1). Features the workspace does not know are dropped.

    Raises:
        flows.DuplicateItemError: an item with the same name or external id exists.
        ValueError: invalid input.
    """
    # the description has no dataset feature in DisGeNET: kept (as an analyst feature by
    # flows.new_item) instead of being dropped
    known = {s.name for s in ws.dataset.item_features} | {DESCRIPTION, "year"}
    features = {k: v for k, v in data.features.items() if k in known}
    return flows.new_item(db, ws, name=data.name, features=features,
                          external_id=data.external_id, analyst=analyst or "analyst",
                          allow_duplicate=allow_duplicate, extra_features=data.extra_features)


def copy_name(db: Engine, workspace: str, name: str) -> str:
    """A free name for a copy of ``name`` in the workspace: ``"<name> (copy 2)"``, 3, ...
    (item names are unique per workspace, so a copy cannot keep the name)."""
    taken = {normalize_name(it.name) for it in flows.list_items(db, workspace)}
    base = (name or "").strip()
    if normalize_name(base) not in taken:
        return base
    n = 2
    while normalize_name(f"{base} (copy {n})") in taken:
        n += 1
    return f"{base} (copy {n})"


def create_copy(db: Engine, ws: Workspace, data: NewItemInput, name: str = "", *,
                analyst: str = "analyst") -> ItemRecord:
    """Create ``data`` although it looks like an existing item, under ``name`` (default: the
    first free :func:`copy_name`).

    Raises:
        ValueError: the name is taken too (the message asks for another), or invalid input.
    """
    new = (name or "").strip() or copy_name(db, ws.name, data.name)
    if any(normalize_name(it.name) == normalize_name(new)
           for it in flows.list_items(db, ws.name)):
        raise ValueError(f"An item named {new!r} already exists in this workspace; give the "
                         "copy another name.")
    features = dict(data.features)
    if NAME in features:
        features[NAME] = new
    copy = NewItemInput(name=new, external_id=data.external_id, features=features,
                        extra_features=list(data.extra_features))
    return create(db, ws, copy, analyst=analyst, allow_duplicate=True)


def items_table(db: Engine, workspace: str) -> pd.DataFrame:
    """The workspace's items for the "reopen" list: id, name, external id, phase, created."""
    rows = []
    for it, phase in flows.items_with_phase(db, workspace):
        rows.append({"id": it.id, "name": it.name, "external id": it.external_id or "",
                     "phase": flows.phase_label(phase),
                     "created by": it.created_by,
                     "created": it.created_at.strftime("%Y-%m-%d %H:%M")})
    return pd.DataFrame(rows, columns=["id", "name", "external id", "phase", "created by",
                                       "created"])


def domain_vocab(ws: Workspace, feature: str) -> list[str]:
    """Known values of a categorical/multi item feature in the workspace (sorted)."""
    if feature == "genres" and ws.domain == MOVIE:
        return list(ML_GENRES)
    return ws.feature_vocab(feature)


__all__ = ["DISEASE", "MOVIE", "NewItemInput", "copy_name", "create", "create_copy",
           "disease_input", "domain_vocab",
           "items_table", "movie_input", "synonyms_feature", "validate_cui"]
