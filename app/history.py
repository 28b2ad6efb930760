"""Phase history of an item: stored embeddings rescored, rank movement of confirmed targets,
embedding drift from Phase 0, and any past phase's ranking reopened. No streamlit here.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from app import flows
from engine.schema import NAME, PHASES, TARGET_ID
from engine.workspace import Prediction, Workspace, pinned, ranks_of


def phase_embeddings(db: Engine, item_id: int) -> dict[int, np.ndarray]:
    """Stored embedding of every phase the item went through."""
    return flows.phase_embeddings(db, item_id)


def ranking_at_phase(db: Engine, ws: Workspace, item_id: int, phase: int) -> Prediction:
    """The full ranking scored with ``phase``'s stored embedding (a past phase reopened).

    Raises:
        ValueError: the item never reached that phase.
    """
    embs = phase_embeddings(db, item_id)
    if phase not in embs:
        raise ValueError(f"The item has no Phase {PHASES[phase]} embedding yet.")
    raw, aug, desc = flows.item_inputs(db, ws, item_id)
    return ws.predict(raw, augmented=aug, descriptors=desc, embedding=embs[phase],
                      decisions=decisions_up_to(db, item_id, phase))


def decisions_up_to(db: Engine, item_id: int, phase: int) -> dict[str, int]:
    """``{target_id: label}`` of the decisions that produced ``phase`` (made in phases <= it)."""
    return {i.target_id: i.label for i in flows.interactions(db, item_id) if i.phase <= phase}


def rank_history(db: Engine, ws: Workspace, item_id: int,
                 target_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Rank and score of targets at every stored phase (default: the confirmed targets).

    ``rank`` is the rank the Predictions and Feedback tables showed at that phase (decisions
    made so far pinned: a confirmed target is listed first from the phase it was confirmed
    in); ``score`` is the model's own score (decisions propagate, none pinned).

    Columns: phase (0..3), phase_label, target_id, name, rank, score, decided_in.
    """
    inter = flows.interactions(db, item_id)
    if target_ids is None:
        target_ids = list(dict.fromkeys(i.target_id for i in inter if i.label == 1))
    decided = {i.target_id: PHASES[i.phase] for i in inter}
    cols = ["phase", "phase_label", TARGET_ID, NAME, "rank", "score", "decided_in"]
    if not target_ids:
        return pd.DataFrame(columns=cols)
    raw, aug, desc = flows.item_inputs(db, ws, item_id)
    ids = [str(t) for t in target_ids if str(t) in ws.target_pos.index]
    pos = ws.target_pos.loc[ids].to_numpy()
    names = ws.dataset.targets[NAME].astype(str).to_numpy()[pos]
    rows = []
    for phase, emb in sorted(phase_embeddings(db, item_id).items()):
        # one catalog scoring per phase: the model's own scores, and the ranks the tables
        # showed (decisions so far pinned) from the same scores
        scores, dec = ws.scores(raw, augmented=aug, descriptors=desc, embedding=emb,
                                decisions=decisions_up_to(db, item_id, phase))
        ranks = ranks_of(pinned(scores, dec))
        for t, p, n in zip(ids, pos, names, strict=True):
            rows.append({"phase": phase, "phase_label": PHASES[phase], TARGET_ID: t, NAME: n,
                         "rank": int(ranks[p]), "score": float(scores[p]),
                         "decided_in": decided.get(t, "")})
    return pd.DataFrame(rows, columns=cols)


#: Targets drawn in the phase-history charts at most (one distinct colour each).
MAX_CHART_TARGETS = 20


#: Fit the container's width only: Streamlit's default for a stretched chart ("fit") fits the
#: legend into the chart's height too, squashing the plot under a bottom legend and cutting a
#: right legend taller than the plot; with "fit-x" the chart grows to hold its whole legend.
FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")


def rank_charts(hist: pd.DataFrame, noun: str, max_targets: int = MAX_CHART_TARGETS
                ) -> tuple[alt.Chart, alt.Chart, int]:
    """(rank chart, score chart, targets drawn) of :func:`rank_history`: one distinct colour
    per target (up to ``max_targets``, the best-ranked at the last phase), every target named
    in a legend under the charts (never cut).

    Raises:
        ValueError: ``max_targets`` outside 1..20 (the palette's distinct colours).
    """
    if not 1 <= max_targets <= MAX_CHART_TARGETS:
        raise ValueError(f"max_targets must be 1..{MAX_CHART_TARGETS}, got {max_targets}")
    data = hist.copy()
    data["target"] = data[NAME].astype(str) + " (" + data[TARGET_ID].astype(str) + ")"
    last = data[data["phase"] == data["phase"].max()].sort_values("rank")
    keep = list(dict.fromkeys(last["target"]))[:max_targets]
    data = data[data["target"].isin(keep)]
    legend = alt.Legend(orient="bottom", columns=min(4, max(1, len(keep))), symbolLimit=0,
                        labelLimit=0, title=noun)
    color = alt.Color("target:N", sort=keep, legend=legend,
                      scale=alt.Scale(scheme="category20", domain=keep))
    base = alt.Chart(data).encode(
        x=alt.X("phase_label:O", title="phase", sort=list(PHASES), axis=alt.Axis(labelAngle=0)),
        color=color,
        tooltip=["target", "phase_label", "rank", alt.Tooltip("score:Q", format=".4f"),
                 "decided_in"])
    ranks = base.mark_line(point=True).encode(
        y=alt.Y("rank:Q", scale=alt.Scale(reverse=True, type="log"),
                title="rank shown in the table (log)")
    ).properties(title=f"Ranks of confirmed {noun}s", height=280, autosize=FIT_WIDTH)
    scores = base.mark_line(point=True).encode(y=alt.Y("score:Q", title="model score")
                                               ).properties(title="Scores", height=280,
                                                            autosize=FIT_WIDTH)
    return ranks, scores, len(keep)


def drift(db: Engine, item_id: int) -> pd.DataFrame:
    """How far the embedding travelled: cosine similarity and L2 distance to Phase 0 and to
    the previous phase, per phase."""
    embs = phase_embeddings(db, item_id)
    cols = ["phase", "phase_label", "cosine_to_phase0", "l2_to_phase0", "l2_step", "norm"]
    if 0 not in embs:
        return pd.DataFrame(columns=cols)
    base = embs[0]
    rows, prev = [], base
    for phase, emb in sorted(embs.items()):
        cos = float(emb @ base / (np.linalg.norm(emb) * np.linalg.norm(base) + 1e-12))
        rows.append({"phase": phase, "phase_label": PHASES[phase], "cosine_to_phase0": cos,
                     "l2_to_phase0": float(np.linalg.norm(emb - base)),
                     "l2_step": float(np.linalg.norm(emb - prev)),
                     "norm": float(np.linalg.norm(emb))})
        prev = emb
    return pd.DataFrame(rows, columns=cols)


def snapshot_table(db: Engine, item_id: int) -> pd.DataFrame:
    """The stored top-k snapshots (audit): phase, rank, target_id, score."""
    rows = [{"phase": PHASES[s.phase], "rank": e["rank"], TARGET_ID: e["target_id"],
             "score": e["score"]} for s in flows.snapshots(db, item_id) for e in s.topk]
    return pd.DataFrame(rows, columns=["phase", "rank", TARGET_ID, "score"])


def decision_log(db: Engine, item_id: int) -> pd.DataFrame:
    rows = [{"target_id": e.target_id, "label": "confirmed" if e.label else "rejected",
             "phase": PHASES[e.phase], "revision": e.revision, "source": e.source,
             "analyst": e.analyst or "", "note": e.note or "",
             "at": e.created_at.strftime("%Y-%m-%d %H:%M:%S")}
            for e in flows.interaction_history(db, item_id)]
    return pd.DataFrame(rows, columns=["target_id", "label", "phase", "revision", "source",
                                       "analyst", "note", "at"])
