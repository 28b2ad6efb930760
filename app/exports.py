"""Downloads stamped with where the numbers come from (no streamlit here).

CSV/TSV carry the stamp as leading ``# key: value`` lines, the first of which says how many
lines to skip; read the table back with ``pd.read_csv(path, skiprows=N)`` (N from that first
line), or with :func:`read_export` (stamp and table). Do not use ``comment="#"``: pandas then
cuts every cell at a ``#``, and HGNC links hold one (``…/#!/hgnc_id/HGNC:8786``). JSON has
``{"stamp": {...}, "rows": [...]}``.

CSV/TSV are safe to open in a spreadsheet: text cells starting with ``=``, ``+``, ``-``, ``@``,
a tab or CR get a leading ``'`` (no formula runs), and stamp values are percent-encoded where
they hold the separator, quotes or line breaks, so a stamp line is always one cell.

The dashboard makes a file only when its download button is clicked (:func:`on_click_export`),
stamped with that moment and a fresh random ``export_id``. Streamlit serves a download from
``/media/<id>``, a URL any client may fetch, with ``<id>`` a 128-bit hash of the file's bytes:
the random id makes that name unguessable and new on every click, and only the session that
clicked is told it. (With ``[auth]`` no signed-out session reaches a download button.)
"""

from __future__ import annotations

import io
import json
import re
import secrets
from collections.abc import Callable, Mapping
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


def export_name(fmt: str, meta: Mapping[str, Any]) -> tuple[str, str]:
    """``(file name, mime type)`` of an export of ``meta``'s item in ``fmt``.

    Raises:
        ValueError: unknown format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {list(FORMATS)}")
    ext, mime = FORMATS[fmt]
    name = (f"{_slug(str(meta.get('item', 'item')))}_{meta.get('workspace', 'ws')}_"
            f"phase-{meta.get('phase', '0')}_fv{meta.get('feature_version', 0)}.{ext}")
    return name, mime


def on_click_export(table: pd.DataFrame, fmt: str, meta: Mapping[str, Any]
                    ) -> Callable[[], bytes]:
    """The bytes of :func:`export_bytes`, made when called (``st.download_button``'s deferred
    ``data``), each call stamped with its own time and a fresh 128-bit ``export_id``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {list(FORMATS)}")

    def make() -> bytes:
        fresh = {**meta, "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
                 "export_id": secrets.token_hex(16)}
        return export_bytes(table, fmt, fresh)[0]

    return make


def export_bytes(table: pd.DataFrame, fmt: str, meta: Mapping[str, Any]) -> tuple[bytes, str, str]:
    """``(data, file name, mime type)`` of ``table`` in ``fmt`` (CSV, TSV or JSON).

    Raises:
        ValueError: unknown format.
    """
    name, mime = export_name(fmt, meta)
    if fmt == "JSON":
        doc = {"stamp": dict(meta), "rows": json.loads(table.to_json(orient="records"))}
        return json.dumps(doc, indent=1).encode("utf-8"), name, mime
    sep = "," if fmt == "CSV" else "\t"
    buf = io.StringIO()
    n_skip = len(meta) + 1
    # one cell in a spreadsheet: no separator, quote or comma in this line
    buf.write(f"# EmerFlow export: the table starts after {n_skip} stamp lines "
              f"(pandas: skiprows={n_skip})\n")
    for k, v in meta.items():
        buf.write(f"# {header_value(k, sep)}: {header_value(v, sep)}\n")
    neutralize_frame(table).to_csv(buf, index=False, sep=sep, lineterminator="\n")
    return buf.getvalue().encode("utf-8"), name, mime


_SKIP_RE = re.compile(r"after (\d+) stamp lines")


def read_export(data: bytes, **read_csv: Any) -> tuple[dict[str, str], pd.DataFrame]:
    """(stamp, table) of a CSV/TSV export made by :func:`export_bytes` (the separator is
    detected; extra keywords go to ``pandas.read_csv``). Cells keep every ``#``.

    Raises:
        ValueError: not an EmerFlow export (no stamp header line).
    """
    text = data.decode("utf-8")
    first = text.split("\n", 1)[0]
    m = _SKIP_RE.search(first)
    if not first.startswith("# EmerFlow export") or m is None:
        raise ValueError("not an EmerFlow CSV/TSV export (no stamp header line)")
    n_skip = int(m.group(1))
    lines = text.split("\n", n_skip + 1)
    stamp = {}
    for line in lines[1:n_skip]:
        key, _, value = line[2:].partition(": ")
        stamp[key] = value
    header = lines[n_skip] if len(lines) > n_skip else ""
    sep = "\t" if header.count("\t") > header.count(",") else ","
    frame = pd.read_csv(io.StringIO(text), sep=sep, skiprows=n_skip, **read_csv)
    return stamp, frame
