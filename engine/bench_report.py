"""Render benchmark result files (``results/<dataset>/<method>.json``) as markdown tables and
Altair charts. No Streamlit here: the dashboard calls these functions and displays what they
return.

What is rendered (protocol.md):

- the full-catalog ranking per phase (Recall@20, Recall@100, NDCG@100, mean ± std over seeds);
- pooled AUC, F1 (null for non-probabilistic scores, shown as "—") and mean per-item AUC;
- each method's backbone (``—``: no backbone);
- diversity: the mean Jaccard overlap of two new items' top-20 targets at Phase 0;
- feedback gain: Phase-III minus Phase-0 Recall@100 and NDCG@100;
- the headline: the product's method (:data:`engine.tuned.PRODUCT_METHOD`) against the best
  baseline of each phase by NDCG@100, with a 95% paired bootstrap interval (1,000 resamples of
  items) of the per-item NDCG@100 and Recall@100 differences (the files' ``per_item`` blocks).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.metrics import RANKING_KEYS, paired_bootstrap
from engine.schema import PHASES

PHASE_LABELS = {"0": "Phase-0", "I": "Phase-I", "II": "Phase-II", "III": "Phase-III"}
#: Display names of the metrics (table headers and chart axes).
METRIC_LABELS = {"auc": "AUC", "f1": "F1", "item_auc": "item-AUC", "recall@20": "Recall@20",
                 "recall@100": "Recall@100", "ndcg@100": "NDCG@100"}
#: The methods the product's method is compared with in the headline (protocol.md).
BASELINES: tuple[str, ...] = ("popularity", "popularity-rate", "item-mean", "cooc-knn", "ease",
                              "text-knn", "text-cooc", "text-ease", "backbone", "metaemb", "cvar",
                              "mwuf")
#: Key of the diversity measure in result files.
DIVERSITY_KEY = "top20_jaccard_phase0"


def is_result_doc(doc: Any) -> bool:
    """Whether a parsed JSON file is a benchmark result (not tuning.json, speed files, ...)."""
    return isinstance(doc, dict) and "method" in doc and "phases" in doc


def load_results(directory: Path) -> dict[str, dict]:
    """Every ``<method>.json`` of one dataset's result folder, by method, in registry order."""
    from engine.baselines import METHODS

    docs = {}
    for path in sorted(directory.glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if is_result_doc(doc):
            docs[doc["method"]] = doc
    order = {name: i for i, name in enumerate(METHODS)}
    return dict(sorted(docs.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def _fmt(stat: Mapping[str, Any] | None) -> str:
    if not stat or stat.get("mean") is None:
        return "—"
    std = stat.get("std")
    return f"{stat['mean']:.4f} ± {std:.4f}" if std is not None else f"{stat['mean']:.4f}"


def _ran(doc: Mapping[str, Any]) -> bool:
    return doc.get("status") != "not run"


def _stat(doc: Mapping[str, Any], phase: str, metric: str) -> Mapping[str, Any] | None:
    block = "ranking" if metric in RANKING_KEYS else "phases"
    return ((doc.get(block) or {}).get(phase) or {}).get(metric)


def _mean(doc: Mapping[str, Any], phase: str, metric: str) -> float | None:
    stat = _stat(doc, phase, metric)
    return None if not stat or stat.get("mean") is None else float(stat["mean"])


def backbone_label(doc: Mapping[str, Any]) -> str:
    """The backbone a result file records (``—`` when the method has none)."""
    if "backbone" not in doc:
        return "?"
    return str(doc["backbone"]) if doc["backbone"] else "—"


def markdown_table(docs: Mapping[str, dict], metrics: Sequence[str] = ("auc", "f1", "item_auc"),
                   ) -> str:
    """One row per method (and its backbone); per phase the chosen metrics as ``mean ± std``
    over seeds (AUC-type metrics from ``phases``, ranking metrics from ``ranking``)."""
    header = ["method"]
    for p in PHASES:
        header += [f"{PHASE_LABELS[p]} {METRIC_LABELS.get(m, m)}" for m in metrics]
    header.append("backbone")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, doc in docs.items():
        if not _ran(doc):
            cells = [f"{name} (not run: {doc.get('reason', '')})"] + ["—"] * (len(header) - 1)
        else:
            cells = [name]
            for p in PHASES:
                cells += [_fmt(_stat(doc, p, m)) for m in metrics]
            cells.append(backbone_label(doc))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ranking_table(docs: Mapping[str, dict]) -> str:
    """Recall@20, Recall@100 and NDCG@100 per phase (the full-catalog ranking)."""
    return markdown_table(docs, RANKING_KEYS)


def diversity_table(docs: Mapping[str, dict]) -> str:
    """Mean Jaccard overlap of two new items' top-20 targets at Phase 0, per method."""
    lines = ["| method | top-20 Jaccard, Phase 0 (lower = more item-specific) |", "|---|---|"]
    for name, doc in docs.items():
        value = (doc.get("diversity") or {}).get(DIVERSITY_KEY) if _ran(doc) else None
        lines.append(f"| {name} | {'—' if value is None else f'{value:.3f}'} |")
    return "\n".join(lines)


def gain_table(docs: Mapping[str, dict]) -> str:
    """What feedback pays: Phase-III minus Phase-0 Recall@100 and NDCG@100 per method."""
    lines = ["| method | Recall@100 gain, Phase 0 → III | NDCG@100 gain, Phase 0 → III |",
             "|---|---|---|"]
    for name, doc in docs.items():
        cells = []
        for metric in ("recall@100", "ndcg@100"):
            a, b = _mean(doc, "0", metric), _mean(doc, "III", metric)
            cells.append("—" if a is None or b is None or not _ran(doc) else f"{b - a:+.4f}")
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def product_method(dataset: str) -> str:
    from engine.tuned import product_method as shipped

    return shipped(dataset)


def _per_item(doc: Mapping[str, Any], metric: str, phase: str) -> dict[str, float]:
    block = doc.get("per_item") or {}
    values = (block.get(metric) or {}).get(phase)
    if not values:
        return {}
    return {str(i): (np.nan if v is None else float(v))
            for i, v in zip(block.get("items") or [], values, strict=False)}


def headline(docs: Mapping[str, dict], dataset: str | None = None,
             product: str | None = None, baselines: Sequence[str] = BASELINES,
             n: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """Per phase: the product's method against the best baseline of that phase by NDCG@100.

    Returns rows ``{"phase", "method", "baseline", "metric", "mean", "lo", "hi", "items"}``:
    the mean per-item difference (method - baseline) over the new items both files rank, and
    its 95% paired bootstrap interval (:func:`engine.metrics.paired_bootstrap`), for NDCG@100
    and Recall@100. Empty when the method or every baseline is missing.
    """
    if not docs:
        return []
    dataset = dataset or str(next(iter(docs.values())).get("dataset", ""))
    product = product or product_method(dataset)
    mine = docs.get(product)
    if mine is None or not _ran(mine):
        return []
    rows: list[dict[str, Any]] = []
    for phase in PHASES:
        ran = [b for b in baselines if b in docs and _ran(docs[b])
               and _mean(docs[b], phase, "ndcg@100") is not None]
        if not ran:
            continue
        best = max(ran, key=lambda b: _mean(docs[b], phase, "ndcg@100") or 0.0)
        for metric in ("ndcg@100", "recall@100"):
            a, b = _per_item(mine, metric, phase), _per_item(docs[best], metric, phase)
            common = [i for i in a if i in b]
            diff = np.array([a[i] - b[i] for i in common], dtype=np.float64)
            ci = paired_bootstrap(diff, n=n, seed=seed) if common else {
                "mean": None, "lo": None, "hi": None}
            rows.append({"phase": phase, "method": product, "baseline": best, "metric": metric,
                         **ci, "items": int(np.isfinite(diff).sum()) if common else 0})
    return rows


def headline_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown of :func:`headline`'s rows."""
    if not rows:
        return "(no headline comparison: the product's method or the baselines have no results)"
    lines = ["| phase | method | best baseline (NDCG@100) | metric | mean difference | "
             "95% bootstrap interval | items |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["mean"] is None:
            diff, ci = "—", "—"
        else:
            diff, ci = f"{r['mean']:+.4f}", f"[{r['lo']:+.4f}, {r['hi']:+.4f}]"
        lines.append(f"| {PHASE_LABELS[r['phase']]} | {r['method']} | {r['baseline']} | "
                     f"{METRIC_LABELS[r['metric']]} | {diff} | {ci} | {r['items']} |")
    return "\n".join(lines)


def metric_frame(docs: Mapping[str, dict], metric: str = "auc"):
    """Long pandas frame: method, phase, mean, std (ran methods with a value only)."""
    import pandas as pd

    rows = []
    for name, doc in docs.items():
        if not _ran(doc):
            continue
        for p in PHASES:
            stat = _stat(doc, p, metric)
            if stat and stat.get("mean") is not None:
                rows.append({"method": name, "phase": PHASE_LABELS[p], "mean": stat["mean"],
                             "std": stat.get("std") or 0.0})
    return pd.DataFrame(rows, columns=["method", "phase", "mean", "std"])


#: Backwards-compatible name.
auc_frame = metric_frame


def metric_chart(docs: Mapping[str, dict], metric: str = "auc", title: str | None = None):
    """Altair line chart of ``metric`` by phase, one line per method (error bars: ±std); the
    legend lists every method that has a value."""
    import altair as alt

    frame = metric_frame(docs, metric)
    frame["lo"] = frame["mean"] - frame["std"]
    frame["hi"] = frame["mean"] + frame["std"]
    order = [PHASE_LABELS[p] for p in PHASES]
    methods = [m for m in docs if m in set(frame["method"])]
    label = METRIC_LABELS.get(metric, metric)
    x = alt.X("phase:N", sort=order, title="phase")
    color = alt.Color("method:N", sort=methods, scale=alt.Scale(domain=methods),
                      legend=alt.Legend(title="method", symbolLimit=0, labelLimit=0))
    base = alt.Chart(frame)
    lines = base.mark_line(point=True).encode(
        x=x, y=alt.Y("mean:Q", title=label, scale=alt.Scale(zero=False)),
        color=color, tooltip=["method", "phase", alt.Tooltip("mean:Q", format=".4f"),
                              alt.Tooltip("std:Q", format=".4f")])
    bars = base.mark_errorbar().encode(x=x, y=alt.Y("lo:Q", title=label), y2="hi:Q",
                                       color=color)
    dataset = next(iter(docs.values()))["dataset"] if docs else ""
    return (lines + bars).properties(title=title or f"{label} by phase — {dataset}",
                                     width=480, height=320)


def auc_chart(docs: Mapping[str, dict], metric: str = "auc", title: str | None = None):
    """:func:`metric_chart` (kept for callers of the AUC chart)."""
    return metric_chart(docs, metric, title)


def diversity_chart(docs: Mapping[str, dict]):
    """Bar chart of the Phase-0 top-20 Jaccard overlap per method (lower = more specific)."""
    import altair as alt
    import pandas as pd

    rows = [{"method": name, "jaccard": float(doc["diversity"][DIVERSITY_KEY])}
            for name, doc in docs.items()
            if _ran(doc) and (doc.get("diversity") or {}).get(DIVERSITY_KEY) is not None]
    frame = pd.DataFrame(rows, columns=["method", "jaccard"])
    dataset = next(iter(docs.values()))["dataset"] if docs else ""
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("jaccard:Q", title="mean top-20 Jaccard of two new items, Phase 0",
                scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("method:N", sort=list(frame["method"]), title="method"),
        tooltip=["method", alt.Tooltip("jaccard:Q", format=".3f")],
    ).properties(title=f"Phase-0 top-20 overlap — {dataset}", width=420)


def report_markdown(docs: Mapping[str, dict], dataset: str | None = None) -> str:
    """Every table of one dataset's results as one markdown document."""
    parts = ["### Full-catalog ranking (mean ± std over seeds)", ranking_table(docs),
             "### AUC (pooled), F1 (— : scores are not probabilities), item-AUC",
             markdown_table(docs), "### Diversity", diversity_table(docs),
             "### Feedback gain", gain_table(docs)]
    if docs:
        ds = dataset or str(next(iter(docs.values())).get("dataset", ""))
        parts += [f"### Headline: {product_method(ds)} vs the best baseline "
                  "(per-item differences, 95% paired bootstrap)",
                  headline_table(headline(docs, ds))]
    return "\n\n".join(parts)


def write_report(directory: Path) -> tuple[str, Path | None]:
    """Markdown tables of a dataset's results (also saved as ``report.md``) and the charts
    saved as ``auc_by_phase.html``, ``ndcg_by_phase.html``, ``recall100_by_phase.html`` and
    ``diversity.html``; returns (markdown, path of the AUC chart)."""
    docs = load_results(directory)
    text = report_markdown(docs, directory.name)
    if not docs:
        return text, None
    (directory / "report.md").write_text(text + "\n")
    out = directory / "auc_by_phase.html"
    metric_chart(docs, "auc").save(str(out))
    metric_chart(docs, "ndcg@100").save(str(directory / "ndcg_by_phase.html"))
    metric_chart(docs, "recall@100").save(str(directory / "recall100_by_phase.html"))
    diversity_chart(docs).save(str(directory / "diversity.html"))
    return text, out
