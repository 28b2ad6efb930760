"""Smoke test of the speed harness (``python -m bench.speed --quick``): it runs, exits 0 and
writes valid JSON. No timing is asserted here; ``--check`` is the place for targets."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import speed  # noqa: E402


@pytest.mark.slow
def test_quick_run_writes_valid_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    rc = speed.main(["--quick", "--out", str(out), "--home", str(tmp_path / "home")])
    assert rc == 0
    files = sorted(p.name for p in out.glob("*.json"))
    assert "latest-quick.json" in files and len(files) == 2
    doc = json.loads((out / "latest-quick.json").read_text())
    assert doc["schema"] == 1 and doc["args"]["quick"] is True
    m = doc["machine"]
    for key in ("cpu_model", "cpus_usable", "torch", "faiss", "torch_threads", "loadavg_start"):
        assert key in m
    r = doc["results"]
    assert set(r) == set(speed.SECTIONS)
    p = r["predict"]["demo-diseases"]
    assert p["cold_text"]["n"] == 3 and p["cached_text"]["p50_ms"] > 0
    assert set(p["stages_cold"]) == {"serialize", "encode", "align", "score", "rank",
                                     "neighbours"}
    assert r["refine"]["demo-diseases"]["k"] == 3
    assert r["encode"]["items_per_s_median"] > 0
    t = r["train"]["demo-diseases"]
    assert t["backbone"]["rows_per_s"] > 0 and t["meta"]["tasks_per_s"] > 0
    assert [d["n_targets"] for d in r["scale"]["targets"]] == [1000]
    idx = r["scale"]["index"][0]
    assert idx["n_items"] == 1000
    assert all(0.0 <= s["recall_at_10"] <= 1.0 for s in idx["hnsw"]["sweep"])
    assert isinstance(doc["checks"], list)
    assert "figure" in capsys.readouterr().out

    # --check-file re-reads the JSON and reports; its exit code depends on timings only
    assert speed.main(["--check-file", str(out / "latest-quick.json")]) in (0, 1)


def test_evaluate_flags_missed_targets() -> None:
    doc = {"results": {
        "predict": {"disgenet-curated": {"cold_text": {"p50_ms": 50.0, "p95_ms": 200.0}}},
        "encode": {"items_per_s_median": 151.0},
    }}
    checks = {c["name"]: c["ok"] for c in speed.evaluate(doc)}
    assert checks == {"predict_disgenet_p50_ms": True, "predict_disgenet_p95_ms": False,
                      "encode_items_per_s": True}
