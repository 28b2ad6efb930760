"""LLM feature augmentation (paper Eq. 1): suggest item features, then fill their values.

Public API::

    from engine.augment import (
        LLMSettings, make_provider, OpenAIProvider, LocalProvider, NoneProvider, PROVIDERS,
        suggest_features, fill_values, augment_items, MemoryCache, JsonlCache,
        AugmentationError,
    )

    provider = make_provider(LLMSettings.from_env(secrets))
    feats = suggest_features(provider, "movie", dataset.item_features, cache, n=8)
    result = fill_values(provider, "movie", {"name": "Heat (1995)"}, feats, cache)

Importing this package does not import torch or transformers (only the local provider and
``local_model`` load them, lazily).
"""

from engine.augment.batch import AUGMENT_CACHED, AUGMENT_ERROR, augment_items
from engine.augment.cache import (
    CacheRecord,
    JsonlCache,
    MemoryCache,
    NullCache,
    ResponseCache,
    cache_key,
    input_hash,
)
from engine.augment.prompts import PROMPT_VERSION
from engine.augment.providers import (
    AugmentationError,
    LLMProvider,
    LLMSettings,
    LocalProvider,
    NoneProvider,
    OpenAIProvider,
)
from engine.augment.registry import PROVIDERS, make_provider
from engine.augment.schemas import SchemaError, SuggestedFeature, normalize_feature_name
from engine.augment.service import FilledResult, fill_values, fill_values_many, suggest_features

__all__ = [
    "AUGMENT_CACHED",
    "AUGMENT_ERROR",
    "PROMPT_VERSION",
    "PROVIDERS",
    "AugmentationError",
    "CacheRecord",
    "FilledResult",
    "JsonlCache",
    "LLMProvider",
    "LLMSettings",
    "LocalProvider",
    "MemoryCache",
    "NoneProvider",
    "NullCache",
    "OpenAIProvider",
    "ResponseCache",
    "SchemaError",
    "SuggestedFeature",
    "augment_items",
    "cache_key",
    "fill_values",
    "fill_values_many",
    "input_hash",
    "make_provider",
    "normalize_feature_name",
    "suggest_features",
]
