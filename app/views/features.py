"""Features page: LLM augmentation (suggest per domain, fill per item) and the analyst's review."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import features as feats
from app import flows
from app.llm import settings_summary
from app.safe_text import md
from app.state import (
    AugmentationError,
    analyst_name,
    current_llm_settings,
    get_cache,
    get_provider,
    header,
    page_link,
    require_item,
)
from engine.schema import DISEASE

ws, db, item = require_item("Features")
header(ws, item, flows.current_phase(db, item.id))

# ---- LLM augmentation ---------------------------------------------------------------------------
st.subheader("LLM augmentation")
try:
    settings = current_llm_settings()
    summary = settings_summary(settings)
    st.caption(md(" · ".join(f"{k}: {v}" for k, v in summary.items())) + " (change on Settings)")
except ValueError as exc:
    settings = None
    st.error(md(f"The LLM settings are invalid: {exc}"))

stored = feats.load_suggested(db, ws.domain)
with st.expander(f"Feature list for {ws.domain}s ({len(stored)} stored; suggested once, "
                 "editable)", expanded=not stored):
    sugg_df = pd.DataFrame(stored, columns=["name", "descriptor", "why"])
    edited_sugg = st.data_editor(sugg_df, num_rows="dynamic", hide_index=True, width="stretch",
                                 key=f"sugg_{ws.domain}_{len(stored)}")
    c1, c2 = st.columns(2)
    if c1.button("Save feature list", key="save_sugg"):
        try:
            feats.save_suggested(db, ws.domain, edited_sugg.to_dict("records"),
                                 updated_by=analyst_name())
            st.rerun()
        except ValueError as exc:
            st.error(md(str(exc)))
    if c2.button("Suggest features with the LLM", key="suggest_btn",
                 disabled=settings is None or settings.provider == "none"):
        with st.spinner("Asking the LLM for features…"):
            try:
                got = feats.suggest_for_domain(db, get_provider(), ws, get_cache(),
                                               analyst=analyst_name())
                st.success(f"{len(got)} features stored for {ws.domain}s.")
                st.rerun()
            except (AugmentationError, ValueError) as exc:
                st.error(md(f"Feature suggestion failed: {exc}"))

if settings is not None and settings.provider == "none":
    st.info("Provider **none**: no LLM is used. Add features by hand below (or in the table).")
elif st.button("Fill feature values with the LLM", type="primary", key="fill_btn",
               disabled=not stored):
    with st.status("Augmenting features…", expanded=True) as status:
        bar = st.progress(0.0)
        line = st.empty()

        def progress(frac: float, message: str) -> None:
            bar.progress(frac)
            line.write(message)

        try:
            fv = feats.augment_item(db, ws, item.id, get_provider(), stored, get_cache(),
                                    analyst=analyst_name(), progress=progress)
            status.update(label=f"Saved feature version {fv.version}", state="complete",
                          expanded=False)
        except (AugmentationError, ValueError) as exc:
            status.update(label="Augmentation failed", state="error")
            st.error(md(f"Augmentation failed: {exc}"))

# ---- curated knowledge (kept apart from LLM and analyst values) --------------------------------
if ws.domain == DISEASE:
    st.subheader("Curated knowledge")
    current = feats.current_features(db, item.id)
    counts = feats.source_groups(current)
    st.caption("Values from curated files (DisGeNET disease mappings, HPO annotations), each "
               "tagged with its file and version · features by origin: "
               + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if st.button("Fill curated values", key="fill_curated_btn",
                 help="Synonyms, UMLS/OMIM/Orphanet/MeSH/DO ids and HPO phenotypes from the "
                      "files under EMERFLOW_DATA; an LLM fills the rest when the provider is "
                      "'knowledge' with a server configured."):
        try:
            prov = get_provider() if settings is not None and \
                settings.provider == "knowledge" else None
            new_fv = feats.fill_curated(db, ws, item.id, stored, provider=prov,
                                        cache=get_cache(), analyst=analyst_name())
            st.success(f"Saved feature version {new_fv.version} with curated values.")
            current = feats.current_features(db, item.id)
        except (AugmentationError, ValueError) as exc:
            st.error(md(str(exc)))
    cur = feats.curated_frame(current)
    if cur.empty:
        st.info("No curated values yet for this item.")
    else:
        st.dataframe(cur, hide_index=True, width="stretch", key="curated_table")

# ---- review -------------------------------------------------------------------------------------
fv = flows.latest_feature_version(db, item.id)
version = fv.version if fv else 0
st.subheader(f"Review (feature version {version})")
st.caption("Edit descriptor or value, untick **keep** to leave a feature out, add rows for new "
           "features. Edited values become *analyst* features; the LLM's original stays visible.")
table = feats.review_frame(fv.features if fv else [])
edited = st.data_editor(
    table, num_rows="dynamic", hide_index=True, width="stretch",
    key=f"review_{item.id}_{version}",
    disabled=["name", "source", "llm original"],
    column_config={
        "value": st.column_config.TextColumn("value", width="large"),
        "keep": st.column_config.CheckboxColumn("keep", default=True),
    },
)
if st.button("Save as new feature version", type="primary", key="save_review"):
    try:
        new = feats.save_review(db, ws, item.id, edited, analyst=analyst_name())
        if new is None:
            st.info("Nothing changed.")
        else:
            st.success(f"Saved feature version {new.version}.")
            st.rerun()
    except ValueError as exc:
        st.error(md(str(exc)))

with st.form("set_feature_form"):
    st.markdown("**Add or change one feature**")
    c1, c2 = st.columns([1, 2])
    names = {r.name: r.descriptor for r in table.itertuples()}
    descriptor = c1.text_input("Descriptor", key="sf_descriptor",
                               help="An existing descriptor or name changes that feature.")
    value = c2.text_input("Value", key="sf_value")
    if st.form_submit_button("Save feature"):
        key = next((n for n, d in names.items()
                    if descriptor.strip() and descriptor.strip().lower() in (n, d.lower())), None)
        try:
            new = feats.set_feature(db, ws, item.id, descriptor=descriptor, value=value,
                                    analyst=analyst_name(), name=key)
            st.success("Nothing changed." if new is None
                       else f"Saved feature version {new.version}.")
        except ValueError as exc:
            st.error(md(str(exc)))

phase = flows.current_phase(db, item.id)
if phase > 0:
    st.info("The item is past Phase 0: its embedding comes from refinement, so feature edits "
            "change the text below and the backbone inputs, not the refined embedding.")
st.markdown("**Serialized text** (exactly what the text encoder sees)")
try:
    st.code(feats.serialized_text(db, ws, item.id) or "(no feature values yet)", language=None,
            wrap_lines=True)
except ValueError as exc:
    st.error(md(str(exc)))
with st.expander("Feature versions"):
    st.dataframe(feats.version_history(db, item.id), hide_index=True, width="stretch")
page_link("predictions", "Next: see the predictions", icon=":material/target:")
