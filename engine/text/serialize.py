"""Feature serialization, paper Eq. 2: every feature becomes ``<Descriptor>: value``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from engine.schema import MULTI_SEP, FeatureSpec

FIELD_SEP = "; "
MISSING_VALUES = frozenset({"", "nan", "none", "null", "unknown", "-", "n/a"})


def clean_value(value: object) -> str:
    """Render a raw value as text; multi-valued fields become comma-separated lists."""
    if value is None:
        return ""
    if isinstance(value, float) and value != value:  # NaN
        return ""
    if isinstance(value, (list, tuple, set)):
        parts = [clean_value(v) for v in value]
        return ", ".join(p for p in parts if p)
    text = str(value).strip()
    if MULTI_SEP in text:
        text = ", ".join(p.strip() for p in text.split(MULTI_SEP) if p.strip())
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    return " ".join(text.split())


def serialize_features(pairs: Iterable[tuple[str, object]]) -> str:
    """Eq. 2: concatenate ``<Descriptor>: value`` for every feature that has a value.

    Args:
        pairs: (descriptor, value) in the order they should appear.

    Returns:
        One line of text, e.g. ``"Title: Heat; Year: 1995; Genres: Action, Crime"``.
    """
    out = []
    for descriptor, value in pairs:
        text = clean_value(value)
        if text.lower() in MISSING_VALUES:
            continue
        out.append(f"{descriptor.strip()}: {text}")
    return FIELD_SEP.join(out)


def serialize_item(
    item: Mapping[str, object],
    specs: Iterable[FeatureSpec],
    augmented: Mapping[str, str] | None = None,
    augmented_descriptors: Mapping[str, str] | None = None,
) -> str:
    """Serialize an item's raw features (those with ``spec.text``) followed by augmented ones.

    Args:
        item: raw feature values keyed by column name.
        specs: the dataset's item feature specs, in serialization order.
        augmented: LLM-augmented (or analyst-filled) values keyed by feature name.
        augmented_descriptors: descriptor per augmented feature name (defaults to a
            title-cased name).
    """
    pairs: list[tuple[str, object]] = [(s.descriptor, item.get(s.name)) for s in specs if s.text]
    for name, value in (augmented or {}).items():
        desc = (augmented_descriptors or {}).get(name) or name.replace("_", " ").capitalize()
        pairs.append((desc, value))
    return serialize_features(pairs)
