"""Benchmark page: full-catalog ranking (Recall@20, Recall@100, NDCG@100), AUC, F1 and
item-AUC by phase for every method, from results/<dataset>/<method>.json only."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from app.benchmark import (
    METHOD_COLOURS,
    METRIC_LABELS,
    METRICS,
    RANKING_METRICS,
    load_results,
    methods_of,
    results_dir,
    suggest_results,
    suggest_rounds,
    suggest_summary,
    wide_table,
)
from app.history import FIT_WIDTH
from app.safe_text import md
from engine.schema import PHASES

st.title("Benchmark")
root = results_dir()
res = load_results(root)
for problem in res.problems:
    st.warning(md(f"Skipped an unreadable result file: {problem}"))
if res.empty:
    st.info(f"No benchmark results yet in `{root}`. Run a benchmark (e.g. `emerflow bench`) "
            "to write results/<dataset>/<method>.json, then reload this page.")
    st.stop()

datasets = sorted(res.table["dataset"].unique())
dataset = st.selectbox("Dataset", datasets, key="bench_dataset")
t = res.table[res.table["dataset"] == dataset]
methods = methods_of(res, dataset)
# one colour per method on every chart, and every method in every legend (FIT_WIDTH: the
# chart grows to hold the whole legend instead of cutting it at the plot's height)
palette = [METHOD_COLOURS[i % len(METHOD_COLOURS)] for i in range(len(methods))]
color = alt.Color("method:N", scale=alt.Scale(domain=methods, range=palette), sort=methods,
                  legend=alt.Legend(title="method", symbolLimit=0, labelLimit=0, orient="bottom",
                                    columns=4))
x = alt.X("phase:O", sort=list(PHASES), title="phase", axis=alt.Axis(labelAngle=0))


def chart(metric: str) -> alt.LayerChart:
    label = METRIC_LABELS[metric]
    d = t[t["metric"] == metric].assign(lo=lambda f: f["mean"] - f["std"],
                                        hi=lambda f: f["mean"] + f["std"])
    line = alt.Chart(d).mark_line(point=True).encode(
        x=x, y=alt.Y("mean:Q", title=label, scale=alt.Scale(zero=False)), color=color,
        tooltip=["method", "phase", alt.Tooltip("mean:Q", title=label, format=".4f"),
                 alt.Tooltip("std:Q", format=".4f"), "n_seeds"])
    band = alt.Chart(d).mark_errorbar().encode(x=x, y=alt.Y("lo:Q", title=label), y2="hi:Q",
                                               color=color)
    return (band + line).properties(title=f"{label} by phase — {dataset}", height=340,
                                    autosize=FIT_WIDTH)


def section(metrics: tuple[str, ...]) -> None:
    present = [m for m in metrics if m in set(t["metric"])]
    if not present:
        st.caption("No values in these result files.")
        return
    for tab, metric in zip(st.tabs([METRIC_LABELS[m] for m in present]), present, strict=True):
        with tab:
            st.altair_chart(chart(metric), width="stretch")
            st.dataframe(wide_table(res.table, dataset, metric, methods), hide_index=True,
                         width="stretch")


st.subheader("Full-catalog ranking")
st.caption("Every target of the catalog ranked for each new item, the positives of the phase "
           "batches already seen excluded; the item's test positives are the relevant set. "
           "Mean over new items, ± std over seeds.")
section(RANKING_METRICS)

st.subheader("AUC, F1 and per-item AUC")
st.caption("Pooled AUC over the test rows (one sampled negative per positive on DisGeNET), F1 at "
           "the mean-score threshold (— where scores are not probabilities), mean per-item AUC.")
section(METRICS)

try:  # diversity and the headline comparison come from the engine's report helpers
    from engine.bench_report import (
        diversity_table,
        gain_table,
        headline,
        headline_table,
        product_method,
    )
    from engine.bench_report import load_results as load_docs

    docs = load_docs(root / dataset)
    st.subheader("Diversity")
    st.caption("Mean Jaccard overlap of the top-20 targets of two different new items at "
               "Phase 0 (1 = every item gets the same list).")
    shown = {md(name): doc for name, doc in docs.items()}  # method names come from files
    st.markdown(diversity_table(shown))
    st.subheader("Feedback gain")
    st.caption("What the confirmed batches pay: Phase-III minus Phase-0 ranking metrics.")
    st.markdown(gain_table(shown))
    st.subheader(f"Headline: {md(product_method(dataset))} against the best baseline")
    st.caption("Per phase, the baseline with the highest NDCG@100; mean per-item difference "
               "with a 95% paired bootstrap interval (1,000 resamples of new items).")
    st.markdown(headline_table([{**r, "method": md(r["method"]), "baseline": md(r["baseline"])}
                                for r in headline(docs, dataset)]))
except Exception as exc:  # noqa: BLE001 - the tables above do not need these helpers
    st.caption(md(f"Diversity and headline unavailable: {exc}"))

sug = suggest_results(dataset, root)
if sug is not None:
    st.subheader("What to test next: a simulated analyst")
    st.caption(f"Each round the strategy proposes {sug.get('k', 4)} untested targets, they are "
               "tested against the new item's true targets and the item is refined; "
               f"{sug.get('rounds', 3)} rounds, mean over new items and seeds "
               f"{sug.get('seeds_done', sug.get('seeds'))}. suggest@d: the dial d (0 = greedy, "
               f"1 = most informative); the product's default ({sug.get('dial')}) was chosen "
               "on the old-item validation split.")
    rounds = suggest_rounds(sug)
    strategies = list(dict.fromkeys(rounds["strategy"]))
    st.altair_chart(alt.Chart(rounds).mark_line(point=True).encode(
        x=alt.X("round:O", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("cumulative:Q", title="true targets found so far (per item)"),
        color=alt.Color("strategy:N", sort=strategies, scale=alt.Scale(domain=strategies),
                        legend=alt.Legend(symbolLimit=0, labelLimit=0)),
        tooltip=["strategy", "round", alt.Tooltip("found:Q", format=".3f"),
                 alt.Tooltip("cumulative:Q", format=".3f")],
    ).properties(height=260, title=f"Discoveries per round — {dataset}", autosize=FIT_WIDTH),
        width="stretch")
    st.dataframe(suggest_summary(sug), hide_index=True, width="stretch")

st.subheader("Runs")
runs = [r for r in res.runs if r["dataset"] == dataset]
st.dataframe(pd.DataFrame(runs), hide_index=True, width="stretch")
for r in runs:
    st.code(r["command"], language="bash")
