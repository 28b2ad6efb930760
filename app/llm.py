"""LLM settings for the dashboard: environment / secrets / per-session overrides.

The API key only ever comes from the environment or ``.streamlit/secrets.toml`` (passed in as
``secrets``); it is never shown, stored or written back. No streamlit import here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.augment import (
    PROVIDERS,
    AugmentationError,
    LLMProvider,
    LLMSettings,
    make_provider,
)

PROVIDER_NAMES: tuple[str, ...] = tuple(PROVIDERS)
PROVIDER_HELP = {
    "openai": "Any OpenAI-compatible server (OpenAI, transformers serve, vLLM) via base URL",
    "local": "An in-process transformers model directory (offline, slow on CPU)",
    "none": "No LLM: the analyst fills the features by hand",
}


def _secret_dict(secrets: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in dict(secrets or {}).items():
        if isinstance(value, (str, int, float, bool)):
            out[str(key)] = value
    return out


def default_provider(secrets: Mapping[str, Any] | None = None,
                     env: Mapping[str, str] | None = None) -> str:
    """``EMERFLOW_LLM_PROVIDER`` if set; else ``openai`` when a key or base URL is configured;
    else ``none`` (so a fresh install works without any LLM)."""
    env = os.environ if env is None else env
    merged = {**env, **_secret_dict(secrets)}
    chosen = str(merged.get("EMERFLOW_LLM_PROVIDER") or "").strip()
    if chosen:
        return chosen
    if any(str(merged.get(k) or "").strip()
           for k in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "EMERFLOW_LLM_BASE_URL")):
        return "openai"
    return "none"


@dataclass(frozen=True)
class LLMChoice:
    """What the analyst picked on the Settings page (no key here, ever)."""

    provider: str | None = None
    model: str | None = None
    base_url: str | None = None


def resolve_settings(choice: LLMChoice | None = None,
                     secrets: Mapping[str, Any] | None = None,
                     env: Mapping[str, str] | None = None) -> LLMSettings:
    """Settings from secrets + environment, with the analyst's non-empty choices on top.

    Raises:
        ValueError: an invalid value (the message never contains the key).
    """
    choice = choice or LLMChoice()
    provider = (choice.provider or "").strip() or default_provider(secrets, env)
    overrides: dict[str, Any] = {"provider": provider}
    if (choice.model or "").strip():
        overrides["model"] = choice.model.strip()
    if (choice.base_url or "").strip():
        overrides["base_url"] = choice.base_url.strip()
    base = LLMSettings.from_env(_secret_dict(secrets), env, provider=provider)
    if provider == "none":
        return base.with_overrides(model="none")
    if provider == "openai" and "model" not in overrides and base.model == "none":
        overrides["model"] = LLMSettings().model
    return base.with_overrides(**overrides)


def settings_summary(settings: LLMSettings) -> dict[str, str]:
    """Displayable settings: the API key only as ``set`` / ``not set``."""
    pub = settings.public_dict()
    return {
        "provider": str(pub["provider"]),
        "model": str(pub["model"]),
        "base URL": str(pub["base_url"] or ("(OpenAI API)" if pub["provider"] == "openai"
                                            else "—")),
        "API key": "set" if pub["api_key_set"] else "not set",
        "timeout (s)": f"{pub['timeout_s']:g}",
    }


def provider_for(settings: LLMSettings) -> LLMProvider:
    """The provider; :class:`AugmentationError` (readable) when it can't be set up."""
    return make_provider(settings)


def test_connection(settings: LLMSettings) -> str:
    """Ask the model for a tiny JSON object; returns a one-line success message.

    Raises:
        AugmentationError: unreachable server, bad key, missing local model, ... (readable).
    """
    provider = make_provider(settings)
    if not provider.enabled:
        return "Provider 'none': no LLM is used; features are filled by hand."
    answer = provider.complete_json(
        "You answer with one JSON object only.", 'Reply with {"ok": true}.'
    )
    snippet = " ".join(answer.split())[:80]
    return f"{provider.name} / {provider.model} answered: {snippet}"


__all__ = [
    "PROVIDER_HELP",
    "PROVIDER_NAMES",
    "AugmentationError",
    "LLMChoice",
    "default_provider",
    "provider_for",
    "resolve_settings",
    "settings_summary",
    "test_connection",
]
