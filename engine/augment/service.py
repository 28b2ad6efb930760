"""The two augmentation steps, with validation, one repair retry and caching.

Flow for every question: cache lookup -> model answer -> validation -> (on failure) exactly one
repair request that quotes the validation error -> validation -> cache write. Only validated
answers are cached; a question that fails twice raises :class:`AugmentationError` and leaves
the cache untouched, so a later run asks again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from engine.augment.cache import CacheRecord, NullCache, ResponseCache, cache_key, input_hash
from engine.augment.prompts import (
    FILL,
    PROMPT_VERSION,
    SUGGEST,
    build_fill_prompt,
    build_repair_prompt,
    build_suggest_prompt,
)
from engine.augment.providers import AugmentationError, LLMProvider, Prompt
from engine.augment.schemas import (
    SchemaError,
    SuggestedFeature,
    normalize_feature_name,
    parse_filled,
    parse_suggested,
)
from engine.schema import DOMAINS, FeatureSpec

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Anything that names a feature: a FeatureSpec, a SuggestedFeature, a ``(name, descriptor)``
#: pair or a plain name.
FeatureLike = FeatureSpec | SuggestedFeature | tuple[str, str] | str


def feature_pairs(features: Sequence[FeatureLike]) -> list[tuple[str, str]]:
    """``(snake_case name, descriptor)`` for each feature, duplicates removed, order kept.

    Raises:
        ValueError: a feature has an unusable name or an unsupported type.
    """
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for f in features:
        if isinstance(f, FeatureSpec | SuggestedFeature):
            name, desc = f.name, f.descriptor
        elif isinstance(f, tuple) and len(f) == 2:
            name, desc = str(f[0]), str(f[1])
        elif isinstance(f, str):
            name, desc = f, ""
        else:
            raise ValueError(f"unsupported feature {f!r}: use FeatureSpec, SuggestedFeature or str")
        norm = normalize_feature_name(name)
        if norm not in seen:
            seen.add(norm)
            out.append((norm, desc))
    return out


@dataclass(frozen=True)
class FilledResult:
    """Values of the requested features for one item.

    Attributes:
        values: feature name -> value; ``""`` when the model did not know (never invented).
        missing: names whose value is empty.
        provenance: ``{"provider", "model", "prompt_version"}``.
        cached: True when the answer came from the cache.
    """

    values: dict[str, str]
    missing: list[str]
    provenance: dict[str, str]
    cached: bool = False


@dataclass
class _Job(Generic[T]):
    """One question to the model: prompt, cache key and the validator of its answer."""

    key: str
    prompt: Prompt
    parse: Callable[[str], T]
    canonical: Callable[[T], str]
    result: T | None = None
    error: AugmentationError | None = None
    cached: bool = False
    attempts: list[str] = field(default_factory=list)


def _provenance(provider: LLMProvider) -> dict[str, str]:
    return {"provider": provider.name, "model": provider.model, "prompt_version": PROMPT_VERSION}


def _run_jobs(
    provider: LLMProvider, jobs: Sequence[_Job[Any]], cache: ResponseCache, task: str
) -> None:
    """Answer every job in place (``result`` or ``error``), batching through the provider."""
    todo: list[_Job[Any]] = []
    for job in jobs:
        hit = cache.get(job.key)
        if hit is not None:
            try:
                job.result, job.cached = job.parse(hit), True
                continue
            except (SchemaError, ValueError):
                logger.warning("ignoring an invalid cached answer for key %s", job.key[:12])
        todo.append(job)
    if not todo:
        return
    answers = provider.complete_json_many([j.prompt for j in todo])
    retry: list[tuple[_Job[Any], str]] = []
    for job, answer in zip(todo, answers, strict=True):
        if isinstance(answer, AugmentationError):
            job.error = answer
            continue
        job.attempts.append(answer)
        try:
            job.result = job.parse(answer)
        except SchemaError as exc:
            retry.append((job, str(exc)))
    if retry:
        repair_prompts = [
            (job.prompt[0], build_repair_prompt(job.prompt[1], job.attempts[-1], err))
            for job, err in retry
        ]
        repaired = provider.complete_json_many(repair_prompts)
        for (job, first_err), answer in zip(retry, repaired, strict=True):
            if isinstance(answer, AugmentationError):
                job.error = answer
                continue
            job.attempts.append(answer)
            try:
                job.result = job.parse(answer)
            except SchemaError as exc:
                job.error = AugmentationError(
                    f"the model's {task} answer was invalid twice ({first_err}; after repair: "
                    f"{exc})"
                )
    meta = provider.describe()
    for job in todo:
        if job.result is not None and job.error is None:
            cache.put(
                job.key,
                CacheRecord(
                    value=job.canonical(job.result),
                    task=task,
                    provider=meta["provider"],
                    model=meta["model"],
                    prompt_version=PROMPT_VERSION,
                ),
            )


def _check_domain(domain: str) -> None:
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; expected one of {DOMAINS}")


def suggest_features(
    provider: LLMProvider,
    domain: str,
    existing: Sequence[FeatureLike],
    cache: ResponseCache | None = None,
    n: int = 8,
) -> list[SuggestedFeature]:
    """Ask the LLM for up to ``n`` new item features for ``domain`` (paper Eq. 1, step 1).

    Features that already exist (by snake_case name) are never returned. With
    :class:`~engine.augment.providers.NoneProvider` the answer is ``[]``.

    Raises:
        ValueError: bad arguments (domain, n).
        AugmentationError: the request failed, or the answer was invalid twice.
    """
    _check_domain(domain)
    if not 1 <= n <= 20:
        raise ValueError(f"n must be in 1..20, got {n}")
    if not provider.enabled:
        return []
    cache = cache if cache is not None else NullCache()
    pairs = feature_pairs(existing)
    existing_names = [p[0] for p in pairs]
    digest = input_hash({"task": SUGGEST, "domain": domain, "existing": pairs, "n": n})
    job: _Job[list[SuggestedFeature]] = _Job(
        key=cache_key(provider.name, provider.model, PROMPT_VERSION, digest, provider.endpoint),
        prompt=build_suggest_prompt(domain, pairs, n),
        parse=lambda text: parse_suggested(text, exclude=existing_names, limit=n),
        canonical=lambda feats: json.dumps(
            {"features": [f.model_dump() for f in feats]}, ensure_ascii=False
        ),
    )
    _run_jobs(provider, [job], cache, SUGGEST)
    if job.error is not None:
        raise job.error
    assert job.result is not None
    return job.result


def _fill_job(
    provider: LLMProvider, domain: str, item: Mapping[str, Any], pairs: list[tuple[str, str]]
) -> _Job[tuple[dict[str, str], list[str]]]:
    item_data = {str(k): "" if v is None else str(v) for k, v in item.items()}
    digest = input_hash({"task": FILL, "domain": domain, "item": item_data, "features": pairs})
    names = [p[0] for p in pairs]
    return _Job(
        key=cache_key(provider.name, provider.model, PROMPT_VERSION, digest, provider.endpoint),
        prompt=build_fill_prompt(domain, item_data, pairs),
        parse=lambda text: parse_filled(text, names, placeholders=dict(pairs)),
        canonical=lambda res: json.dumps(res[0], ensure_ascii=False),
    )


def fill_values_many(
    provider: LLMProvider,
    domain: str,
    items: Sequence[Mapping[str, Any]],
    features: Sequence[FeatureLike],
    cache: ResponseCache | None = None,
) -> list[FilledResult | AugmentationError]:
    """:func:`fill_values` for several items, batched through ``complete_json_many``.

    A failed item is its :class:`AugmentationError` in the returned list (the others go on).
    """
    _check_domain(domain)
    pairs = feature_pairs(features)
    if not pairs:
        raise ValueError("fill_values needs at least one feature")
    prov = _provenance(provider)
    names = [p[0] for p in pairs]
    if not provider.enabled:
        return [
            FilledResult(values=dict.fromkeys(names, ""), missing=list(names), provenance=prov)
            for _ in items
        ]
    cache = cache if cache is not None else NullCache()
    jobs = [_fill_job(provider, domain, item, pairs) for item in items]
    _run_jobs(provider, jobs, cache, FILL)
    out: list[FilledResult | AugmentationError] = []
    for job in jobs:
        if job.error is not None or job.result is None:
            out.append(job.error or AugmentationError("no answer"))
        else:
            values, missing = job.result
            out.append(FilledResult(values, missing, dict(prov), cached=job.cached))
    return out


def fill_values(
    provider: LLMProvider,
    domain: str,
    item: Mapping[str, Any],
    features: Sequence[FeatureLike],
    cache: ResponseCache | None = None,
) -> FilledResult:
    """Ask the LLM for the value of each feature for one item (paper Eq. 1, step 2).

    Args:
        provider: the LLM.
        domain: ``movie`` or ``disease``.
        item: what is known about the item (column -> value), e.g. name, description.
        features: the features to fill.
        cache: where validated answers are kept (default: none).

    Returns:
        A value for every requested feature (``""`` when unknown); with ``NoneProvider`` all
        values are empty.

    Raises:
        ValueError: bad arguments.
        AugmentationError: the request failed, or the answer was invalid twice.
    """
    result = fill_values_many(provider, domain, [item], features, cache)[0]
    if isinstance(result, AugmentationError):
        raise result
    return result
