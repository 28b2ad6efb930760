"""The speed bench's printed table and its check against the targets (:mod:`bench.speed`)."""

from __future__ import annotations

import numpy as np

from bench.speed_common import TARGETS


# ---- report ------------------------------------------------------------------------------------
def _lastr(d: dict) -> str:
    b, a = d.get("loadavg_before"), d.get("loadavg_after")
    return f"{b[0]:.2f}->{a[0]:.2f}" if b and a else ""


def summary_rows(doc: dict) -> list[tuple[str, str, str]]:
    """(figure, value, load average) rows for the printed table."""
    rows: list[tuple[str, str, str]] = []
    r = doc["results"]
    for name, kinds in r.get("build", {}).items():
        for kind, d in kinds.items():
            st = "  ".join(f"{k} {v:.1f}" for k, v in d["stages_s"].items())
            rows.append((f"build {name} ({kind})",
                         f"model {d['model_s']:.1f} s (total {d['total_s']:.1f} s: load+split "
                         f"{d['load_split_s']:.1f}, {st}, save {d['save_s']:.1f})", _lastr(d)))
    for name, d in r.get("predict", {}).items():
        for kind in ("cold", "cached"):
            w = d[f"{kind}_text"]
            rows.append((f"predict+evidence {name} ({d['n_targets']} targets) {kind} text",
                         f"p50 {w['p50_ms']:.1f} ms  p95 {w['p95_ms']:.1f} ms", _lastr(d)))
        st = "  ".join(f"{k} {v['p50_ms']:.1f}" for k, v in d["stages_cold"].items())
        rows.append((f"  stages p50 ms {name}", st, ""))
    for name, d in r.get("feedback", {}).items():
        for key in ("submit_phase0_to_I", "submit_phaseI_to_II"):
            s = d[key]
            parts = "  ".join(f"{k} {s[k]['p50_ms']:.1f}" for k in
                              ("confirm_and_refine", "reload", "table", "history"))
            rows.append((f"feedback submit {name} {key[7:]}",
                         f"p50 {s['total']['p50_ms']:.1f} ms p95 {s['total']['p95_ms']:.1f} ms "
                         f"({parts}; {s['catalog_scorings']} catalog scorings, "
                         f"{s.get('score_calls', '?')} score calls)", _lastr(d)))
    for d in r.get("scale", {}).get("targets", []):
        rows.append((f"scale {d['n_targets']:>9,} targets predict",
                     f"p50 {d['predict']['p50_ms']:.1f} ms p95 {d['predict']['p95_ms']:.1f} ms "
                     f"(score {d['score']['p50_ms']:.1f}; complete table: rank "
                     f"{d['rank']['p50_ms']:.1f}, read "
                     f"{d.get('full_table', {}).get('p50_ms', 0):.1f}) extra "
                     f"{d['extra_peak_mb']} MB, ranker {d['ranker_static_mb']} MB", _lastr(d)))
    enc = r.get("encode")
    if enc:
        for mode, d in enc["modes"].items():
            rows.append((f"encode {enc['n_texts']} texts (~{enc['mean_tokens']:.0f} tokens, "
                         f"{mode})", f"{d['items_per_s_median']:.1f} items/s (CPUs used "
                         f"{np.median(d['cpu_seconds']) / np.median(d['seconds']):.2f})",
                         _lastr(d)))
    if enc and "text_knn_recall" in enc:
        q = enc["text_knn_recall"]
        rows.append((f"text-knn R@{q['at']} {q['dataset']} old items ({q['n_queries']} queries)",
                     "  ".join(f"{m} {d['recall']:.4f} ({d.get('delta_vs_none', 0):+.4f}, "
                               f"{d['items_per_s']:.0f} items/s)"
                               for m, d in q["modes"].items()), ""))
    for d in r.get("index", []):
        rows.append((f"index {d['n_items']:>9,} items flat",
                     f"p50 {d['flat']['query']['p50_ms']:.3f} ms  build {d['flat']['build_s']} s",
                     _lastr(d)))
        sw = "  ".join(f"ef{s['ef_search']}: R@10 {s['recall_at_10']:.3f} "
                       f"{s['query']['p50_ms']:.3f} ms" for s in d["hnsw"]["sweep"])
        rows.append((f"index {d['n_items']:>9,} items hnsw (build {d['hnsw']['build_s']} s)",
                     sw, ""))
    return rows


def print_table(doc: dict) -> None:
    m = doc["machine"]
    print(f"\nEmerFlow speed @ {doc['commit']}{' (dirty)' if doc['dirty'] else ''} "
          f"{doc['created_at']}  mode={'quick' if doc['args']['quick'] else 'full'}")
    print(f"machine: {m['cpu_model']}, {m['cpus_usable']} usable CPUs, {m['mem_total_gb']} GB; "
          f"torch {m['torch']} ({m['torch_threads']} threads), faiss {m['faiss']}; "
          f"load avg start {m['loadavg_start']} end {doc.get('loadavg_end')}")
    rows = summary_rows(doc)
    w0 = max((len(a) for a, _, _ in rows), default=10)
    print(f"{'figure':<{w0}}  {'load 1m':<12}  value")
    for a, b, c in rows:
        print(f"{a:<{w0}}  {c:<12}  {b}")
    for c in doc.get("checks", []):
        print(f"CHECK {'ok  ' if c['ok'] else 'MISS'} {c['name']}: {c['value']} "
              f"(target {c['op']} {c['target']})")


def evaluate(doc: dict) -> list[dict]:
    """Compare a result document with :data:`TARGETS`; figures not measured are skipped."""
    r = doc["results"]
    checks = []

    def add(name: str, value: float | None, op: str, where: str = "") -> None:
        if value is None:
            return
        target = TARGETS[name]
        ok = value < target if op == "<" else value <= target if op == "<=" else value >= target
        checks.append({"name": f"{name}[{where}]" if where else name, "value": value,
                       "target": target, "op": op, "ok": ok})

    for name, kinds in r.get("build", {}).items():
        for kind, d in kinds.items():
            key = f"build_{kind}_s"
            if key in TARGETS:
                add(key, d["model_s"], "<=", name)
    for name, d in r.get("predict", {}).items():
        add("predict_p50_ms", d["cold_text"]["p50_ms"], "<=", name)
    for name, d in r.get("feedback", {}).items():
        add("feedback_submit_p50_ms", d["submit_phase0_to_I"]["total"]["p50_ms"], "<=", name)
    for d in r.get("scale", {}).get("targets", []):
        if d["n_targets"] >= 1_000_000:
            add("scale_1m_targets_predict_p50_ms", d["predict"]["p50_ms"], "<")
    if "encode" in r:
        add("encode_items_per_s", r["encode"].get("items_per_s_median"), ">=")
    return checks
