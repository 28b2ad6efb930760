"""Benchmark page: AUC and F1 by phase per method from results/<dataset>/<method>.json."""

from __future__ import annotations

import altair as alt
import streamlit as st

from app.benchmark import load_results, results_dir, wide_table
from engine.schema import PHASES

st.title("Benchmark")
root = results_dir()
res = load_results(root)
for problem in res.problems:
    st.warning(f"Skipped an unreadable result file: {problem}")
if res.empty:
    st.info(f"No benchmark results yet in `{root}`. Run a benchmark (e.g. `emerflow bench`) "
            "to write results/<dataset>/<method>.json, then reload this page.")
    st.stop()

datasets = sorted(res.table["dataset"].unique())
dataset = st.selectbox("Dataset", datasets, key="bench_dataset")
t = res.table[res.table["dataset"] == dataset]
metrics = [m for m in ("auc", "f1", "item_auc") if m in set(t["metric"])]
cols = st.columns(len(metrics) or 1)
for col, metric in zip(cols, metrics, strict=False):
    d = t[t["metric"] == metric].assign(lo=lambda x: x["mean"] - x["std"],
                                        hi=lambda x: x["mean"] + x["std"])
    enc_x = alt.X("phase:O", sort=list(PHASES), title="phase", axis=alt.Axis(labelAngle=0))
    line = alt.Chart(d).mark_line(point=True).encode(
        x=enc_x, y=alt.Y("mean:Q", title=metric.upper(), scale=alt.Scale(zero=False)),
        color=alt.Color("method:N"),
        tooltip=["method", "phase", alt.Tooltip("mean:Q", format=".4f"),
                 alt.Tooltip("std:Q", format=".4f"), "n_seeds"])
    band = alt.Chart(d).mark_errorbar().encode(x=enc_x, y="lo:Q", y2="hi:Q", color="method:N")
    col.altair_chart((band + line).properties(title=f"{metric.upper()} by phase", height=300))
    col.dataframe(wide_table(res.table, dataset, metric), hide_index=True, width="stretch")

try:  # the engine's own report table, when the bench package provides it
    from engine.bench_report import load_results as load_docs
    from engine.bench_report import markdown_table

    with st.expander("Report table (engine.bench_report)"):
        st.markdown(markdown_table(load_docs(root / dataset)))
except Exception:  # noqa: BLE001 - optional helper; the charts above do not need it
    pass

st.subheader("Runs")
runs = [r for r in res.runs if r["dataset"] == dataset]
st.dataframe(runs, hide_index=True, width="stretch")
for r in runs:
    st.code(r["command"], language="bash")
