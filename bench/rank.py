"""Batch ranking speed (issue 19): ``emerflow rank`` over the new DisGeNET diseases.

Run from the repository root (the workspace is built first when missing)::

    EMERFLOW_DATA=../shared/data nice -n 10 .venv/bin/python -m bench.rank --n 500

Writes the items file (the split's new diseases, by name, as an analyst would type them), runs
the ``emerflow rank`` command in this process (``--top 100``, TSV) and records the wall time
of the whole command (workspace and curated files loaded, every item ranked with evidence,
the file written) in ``results/speed/rank.json``, with the workspace's ranker (the product's,
``engine.tuned.PRODUCT_METHOD``) and the load average around the run. Also checks that the file
reads back with plain ``pandas.read_csv`` with every HGNC link intact.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

TARGET_S = 60.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="disgenet-curated")
    ap.add_argument("--n", type=int, default=500, help="new items to rank")
    ap.add_argument("--top", type=int, default=100)
    ap.add_argument("--out", type=Path, default=Path("results/speed/rank.json"))
    args = ap.parse_args(argv)

    from engine.build import open_workspace
    from engine.cli import main as cli

    ws = open_workspace(args.dataset)  # built once if missing; not timed
    names = dict(zip(ws.dataset.items["item_id"], ws.dataset.items["name"], strict=True))
    queries = [names[c] for c in ws.split.new_items[: args.n]]
    with tempfile.TemporaryDirectory() as tmp:
        items = Path(tmp) / "items.txt"
        items.write_text("\n".join(queries) + "\n", encoding="utf-8")
        out = Path(tmp) / "ranked.tsv"
        load_before = list(os.getloadavg())
        t0 = time.perf_counter()
        rc = cli(["rank", "--workspace", args.dataset, "--items", str(items), "--top",
                  str(args.top), "--out", str(out), "--quiet"])
        wall = time.perf_counter() - t0
        back = pd.read_csv(out, sep="\t", dtype=str, keep_default_na=False)
    hgnc = back["HGNC"] if "HGNC" in back.columns else pd.Series(dtype=str)
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, check=False).stdout.strip()
    doc = {
        "what": f"emerflow rank --workspace {args.dataset} --items <{len(queries)} new "
                f"diseases by name> --top {args.top} --out ranked.tsv (in-process)",
        "items": len(queries), "ranked": int(back["item_id"].nunique()), "rows": len(back),
        "exit_code": rc, "wall_s": round(wall, 2), "per_item_ms": round(1000 * wall /
                                                                         max(len(queries), 1), 1),
        "target_s": TARGET_S, "target_met": bool(wall <= TARGET_S and rc == 0),
        "hgnc_links_intact": bool(len(hgnc) and hgnc.str.startswith("https://").all()),
        "ranker": ws.ranker.kind, "model_version": ws.model_version,
        "load_average_before": load_before, "load_average_after": list(os.getloadavg()),
        "cpus": os.cpu_count(), "torch_threads": _torch_threads(),
        "python": platform.python_version(), "commit": sha,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(doc, indent=1))
    return 0 if doc["target_met"] else 1


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


if __name__ == "__main__":
    sys.exit(main())
