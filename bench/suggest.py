"""What-to-test-next benchmark (issue 19): a simulated analyst tests the suggested batches.

Run from the repository root::

    EMERFLOW_DATA=../shared/data nice -n 10 .venv/bin/python -m bench.suggest \\
        --dataset disgenet-curated --seeds 0 1 2

For each new item of the protocol split (``shared/specs/protocol.md``; seeds = split seeds, one
workspace trained per seed on its old items): starting from the item's dataset features (Phase
0), each round the strategy proposes ``k`` untested targets, the analyst "tests" them (the
oracle is the item's true targets: every positive of its phase batches and its test set), the
answers are recorded as confirmed / rejected and the item is refined with all decisions so far
(``Workspace.refine`` from the phase-0 embedding, then ``Workspace.predict`` with
``embedding=`` and ``decisions=``: the dashboard's calls). After the last round: Recall@100 and
NDCG@100 of the targets not yet found, in the final ranking of the untested targets
(full catalog; MovieLens: every user with an old-item rating).

Strategies: ``greedy`` (the k best-ranked untested targets = dial 0), ``popularity`` (the k
most popular untested targets, the same for every item), and ``suggest@<dial>``
(:func:`engine.suggest.suggest`). The dial is chosen on the old-item validation split of seed
0 (``--validate``: dials 0, 0.25, 0.5, 0.75, 1 on held-out OLD items, never the new ones) by
the mean number of true targets in hand after the rounds: found by testing + remaining ones in
the final top 100. Results: ``results/suggest/<dataset>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from engine.schema import DISEASE, ITEM_ID, LABEL, TARGET_ID
from engine.suggest import DEFAULT_POOL, CoAssociation, SuggestConfig, suggest

DIALS = (0.0, 0.25, 0.5, 0.75, 1.0)
CUTOFF = 100


@dataclass
class ItemRun:
    """One item's simulation under one strategy."""

    found: list[int]  # true targets found per round
    recall: float
    ndcg: float


def _metrics(ranked: np.ndarray, relevant: set[str], cutoff: int = CUTOFF) -> tuple[float,
                                                                                   float]:
    """Recall@cutoff and NDCG@cutoff (binary gains) of ``relevant`` in ``ranked`` target ids."""
    if not relevant:
        return float("nan"), float("nan")
    top = ranked[:cutoff]
    hits = np.array([t in relevant for t in top], float)
    recall = hits.sum() / len(relevant)
    disc = 1.0 / np.log2(np.arange(2, len(top) + 2))
    idcg = disc[: min(len(relevant), cutoff)].sum()
    return float(recall), float((hits * disc).sum() / idcg)


class Simulator:
    """Rounds of test-and-refine for the new items of one workspace."""

    def __init__(self, ws, k: int, rounds: int) -> None:
        self.ws, self.k, self.rounds = ws, k, rounds
        self.co = CoAssociation(ws)
        train = ws.split.train
        pos = train[train[LABEL] > 0]
        counts = pos[TARGET_ID].astype(str).value_counts()
        self.popular = counts.index.to_numpy()
        self.active = (None if ws.domain == DISEASE
                       else set(train[TARGET_ID].astype(str).unique()))
        new = ws.split.new_rows()
        new = new[new[LABEL] > 0]
        self.truth = {str(i): set(g.astype(str)) for i, g in new.groupby(ITEM_ID)[TARGET_ID]}
        self.rows = ws.dataset.items.set_index(ITEM_ID)

    def features(self, item_id: str) -> dict[str, object]:
        row = self.rows.loc[item_id].to_dict()
        return {k: v for k, v in row.items() if v is not None and str(v) not in ("", "nan")}

    def run(self, item_id: str, pick: Callable) -> ItemRun:
        ws, truth = self.ws, self.truth[item_id]
        feats = self.features(item_id)
        pred = ws.predict(feats, n_neighbours=1)
        prior = np.asarray(pred.embedding, np.float32)
        decisions: dict[str, int] = {}
        found = []
        for _ in range(self.rounds):
            batch = pick(pred, decisions)
            hits = 0
            for t in batch:
                decisions[t] = 1 if t in truth else 0
                hits += decisions[t]
            found.append(hits)
            if decisions:
                emb = ws.refine(prior, feats, sorted(decisions.items()))
                pred = ws.predict(feats, embedding=emb, decisions=decisions, n_neighbours=1)
        ranked = pred.targets[TARGET_ID].astype(str)
        keep = ~ranked.isin(set(decisions))  # hash lookups: np.isin sorts strings (slow)
        if self.active is not None:
            keep &= ranked.isin(self.active)
        ranked = ranked[keep].to_numpy()
        remaining = truth - {t for t, y in decisions.items() if y == 1}
        recall, ndcg = _metrics(ranked, remaining)
        return ItemRun(found, recall, ndcg)

    def strategy(self, name: str) -> Callable:
        k = self.k
        if name == "popularity":
            def pick(pred, decisions):
                return [t for t in self.popular if t not in decisions][:k]
            return pick
        dial = 0.0 if name == "greedy" else float(name.split("@", 1)[1])
        cfg = SuggestConfig(k=k, dial=dial, pool=max(DEFAULT_POOL, k))

        def pick(pred, decisions):
            cand = None
            return [s.target_id for s in suggest(self.ws, pred, decisions, cfg,
                                                 coassoc=self.co, candidates=cand)]
        return pick

    def evaluate(self, items: Sequence[str], strategies: Sequence[str]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for name in strategies:
            pick = self.strategy(name)
            t0 = time.perf_counter()
            runs = [self.run(i, pick) for i in items if self.truth.get(i)]
            found = np.array([r.found for r in runs], float)
            rec = np.array([r.recall for r in runs])
            nd = np.array([r.ndcg for r in runs])
            top_in_hand = np.array([sum(r.found) + r.recall * (len(self.truth[i])
                                                              - sum(r.found))
                                    for r, i in zip(runs, [i for i in items
                                                           if self.truth.get(i)],
                                                    strict=True)])
            out[name] = {
                "items": len(runs),
                "found_per_round": [round(float(x), 4) for x in found.mean(axis=0)],
                "found_total": round(float(found.sum(axis=1).mean()), 4),
                "items_with_a_hit_in_round_1": round(float((found[:, 0] > 0).mean()), 4),
                f"recall@{CUTOFF}_remaining": round(float(np.nanmean(rec)), 4),
                f"ndcg@{CUTOFF}_remaining": round(float(np.nanmean(nd)), 4),
                "true_targets_in_hand": round(float(top_in_hand.mean()), 4),
                "seconds": round(time.perf_counter() - t0, 1),
            }
            print(f"  {name:16s} {out[name]}", flush=True)
        return out


def _workspace(name: str, seed: int, home: Path, encoder, validation: bool = False):
    """The workspace of split seed ``seed`` (or its old-item validation split), built once."""
    from engine.data.protocol import split_dataset, validation_split
    from engine.data.registry import get_dataset_entry
    from engine.tuned import emerflow_workspace_config
    from engine.workspace_build import build_workspace
    from engine.workspace_store import load_workspace, save_workspace, workspace_exists

    directory = home / f"{name}-seed{seed}{'-validation' if validation else ''}"
    if workspace_exists(directory):
        return load_workspace(directory, encoder)
    entry = get_dataset_entry(name)
    dataset = entry.load(None)
    cfg = entry.protocol.with_seed(seed)
    split = split_dataset(dataset, cfg)
    if validation:
        split = validation_split(split, cfg)
    config = emerflow_workspace_config(name, seed=seed)
    t0 = time.perf_counter()
    ws = build_workspace(dataset, split, config, encoder)
    print(f"built {directory.name} in {time.perf_counter() - t0:.0f}s", flush=True)
    save_workspace(ws, directory)
    return ws


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-items", type=int, default=0,
                    help="at most this many new items per seed (0: all), the first by id")
    ap.add_argument("--dial", type=float, default=None,
                    help="the suggest dial to compare (default: chosen on validation)")
    ap.add_argument("--home", type=Path,
                    default=Path(os.environ.get("EMERFLOW_HOME", "~/.emerflow")).expanduser()
                    / "suggest-bench")
    ap.add_argument("--out", type=Path, default=Path("results/suggest"))
    args = ap.parse_args(argv)

    from engine.config import EncoderConfig
    from engine.text.encoder import TextEncoder

    encoder = TextEncoder(EncoderConfig())
    doc: dict = {"dataset": args.dataset, "k": args.k, "rounds": args.rounds,
                 "cutoff": CUTOFF, "pool": DEFAULT_POOL, "seeds": args.seeds}
    t_all = time.perf_counter()
    if args.dial is None:
        print("validation (old items held out, seed 0):", flush=True)
        val_ws = _workspace(args.dataset, 0, args.home, encoder, validation=True)
        sim = Simulator(val_ws, args.k, args.rounds)
        items = sorted(sim.truth)
        if args.max_items:
            items = items[: args.max_items]
        val = sim.evaluate(items, [f"suggest@{d}" for d in DIALS] + ["popularity"])
        best = max(DIALS, key=lambda d: (val[f"suggest@{d}"]["true_targets_in_hand"], -d))
        doc["validation"] = {"split": "old-item validation split of seed 0",
                             "criterion": "true_targets_in_hand (found by testing + "
                                          f"remaining ones in the final top {CUTOFF})",
                             "results": val, "chosen_dial": best}
        dial = best
    else:
        dial = args.dial
    doc["dial"] = dial
    strategies = ["greedy", "popularity", f"suggest@{dial}"]
    if dial not in (0.0, 1.0):
        strategies.append("suggest@1.0")
    per_seed: dict[str, dict] = {}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.dataset}.json"
    for seed in args.seeds:
        print(f"test, seed {seed}:", flush=True)
        ws = _workspace(args.dataset, seed, args.home, encoder)
        sim = Simulator(ws, args.k, args.rounds)
        items = sorted(sim.truth)
        if args.max_items:
            items = items[: args.max_items]
        doc["ranker"] = ws.ranker.kind  # the product's (engine.tuned.PRODUCT_METHOD)
        per_seed[str(seed)] = sim.evaluate(items, strategies)
        # written after every seed: an interrupted run keeps the seeds it finished
        doc["test"] = per_seed
        doc["seeds_done"] = [int(s) for s in per_seed]
        doc["test_mean"] = {
            name: {key: (np.round(np.mean([per_seed[s][name][key] for s in per_seed],
                                          axis=0), 4).tolist())
                   for key in per_seed[str(args.seeds[0])][name] if key != "seconds"}
            for name in strategies}
        doc["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
        doc["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                       capture_output=True, text=True, check=False
                                       ).stdout.strip()
        doc["wall_s"] = round(time.perf_counter() - t_all, 1)
        doc["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {path} (seeds {doc['seeds_done']})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
