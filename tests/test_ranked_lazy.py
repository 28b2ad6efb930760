"""The ranked table is gathered only where it is read: ``Prediction.targets`` (built on first
read), ``Prediction.top`` and :func:`engine.evidence.ranked_table` (the shown rows only) give
exactly what the complete table gave before."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine import evidence as ev
from engine.schema import TARGET_ID
from engine.workspace import Prediction


def _full_table(ws, scores: np.ndarray, lift) -> pd.DataFrame:
    """The complete ranked table as ``Workspace.rank`` built it before (reference)."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    n = len(order)
    out = ws.dataset.targets.take(order)
    out.index = pd.RangeIndex(n)
    if lift is not None:
        out.insert(0, "lift", np.asarray(lift, np.float64)[order])
    out.insert(0, "percentile", 100.0 * (n - np.arange(1, n + 1)) / max(n - 1, 1))
    out.insert(0, "score", np.asarray(scores)[order])
    out.insert(0, "rank", np.arange(1, n + 1))
    return out


def _as_table(pred: Prediction) -> Prediction:
    """The same prediction holding its complete table (the path before this change)."""
    return Prediction(pred.text, pred.embedding, pred.ranked.table(), pred.neighbours,
                      pred.model_rank)


@pytest.mark.parametrize("name", ["diseases", "movies"])
def test_lazy_prediction_equals_the_complete_table(name, request):
    ws = request.getfixturevalue(name)
    item = ws.dataset.items.iloc[0].to_dict()
    pred = ws.predict(item)
    assert not pred.materialized
    top = pred.top(25)
    assert not pred.materialized  # only 25 rows gathered
    full = pred.targets
    assert pred.materialized and len(full) == len(ws.dataset.targets)
    pd.testing.assert_frame_equal(top, full.head(25))
    # the complete table equals the one the old rank() built from the same scores
    raw = np.empty(len(full))
    raw[ws.target_rows(full[TARGET_ID].astype(str).tolist())] = full["score"].to_numpy()
    lift = None
    if "lift" in full.columns:
        lift = np.empty(len(full))
        lift[ws.target_rows(full[TARGET_ID].astype(str).tolist())] = full["lift"].to_numpy()
    pd.testing.assert_frame_equal(full, _full_table(ws, raw, lift))


@pytest.mark.parametrize("name", ["diseases", "movies"])
def test_ranked_table_from_the_shown_rows_equals_the_full_table_path(name, request):
    ws = request.getfixturevalue(name)
    items = ws.dataset.items.head(3).to_dict("records")
    t = ws.dataset.targets
    active = list(t[TARGET_ID].astype(str).iloc[::3])
    classes = []
    if "protein_class" in t.columns:
        vals = t["protein_class"].dropna().astype(str)
        classes = sorted({p.strip() for v in vals for p in v.split("|") if p.strip()})[:2]
    for item in items:
        pred = ws.predict(item)
        ids = pred.top(10)[TARGET_ID].astype(str).tolist()
        decisions = {ids[0]: 1, ids[3]: 0}
        pred = ws.predict(item, decisions=decisions)
        mid = float(np.median(pred.top(len(t))["score"]))
        for kwargs in ({}, {"top_n": 7}, {"min_score": mid}, {"classes": classes},
                       {"active": active}, {"active": active, "min_score": mid, "top_n": 300},
                       {"active": [], "classes": classes, "top_n": 5}):
            lazy = ev.ranked_table(ws, pred, decisions, **kwargs)
            assert not pred.materialized
            ref = ev.ranked_table(ws, _as_table(pred), decisions, **kwargs)
            pd.testing.assert_frame_equal(lazy, ref)
