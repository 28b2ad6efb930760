"""Fill LLM feature values for a whole item table, resumably.

HTTP providers are called from a bounded thread pool; providers with ``batch_size > 1`` (the
in-process local model) get chunks of items in one batched generation instead. Every validated
answer goes to the cache as soon as it arrives, so an interrupted run resumes where it stopped:
items already answered are read back from the cache without calling the model.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from engine.augment.cache import NullCache, ResponseCache
from engine.augment.prompts import PROMPT_VERSION
from engine.augment.providers import AugmentationError, LLMProvider
from engine.augment.schemas import SuggestedFeature
from engine.augment.service import (
    FeatureLike,
    FilledResult,
    feature_pairs,
    fill_values_many,
    suggest_features,
)
from engine.csv_safety import neutralize_frame
from engine.schema import ITEM_ID

logger = logging.getLogger(__name__)

#: Column of the result holding the error message of a failed item ("" when it succeeded).
AUGMENT_ERROR = "augment_error"
#: Column of the result: True when the item's answer came from the cache.
AUGMENT_CACHED = "augment_cached"

#: ``progress(done, total)``, called from the calling thread after each finished item/chunk.
Progress = Callable[[int, int], None]


def _item_payload(row: pd.Series, columns: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for col in columns:
        value = row.get(col)
        if value is None or (not isinstance(value, list | tuple) and pd.isna(value)):
            continue
        text = str(value).strip()
        if text:
            out[col] = text
    return out


def augment_items(
    provider: LLMProvider,
    domain: str,
    items: pd.DataFrame,
    features: Sequence[FeatureLike],
    cache: ResponseCache | None = None,
    concurrency: int = 4,
    progress: Progress | None = None,
    *,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """LLM values of ``features`` for every row of ``items``.

    Args:
        provider: the LLM.
        domain: ``movie`` or ``disease``.
        items: item table with an ``item_id`` column; the other columns (or ``columns``) are
            sent to the model as the item's DATA.
        features: features to fill (FeatureSpec, SuggestedFeature or names).
        cache: where answers are kept; pass a :class:`~engine.augment.cache.JsonlCache` to
            make long runs resumable.
        concurrency: at most this many requests in flight (HTTP providers).
        progress: optional ``progress(done, total)`` callback.
        columns: item columns sent to the model (default: all but ``item_id``).

    Returns:
        One row per item, in input order, with columns ``item_id``, one column per feature
        (``""`` when unknown or failed), ``augment_error`` (``""`` on success) and
        ``augment_cached``. A failed item never stops the batch.

    Raises:
        ValueError: bad arguments (no ``item_id`` column, no features, concurrency < 1).
    """
    if ITEM_ID not in items.columns:
        raise ValueError(f"items must have an {ITEM_ID!r} column")
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    pairs = feature_pairs(features)
    if not pairs:
        raise ValueError("augment_items needs at least one feature")
    names = [p[0] for p in pairs]
    cols = list(columns) if columns is not None else [c for c in items.columns if c != ITEM_ID]
    unknown = [c for c in cols if c not in items.columns]
    if unknown:
        raise ValueError(f"columns not in items: {unknown}")
    cache = cache if cache is not None else NullCache()
    payloads = [_item_payload(row, cols) for _, row in items.iterrows()]
    total = len(payloads)
    results: list[FilledResult | AugmentationError | None] = [None] * total
    done = 0

    def report(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            try:
                progress(done, total)
            except Exception:  # noqa: BLE001 - a UI callback must not end the batch
                logger.exception("progress callback failed")

    if provider.batch_size > 1 or concurrency == 1:
        step = max(provider.batch_size, 1)
        for start in range(0, total, step):
            chunk = payloads[start : start + step]
            results[start : start + len(chunk)] = _safe_many(provider, domain, chunk, pairs, cache)
            report(len(chunk))
    else:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="augment") as pool:
            futures = {
                pool.submit(_safe_many, provider, domain, [payload], pairs, cache): i
                for i, payload in enumerate(payloads)
            }
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()[0]
                report(1)

    rows: list[dict[str, Any]] = []
    for item_id, res in zip(items[ITEM_ID].tolist(), results, strict=True):
        row: dict[str, Any] = {ITEM_ID: item_id}
        if isinstance(res, FilledResult):
            row.update(res.values)
            row[AUGMENT_ERROR] = ""
            row[AUGMENT_CACHED] = res.cached
        else:
            row.update(dict.fromkeys(names, ""))
            row[AUGMENT_ERROR] = str(res) if res is not None else "not processed"
            row[AUGMENT_CACHED] = False
        rows.append(row)
    return pd.DataFrame(rows, columns=[ITEM_ID, *names, AUGMENT_ERROR, AUGMENT_CACHED])


def _safe_many(
    provider: LLMProvider,
    domain: str,
    payloads: Sequence[dict[str, str]],
    pairs: list[tuple[str, str]],
    cache: ResponseCache,
) -> list[FilledResult | AugmentationError]:
    try:
        return fill_values_many(provider, domain, payloads, pairs, cache)
    except AugmentationError as exc:
        return [exc] * len(payloads)
    except Exception as exc:  # noqa: BLE001 - one bad chunk must not end the batch
        logger.exception("augmentation chunk failed")
        err = AugmentationError(f"unexpected error: {type(exc).__name__}: {exc}")
        return [err] * len(payloads)


@dataclass(frozen=True)
class DatasetAugmentation:
    """What :func:`augment_dataset` produced: the table, where it went and its provenance."""

    frame: pd.DataFrame
    out: Path
    summary: dict[str, Any]

    @property
    def failed(self) -> int:
        """Items whose answer was invalid twice or whose request failed."""
        return int((self.frame[AUGMENT_ERROR] != "").sum())


def benchmark_items(dataset: Any) -> pd.DataFrame:
    """The items a benchmark split needs: old (established) and new (emerging) items.

    Datasets without a registered protocol are returned whole.
    """
    from engine.data.protocol import split_dataset
    from engine.data.registry import DATASETS

    entry = DATASETS.get(dataset.name)
    if entry is None:
        return dataset.items
    split = split_dataset(dataset, entry.protocol)
    wanted = {str(i) for i in (*split.old_items, *split.new_items)}
    return dataset.items[dataset.items[ITEM_ID].astype(str).isin(wanted)]


def augment_dataset(
    provider: LLMProvider,
    dataset: Any,
    out: Path,
    cache: ResponseCache,
    *,
    settings: dict[str, Any] | None = None,
    features: Sequence[str] | None = None,
    n_suggest: int = 8,
    all_items: bool = False,
    limit: int | None = None,
    concurrency: int = 4,
    progress: Progress | None = None,
    on_suggested: Callable[[list[SuggestedFeature]], None] | None = None,
) -> DatasetAugmentation:
    """Suggest features (unless ``features`` is given), fill them for a dataset, write CSV + JSON.

    The CSV (``item_id``, one column per feature, ``augment_error``, ``augment_cached``) goes
    to ``out``; its provenance (``settings`` without any key, prompt version, the features and
    whether the LLM suggested them or they were given) to ``out.with_suffix(".json")``, which
    the benchmark copies into its result files.

    Args:
        provider: the LLM.
        dataset: an :class:`engine.data.Dataset`.
        out: CSV path (its folder is created).
        cache: response cache; a :class:`~engine.augment.cache.JsonlCache` makes it resumable.
        settings: public LLM settings to record (``LLMSettings.public_dict()``).
        features: feature names to fill; ``None`` asks the LLM for ``n_suggest`` features.
        all_items: every item of the dataset instead of the benchmark split's items.
        limit: only the first ``limit`` items.
        on_suggested: called with the LLM's suggestions before values are filled.

    Returns:
        The result; with provider ``none`` (or nothing suggested) the frame has no rows and
        nothing is written.

    Raises:
        ValueError: bad arguments.
        AugmentationError: the suggestion step failed (the fill step never raises per item).
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if not 1 <= n_suggest <= 20:
        raise ValueError(f"n_suggest must be in 1..20, got {n_suggest}")
    items = dataset.items if all_items else benchmark_items(dataset)
    if limit is not None:
        items = items.head(limit)
    start = time.perf_counter()
    chosen: list[Any]
    if features:
        chosen = [f.strip() for f in features if f.strip()]
        source = "given"
    else:
        chosen = list(
            suggest_features(provider, dataset.domain, dataset.item_features, cache, n=n_suggest)
        )
        source = "suggested by the LLM"
        if on_suggested is not None:
            on_suggested(chosen)
    names = [getattr(f, "name", f) for f in chosen]
    if not chosen:
        empty = pd.DataFrame(columns=[ITEM_ID, AUGMENT_ERROR, AUGMENT_CACHED])
        return DatasetAugmentation(empty, out, {"dataset": dataset.name, "items": 0})
    frame = augment_items(
        provider, dataset.domain, items, chosen, cache, concurrency=concurrency, progress=progress
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    # LLM answers are untrusted: no cell may start a spreadsheet formula
    _write_atomically(out, neutralize_frame(frame).to_csv(index=False))
    summary = {
        "dataset": dataset.name,
        "items": len(frame),
        "failed": int((frame[AUGMENT_ERROR] != "").sum()),
        "seconds": round(time.perf_counter() - start, 1),
        "out": str(out),
        "llm": {
            **(settings or {"provider": provider.name, "model": provider.model}),
            "prompt_version": PROMPT_VERSION,
        },
        "features": names,
        "features_source": source,
    }
    _write_atomically(out.with_suffix(".json"), json.dumps(summary, indent=1))
    return DatasetAugmentation(frame, out, summary)


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary sibling, then rename it over ``path`` (never half-written)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
