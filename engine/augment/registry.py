"""The one registry of LLM providers: name -> class (or factory) taking :class:`LLMSettings`.

Kept apart from :mod:`engine.augment.providers` so that the knowledge provider (which builds
on the LLM providers) is imported without an import cycle.
"""

from __future__ import annotations

from typing import Any

from engine.augment.knowledge import KnowledgeProvider
from engine.augment.providers import (
    AugmentationError,
    LLMProvider,
    LLMSettings,
    LocalProvider,
    NoneProvider,
    OpenAIProvider,
)

#: Provider name -> class. Each takes an :class:`LLMSettings` as first argument.
PROVIDERS: dict[str, Any] = {
    "openai": OpenAIProvider,
    "local": LocalProvider,
    "none": NoneProvider,
    "knowledge": KnowledgeProvider,
}


def make_provider(settings: LLMSettings) -> LLMProvider:
    """Instantiate the provider named by ``settings.provider``.

    Raises:
        AugmentationError: the provider can't be set up (e.g. no API key).
    """
    try:
        cls = PROVIDERS[settings.provider]
    except KeyError:
        raise AugmentationError(f"unknown LLM provider {settings.provider!r}") from None
    return cls(settings)
