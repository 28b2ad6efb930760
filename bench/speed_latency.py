"""Speed bench sections an analyst waits on (:mod:`bench.speed`): workspace builds, predict
with evidence, one Feedback submit end to end."""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.speed_common import (
    N_DECISIONS,
    TOP_N,
    _la,
    build_one,
    loadavg,
    log,
    new_item_features,
    raw_features,
    stats_ms,
    timed,
    uncache,
)


# ---- build -------------------------------------------------------------------------------------
def bench_build(datasets: Sequence[str], kinds: Sequence[str], home: Path,
                data_root: Path | None, encoder, quick: bool) -> dict:
    out: dict = {}
    for name in datasets:
        out[name] = {}
        for kind in kinds:
            log(f"build {name} ({kind}) from scratch")
            la = loadavg()
            gc.collect()
            _, res = build_one(name, kind, home, data_root, encoder, quick)
            out[name][kind] = _la(res, la)
            log(f"built {name} ({kind}) in {res['total_s']:.1f}s: {res['stages_s']}")
    return out


# ---- predict -----------------------------------------------------------------------------------
class EvidenceContext:
    """What the Predictions page builds once per workspace (engine.batch's context): the gene
    resolver, the association index, the HPO annotations, the rated users (movies)."""

    def __init__(self, ws, data_root: Path | None):
        from engine.batch import BatchContext
        from engine.knowledge import Knowledge, sources_from_env

        self.ctx = BatchContext(ws, Knowledge.load(sources_from_env(data_root)))

    def table(self, ws, pred, decisions: dict[str, int]):
        from engine import evidence as ev

        c = self.ctx
        t = ev.ranked_table(ws, pred, decisions, top_n=TOP_N, genes=c.genes, active=c.active)
        t0 = time.perf_counter()
        t = ev.with_evidence(ws, pred, decisions, t, index=c.index, hpo_annotations=c.hpo,
                             genes=c.genes)
        return t, time.perf_counter() - t0


def bench_predict(ws, reps: int, data_root: Path | None, warmup: int = 3) -> dict:
    feats = new_item_features(ws)
    n_items = len(feats)
    la = loadavg()
    t0 = time.perf_counter()
    evc = EvidenceContext(ws, data_root)
    res: dict = {"n_targets": len(ws.dataset.targets), "n_indexed_items": len(ws.index.ids),
                 "n_new_items": n_items, "top_n": TOP_N, "ranker": ws.ranker_kind,
                 "context_build_s": round(time.perf_counter() - t0, 3)}
    for i in range(warmup):
        evc.table(ws, ws.predict(feats[i % n_items][1]), {})
    cold, cached, cold_cpu = [], [], []
    stage_names = ("serialize", "encode", "align", "score", "rank", "neighbours", "table",
                   "evidence")
    stages: dict[str, list[float]] = {k: [] for k in stage_names}
    for i in range(reps):
        f = feats[i % n_items][1]
        uncache(ws, ws.serialize(f))  # cold text: the encoder really runs
        c0 = time.process_time()
        t0 = time.perf_counter()
        pred = ws.predict(f)
        table, _ = evc.table(ws, pred, {})
        cold.append(time.perf_counter() - t0)
        cold_cpu.append(time.process_time() - c0)
        assert len(pred.targets) == len(ws.dataset.targets) and len(table) > 0
    for i in range(reps):
        f = feats[i % n_items][1]
        t0 = time.perf_counter()
        pred = ws.predict(f)
        evc.table(ws, pred, {})
        cached.append(time.perf_counter() - t0)
    for i in range(reps):  # the calls Workspace.predict makes, one by one (cold text)
        from engine.ranking.base import Decisions

        f = feats[i % n_items][1]
        dt, text = timed(ws.serialize, f)
        stages["serialize"].append(dt)
        uncache(ws, text)
        dt, vec = timed(ws.encoder.encode, [text])
        stages["encode"].append(dt)
        dt, emb = timed(ws.ranker.align, vec)
        stages["align"].append(dt)
        dt, scored = timed(ws.ranker.score, vec[0], emb[0], Decisions(),
                           ws.item_categories(f))
        stages["score"].append(dt)
        dt, _ = timed(ws.ranked, np.asarray(scored.scores, np.float64), scored.lift)
        stages["rank"].append(dt)
        dt, _ = timed(ws.neighbours, emb[0], 5)
        stages["neighbours"].append(dt)
        pred = ws.predict(f)
        t0 = time.perf_counter()
        _, dt_ev = evc.table(ws, pred, {})
        stages["table"].append(time.perf_counter() - t0 - dt_ev)
        stages["evidence"].append(dt_ev)
    res.update({"cold_text": stats_ms(cold), "cached_text": stats_ms(cached),
                "cold_text_cpu": stats_ms(cold_cpu),
                "stages_cold": {k: stats_ms(v) for k, v in stages.items()}})
    return _la(res, la)


# ---- feedback ----------------------------------------------------------------------------------
class ScoreCounter:
    """Counts, while active, the ranker's ``score`` calls and its catalog scorings: the full-
    catalog computations behind them (a ranker that keeps one item's scores, such as the
    learned ranker's memo, counts them in ``catalog_scorings``; otherwise every call is one)."""

    def __init__(self, ws):
        self.ws, self.calls = ws, 0
        self._computed0 = 0
        self._frozen: int | None = None

    @property
    def n(self) -> int:
        """Catalog scorings (memo misses where the ranker counts them, else calls)."""
        if self._frozen is not None:
            return self._frozen
        if hasattr(self.ws.ranker, "catalog_scorings"):
            return int(self.ws.ranker.catalog_scorings) - self._computed0
        return self.calls

    def __enter__(self) -> ScoreCounter:
        inner = self.ws.ranker.score
        self._computed0 = int(getattr(self.ws.ranker, "catalog_scorings", 0))

        def counted(*a, **k):
            self.calls += 1
            return inner(*a, **k)

        self.ws.ranker.score = counted
        return self

    def __exit__(self, *exc: object) -> None:
        self._frozen = self.n
        del self.ws.ranker.score  # back to the class's method


def decisions_for(ws, item_id: str, ranking, decided: dict[str, int],
                  n: int = N_DECISIONS) -> list[tuple[str, int]]:
    """The analyst's ``n`` new decisions in the top of the shown ranking: the item's real
    positives there are confirmed (at most half), the highest-ranked others rejected."""
    from engine.schema import ITEM_ID, LABEL, TARGET_ID

    truth: set[str] = set()
    for ph in ws.split.phases.values():  # the item's held-out positives, every phase
        truth |= set(ph.loc[(ph[ITEM_ID].astype(str) == item_id) & (ph[LABEL] == 1),
                            TARGET_ID].astype(str))
    truth -= set(decided)
    shown = [str(t) for t in ranking[TARGET_ID].head(200) if str(t) not in decided]
    yes = [t for t in shown if t in truth][: n // 2]
    if not yes:  # none of its targets in the top: confirm one of them found by search
        yes = sorted(truth)[:1]
    no = [t for t in shown if t not in truth and t not in yes][: n - len(yes)]
    return [(t, 1) for t in yes] + [(t, 0) for t in no]


def bench_feedback(ws, reps: int, db_dir: Path, warmup: int = 2) -> dict:
    """One Feedback submit per sample, end to end on a SQLite database: 4 decisions ->
    ``confirm_and_refine`` -> the page's rerun (``predict_item``, the ranked table) -> the
    history (``rank_history``, ``drift``, ``decision_log``). Each sample is a fresh item
    created and shown at phase 0 outside the timing, then refined phase 0 -> I; a second
    submit on the same item (I -> II) is timed as well."""
    from app import flows, history
    from app import predictions as preds
    from engine.schema import NAME

    url = f"sqlite:///{db_dir / 'speed.db'}"
    opened = flows.open_database(url)
    db = opened.engine
    flows.ensure_workspace(db, ws)
    feats = [(i, f) for i, f in new_item_features(ws)]
    la = loadavg()
    parts = ("confirm_and_refine", "reload", "table", "history")
    samples: dict[int, dict[str, list[float]]] = {p: {k: [] for k in (*parts, "total")}
                                                  for p in (1, 2)}
    counts: dict[int, list[int]] = {1: [], 2: []}
    calls: dict[int, list[int]] = {1: [], 2: []}
    n = reps + warmup
    for i in range(n):
        item_id, f = feats[i % len(feats)]
        item = flows.new_item(db, ws, name=f"{f.get(NAME, item_id)} #{i}",
                              features=raw_features(ws, f),
                              allow_duplicate=True)
        state = flows.predict_item(db, ws, item.id)  # the page shown at phase 0
        for phase in (1, 2):
            dec = decisions_for(ws, item_id, state.prediction.targets, state.decisions)
            with ScoreCounter(ws) as sc:
                t0 = time.perf_counter()
                flows.confirm_and_refine(db, ws, item.id, dec, expected_phase=state.phase)
                t1 = time.perf_counter()
                state = flows.predict_item(db, ws, item.id)  # st.rerun: the page again
                t2 = time.perf_counter()
                preds.ranked_targets(ws, state, top_n=TOP_N)
                t3 = time.perf_counter()
                history.rank_history(db, ws, item.id)
                history.drift(db, item.id)
                history.decision_log(db, item.id)
                t4 = time.perf_counter()
            assert state.phase == phase
            if i < warmup:
                continue
            s = samples[phase]
            for k, v in zip((*parts, "total"), (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0),
                            strict=True):
                s[k].append(v)
            counts[phase].append(sc.n)
            calls[phase].append(sc.calls)
    db.dispose()
    res: dict = {"n_targets": len(ws.dataset.targets), "decisions": N_DECISIONS,
                 "top_n": TOP_N, "database": "sqlite (file)", "ranker": ws.ranker_kind}
    for phase in (1, 2):
        key = "submit_phase0_to_I" if phase == 1 else "submit_phaseI_to_II"
        res[key] = {k: stats_ms(v) for k, v in samples[phase].items()}
        res[key]["catalog_scorings"] = int(np.median(counts[phase])) if counts[phase] else None
        res[key]["score_calls"] = int(np.median(calls[phase])) if calls[phase] else None
    return _la(res, la)
