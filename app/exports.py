"""Downloads stamped with where the numbers come from (no streamlit here).

CSV/TSV carry the stamp as leading ``# key: value`` comment lines (read them back with
``pd.read_csv(..., comment="#")``); JSON has ``{"stamp": {...}, "rows": [...]}``.

CSV/TSV are safe to open in a spreadsheet: text cells starting with ``=``, ``+``, ``-``, ``@``,
a tab or CR get a leading ``'`` (no formula runs), and stamp values are percent-encoded where
they hold the separator, quotes or line breaks, so a stamp line is always one cell.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from app.flows import ItemState, phase_label
from engine.csv_safety import header_value, neutralize_frame
from engine.workspace import Workspace

FORMATS = {"CSV": ("csv", "text/csv"), "TSV": ("tsv", "text/tab-separated-values"),
           "JSON": ("json", "application/json")}


def stamp(ws: Workspace, state: ItemState) -> dict[str, Any]:
    """Workspace, model version, feature version, phase, item and export time."""
    return {"workspace": ws.name, "model_version": ws.model_version,
            "feature_version": state.feature_version, "phase": phase_label(state.phase),
            "item_id": state.item.id, "item": state.item.name,
            "encoder": ws.config.encoder.model,
            "exported_at": datetime.now(UTC).isoformat(timespec="seconds")}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:60] or "item"


def export_bytes(table: pd.DataFrame, fmt: str, meta: Mapping[str, Any]) -> tuple[bytes, str, str]:
    """``(data, file name, mime type)`` of ``table`` in ``fmt`` (CSV, TSV or JSON).

    Raises:
        ValueError: unknown format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {list(FORMATS)}")
    ext, mime = FORMATS[fmt]
    name = (f"{_slug(str(meta.get('item', 'item')))}_{meta.get('workspace', 'ws')}_"
            f"phase-{meta.get('phase', '0')}_fv{meta.get('feature_version', 0)}.{ext}")
    if fmt == "JSON":
        doc = {"stamp": dict(meta), "rows": json.loads(table.to_json(orient="records"))}
        return json.dumps(doc, indent=1).encode("utf-8"), name, mime
    sep = "," if fmt == "CSV" else "\t"
    buf = io.StringIO()
    for k, v in meta.items():
        buf.write(f"# {header_value(k, sep)}: {header_value(v, sep)}\n")
    neutralize_frame(table).to_csv(buf, index=False, sep=sep, lineterminator="\n")
    return buf.getvalue().encode("utf-8"), name, mime
