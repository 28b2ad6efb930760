"""The product path's import graph: the app's flows load none of the benchmark's modules."""

from __future__ import annotations

import subprocess
import sys

BENCH_ONLY = ("engine.bench", "engine.bench_cli", "engine.bench_report", "engine.baselines",
              "engine.paper", "bench")


def test_app_flows_import_no_benchmark_module():
    code = ("import sys, app.flows, app.state, engine.build, engine.workspace_store; "
            f"print([m for m in sys.modules if m.startswith({BENCH_ONLY})])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_every_product_ranker_kind_is_registered():
    from engine.config import RANKER_KINDS
    from engine.ranking.registry import RANKERS

    assert set(RANKERS) <= set(RANKER_KINDS)
    assert "twotower" in RANKERS
