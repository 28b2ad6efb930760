"""Predictions page: ranked genes (or users), nearest established items, stamped exports."""

from __future__ import annotations

import time

import altair as alt
import streamlit as st

from app import analyst, evidence, exports, flows
from app import features as feats
from app import predictions as preds
from app.safe_text import md
from app.state import header, page_link, read_only_reason, require_item
from engine.schema import DISEASE, TARGET_NOUN

ws, db, item = require_item("Predictions")
t0 = time.perf_counter()
try:
    state = flows.predict_item(db, ws, item.id, store=read_only_reason() is None)
except ValueError as exc:
    st.error(md(f"Cannot predict yet: {exc}.") + " Add feature values on the Features page.")
    page_link("features", "Go to Features", icon=":material/tune:")
    st.stop()
elapsed = time.perf_counter() - t0
header(ws, item, state.phase)
noun = TARGET_NOUN[ws.domain]

c1, c2, c3 = st.columns([1, 1, 2])
top_n = c1.selectbox("Top N", [10, 25, 50, 100, 250], index=1, key="pred_top_n")
lo, hi = preds.score_range(state)
min_score = c2.slider("Min score", lo, hi, lo, (hi - lo) / 100 or 0.01, key="pred_min_score")
classes: list[str] = []
if ws.domain == DISEASE:
    classes = c3.multiselect("Protein class", preds.target_classes(ws), key="pred_classes")

phenotypes = evidence.item_phenotypes(feats.current_features(db, item.id))
cand_mode = st.toggle(f"Rank within a candidate list (e.g. the {noun}s carrying a patient's "
                      "variants)" if ws.domain == DISEASE else
                      f"Rank within a candidate list of {noun}s", key="pred_cand_mode")
candidates = None
if cand_mode:
    k1, k2 = st.columns(2)
    cand_text = k1.text_area(
        "Symbols, aliases or ids (NCBI, HGNC, Ensembl)" if ws.domain == DISEASE
        else f"{noun.capitalize()} ids", key="pred_cand_text", height=110,
        placeholder="one per line, or separated by commas")
    cand_file = k2.file_uploader("or upload a list (CSV, TSV or TXT)", type=["csv", "tsv", "txt"],
                                 key="pred_cand_file")
    if cand_text.strip() or cand_file is not None:
        try:
            candidates = analyst.read_candidates(
                ws, cand_text, cand_file.getvalue() if cand_file is not None else None)
        except ValueError as exc:
            st.error(md(str(exc)))
        else:
            problems = candidates.problems(noun)
            if problems:
                st.warning(f"{len(problems)} entr{'y' if len(problems) == 1 else 'ies'} not "
                           "used:\n\n" + "\n".join(f"- {md(p)}" for p in problems[:50]))
    else:
        st.info(f"Paste or upload your candidate {noun}s to rank them within this item's "
                "ranking.")
t_ev = time.perf_counter()
if candidates is not None and candidates.target_ids:
    table = analyst.candidate_ranking(ws, state, candidates, phenotypes=phenotypes)
    heading = (f"Your {len(candidates.target_ids)} candidate {noun}s ranked for "
               f"{md(item.name)} (rank in the list; catalog rank and percentile beside it)")
else:
    table = preds.ranked_targets(ws, state, top_n=top_n, min_score=min_score, classes=classes)
    table = evidence.with_evidence(ws, state, table, phenotypes=phenotypes)
    heading = f"Top {noun}s for {md(item.name)}"
ev_ms = (time.perf_counter() - t_ev) * 1000
st.subheader(heading)
st.caption(f"Phase {state.phase_label} · feature version {state.feature_version} · "
           f"{len(state.prediction.targets)} {noun}s scored in {elapsed * 1000:.0f} ms"
           + (f" · evidence in {ev_ms:.0f} ms" if ws.domain == DISEASE else
              f" · ranked among the {len(preds.rated_targets(ws))} users with a rating"))
if table.empty:
    st.info("No target passes the filters; lower the minimum score or clear the class filter.")
cfg = {"score": st.column_config.ProgressColumn("score", min_value=lo, max_value=hi,
                                                format="%.4f"),
       "percentile": st.column_config.NumberColumn(
           "percentile", format="%.2f", help="share of the catalog ranked below (0-100)"),
       "lift over popularity": st.column_config.NumberColumn(
           "lift over popularity", format="%.1f×",
           help="p(target | this item) / p(target): how much more likely than from popularity")}
if ws.domain == DISEASE:
    cfg["NCBI Gene"] = st.column_config.LinkColumn("NCBI Gene", display_text=r".*/gene/(\d+)$")
    cfg["HGNC"] = st.column_config.LinkColumn("HGNC", display_text=r".*hgnc_id/(HGNC:\d+)$")
    cfg["OMIM gene"] = st.column_config.LinkColumn("OMIM gene", display_text=r".*/entry/(\d+)$")
    cfg["Ensembl"] = st.column_config.LinkColumn("Ensembl", display_text=r".*g=(ENSG\d+)$")
    cfg["why this rank"] = st.column_config.TextColumn("why this rank", width="large")
    cfg["nearest diseases with the gene"] = st.column_config.TextColumn(
        "nearest diseases with the gene", width="large")
st.dataframe(table, hide_index=True, width="stretch", column_config=cfg, key="pred_table")

if ws.domain != DISEASE:
    appeal = preds.appeal_by_group(ws, state)
    if not appeal.empty:
        st.subheader("Predicted appeal by user group, vs. this group's usual")
        baseline = appeal["usual"].notna().all()
        y_field = "vs usual" if baseline else "appeal"
        st.caption(
            "Each bar: the group's mean percentile in this movie's ranking minus its mean "
            f"percentile over {int(preds.usual_appeal(ws)['items'].iloc[0])} established "
            "movies (percentile points; above 0 = drawn to this movie more than usual)."
            if baseline else "Mean percentile of the group in this movie's ranking "
            "(50 = the middle); no baseline over established movies is available.")
        lim = max(5.0, float(appeal[y_field].abs().max())) if baseline else 100.0
        chart = alt.Chart(appeal).mark_bar().encode(
            x=alt.X("group:N", sort="-y", title=None),
            y=alt.Y(f"{y_field}:Q",
                    title="appeal vs. this group's usual (percentile points)" if baseline
                    else "mean percentile in the ranking (50 = the middle)",
                    scale=alt.Scale(domain=[-lim, lim] if baseline else [0, 100])),
            color=alt.Color("attribute:N", legend=None),
            tooltip=["attribute", "group",
                     alt.Tooltip("vs usual:Q", format="+.1f", title="vs. usual"),
                     alt.Tooltip("appeal:Q", format=".1f", title="mean percentile"),
                     alt.Tooltip("usual:Q", format=".1f", title="usual mean percentile"),
                     "users"],
        ).properties(height=220).facet(
            column=alt.Column("attribute:N", title=None)
        ).resolve_scale(x="independent")
        st.altair_chart(chart)

if ws.domain == DISEASE and not table.empty:
    st.subheader("Evidence for one gene")
    labels = [f"#{r['rank']} {r['symbol']} ({r['gene id']})" for _, r in table.iterrows()]
    pick = st.selectbox("Gene", labels, key="pred_evidence_gene")
    row = table.iloc[labels.index(pick) if pick in labels else 0]
    for col in evidence.EVIDENCE_COLUMNS:
        st.text(f"{col}: {row[col] if str(row[col]) else '—'}")
    for col in evidence.LINK_COLUMNS:
        if row.get(col):
            st.link_button(col, str(row[col]))

st.subheader("Nearest established items (FAISS)")
st.caption("Best-known targets: each neighbour's highest-scoring genes (DisGeNET score, then "
           "earliest year)." if ws.domain == DISEASE else "")
st.dataframe(evidence.neighbour_evidence(ws, state), hide_index=True, width="stretch",
             column_config={"similarity": st.column_config.NumberColumn(format="%.4f")})

st.subheader("Export")
meta = exports.stamp(ws, state)
st.caption(md(" · ".join(f"{k}: {v}" for k, v in meta.items() if k != "exported_at")))
cols = st.columns(len(exports.FORMATS))
for col, fmt in zip(cols, exports.FORMATS, strict=True):
    fname, mime = exports.export_name(fmt, meta)
    # made on click, with a fresh random export id: an unguessable, per-click /media URL
    col.download_button(f"Download {fmt}", exports.on_click_export(table, fmt, meta),
                        file_name=fname, mime=mime, key=f"dl_{fmt}", on_click="ignore")
with st.expander("Aligned embedding"):
    st.code(", ".join(f"{v:.4f}" for v in state.prediction.embedding), language=None,
            wrap_lines=True)
page_link("feedback", "Next: confirm or reject and refine", icon=":material/fact_check:")
