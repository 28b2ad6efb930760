"""Shared parts of the speed bench (:mod:`bench.speed`): constants and targets, machine
and measurement helpers, and the workspaces every section measures."""

from __future__ import annotations

import dataclasses
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

import engine  # noqa: F401  (first: sets the OpenMP defaults before torch loads)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "results" / "speed"
REAL_DATASETS = ("disgenet-curated", "movielens-1m-partial")
QUICK_DATASETS = ("demo-diseases",)
QUICK_DEMO = (400, 150)  #: (genes, diseases) of the --quick demo catalog
SECTIONS = ("build", "predict", "feedback", "scale", "encode", "index")
EF_SWEEP = (16, 32, 64, 128, 256)
TOP_N = 25  #: rows of the ranked table (the Predictions and Feedback pages' default)
N_DECISIONS = 4  #: decisions per Feedback submit

#: The targets of issue 17 (2 CPU cores, warm). ``--check`` compares against these.
TARGETS = {
    "build_twotower_s": 30.0,
    "build_ltr_s": 60.0,
    "predict_p50_ms": 40.0,
    "feedback_submit_p50_ms": 150.0,
    "scale_1m_targets_predict_p50_ms": 400.0,
    "encode_items_per_s": 150.0,
}


# ---- machine and measurement helpers -----------------------------------------------------------
def settings_paths(home: Path | None, data_root: Path | None) -> tuple[Path, Path | None]:
    """(bench home, data root): the arguments, else ``EMERFLOW_HOME/speed-cache`` and
    ``EMERFLOW_DATA`` through the settings object."""
    from engine.settings import get_settings

    s = get_settings()
    return (home or Path(s.home) / "speed-cache"), (data_root or s.data)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def machine_info() -> dict:
    import faiss
    import torch
    import transformers

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        affinity = os.cpu_count()
    mem_gb = None
    try:
        m = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
        mem_gb = round(int(m.group(1)) / 2**20, 1) if m else None
    except OSError:
        pass
    import pandas as pd

    return {
        "cpu_model": cpu, "cpu_count": os.cpu_count(), "cpus_usable": affinity,
        "mem_total_gb": mem_gb, "platform": platform.platform(),
        "python": platform.python_version(), "torch": torch.__version__,
        "faiss": faiss.__version__, "transformers": transformers.__version__,
        "numpy": np.__version__, "pandas": pd.__version__,
        "torch_threads": torch.get_num_threads(),
        "faiss_omp_threads": faiss.omp_get_max_threads(),
        "loadavg_start": loadavg(),
    }


def stats_ms(samples_s: Sequence[float]) -> dict:
    a = np.asarray(samples_s, dtype=np.float64) * 1000.0
    if len(a) == 0:
        return {"n": 0}
    return {"n": int(len(a)), "p50_ms": round(float(np.median(a)), 3),
            "p95_ms": round(float(np.percentile(a, 95)), 3), "mean_ms": round(float(a.mean()), 3),
            "min_ms": round(float(a.min()), 3), "max_ms": round(float(a.max()), 3)}


def _status_kb(key: str) -> int:
    m = re.search(rf"{key}:\s+(\d+)", Path("/proc/self/status").read_text())
    return int(m.group(1)) if m else 0


def rss_mb() -> float:
    return _status_kb("VmRSS") / 1024.0


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process; False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
    return _status_kb("VmHWM") / 1024.0


def timed(fn: Callable[..., object], *args: object, **kwargs: object) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def log(msg: str) -> None:
    print(f"[speed {time.strftime('%H:%M:%S')} load {loadavg()[0]:.2f}] {msg}", file=sys.stderr,
          flush=True)


def _la(res: dict, before: list[float]) -> dict:
    res["loadavg_before"] = before
    res["loadavg_after"] = loadavg()
    return res


# ---- workspaces --------------------------------------------------------------------------------
def ranker_kinds() -> list[str]:
    """The product rankers registered now (``twotower``; ``ltr`` once engine/ltr registers)."""
    from engine.ranking.registry import RANKERS

    return list(RANKERS)


def product_ranker(name: str, kinds: Sequence[str]) -> str:
    """The ranker the dashboard builds for ``name`` (``engine.tuned``), when measured here."""
    from engine.tuned import emerflow_workspace_config

    kind = emerflow_workspace_config(name).ranker
    return kind if kind in kinds else kinds[0]


def workspace_config(name: str, kind: str, quick: bool):
    """The dashboard's settings of ``name`` with ranker ``kind`` (``--quick``: few epochs)."""
    from engine.tuned import emerflow_workspace_config

    cfg = emerflow_workspace_config(name)
    cfg = dataclasses.replace(cfg, ranker=kind)
    if quick:
        if kind == "ltr":  # smoke size: few trees (only the fields the ranker has)
            from engine.ltr import LtrConfig

            names = {f.name for f in dataclasses.fields(LtrConfig)}
            small = {k: v for k, v in (("n_estimators", 10), ("folds", 2)) if k in names}
            cfg = dataclasses.replace(cfg, ltr={**(cfg.ltr or {}), **small})
        sh = cfg.shared
        tt = dataclasses.replace(sh.twotower, epochs=min(sh.twotower.epochs, 3))
        meta = dataclasses.replace(sh.meta, epochs=min(sh.meta.epochs, 3))
        cfg = dataclasses.replace(cfg, shared=dataclasses.replace(sh, twotower=tt, meta=meta))
    return cfg


def build_one(name: str, kind: str, home: Path, data_root: Path | None, encoder,
              quick: bool):
    """Build (and save) the workspace of ``name`` with ranker ``kind`` from scratch: the
    encoder's text cache is emptied first, so every established item's text is encoded."""
    from engine.build import build_dataset_workspace, workspace_dir
    from engine.workspace_build import build_workspace
    from engine.workspace_store import save_workspace

    encoder._cache.clear()
    cfg = workspace_config(name, kind, quick)
    whome = home / kind
    marks: dict[str, tuple[float, float]] = {}  # stage -> (first, last) progress call

    def progress(stage: str, frac: float, message: str) -> None:
        now = time.perf_counter()
        marks[stage] = (marks.get(stage, (now, now))[0], now)

    t0 = time.perf_counter()
    if quick and name == "demo-diseases":
        # smoke-test size: a smaller generated catalog
        from engine.data.demo import demo_diseases
        from engine.data.protocol import split_dataset
        from engine.data.registry import get_dataset_entry

        dataset = demo_diseases(n_genes=QUICK_DEMO[0], n_diseases=QUICK_DEMO[1])
        split = split_dataset(dataset, get_dataset_entry(name).protocol)
        t_load = time.perf_counter() - t0
        ws = build_workspace(dataset, split, cfg, encoder, progress)
        t1 = time.perf_counter()
        directory = workspace_dir(name, whome)
        directory.mkdir(parents=True, exist_ok=True)
        save_workspace(ws, directory)
        t_save = time.perf_counter() - t1
    else:
        ws = build_dataset_workspace(name, config=cfg, data_root=data_root, encoder=encoder,
                                     home=whome, progress=progress)
        t_load = marks.get("encode", (t0, t0))[0] - t0
        t_save = None
    total = time.perf_counter() - t0
    stages = dict(ws.meta.get("timings_s", {}))
    if t_save is None:
        t_save = max(0.0, total - t_load - sum(stages.values()))
    # inside the ranker stage: from the previous stage's last progress call to its own last
    ranker_parts: dict[str, float] = {}
    prev = None
    for k, (_, last) in sorted(marks.items(), key=lambda kv: kv[1][0]):
        if prev is not None and k not in ("load", "encode", "index"):
            ranker_parts[k] = round(last - prev, 3)
        prev = last
    if ranker_parts and "ranker" in stages:
        ranker_parts["rest"] = round(stages["ranker"] - sum(ranker_parts.values()), 3)
    return ws, {"total_s": round(total, 3), "stages_s": stages, "ranker_parts_s": ranker_parts,
                "model_s": round(sum(stages.values()), 3),
                "load_split_s": round(t_load, 3), "save_s": round(t_save, 3),
                "n_items": len(ws.dataset.items), "n_targets": len(ws.dataset.targets),
                "n_old_items": len(ws.index.ids), "ranker": ws.ranker_kind,
                # the settings built with (engine.tuned at the time) and the ranker's own
                # stage times (the learned ranker: training lists, LightGBM fit)
                "ranker_settings": getattr(ws.config, ws.ranker_kind, None)
                if ws.ranker_kind == "ltr" else None,
                "ranker_meta": dict(getattr(ws.ranker, "meta", {}) or {})}


def get_workspace(name: str, kind: str, home: Path, data_root: Path | None, encoder,
                  quick: bool):
    """The saved workspace of (``name``, ``kind``) under ``home``, built once when missing."""
    from engine.build import workspace_dir
    from engine.workspace_store import load_workspace, workspace_exists

    directory = workspace_dir(name, home / kind)
    if workspace_exists(directory):
        return load_workspace(directory, encoder=encoder)
    log(f"building workspace {name} ({kind}) into {directory} (once)")
    return build_one(name, kind, home, data_root, encoder, quick)[0]


def new_item_features(ws) -> list[tuple[str, dict]]:
    """(item id, the dataset's raw feature row) of the split's new items."""
    from engine.schema import ITEM_ID

    items = ws.dataset.items
    new = set(map(str, ws.split.new_items))
    rows = items[items[ITEM_ID].astype(str).isin(new)]
    return [(str(r[ITEM_ID]), r) for r in rows.to_dict("records")]


def uncache(ws, text: str) -> None:
    ws.encoder._cache.pop(ws.encoder.key(text), None)


def raw_features(ws, row: dict) -> dict[str, str]:
    """The New item form's values of a dataset row: the item features with a value, as text."""
    out = {}
    for spec in ws.dataset.item_features:
        v = row.get(spec.name)
        if isinstance(v, (list, tuple, np.ndarray)):
            v = "|".join(str(x) for x in v)
        if v is None or (isinstance(v, float) and v != v) or not str(v).strip():
            continue
        out[spec.name] = str(v)
    return out
