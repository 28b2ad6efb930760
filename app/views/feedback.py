"""Feedback page: confirm/reject predicted targets or upload observed interactions, refine to
the next phase, and follow the phase history (rank movement, embedding drift, past rankings)."""

from __future__ import annotations

import hashlib

import altair as alt
import pandas as pd
import streamlit as st

from app import analyst, exports, flows, history, lookup
from app import predictions as preds
from app.safe_text import md
from app.state import analyst_name, header, read_only_reason, require_item
from app.uploads import parse_interactions_csv
from engine.schema import DISEASE, NAME, PHASES, TARGET_ID, TARGET_NOUN
from engine.suggest import DEFAULT_K, default_dial, dial_label

ws, db, item = require_item("Feedback and phases")
JUST_REFINED = f"fb_refined_state_{item.id}"  #: the refinement's own ranking, for the rerun
try:  # the rerun after a refinement reuses its ranking: the catalog is scored once per submit
    state = flows.reuse_or_predict(db, ws, item.id, st.session_state.pop(JUST_REFINED, None),
                                   store=read_only_reason() is None)
except ValueError as exc:
    st.error(md(f"Cannot predict yet: {exc}.") + " Add feature values on the Features page.")
    st.stop()
header(ws, item, state.phase)
noun = TARGET_NOUN[ws.domain]
last = state.phase >= flows.MAX_PHASE
next_label = flows.phase_label(min(state.phase + 1, flows.MAX_PHASE))
KEPT = f"fb_kept_{item.id}"  #: decisions of a refinement refused because the item moved on
REFINED_MSG = f"fb_refined_msg_{item.id}"  #: (phase, message) of this item's last refinement
if (shown := st.session_state.get(REFINED_MSG)) and shown[0] == state.phase:
    st.success(shown[1])  # kept across reruns (a table sort, a new "Show top") until it moves on
if "refine_warning" in st.session_state:
    st.warning(st.session_state.pop("refine_warning"))
kept: dict[str, int] = st.session_state.get(KEPT) or {}
EXTRA = f"fb_extra_{item.id}"  #: decisions on targets found by search (outside the top list)
APPLIED = f"fb_applied_upload_{item.id}"  #: digest of the last upload applied
UPLOADS = f"fb_upload_n_{item.id}"  #: bumped after an applied upload: a fresh, empty uploader
extra: dict[str, int] = st.session_state.setdefault(EXTRA, {})
_tg = ws.dataset.targets
SYMBOLS = dict(zip(_tg[TARGET_ID].astype(str),
                   _tg["symbol" if "symbol" in _tg.columns else NAME].astype(str), strict=True))


def named(t: str) -> str:
    """``PDE6B (5158)`` for a gene, the id for a user."""
    sym = SYMBOLS.get(str(t), "")
    return f"{sym} ({t})" if sym and sym != str(t) else str(t)


def refine(decisions: list[tuple[str, int]], source: str, notes: dict[str, str] | None = None
           ) -> None:
    """Refine and remember a message for the rerun; readable errors, nothing lost."""
    if (reason := read_only_reason()) is not None:  # nothing can be stored: say why
        st.error(md(reason))
        return
    before = state.prediction.targets.set_index(TARGET_ID)["rank"]
    try:  # one transaction: decisions + notes + refinement, checked against the shown phase
        new = flows.confirm_and_refine(db, ws, item.id, decisions, analyst=analyst_name(),
                                       source=source, notes=notes, expected_phase=state.phase)
    except flows.StaleItemError as exc:
        st.session_state[KEPT] = dict(decisions)
        st.session_state["refine_warning"] = md(str(exc))
        st.rerun()
    except ValueError as exc:
        st.error(md(str(exc)))
        return
    after = new.prediction.targets.set_index(TARGET_ID)["rank"]
    moved = [f"{md(named(t))}: {before[t]} → {after[t]}" for t, y in decisions if y == 1][:10]
    st.session_state.pop(KEPT, None)
    st.session_state[EXTRA] = {}
    st.session_state[JUST_REFINED] = new
    if source == "upload":  # an applied upload is cleared: no one-click re-apply
        st.session_state[UPLOADS] = int(st.session_state.get(UPLOADS, 0)) + 1
    st.session_state[REFINED_MSG] = (
        new.phase,
        f"Refined to Phase {new.phase_label} with {len(decisions)} decision(s)."
        + (f" Confirmed {noun} ranks: {'; '.join(moved)}" if moved else ""))
    st.rerun()


# ---- decide in the table ------------------------------------------------------------------------
st.subheader(f"Confirm or reject predicted {noun}s")
top_n = st.selectbox("Show top", [10, 25, 50, 100], index=1, key="fb_top_n")
table = preds.ranked_targets(ws, state, top_n=top_n)
label_col = "symbol" if "symbol" in table.columns else noun
if label_col not in table.columns:
    table[label_col] = table.iloc[:, 1]
view = table[["rank", label_col, *[c for c in ("gene id", "protein class", "gender", "age",
                                               "occupation") if c in table.columns],
              "score", "decision"]].copy()
view["confirm"] = False
view["reject"] = False
edited = st.data_editor(view, hide_index=True, width="stretch",
                        key=f"decide_{item.id}_{state.phase}_{top_n}",
                        disabled=[c for c in view.columns if c not in ("confirm", "reject")],
                        column_config={"score": st.column_config.NumberColumn(format="%.4f")})
ids = (table["gene id"] if "gene id" in table.columns else table["user"]).astype(str).tolist()
labels = dict(zip(ids, (f"#{r} {n} ({i})" for r, n, i in
                        zip(table["rank"], table[label_col], ids, strict=True)), strict=True))

# ---- what to test next ---------------------------------------------------------------------
planned: list[str] = []
if not last:
    with st.container(border=True):
        st.markdown(f"**What to test next**: a batch of {noun}s to validate, from the most "
                    "likely to the most informative (spread over groups of co-associated "
                    f"{noun}s, so each answer teaches the next refinement more)")
        n1, n2 = st.columns([1, 3])
        k_next = int(n1.number_input("Tests this round", min_value=1, max_value=20,
                                     value=DEFAULT_K, key="fb_next_k"))
        dials = [0.0, 0.25, 0.5, 0.75, 1.0]
        dial = n2.select_slider("Most likely ↔ most informative", options=dials,
                                value=default_dial(ws.domain), format_func=dial_label,
                                key="fb_next_dial")
        batch = analyst.suggest_next(ws, state, k=k_next, dial=dial)
        plan = analyst.suggestion_plan(ws, state, batch)
        planned = analyst.suggestion_ids(batch)
        st.dataframe(plan, hide_index=True, width="stretch", key="fb_next_plan",
                     column_config={"why test it": st.column_config.TextColumn(width="large")})
        st.caption(f"Record the results below: the suggested {noun}s are in the Confirm and "
                   "Reject lists.")
        meta = {**exports.stamp(ws, state), "plan": f"{k_next} tests, {dial_label(dial)}"}
        pcols = st.columns(len(exports.FORMATS))
        for col, fmt in zip(pcols, exports.FORMATS, strict=True):
            fname, mime = exports.export_name(fmt, meta)
            col.download_button(f"Plan as {fmt}", exports.on_click_export(plan, fmt, meta),
                                file_name="plan_" + fname, mime=mime, key=f"fb_plan_{fmt}",
                                on_click="ignore")
        for s_ in batch:
            labels.setdefault(s_.target_id, f"#{s_.rank} {s_.name} ({s_.target_id})")

c1, c2 = st.columns(2)
options = ids + [t for t in planned if t not in ids] + [t for t in kept if t not in labels]
pick_yes = c1.multiselect(f"Confirm {noun}s", options, format_func=lambda t: labels.get(t, t),
                          default=[t for t, y in kept.items() if y == 1],
                          key=f"fb_confirm_{item.id}_{state.phase}")
pick_no = c2.multiselect(f"Reject {noun}s", options, format_func=lambda t: labels.get(t, t),
                         default=[t for t, y in kept.items() if y == 0],
                         key=f"fb_reject_{item.id}_{state.phase}")
# ---- any target by symbol, alias or id (outside the top list) ----------------------------------
with st.container(border=True):
    if ws.domain == DISEASE:
        st.markdown(f"**Find any {noun}** by symbol, alias or id (NCBI, HGNC, Ensembl); "
                    "several separated by commas")
        how, example = "Symbol, alias or id", "e.g. PDE6B, RHO, 6010"
    else:
        st.markdown(f"**Find any {noun}** by id; several separated by commas")
        how, example = f"{noun.capitalize()} id", "e.g. 42, 1337"
    q1, q2, q3 = st.columns([3, 1, 1])
    # keyed by phase: a refinement starts with an empty search box
    query = q1.text_input(how, key=f"fb_gene_query_{item.id}_{state.phase}",
                          label_visibility="collapsed", placeholder=example)
    add_yes = q2.button("Add as confirmed", key="fb_gene_confirm", disabled=not query.strip())
    add_no = q3.button("Add as rejected", key="fb_gene_reject", disabled=not query.strip())
    if add_yes or add_no:
        for part in [p.strip() for p in query.split(",") if p.strip()]:
            try:
                rec = lookup.resolve_gene(ws, part)
            except (LookupError, ValueError) as exc:
                st.error(md(str(exc.args[0]) if exc.args else str(exc)))
                continue
            extra[rec.gene_id] = 1 if add_yes else 0
    if extra:
        rank_of = dict(zip(state.prediction.targets[TARGET_ID].astype(str),
                           state.prediction.targets["rank"].astype(int), strict=True))
        st.text("Found by search: " + "; ".join(
            f"{named(t)} {'confirmed' if y else 'rejected'} (rank {rank_of.get(t, '?')})"
            for t, y in extra.items()))
        if st.button("Clear the searched decisions", key="fb_gene_clear"):
            st.session_state[EXTRA] = {}
            st.rerun()

decisions: dict[str, int] = dict(extra)
for i, row in zip(ids, edited.itertuples(), strict=True):
    if row.reject:
        decisions[i] = 0
    if row.confirm:
        decisions[i] = 1
decisions.update({t: 0 for t in pick_no})
decisions.update({t: 1 for t in pick_yes})
both = set(pick_yes) & set(pick_no)
st.caption(f"{sum(decisions.values())} confirmed, {len(decisions) - sum(decisions.values())} "
           f"rejected, to be recorded with the refinement.")
if not decisions and not last:
    st.caption(f"Confirm or reject at least one {noun} to refine.")
if st.button(f"Refine → Phase {next_label}", type="primary", disabled=last or not decisions,
             key="refine_btn"):
    if both:
        st.error(f"Decide each {noun} once: {md(', '.join(named(t) for t in sorted(both)))} "
                 "is both confirmed and rejected.")
    else:
        refine(list(decisions.items()), "analyst")
if last:
    st.info(f"The item is in Phase {PHASES[-1]}, the last phase.")

# ---- upload -------------------------------------------------------------------------------------
with st.expander("Upload observed interactions (CSV: target_id,label[,note])"):
    n_up = int(st.session_state.get(UPLOADS, 0))
    st.caption(f"The {noun} column may hold ids" + (", symbols or aliases (header target_id, "
               "gene or symbol)." if ws.domain == "disease" else "."))
    up = st.file_uploader("Interactions CSV", type=["csv", "tsv", "txt"],
                          key="fb_upload" if n_up == 0 else f"fb_upload_{n_up}")
    digest = hashlib.sha256(up.getvalue()).hexdigest() if up is not None else ""
    if up is not None and digest == st.session_state.get(APPLIED):
        st.info("This file was already applied; upload a new one to refine again.")
        up = None
    if up is not None:
        result = parse_interactions_csv(up.getvalue(), ws.target_pos.index,
                                        resolve=lambda q: lookup.resolve_gene(ws, q).gene_id)
        if result.errors:
            st.error("The file was not used:\n\n" + "\n".join(f"- {md(e)}" for e in result.errors))
        else:
            ups = pd.DataFrame(result.decisions, columns=[TARGET_ID, "label", "note"])
            st.dataframe(ups, hide_index=True)
            if st.button(f"Refine with the upload → Phase {next_label}", disabled=last,
                         key="refine_upload"):
                notes = {t: n for t, _, n in result.decisions if n}
                st.session_state[APPLIED] = digest
                refine([(t, y) for t, y, _ in result.decisions], "upload", notes)

# ---- phase history ------------------------------------------------------------------------------
st.divider()
st.subheader("Phase history")
hist = history.rank_history(db, ws, item.id)
drift = history.drift(db, item.id)
if hist.empty:
    st.caption(f"No confirmed {noun}s yet: confirm some and refine to see their ranks move.")
else:
    rank_chart, score_chart, shown = history.rank_charts(hist, noun)
    n_conf = hist[TARGET_ID].nunique()
    st.caption(f"Ranks as the table showed them at each phase (a confirmed {noun} is listed "
               "first from the phase it was confirmed in); scores are the model's own."
               + (f" The {shown} best-ranked of {n_conf} confirmed {noun}s are drawn."
                  if shown < n_conf else ""))
    st.altair_chart(rank_chart, key="fb_rank_chart")
    st.altair_chart(score_chart, key="fb_score_chart")
if len(drift) > 1:
    long = drift.melt(id_vars=["phase_label"], value_vars=["cosine_to_phase0", "l2_to_phase0"],
                      var_name="measure", value_name="value")
    st.altair_chart(alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("phase_label:O", title="phase", sort=list(PHASES),
                axis=alt.Axis(labelAngle=0)), y="value:Q",
        color="measure:N", tooltip=["phase_label", "measure", alt.Tooltip("value:Q",
                                                                          format=".4f")],
    ).properties(title="How far the embedding travelled from Phase 0", height=220))
    st.dataframe(drift.round(4), hide_index=True)

phases = sorted(history.phase_embeddings(db, item.id))
if phases:
    c1, c2 = st.columns([1, 3])
    if st.session_state.get("fb_reopen_for") != (item.id, state.phase):
        # a new phase (or item): reopen defaults to the current phase again
        st.session_state["fb_reopen_for"] = (item.id, state.phase)
        st.session_state["fb_reopen_phase"] = state.phase if state.phase in phases else phases[-1]
    chosen = c1.selectbox("Reopen the ranking of phase", phases,
                          format_func=flows.phase_label, key="fb_reopen_phase")
    past = history.ranking_at_phase(db, ws, item.id, chosen)
    past_state = flows.ItemState(item=item, phase=chosen, feature_version=state.feature_version,
                                 prediction=past, decisions=state.decisions)
    past_table = preds.ranked_targets(ws, past_state, top_n=20)
    c2.dataframe(past_table.drop(columns=[c for c in ("NCBI Gene", "HGNC")
                                          if c in past_table.columns]),
                 hide_index=True, width="stretch", height=300,
                 column_config={"score": st.column_config.NumberColumn(format="%.4f")})
with st.expander("Decision history"):
    st.dataframe(history.decision_log(db, item.id), hide_index=True, width="stretch")
