"""New item page: a form per domain, duplicate detection, and the list of items to reopen."""

from __future__ import annotations

import streamlit as st

from app import flows, items, lookup
from app.safe_text import md
from app.state import (
    ITEM_KEY,
    analyst_name,
    current_workspace,
    get_db,
    header,
    page_link,
    read_only_reason,
)
from engine.schema import DISEASE

PENDING = "pending_new_item"  #: validated input waiting for a duplicate decision
RESOLVED = "nd_resolved"  #: the DiseaseResolution the form was pre-filled from
COPY_NAME = "dup_copy_name"  #: the name proposed for a copy of a duplicate
NOTE_HITS = "nd_note_hits"  #: HPO terms found in the pasted description (label, why)

st.title("New item")
ws = current_workspace()
if ws is None:
    st.stop()
db = get_db()
header(ws)
if read_only_reason() is None:  # browsing a read-only or full database records nothing
    flows.ensure_workspace(db, ws)


def _open(item_id: int, message: str) -> None:
    st.session_state[ITEM_KEY] = int(item_id)
    st.session_state.pop(PENDING, None)
    st.session_state.pop(COPY_NAME, None)  # the next duplicate prompt proposes its own name
    st.success(message)


def _create(data: items.NewItemInput, allow_duplicate: bool = False) -> None:
    if (reason := read_only_reason()) is not None:
        st.error(md(reason))
        return
    try:
        item = items.create(db, ws, data, analyst=analyst_name(),
                            allow_duplicate=allow_duplicate)
    except flows.DuplicateItemError as exc:
        st.session_state[PENDING] = (data, [d.id for d in exc.duplicates])
        return
    except ValueError as exc:
        st.error(md(str(exc)))
        return
    st.session_state.pop(RESOLVED, None)
    _open(item.id, f"Created {md(item.name)} (#{item.id}). Review its features next.")


def _prefill(res: lookup.DiseaseResolution) -> None:
    """Fill the disease form from a resolved concept (all fields stay editable)."""
    st.session_state[RESOLVED] = res
    st.session_state["nd_name"] = res.record.name
    st.session_state["nd_cui"] = res.record.cui
    st.session_state["nd_syn"] = res.synonyms_text
    st.session_state["nd_pheno"] = res.phenotype_labels
    for key, feature in (("nd_type", "disease_type"), ("nd_semantic", "semantic_type")):
        value = res.known.get(feature, "")
        if value in items.domain_vocab(ws, feature):
            st.session_state[key] = value
    mesh = [c for c in res.known.get("disease_class", "").split("|") if c]
    if mesh:
        st.session_state["nd_mesh"] = mesh


# ---- disease lookup ----------------------------------------------------------------------------
if ws.domain == DISEASE:
    kn = lookup.knowledge()
    if kn.diseases is None:
        st.caption("Disease lookup and HPO phenotypes need EMERFLOW_DATA pointing at a folder "
                   "with disgenet/disease_mappings.tsv and hpo/.")
    else:
        st.subheader("Find a disease")
        query = st.text_input("Name, synonym or id (UMLS CUI, OMIM:, ORPHA:, MeSH, DOID:)",
                              key="nd_lookup", placeholder="e.g. Marfan syndrome or OMIM:154700")
        matches = lookup.disease_suggestions(query) if query.strip() else []
        pick = None
        if matches:
            pick = st.selectbox(f"Matches ({len(matches)})", matches, index=None,
                                key="nd_lookup_pick",
                                placeholder="pick a match, or resolve what you typed")
        if st.button("Resolve and fill the form", key="nd_resolve",
                     disabled=not (query.strip() or pick)):
            try:
                _prefill(lookup.resolve_disease(pick or query, ws))
            except (ValueError, LookupError) as exc:
                st.error(md(str(exc)))
        res = st.session_state.get(RESOLVED)
        if isinstance(res, lookup.DiseaseResolution):
            st.text(f"Resolved: {res.record.label} · {len(res.record.synonyms)} synonym(s) · "
                    f"{len(res.phenotypes)} HPO phenotype(s)")
            others = [c.label for c in res.candidates[1:]]
            if others:
                st.text("The id also maps to: " + "; ".join(others[:6])
                        + " (type its CUI to use it instead)")
            st.dataframe(res.links_frame(), hide_index=True, width="stretch",
                         column_config={"link": st.column_config.LinkColumn("link")})

# ---- phenotypes from a clinical description -----------------------------------------------------
if ws.domain == DISEASE and lookup.knowledge().hpo is not None:
    with st.expander("Phenotypes from a clinical description"):
        note = st.text_area("Paste a clinical description", key="nd_note", height=110,
                            placeholder="e.g. Tall stature, arachnodactyly and ectopia lentis; "
                                        "no hearing loss.")
        if st.button("Find HPO terms", key="nd_note_find", disabled=not note.strip()):
            st.session_state[NOTE_HITS] = lookup.phenotypes_from_text(note)
        hits = st.session_state.get(NOTE_HITS)
        if hits is not None:
            if not hits:
                st.info("No HPO term name found in the text; add terms in the form below.")
            else:
                why = dict(hits)
                keep = st.multiselect("Found in the text: keep or drop each", list(why),
                                      default=list(why), key="nd_note_keep",
                                      format_func=lambda x: f"{x} — {why.get(x, '')}")
                if st.button("Add to the phenotypes", key="nd_note_add", disabled=not keep):
                    current = list(st.session_state.get("nd_pheno", []))
                    st.session_state["nd_pheno"] = current + [k for k in keep
                                                              if k not in current]
                    st.session_state.pop(NOTE_HITS, None)
                    st.rerun()

# ---- the form ----------------------------------------------------------------------------------
with st.form("new_item_form"):
    if ws.domain == DISEASE:
        st.subheader("New disease")
        c1, c2 = st.columns([3, 1])
        name = c1.text_input("Disease name (required)", key="nd_name")
        cui = c2.text_input("UMLS CUI (optional)", key="nd_cui", placeholder="C0000000")
        c3, c4 = st.columns(2)
        dtype = c3.selectbox("Disease type", ["", *items.domain_vocab(ws, "disease_type")],
                             key="nd_type")
        sem = c4.selectbox("Semantic type", ["", *items.domain_vocab(ws, "semantic_type")],
                           key="nd_semantic")
        mesh = st.multiselect("MeSH disease classes", items.domain_vocab(ws, "disease_class"),
                              key="nd_mesh", accept_new_options=True,
                              format_func=items.mesh_label)
        desc = st.text_area("Description", key="nd_desc", height=90,
                            placeholder="What is known: mechanism, organ system, phenotype…")
        syn = st.text_input("Synonyms (comma separated)", key="nd_syn")
        base = lookup.hpo_options()
        chosen = [v for v in st.session_state.get("nd_pheno", []) if v not in set(base)]
        pheno = st.multiselect("Phenotypes (HPO terms: type a name or an HP id)",
                               [*chosen, *base], key="nd_pheno", accept_new_options=True,
                               help="Pre-filled from the HPO annotations of a resolved disease; "
                                    "add or remove terms freely.")
    else:
        st.subheader("New movie")
        c1, c2 = st.columns([3, 1])
        name = c1.text_input("Title (required)", key="nm_title")
        year = c2.number_input("Year", min_value=items.MIN_YEAR, max_value=items.MAX_YEAR,
                               value=None, step=1, key="nm_year")
        genres = st.multiselect("Genres", items.domain_vocab(ws, "genres"), key="nm_genres")
        desc = st.text_area("Description", key="nm_desc", height=90,
                            placeholder="Plot, tone, audience…")
    submitted = st.form_submit_button("Create item", type="primary")

if submitted:
    try:
        if ws.domain == DISEASE:
            res = st.session_state.get(RESOLVED)
            data = items.disease_input(name=name, cui=cui, disease_type=dtype, mesh_classes=mesh,
                                       semantic_type=sem, description=desc, synonyms=syn,
                                       analyst=analyst_name(), phenotypes=pheno,
                                       resolution=res if isinstance(
                                           res, lookup.DiseaseResolution) else None)
        else:
            data = items.movie_input(title=name, year=year, genres=genres, description=desc)
    except ValueError as exc:
        st.error(md(str(exc)))
    else:
        _create(data)

# ---- duplicates: offer the existing item instead of a copy -------------------------------------
pending = st.session_state.get(PENDING)
if pending:
    data, dup_ids = pending
    st.warning(f"“{md(data.name)}” looks like an item that already exists in {ws.name}. "
               "Open the existing one instead of creating a copy?")
    for dup_id in dup_ids[:3]:
        try:
            dup = flows.get_item(db, dup_id)
        except ValueError:
            continue
        if st.button(f"Open existing: {md(dup.name)} (#{dup.id})", key=f"open_dup_{dup.id}",
                     type="primary"):
            _open(dup.id, f"Opened {md(dup.name)} (#{dup.id}).")
            st.rerun()
    # item names are unique per workspace: a copy needs a name of its own
    copy_as = st.text_input("Or create a copy named", value=items.copy_name(db, ws.name,
                                                                             data.name),
                            key=COPY_NAME)
    c1, c2 = st.columns(2)
    if c1.button("Create the copy", key="dup_anyway"):
        try:
            copy = items.create_copy(db, ws, data, copy_as, analyst=analyst_name())
        except ValueError as exc:
            st.error(md(str(exc)))
        else:
            st.session_state.pop(RESOLVED, None)
            _open(copy.id, f"Created {md(copy.name)} (#{copy.id}). Review its features next.")
            st.rerun()
    if c2.button("Cancel", key="dup_cancel"):
        st.session_state.pop(PENDING, None)
        st.session_state.pop(COPY_NAME, None)
        st.rerun()

if st.session_state.get(ITEM_KEY) and not pending:
    page_link("features", "Next: review the features", icon=":material/tune:")

# ---- existing items ----------------------------------------------------------------------------
st.divider()
st.subheader("Reopen an item")
table = items.items_table(db, ws.name)
if table.empty:
    st.caption("No items in this workspace yet.")
else:
    st.dataframe(table, hide_index=True, width="stretch")
    labels = {int(r.id): f"#{r.id} {r.name} (Phase {r.phase})" for r in table.itertuples()}
    ids = list(labels)
    cur = st.session_state.get(ITEM_KEY)
    pick = st.selectbox("Item", ids, index=ids.index(cur) if cur in ids else 0,
                        format_func=labels.get, key="reopen_choice")
    if st.button("Open item", key="reopen_btn"):
        _open(pick, f"Opened {md(labels[pick])}.")
