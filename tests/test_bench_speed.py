"""The speed harness (``python -m bench.speed --quick``) and the ranking order it times.

The smoke run builds the demo catalog with every registered product ranker and runs every
section once at toy size: it exits 0 and writes the JSON the README cites, with every figure
present. No timing is asserted here; ``--check`` is the place for targets.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import speed  # noqa: E402
from engine.workspace import ranking_order  # noqa: E402


@pytest.mark.slow
def test_quick_run_writes_valid_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    rc = speed.main(["--quick", "--out", str(out), "--home", str(tmp_path / "home")])
    assert rc == 0
    files = sorted(p.name for p in out.glob("*.json"))
    assert "latest-quick.json" in files and len(files) == 2
    doc = json.loads((out / "latest-quick.json").read_text())
    assert doc["schema"] == 2 and doc["args"]["quick"] is True
    for key in ("cpu_model", "cpus_usable", "torch", "faiss", "torch_threads", "loadavg_start"):
        assert key in doc["machine"]
    r = doc["results"]
    assert set(r) == set(speed.SECTIONS)
    builds = r["build"]["demo-diseases"]
    assert set(builds) == set(speed.ranker_kinds()) and "twotower" in builds
    for kind, b in builds.items():
        assert b["ranker"] == kind and b["model_s"] > 0
        assert set(b["stages_s"]) == {"encode", "ranker", "index"}
    p = r["predict"]["demo-diseases"]
    assert p["cold_text"]["n"] == 3 and p["cached_text"]["p50_ms"] > 0
    assert set(p["stages_cold"]) == {"serialize", "encode", "align", "score", "rank",
                                     "neighbours", "table", "evidence"}
    f = r["feedback"]["demo-diseases"]
    for key in ("submit_phase0_to_I", "submit_phaseI_to_II"):
        assert f[key]["total"]["n"] == 3
        assert set(f[key]) >= {"confirm_and_refine", "reload", "table", "history"}
        assert f[key]["catalog_scorings"] >= 1
    assert [d["n_targets"] for d in r["scale"]["targets"]] == [1000]
    assert r["scale"]["targets"][0]["predict"]["p50_ms"] > 0
    enc = r["encode"]
    assert set(enc["modes"]) == {"none", "dynamic-int8"}
    assert enc["items_per_s_median"] > 0
    assert 0.0 <= enc["text_knn_recall"]["modes"]["dynamic-int8"]["recall"] <= 1.0
    idx = r["index"][0]
    assert idx["n_items"] == 1000
    assert all(0.0 <= s["recall_at_10"] <= 1.0 for s in idx["hnsw"]["sweep"])
    assert {c["name"].split("[")[0] for c in doc["checks"]} >= {
        "build_twotower_s", "predict_p50_ms", "feedback_submit_p50_ms", "encode_items_per_s"}
    assert "figure" in capsys.readouterr().out

    # --check-file re-reads the JSON and reports; its exit code depends on timings only
    assert speed.main(["--check-file", str(out / "latest-quick.json")]) in (0, 1)


def test_evaluate_flags_missed_targets() -> None:
    doc = {"results": {
        "build": {"disgenet-curated": {"twotower": {"model_s": 29.0},
                                       "ltr": {"model_s": 61.0}}},
        "predict": {"disgenet-curated": {"cold_text": {"p50_ms": 41.0}}},
        "feedback": {"disgenet-curated": {"submit_phase0_to_I": {"total": {"p50_ms": 140.0}}}},
        "scale": {"targets": [{"n_targets": 1_000_000, "predict": {"p50_ms": 399.0}}]},
        "encode": {"items_per_s_median": 151.0},
    }}
    checks = {c["name"]: c["ok"] for c in speed.evaluate(doc)}
    assert checks == {"build_twotower_s[disgenet-curated]": True,
                      "build_ltr_s[disgenet-curated]": False,
                      "predict_p50_ms[disgenet-curated]": False,
                      "feedback_submit_p50_ms[disgenet-curated]": True,
                      "scale_1m_targets_predict_p50_ms": True,
                      "encode_items_per_s": True}


@pytest.mark.parametrize("seed", range(40))
def test_ranking_order_is_the_stable_descending_order(seed: int) -> None:
    """The fast ranking order equals ``argsort(-s, kind="stable")`` exactly: ties (pinned
    decisions, equal scores, scores closer than the packed key keeps) by lower row, -0.0 equal
    to 0.0, infinities in place, NaN last."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 5000))
    s = rng.standard_normal(n)
    if seed % 3 == 0:
        s = np.round(s, 1)  # many exact ties
    if seed % 4 == 0:
        s = s + 1e-13 * rng.integers(0, 3, size=n)  # near-ties below the kept bits
    for value, every in ((np.nan, 5), (np.inf, 7), (-np.inf, 7), (0.0, 4), (-0.0, 4)):
        if seed % every == 0:
            s[rng.integers(0, n, size=max(1, n // 10))] = value
    if seed == 1:
        s[:] = 2.5
    assert np.array_equal(ranking_order(s), np.argsort(-s, kind="stable"))
    assert ranking_order(s.astype(np.float32)).dtype == np.int64
