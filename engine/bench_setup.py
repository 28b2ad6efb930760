"""What every benchmark run starts from: settings, method look-up, LLM augmentations, text
vectors, the seed's frozen DeepFM backbone (cached on disk) and the split's feature tables.

Part of :mod:`engine.bench` (the benchmark's public import point).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from engine.baselines import METHODS, Method, MethodNotAvailable
from engine.config import BackboneConfig, EncoderConfig, PaperConfig
from engine.csv_safety import restore
from engine.data.base import Dataset
from engine.data.protocol import Split
from engine.paper.backbones import build_backbone
from engine.paper.deepfm import DeepFM
from engine.paper.fields import FieldEncoder
from engine.paper.tables import layout as _layout
from engine.paper.tables import make_tables
from engine.paper.train import pretrain_backbone
from engine.schema import ITEM_ID
from engine.settings import emerflow_home
from engine.training_data import TrainingData, item_texts
from engine.tuned import DATASET_SETTINGS

Progress = Callable[[str], None]

#: Bumped whenever what a cached per-seed run file holds changes (2: ranking, per-item,
#: diversity blocks; F1 null for non-probabilistic methods; the all-rows task sampler).
CACHE_VERSION = 2


def _print(msg: str) -> None:
    print(msg, flush=True)


def default_cache_dir() -> Path:
    return emerflow_home() / "bench-cache"


def augment_output_path(dataset: str) -> Path:
    """Where ``emerflow augment`` (and ``bench --augment``) write a dataset's batch output:
    ``$EMERFLOW_HOME/augment/<dataset>.csv``."""
    return emerflow_home() / "augment" / f"{dataset}.csv"


#: The repository's ``results/`` folder, where each dataset's committed LLM values live.
REPO_RESULTS = Path(__file__).resolve().parent.parent / "results"
#: File name of a dataset's committed LLM augmentation (beside its result files).
COMMITTED_AUGMENT_NAME = "llm-augmentations.csv"


def committed_augment_path(dataset: str, results_root: Path | None = None) -> Path:
    """``results/<dataset>/llm-augmentations.csv``: the LLM values committed with the repo
    (with a ``.json`` sidecar naming provider, model and prompt version)."""
    return (results_root or REPO_RESULTS) / dataset / COMMITTED_AUGMENT_NAME


def default_augment_path(dataset: str, results_root: Path | None = None) -> Path:
    """The LLM augmentation a benchmark run reads when none is given (``--augmented`` wins):
    ``$EMERFLOW_HOME/augment/<dataset>.csv`` when present (a local ``emerflow augment`` or
    ``bench --augment`` run, e.g. with a larger model behind ``OPENAI_BASE_URL``), else the
    committed ``results/<dataset>/llm-augmentations.csv``; when neither exists, the local path
    (so the "not run" reason names where an augmentation would be written)."""
    local = augment_output_path(dataset)
    if local.is_file():
        return local
    committed = committed_augment_path(dataset, results_root)
    return committed if committed.is_file() else local


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


#: The ``engine`` package, whose source the cache keys fingerprint.
ENGINE_DIR = Path(__file__).resolve().parent


@lru_cache(maxsize=8)
def code_version(root: Path = ENGINE_DIR) -> str:
    """Fingerprint of the code a cached checkpoint or run came from.

    A digest of every ``*.py`` file under ``root`` (relative path and bytes, so it also covers
    uncommitted edits and ``git archive`` copies without ``.git``) plus the Python, torch and
    numpy versions. It is part of every bench cache key, so a cached seed is reused only by
    the code and environment that produced it.
    """
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    h.update(f"{platform.python_version()} {torch.__version__} {np.__version__}".encode())
    return h.hexdigest()[:16]


def _display_path(path: Path) -> str:
    """``path`` relative to the repository when it lies inside it (committed files), else as
    given."""
    try:
        return path.resolve().relative_to(REPO_RESULTS.parent).as_posix()
    except ValueError:
        return str(path)


def load_augmentations(path: Path | None) -> tuple[pd.DataFrame | None, dict | None, str]:
    """(augmentation frame item_id -> features, llm info, reason when absent)."""
    if path is None or not path.is_file():
        return None, None, f"no LLM augmentations found at {path}"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False).map(restore)
    if ITEM_ID not in frame.columns:
        return None, None, f"{path}: no {ITEM_ID} column"
    if "augment_error" in frame.columns:
        frame = frame[frame["augment_error"] == ""]
    frame = frame.drop(columns=[c for c in ("augment_error", "augment_cached") if c in frame])
    if frame.empty or len(frame.columns) < 2:
        return None, None, f"{path}: no successfully augmented items"
    meta_path = path.with_suffix(".json")
    llm: dict = {"provider": None, "model": None, "prompt_version": None,
                 "source": _display_path(path)}
    if meta_path.is_file():
        doc = json.loads(meta_path.read_text())
        info = doc.get("llm", doc)
        llm.update({k: info.get(k) for k in ("provider", "model", "prompt_version") if k in info})
        llm.update({k: doc[k] for k in ("features", "features_source", "created", "command")
                    if k in doc})
    llm["items_augmented"] = len(frame)
    if llm["prompt_version"] is None:
        try:
            from engine.augment import PROMPT_VERSION

            llm["prompt_version"] = PROMPT_VERSION
        except ImportError:
            pass
    return frame, llm, ""


#: Settings of the LLM worth recording beside committed values (never a key or a raw URL).
_RECORDED_LLM = ("provider", "model", "prompt_version", "batch_size", "temperature",
                 "max_tokens", "json_mode")


def _echoes(frame: pd.DataFrame, features: list[str], items: pd.DataFrame) -> int:
    """How many non-empty LLM values repeat one of their item's own dataset fields verbatim
    (case-insensitive): text the model copied from its input rather than generated."""
    fields = {str(rec[ITEM_ID]): {str(v).strip().lower() for k, v in rec.items()
                                  if k != ITEM_ID and isinstance(v, str) and v.strip()}
              for rec in items.to_dict("records")}
    count = 0
    for rec in frame.to_dict("records"):
        own = fields.get(str(rec[ITEM_ID]), set())
        count += sum(1 for f in features if rec.get(f) and rec[f].strip().lower() in own)
    return count


def save_augmentations(dataset: str, source: Path, dest: Path,
                       items: pd.DataFrame | None = None,
                       blank_titles: bool = False) -> dict[str, Any]:
    """Copy an ``emerflow augment`` output (``source`` CSV + ``.json``) to ``dest`` for
    committing: ``item_id``, the LLM's feature values and ``augment_error`` (the
    ``augment_cached`` column is dropped), plus a ``.json`` sidecar with the provider, model,
    prompt version, features and their source, item counts, when the values were produced and
    the command that produced them. The model is recorded by name (a local model directory by
    its folder name) and an endpoint only with its credentials masked.

    With the dataset's ``items`` the sidecar also counts the values that merely repeat one
    of their item's own dataset fields (``values_copying_item_fields``, counted on the answers
    as the LLM gave them).

    With ``blank_titles`` (movie datasets: MovieLens forbids redistribution) every occurrence
    of an item's own title is removed from its values and error message
    (:func:`engine.augment.titles.blank_titles`: as in ``movies.dat``, without the year, with
    the article moved to the front, alternative titles); the sidecar records how many values
    were blanked (``values_with_title_blanked``) and left empty by it.

    Raises:
        ValueError: ``source`` or its ``.json`` is missing, it has no ``item_id`` column, or
            ``blank_titles`` is asked without the dataset's ``items``.
    """
    from engine.augment.endpoints import redact_url

    if blank_titles and items is None:
        raise ValueError("blank_titles needs the dataset's items (their titles)")
    meta_path = source.with_suffix(".json")
    if not source.is_file() or not meta_path.is_file():
        raise ValueError(f"no augmentation at {source} (with {meta_path.name}): run "
                         f"`emerflow augment --dataset {dataset}` first")
    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    if ITEM_ID not in frame.columns:
        raise ValueError(f"{source}: no {ITEM_ID} column")
    frame = frame.drop(columns=[c for c in ("augment_cached",) if c in frame])
    meta = json.loads(meta_path.read_text())
    info = dict(meta.get("llm", {}))
    llm = {k: info[k] for k in _RECORDED_LLM if k in info}
    model = str(llm.get("model") or "")
    if info.get("provider") == "local" and model:
        llm["model"] = Path(model).name  # a directory under $EMERFLOW_HOME: its name only
    if info.get("base_url"):
        llm["base_url"] = redact_url(str(info["base_url"]))
    features = list(meta.get("features", [c for c in frame.columns
                                           if c not in (ITEM_ID, "augment_error")]))
    env = [f"EMERFLOW_LLM_PROVIDER={llm.get('provider')}"]
    if info.get("provider") == "local":
        env.append(f"EMERFLOW_LLM_BATCH_SIZE={llm.get('batch_size')}")
    elif llm.get("model"):
        env.append(f"EMERFLOW_LLM_MODEL={llm['model']}")
    if llm.get("max_tokens") is not None:
        env.append(f"EMERFLOW_LLM_MAX_TOKENS={llm['max_tokens']}")
    command = " ".join([*env, "emerflow augment", f"--dataset {dataset}"]
                       + ([f"--features {','.join(features)}"]
                          if meta.get("features_source") == "given" else []))
    failed = int((frame["augment_error"] != "").sum()) if "augment_error" in frame else 0
    doc = {"dataset": dataset, "items": len(frame), "failed": failed,
           "features": features, "features_source": meta.get("features_source"),
           "llm": llm,
           "created": datetime.fromtimestamp(source.stat().st_mtime, UTC).isoformat(
               timespec="seconds"),
           "augment_seconds": meta.get("seconds"),
           "command": command,
           "saved_by": f"emerflow bench save-augmentations --dataset {dataset}",
           "content": "item ids and the LLM's answers only (no dataset column is copied; an "
                      "answer may repeat its item's own field: values_copying_item_fields)"}
    if items is not None:
        doc["values_copying_item_fields"] = _echoes(frame, features, items)
    if blank_titles:
        frame = _blank_titles(frame, features, items, doc)
    if items is not None:
        doc["values_non_empty"] = int((frame[features] != "").to_numpy().sum())
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(frame.to_csv(index=False))
    dest.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def _blank_titles(frame: pd.DataFrame, features: list[str], items: pd.DataFrame,
                  doc: dict[str, Any]) -> pd.DataFrame:
    """``save_augmentations(blank_titles=True)``: the frame without its items' own titles,
    counts and a note added to ``doc``. An error message never becomes empty (an empty error
    marks an answered item)."""
    from engine.augment.titles import blank_titles

    res = blank_titles(frame, features, items)
    out = res.frame
    if "augment_error" in out:
        errs = blank_titles(out, ["augment_error"], items).frame["augment_error"]
        was = out["augment_error"] != ""
        out["augment_error"] = errs.where(~was | (errs != ""), "(error text removed)")
    doc["values_with_title_blanked"] = res.values_blanked
    doc["values_emptied_by_title_blanking"] = res.values_emptied
    doc["content"] += ("; every occurrence of the item's own title (as in the dataset, "
                       "without its year, with its article moved to the front, alternative "
                       "titles) is blanked from the values and errors: the dataset's licence "
                       "forbids redistribution")
    return out


class TextVectors:
    """Lazily encoded text vectors per variant (``raw``, ``raw+aug``, ``aug``), cached on disk."""

    def __init__(self, dataset: Dataset, needed_rows: np.ndarray, cache_dir: Path | None,
                 encoder_config: EncoderConfig, augmented: pd.DataFrame | None,
                 missing_reason: str, progress: Progress, encoder: Any = None):
        self.dataset = dataset
        self.needed = np.asarray(needed_rows)
        self.cache_dir = cache_dir
        self.encoder_config = encoder_config
        self.augmented = augmented
        self.missing_reason = missing_reason
        self.progress = progress
        self._encoder = encoder
        self._vectors: dict[str, np.ndarray] = {}
        self.seconds = 0.0

    def encoder(self) -> Any:
        if self._encoder is None:
            from engine.text.encoder import TextEncoder

            name = _digest(self.encoder_config.__dict__)
            path = self.cache_dir / f"text-{name}.npz" if self.cache_dir else None
            self._encoder = TextEncoder(self.encoder_config, cache_path=path)
        return self._encoder

    def texts(self, variant: str) -> list[str]:
        if variant == "raw":
            return item_texts(self.dataset)
        if self.augmented is None:
            raise MethodNotAvailable(self.missing_reason)
        base = self.dataset if variant == "raw+aug" else replace(self.dataset, item_features=[])
        return item_texts(base, self.augmented)

    def __call__(self, variant: str) -> np.ndarray:
        if variant not in self._vectors:
            t0 = time.perf_counter()
            texts = self.texts(variant)
            enc = self.encoder()
            self.progress(f"  encoding {len(self.needed)} item texts ({variant})")
            vecs = enc.encode([texts[i] for i in self.needed])
            if self.cache_dir is not None and getattr(enc, "cache_path", None) is not None:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                enc.save_cache()
            full = np.zeros((len(texts), vecs.shape[1]), np.float32)
            full[self.needed] = vecs
            self._vectors[variant] = full
            self.seconds += time.perf_counter() - t0
        return self._vectors[variant]


def _backbone_key(dataset: Dataset, split: Split, config: BackboneConfig, seed: int,
                  code: str | None = None) -> str:
    """Cache key of a seed's pretrained backbone; ``code`` defaults to :func:`code_version`."""
    return _digest({"v": CACHE_VERSION, "code": code or code_version(),
                    "dataset": dataset.name, "inputs": dataset.inputs,
                    "split": split.summary(), "split_name": split.dataset,
                    "old": _digest(list(split.old_items)), "backbone": config.__dict__,
                    "features": [(f.name, f.kind, f.backbone) for f in
                                 (*dataset.item_features, *dataset.target_features)],
                    "seed": seed})


def run_cache_key(dataset: Dataset, split: Split, backbone: BackboneConfig, validation: bool,
                  augmented: pd.DataFrame | None, code: str | None = None) -> str:
    """Key shared by a bench run's cached per-seed results (method, settings and seed are added
    per run); ``code`` defaults to :func:`code_version`."""
    return _digest({"v": CACHE_VERSION, "code": code or code_version(),
                    "dataset": dataset.name, "inputs": dataset.inputs,
                    "split": split.summary(), "validation": validation,
                    "backbone": backbone.__dict__, "aug": _digest(
                        augmented.to_dict("list")) if augmented is not None else None})


def pretrained_backbone(dataset: Dataset, split: Split, config: PaperConfig, tables: Any,
                        item_fields: FieldEncoder, target_fields: FieldEncoder,
                        cache_dir: Path | None, progress: Progress) -> tuple[DeepFM, bool]:
    """The seed's backbone pretrained on old items, frozen; (model, loaded_from_cache)."""
    old_ids = [str(i) for i in split.old_items]
    model = build_backbone(config.backbone, _layout(target_fields), _layout(item_fields),
                           len(old_ids))
    key = _backbone_key(dataset, split, config.backbone, config.seed)
    path = cache_dir / f"backbone-{key}.pt" if cache_dir else None
    if path is not None and path.is_file() and path.with_suffix(".json").is_file():
        model.load_state_dict(torch.load(path, weights_only=True))
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        progress(f"  backbone: reused cached checkpoint {path.name}")
        return model, True
    torch.manual_seed(config.seed)
    model = build_backbone(config.backbone, _layout(target_fields), _layout(item_fields),
                           len(old_ids))
    old_rows = tables.item_pos.loc[old_ids].to_numpy().copy()
    train = split.train
    losses = pretrain_backbone(
        model, tables.target_table, tables.item_table[torch.from_numpy(old_rows)],
        tables.target_pos.loc[train["target_id"].astype(str)].to_numpy(),
        tables.old_pos.loc[train["item_id"].astype(str)].to_numpy(),
        train["label"].to_numpy(dtype=np.float32), config.backbone, config.seed,
        lambda e, n, loss: progress(f"  backbone epoch {e}/{n}: loss {loss:.4f}"))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")  # parallel workers may race: own tmp
        torch.save(model.state_dict(), tmp)
        tmp.replace(path)
        path.with_suffix(".json").write_text(json.dumps(
            {"dataset": dataset.name, "seed": config.seed, "backbone": config.backbone.__dict__,
             "split": split.summary(), "losses": losses,
             "created_at": datetime.now(UTC).isoformat(timespec="seconds")}, indent=1))
    return model, False


@dataclass
class BenchSettings:
    """What a benchmark run uses besides the methods' names."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    method_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def for_dataset(cls, name: str) -> BenchSettings:
        s = DATASET_SETTINGS.get(name, {})
        bb = dict(s.get("backbone", {}))
        if "hidden" in bb:
            bb["hidden"] = tuple(bb["hidden"])
        return cls(backbone=BackboneConfig(**bb),
                   method_overrides={k: dict(v) for k, v in s.get("methods", {}).items()})


def make_method(name: str, settings: BenchSettings) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; registered: {', '.join(METHODS)}")
    cls = METHODS[name]
    overrides = settings.method_overrides
    if name not in overrides:  # e.g. an ablation run with its base method's validated settings
        name = getattr(cls, "settings_of", name)
    return cls(**overrides.get(name, {}))


def parse_methods(spec: str) -> list[str]:
    names = list(METHODS) if spec.strip() == "all" else [m.strip() for m in spec.split(",")
                                                         if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; registered: {', '.join(METHODS)}")
    return names


def split_tables(dataset: Dataset, split: Split, backbone: BackboneConfig
                 ) -> tuple[FieldEncoder, FieldEncoder, Any, np.ndarray]:
    """The split's DeepFM inputs: (item field encoder, target field encoder, feature tables of
    ``engine.paper.tables.make_tables``, table rows of the old then the new items, the rows
    whose texts are encoded)."""
    item_fields = FieldEncoder.fit(dataset.items, dataset.item_features,
                                   backbone.numeric_buckets, backbone.max_multi)
    target_fields = FieldEncoder.fit(dataset.targets, dataset.target_features,
                                     backbone.numeric_buckets, backbone.max_multi)
    tables = make_tables(TrainingData(dataset, split), item_fields, target_fields)
    needed = np.concatenate([tables.item_pos.loc[[str(i) for i in split.old_items]].to_numpy(),
                             tables.item_pos.loc[[str(i) for i in split.new_items]].to_numpy()])
    return item_fields, target_fields, tables, needed
