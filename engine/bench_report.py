"""Render benchmark result files (``results/<dataset>/<method>.json``) as a markdown table and
an Altair chart (AUC by phase, one line per method). No Streamlit here: the dashboard calls
these functions and displays what they return.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from engine.schema import PHASES

#: Column order of the table: methods in registry order, unknown ones after.
PHASE_LABELS = {"0": "Phase-0", "I": "Phase-I", "II": "Phase-II", "III": "Phase-III"}


def load_results(directory: Path) -> dict[str, dict]:
    """Every ``<method>.json`` of one dataset's result folder, by method, in registry order."""
    from engine.baselines import METHODS

    docs = {}
    for path in sorted(directory.glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(doc, dict) and "method" in doc and "phases" in doc:
            docs[doc["method"]] = doc
    order = {name: i for i, name in enumerate(METHODS)}
    return dict(sorted(docs.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def _fmt(stat: Mapping[str, Any] | None) -> str:
    if not stat or stat.get("mean") is None:
        return "—"
    std = stat.get("std")
    return f"{stat['mean']:.4f} ± {std:.4f}" if std is not None else f"{stat['mean']:.4f}"


def markdown_table(docs: Mapping[str, dict], metrics: Sequence[str] = ("auc", "f1", "item_auc"),
                   ) -> str:
    """One row per method; per phase the chosen metrics as ``mean ± std`` over seeds."""
    header = ["method"]
    for p in PHASES:
        header += [f"{PHASE_LABELS[p]} {m.upper() if m != 'item_auc' else 'item-AUC'}"
                   for m in metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, doc in docs.items():
        if doc.get("status") == "not run":
            cells = [f"{name} (not run: {doc.get('reason', '')})"] + ["—"] * (len(header) - 1)
        else:
            cells = [name]
            for p in PHASES:
                phase = (doc.get("phases") or {}).get(p, {})
                cells += [_fmt(phase.get(m)) for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def auc_frame(docs: Mapping[str, dict], metric: str = "auc"):
    """Long pandas frame: method, phase, mean, std (ran methods only)."""
    import pandas as pd

    rows = []
    for name, doc in docs.items():
        if doc.get("status") == "not run":
            continue
        for p in PHASES:
            stat = (doc.get("phases") or {}).get(p, {}).get(metric)
            if stat and stat.get("mean") is not None:
                rows.append({"method": name, "phase": PHASE_LABELS[p], "mean": stat["mean"],
                             "std": stat.get("std") or 0.0})
    return pd.DataFrame(rows, columns=["method", "phase", "mean", "std"])


def auc_chart(docs: Mapping[str, dict], metric: str = "auc", title: str | None = None):
    """Altair line chart of ``metric`` by phase, one line per method (error bars: ±std)."""
    import altair as alt

    frame = auc_frame(docs, metric)
    frame["lo"] = frame["mean"] - frame["std"]
    frame["hi"] = frame["mean"] + frame["std"]
    order = [PHASE_LABELS[p] for p in PHASES]
    x = alt.X("phase:N", sort=order, title="phase")
    base = alt.Chart(frame)
    lines = base.mark_line(point=True).encode(
        x=x, y=alt.Y("mean:Q", title=metric.upper(), scale=alt.Scale(zero=False)),
        color=alt.Color("method:N"), tooltip=["method", "phase", "mean", "std"])
    bars = base.mark_errorbar().encode(x=x, y="lo:Q", y2="hi:Q", color="method:N")
    dataset = next(iter(docs.values()))["dataset"] if docs else ""
    return (lines + bars).properties(title=title or f"{metric.upper()} by phase — {dataset}",
                                     width=480, height=320)


def write_report(directory: Path) -> tuple[str, Path | None]:
    """Markdown table of a dataset's results, and the chart saved as ``auc_by_phase.html``."""
    docs = load_results(directory)
    table = markdown_table(docs)
    if not docs:
        return table, None
    out = directory / "auc_by_phase.html"
    auc_chart(docs).save(str(out))
    return table, out
